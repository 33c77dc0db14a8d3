//! Constant propagation over registers, across blocks, with the facts
//! branches establish and only along the edges that can be taken.
//!
//! Every register's bits are known or not ([`Known`]); an instruction whose
//! inputs are known is run on the semantics of `wiper-sem` ([`Evaluator`]);
//! a block starts with what all its reachable predecessors agree on, and
//! the edge of a `je` on a value tested against zero knows that value is
//! zero. With that:
//! - a read of a known register becomes an immediate (`add bl,cl` with `cl`
//!   known to be `0xff` becomes `add bl,0xff`), so the register's producer
//!   can die;
//! - an instruction whose result is known becomes `mov r,imm` when the
//!   flags it writes are dead, and goes when `r` already holds the value;
//! - a conditional branch whose flags are known becomes a jump.
//!
//! The residual of a loop whose body leaves a register at a known value
//! (an interpreter's tape cell cleared by an inner loop) enters every turn
//! with it known; folding that is what lets [`crate::counted`] close the
//! outer loop too.

use std::collections::HashMap;

use iced_x86::{
    Code, CodeSize, ConditionCode, FlowControl, Instruction, Mnemonic, OpAccess, OpKind, Register,
    RflagsBits,
};
use wiper_residual::{Item, Residual, Terminator};
use wiper_sem::wiper_qfbv::ExprPool;
use wiper_sem::{Flag, Lifted, MachineState};
use wiper_x86::reg::is_high_byte;
use wiper_x86::Reg;

use crate::effects::{flag_bits, info32, reg_bit, Effects, EffectsOf, Locs, ALL_FLAGS};
use crate::liveness::{block_index, liveness};

/// Known bits of the eight 32-bit registers: bit `i` of `value[r]` is
/// meaningful where bit `i` of `mask[r]` is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Known {
    value: [u32; 8],
    mask: [u32; 8],
}

/// Where a register lives in its 32-bit register: index, shift and width
/// mask (`ah` is bits 8..16 of `eax`).
fn place(reg: Register) -> Option<(usize, u32, u32)> {
    reg_bit(reg)?;
    let index = Reg::from_iced(reg)?.index();
    if reg.is_gpr32() {
        Some((index, 0, !0))
    } else if reg.is_gpr16() {
        Some((index, 0, 0xffff))
    } else if is_high_byte(reg) {
        Some((index, 8, 0xff))
    } else {
        Some((index, 0, 0xff))
    }
}

/// The width mask of a register operand.
pub(crate) fn width(reg: Register) -> u32 {
    place(reg).map_or(!0, |(_, _, m)| m)
}

impl Known {
    /// The value of `reg` when all its bits are known.
    pub fn get(&self, reg: Register) -> Option<u32> {
        let (i, shift, m) = place(reg)?;
        (self.mask[i] >> shift & m == m).then(|| self.value[i] >> shift & m)
    }

    /// Makes `reg` hold `value` (its other bits unchanged).
    pub fn set(&mut self, reg: Register, value: u32) {
        if let Some((i, shift, m)) = place(reg) {
            self.value[i] = self.value[i] & !(m << shift) | (value & m) << shift;
            self.mask[i] |= m << shift;
        }
    }

    /// Forgets every register in the location set `locs`.
    fn forget(&mut self, locs: u128) {
        for i in 0..8 {
            if locs & (1 << i) != 0 {
                self.mask[i] = 0;
                self.value[i] = 0;
            }
        }
    }

    /// What both `self` and `other` know alike.
    fn meet(&self, other: &Known) -> Known {
        let mut out = Known::default();
        for i in 0..8 {
            out.mask[i] = self.mask[i] & other.mask[i] & !(self.value[i] ^ other.value[i]);
            out.value[i] = self.value[i] & out.mask[i];
        }
        out
    }
}

/// Known status flags (auxiliary carry is never tracked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Flags {
    cf: Option<bool>,
    pf: Option<bool>,
    zf: Option<bool>,
    sf: Option<bool>,
    of: Option<bool>,
}

impl Flags {
    /// Whether `cc` holds, when the flags it reads are known.
    fn holds(&self, cc: ConditionCode) -> Option<bool> {
        use ConditionCode as C;
        let v = match cc {
            C::o | C::no => self.of?,
            C::b | C::ae => self.cf?,
            C::e | C::ne => self.zf?,
            C::be | C::a => self.cf? || self.zf?,
            C::s | C::ns => self.sf?,
            C::p | C::np => self.pf?,
            C::l | C::ge => self.sf? != self.of?,
            C::le | C::g => self.zf? || self.sf? != self.of?,
            C::None => return None,
        };
        let negated = matches!(
            cc,
            C::no | C::ae | C::ne | C::a | C::ns | C::np | C::ge | C::g
        );
        Some(v != negated)
    }
}

