//! Stack tracking and address classification.
//!
//! A forward dataflow analysis over the statements computes, before every
//! part, an abstract value for each register, temporary and 4-byte stack
//! slot: a constant, a pointer `base + offset` (the base being the entry
//! stack pointer `esp0` or the buffer of a static pointer argument, the
//! offset known or not), or unknown. The transfer function substitutes the
//! known values into the part's formulas (`esp := esp0 - 0x14`), lets the
//! qfbv simplifier fold them, and reads the result back as a linear form.
//! `esp` and `ebp` are simply two of the tracked registers: "the stack
//! pointer is `esp0 + c`" is `Ptr(Stack, Some(c))`.
//!
//! With the states known, every load and store of every part is classified
//! into an [`AbstractLoc`]. The analysis also decides whether the frame
//! *escapes*: whether a stack address may be somewhere the analysis does not
//! track (see `docs/bta.md`); then unknown accesses may alias the stack.

use std::collections::{BTreeMap, HashMap};

use wiper_elf::Binary;
use wiper_qfbv::{ExprId, ExprPool, Op, VarId};
use wiper_sem::{loc_var, Loc, Part, Reg, Temp, Value};
use wiper_x86::abi;

use crate::memory::{AbstractLoc, Access, AccessKind};
use crate::program::{formula_reads, part_roots, Program, Stmt, ENTRY};

/// A register's offset from the entry stack pointer, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offset {
    /// The register holds `esp0 + offset`.
    Known(i32),
    /// Anything else: not a stack address, or one whose offset is unknown.
    Unknown,
}

impl Offset {
    /// The known offset, if any.
    pub fn known(self) -> Option<i32> {
        match self {
            Offset::Known(c) => Some(c),
            Offset::Unknown => None,
        }
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Offset::Known(0) => f.write_str("esp0"),
            Offset::Known(c) if *c < 0 => write!(f, "esp0-{:#x}", c.unsigned_abs()),
            Offset::Known(c) => write!(f, "esp0+{c:#x}"),
            Offset::Unknown => f.write_str("?"),
        }
    }
}

/// `esp` and `ebp` before a part, relative to the entry stack pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StackState {
    /// The stack pointer.
    pub esp: Offset,
    /// The frame pointer (or whatever `ebp` holds).
    pub ebp: Offset,
}

/// What a pointer points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Base {
    /// The stack: `esp0`.
    Stack,
    /// The buffer of static pointer argument N.
    Arg(u32),
    /// Somewhere in the local frame, below `esp0` (offset never known).
    Local,
}

/// An abstract 32-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AbsVal {
    Top,
    Const(u32),
    /// `base + offset`; `None`: somewhere in the object.
    Ptr(Base, Option<i32>),
}

impl AbsVal {
    fn is_stack(self) -> bool {
        matches!(self, AbsVal::Ptr(Base::Stack | Base::Local, _))
    }

    fn join(self, other: AbsVal, escape: &mut bool) -> AbsVal {
        if self == other {
            return self;
        }
        let r = match (self, other) {
            (AbsVal::Ptr(a, _), AbsVal::Ptr(b, _)) if a == b => AbsVal::Ptr(a, None),
            (AbsVal::Ptr(Base::Local, _), AbsVal::Ptr(Base::Stack, Some(c)))
            | (AbsVal::Ptr(Base::Stack, Some(c)), AbsVal::Ptr(Base::Local, _))
                if c < 0 =>
            {
                AbsVal::Ptr(Base::Local, None)
            }
            (AbsVal::Ptr(Base::Local, _), AbsVal::Ptr(Base::Stack, _))
            | (AbsVal::Ptr(Base::Stack, _), AbsVal::Ptr(Base::Local, _)) => {
                AbsVal::Ptr(Base::Stack, None)
            }
            _ => AbsVal::Top,
        };
        if r == AbsVal::Top && (self.is_stack() || other.is_stack()) {
            *escape = true;
        }
        r
    }
}

