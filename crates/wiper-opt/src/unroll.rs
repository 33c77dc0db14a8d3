//! Full unrolling of self-loops whose trip count the code before them
//! fixes: a block that loops to itself while `a != b` (`cmp a,b` or `cmp
//! a,imm`), where `a` and `b` step by constants each turn and enter as the
//! same unknown value plus known offsets, runs a known number of turns.
//! Specialization leaves such loops when the function walks a static
//! number of elements with a dynamic pointer (`for (p = a; p != a + n;
//! p++)`): the bound is dynamic, the distance static. Small enough ones
//! become straight-line code, which the offset folding
//! ([`crate::offsets`]) then turns into loads at fixed displacements.

use iced_x86::{Code, ConditionCode, Instruction, Mnemonic, OpKind, Register};
use wiper_emit::{Item, Residual, Terminator};

use crate::cfg::loop_while_not_zero;
use crate::effects::{reg_bit, Effects, EffectsOf, ALL_FLAGS};
use crate::liveness::{block_index, successors};

/// Most turns unrolled.
const MAX_TURNS: u32 = 16;
/// Most items the unrolled block may have.
const MAX_ITEMS: usize = 96;

/// A 32-bit value as an opaque value plus a constant (mod 2^32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sym {
    base: u32,
    offset: u32,
}

/// The opaque value of constants.
const CONSTANT: u32 = u32::MAX;

/// Symbolic register values through straight-line items: each register
/// starts as its own opaque value.
struct Symbolic {
    regs: [Sym; 8],
    fresh: u32,
}

/// The index (0..8) of a 32-bit general-purpose register but `esp`.
fn index(r: Register) -> Option<usize> {
    (r.is_gpr32() && reg_bit(r).is_some()).then(|| r.number() - Register::EAX.number())
}

impl Symbolic {
    fn new() -> Self {
        Symbolic {
            regs: std::array::from_fn(|i| Sym {
                base: i as u32,
                offset: 0,
            }),
            fresh: 8,
        }
    }

    /// The value of operand `k` of `ins`, a 32-bit register or immediate.
    fn operand(&self, ins: &Instruction, k: u32) -> Option<Sym> {
        match ins.op_kind(k) {
            OpKind::Register => index(ins.op_register(k)).map(|i| self.regs[i]),
            OpKind::Immediate32 | OpKind::Immediate8to32 => Some(Sym {
                base: CONSTANT,
                offset: ins.immediate(k) as u32,
            }),
            _ => None,
        }
    }

    /// Applies one item with effects `fx`.
    fn step(&mut self, item: &Item, fx: &Effects) {
        let known = match item {
            Item::Instr(ins, _) => self.evaluate(ins),
            _ => None,
        };
        match known {
            Some((i, v)) => self.regs[i] = v,
            None => {
                for i in 0..8 {
                    if fx.defs & (1 << i) != 0 {
                        self.regs[i] = Sym {
                            base: self.fresh,
                            offset: 0,
                        };
                        self.fresh += 1;
                    }
                }
            }
        }
    }

    /// The register `ins` writes and its new value, for moves, `lea`,
    /// `add`/`sub` of an immediate, `inc` and `dec` on 32-bit registers.
    fn evaluate(&self, ins: &Instruction) -> Option<(usize, Sym)> {
        if ins.op_count() == 0 || ins.op0_kind() != OpKind::Register {
            return None;
        }
        let d = index(ins.op0_register())?;
        let old = self.regs[d];
        let plus = |v: Sym, k: u32| Sym {
            base: v.base,
            offset: v.offset.wrapping_add(k),
        };
        let imm = || match ins.op1_kind() {
            OpKind::Immediate32 | OpKind::Immediate8to32 => Some(ins.immediate(1) as u32),
            _ => None,
        };
        let v = match ins.mnemonic() {
            Mnemonic::Mov if ins.op_count() == 2 => self.operand(ins, 1)?,
            Mnemonic::Add if ins.op_count() == 2 => plus(old, imm()?),
            Mnemonic::Sub if ins.op_count() == 2 => plus(old, imm()?.wrapping_neg()),
            Mnemonic::Inc => plus(old, 1),
            Mnemonic::Dec => plus(old, u32::MAX),
            Mnemonic::Lea if ins.memory_index() == Register::None => {
                let base = match ins.memory_base() {
                    Register::None => Sym {
                        base: CONSTANT,
                        offset: 0,
                    },
                    b => self.regs[index(b)?],
                };
                plus(base, ins.memory_displacement32())
            }
            _ => return None,
        };
        Some((d, v))
    }
}

/// Runs `items` symbolically from fresh opaque register values.
fn run(items: &[Item], fx: &[Effects]) -> Symbolic {
    let mut s = Symbolic::new();
    for (item, e) in items.iter().zip(fx) {
        s.step(item, e);
    }
    s
}