/// What evaluating an instruction over `known` gives: the registers it
/// writes with their values, and the flags it sets.
struct Outcome {
    dests: Vec<(Register, u32)>,
    flags: Flags,
}

/// Concrete evaluation of instructions whose inputs are known, by the
/// semantics of `wiper-sem` (the ones tested against the processor):
/// every register the instruction reads must be known in the width it
/// reads, it must read no flags and touch no memory.
pub struct Evaluator {
    pool: ExprPool,
    lifted: HashMap<Instruction, Option<Lifted>>,
}

impl Default for Evaluator {
    fn default() -> Self {
        Evaluator {
            pool: ExprPool::new(),
            lifted: HashMap::new(),
        }
    }
}

impl Evaluator {
    /// Evaluates `ins` over `known` (see the type's docs).
    fn evaluate(
        &mut self,
        calc: &mut EffectsOf,
        ins: &Instruction,
        known: &Known,
    ) -> Option<Outcome> {
        if ins.rflags_read() != 0 || ins.flow_control() != FlowControl::Next {
            return None;
        }
        let mut ins32 = *ins;
        ins32.set_code_size(CodeSize::Code32);
        let info = info32(calc.factory(), &ins32);
        if info
            .used_memory()
            .iter()
            .any(|m| m.access() != OpAccess::NoMemAccess)
        {
            return None;
        }
        // (iced reports `xor r,r` and `sub r,r` as writing `r` without
        // reading it, so zero idioms evaluate whatever `r` held.)
        let mut writes = Vec::new();
        for used in info.used_registers() {
            let r = used.register();
            if r.is_segment_register() {
                continue;
            }
            place(r)?;
            let reads = matches!(
                used.access(),
                OpAccess::Read | OpAccess::CondRead | OpAccess::ReadWrite
            );
            if reads && known.get(r).is_none() {
                return None;
            }
            match used.access() {
                OpAccess::Write | OpAccess::ReadWrite => writes.push(r),
                OpAccess::Read | OpAccess::CondRead => {}
                _ => return None,
            }
        }
        let lifted = match self.lifted.get(&ins32) {
            Some(l) => l.as_ref()?,
            None => {
                let l = wiper_sem::lift(&mut self.pool, &ins32).ok();
                self.lifted.entry(ins32).or_insert(l).as_ref()?
            }
        };
        let state = MachineState {
            regs: known.value,
            ..MachineState::default()
        };
        let out = wiper_sem::execute(&mut self.pool, lifted, &state).ok()?;
        let dests = writes
            .into_iter()
            .filter_map(|r| {
                let (i, shift, m) = place(r)?;
                Some((r, out.state.regs[i] >> shift & m))
            })
            .collect();
        // A shift by a zero count keeps the flags the state had, which
        // are not the ones `state` made up: no flag is known then.
        let modified = if crate::effects::may_keep_flags(ins) {
            0
        } else {
            ins.rflags_modified()
        };
        let flag = |f: Flag, bit: u32| {
            (modified & bit != 0 && !out.undefined.contains(&f)).then(|| out.state.flag(f))
        };
        let flags = Flags {
            cf: flag(Flag::Cf, RflagsBits::CF),
            pf: flag(Flag::Pf, RflagsBits::PF),
            zf: flag(Flag::Zf, RflagsBits::ZF),
            sf: flag(Flag::Sf, RflagsBits::SF),
            of: flag(Flag::Of, RflagsBits::OF),
        };
        Some(Outcome { dests, flags })
    }
}

/// Whether `cc` holds after `items` run from a state where only the
/// registers `start` are known (with those values), by the same concrete
/// evaluation as the propagation; `None` when the flags `cc` reads are not
/// known then.
pub(crate) fn holds_after(
    calc: &mut EffectsOf,
    items: &[Item],
    start: &[(Register, u32)],
    cc: ConditionCode,
) -> Option<bool> {
    let mut eval = Evaluator::default();
    let mut known = Known::default();
    for &(r, v) in start {
        known.set(r, v);
    }
    let mut flags = None;
    for item in items {
        let fx = calc.item(item, None);
        if let Some(f) = transfer(&mut eval, calc, item, &fx, &mut known) {
            flags = Some(f);
        }
    }
    flags?.holds(cc)
}

