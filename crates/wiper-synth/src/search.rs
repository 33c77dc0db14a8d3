//! The McSynth-style enumerative search: an instruction pool pruned by the
//! goal's footprint (the registers its formulas read, the registers it may
//! write, its constants, and opcodes chosen by the operators its formulas
//! use), then sequences of length 1, 2 and 3 in order, each pruned by
//! liveness (every instruction must write something a later one reads or the
//! goal needs) and refuted by concrete evaluation before any proof; and
//! divide and conquer, which splits a goal into independent locations,
//! synthesizes each and verifies the concatenation.

use std::rc::Rc;

use iced_x86::Instruction;
use wiper_qfbv::{ExprId, ExprPool, Op};
use wiper_sem::{Loc, Reg};

use crate::asm::{build, sized, Opnd};
use crate::cands::{decompose, var_reg};
use crate::compose::{LiftInfo, SymState};
use crate::spec::Spec;
use crate::{GoalCtx, Synthesizer};

/// Scratch registers the pool uses at most.
const MAX_SCRATCH: usize = 2;
/// 32-bit constants the pool uses at most.
const MAX_POOL_CONSTS: usize = 6;
/// Condition-code suffixes of `setcc`/`cmovcc` (iced spelling).
const CONDS: [&str; 16] = [
    "o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g",
];

/// Which operator families the goal's formulas use.
#[derive(Default, Debug)]
struct Ops {
    add: bool,
    mul: bool,
    wide_mul: bool,
    shl: bool,
    shr: bool,
    sar: bool,
    rot: bool,
    and: bool,
    or: bool,
    xor: bool,
    not: bool,
    zext: bool,
    sext: bool,
    cmp: bool,
    ite: bool,
}

impl Ops {
    fn of(pool: &ExprPool, roots: &[ExprId]) -> Ops {
        let mut o = Ops::default();
        for s in pool.subterms(roots) {
            let w = pool.sort(s).width().unwrap_or(0);
            match pool.op(s) {
                Op::Add | Op::Sub | Op::Neg => o.add = true,
                Op::Mul if w > 32 => o.wide_mul = true,
                Op::Mul => o.mul = true,
                Op::Shl => o.shl = true,
                Op::Lshr => o.shr = true,
                Op::Ashr => o.sar = true,
                Op::Rotl | Op::Rotr => o.rot = true,
                Op::And => o.and = true,
                Op::Or => o.or = true,
                Op::Xor => o.xor = true,
                Op::Not => o.not = true,
                Op::ZeroExt(_) => {
                    o.zext = true;
                    if pool.width(pool.args(s)[0]) == 1 {
                        o.cmp = true;
                    }
                }
                Op::SignExt(_) => o.sext = true,
                Op::Extract { lo: 0, hi } => {
                    o.zext = true;
                    // Low bits other than a byte or a word: a mask.
                    o.and |= hi != 7 && hi != 15 && hi < 31;
                }
                Op::Extract { .. } => o.shr = true,
                Op::Eq | Op::Ult | Op::Ule | Op::Slt | Op::Sle => o.cmp = true,
                Op::Ite => o.ite = true,
                _ => {}
            }
        }
        o
    }
}

/// The goal's footprint: what the instruction pool is built from.
struct Footprint {
    /// The operator families the pool offers.
    ops: Ops,
    /// Registers the formulas read.
    srcs: Vec<Reg>,
    /// Registers the pool may write: the changed ones and a few scratch.
    dsts: Vec<Reg>,
    /// Sources, then destinations not already sources.
    readable: Vec<Reg>,
    /// 32-bit constants of the goal.
    consts: Vec<u32>,
    /// Constants usable as shift counts.
    counts: Vec<u32>,
    /// Whether `cl` is a source.
    has_cl: bool,
    /// Whether the formulas read the carry flag.
    reads_cf: bool,
}