/// Abstract machine state before a statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct State {
    regs: [AbsVal; 8],
    temps: Vec<AbsVal>,
    slots: BTreeMap<i32, AbsVal>,
}

impl State {
    fn temp(&self, t: u8) -> AbsVal {
        self.temps.get(t as usize).copied().unwrap_or(AbsVal::Top)
    }

    fn set_temp(&mut self, t: u8, v: AbsVal) {
        let i = t as usize;
        if self.temps.len() <= i {
            self.temps.resize(i + 1, AbsVal::Top);
        }
        self.temps[i] = v;
    }

    /// Joins two states where the registers (bits 0-7) and temporaries
    /// (bits 8-15) in `live` may still be read; dead ones become unknown
    /// without a stack address escaping.
    fn join(&self, other: &State, live: u16, escape: &mut bool) -> State {
        let mut regs = self.regs;
        for (i, (r, o)) in regs.iter_mut().zip(other.regs.iter()).enumerate() {
            *r = if live >> i & 1 != 0 {
                r.join(*o, escape)
            } else if r == o {
                *r
            } else {
                AbsVal::Top
            };
        }
        let n = self.temps.len().max(other.temps.len());
        let temps = (0..n)
            .map(|i| {
                let (a, b) = (self.temp(i as u8), other.temp(i as u8));
                if i < 8 && live >> (8 + i) & 1 != 0 {
                    a.join(b, escape)
                } else if a == b {
                    a
                } else {
                    AbsVal::Top
                }
            })
            .collect();
        let mut slots = BTreeMap::new();
        for (k, v) in &self.slots {
            match other.slots.get(k) {
                Some(w) => {
                    let j = v.join(*w, escape);
                    if j != AbsVal::Top {
                        slots.insert(*k, j);
                    }
                }
                None => {
                    if v.is_stack() {
                        *escape = true;
                    }
                }
            }
        }
        for (k, v) in &other.slots {
            if !self.slots.contains_key(k) && v.is_stack() {
                *escape = true;
            }
        }
        State { regs, temps, slots }
    }

    /// Forgets slots overlapping `[lo, hi)`; `may`: the old value may
    /// survive (then a stack address there escapes).
    fn kill(&mut self, lo: i64, hi: i64, may: bool, escape: &mut bool) {
        let keys: Vec<i32> = self
            .slots
            .range((lo - 3).max(i64::from(i32::MIN)) as i32..)
            .take_while(|(k, _)| i64::from(**k) < hi)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let k64 = i64::from(k);
            if k64 + 4 > lo && k64 < hi {
                let v = self.slots.remove(&k).expect("slot");
                if may && v.is_stack() {
                    *escape = true;
                }
            }
        }
    }

    fn kill_all(&mut self, escape: &mut bool) {
        if self.slots.values().any(|v| v.is_stack()) {
            *escape = true;
        }
        self.slots.clear();
    }
}

/// What the caller knows of a callee, for the stack tracking.
#[derive(Debug, Clone, Default)]
pub(crate) struct Footprint {
    /// Byte ranges, relative to the callee's entry stack pointer, of its
    /// argument area that it may write (offsets >= 4).
    pub arg_writes: Vec<(i64, i64)>,
    /// Bytes of arguments the callee pops on return (`ret N`).
    pub ret_pop: u32,
    /// Caller-saved registers the callee never writes (bits by
    /// `Reg::index`): they keep their values across the call.
    pub preserves: u8,
}

/// Linear form of an expression: `sum(coef * base) + konst + other`.
#[derive(Debug, Clone, Default)]
struct Lin {
    bases: Vec<(Base, i64)>,
    konst: u32,
    other: bool,
    nonlinear_stack: bool,
    nonlinear: bool,
}

impl Lin {
    fn add(mut self, o: Lin, sign: i64) -> Lin {
        for (b, c) in o.bases {
            match self.bases.iter_mut().find(|(x, _)| *x == b) {
                Some((_, k)) => *k += sign * c,
                None => self.bases.push((b, sign * c)),
            }
        }
        self.konst = if sign > 0 {
            self.konst.wrapping_add(o.konst)
        } else {
            self.konst.wrapping_sub(o.konst)
        };
        self.other |= o.other;
        self.nonlinear |= o.nonlinear;
        self.nonlinear_stack |= o.nonlinear_stack;
        self
    }