/// What the item with effects `fx` does to `known`; returns the flags it
/// sets when it writes flags.
fn transfer(
    eval: &mut Evaluator,
    calc: &mut EffectsOf,
    item: &Item,
    fx: &Effects,
    known: &mut Known,
) -> Option<Flags> {
    if fx.leaves || fx.uses == !0 {
        *known = Known::default();
        return None;
    }
    let outcome = match item {
        Item::Instr(ins, _) if !fx.side_effect => eval.evaluate(calc, ins, known),
        _ => None,
    };
    let writes_flags = fx.defs & ALL_FLAGS != 0;
    match outcome {
        Some(Outcome { dests, flags }) => {
            for (reg, v) in dests {
                known.set(reg, v);
            }
            writes_flags.then_some(flags)
        }
        None => {
            known.forget(fx.defs);
            writes_flags.then(Flags::default)
        }
    }
}

/// The register a `je` taken (ZF set) after `ins` shows to be zero, with
/// the value it has then: `test r,r` and arithmetic on `r` make it 0,
/// `cmp r,imm` makes it `imm`.
pub(crate) fn equal_when_zero(ins: &Instruction) -> Option<(Register, u32)> {
    use Mnemonic as M;
    if ins.op_count() == 0 || ins.op0_kind() != OpKind::Register {
        return None;
    }
    let r = ins.op0_register();
    match ins.mnemonic() {
        M::Test if ins.op1_kind() == OpKind::Register && ins.op1_register() == r => Some((r, 0)),
        M::Cmp if ins.op1_kind() != OpKind::Register && ins.op1_kind() != OpKind::Memory => {
            Some((r, ins.immediate(1) as u32 & width(r)))
        }
        M::Add | M::Sub | M::And | M::Or | M::Xor | M::Inc | M::Dec | M::Neg => Some((r, 0)),
        _ => None,
    }
}

/// Runs `block`'s items over `known` (its state at entry); returns the
/// flags of the last flag writer and, if the block ends in a `je`/`jne`,
/// the register value the ZF-set edge establishes.
fn run_block(
    eval: &mut Evaluator,
    calc: &mut EffectsOf,
    items: &[Item],
    fx: &[Effects],
    known: &mut Known,
) -> (Option<Flags>, Option<(Register, u32)>) {
    let mut flags = None;
    let mut fact = None;
    for (item, e) in items.iter().zip(fx) {
        if let Some(f) = transfer(eval, calc, item, e, known) {
            flags = Some(f);
            fact = match item {
                Item::Instr(ins, _) => equal_when_zero(ins),
                _ => None,
            };
        } else if let Some((r, _)) = fact {
            if reg_bit(r).is_some_and(|b| e.defs & b != 0) {
                fact = None;
            }
        }
    }
    (flags, fact)
}

/// The known state at the start of each block (`None`: not reachable).
fn solve(
    eval: &mut Evaluator,
    calc: &mut EffectsOf,
    residual: &Residual,
    fx: &[Vec<Effects>],
) -> Vec<Option<Known>> {
    let index = block_index(residual);
    let n = residual.blocks.len();
    let mut state: Vec<Option<Known>> = vec![None; n];
    let Some(&entry) = residual.entry.and_then(|l| index.get(&l)) else {
        return state;
    };
    state[entry] = Some(Known::default());
    let mut work = vec![entry];
    let mut steps = 0;
    while let Some(b) = work.pop() {
        steps += 1;
        if steps > 64 * n + 64 {
            return vec![None; n]; // did not settle: claim nothing
        }
        let Some(mut known) = state[b] else { continue };
        let block = &residual.blocks[b];
        let (flags, fact) = run_block(eval, calc, &block.items, &fx[b], &mut known);
        let mut edges: Vec<(usize, Known)> = Vec::new();
        match block.terminator {
            Terminator::Exit => {}
            Terminator::Jump(l, _) => edges.extend(index.get(&l).map(|&s| (s, known))),
            Terminator::Branch {
                cc,
                taken,
                not_taken,
                ..
            } => {
                let decided = flags.and_then(|f| f.holds(cc));
                for (label, holds) in [(taken, true), (not_taken, false)] {
                    if decided.is_some_and(|d| d != holds) {
                        continue;
                    }
                    let mut k = known;
                    // Along this edge ZF is set iff (cc == e) == holds.
                    let zero = match cc {
                        ConditionCode::e => holds,
                        ConditionCode::ne => !holds,
                        _ => false,
                    };
                    if let (true, Some((r, v))) = (zero, fact) {
                        k.set(r, v);
                    }
                    edges.extend(index.get(&label).map(|&s| (s, k)));
                }
            }
        }
        for (s, k) in edges {
            let new = match state[s] {
                None => k,
                Some(old) => old.meet(&k),
            };
            if state[s] != Some(new) {
                state[s] = Some(new);
                work.push(s);
            }
        }
    }
    state
}

