//! A goal normalized for the search: which locations a candidate must get
//! right and to what, which it may clobber, which registers are stale, the
//! memory accesses the goal allows, and the constants its formulas mention.

use iced_x86::Instruction;
use wiper_qfbv::{ExprId, ExprPool, Op, Sort, VarId};
use wiper_sem::{is_undefined_var, loc_var, Flag, Loc, Reg};

use crate::compose::Access;

/// The normalized goal, over the synthesizer's own pool.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    /// Per register: the value the candidate must leave, or `None` when the
    /// register is free (dead and not in the effects).
    pub reg_goal: [Option<ExprId>; 8],
    /// Per flag: the value the candidate must leave, or `None` when the flag
    /// is dead (or its goal value is undefined).
    pub flag_goal: [Option<ExprId>; 7],
    /// The memory the candidate must leave.
    pub mem_goal: ExprId,
    /// Undefined-value variables each register / flag / memory goal mentions
    /// (indexes 0..8 registers, 8..15 flags, 15 memory).
    pub undefined: Vec<Vec<VarId>>,
    /// Stale registers (mask by `Reg::index`).
    pub stale: u8,
    /// Registers the candidate may clobber (mask).
    pub scratch: u8,
    /// Required registers whose value changes (mask).
    pub changed_regs: u8,
    /// Required flags whose value changes (mask).
    pub changed_flags: u8,
    /// Required flags that must keep their value (mask).
    pub kept_flags: u8,
    /// Whether memory changes.
    pub mem_changed: bool,
    /// The memory accesses the goal's formulas make (outside `ite` branches).
    pub accesses: Vec<Access>,
    /// Constants of the goal's register and memory formulas, with widths.
    pub consts: Vec<(u32, u32)>,
    /// The static register values given as hints.
    pub statics: Vec<(Reg, u32)>,
    /// The original instruction.
    pub original: Option<Instruction>,
}

/// Index of a location in [`Spec::undefined`].
pub(crate) fn slot(loc: Loc) -> usize {
    match loc {
        Loc::Reg(r) => r.index(),
        Loc::Flag(f) => 8 + f.index(),
        _ => 15,
    }
}

/// Most constants kept for candidates.
const MAX_CONSTS: usize = 12;

impl Spec {
    /// Normalizes a goal whose effects are already in `pool`. `None` for an
    /// ill-formed goal (a temporary or `eip`, a location given twice, a value
    /// of the wrong sort).
    pub fn new(
        pool: &mut ExprPool,
        effects: &[(Loc, ExprId)],
        live_regs: u8,
        live_flags: u8,
        statics: &[(Reg, u32)],
        original: Option<Instruction>,
    ) -> Option<Spec> {
        let live_regs = live_regs | 1 << Reg::Esp.index();
        let mut reg_val: [Option<ExprId>; 8] = [None; 8];
        let mut flag_val: [Option<ExprId>; 7] = [None; 7];
        let mut mem_val = None;
        for &(loc, e) in effects {
            if pool.sort(e) != loc.sort() {
                return None;
            }
            let slot = match loc {
                Loc::Reg(r) => &mut reg_val[r.index()],
                Loc::Flag(f) => &mut flag_val[f.index()],
                Loc::Mem => &mut mem_val,
                Loc::Temp(_) | Loc::Eip | Loc::Fpu | Loc::FsBase | Loc::GsBase => return None,
            };
            if slot.replace(e).is_some() {
                return None;
            }
        }
        let mut stale = 0u8;
        for &(r, _) in statics {
            stale |= 1 << r.index();
        }
        let mut spec = Spec {
            reg_goal: [None; 8],
            flag_goal: [None; 7],
            mem_goal: loc_var(pool, Loc::Mem),
            undefined: vec![Vec::new(); 16],
            stale,
            scratch: 0,
            changed_regs: 0,
            changed_flags: 0,
            kept_flags: 0,
            mem_changed: false,
            accesses: Vec::new(),
            consts: Vec::new(),
            statics: statics.to_vec(),
            original,
        };
        for r in Reg::ALL {
            let var = loc_var(pool, Loc::Reg(r));
            let bit = 1 << r.index();
            match reg_val[r.index()] {
                Some(v) => {
                    spec.reg_goal[r.index()] = Some(v);
                    if v != var {
                        spec.changed_regs |= bit;
                    }
                }
                None if live_regs & bit != 0 => spec.reg_goal[r.index()] = Some(var),
                None => spec.scratch |= bit,
            }
        }
        for f in Flag::ALL {
            let var = loc_var(pool, Loc::Flag(f));
            let bit = 1 << f.index();
            if live_flags & bit == 0 {
                continue;
            }
            let v = flag_val[f.index()].unwrap_or(var);
            if pool.as_var(v).is_some_and(|x| is_undefined_var(pool, x)) {
                continue;
            }
            spec.flag_goal[f.index()] = Some(v);
            if v == var {
                spec.kept_flags |= bit;
            } else {
                spec.changed_flags |= bit;
            }
        }
        if let Some(m) = mem_val {
            spec.mem_changed = m != spec.mem_goal;
            spec.mem_goal = m;
        }
        for (loc, e) in spec.targets() {
            spec.undefined[slot(loc)] = undefined_vars(pool, e);
        }
        let roots: Vec<ExprId> = spec.targets().into_iter().map(|(_, e)| e).collect();
        // A `cmov` reads its memory source whatever the condition, so the
        // goal of one may make the loads under its `ite`.
        let conditional_ok = original.is_some_and(|i| is_cmov(i.mnemonic()));
        spec.accesses = accesses(pool, &roots, conditional_ok);
        let data_roots: Vec<ExprId> = spec
            .targets()
            .into_iter()
            .filter(|(l, _)| !matches!(l, Loc::Flag(_)))
            .map(|(_, e)| e)
            .collect();
        let flag_roots: Vec<ExprId> = spec
            .targets()
            .into_iter()
            .filter(|(l, _)| matches!(l, Loc::Flag(_)))
            .map(|(_, e)| e)
            .collect();
        spec.consts = constants(pool, &data_roots, &flag_roots, statics);
        Some(spec)
    }

