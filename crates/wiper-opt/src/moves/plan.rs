//! The parallel assignment of a run's destinations: a greedy search for
//! short code that leaves each destination its form (see the module docs
//! of [`crate::moves`]).

use iced_x86::{Code, Encoder, Instruction, Register};

use super::forms::{interpret, Linear, ESP};
use crate::build::{add_imm, checked as build, lea, mov};
use crate::effects::reg_of_bit;

/// Steps of one plan at most (each computes a destination, swaps or saves
/// a value).
const MAX_STEPS: usize = 24;

/// What a plan must achieve.
pub struct Task<'a> {
    /// The destinations and the forms they must hold at the end.
    pub pending: &'a [(usize, Linear)],
    /// Registers the code must not write (`esp`, and live registers that
    /// keep their entry value).
    pub protected: [bool; 8],
    /// Whether the code may write the flags.
    pub flags_free: bool,
}

/// Code that leaves every destination of `task` its form, starting from
/// the forms `start` (each instruction with the destination it is for, for
/// its origin), computing `defer` last when it can; `None` when the greedy
/// search gets stuck.
pub fn plan(
    task: &Task<'_>,
    start: [Linear; 8],
    defer: Option<usize>,
) -> Option<Vec<(usize, Instruction)>> {
    let mut regs = start;
    let mut pending: Vec<(usize, Linear)> = task.pending.to_vec();
    let mut code = Vec::new();
    let mut encoder = Encoder::new(32);
    for _ in 0..MAX_STEPS {
        pending.retain(|&(d, f)| regs[d] != f);
        if pending.is_empty() {
            return Some(code);
        }
        let active: Vec<(usize, Linear)> = match pending.iter().any(|p| Some(p.0) != defer) {
            true => pending
                .iter()
                .copied()
                .filter(|p| Some(p.0) != defer)
                .collect(),
            false => pending.clone(),
        };
        let step = direct(task, &regs, &pending, &active, &mut encoder)
            .or_else(|| swap(task, &regs, &pending, &active))
            .or_else(|| save(task, &regs, &pending, &mut encoder))?;
        let (d, ins) = step;
        interpret(&mut regs, &ins)?;
        code.push((d, ins));
    }
    None
}

/// Whether every destination of `pending` but `except` can be computed
/// by one instruction from `regs`.
fn all_computable(
    regs: &[Linear; 8],
    pending: &[(usize, Linear)],
    except: usize,
    flags_free: bool,
) -> bool {
    pending
        .iter()
        .filter(|p| p.0 != except)
        .all(|&(d, f)| computable(d, f, regs, flags_free))
}

/// The shortest instruction that computes an `active` destination without
/// making another one of `pending` uncomputable.
fn direct(
    task: &Task<'_>,
    regs: &[Linear; 8],
    pending: &[(usize, Linear)],
    active: &[(usize, Linear)],
    encoder: &mut Encoder,
) -> Option<(usize, Instruction)> {
    let mut best: Option<(usize, usize, Instruction)> = None;
    for &(d, f) in active {
        let mut next = *regs;
        next[d] = f;
        if !computable(d, f, regs, task.flags_free)
            || !all_computable(&next, pending, d, task.flags_free)
        {
            continue;
        }
        for ins in one_step(d, f, regs, task.flags_free) {
            let len = encoder.encode(&ins, 0).unwrap_or(16);
            if best.as_ref().map_or(true, |b| len < b.0) {
                best = Some((len, d, ins));
            }
        }
    }
    best.map(|(_, d, ins)| (d, ins))
}

/// An `xchg d,e` that puts the form of an `active` destination `d` in
/// place, or else a value `d` can then be computed from by one instruction,
/// where `e` holds it and may be written, and every other destination stays
/// computable (after that instruction too).
fn swap(
    task: &Task<'_>,
    regs: &[Linear; 8],
    pending: &[(usize, Linear)],
    active: &[(usize, Linear)],
) -> Option<(usize, Instruction)> {
    let candidates = [true, false].into_iter().flat_map(|exact| {
        active
            .iter()
            .flat_map(move |&(d, f)| (0..8).map(move |e| (exact, d, f, e)))
    });
    for (exact, d, f, e) in candidates {
        if e == d || task.protected[e] {
            continue;
        }
        let mut next = *regs;
        next.swap(d, e);
        let fits = match exact {
            true => next[d] == f,
            false => computable(d, f, &next, task.flags_free),
        };
        if !fits {
            continue;
        }
        let mut done = next;
        done[d] = f;
        if all_computable(&next, pending, d, task.flags_free)
            && all_computable(&done, pending, d, task.flags_free)
        {
            let ins = Instruction::with2(
                Code::Xchg_rm32_r32,
                reg_of_bit(d as u32),
                reg_of_bit(e as u32),
            );
            return Some((d, build(ins)));
        }
    }
    None
}