/// The immediate form of a register-source instruction, for sources known
/// to hold `v`: `OP r, src` becomes `OP r, imm`. (A move from a known
/// register has a known result: [`propagate`] writes it as `mov r, imm`
/// before it asks for this.)
fn with_immediate(ins: &Instruction, v: u32) -> Option<Instruction> {
    use Code as C;
    if ins.op_count() != 2
        || ins.op0_kind() != OpKind::Register
        || ins.op1_kind() != OpKind::Register
    {
        return None;
    }
    let dst = ins.op0_register();
    let code = match (ins.mnemonic(), dst.is_gpr8(), dst.is_gpr32()) {
        (m, true, _) => match m {
            Mnemonic::Add => C::Add_rm8_imm8,
            Mnemonic::Sub => C::Sub_rm8_imm8,
            Mnemonic::And => C::And_rm8_imm8,
            Mnemonic::Or => C::Or_rm8_imm8,
            Mnemonic::Xor => C::Xor_rm8_imm8,
            Mnemonic::Cmp => C::Cmp_rm8_imm8,
            Mnemonic::Test => C::Test_rm8_imm8,
            _ => return None,
        },
        (m, _, true) => {
            let short = i8::try_from(v as i32).is_ok();
            match (m, short) {
                (Mnemonic::Add, true) => C::Add_rm32_imm8,
                (Mnemonic::Add, false) => C::Add_rm32_imm32,
                (Mnemonic::Sub, true) => C::Sub_rm32_imm8,
                (Mnemonic::Sub, false) => C::Sub_rm32_imm32,
                (Mnemonic::And, true) => C::And_rm32_imm8,
                (Mnemonic::And, false) => C::And_rm32_imm32,
                (Mnemonic::Or, true) => C::Or_rm32_imm8,
                (Mnemonic::Or, false) => C::Or_rm32_imm32,
                (Mnemonic::Xor, true) => C::Xor_rm32_imm8,
                (Mnemonic::Xor, false) => C::Xor_rm32_imm32,
                (Mnemonic::Cmp, true) => C::Cmp_rm32_imm8,
                (Mnemonic::Cmp, false) => C::Cmp_rm32_imm32,
                (Mnemonic::Test, _) => C::Test_rm32_imm32,
                _ => return None,
            }
        }
        _ => return None,
    };
    if dst == ins.op1_register() {
        return None; // `xor r,r` and friends read the destination itself
    }
    // The imm8 forms of 8-bit operations take the byte itself; the 32-bit
    // ones sign-extend it.
    let imm = if dst.is_gpr8() {
        v as u8 as i8 as i32
    } else {
        v as i32
    };
    Instruction::with2(code, dst, imm).ok()
}

/// `cmp k, r` or `test k, r` whose first register `k` is known: `cmp r, imm`
/// (`test r, imm`). `test` is symmetric in every flag; `cmp` computes
/// `r - k` instead of `k - r`, which keeps only ZF, so it is swapped only
/// when `live_flags` (those read afterwards) are at most ZF.
fn swapped_immediate(ins: &Instruction, known: &Known, live_flags: Locs) -> Option<Instruction> {
    if ins.op0_kind() != OpKind::Register {
        return None;
    }
    let v = known.get(ins.op0_register())?;
    let keeps_flags = match ins.mnemonic() {
        Mnemonic::Test => true,
        Mnemonic::Cmp => live_flags & !flag_bits(RflagsBits::ZF) == 0,
        _ => false,
    };
    if !keeps_flags {
        return None;
    }
    let mut swapped = *ins;
    swapped.set_op0_register(ins.op1_register());
    swapped.set_op1_register(ins.op0_register());
    with_immediate(&swapped, v)
}

/// `mov reg, v`.
fn move_immediate(reg: Register, v: u32) -> Option<Instruction> {
    let code = if reg.is_gpr8() {
        Code::Mov_r8_imm8
    } else if reg.is_gpr32() {
        Code::Mov_r32_imm32
    } else {
        return None;
    };
    let imm = if reg.is_gpr8() {
        v as u8 as i8 as i32
    } else {
        v as i32
    };
    Instruction::with2(code, reg, imm).ok()
}

/// Whether `ins` is already as simple as a known result gets: a move of an
/// immediate, or a zero idiom.
fn is_simplest(ins: &Instruction) -> bool {
    matches!(ins.code(), Code::Mov_r8_imm8 | Code::Mov_r32_imm32)
        || matches!(ins.mnemonic(), Mnemonic::Xor | Mnemonic::Sub)
            && ins.op1_kind() == OpKind::Register
            && ins.op1_register() == ins.op0_register()
}