impl Footprint {
    /// The footprint of `spec`.
    fn of(pool: &ExprPool, spec: &Spec) -> Footprint {
        let ops = wanted_ops(pool, spec);
        // Registers the formulas read (sources) and may write (destinations).
        let roots: Vec<ExprId> = spec.targets().into_iter().map(|(_, e)| e).collect();
        let mut srcs: Vec<Reg> = Vec::new();
        for s in pool.subterms(&roots) {
            if let Some(r) = var_reg(pool, s) {
                if !spec.is_stale(r) && !srcs.contains(&r) {
                    srcs.push(r);
                }
            }
        }
        let mut dsts: Vec<Reg> = Reg::ALL
            .into_iter()
            .filter(|r| spec.changed_regs & 1 << r.index() != 0 && *r != Reg::Esp)
            .collect();
        // Scratch registers, those the formulas read first (an operation in
        // place on a dead source is common).
        let mut scratch: Vec<Reg> = Reg::ALL
            .into_iter()
            .filter(|r| spec.scratch & 1 << r.index() != 0)
            .collect();
        scratch.sort_by_key(|r| !srcs.contains(r));
        dsts.extend(scratch.into_iter().take(MAX_SCRATCH));
        let mut readable = srcs.clone();
        for d in &dsts {
            if !readable.contains(d) {
                readable.push(*d);
            }
        }
        let mut consts: Vec<u32> = spec
            .consts
            .iter()
            .filter(|c| c.1 == 32)
            .map(|c| c.0)
            .take(MAX_POOL_CONSTS)
            .collect();
        // The low bits of a register zero-extended are a mask (the pool's
        // normal form of `x & 0xf` and of an unsigned `x % 16`).
        for s in pool.subterms(&roots) {
            let Op::Extract { hi, lo: 0 } = pool.op(s) else {
                continue;
            };
            if hi < 31 {
                let mask = (1u32 << (hi + 1)) - 1;
                if !consts.contains(&mask) && consts.len() < MAX_POOL_CONSTS {
                    consts.push(mask);
                }
            }
        }
        let mut counts: Vec<u32> = consts
            .iter()
            .copied()
            .filter(|&c| (1..32).contains(&c))
            .collect();
        // A right shift by a constant is an extraction of the high bits
        // (the pool's normal form of `x >> k` and of `x / 2^k`): `k` is a
        // count the goal has no constant for.
        for s in pool.subterms(&roots) {
            if let Op::Extract { hi: 31, lo } = pool.op(s) {
                if (1..32).contains(&lo) && !counts.contains(&lo) {
                    counts.push(lo);
                }
            }
        }
        let has_cl = srcs.contains(&Reg::Ecx);
        let reads_cf = pool.subterms(&roots).into_iter().any(|e| {
            matches!(
                pool.as_var(e).and_then(|v| Loc::of_var(pool, v)),
                Some(Loc::Flag(wiper_sem::Flag::Cf))
            )
        });
        Footprint {
            ops,
            srcs,
            dsts,
            readable,
            consts,
            counts,
            has_cl,
            reads_cf,
        }
    }
}

/// The operator families of the changed data, plus those flags need.
fn wanted_ops(pool: &ExprPool, spec: &Spec) -> Ops {
    let data: Vec<ExprId> = spec
        .targets()
        .into_iter()
        .filter(|(l, _)| match l {
            Loc::Reg(r) => spec.changed_regs & 1 << r.index() != 0,
            Loc::Mem => spec.mem_changed,
            _ => false,
        })
        .map(|(_, e)| e)
        .collect();
    let mut ops = Ops::of(pool, &data);
    let flags = spec.changed_flags != 0;
    if flags {
        ops.cmp = true;
        let all: Vec<ExprId> = spec.targets().into_iter().map(|(_, e)| e).collect();
        let fo = Ops::of(pool, &all);
        ops.add |= fo.add;
        ops.and |= fo.and && !fo.add;
    }
    ops
}

/// The 32-bit register operand `r`.
fn r32(r: Reg) -> Opnd {
    Opnd::R(r.to_iced())
}

