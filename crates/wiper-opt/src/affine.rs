//! Block-local affine value numbering: recomputations go, and sums,
//! scalings and offsets of one value are computed the cheapest way.
//!
//! Within a block every 32-bit register holds an [`Affine`] form
//! `scale * value + offset` (modulo 2^32) of an opaque [`Value`]: the value a
//! register holds when the block starts, a load, or the result of an
//! instruction the pass does not interpret. It interprets `mov`, `add`,
//! `sub`, `lea`, `inc`, `dec`, `neg`, `shl` by a constant, `imul` by a
//! constant and `xor r,r`; anything else that writes a register, and any 8-
//! or 16-bit write, gives the register a fresh value.
//!
//! Two rewrites, exact on the flags (an instruction that writes flags is
//! only removed, and flag-writing code only added, where they are dead):
//! 1. **Recomputations** (`recomputations`): writes to a register that leave
//!    it holding the form it held before them, whose intermediate values
//!    nothing else reads, go (`mov edx,ecx; add edx,3` while `edx` already
//!    holds `ecx+3`).
//! 2. **Strength reduction** (`best_rewrite`, repeated): an item is replaced
//!    by code that computes the same from other registers, when that leaves
//!    fewer items alive in the block (or as many, in fewer bytes) and reads
//!    no register at the block's start that was not read before. A write
//!    whose form is an affine form of a value some register (the written one
//!    included) holds before it becomes the cheapest `mov`, `lea`, `add`,
//!    `shl` or `imul` from that register, or `mov r,imm` for a constant
//!    (`lea eax,[edx+2]; mov ecx,eax; add ecx,eax; ...; mov eax,ecx` becomes
//!    `lea eax,[edx*8+16]`); a memory operand whose base or index holds
//!    another register's value plus a constant reads that register with the
//!    constant in its displacement (`lea eax,[edx+4]; add ecx,[eax]` becomes
//!    `add ecx,[edx+4]`). Dead-code elimination then removes what only
//!    computed the old values.
//!
//! Replacements are new instructions with their own encodings, and only
//! memory operands (never fixed by an encoding) of existing ones are
//! rewritten, so no register of a fixed-register encoding is renamed.

use iced_x86::{Code, Encoder, Instruction, Mnemonic, OpKind, Register};
use wiper_residual::{Item, Residual};
use wiper_sem::wiper_qfbv::bv;
use wiper_x86::Reg;

use crate::build::{add_imm as add, checked as instruction, lea, mov};
use crate::effects::{
    displacement_size, memory_operand, reg_of_bit, Effects, EffectsOf, Locs, ALL_FLAGS, ALL_REGS,
};
use crate::liveness::{block_live_out, liveness};
use crate::promote::bits;

/// Blocks with more items are left alone (the search is quadratic).
const MAX_ITEMS: usize = 1024;
/// Rewrites of one block per call (each replaces one item).
const MAX_ROUNDS: usize = 64;

/// An opaque value of a block's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Value(pub u32);

/// `scale * value + offset` modulo 2^32; a constant when `value` is `None`
/// (and then `scale` is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Affine {
    /// The multiplier of `value`.
    pub scale: u32,
    /// The opaque value, `None` for a constant.
    pub value: Option<Value>,
    /// The constant added.
    pub offset: u32,
}

impl Affine {
    /// The constant `c`.
    pub fn constant(c: u32) -> Self {
        Affine {
            scale: 0,
            value: None,
            offset: c,
        }
    }

    /// The value `v` itself.
    pub fn of(v: Value) -> Self {
        Affine {
            scale: 1,
            value: Some(v),
            offset: 0,
        }
    }

    /// `scale * value + offset`, a constant when the scale wraps to 0.
    fn new(scale: u32, value: Option<Value>, offset: u32) -> Self {
        match value {
            Some(_) if scale != 0 => Affine {
                scale,
                value,
                offset,
            },
            _ => Affine::constant(offset),
        }
    }

    /// The constant, if the form is one.
    pub fn as_constant(self) -> Option<u32> {
        self.value.is_none().then_some(self.offset)
    }

    /// `self + other`, if it is affine (both forms of the same value, or
    /// one of them constant).
    pub fn checked_add(self, other: Affine) -> Option<Affine> {
        let value = match (self.value, other.value) {
            (Some(a), Some(b)) if a != b => return None,
            (a, b) => a.or(b),
        };
        Some(Affine::new(
            self.scale.wrapping_add(other.scale),
            value,
            self.offset.wrapping_add(other.offset),
        ))
    }

    /// `self - other`, if it is affine.
    pub fn checked_sub(self, other: Affine) -> Option<Affine> {
        self.checked_add(other.scaled(u32::MAX))
    }