/// Propagates constants and folds what they decide (see the module docs);
/// returns how many items and branches changed.
pub fn propagate(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let fx = calc.residual(residual);
    let mut eval = Evaluator::default();
    let state = solve(&mut eval, calc, residual, &fx);
    let live = liveness(residual, &fx);
    let mut changed = 0;
    for (b, block) in residual.blocks.iter_mut().enumerate() {
        let Some(mut known) = state[b] else { continue };
        let items = std::mem::take(&mut block.items);
        let mut keep = Vec::with_capacity(items.len());
        let mut flags = None;
        for (k, item) in items.into_iter().enumerate() {
            let e = fx[b][k];
            let before = known;
            if let Some(f) = transfer(&mut eval, calc, &item, &e, &mut known) {
                flags = Some(f);
            }
            let Item::Instr(ins, origin) = item else {
                keep.push(item);
                continue;
            };
            let flags_dead = e.defs & ALL_FLAGS & live.live_out[b][k] == 0;
            let only_dest = ins.op_count() > 0
                && ins.op0_kind() == OpKind::Register
                && reg_bit(ins.op0_register()).is_some_and(|d| e.defs & !ALL_FLAGS == d);
            if !e.side_effect && flags_dead && only_dest {
                let dst = ins.op0_register();
                if let Some(v) = known.get(dst) {
                    if before.get(dst) == Some(v) {
                        changed += 1; // the register already holds it
                        continue;
                    }
                    if !is_simplest(&ins) {
                        if let Some(mov) = move_immediate(dst, v) {
                            keep.push(Item::Instr(mov, origin));
                            changed += 1;
                            continue;
                        }
                    }
                }
            }
            if !e.side_effect && ins.op_count() == 2 && ins.op1_kind() == OpKind::Register {
                let live_flags = e.defs & ALL_FLAGS & live.live_out[b][k];
                let new = match before.get(ins.op1_register()) {
                    Some(v) => with_immediate(&ins, v),
                    None => swapped_immediate(&ins, &before, live_flags),
                };
                if let Some(new) = new {
                    keep.push(Item::Instr(new, origin));
                    changed += 1;
                    continue;
                }
            }
            keep.push(Item::Instr(ins, origin));
        }
        block.items = keep;
        if let Terminator::Branch {
            cc,
            taken,
            not_taken,
            origin,
        } = block.terminator
        {
            if let Some(holds) = flags.and_then(|f| f.holds(cc)) {
                block.terminator = Terminator::Jump(if holds { taken } else { not_taken }, origin);
                changed += 1;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_registers_share_their_dword() {
        let mut k = Known::default();
        k.set(Register::CL, 0xff);
        assert_eq!(k.get(Register::CL), Some(0xff));
        assert_eq!(k.get(Register::ECX), None);
        k.set(Register::CH, 0x12);
        assert_eq!(k.get(Register::CX), Some(0x12ff));
        let mut other = k;
        other.set(Register::CH, 0x13);
        let met = k.meet(&other);
        assert_eq!(met.get(Register::CL), Some(0xff));
        assert_eq!(met.get(Register::CH), None);
    }

    #[test]
    fn compares_decide_signed_and_unsigned_conditions() {
        let mut k = Known::default();
        k.set(Register::EAX, 5);
        let cmp = Instruction::with2(Code::Cmp_rm32_imm8, Register::EAX, 7).unwrap();
        let (mut eval, mut calc) = (Evaluator::default(), EffectsOf::new());
        let f = eval.evaluate(&mut calc, &cmp, &k).unwrap().flags;
        assert_eq!(f.holds(ConditionCode::b), Some(true));
        assert_eq!(f.holds(ConditionCode::l), Some(true));
        assert_eq!(f.holds(ConditionCode::e), Some(false));
        assert_eq!(f.holds(ConditionCode::g), Some(false));
        k.set(Register::AL, 0x80);
        let dec = Instruction::with1(Code::Dec_rm8, Register::AL).unwrap();
        let o = eval.evaluate(&mut calc, &dec, &k).unwrap();
        assert_eq!(o.dests, vec![(Register::AL, 0x7f)]);
        assert_eq!(o.flags.holds(ConditionCode::o), Some(true));
        assert_eq!(o.flags.holds(ConditionCode::b), None, "dec keeps CF");
    }

    #[test]
    fn only_known_inputs_are_evaluated() {
        let (mut eval, mut calc) = (Evaluator::default(), EffectsOf::new());
        let mut k = Known::default();
        k.set(Register::CL, 3);
        let add = Instruction::with2(Code::Add_r8_rm8, Register::CL, Register::DL).unwrap();
        assert!(
            eval.evaluate(&mut calc, &add, &k).is_none(),
            "dl is unknown"
        );
        k.set(Register::DL, 4);
        let o = eval.evaluate(&mut calc, &add, &k).unwrap();
        assert_eq!(o.dests, vec![(Register::CL, 7)]);
        assert_eq!(
            o.flags.holds(ConditionCode::p),
            Some(false),
            "7 has odd parity"
        );
        let zero = Instruction::with2(Code::Xor_r32_rm32, Register::EBX, Register::EBX).unwrap();
        let o = eval.evaluate(&mut calc, &zero, &Known::default()).unwrap();
        assert_eq!(o.dests, vec![(Register::EBX, 0)]);
        assert_eq!(o.flags.holds(ConditionCode::e), Some(true));
    }
}

#[cfg(test)]
mod rewrite_tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode as Cc;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, function, residual, two_way};

    /// What `je` taken after an instruction shows: `test r,r`, arithmetic
    /// on `r` and `cmp r,imm` (the immediate at `r`'s width); near misses:
    /// a test of two registers, a move, a compare with a register.
    #[test]
    fn a_taken_je_shows_a_register_value() {
        use iced_x86::Register as R;
        let cases = [
            (asm(|a| a.test(eax, eax)), Some((R::EAX, 0))),
            (asm(|a| a.add(eax, ecx)), Some((R::EAX, 0))),
            (asm(|a| a.sub(ebx, 3)), Some((R::EBX, 0))),
            (asm(|a| a.and(dl, 1)), Some((R::DL, 0))),
            (asm(|a| a.dec(esi)), Some((R::ESI, 0))),
            (asm(|a| a.neg(ecx)), Some((R::ECX, 0))),
            (asm(|a| a.cmp(eax, 5)), Some((R::EAX, 5))),
            (asm(|a| a.cmp(al, -1)), Some((R::AL, 0xff))),
            (asm(|a| a.test(eax, ecx)), None),
            (asm(|a| a.mov(eax, 0)), None),
            (asm(|a| a.cmp(eax, ecx)), None),
        ];
        for (ins, want) in cases {
            assert_eq!(super::equal_when_zero(&ins[0]), want, "{}", ins[0]);
        }
    }

    /// Every operation with a known register source has its immediate
    /// form, in bytes and dwords, short and long: it computes the same on
    /// the processor's terms (the same mnemonic, destination and value).
    #[test]
    fn every_operation_has_its_immediate_form() {
        use iced_x86::{Code as C, Instruction, Register as R};
        // (dword form, byte form) of each register-source operation.
        let forms = [
            (C::Add_rm32_r32, C::Add_rm8_r8),
            (C::Sub_rm32_r32, C::Sub_rm8_r8),
            (C::And_rm32_r32, C::And_rm8_r8),
            (C::Or_rm32_r32, C::Or_rm8_r8),
            (C::Xor_rm32_r32, C::Xor_rm8_r8),
            (C::Cmp_rm32_r32, C::Cmp_rm8_r8),
            (C::Test_rm32_r32, C::Test_rm8_r8),
        ];
        for (dword, byte) in forms {
            for (code, dst, src) in [(dword, R::EAX, R::ECX), (byte, R::BL, R::DL)] {
                let ins = Instruction::with2(code, dst, src).expect("a register form");
                for v in [5u32, 0xfffffff0, 0x12345] {
                    let got = super::with_immediate(&ins, v)
                        .unwrap_or_else(|| panic!("{ins} with {v:#x}"));
                    let imm = got.immediate(1) as u32 & super::width(dst);
                    assert_eq!(
                        (got.mnemonic(), got.op0_register(), imm),
                        (ins.mnemonic(), dst, v & super::width(dst)),
                        "{ins} with {v:#x}: {got}"
                    );
                }
            }
        }
    }

    /// A known `ecx` becomes an immediate; `add ecx,1` with dead flags
    /// becomes `mov ecx,6`.
    #[test]
    fn known_registers_become_immediates() {
        let f = function(|a| {
            a.mov(ecx, 5)?;
            a.add(eax, ecx)?;
            a.add(ecx, 1)?;
            a.mov(edx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::propagate), @"
        L0:
          mov ecx,5
          add eax,5
          mov ecx,6
          mov edx,6
          ret
          exit
        ");
    }

    /// Known results of register arithmetic that is no zero idiom (`sub`
    /// of another register, `add` of the register to itself) become moves.
    #[test]
    fn known_register_arithmetic_becomes_a_move() {
        let f = function(|a| {
            a.mov(eax, 3)?;
            a.mov(ecx, 1)?;
            a.sub(eax, ecx)?;
            a.add(eax, eax)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::propagate), @"
        L0:
          mov eax,3
          mov ecx,1
          mov eax,2
          mov eax,4
          ret
          exit
        ");
    }

    /// Byte registers known from their dword become immediates too: the
    /// byte move and the byte arithmetic take `cl`'s value, the last move
    /// `ch`'s.
    #[test]
    fn known_byte_registers_become_immediates() {
        let f = function(|a| {
            a.mov(ecx, 0x1234)?;
            a.mov(bl, cl)?;
            a.add(dl, cl)?;
            a.mov(al, ch)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::propagate), @"
        L0:
          mov ecx,1234h
          mov bl,34h
          add dl,34h
          mov al,12h
          ret
          exit
        ");
    }

    /// `xor ecx,ecx` makes `ecx` zero whatever it held; near miss: `xor
    /// edx,ebx` of a known `edx` and an unknown `ebx` is unknown.
    #[test]
    fn a_zero_idiom_is_known_and_a_xor_of_another_register_is_not() {
        let f = function(|a| {
            a.xor(ecx, ecx)?;
            a.add(eax, ecx)?;
            a.mov(edx, 5)?;
            a.xor(edx, ebx)?;
            a.add(eax, edx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::propagate), @"
        L0:
          xor ecx,ecx
          add eax,0
          mov edx,5
          xor edx,ebx
          add eax,edx
          ret
          exit
        ");
    }

    /// Near misses: `adc` reads the carry of `add ecx,1` (the `add`
    /// stays an `add`), and `mov cl,bl` makes part of `ecx` unknown.
    #[test]
    fn read_flags_and_unknown_parts_keep_the_code() {
        let f = function(|a| {
            a.mov(ecx, 5)?;
            a.add(ecx, 1)?;
            a.adc(edx, 0)?;
            a.mov(cl, bl)?;
            a.add(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::propagate), @"
        L0:
          mov ecx,5
          add ecx,1
          adc edx,0
          mov cl,bl
          add eax,ecx
          ret
          exit
        ");
    }

    /// The equality survives writes of other registers between the
    /// compare and the branch, and not a write of the compared register
    /// (`mov cl,1` leaves `ecx` unknown).
    #[test]
    fn an_equality_outlives_writes_of_other_registers_only() {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        let with_between = |between: Vec<iced_x86::Instruction>| {
            let mut first = asm(|a| a.cmp(ecx, 3));
            first.extend(between);
            let r = residual(vec![
                block(0, first, branch(Cc::e, 1, 2)),
                block(1, asm(|a| a.add(eax, ecx)), crate::testutil::jump(2)),
                ret(2),
            ]);
            after(r, super::propagate)
        };
        let other = with_between(asm(|a| a.mov(edx, 1)));
        assert!(other.contains("add eax,3"), "{other}");
        let same = with_between(asm(|a| a.mov(cl, 1)));
        assert!(same.contains("add eax,ecx"), "{same}");
    }

    /// `cmp ecx,3; je` shows `ecx` is 3 along the taken edge only: L1's
    /// read of it folds, L2's (the `jne` side) does not.
    #[test]
    fn an_equality_is_known_along_its_edge_only() {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        let r = residual(vec![
            block(0, asm(|a| a.cmp(ecx, 3)), branch(Cc::e, 1, 2)),
            block(1, asm(|a| a.add(eax, ecx)), crate::testutil::jump(3)),
            block(2, asm(|a| a.add(eax, ecx)), crate::testutil::jump(3)),
            ret(3),
        ]);
        insta::assert_snapshot!(after(r, super::propagate), @"
        L0:
          cmp ecx,3
          je L1 else L2
        L1:
          add eax,3
          jmp L3
        L2:
          add eax,ecx
          jmp L3
        L3:
          ret
          exit
        ");
    }

    /// A known first operand of a compare whose ZF alone is read swaps
    /// places with the other (`r - k` and `k - r` agree on ZF only); `test`
    /// is symmetric in every flag. Near miss: `jb` reads CF, which the swap
    /// would invert, so that `cmp` stays.
    #[test]
    fn a_known_first_operand_of_a_compare_becomes_an_immediate() {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.mov(ecx, 0x61)?;
                    a.cmp(cl, al)
                }),
                branch(Cc::e, 1, 2),
            ),
            block(
                1,
                asm(|a| {
                    a.mov(edx, 8)?;
                    a.test(edx, ebx)
                }),
                branch(Cc::l, 2, 3),
            ),
            block(
                2,
                asm(|a| {
                    a.mov(ecx, 7)?;
                    a.cmp(ecx, eax)
                }),
                branch(Cc::b, 3, 4),
            ),
            ret(3),
            ret(4),
        ]);
        insta::assert_snapshot!(after(r, super::propagate), @"
        L0:
          mov ecx,61h
          cmp al,61h
          je L1 else L2
        L1:
          mov edx,8
          test ebx,8
          jl L2 else L3
        L2:
          mov ecx,7
          cmp ecx,eax
          jb L3 else L4
        L3:
          ret
          exit
        L4:
          ret
          exit
        ");
    }

    /// `or ecx,1` leaves `ecx` at 5, which it already holds: it goes (its
    /// flags are dead).
    #[test]
    fn a_write_of_the_value_a_register_holds_goes() {
        let f = function(|a| {
            a.mov(ecx, 5)?;
            a.or(ecx, 1)?;
            a.add(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::propagate), @"
        L0:
          mov ecx,5
          add eax,5
          ret
          exit
        ");
    }

    /// Near miss: `adc` reads the carry `or` clears, so the `or` stays.
    #[test]
    fn a_write_of_the_held_value_whose_flags_are_read_stays() {
        let f = function(|a| {
            a.mov(ecx, 5)?;
            a.or(ecx, 1)?;
            a.adc(eax, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::propagate), @"
        L0:
          mov ecx,5
          or ecx,1
          adc eax,0
          ret
          exit
        ");
    }

    /// `ecx` is 5 when it is compared with 5: `je` always jumps.
    #[test]
    fn a_branch_on_known_flags_becomes_a_jump() {
        let r = two_way(
            asm(|a| {
                a.mov(ecx, 5)?;
                a.cmp(ecx, 5)
            }),
            Cc::e,
        );
        insta::assert_snapshot!(after(r, super::propagate), @"
        L0:
          mov ecx,5
          cmp ecx,5
          jmp L1
        L1:
          ret
          exit
        L2:
          ret
          exit
        ");
    }

    /// Near miss: `ecx` comes from memory, so the compare is not known.
    #[test]
    fn a_branch_on_unknown_flags_stays() {
        let r = two_way(
            asm(|a| {
                a.mov(ecx, dword_ptr(esi))?;
                a.cmp(ecx, 5)
            }),
            Cc::e,
        );
        insta::assert_snapshot!(after(r, super::propagate), @"
        L0:
          mov ecx,[esi]
          cmp ecx,5
          je L1 else L2
        L1:
          ret
          exit
        L2:
          ret
          exit
        ");
    }

    /// L0 -> L1 or L2 -> L3, each side setting `ecx` to `second` (L1 to 1):
    /// L3 knows `ecx` only when they agree.
    fn join(second: u32) -> wiper_residual::Residual {
        residual(vec![
            block(0, asm(|a| a.test(eax, eax)), branch(Cc::e, 1, 2)),
            block(1, asm(|a| a.mov(ecx, 1)), crate::testutil::jump(3)),
            block(2, asm(|a| a.mov(ecx, second)), crate::testutil::jump(3)),
            block(
                3,
                asm(|a| {
                    a.add(eax, ecx)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ])
    }

    /// Both ways into L3 set `ecx` to 1: its read folds.
    #[test]
    fn a_value_all_predecessors_agree_on_is_known() {
        insta::assert_snapshot!(after(join(1), super::propagate), @"
        L0:
          test eax,eax
          je L1 else L2
        L1:
          mov ecx,1
          jmp L3
        L2:
          mov ecx,1
          jmp L3
        L3:
          add eax,1
          ret
          exit
        ");
    }

    /// Near miss: one way sets `ecx` to 2.
    #[test]
    fn a_value_predecessors_disagree_on_is_unknown() {
        insta::assert_snapshot!(after(join(2), super::propagate), @"
        L0:
          test eax,eax
          je L1 else L2
        L1:
          mov ecx,1
          jmp L3
        L2:
          mov ecx,2
          jmp L3
        L3:
          add eax,ecx
          ret
          exit
        ");
    }

    /// The removal of a write of the value its register already holds
    /// counts as a change (the fold loop repeats while constants change the
    /// code): `or ecx,1` after `mov ecx,5` is the only one here.
    #[test]
    fn the_write_of_a_held_value_counts_as_a_change() {
        let mut r = function(|a| {
            a.mov(ecx, 5)?;
            a.or(ecx, 1)?;
            a.ret()
        });
        let mut calc = crate::effects::EffectsOf::for_residual(&r);
        assert_eq!(super::propagate(&mut r, &mut calc), 1);
        let listing = crate::testutil::listing(&r);
        assert!(!listing.contains("or ecx"), "{listing}");
    }
}