    fn scale(mut self, k: u32) -> Lin {
        for (_, c) in &mut self.bases {
            *c = c.wrapping_mul(i64::from(k as i32));
        }
        self.konst = self.konst.wrapping_mul(k);
        self
    }
}

/// The classification of a linear form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Const(u32),
    /// A constant plus something unknown.
    ConstPlus(u32),
    Ptr(Base, Option<i32>),
    /// `esp0 + c + i` with a negative constant `c`: inside the local frame.
    LocalAny,
    /// Not a known form; `stack`: involves the stack base (an address lost).
    Unknown {
        stack: bool,
    },
}

impl Class {
    fn value(self) -> AbsVal {
        match self {
            Class::Const(c) => AbsVal::Const(c),
            Class::Ptr(b, o) => AbsVal::Ptr(b, o),
            Class::LocalAny => AbsVal::Ptr(Base::Local, None),
            _ => AbsVal::Top,
        }
    }
}

/// Fixed variables and side inputs of the tracking.
pub(crate) struct Ctx<'a> {
    pub binary: &'a Binary,
    esp0: ExprId,
    local0: ExprId,
    base_vars: HashMap<VarId, (Base, ExprId)>,
    reg_vars: HashMap<VarId, Reg>,
    temp_vars: HashMap<VarId, u8>,
    mem: ExprId,
    /// Footprint of the callee of each call site (`None`: unknown).
    pub footprints: Vec<Option<Footprint>>,
    /// Static pointer arguments (buffers).
    pub buffers: Vec<u32>,
    /// Whether unknown stores and calls may write every stack slot.
    escaped_mode: bool,
}