/// A `mov t,x` that saves the value of destination `x` in a register `t`
/// that is no destination, may be written and holds nothing a destination
/// needs, after which some destination can be computed directly.
fn save(
    task: &Task<'_>,
    regs: &[Linear; 8],
    pending: &[(usize, Linear)],
    encoder: &mut Encoder,
) -> Option<(usize, Instruction)> {
    let is_pending = |r: usize| pending.iter().any(|p| p.0 == r);
    for t in (0..8).filter(|&t| !task.protected[t] && !is_pending(t)) {
        for &(x, _) in pending {
            if regs[t] == regs[x] {
                continue;
            }
            let mut next = *regs;
            next[t] = regs[x];
            if all_computable(&next, pending, usize::MAX, task.flags_free)
                && direct(task, &next, pending, pending, encoder).is_some()
            {
                return Some((x, mov(reg_of_bit(t as u32), reg_of_bit(x as u32))));
            }
        }
    }
    None
}

/// The single instructions that leave `want` in register `d` given the
/// forms `regs` (none when `d` already holds it): `mov` of a constant;
/// `mov` from a register holding it; `lea` of one register plus a
/// constant, of a multiple of one (2, 3, 4, 5, 8, 9), or of one plus a
/// multiple of another (1, 2, 4, 8) plus a constant; and with the flags
/// free, `inc`, `dec`, `add`, `sub` and `neg` of `d` in place.
pub fn one_step(d: usize, want: Linear, regs: &[Linear; 8], flags_free: bool) -> Vec<Instruction> {
    let mut out = Vec::new();
    if regs[d] != want {
        options(d, want, regs, flags_free, &mut |ins| {
            out.push(ins);
            false
        });
    }
    out
}

/// Whether register `d` holds `want` or [`one_step`] has an instruction
/// for it (without building them all).
fn computable(d: usize, want: Linear, regs: &[Linear; 8], flags_free: bool) -> bool {
    regs[d] == want || options(d, want, regs, flags_free, &mut |_| true)
}

/// Shows the instructions of [`one_step`] to `visit` until it returns
/// true; returns whether it did.
fn options(
    d: usize,
    want: Linear,
    regs: &[Linear; 8],
    flags_free: bool,
    visit: &mut dyn FnMut(Instruction) -> bool,
) -> bool {
    let r = reg_of_bit(d as u32);
    if let Some(c) = want.as_constant() {
        return visit(build(Instruction::with2(Code::Mov_r32_imm32, r, c)));
    }
    let none = Register::None;
    let sources: Vec<usize> = (0..8)
        .filter(|&s| s != ESP && regs[s].as_constant().is_none())
        .collect();
    for &s in &sources {
        let sr = reg_of_bit(s as u32);
        let rest = want.minus(regs[s]);
        if let Some(c) = want.less_multiple(regs[s], 1) {
            let stop = match c {
                0 => visit(mov(r, sr)),
                _ => {
                    visit(lea(r, sr, none, 1, c))
                        || (s == d && flags_free)
                            && visit(match c {
                                1 => build(Instruction::with1(Code::Inc_rm32, r)),
                                u32::MAX => build(Instruction::with1(Code::Dec_rm32, r)),
                                _ => add_imm(r, c),
                            })
                }
            };
            if stop {
                return true;
            }
        }
        for k in [2u32, 3, 4, 5, 8, 9] {
            if let Some(c) = want.less_multiple(regs[s], k) {
                let ins = match k {
                    2 | 3 | 5 | 9 => lea(r, sr, sr, k - 1, c),
                    _ => lea(r, none, sr, k, c),
                };
                if visit(ins) {
                    return true;
                }
            }
        }
        if s == d
            && flags_free
            && want == regs[s].times(u32::MAX)
            && visit(build(Instruction::with1(Code::Neg_rm32, r)))
        {
            return true;
        }
        for &i in sources.iter().filter(|&&i| i != s) {
            let ir = reg_of_bit(i as u32);
            for k in [1u32, 2, 4, 8] {
                if let Some(c) = rest.less_multiple(regs[i], k) {
                    let add = s == d && k == 1 && c == 0 && flags_free;
                    if visit(lea(r, sr, ir, k, c))
                        || add && visit(build(Instruction::with2(Code::Add_r32_rm32, r, ir)))
                    {
                        return true;
                    }
                }
            }
            if s == d
                && flags_free
                && want == regs[s].minus(regs[i])
                && visit(build(Instruction::with2(Code::Sub_r32_rm32, r, ir)))
            {
                return true;
            }
        }
    }
    false
}
