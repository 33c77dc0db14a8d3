//! An independent re-computation of binding times, for comparison with the
//! graph-based slice: a forward fixpoint over the part-level CFG that tracks
//! which locations are dynamic (registers, flags, temporaries, memory
//! regions with the public may-alias relation; an exact location written
//! with a static value is static until a dynamic write may reach it, even
//! inside a wider dynamic region), with control dependences
//! from naively computed post-dominator sets, iterated globally until the
//! set of dynamic branches is stable. It uses only the public API: the
//! parts' formulas, their classified accesses, the stack states, the call
//! sites' outputs and `moves_stack_only`.

use std::collections::BTreeSet;

use wiper_bta::{AbstractLoc, AccessKind, Analysis, CallOutput, Offset};
use wiper_qfbv::{ExprId, ExprPool, Op};
use wiper_sem::{Flag, Loc, Reg, Value};
use wiper_x86::Successor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Region {
    Loc(AbstractLoc),
    /// Memory outside the binary, the stack and the buffers.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct St {
    locs: BTreeSet<Loc>,
    taint: BTreeSet<Reg>,
    mem: BTreeSet<Region>,
    /// Exact locations last written with a static value after every
    /// dynamic write that may reach them: static whatever wider dynamic
    /// region holds them (a strong update).
    clean: BTreeSet<AbstractLoc>,
}

impl St {
    fn join(&mut self, o: &St) {
        self.locs.extend(o.locs.iter().copied());
        self.taint.extend(o.taint.iter().copied());
        self.mem.extend(o.mem.iter().copied());
        self.clean.retain(|c| o.clean.contains(c));
    }

    /// A dynamic write may reach `l`: it is dynamic memory, and the clean
    /// locations it may reach are clean no more.
    fn write_dynamic(&mut self, l: AbstractLoc, escaped: bool) {
        self.mem.insert(Region::Loc(l));
        self.clean.retain(|c| !c.may_alias(&l, escaped));
    }
}

/// Whether the exact location `c` holds all of `l`.
fn covers(c: AbstractLoc, l: AbstractLoc) -> bool {
    match (range(c), range(l)) {
        (Some((s1, k1, a1, b1)), Some((s2, k2, a2, b2))) => {
            s1 == s2 && k1 == k2 && a1 <= a2 && b2 <= b1
        }
        _ => false,
    }
}

fn reads(pool: &ExprPool, roots: &[ExprId]) -> (BTreeSet<Loc>, BTreeSet<Loc>) {
    let mut data = BTreeSet::new();
    let mut addr = BTreeSet::new();
    let mut stack: Vec<(ExprId, bool)> = roots.iter().map(|&r| (r, false)).collect();
    let mut seen = BTreeSet::new();
    while let Some((e, in_addr)) = stack.pop() {
        if !seen.insert((e, in_addr)) {
            continue;
        }
        match pool.op(e) {
            Op::Var(v) => {
                if let Some(l) = Loc::of_var(pool, v) {
                    if l != Loc::Mem {
                        if in_addr {
                            addr.insert(l);
                        } else {
                            data.insert(l);
                        }
                    }
                }
            }
            Op::Load(_) => {
                stack.push((pool.args(e)[0], in_addr));
                stack.push((pool.args(e)[1], true));
            }
            Op::Store => {
                let a = pool.args(e);
                stack.push((a[0], in_addr));
                stack.push((a[1], true));
                stack.push((a[2], in_addr));
            }
            _ => stack.extend(pool.args(e).iter().map(|&a| (a, in_addr))),
        }
    }
    (data, addr)
}

fn range(l: AbstractLoc) -> Option<(u8, u32, i64, i64)> {
    match l {
        AbstractLoc::Stack { offset, size } => {
            Some((0, 0, offset.into(), i64::from(offset) + i64::from(size)))
        }
        AbstractLoc::Global { addr, size, .. } => {
            Some((1, 0, addr.into(), i64::from(addr) + i64::from(size)))
        }
        AbstractLoc::Buffer { arg, offset, size } => {
            Some((2, arg, offset.into(), i64::from(offset) + i64::from(size)))
        }
        _ => None,
    }
}