/// Result of the stack tracking.
#[derive(Debug, Clone)]
pub(crate) struct StackInfo {
    /// Per part: `esp` and `ebp` before it.
    pub stack: Vec<StackState>,
    /// Per part: `esp` and `ebp` after it.
    pub after: Vec<StackState>,
    /// Per part: its memory accesses.
    pub accesses: Vec<Vec<Access>>,
    /// Whether the frame escaped.
    pub escaped: bool,
    /// Per call site: the callee's entry stack pointer (`esp` before the
    /// jump), when known.
    pub callee_esp0: Vec<Option<i32>>,
    /// Per part: whether it is reachable (has a state).
    pub reachable: Vec<bool>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        program: &mut Program,
        binary: &'a Binary,
        footprints: Vec<Option<Footprint>>,
        buffers: Vec<u32>,
    ) -> Ctx<'a> {
        let pool = &mut program.pool;
        let esp0 = pool.var("esp0", 32);
        let mut base_vars = HashMap::new();
        base_vars.insert(pool.as_var(esp0).expect("var"), (Base::Stack, esp0));
        let local0 = pool.var("local0", 32);
        base_vars.insert(pool.as_var(local0).expect("var"), (Base::Local, local0));
        for &k in &buffers {
            let e = pool.var(&format!("@arg{k}"), 32);
            base_vars.insert(pool.as_var(e).expect("var"), (Base::Arg(k), e));
        }
        let mut reg_vars = HashMap::new();
        for r in Reg::ALL {
            let e = loc_var(pool, Loc::Reg(r));
            reg_vars.insert(pool.as_var(e).expect("var"), r);
        }
        let mut temp_vars = HashMap::new();
        for t in 0..8u8 {
            let e = loc_var(pool, Loc::Temp(Temp(t)));
            temp_vars.insert(pool.as_var(e).expect("var"), t);
        }
        let mem = loc_var(pool, Loc::Mem);
        Ctx {
            binary,
            esp0,
            local0,
            base_vars,
            reg_vars,
            temp_vars,
            mem,
            footprints,
            buffers,
            escaped_mode: false,
        }
    }

    fn entry_state(&self) -> State {
        let mut regs = [AbsVal::Top; 8];
        regs[Reg::Esp.index()] = AbsVal::Ptr(Base::Stack, Some(0));
        let mut slots = BTreeMap::new();
        for &k in &self.buffers {
            slots.insert(
                abi::arg_offset(k) as i32,
                AbsVal::Ptr(Base::Arg(k), Some(0)),
            );
        }
        State {
            regs,
            temps: Vec::new(),
            slots,
        }
    }

    fn base_expr(&self, b: Base) -> ExprId {
        match b {
            Base::Stack => self.esp0,
            Base::Local => self.local0,
            Base::Arg(k) => self
                .base_vars
                .values()
                .find(|(x, _)| *x == Base::Arg(k))
                .map(|(_, e)| *e)
                .expect("buffer base"),
        }
    }

    /// The expression for abstract value `v` of a location whose own
    /// term is `term` (kept as the unknown offset of `Ptr(_, None)`).
    fn value_expr(&self, pool: &mut ExprPool, v: AbsVal, term: ExprId) -> Option<ExprId> {
        match v {
            AbsVal::Top => None,
            AbsVal::Const(c) => Some(pool.bv(u64::from(c), 32)),
            AbsVal::Ptr(b, Some(c)) => {
                let base = self.base_expr(b);
                let k = pool.bv(c as u32 as u64, 32);
                Some(pool.add(base, k))
            }
            AbsVal::Ptr(b, None) => {
                let base = self.base_expr(b);
                Some(pool.add(base, term))
            }
        }
    }

    /// Substitutes the known values of `state` into `root`; with
    /// `loads`, also replaces loads of tracked stack slots by their values.
    fn rewrite(&self, pool: &mut ExprPool, root: ExprId, state: &State, loads: bool) -> ExprId {
        let mut new: HashMap<ExprId, ExprId> = HashMap::new();
        for s in pool.subterms(&[root]) {
            let op = pool.op(s);
            let args: Vec<ExprId> = pool.args(s).iter().map(|a| new[a]).collect();
            let changed = args.as_slice() != pool.args(s);
            let rebuilt = |pool: &mut ExprPool| {
                if changed {
                    pool.mk(op, &args).expect("well-sorted rewrite")
                } else {
                    s
                }
            };
            let r = match op {
                Op::Var(v) => {
                    let val = if let Some(r) = self.reg_vars.get(&v) {
                        state.regs[r.index()]
                    } else if let Some(t) = self.temp_vars.get(&v) {
                        state.temp(*t)
                    } else {
                        AbsVal::Top
                    };
                    self.value_expr(pool, val, s).unwrap_or(s)
                }
                Op::Load(4) if loads => {
                    let e = rebuilt(pool);
                    match self.classify(pool, args[1]) {
                        Class::Ptr(Base::Stack, Some(c)) => match state.slots.get(&c) {
                            Some(v) => self.value_expr(pool, *v, e).unwrap_or(e),
                            None => e,
                        },
                        _ => e,
                    }
                }
                _ => rebuilt(pool),
            };
            new.insert(s, r);
        }
        new[&root]
    }

    fn lin(&self, pool: &ExprPool, e: ExprId, depth: u32) -> Lin {
        let unknown = |this: &Self| {
            // Which bases occur as values (not merely inside the address of
            // a load: loading from the stack does not leak its address).
            let mut stack = false;
            let mut any = false;
            let mut seen = std::collections::HashSet::new();
            let mut todo = vec![e];
            while let Some(x) = todo.pop() {
                if !seen.insert(x) {
                    continue;
                }
                match pool.op(x) {
                    Op::Var(v) => {
                        if let Some((b, _)) = this.base_vars.get(&v) {
                            any = true;
                            stack |= *b == Base::Stack;
                        }
                    }
                    Op::Load(_) => {}
                    _ => todo.extend(pool.args(x).iter().copied()),
                }
            }
            Lin {
                other: true,
                nonlinear: any,
                nonlinear_stack: stack,
                ..Lin::default()
            }
        };
        if depth > 48 || pool.width(e) != 32 {
            return unknown(self);
        }
        match pool.op(e) {
            Op::Const { val, .. } => Lin {
                konst: val as u32,
                ..Lin::default()
            },
            Op::Var(v) => match self.base_vars.get(&v) {
                Some((b, _)) => Lin {
                    bases: vec![(*b, 1)],
                    ..Lin::default()
                },
                None => Lin {
                    other: true,
                    ..Lin::default()
                },
            },
            Op::Add | Op::Sub => {
                let a = pool.args(e);
                let sign = if pool.op(e) == Op::Add { 1 } else { -1 };
                self.lin(pool, a[0], depth + 1)
                    .add(self.lin(pool, a[1], depth + 1), sign)
            }
            Op::Neg => Lin::default().add(self.lin(pool, pool.args(e)[0], depth + 1), -1),
            Op::Mul => {
                let a = pool.args(e);
                match pool.as_const(a[1]) {
                    Some(k) => self.lin(pool, a[0], depth + 1).scale(k as u32),
                    None => unknown(self),
                }
            }
            Op::Shl => {
                let a = pool.args(e);
                match pool.as_const(a[1]) {
                    Some(k) if k < 32 => self.lin(pool, a[0], depth + 1).scale(1u32 << k),
                    _ => unknown(self),
                }
            }
            _ => unknown(self),
        }
    }

    fn classify(&self, pool: &ExprPool, e: ExprId) -> Class {
        let l = self.lin(pool, e, 0);
        if l.nonlinear {
            return Class::Unknown {
                stack: l.nonlinear_stack,
            };
        }
        let live: Vec<(Base, i64)> = l.bases.iter().copied().filter(|(_, c)| *c != 0).collect();
        match live.as_slice() {
            [] if l.other => Class::ConstPlus(l.konst),
            [] => Class::Const(l.konst),
            [(Base::Stack, 1)] if l.other && (l.konst as i32) < 0 => Class::LocalAny,
            [(Base::Local, 1)] => Class::LocalAny,
            [(b, 1)] => Class::Ptr(*b, (!l.other).then_some(l.konst as i32)),
            _ => Class::Unknown {
                stack: live
                    .iter()
                    .any(|(b, _)| matches!(b, Base::Stack | Base::Local)),
            },
        }
    }

    fn abstract_loc(&self, class: Class, size: u32) -> AbstractLoc {
        match class {
            Class::Ptr(Base::Stack, Some(c)) => AbstractLoc::Stack { offset: c, size },
            Class::Ptr(Base::Stack, None) => AbstractLoc::StackAny,
            Class::LocalAny => AbstractLoc::LocalAny,
            Class::Ptr(Base::Arg(arg), Some(offset)) => AbstractLoc::Buffer { arg, offset, size },
            Class::Ptr(Base::Arg(arg), None) => AbstractLoc::BufferAny { arg },
            Class::Ptr(Base::Local, _) => AbstractLoc::LocalAny,
            Class::Const(addr) if self.binary.segment_at(addr).is_some() => AbstractLoc::Global {
                addr,
                size,
                read_only: self.binary.is_constant(addr),
            },
            Class::ConstPlus(base) if self.binary.segment_at(base).is_some() => {
                AbstractLoc::GlobalAny {
                    base,
                    read_only: self.binary.is_constant(base),
                }
            }
            _ => AbstractLoc::Unknown,
        }
    }

    /// Stores in a (rewritten) memory formula: `(addr, value, must)`.
    fn stores(&self, pool: &ExprPool, e: ExprId) -> Vec<(ExprId, ExprId, bool)> {
        let mut out = Vec::new();
        let mut cur = e;
        while pool.op(cur) == Op::Store {
            let a = pool.args(cur);
            out.push((a[1], a[2], true));
            cur = a[0];
        }
        if cur != self.mem {
            for s in pool.subterms(&[cur]) {
                if pool.op(s) == Op::Store {
                    let a = pool.args(s);
                    out.push((a[1], a[2], false));
                }
            }
        }
        out
    }

    /// The loads of `part`'s formulas under `state`, classified, without
    /// repeats.
    fn read_accesses(&self, pool: &mut ExprPool, part: &Part, state: &State) -> Vec<Access> {
        let mut seen = Vec::new();
        for root in part_roots(part) {
            let r = self.rewrite(pool, root, state, false);
            for s in pool.subterms(&[r]) {
                if let Op::Load(n) = pool.op(s) {
                    let addr = pool.args(s)[1];
                    let loc = self.abstract_loc(self.classify(pool, addr), u32::from(n));
                    let a = Access {
                        loc,
                        kind: AccessKind::Read,
                    };
                    if !seen.contains(&a) {
                        seen.push(a);
                    }
                }
            }
        }
        seen
    }

    /// Applies a store of `v` to `loc` (`must`: it always happens) to
    /// `state`; sets `escape` when a stack address may be lost.
    fn store(&self, state: &mut State, loc: AbstractLoc, v: AbsVal, must: bool, escape: &mut bool) {
        match loc {
            AbstractLoc::Stack { offset, size } => {
                let lo = i64::from(offset);
                state.kill(lo, lo + i64::from(size), !must, escape);
                if must && size == 4 {
                    if v != AbsVal::Top {
                        state.slots.insert(offset, v);
                    }
                } else if v.is_stack() {
                    *escape = true;
                }
            }
            AbstractLoc::LocalAny => {
                state.kill(i64::from(i32::MIN), 0, true, escape);
                if v.is_stack() {
                    *escape = true;
                }
            }
            AbstractLoc::StackAny => {
                state.kill_all(escape);
                if v.is_stack() {
                    *escape = true;
                }
            }
            AbstractLoc::Unknown => {
                if self.escaped_mode {
                    state.kill_all(escape);
                }
                if v.is_stack() {
                    *escape = true;
                }
            }
            _ => {
                if v.is_stack() {
                    *escape = true;
                }
            }
        }
    }

    /// Applies part `p`'s effects to `state`; sets `escape` when a stack
    /// address may be lost. With `accesses`, collects its memory accesses.
    fn transfer_part(
        &self,
        program: &mut Program,
        p: usize,
        state: &mut State,
        escape: &mut bool,
        mut accesses: Option<&mut Vec<Access>>,
    ) {
        let part = program.parts[p].part.clone();
        let pool = &mut program.pool;
        if part.barrier.is_some() {
            if state.regs.iter().any(|v| v.is_stack()) {
                *escape = true;
            }
            if let Some(acc) = accesses.as_deref_mut() {
                acc.push(Access {
                    loc: AbstractLoc::Unknown,
                    kind: AccessKind::Read,
                });
                acc.push(Access {
                    loc: AbstractLoc::Unknown,
                    kind: AccessKind::MayWrite,
                });
            }
            state.regs[Reg::Eax.index()] = AbsVal::Top;
            if self.escaped_mode {
                state.kill_all(escape);
            }
            return;
        }
        if let Some(acc) = accesses.as_deref_mut() {
            acc.extend(self.read_accesses(pool, &part, state));
        }
        // Parallel assignment: compute every value from the old state.
        let mut reg_out: Vec<(Loc, AbsVal)> = Vec::new();
        let mut store_list: Vec<(Class, AbsVal, bool, u32, Class)> = Vec::new();
        for eff in &part.effects {
            let Value::Expr(x) = eff.value else { continue };
            match eff.dst {
                Loc::Reg(_) | Loc::Temp(_) => {
                    let r = self.rewrite(pool, x, state, true);
                    let c = self.classify(pool, r);
                    if let Class::Unknown { stack: true } = c {
                        *escape = true;
                    }
                    reg_out.push((eff.dst, c.value()));
                }
                Loc::Mem => {
                    let r = self.rewrite(pool, x, state, true);
                    for (addr, val, must) in self.stores(pool, r) {
                        let size = pool.width(val) / 8;
                        let ac = self.classify(pool, addr);
                        let vc = if pool.width(val) == 32 {
                            self.classify(pool, val)
                        } else {
                            let l = self.lin(pool, val, 48);
                            Class::Unknown {
                                stack: l.nonlinear_stack,
                            }
                        };
                        if let Class::Unknown { stack: true } = vc {
                            *escape = true;
                        }
                        store_list.push((ac, vc.value(), must, size, vc));
                    }
                }
                _ => {}
            }
        }
        for (ac, v, must, size, _) in store_list {
            let loc = self.abstract_loc(ac, size);
            if let Some(acc) = accesses.as_deref_mut() {
                let kind = if must && loc.is_exact() {
                    AccessKind::Write
                } else {
                    AccessKind::MayWrite
                };
                let a = Access { loc, kind };
                if !acc.contains(&a) {
                    acc.push(a);
                }
            }
            self.store(state, loc, v, must, escape);
        }
        for (dst, v) in reg_out {
            match dst {
                Loc::Reg(r) => state.regs[r.index()] = v,
                Loc::Temp(t) => state.set_temp(t.0, v),
                _ => {}
            }
        }
    }

    fn transfer_call(&self, call: usize, state: &mut State, escape: &mut bool) {
        let esp = state.regs[Reg::Esp.index()];
        let fp = self.footprints[call].as_ref();
        match esp {
            AbsVal::Ptr(Base::Stack, Some(c)) => {
                let c = i64::from(c);
                if state
                    .slots
                    .range((c + 4) as i32..(c + 68) as i32)
                    .any(|(_, v)| v.is_stack())
                {
                    *escape = true;
                }
                match fp {
                    Some(fp) => {
                        for &(lo, hi) in &fp.arg_writes {
                            state.kill(c + lo, c + hi, true, escape);
                        }
                    }
                    None => state.kill(c + 4, c + 68, true, escape),
                }
                let pop = fp.map_or(0, |f| f.ret_pop);
                state.regs[Reg::Esp.index()] =
                    AbsVal::Ptr(Base::Stack, Some((c + 4 + i64::from(pop)) as i32));
            }
            _ => {
                if state.slots.values().any(|v| v.is_stack()) {
                    *escape = true;
                }
                state.kill_all(escape);
            }
        }
        if self.escaped_mode {
            state.kill_all(escape);
        }
        let preserves = fp.map_or(0, |f| f.preserves);
        for r in abi::CALLER_SAVED {
            if preserves & (1 << r.index()) == 0 {
                state.regs[r.index()] = AbsVal::Top;
            }
        }
        state.temps.clear();
    }

    fn run(&self, program: &mut Program) -> (Vec<Option<State>>, bool) {
        let n = program.stmts.len();
        let live = liveness(program);
        let mut out: Vec<Option<State>> = vec![None; n];
        let mut inn: Vec<Option<State>> = vec![None; n];
        let mut escape = false;
        let order = program.rpo.clone();
        let mut changed = true;
        let mut rounds = 0;
        while changed {
            changed = false;
            rounds += 1;
            for &s in &order {
                let state = if s == ENTRY {
                    Some(self.entry_state())
                } else {
                    let mut acc: Option<State> = None;
                    for &p in &program.preds[s] {
                        if let Some(o) = &out[p] {
                            acc = Some(match acc {
                                None => o.clone(),
                                Some(a) => a.join(o, live[s], &mut escape),
                            });
                        }
                    }
                    acc
                };
                let Some(mut st) = state else { continue };
                if inn[s].as_ref() == Some(&st) && out[s].is_some() {
                    continue;
                }
                inn[s] = Some(st.clone());
                match program.stmts[s] {
                    Stmt::Part(p) => {
                        self.transfer_part(program, p.index(), &mut st, &mut escape, None)
                    }
                    Stmt::Call(c) => self.transfer_call(c, &mut st, &mut escape),
                    _ => {}
                }
                if out[s].as_ref() != Some(&st) {
                    out[s] = Some(st);
                    changed = true;
                }
            }
            assert!(rounds < 10_000, "stack tracking does not converge");
        }
        (inn, escape)
    }

    /// Runs the tracking (again with escaped-mode when the frame escapes)
    /// and classifies every access.
    pub fn analyze(mut self, program: &mut Program) -> StackInfo {
        let (mut inn, mut escaped) = self.run(program);
        if escaped {
            self.escaped_mode = true;
            let (i, _) = self.run(program);
            inn = i;
            escaped = true;
        }
        let nparts = program.parts.len();
        let mut stack = vec![
            StackState {
                esp: Offset::Unknown,
                ebp: Offset::Unknown
            };
            nparts
        ];
        let mut after = stack.clone();
        let mut accesses = vec![Vec::new(); nparts];
        let mut reachable = vec![false; nparts];
        let offset = |v: AbsVal| match v {
            AbsVal::Ptr(Base::Stack, Some(c)) => Offset::Known(c),
            _ => Offset::Unknown,
        };
        for p in 0..nparts {
            let s = program.part_stmt[p];
            let Some(st) = inn[s].clone() else { continue };
            reachable[p] = true;
            stack[p] = StackState {
                esp: offset(st.regs[Reg::Esp.index()]),
                ebp: offset(st.regs[Reg::Ebp.index()]),
            };
            let mut st = st;
            let mut dummy = false;
            let mut acc = Vec::new();
            self.transfer_part(program, p, &mut st, &mut dummy, Some(&mut acc));
            accesses[p] = acc;
            after[p] = StackState {
                esp: offset(st.regs[Reg::Esp.index()]),
                ebp: offset(st.regs[Reg::Ebp.index()]),
            };
        }
        let callee_esp0 = program
            .calls
            .iter()
            .map(|c| {
                let s = program.part_stmt[c.jump.index()];
                inn[s]
                    .as_ref()
                    .and_then(|st| match st.regs[Reg::Esp.index()] {
                        AbsVal::Ptr(Base::Stack, Some(o)) => Some(o),
                        _ => None,
                    })
            })
            .collect();
        StackInfo {
            stack,
            after,
            accesses,
            escaped,
            callee_esp0,
            reachable,
        }
    }
}