    /// `k * self`.
    pub fn scaled(self, k: u32) -> Affine {
        Affine::new(
            self.scale.wrapping_mul(k),
            self.value,
            self.offset.wrapping_mul(k),
        )
    }

    /// `self + k`.
    pub fn offset_by(self, k: u32) -> Affine {
        Affine {
            offset: self.offset.wrapping_add(k),
            ..self
        }
    }

    /// `self * other`, if one of them is a constant.
    pub fn checked_mul(self, other: Affine) -> Option<Affine> {
        match (self.as_constant(), other.as_constant()) {
            (Some(k), _) => Some(other.scaled(k)),
            (_, Some(k)) => Some(self.scaled(k)),
            _ => None,
        }
    }

    /// `(m, b)` with `self == m * source + b`, when `source` is a
    /// non-constant form of the same value and such an `m` is found (the
    /// source's scale is odd, or divides the wanted scale).
    pub fn in_terms_of(self, source: Affine) -> Option<(u32, u32)> {
        if self.value.is_none() || self.value != source.value {
            return None;
        }
        let c = source.scale;
        let m = match bv::inverse32(c) {
            Some(inv) => self.scale.wrapping_mul(inv),
            None if self.scale % c == 0 => self.scale / c,
            None => return None,
        };
        Some((m, self.offset.wrapping_sub(m.wrapping_mul(source.offset))))
    }
}

/// The register index (0..8, as in [`crate::effects`]) of a 32-bit
/// general-purpose register other than `esp`.
fn index(reg: Register) -> Option<usize> {
    Reg::from_iced(reg)
        .filter(|&r| reg.is_gpr32() && r != Reg::Esp)
        .map(Reg::index)
}

/// The forms of the registers at one point of a block.
#[derive(Clone, Debug)]
pub struct Forms {
    /// Per register index (`esp`'s entry unused).
    pub regs: [Affine; 8],
    /// The next fresh value.
    next: u32,
}

impl Default for Forms {
    fn default() -> Self {
        Self::at_entry()
    }
}

impl Forms {
    /// At the start of a block: each register holds its own entry value.
    pub fn at_entry() -> Self {
        Forms {
            regs: std::array::from_fn(|i| Affine::of(Value(i as u32))),
            next: 8,
        }
    }

    /// A value not seen before.
    fn fresh(&mut self) -> Affine {
        self.next += 1;
        Affine::of(Value(self.next - 1))
    }

    /// The form of operand `k` of `ins`: a 32-bit register or an immediate.
    pub fn operand(&self, ins: &Instruction, k: u32) -> Option<Affine> {
        match ins.op_kind(k) {
            OpKind::Register => index(ins.op_register(k)).map(|i| self.regs[i]),
            OpKind::Immediate8 | OpKind::Immediate8to32 | OpKind::Immediate32 => {
                Some(Affine::constant(ins.immediate(k) as u32))
            }
            _ => None,
        }
    }

    /// The form of the address of `ins`'s memory operand (32-bit
    /// addressing, no `esp`).
    fn address(&self, ins: &Instruction) -> Option<Affine> {
        let part = |reg: Register| match reg {
            Register::None => Some(Affine::constant(0)),
            r => index(r).map(|i| self.regs[i]),
        };
        let base = part(ins.memory_base())?;
        let scaled = part(ins.memory_index())?.scaled(ins.memory_index_scale());
        Some(
            base.checked_add(scaled)?
                .offset_by(ins.memory_displacement32()),
        )
    }

    /// The register `ins` writes (its first operand, a whole 32-bit
    /// register) and the form it leaves there, if the pass interprets `ins`.
    pub fn interpret(&self, ins: &Instruction) -> Option<(usize, Affine)> {
        use Mnemonic as M;
        if ins.op_count() == 0 || ins.op0_kind() != OpKind::Register {
            return None;
        }
        let dst = index(ins.op0_register())?;
        let x = |k| self.operand(ins, k);
        let form = match (ins.mnemonic(), ins.op_count()) {
            (M::Mov, 2) => x(1)?,
            (M::Add, 2) => x(0)?.checked_add(x(1)?)?,
            (M::Sub, 2) => x(0)?.checked_sub(x(1)?)?,
            (M::Xor, 2)
                if ins.op1_kind() == OpKind::Register
                    && ins.op1_register() == ins.op0_register() =>
            {
                Affine::constant(0)
            }
            (M::Inc, 1) => x(0)?.offset_by(1),
            (M::Dec, 1) => x(0)?.offset_by(u32::MAX),
            (M::Neg, 1) => x(0)?.scaled(u32::MAX),
            (M::Shl | M::Sal, 2) => x(0)?.scaled(1 << (x(1)?.as_constant()? & 31)),
            (M::Imul, 2) => x(0)?.checked_mul(x(1)?)?,
            (M::Imul, 3) => x(1)?.scaled(x(2)?.as_constant()?),
            (M::Lea, 2) => self.address(ins)?,
            _ => return None,
        };
        Some((dst, form))
    }