fn with_range(l: AbstractLoc, lo: i64, hi: i64) -> AbstractLoc {
    match l {
        AbstractLoc::Stack { .. } => AbstractLoc::Stack {
            offset: lo as i32,
            size: (hi - lo) as u32,
        },
        AbstractLoc::Global { read_only, .. } => AbstractLoc::Global {
            addr: lo as u32,
            size: (hi - lo) as u32,
            read_only,
        },
        AbstractLoc::Buffer { arg, .. } => AbstractLoc::Buffer {
            arg,
            offset: lo as i32,
            size: (hi - lo) as u32,
        },
        other => other,
    }
}

/// Binding times by the checker: `true` = dynamic, per part (`None`:
/// unreachable).
pub fn check(a: &Analysis, static_args: &[u32]) -> Vec<Option<bool>> {
    let n = a.parts.len();
    let exit = n;
    // Successors with the exit.
    let mut succ: Vec<Vec<usize>> = (0..n)
        .map(|p| {
            a.successors(a.parts[p].id)
                .iter()
                .map(|q| q.index())
                .collect()
        })
        .collect();
    #[allow(clippy::needless_range_loop)]
    for p in 0..n {
        let last = p + 1 == n || a.parts[p + 1].block != a.parts[p].block;
        if !last {
            continue;
        }
        let block = &a.function.blocks[&a.parts[p].block];
        let leaves = block.successors.iter().any(|s| {
            matches!(
                s,
                Successor::Return
                    | Successor::Halt
                    | Successor::TailCall(_)
                    | Successor::IndirectJump
            )
        }) || block.local_successors().next().is_none();
        if leaves {
            succ[p].push(exit);
        }
    }
    let entry = a
        .parts
        .iter()
        .find(|p| p.block == a.function.entry)
        .map(|p| p.id.index());
    let Some(entry) = entry else {
        return vec![None; n];
    };
    // Post-dominator sets over parts + exit.
    let words = (n + 1).div_ceil(64);
    let full = vec![u64::MAX; words];
    let mut pdom: Vec<Vec<u64>> = vec![full.clone(); n + 1];
    let mut exitset = vec![0u64; words];
    exitset[exit / 64] |= 1 << (exit % 64);
    pdom[exit] = exitset;
    // Parts that cannot reach the exit get it as a successor.
    let mut reach = vec![false; n + 1];
    reach[exit] = true;
    let mut changed = true;
    while changed {
        changed = false;
        for p in 0..n {
            if !reach[p] && succ[p].iter().any(|&s| reach[s]) {
                reach[p] = true;
                changed = true;
            }
        }
    }
    // The extra edges only serve the post-dominators, not branches.
    let branch_succ = succ.clone();
    for p in 0..n {
        if !reach[p] {
            succ[p].push(exit);
        }
    }
    changed = true;
    while changed {
        changed = false;
        for p in (0..n).rev() {
            let mut acc = full.clone();
            for &s in &succ[p] {
                for (x, y) in acc.iter_mut().zip(&pdom[s]) {
                    *x &= *y;
                }
            }
            acc[p / 64] |= 1 << (p % 64);
            if acc != pdom[p] {
                pdom[p] = acc;
                changed = true;
            }
        }
    }
    let has = |set: &Vec<u64>, i: usize| set[i / 64] >> (i % 64) & 1 != 0;
    // cd[y] = branches x that y is control dependent on.
    let mut cd: Vec<Vec<usize>> = vec![Vec::new(); n];
    for x in 0..n {
        let mut ss = branch_succ[x].clone();
        ss.sort();
        ss.dedup();
        if ss.len() < 2 {
            continue;
        }
        let ss: Vec<usize> = ss.into_iter().filter(|&s| s != exit || reach[x]).collect();
        for (y, deps) in cd.iter_mut().enumerate() {
            let strictly = y != x && has(&pdom[x], y);
            if !strictly && ss.iter().any(|&s| has(&pdom[s], y)) {
                deps.push(x);
            }
        }
    }
    // Per part: reads and writes.
    let info: Vec<(BTreeSet<Loc>, BTreeSet<Loc>, BTreeSet<Loc>)> = a
        .parts
        .iter()
        .map(|p| {
            let roots: Vec<ExprId> = p
                .part
                .effects
                .iter()
                .filter_map(|e| match e.value {
                    Value::Expr(x) => Some(x),
                    Value::Undefined => None,
                })
                .chain(p.part.fault)
                .chain(p.part.opaque.iter().flat_map(|o| o.inputs.iter().copied()))
                .collect();
            let (d, ad) = reads(&a.pool, &roots);
            (d, ad, p.part.writes())
        })
        .collect();
    let mut entry_state = St {
        locs: BTreeSet::new(),
        taint: BTreeSet::new(),
        mem: BTreeSet::new(),
        clean: BTreeSet::new(),
    };
    for r in Reg::ALL {
        if r != Reg::Esp {
            entry_state.locs.insert(Loc::Reg(r));
        }
    }
    for f in Flag::ALL {
        if f != Flag::Df {
            entry_state.locs.insert(Loc::Flag(f));
        }
    }
    for k in 0..a.arg_count {
        if !static_args.contains(&k) {
            entry_state.mem.insert(Region::Loc(AbstractLoc::Stack {
                offset: wiper_x86::abi::arg_offset(k) as i32,
                size: 4,
            }));
        }
    }
    entry_state
        .mem
        .insert(Region::Loc(AbstractLoc::Stack { offset: 0, size: 4 }));
    entry_state.mem.insert(Region::Loc(AbstractLoc::GlobalAny {
        base: 0,
        read_only: false,
    }));
    entry_state.mem.insert(Region::Other);

    let escaped = a.escaped;
    // A dynamic region that lies in a register save slot is invisible to
    // indexed and unknown accesses.
    let in_save = |x: &AbstractLoc| match range(*x) {
        Some((0, _, lo, hi)) => a
            .save_slots
            .iter()
            .any(|&o| i64::from(o) <= lo && hi <= i64::from(o) + 4),
        _ => false,
    };
    let mem_dyn = |st: &St, l: AbstractLoc| {
        if l.is_exact() && st.clean.iter().any(|&c| covers(c, l)) {
            return false;
        }
        st.mem.iter().any(|r| match r {
            Region::Other => l == AbstractLoc::Unknown,
            Region::Loc(x) => {
                x.may_alias(&l, escaped)
                    && (l.is_exact() || x.is_exact() && !in_save(x) || !x.is_exact())
            }
        })
    };
    let mut dyn_parts: Vec<bool> = vec![false; n];
    loop {
        let mut inn: Vec<Option<St>> = vec![None; n];
        inn[entry] = Some(entry_state.clone());
        let mut result: Vec<Option<bool>> = vec![None; n];
        let mut work = vec![entry];
        let mut queued = vec![false; n];
        queued[entry] = true;
        while let Some(p) = work.pop() {
            queued[p] = false;
            let st = inn[p].clone().expect("state");
            let part = &a.parts[p].part;
            let (data, addr, writes) = &info[p];
            let ss = a.stack[p];
            let known = |r: Reg| match r {
                Reg::Esp => ss.esp != Offset::Unknown,
                Reg::Ebp => ss.ebp != Offset::Unknown,
                _ => false,
            };
            let mut uses: BTreeSet<Loc> = data.clone();
            for l in addr {
                if let Loc::Reg(r) = l {
                    if known(*r) {
                        continue;
                    }
                }
                uses.insert(*l);
            }
            let under_dyn = cd[p].iter().any(|&b| dyn_parts[b]);
            let exempt = a.moves_stack_only(a.parts[p].id);
            // Barriers and opaque parts (no formulas for their results) are
            // dynamic whatever they read.
            let mut dynamic = part.barrier.is_some()
                || part.opaque.is_some()
                || uses.iter().any(|l| st.locs.contains(l))
                || uses.iter().any(|l| match l {
                    Loc::Reg(r @ (Reg::Esp | Reg::Ebp)) => st.taint.contains(r) && !known(*r),
                    _ => false,
                })
                || a.accesses[p]
                    .iter()
                    .any(|x| x.kind == AccessKind::Read && mem_dyn(&st, x.loc))
                || ((data.contains(&Loc::Reg(Reg::Esp)) || addr.contains(&Loc::Reg(Reg::Esp)))
                    && ss.esp == Offset::Unknown)
                || (under_dyn && !exempt);
            if part.barrier.is_some() {
                // reads everything
                dynamic = true;
            }
            result[p] = Some(dynamic);
            let mut out = st.clone();
            for l in writes {
                match l {
                    Loc::Reg(_) | Loc::Flag(_) | Loc::Temp(_) => {
                        let flag_of_exempt = exempt && under_dyn && matches!(l, Loc::Flag(_));
                        if dynamic || flag_of_exempt {
                            out.locs.insert(*l);
                        } else {
                            out.locs.remove(l);
                        }
                        if let Loc::Reg(r @ (Reg::Esp | Reg::Ebp)) = l {
                            if exempt && under_dyn {
                                out.taint.insert(*r);
                            } else {
                                out.taint.remove(r);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if part.barrier.is_some() {
                out.locs.insert(Loc::Reg(Reg::Eax));
                out.taint.remove(&Reg::Eax);
            }
            for x in &a.accesses[p] {
                match x.kind {
                    AccessKind::Read => {}
                    _ if dynamic => out.write_dynamic(x.loc, escaped),
                    AccessKind::Write => {
                        if x.loc.is_exact() {
                            out.clean.insert(x.loc);
                        }
                        if let Some((sp, k, lo, hi)) = range(x.loc) {
                            let old: Vec<Region> = out.mem.iter().copied().collect();
                            out.mem.clear();
                            for r in old {
                                match r {
                                    Region::Loc(y) => match range(y) {
                                        Some((sp2, k2, a2, b2))
                                            if sp2 == sp && k2 == k && a2 < hi && lo < b2 =>
                                        {
                                            if a2 < lo {
                                                out.mem.insert(Region::Loc(with_range(y, a2, lo)));
                                            }
                                            if hi < b2 {
                                                out.mem.insert(Region::Loc(with_range(y, hi, b2)));
                                            }
                                        }
                                        _ => {
                                            out.mem.insert(r);
                                        }
                                    },
                                    Region::Other => {
                                        out.mem.insert(r);
                                    }
                                }
                            }
                        }
                    }
                    AccessKind::MayWrite => {}
                }
            }
            if let Some(c) = a.call_at(a.parts[p].id) {
                if c.tail {
                    continue;
                }
                for (o, d) in &c.outputs {
                    let d = *d || under_dyn;
                    match o {
                        CallOutput::Reg(r) => {
                            if d {
                                out.locs.insert(Loc::Reg(*r));
                            } else {
                                out.locs.remove(&Loc::Reg(*r));
                            }
                        }
                        CallOutput::Flags => {
                            for f in Flag::ALL {
                                if f != Flag::Df {
                                    if d {
                                        out.locs.insert(Loc::Flag(f));
                                    } else {
                                        out.locs.remove(&Loc::Flag(f));
                                    }
                                }
                            }
                        }
                        CallOutput::Mem(l) => {
                            if d {
                                out.write_dynamic(*l, escaped);
                            }
                        }
                    }
                }
            }
            for &s in &succ[p] {
                if s == exit {
                    continue;
                }
                let new = match &inn[s] {
                    None => out.clone(),
                    Some(old) => {
                        let mut j = old.clone();
                        j.join(&out);
                        j
                    }
                };
                if inn[s].as_ref() != Some(&new) || result[s].is_none() {
                    inn[s] = Some(new);
                    if !queued[s] {
                        queued[s] = true;
                        work.push(s);
                    }
                }
            }
        }
        let new_dyn: Vec<bool> = result.iter().map(|r| r.unwrap_or(false)).collect();
        if new_dyn == dyn_parts {
            return result;
        }
        // Branch dynamic-ness only grows.
        for (d, nd) in dyn_parts.iter_mut().zip(new_dyn) {
            *d |= nd;
        }
    }
}