/// How many turns a self-loop with body `items` runs when entered with
/// register values `entry` (of the predecessor), looping while the last
/// compare finds its operands different; `None` when unknown or too many.
fn turns(items: &[Item], fx: &[Effects], entry: &Symbolic) -> Option<u32> {
    // The last flag writer must be the compare.
    let k = fx.iter().rposition(|e| e.defs & ALL_FLAGS != 0)?;
    let Item::Instr(cmp, _) = &items[k] else {
        return None;
    };
    if !matches!(
        cmp.code(),
        Code::Cmp_rm32_r32 | Code::Cmp_r32_rm32 | Code::Cmp_rm32_imm8 | Code::Cmp_rm32_imm32
    ) || cmp.op0_kind() != OpKind::Register
    {
        return None;
    }
    // Values at the compare, relative to the turn's start, and per turn.
    let before = run(&items[..k], &fx[..k]);
    let whole = run(items, fx);
    let start = Symbolic::new();
    let (a, b) = (start.operand(cmp, 0)?, start.operand(cmp, 1)?);
    let at_compare = |v: Sym| -> Option<Sym> {
        if v.base == CONSTANT {
            return Some(v);
        }
        let i = v.base as usize;
        let now = before.regs[i];
        let per_turn = whole.regs[i];
        // An induction variable: itself plus a constant, at both points.
        (now.base == v.base && per_turn.base == v.base).then_some(Sym {
            base: entry.regs[i].base,
            offset: entry.regs[i].offset.wrapping_add(now.offset),
        })
    };
    let step = |v: Sym| -> u32 {
        if v.base == CONSTANT {
            0
        } else {
            whole.regs[v.base as usize].offset
        }
    };
    let (a0, b0) = (at_compare(a)?, at_compare(b)?);
    if a0.base != b0.base {
        return None;
    }
    // Turn t (from 1) compares a0 + sa*(t-1) with b0 + sb*(t-1).
    let (distance, closing) = (
        b0.offset.wrapping_sub(a0.offset),
        step(a).wrapping_sub(step(b)),
    );
    (0..MAX_TURNS)
        .find(|&m| closing.wrapping_mul(m) == distance)
        .map(|m| m + 1)
}

/// Unrolls every self-loop with a known, small trip count; returns how
/// many.
pub fn unroll_loops(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let index_of = block_index(residual);
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); residual.blocks.len()];
    for (p, block) in residual.blocks.iter().enumerate() {
        for s in successors(&block.terminator) {
            if let Some(&s) = index_of.get(&s) {
                preds[s].push(p);
            }
        }
    }
    let entry = residual.entry.and_then(|l| index_of.get(&l).copied());
    let mut unrolled = 0;
    for (b, block_preds) in preds.iter().enumerate() {
        let block = &residual.blocks[b];
        let Some((exit, origin)) = loop_while_not_zero(block) else {
            continue;
        };
        // One way in from outside, not the function's entry.
        let outside: Vec<usize> = block_preds.iter().copied().filter(|&p| p != b).collect();
        let [p] = outside[..] else { continue };
        if entry == Some(b) {
            continue;
        }
        let fx_of = |items: &[Item], calc: &mut EffectsOf| -> Vec<Effects> {
            items.iter().map(|i| calc.item(i, None)).collect()
        };
        let pred_items = &residual.blocks[p].items;
        let pred_fx = fx_of(pred_items, calc);
        let at_entry = run(pred_items, &pred_fx);
        let fx = fx_of(&block.items, calc);
        let Some(n) = turns(&block.items, &fx, &at_entry) else {
            continue;
        };
        if block.items.len() * n as usize > MAX_ITEMS {
            continue;
        }
        let body = block.items.clone();
        let block = &mut residual.blocks[b];
        block.items = (0..n).flat_map(|_| body.iter().cloned()).collect();
        block.terminator = Terminator::Jump(exit, origin);
        unrolled += 1;
    }
    unrolled
}

/// Decides `je`/`jne` after `cmp a,b` when the block itself makes `a` and
/// `b` one unknown value plus two constants (a pointer and the end of the
/// array it walks); returns how many.
pub fn decide_distances(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let mut decided = 0;
    for block in &mut residual.blocks {
        let Terminator::Branch {
            cc,
            taken,
            not_taken,
            origin,
        } = block.terminator
        else {
            continue;
        };
        if !matches!(cc, ConditionCode::e | ConditionCode::ne) {
            continue;
        }
        let fx: Vec<Effects> = block.items.iter().map(|i| calc.item(i, None)).collect();
        let Some(k) = fx.iter().rposition(|e| e.defs & ALL_FLAGS != 0) else {
            continue;
        };
        let Item::Instr(cmp, _) = &block.items[k] else {
            continue;
        };
        if !matches!(cmp.code(), Code::Cmp_rm32_r32 | Code::Cmp_r32_rm32)
            || cmp.op0_kind() != OpKind::Register
        {
            continue;
        }
        let s = run(&block.items[..k], &fx[..k]);
        let (Some(a), Some(b)) = (s.operand(cmp, 0), s.operand(cmp, 1)) else {
            continue;
        };
        if a.base != b.base {
            continue;
        }
        let equal = a.offset == b.offset;
        let holds = equal == (cc == ConditionCode::e);
        block.terminator = Terminator::Jump(if holds { taken } else { not_taken }, origin);
        decided += 1;
    }
    decided
}