    /// The register `item` (with effects `fx`) writes and its form there,
    /// when it is an interpreted instruction that writes no other register.
    pub fn interpret_item(&self, item: &Item, fx: &Effects) -> Option<(usize, Affine)> {
        let Item::Instr(ins, _) = item else {
            return None;
        };
        self.interpret(ins)
            .filter(|&(r, _)| fx.defs & ALL_REGS == 1 << r)
    }

    /// Moves past `item` with effects `fx`.
    pub fn step(&mut self, item: &Item, fx: &Effects) {
        let known = self.interpret_item(item, fx);
        for r in bits(fx.defs & ALL_REGS) {
            self.regs[r as usize] = self.fresh();
        }
        if let Some((r, form)) = known {
            self.regs[r] = form;
        }
    }
}

/// Runs both rewrites over every block of `residual`; returns how many it
/// made (recomputations removed plus items rewritten).
pub fn run(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let fx = calc.residual(residual);
    let live = liveness(residual, &fx);
    let mut encoder = Encoder::new(32);
    let mut rewrites = 0;
    for ((block, mut fx), out) in residual.blocks.iter_mut().zip(fx).zip(live.live_out) {
        let Some(&live_end) = out.last() else {
            continue;
        };
        let (removed, dropped) = recomputations(&block.items, &fx, &out);
        if dropped > 0 {
            let mut keep = removed.iter().map(|r| !r);
            block.items.retain(|_| keep.next().unwrap_or(true));
            let mut keep = removed.iter().map(|r| !r);
            fx.retain(|_| keep.next().unwrap_or(true));
            rewrites += dropped;
        }
        if block.items.len() > MAX_ITEMS {
            continue;
        }
        // Liveness at the block's end only shrinks as the pass goes (it
        // never adds a read of the flags, nor a register read on entry to a
        // block), so `live_end` stays safe.
        for _ in 0..MAX_ROUNDS {
            let Some((k, code)) = best_rewrite(&block.items, &fx, live_end, calc, &mut encoder)
            else {
                break;
            };
            let origin = block.items[k].origin();
            fx.splice(k..k + 1, code.iter().map(|i| calc.instruction(i, None)));
            block
                .items
                .splice(k..k + 1, code.into_iter().map(|i| Item::Instr(i, origin)));
            rewrites += 1;
        }
    }
    rewrites
}

/// The items of a block (with effects `fx` and live-after sets `live_out`)
/// that can go because they leave a register holding the form it held
/// before them, when nothing else reads the values in between and the
/// flags they write are dead; and how many such sequences there are.
///
/// The removals are independent: a removed sequence writes only its
/// register (and dead flags), and no kept item reads that register while
/// it differs from its value without them.
fn recomputations(items: &[Item], fx: &[Effects], live_out: &[Locs]) -> (Vec<bool>, usize) {
    let mut forms = Forms::at_entry();
    // What each register held before its pending writes, and those writes.
    let mut anchor = forms.regs;
    let mut pending: [Vec<usize>; 8] = Default::default();
    let mut removed = vec![false; items.len()];
    let mut dropped = 0;
    for (k, (item, e)) in items.iter().zip(fx).enumerate() {
        let member = forms
            .interpret_item(item, e)
            .filter(|_| !e.side_effect && e.defs & ALL_FLAGS & live_out[k] == 0)
            .map(|(r, _)| r);
        for u in bits(e.uses & ALL_REGS) {
            let u = u as usize;
            if member != Some(u) {
                pending[u].clear();
                anchor[u] = forms.regs[u];
            }
        }
        forms.step(item, e);
        for d in bits(e.defs & ALL_REGS) {
            let d = d as usize;
            if member != Some(d) {
                pending[d].clear();
                anchor[d] = forms.regs[d];
                continue;
            }
            pending[d].push(k);
            if forms.regs[d] == anchor[d] {
                for &i in &pending[d] {
                    removed[i] = true;
                }
                pending[d].clear();
                dropped += 1;
            }
        }
    }
    (removed, dropped)
}

/// How good a block is after dead-code elimination: items left and their
/// bytes (lower is better, in that order), and what is live at its start.
#[derive(Clone, Copy, Debug)]
struct Score {
    items: usize,
    bytes: usize,
    live_in: Locs,
}

impl Score {
    /// Whether `self` is strictly better than `other`.
    fn beats(&self, other: &Score) -> bool {
        (self.items, self.bytes) < (other.items, other.bytes)
    }
}