/// Registers (bits 0-7) and temporaries (bits 8-15) live at the start of
/// each statement: read later before being written.
fn liveness(program: &Program) -> Vec<u16> {
    let n = program.stmts.len();
    let bit = |l: Loc| -> u16 {
        match l {
            Loc::Reg(r) => 1 << r.index(),
            Loc::Temp(t) if t.0 < 8 => 1 << (8 + t.0),
            _ => 0,
        }
    };
    let mut uses = vec![0u16; n];
    let mut defs = vec![0u16; n];
    for (s, stmt) in program.stmts.iter().enumerate() {
        match *stmt {
            Stmt::Part(p) => {
                let part = &program.parts[p.index()].part;
                if part.barrier.is_some() {
                    uses[s] = 0xff;
                    continue;
                }
                let roots = part_roots(part);
                let (data, addr) = formula_reads(&program.pool, &roots);
                uses[s] = data
                    .iter()
                    .chain(addr.iter())
                    .map(|l| bit(*l))
                    .fold(0, |a, b| a | b);
                defs[s] = part.writes().iter().map(|l| bit(*l)).fold(0, |a, b| a | b);
            }
            Stmt::Call(_) => {
                defs[s] = abi::CALLER_SAVED
                    .iter()
                    .map(|&r| bit(Loc::Reg(r)))
                    .fold(0xff00, |a, b| a | b);
            }
            Stmt::Exit => uses[s] = 0xff,
            _ => {}
        }
    }
    let mut live = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for &s in program.rpo.iter().rev() {
            let out = program.succs[s].iter().fold(0u16, |a, &t| a | live[t]);
            let inn = uses[s] | (out & !defs[s]);
            if inn != live[s] {
                live[s] = inn;
                changed = true;
            }
        }
    }
    live
}