/// The instruction pool for `spec`, cheapest-looking first.
pub(crate) fn templates(pool: &ExprPool, spec: &Spec) -> Vec<Instruction> {
    let fp = Footprint::of(pool, spec);
    let mut out: Vec<Option<Instruction>> = Vec::new();
    move_templates(&fp, &mut out);
    for &d in &fp.dsts {
        arith_templates(&fp, d, &mut out);
        shift_templates(&fp, d, &mut out);
        logic_templates(&fp, d, &mut out);
        extend_templates(&fp, d, &mut out);
        cond_templates(&fp, d, &mut out);
    }
    compare_templates(&fp, &mut out);
    if fp.ops.wide_mul {
        for &s in &fp.readable {
            out.push(build("Mul", &[r32(s)]));
            out.push(build("Imul", &[r32(s)]));
        }
    }
    memory_templates(pool, spec, &fp, &mut out);
    let mut seen = Vec::new();
    for i in out.into_iter().flatten() {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    seen
}

/// `mov d, src` for every destination from every other readable register
/// and every constant.
fn move_templates(fp: &Footprint, out: &mut Vec<Option<Instruction>>) {
    for &d in &fp.dsts {
        let dd = r32(d);
        for &s in &fp.readable {
            if s != d {
                out.push(build("Mov", &[dd, r32(s)]));
            }
        }
        for &k in &fp.consts {
            out.push(build("Mov", &[dd, Opnd::I(k)]));
        }
    }
}

/// `mn d, src` for every readable register and every constant.
fn binary_templates(fp: &Footprint, mn: &str, d: Reg, out: &mut Vec<Option<Instruction>>) {
    let dd = r32(d);
    for &s in &fp.readable {
        out.push(build(mn, &[dd, r32(s)]));
    }
    for &k in &fp.consts {
        out.push(build(mn, &[dd, Opnd::I(k)]));
    }
}

/// Additive (add, sub, adc, sbb, inc, dec, neg, lea) and multiplicative
/// (imul) operations into `d`.
fn arith_templates(fp: &Footprint, d: Reg, out: &mut Vec<Option<Instruction>>) {
    let dd = r32(d);
    if fp.ops.add {
        binary_templates(fp, "Add", d, out);
        binary_templates(fp, "Sub", d, out);
        if fp.reads_cf {
            binary_templates(fp, "Adc", d, out);
            binary_templates(fp, "Sbb", d, out);
        }
        out.push(build("Inc", &[dd]));
        out.push(build("Dec", &[dd]));
        out.push(build("Neg", &[dd]));
        for &s in &fp.srcs {
            for &k in &fp.consts {
                let a = decompose_addr(s, k);
                out.push(build("Lea", &[dd, Opnd::M(a, 32)]));
            }
        }
    }
    if fp.ops.mul {
        for &s in &fp.readable {
            out.push(build("Imul", &[dd, r32(s)]));
            for &k in &fp.consts {
                out.push(build("Imul", &[dd, r32(s), Opnd::I(k)]));
            }
        }
    }
}

/// `mn d, count` for the constant counts, 1 and `cl`.
fn shift_by(fp: &Footprint, mn: &str, d: Reg, out: &mut Vec<Option<Instruction>>) {
    let dd = r32(d);
    for &k in &fp.counts {
        out.push(build(mn, &[dd, Opnd::I(k)]));
    }
    if !fp.counts.contains(&1) {
        out.push(build(mn, &[dd, Opnd::I(1)]));
    }
    if fp.has_cl && d != Reg::Ecx {
        out.push(build(mn, &[dd, Opnd::R(iced_x86::Register::CL)]));
    }
}

/// Shifts and rotates of `d`.
fn shift_templates(fp: &Footprint, d: Reg, out: &mut Vec<Option<Instruction>>) {
    let ops = &fp.ops;
    if ops.shl || ops.mul {
        shift_by(fp, "Shl", d, out);
    }
    if ops.shr {
        shift_by(fp, "Shr", d, out);
    }
    if ops.sar {
        shift_by(fp, "Sar", d, out);
    }
    if ops.rot {
        shift_by(fp, "Rol", d, out);
        shift_by(fp, "Ror", d, out);
    }
}

/// Bitwise operations (and, or, xor, not) into `d`.
fn logic_templates(fp: &Footprint, d: Reg, out: &mut Vec<Option<Instruction>>) {
    if fp.ops.and {
        binary_templates(fp, "And", d, out);
    }
    if fp.ops.or {
        binary_templates(fp, "Or", d, out);
    }
    if fp.ops.xor {
        binary_templates(fp, "Xor", d, out);
    }
    if fp.ops.not {
        out.push(build("Not", &[r32(d)]));
    }
}

/// Zero and sign extensions of register parts into `d`, and `cdq`.
fn extend_templates(fp: &Footprint, d: Reg, out: &mut Vec<Option<Instruction>>) {
    let dd = r32(d);
    for (flag, mn) in [(fp.ops.zext, "Movzx"), (fp.ops.sext, "Movsx")] {
        if !flag {
            continue;
        }
        for &s in &fp.readable {
            for part in [sized(s, 8), s.high_byte(), sized(s, 16)]
                .into_iter()
                .flatten()
            {
                out.push(build(mn, &[dd, Opnd::R(part)]));
            }
        }
    }
    if fp.ops.sext && d == Reg::Edx && fp.readable.contains(&Reg::Eax) {
        out.push(build("Cdq", &[]));
    }
}

/// Conditional writes of `d`: `setcc` of its low byte and `cmovcc`.
fn cond_templates(fp: &Footprint, d: Reg, out: &mut Vec<Option<Instruction>>) {
    if fp.ops.cmp {
        if let Some(d8) = sized(d, 8) {
            for c in CONDS {
                out.push(build(&format!("Set{c}"), &[Opnd::R(d8)]));
            }
        }
    }
    if fp.ops.ite {
        for c in CONDS {
            for &s in &fp.readable {
                if s != d {
                    out.push(build(&format!("Cmov{c}"), &[r32(d), r32(s)]));
                }
            }
        }
    }
}

/// `cmp` and `test` of readable registers against each other and the
/// constants.
fn compare_templates(fp: &Footprint, out: &mut Vec<Option<Instruction>>) {
    if !fp.ops.cmp {
        return;
    }
    for &s in &fp.readable {
        for &t in &fp.readable {
            out.push(build("Cmp", &[r32(s), r32(t)]));
            out.push(build("Test", &[r32(s), r32(t)]));
        }
        for &k in &fp.consts {
            out.push(build("Cmp", &[r32(s), Opnd::I(k)]));
            out.push(build("Test", &[r32(s), Opnd::I(k)]));
        }
    }
}

/// Loads, compares and stores at the goal's own memory accesses only.
fn memory_templates(
    pool: &ExprPool,
    spec: &Spec,
    fp: &Footprint,
    out: &mut Vec<Option<Instruction>>,
) {
    let ops = &fp.ops;
    for acc in &spec.accesses {
        let Some(a) = decompose(pool, acc.addr, spec.stale) else {
            continue;
        };
        let w = acc.size * 8;
        for &d in &fp.dsts {
            let dd = r32(d);
            match w {
                32 => out.push(build("Mov", &[dd, Opnd::M(a, 32)])),
                8 | 16 => {
                    out.push(build("Movzx", &[dd, Opnd::M(a, w)]));
                    out.push(build("Movsx", &[dd, Opnd::M(a, w)]));
                }
                _ => {}
            }
        }
        if ops.cmp {
            let m = Opnd::M(a, w);
            for &s in &fp.readable {
                if let Some(r) = sized(s, w) {
                    out.push(build("Cmp", &[m, Opnd::R(r)]));
                    out.push(build("Test", &[m, Opnd::R(r)]));
                }
            }
            for &(k, kw) in &spec.consts {
                if kw == w {
                    out.push(build("Cmp", &[m, Opnd::I(k)]));
                    out.push(build("Test", &[m, Opnd::I(k)]));
                }
            }
        }
        if acc.write && spec.mem_changed {
            let m = Opnd::M(a, w);
            let mut regs: Vec<Opnd> = fp
                .readable
                .iter()
                .filter_map(|&s| sized(s, w))
                .map(Opnd::R)
                .collect();
            regs.extend(fp.consts.iter().map(|&k| Opnd::I(k)));
            for &x in &regs {
                out.push(build("Mov", &[m, x]));
                for (on, mn) in [
                    (ops.add, "Add"),
                    (ops.add, "Sub"),
                    (ops.and, "And"),
                    (ops.or, "Or"),
                    (ops.xor, "Xor"),
                ] {
                    if on {
                        out.push(build(mn, &[m, x]));
                    }
                }
            }
        }
    }
}

/// `[s + k]`.
fn decompose_addr(s: Reg, k: u32) -> crate::asm::Addr {
    crate::asm::Addr {
        base: Some(s),
        index: None,
        disp: k,
    }
}

/// A pool entry: an instruction and its prepared lift.
struct Entry {
    ins: Instruction,
    info: Rc<LiftInfo>,
}

/// Whether instruction `a`, followed by `later`, does something useful:
/// writes a location the goal changes or a later instruction reads.
fn useful(spec: &Spec, a: &LiftInfo, later: &[&LiftInfo]) -> bool {
    let reads_regs = later.iter().fold(0u8, |m, i| m | i.reads_regs);
    let reads_flags = later.iter().fold(0u8, |m, i| m | i.reads_flags);
    let reads_mem = later.iter().any(|i| i.reads_mem);
    a.writes_regs & (spec.changed_regs | reads_regs) != 0
        || a.writes_flags & (spec.changed_flags | reads_flags) != 0
        || a.writes_mem && (spec.mem_changed || reads_mem)
}

impl Synthesizer {
    /// The pool for `spec`, pruned by what the instructions may write.
    fn entries(&mut self, spec: &Spec) -> Vec<Entry> {
        let mut out = Vec::new();
        for ins in templates(&self.pool, spec) {
            let Some(info) = self.composer.info(&mut self.pool, &ins) else {
                continue;
            };
            let i = &info;
            if i.unusable
                || i.faults
                || i.writes_regs & !spec.writable() != 0
                || i.writes_flags & spec.kept_flags != 0
                || (i.writes_mem && !spec.mem_changed)
                || i.reads_regs & spec.stale & !spec.writable() != 0
            {
                continue;
            }
            out.push(Entry { ins, info });
        }
        out
    }

    /// Enumerates sequences of up to `max_len` instructions from the pool
    /// until one is proved or the goal's candidate budget is spent.
    pub(crate) fn search(&mut self, ctx: &mut GoalCtx, max_len: usize) -> Option<Vec<Instruction>> {
        let spec = ctx.spec.clone();
        let pool = self.entries(&spec);
        let init = SymState::initial(&mut self.pool, spec.stale);
        // Length 1.
        for e in &pool {
            if ctx.exhausted() {
                return None;
            }
            if !useful(&spec, &e.info, &[]) {
                continue;
            }
            if let Some(st) = init.step(&mut self.pool, &e.info) {
                if self.check_state(ctx, &st, false) {
                    return Some(vec![e.ins]);
                }
            }
        }
        if max_len < 2 {
            return None;
        }
        // Length 2 and 3, depth first over prefixes.
        for (ia, a) in pool.iter().enumerate() {
            if ctx.exhausted() {
                return None;
            }
            let Some(sa) = init.step(&mut self.pool, &a.info) else {
                continue;
            };
            for (ib, b) in pool.iter().enumerate() {
                if ctx.exhausted() {
                    return None;
                }
                if ia == ib || !useful(&spec, &a.info, &[&b.info]) || !useful(&spec, &b.info, &[]) {
                    continue;
                }
                let Some(sb) = sa.step(&mut self.pool, &b.info) else {
                    continue;
                };
                if self.check_state(ctx, &sb, false) {
                    return Some(vec![a.ins, b.ins]);
                }
            }
        }
        if max_len < 3 {
            return None;
        }
        for a in pool.iter() {
            let Some(sa) = init.step(&mut self.pool, &a.info) else {
                continue;
            };
            for b in pool.iter() {
                if ctx.exhausted() {
                    return None;
                }
                if b.ins == a.ins || !useful(&spec, &a.info, &[&b.info]) {
                    continue;
                }
                let Some(sb) = sa.step(&mut self.pool, &b.info) else {
                    continue;
                };
                for c in pool.iter() {
                    if ctx.exhausted() {
                        return None;
                    }
                    if c.ins == b.ins
                        || !useful(&spec, &a.info, &[&b.info, &c.info])
                        || !useful(&spec, &b.info, &[&c.info])
                        || !useful(&spec, &c.info, &[])
                    {
                        continue;
                    }
                    let Some(sc) = sb.step(&mut self.pool, &c.info) else {
                        continue;
                    };
                    if self.check_state(ctx, &sc, false) {
                        return Some(vec![a.ins, b.ins, c.ins]);
                    }
                }
            }
        }
        None
    }

    /// Divide and conquer: when the goal changes several registers (or
    /// registers and memory) and no flag, synthesizes each location on its
    /// own, ordered so that no location is overwritten before a later part
    /// reads it, then verifies the concatenation.
    pub(crate) fn split(&mut self, ctx: &mut GoalCtx) -> Option<Vec<Instruction>> {
        let spec = ctx.spec.clone();
        if spec.changed_flags != 0 {
            return None;
        }
        let mut parts: Vec<Loc> = Reg::ALL
            .into_iter()
            .filter(|r| spec.changed_regs & 1 << r.index() != 0)
            .map(Loc::Reg)
            .collect();
        if spec.mem_changed {
            parts.push(Loc::Mem);
        }
        if parts.len() < 2 {
            return None;
        }
        // What each part's formula reads.
        let reads: Vec<(u8, bool)> = parts
            .iter()
            .map(|&l| {
                let e = goal_of(&spec, l);
                let mut regs = 0u8;
                let mut mem = false;
                for v in self.pool.vars(e) {
                    match Loc::of_var(&self.pool, v) {
                        Some(Loc::Reg(r)) => regs |= 1 << r.index(),
                        Some(Loc::Mem) => mem = true,
                        _ => {}
                    }
                }
                (regs, mem)
            })
            .collect();
        let writes = |l: Loc| -> (u8, bool) {
            match l {
                Loc::Reg(r) => (1 << r.index(), false),
                _ => (0, true),
            }
        };
        // Order: a part that reads what another writes goes first.
        let mut order: Vec<usize> = Vec::new();
        let mut left: Vec<usize> = (0..parts.len()).collect();
        while !left.is_empty() {
            let pick = left.iter().position(|&i| {
                let (wr, wm) = writes(parts[i]);
                left.iter().all(|&j| {
                    j == i || {
                        let (rr, rm) = reads[j];
                        rr & wr == 0 && !(rm && wm)
                    }
                })
            })?;
            order.push(left.remove(pick));
        }
        let mut seq = Vec::new();
        for (n, &i) in order.iter().enumerate() {
            let later = &order[n + 1..];
            let earlier = &order[..n];
            let mut sub = spec.clone();
            let read_later = later.iter().fold(0u8, |m, &j| m | reads[j].0);
            for r in Reg::ALL {
                let bit = 1u8 << r.index();
                let l = Loc::Reg(r);
                let var = wiper_sem::loc_var(&mut self.pool, l);
                if parts[i] == l {
                    continue;
                }
                if earlier.iter().any(|&j| parts[j] == l) || read_later & bit != 0 {
                    // Done already, or needed later: keep its current value.
                    sub.reg_goal[r.index()] = Some(var);
                    sub.changed_regs &= !bit;
                    sub.scratch &= !bit;
                } else if later.iter().any(|&j| parts[j] == l) {
                    // Written later and not read: free for now.
                    sub.reg_goal[r.index()] = None;
                    sub.changed_regs &= !bit;
                    sub.scratch |= bit;
                }
            }
            if parts[i] != Loc::Mem {
                sub.mem_goal = wiper_sem::loc_var(&mut self.pool, Loc::Mem);
                sub.mem_changed = false;
            }
            let (found, _) = self.solve_part(&sub, ctx.budget_left() / 2)?;
            seq.extend(found);
        }
        let st = self.compose_seq(&spec, &seq)?;
        self.check_state(ctx, &st, false).then_some(seq)
    }
}

/// The goal value of location `l`.
fn goal_of(spec: &Spec, l: Loc) -> ExprId {
    match l {
        Loc::Reg(r) => spec.reg_goal[r.index()].expect("a changed register has a goal"),
        Loc::Flag(f) => spec.flag_goal[f.index()].expect("a changed flag has a goal"),
        _ => spec.mem_goal,
    }
}