/// One backward step of dead-code elimination over an item with effects
/// `e`: whether it stays, given `live` after it (updated to before it).
fn stays(e: &Effects, live: &mut Locs) -> bool {
    if !e.side_effect && e.defs & *live == 0 {
        return false;
    }
    *live = (*live & !e.kills) | e.uses;
    true
}

/// A block as dead-code elimination would leave it, with what is needed to
/// score it with one item replaced.
struct Baseline<'a> {
    fx: &'a [Effects],
    lens: &'a [usize],
    /// `live_before[k]`: live before item `k` once dead items are gone
    /// (`live_before[n]`: live at the end).
    live_before: Vec<Locs>,
    /// Whether item `k` stays.
    stays: Vec<bool>,
    /// `prefix[k]`: items and bytes that stay among the first `k`.
    prefix: Vec<(usize, usize)>,
    /// The whole block's score.
    total: Score,
}

impl<'a> Baseline<'a> {
    fn new(fx: &'a [Effects], lens: &'a [usize], live_end: Locs) -> Self {
        let n = fx.len();
        let mut live_before = vec![live_end; n + 1];
        let mut kept = vec![false; n];
        let mut live = live_end;
        for k in (0..n).rev() {
            kept[k] = stays(&fx[k], &mut live);
            live_before[k] = live;
        }
        let mut prefix = vec![(0, 0); n + 1];
        for k in 0..n {
            let (items, bytes) = prefix[k];
            prefix[k + 1] = match kept[k] {
                true => (items + 1, bytes + lens[k]),
                false => (items, bytes),
            };
        }
        Baseline {
            fx,
            lens,
            total: Score {
                items: prefix[n].0,
                bytes: prefix[n].1,
                live_in: live,
            },
            live_before,
            stays: kept,
            prefix,
        }
    }

    /// The score with item `k` replaced by items with these effects and
    /// lengths. Items after `k` are unchanged, and so is everything before
    /// the first point where liveness agrees with the baseline again.
    fn with(&self, k: usize, code: &[(Effects, usize)]) -> Score {
        let (after_items, after_bytes) = (
            self.total.items - self.prefix[k + 1].0,
            self.total.bytes - self.prefix[k + 1].1,
        );
        let mut s = Score {
            items: after_items,
            bytes: after_bytes,
            live_in: self.live_before[k + 1],
        };
        for (e, len) in code.iter().rev() {
            if stays(e, &mut s.live_in) {
                s.items += 1;
                s.bytes += len;
            }
        }
        for j in (0..k).rev() {
            if s.live_in == self.live_before[j + 1] {
                s.items += self.prefix[j + 1].0;
                s.bytes += self.prefix[j + 1].1;
                s.live_in = self.total.live_in;
                return s;
            }
            if stays(&self.fx[j], &mut s.live_in) {
                s.items += 1;
                s.bytes += self.lens[j];
            }
        }
        s
    }
}

/// The encoded length of an item (a fixed guess for items that are not
/// plain instructions: they are never replaced, so only differences count).
fn length(encoder: &mut Encoder, item: &Item) -> usize {
    match item {
        Item::Instr(ins, _) => encoder.encode(ins, 0).unwrap_or(5),
        _ => 5,
    }
}

/// The best replacement of one item of a block (items with effects `fx`,
/// `live_end` live after it) by code that computes the same from other
/// registers (see [`alternatives`]): the one that leaves the fewest items
/// (then bytes) alive, if that is fewer than now, and reads no register at
/// the block's start that was not read before.
fn best_rewrite(
    items: &[Item],
    fx: &[Effects],
    live_end: Locs,
    calc: &mut EffectsOf,
    encoder: &mut Encoder,
) -> Option<(usize, Vec<Instruction>)> {
    let lens: Vec<usize> = items.iter().map(|i| length(encoder, i)).collect();
    let live_out = block_live_out(fx, live_end);
    let baseline = Baseline::new(fx, &lens, live_end);
    let mut best: Option<(Score, usize, Vec<Instruction>)> = None;
    let mut forms = Forms::at_entry();
    for (k, (item, e)) in items.iter().zip(fx).enumerate() {
        if baseline.stays[k] {
            for code in alternatives(item, e, &forms, live_out[k]) {
                let new: Vec<(Effects, usize)> = code
                    .iter()
                    .map(|i| {
                        let len = encoder.encode(i, 0).expect("a replacement encodes");
                        (calc.instruction(i, None), len)
                    })
                    .collect();
                let s = baseline.with(k, &new);
                let no_new_inputs = s.live_in & ALL_REGS & !baseline.total.live_in == 0;
                let to_beat = best.as_ref().map_or(&baseline.total, |(s, ..)| s);
                if no_new_inputs && s.beats(to_beat) {
                    best = Some((s, k, code));
                }
            }
        }
        forms.step(item, e);
    }
    best.map(|(_, k, code)| (k, code))
}