    /// Every required location with its goal value: registers, memory, flags.
    pub fn targets(&self) -> Vec<(Loc, ExprId)> {
        let mut out = Vec::new();
        // Changed registers first: they refute most candidates.
        for pass in [true, false] {
            for r in Reg::ALL {
                if let Some(v) = self.reg_goal[r.index()] {
                    if (self.changed_regs & 1 << r.index() != 0) == pass {
                        out.push((Loc::Reg(r), v));
                    }
                }
            }
        }
        out.push((Loc::Mem, self.mem_goal));
        for f in Flag::ALL {
            if let Some(v) = self.flag_goal[f.index()] {
                out.push((Loc::Flag(f), v));
            }
        }
        out
    }

    /// Whether register `r` is stale.
    pub fn is_stale(&self, r: Reg) -> bool {
        self.stale & 1 << r.index() != 0
    }

    /// Registers a candidate may write: changed required registers and
    /// scratch registers.
    pub fn writable(&self) -> u8 {
        self.changed_regs | self.scratch
    }
}

/// The undefined-value variables of `e`.
fn undefined_vars(pool: &ExprPool, e: ExprId) -> Vec<VarId> {
    pool.vars(e)
        .into_iter()
        .filter(|&v| is_undefined_var(pool, v))
        .collect()
}

/// Whether every undefined-value variable of `e` is in `allowed`.
pub(crate) fn undefined_within(pool: &ExprPool, e: ExprId, allowed: &[VarId]) -> bool {
    pool.vars(e)
        .into_iter()
        .all(|v| !is_undefined_var(pool, v) || allowed.contains(&v))
}

/// Whether `m` is a `cmovcc`.
fn is_cmov(m: iced_x86::Mnemonic) -> bool {
    format!("{m:?}").starts_with("Cmov")
}

/// The loads and stores of `roots`, not entering the branches of `ite`s
/// (an access under a condition is not one the goal always makes) unless
/// `conditional_loads`, which admits the loads found there.
pub(crate) fn accesses(pool: &ExprPool, roots: &[ExprId], conditional_loads: bool) -> Vec<Access> {
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<(ExprId, bool)> = roots.iter().map(|&r| (r, false)).collect();
    let mut out = Vec::new();
    while let Some((e, under_ite)) = stack.pop() {
        if !seen.insert((e, under_ite)) {
            continue;
        }
        let args = pool.args(e);
        match pool.op(e) {
            Op::Ite => {
                stack.push((args[0], under_ite));
                if conditional_loads {
                    stack.push((args[1], true));
                    stack.push((args[2], true));
                }
                continue;
            }
            Op::Load(n) => out.push(Access {
                addr: args[1],
                size: u32::from(n),
                write: false,
            }),
            Op::Store if !under_ite => out.push(Access {
                addr: args[1],
                size: pool.width(args[2]) / 8,
                write: true,
            }),
            _ => {}
        }
        stack.extend(args.iter().map(|&a| (a, under_ite)));
    }
    out.sort_by_key(|a| (a.addr, a.size, a.write));
    out.dedup();
    out
}

/// `(base, offset)` of an address `base + c` (`base` `None` for a constant).
pub(crate) fn base_offset(pool: &ExprPool, a: ExprId) -> (Option<ExprId>, u32) {
    if let Some(c) = pool.as_const(a) {
        return (None, c as u32);
    }
    if pool.op(a) == Op::Add {
        let args = pool.args(a);
        if let Some(c) = pool.as_const(args[1]) {
            return (Some(args[0]), c as u32);
        }
    }
    (Some(a), 0)
}

/// Whether access `c` lies inside one of `allowed` (same base term, the
/// bytes within; a write only inside a write).
pub(crate) fn covered(pool: &ExprPool, c: &Access, allowed: &[Access]) -> bool {
    let (cb, co) = base_offset(pool, c.addr);
    allowed.iter().any(|g| {
        if c.write && !g.write {
            return false;
        }
        let (gb, go) = base_offset(pool, g.addr);
        cb == gb && u64::from(co.wrapping_sub(go)) + u64::from(c.size) <= u64::from(g.size)
    })
}

/// Constants worth trying as immediates, with their widths: the static
/// register values, those of the register and memory formulas (and, for 32
/// bits, their negations), masks implied by extracts of low bits, then the
/// constants of the flag formulas (operands of a `cmp`).
fn constants(
    pool: &ExprPool,
    roots: &[ExprId],
    flag_roots: &[ExprId],
    statics: &[(Reg, u32)],
) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    let mut push = |v: u64, w: u32| {
        if !(w == 8 || w == 16 || w == 32) {
            return;
        }
        let v = v as u32;
        if !out.contains(&(v, w)) {
            out.push((v, w));
        }
    };
    for &(_, v) in statics {
        push(u64::from(v), 32);
    }
    let subterms = pool.subterms(roots);
    for &s in &subterms {
        match pool.op(s) {
            Op::Const { val, width } => push(val, width),
            Op::Extract { hi, lo: 0 } if hi < 31 && pool.sort(pool.args(s)[0]) == Sort::Bv(32) => {
                push((1u64 << (hi + 1)) - 1, 32)
            }
            _ => {}
        }
    }
    for &s in &subterms {
        if let Op::Const { val, width: 32 } = pool.op(s) {
            push((val as u32).wrapping_neg().into(), 32);
        }
    }
    for s in pool.subterms(flag_roots) {
        if let Op::Const {
            val,
            width: 8 | 16 | 32,
        } = pool.op(s)
        {
            push(val, pool.width(s));
        }
    }
    out.truncate(MAX_CONSTS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An access of `size` bytes at `base + offset`.
    fn at(pool: &mut ExprPool, base: &str, offset: u64, size: u32, write: bool) -> Access {
        let b = pool.var(base, 32);
        let k = pool.bv(offset, 32);
        let addr = pool.add(b, k);
        Access { addr, size, write }
    }

    /// A candidate may touch only bytes the goal touches: same base, inside
    /// the range, a write only where the goal writes. Anything else could
    /// fault where the original does not, which no proof of equal values
    /// rules out.
    #[test]
    fn covered_accepts_only_accesses_inside_the_goal_s() {
        let mut p = ExprPool::new();
        let goal = [
            at(&mut p, "esp", 4, 4, false),
            at(&mut p, "ebx", 0, 2, true),
        ];
        let inside = [
            at(&mut p, "esp", 4, 4, false),
            at(&mut p, "esp", 6, 2, false),
            at(&mut p, "ebx", 1, 1, true),
            at(&mut p, "ebx", 0, 2, false),
        ];
        for c in &inside {
            assert!(covered(&p, c, &goal), "{c:?}");
        }
        let outside = [
            at(&mut p, "esp", 8, 4, false), // same base, past the end
            at(&mut p, "esp", 6, 4, false), // same base, straddles the end
            at(&mut p, "esp", 0, 4, false), // same base, before the start
            at(&mut p, "ecx", 4, 4, false), // another base, same offset
            at(&mut p, "esp", 4, 4, true),  // a write where the goal reads
        ];
        for c in &outside {
            assert!(!covered(&p, c, &goal), "{c:?}");
        }
    }

    /// The same address but more bytes than the goal touches is outside
    /// it: a 4-byte read where the goal reads one byte, a 4-byte write where
    /// it writes two (the extra bytes may lie past the end of a page).
    #[test]
    fn covered_refuses_a_wider_access_at_the_same_address() {
        let mut p = ExprPool::new();
        let goal = [
            at(&mut p, "esp", 4, 1, false),
            at(&mut p, "ebx", 0, 2, true),
        ];
        for c in [
            at(&mut p, "esp", 4, 4, false),
            at(&mut p, "esp", 4, 2, false),
            at(&mut p, "ebx", 0, 4, true),
            at(&mut p, "ebx", 0, 4, false),
        ] {
            assert!(!covered(&p, &c, &goal), "{c:?}");
        }
        for c in [
            at(&mut p, "esp", 4, 1, false),
            at(&mut p, "ebx", 0, 2, true),
        ] {
            assert!(covered(&p, &c, &goal), "{c:?}");
        }
    }
}