/// What could replace `item` (effects `e`, `live_after` live after it),
/// given the register forms `forms` before it:
/// - when it writes an interpreted form to a register, the computations of
///   that form from the registers that hold its value (see
///   [`computations`]), if the flags it writes are dead;
/// - when it has an explicit memory operand, the same instruction with the
///   operand's base or index replaced by a register holding the same value
///   up to a constant, folded into the displacement.
fn alternatives(
    item: &Item,
    e: &Effects,
    forms: &Forms,
    live_after: Locs,
) -> Vec<Vec<Instruction>> {
    let Item::Instr(ins, _) = item else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some((r, form)) = forms.interpret_item(item, e) {
        // The old flags must be dead; new ones may be written only where no
        // flag is live.
        if !e.side_effect && e.defs & ALL_FLAGS & live_after == 0 {
            let flags_free = live_after & ALL_FLAGS == 0;
            out = computations(reg_of_bit(r as u32), form, forms, flags_free);
        }
    }
    if memory_operand(ins).is_some() {
        out.extend(readdressed(ins, forms).into_iter().map(|i| vec![i]));
    }
    out.retain(|code| code.as_slice() != [*ins]);
    out
}

/// `ins` with the base or the index of its memory operand replaced by
/// another register that holds the same value plus a constant (added to
/// the displacement), for each such register. Only plain 32-bit `[base +
/// index*scale + disp]` operands without `esp` are rewritten.
fn readdressed(ins: &Instruction, forms: &Forms) -> Vec<Instruction> {
    let (base, index_reg) = (ins.memory_base(), ins.memory_index());
    let plain = |r: Register| r == Register::None || index(r).is_some();
    if !plain(base) || !plain(index_reg) || ins.mnemonic() == Mnemonic::Xlatb {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (is_base, reg) in [(true, base), (false, index_reg)] {
        let Some(i) = index(reg) else { continue };
        for (s, source) in forms.regs.iter().enumerate() {
            if s == i || s == 4 {
                continue;
            }
            let Some((1, delta)) = forms.regs[i].in_terms_of(*source) else {
                continue;
            };
            let mut new = *ins;
            let scale = if is_base { 1 } else { ins.memory_index_scale() };
            let disp = ins
                .memory_displacement32()
                .wrapping_add(delta.wrapping_mul(scale)) as i32;
            if is_base {
                new.set_memory_base(reg_of_bit(s as u32));
            } else {
                new.set_memory_index(reg_of_bit(s as u32));
            }
            new.set_memory_displacement32(disp as u32);
            new.set_memory_displ_size(match base {
                Register::None => 4,
                _ => displacement_size(disp),
            });
            out.push(new);
        }
    }
    out
}

/// The ways to leave `form` in `r` given the register forms `forms` before:
/// `mov r,imm` for a constant, else for every register holding the same
/// value the cheap forms of [`from_register`]. `flags_free`: code may write
/// the flags.
fn computations(
    r: Register,
    form: Affine,
    forms: &Forms,
    flags_free: bool,
) -> Vec<Vec<Instruction>> {
    if let Some(c) = form.as_constant() {
        return vec![vec![instruction(Instruction::with2(
            Code::Mov_r32_imm32,
            r,
            c,
        ))]];
    }
    let mut out = Vec::new();
    for (s, source) in forms.regs.iter().enumerate() {
        if s == 4 {
            continue; // esp is not tracked
        }
        if let Some((m, b)) = form.in_terms_of(*source) {
            out.extend(from_register(r, reg_of_bit(s as u32), m, b, flags_free));
        }
    }
    out
}

/// Code that leaves `m * s + b` in `r` (reading `s` before writing `r`):
/// nothing or `mov` for `m = 1, b = 0`, `lea` for `m` in 1, 2, 3, 4, 5, 8,
/// 9, `add r,b` and `shl r,k` on `r` itself, `imul r,s,m` (plus an offset).
/// Only `lea` and `mov` leave the flags alone; the rest need `flags_free`.
pub fn from_register(
    r: Register,
    s: Register,
    m: u32,
    b: u32,
    flags_free: bool,
) -> Vec<Vec<Instruction>> {
    let mut out = Vec::new();
    let none = Register::None;
    if m == 1 {
        if b == 0 {
            out.push(if r == s { vec![] } else { vec![mov(r, s)] });
        } else {
            out.push(vec![lea(r, s, none, 1, b)]);
            if r == s && flags_free {
                out.push(vec![add(r, b)]);
            }
        }
    }
    match m {
        2 => {
            out.push(vec![lea(r, s, s, 1, b)]);
            out.push(vec![lea(r, none, s, 2, b)]);
        }
        4 | 8 => out.push(vec![lea(r, none, s, m, b)]),
        3 | 5 | 9 => out.push(vec![lea(r, s, s, m - 1, b)]),
        _ => {}
    }
    if !flags_free || m == 1 {
        return out;
    }
    if m.is_power_of_two() && r == s {
        let shl = instruction(Instruction::with2(
            Code::Shl_rm32_imm8,
            r,
            m.trailing_zeros(),
        ));
        out.push(if b == 0 {
            vec![shl]
        } else {
            vec![shl, add(r, b)]
        });
    }
    let imm = m as i32;
    let code = if i8::try_from(imm).is_ok() {
        Code::Imul_r32_rm32_imm8
    } else {
        Code::Imul_r32_rm32_imm32
    };
    let imul = instruction(Instruction::with3(code, r, s, imm));
    out.push(match b {
        0 => vec![imul],
        _ => vec![imul, lea(r, r, none, 1, b)],
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::code_asm::*;

    fn v(n: u32) -> Affine {
        Affine::of(Value(n))
    }

    fn one(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Instruction {
        let mut a = CodeAssembler::new(32).unwrap();
        f(&mut a).unwrap();
        a.instructions()[0]
    }

    #[test]
    fn sums_of_one_value_stay_affine() {
        let x = v(1).offset_by(2);
        let two_x = x.checked_add(x).unwrap();
        assert_eq!(two_x, Affine::new(2, Some(Value(1)), 4));
        assert_eq!(two_x.checked_sub(x), Some(x));
        assert_eq!(x.checked_sub(x), Some(Affine::constant(0)));
        assert_eq!(x.checked_add(Affine::constant(5)), Some(v(1).offset_by(7)));
        assert_eq!(v(1).checked_add(v(2)), None);
        assert_eq!(v(1).checked_mul(v(1)), None);
        assert_eq!(v(1).checked_mul(Affine::constant(3)), Some(v(1).scaled(3)));
    }

    #[test]
    fn scales_wrap_modulo_two_to_the_32() {
        assert_eq!(v(1).scaled(1 << 31).scaled(2), Affine::constant(0));
        assert_eq!(v(1).offset_by(u32::MAX).offset_by(1), v(1));
        let neg = v(1).offset_by(3).scaled(u32::MAX);
        assert_eq!(
            neg,
            Affine::new(u32::MAX, Some(Value(1)), 3u32.wrapping_neg())
        );
        assert_eq!(neg.scaled(u32::MAX), v(1).offset_by(3));
    }

    #[test]
    fn forms_are_expressed_in_terms_of_each_other() {
        let target = v(1).scaled(8).offset_by(16);
        // from x: 8x + 16
        assert_eq!(target.in_terms_of(v(1)), Some((8, 16)));
        // from x + 2: 8(x + 2)
        assert_eq!(target.in_terms_of(v(1).offset_by(2)), Some((8, 0)));
        // from 2x + 4: 4(2x + 4)
        assert_eq!(
            target.in_terms_of(v(1).scaled(2).offset_by(4)),
            Some((4, 0))
        );
        // from 3x + 1 (odd scale: an inverse)
        let source = v(1).scaled(3).offset_by(1);
        let (m, b) = target.in_terms_of(source).unwrap();
        assert_eq!(source.scaled(m).offset_by(b), target);
        // not from another value, a constant, or 16x
        assert_eq!(target.in_terms_of(v(2)), None);
        assert_eq!(target.in_terms_of(Affine::constant(3)), None);
        assert_eq!(target.in_terms_of(v(1).scaled(16)), None);
        assert_eq!(Affine::constant(3).in_terms_of(v(1)), None);
    }

    #[test]
    fn instructions_are_interpreted() {
        let mut f = Forms::at_entry();
        let x = f.regs[Reg::Edx.index()];
        f.regs[Reg::Eax.index()] = x.offset_by(2); // eax = edx + 2
        let cases = [
            (one(|a| a.mov(ecx, eax)), x.offset_by(2)),
            (one(|a| a.mov(ecx, 7)), Affine::constant(7)),
            (one(|a| a.add(eax, 3)), x.offset_by(5)),
            (one(|a| a.sub(eax, edx)), Affine::constant(2)),
            (one(|a| a.add(eax, eax)), x.scaled(2).offset_by(4)),
            (
                one(|a| a.lea(ecx, ptr(eax + edx * 4 - 1))),
                x.scaled(5).offset_by(1),
            ),
            (one(|a| a.inc(eax)), x.offset_by(3)),
            (one(|a| a.dec(eax)), x.offset_by(1)),
            (one(|a| a.neg(eax)), x.offset_by(2).scaled(u32::MAX)),
            (one(|a| a.shl(eax, 3)), x.offset_by(2).scaled(8)),
            (one(|a| a.shl(eax, 1)), x.offset_by(2).scaled(2)),
            (
                one(|a| a.imul_3(ecx, eax, -3)),
                x.offset_by(2).scaled(-3i32 as u32),
            ),
            (one(|a| a.xor(ebx, ebx)), Affine::constant(0)),
        ];
        for (ins, want) in cases {
            let (_, got) = f.interpret(&ins).unwrap_or_else(|| panic!("{ins}"));
            assert_eq!(got, want, "{ins}");
        }
        for ins in [
            one(|a| a.mov(eax, dword_ptr(edx))),
            one(|a| a.mov(al, 1)),
            one(|a| a.shl(eax, cl)),
            one(|a| a.imul_2(eax, edx)),
            one(|a| a.add(eax, ebx)),
            one(|a| a.lea(eax, ptr(esp + 4))),
            one(|a| a.and(eax, 1)),
        ] {
            assert_eq!(f.interpret(&ins), None, "{ins}");
        }
        // A product by a register holding a constant is a scaling.
        f.regs[Reg::Ecx.index()] = Affine::constant(3);
        for ins in [one(|a| a.imul_2(eax, ecx)), one(|a| a.imul_2(ecx, eax))] {
            let (_, got) = f.interpret(&ins).unwrap_or_else(|| panic!("{ins}"));
            assert_eq!(got, x.offset_by(2).scaled(3), "{ins}");
        }
    }

    #[test]
    fn cheap_forms_compute_what_they_claim() {
        // Evaluate each computation on the forms: r = m * s + b for s = edx.
        let s = Affine::of(Value(2));
        for (m, b) in [
            (1, 0),
            (1, 4),
            (2, 0),
            (3, 7),
            (4, 1),
            (5, 0),
            (8, 16),
            (9, 3),
            (16, 0),
            (12, 5),
            (u32::MAX, 0),
        ] {
            for r in [Register::EDX, Register::EAX] {
                for code in from_register(r, Register::EDX, m, b, true) {
                    let mut f = Forms::at_entry();
                    for ins in &code {
                        let (d, form) = f.interpret(ins).unwrap_or_else(|| panic!("{ins}"));
                        f.regs[d] = form;
                    }
                    let got = f.regs[index(r).unwrap()];
                    assert_eq!(
                        got,
                        s.scaled(m).offset_by(b),
                        "{m}*edx+{b} into {r:?}: {code:?}"
                    );
                }
            }
        }
        // Without free flags, only lea and mov.
        for code in from_register(Register::EAX, Register::EDX, 12, 5, false) {
            assert!(code
                .iter()
                .all(|i| matches!(i.mnemonic(), Mnemonic::Lea | Mnemonic::Mov)));
        }
        assert!(from_register(Register::EAX, Register::EDX, 12, 5, false).is_empty());
    }
}

#[cfg(test)]
mod rewrite_tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// The affine pass, then dead code until nothing changes (which
    /// removes what it left unread).
    fn affine(r: wiper_residual::Residual) -> String {
        after(r, |r, c| {
            super::run(r, c);
            while crate::cleanup::eliminate_dead(r, c, None) {}
        })
    }

    /// `edx` already holds `ecx+3`: its recomputation goes; the sum of
    /// `ecx+3` four times becomes one `lea`.
    #[test]
    fn recomputations_go_and_sums_become_one_lea() {
        let f = function(|a| {
            a.lea(edx, ptr(ecx + 3))?;
            a.mov(eax, edx)?;
            a.mov(edx, ecx)?;
            a.add(edx, 3)?;
            a.add(eax, edx)?;
            a.add(eax, edx)?;
            a.add(eax, edx)?;
            a.ret()
        });
        insta::assert_snapshot!(affine(f), @"
        L0:
          lea edx,[ecx+3]
          imul eax,edx,4
          ret
          exit
        ");
    }

    /// Near misses: `ecx` changes (`and` is not affine) before the
    /// second `ecx+3`, and the carry of the last `add` is read.
    #[test]
    fn a_changed_source_and_read_flags_keep_the_code() {
        let f = function(|a| {
            a.lea(edx, ptr(ecx + 3))?;
            a.mov(eax, edx)?;
            a.and(ecx, 0xff)?;
            a.mov(edx, ecx)?;
            a.add(edx, 3)?;
            a.add(eax, edx)?;
            a.adc(esi, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(affine(f), @"
        L0:
          lea eax,[ecx+3]
          and ecx,0FFh
          lea edx,[ecx+3]
          add eax,edx
          adc esi,0
          ret
          exit
        ");
    }

    /// The module docs' example: `ecx` doubled from `eax = edx+2` three
    /// times holds `8*edx+16`, which one `lea` puts in `eax`.
    #[test]
    fn a_chain_of_doublings_becomes_one_lea() {
        let f = function(|a| {
            a.lea(eax, ptr(edx + 2))?;
            a.mov(ecx, eax)?;
            a.add(ecx, eax)?;
            a.add(ecx, ecx)?;
            a.add(ecx, ecx)?;
            a.mov(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(affine(f), @"
        L0:
          lea eax,[edx*8+10h]
          ret
          exit
        ");
    }

    /// A register that holds a constant gets it by one `mov`.
    #[test]
    fn a_constant_sum_becomes_a_move() {
        let f = function(|a| {
            a.mov(eax, 3)?;
            a.add(eax, 4)?;
            a.ret()
        });
        insta::assert_snapshot!(affine(f), @"
        L0:
          mov eax,7
          ret
          exit
        ");
    }

    /// `eax` times 8 through `ecx`, with the flags dead: a shift of `eax`
    /// itself.
    #[test]
    fn a_power_of_two_multiple_of_a_register_is_a_shift() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.add(ecx, ecx)?;
            a.add(ecx, ecx)?;
            a.add(ecx, ecx)?;
            a.mov(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(affine(f), @"
        L0:
          shl eax,3
          ret
          exit
        ");
    }

    /// The pass reports what it did, which the clean-up loop runs again
    /// on: a recomputation of `ecx+3` into `edx`, which still holds it,
    /// goes and counts one; a block with nothing to rewrite counts none.
    #[test]
    fn a_recomputation_counts_one_and_nothing_counts_none() {
        let run = |f: wiper_residual::Residual| {
            let mut r = f;
            let mut calc = crate::effects::EffectsOf::for_residual(&r);
            let n = super::run(&mut r, &mut calc);
            (n, crate::testutil::listing(&r))
        };
        let (n, listing) = run(function(|a| {
            a.lea(edx, ptr(ecx + 3))?;
            a.mov(dword_ptr(esi), edx)?;
            a.mov(edx, ecx)?;
            a.add(edx, 3)?;
            a.mov(dword_ptr(edi), edx)?;
            a.ret()
        }));
        assert_eq!(n, 1, "{listing}");
        insta::assert_snapshot!(listing, @"
        L0:
          lea edx,[ecx+3]
          mov [esi],edx
          mov [edi],edx
          ret
          exit
        ");
        let (n, listing) = run(function(|a| {
            a.mov(eax, ecx)?;
            a.ret()
        }));
        assert_eq!(n, 0, "{listing}");
    }

    /// Near miss for the shift: `adc` reads the carry of `cmp`, so only
    /// flag-free code (`lea`) may replace the `mov`.
    #[test]
    fn a_multiple_with_live_flags_is_a_lea() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.shl(ecx, 3)?;
            a.cmp(esi, edi)?;
            a.mov(eax, ecx)?;
            a.adc(edx, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(affine(f), @"
        L0:
          cmp esi,edi
          lea eax,[eax*8]
          adc edx,0
          ret
          exit
        ");
    }
}

#[cfg(test)]
mod address_tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// The affine pass, then dead code until nothing changes.
    fn affine(r: wiper_residual::Residual) -> String {
        after(r, |r, c| {
            super::run(r, c);
            while crate::cleanup::eliminate_dead(r, c, None) {}
        })
    }

    /// `eax` holds `edx+4`: the load reads `[edx+4]` and the `lea` dies.
    #[test]
    fn an_address_register_is_replaced_by_its_source() {
        let f = function(|a| {
            a.lea(ecx, ptr(edx + 4))?;
            a.add(eax, dword_ptr(ecx))?;
            a.ret()
        });
        insta::assert_snapshot!(affine(f), @"
        L0:
          add eax,[edx+4]
          ret
          exit
        ");
    }

    /// Near miss: `edx` changes between the `lea` and the load, so
    /// `[edx+4]` would be another address (`[edx+3]` is the same one).
    #[test]
    fn an_address_whose_source_changed_is_not_its_source() {
        let f = function(|a| {
            a.lea(ecx, ptr(edx + 4))?;
            a.inc(edx)?;
            a.add(eax, dword_ptr(ecx))?;
            a.ret()
        });
        insta::assert_snapshot!(affine(f), @"
        L0:
          inc edx
          add eax,[edx+3]
          ret
          exit
        ");
    }
}
