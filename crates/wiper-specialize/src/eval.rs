//! Eval: symbolic evaluation of one instruction's decoupled parts over the
//! static store.
//!
//! Each formula is specialized bottom-up: a sub-formula whose inputs are all
//! known becomes a [`SVal`] (constant folding goes through the pool's
//! simplifier; address arithmetic on `base + offset` is done here), and any
//! other becomes a residual formula over the machine state before the
//! instruction, with known values substituted (addresses as `@stack + k` or
//! `@load + k`, later rewritten relative to the machine's `esp`).

use std::collections::HashMap;

use wiper_elf::Binary;
use wiper_qfbv::{ExprId, ExprPool, Op};
use wiper_sem::{loc_var, Flag, Lifted, Loc, Reg, Value};

use crate::state::{join_bytes, value_bytes, Base, Byte, Known, Region, SVal, Store};

/// A specialized formula: known, or residual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SExpr {
    /// Known at specialization time.
    Known(SVal),
    /// A residual formula.
    Dyn(ExprId),
}

/// The name of the formula variable standing for a symbolic base.
pub fn base_var_name(b: Base) -> &'static str {
    match b {
        Base::Stack => "@stack",
        Base::Load => "@load",
    }
}

/// What evaluating one instruction found.
#[derive(Debug, Default)]
pub struct Evaluated {
    /// Residual effects on registers and flags (over the state before).
    pub regs: Vec<(Reg, ExprId)>,
    /// Residual effects on flags.
    pub flags: Vec<(Flag, ExprId)>,
    /// The residual memory after the instruction, if it stores dynamically.
    pub mem: Option<ExprId>,
    /// The new instruction pointer, when the instruction assigns it.
    pub eip: Option<SExpr>,
    /// Whether a known but unsynced location was read (so the original
    /// instruction cannot simply be re-emitted).
    pub read_unsynced: bool,
    /// Known memory ranges the instruction reads: (region, offset, bytes).
    pub known_reads: Vec<(Region, u32, u32)>,
    /// Addresses (residual formulas) of reads through unknown pointers.
    pub dyn_reads: Vec<ExprId>,
    /// Addresses (residual formulas) of stores through unknown pointers.
    pub dyn_writes: Vec<ExprId>,
    /// Known memory ranges written with a dynamic value.
    pub dyn_known_writes: Vec<(Region, u32, u32)>,
    /// Known memory ranges written with a known value.
    pub known_writes: Vec<(Region, u32, u32)>,
    /// Known memory ranges read into a residual formula (their known bytes
    /// must be in memory first).
    pub partial_reads: Vec<(Region, u32, u32)>,
    /// Whether a residual value holds a stack address (the frame escapes).
    pub escapes: bool,
    /// Whether the stack pointer stops being a known stack address.
    pub esp_lost: bool,
    /// Whether some formula could not be specialized to something the
    /// machine can compute (a symbolic base stayed in a residual formula).
    pub needs_fallback: bool,
}

impl Evaluated {
    /// Whether the instruction leaves anything for the residual program.
    pub fn has_residual(&self) -> bool {
        !self.regs.is_empty() || !self.flags.is_empty() || self.mem.is_some()
    }
}

/// The evaluator of one instruction.
pub struct Evaluator<'a> {
    pool: &'a mut ExprPool,
    binary: &'a Binary,
    pie: bool,
    /// The store, updated part by part.
    pub store: Store,
    /// The store before the instruction (for sync checks).
    before: Store,
    /// Values of locations assigned earlier in this instruction.
    local: HashMap<Loc, SExpr>,
    cur_mem: ExprId,
    out: Evaluated,
}

impl<'a> Evaluator<'a> {
    /// Starts evaluating an instruction in `store`.
    pub fn new(pool: &'a mut ExprPool, binary: &'a Binary, pie: bool, store: &Store) -> Self {
        let mem = loc_var(pool, Loc::Mem);
        Evaluator {
            pool,
            binary,
            pie,
            store: store.clone(),
            before: store.clone(),
            local: HashMap::new(),
            cur_mem: mem,
            out: Evaluated::default(),
        }
    }

    /// Evaluates every part of `lifted`; `is_call` marks a near call, whose
    /// pushed return address is a code address (load-relative in a PIE).
    pub fn run(mut self, lifted: &Lifted, is_call: bool) -> (Store, Evaluated) {
        for part in &lifted.parts {
            let mut results = Vec::new();
            let mut memo = HashMap::new();
            for eff in &part.effects {
                let v = match eff.value {
                    Value::Expr(e) => Some(self.spec(e, &mut memo)),
                    Value::Undefined => None,
                };
                results.push((eff.dst, eff.value, v));
            }
            for (dst, value, v) in results {
                match (dst, v) {
                    (Loc::Mem, _) => {
                        if let Value::Expr(e) = value {
                            self.store_chain(e, is_call, &mut memo);
                        }
                    }
                    (Loc::Eip, v) => self.out.eip = v,
                    (loc, None) => {
                        // Undefined: any value will do; the machine's is fine.
                        self.set_loc(loc, None, None);
                    }
                    (loc, Some(SExpr::Known(k))) => self.set_loc(loc, Some(k), None),
                    (loc, Some(SExpr::Dyn(e))) => self.set_loc(loc, None, Some(e)),
                }
            }
        }
        let mut out = self.out;
        if out.mem.is_some() && self.cur_mem == loc_var(self.pool, Loc::Mem) {
            out.mem = None;
        }
        (self.store, out)
    }

    fn set_loc(&mut self, loc: Loc, known: Option<SVal>, dynamic: Option<ExprId>) {
        let sexpr = match (known, dynamic) {
            (Some(k), _) => Some(SExpr::Known(k)),
            (None, Some(e)) => Some(SExpr::Dyn(e)),
            (None, None) => None,
        };
        match loc {
            Loc::Reg(r) => {
                self.out.regs.retain(|(x, _)| *x != r);
                if r == Reg::Esp {
                    match known {
                        Some(v @ SVal::Addr(Base::Stack, _)) => self.store.set_reg(
                            r,
                            Some(Known {
                                value: v,
                                synced: false,
                            }),
                        ),
                        _ => self.out.esp_lost = true,
                    }
                } else {
                    self.store.set_reg(
                        r,
                        known.map(|value| Known {
                            value,
                            synced: false,
                        }),
                    );
                    if let Some(e) = dynamic {
                        self.note_escape(e);
                        self.out.regs.push((r, e));
                    }
                }
            }
            Loc::Flag(f) => {
                self.out.flags.retain(|(x, _)| *x != f);
                self.store.flags[f.index()] = known.map(|value| Known {
                    value: matches!(value, SVal::Const(1)),
                    synced: false,
                });
                if let Some(e) = dynamic {
                    self.note_escape(e);
                    self.out.flags.push((f, e));
                }
            }
            Loc::Temp(_) => {}
            Loc::Mem | Loc::Eip => unreachable!("handled by the caller"),
        }
        match sexpr {
            Some(s) => {
                self.local.insert(loc, s);
            }
            None => {
                let v = loc_var(self.pool, loc);
                // Undefined: reads see "the machine's value".
                self.local.insert(loc, SExpr::Dyn(v));
            }
        }
    }

    /// Applies a memory effect: a chain of stores over `mem`.
    fn store_chain(&mut self, e: ExprId, is_call: bool, memo: &mut HashMap<ExprId, SExpr>) {
        let mut chain = Vec::new();
        let mut cur = e;
        while self.pool.op(cur) == Op::Store {
            let args = self.pool.args(cur).to_vec();
            chain.push((args[1], args[2]));
            cur = args[0];
        }
        chain.reverse();
        for (addr, value) in chain {
            let a = self.spec(addr, memo);
            let mut v = self.spec(value, memo);
            let nbytes = self.pool.width(value) / 8;
            if let (true, true, SExpr::Known(SVal::Const(c))) = (is_call, self.pie, v) {
                v = SExpr::Known(SVal::Addr(Base::Load, c as u32));
            }
            match (a, v) {
                (SExpr::Known(a), SExpr::Known(v)) => {
                    let (region, off) = Region::of(a);
                    self.out.known_writes.push((region, off, nbytes));
                    for (i, b) in value_bytes(v, nbytes).into_iter().enumerate() {
                        self.store.mem.insert(
                            (region, off.wrapping_add(i as u32)),
                            Known {
                                value: b,
                                synced: false,
                            },
                        );
                    }
                }
                (SExpr::Known(a), SExpr::Dyn(v)) => {
                    self.note_escape(v);
                    let (region, off) = Region::of(a);
                    for i in 0..nbytes {
                        self.store.mem.remove(&(region, off.wrapping_add(i)));
                    }
                    self.out.dyn_known_writes.push((region, off, nbytes));
                    let ae = self.embed(a);
                    self.cur_mem = self.pool.store(self.cur_mem, ae, v);
                    self.out.mem = Some(self.cur_mem);
                }
                (SExpr::Dyn(a), v) => {
                    let ve = self.as_formula(v, nbytes * 8);
                    self.note_escape(ve);
                    self.out.dyn_writes.push(a);
                    self.cur_mem = self.pool.store(self.cur_mem, a, ve);
                    self.out.mem = Some(self.cur_mem);
                }
            }
        }
    }

    /// A known value as a formula (`@stack + k` for addresses).
    fn embed(&mut self, v: SVal) -> ExprId {
        self.embed_width(v, 32)
    }

    fn embed_width(&mut self, v: SVal, width: u32) -> ExprId {
        match v {
            SVal::Const(c) => self.pool.bv(c, width),
            SVal::Addr(b, o) => {
                let base = self.pool.var(base_var_name(b), 32);
                let off = self.pool.bv(u64::from(o), 32);
                self.pool.add(base, off)
            }
        }
    }

    fn as_formula(&mut self, s: SExpr, width: u32) -> ExprId {
        match s {
            SExpr::Known(v) => self.embed_width(v, width),
            SExpr::Dyn(e) => e,
        }
    }

    /// Specializes formula `e` (over the state before the current part).
    fn spec(&mut self, e: ExprId, memo: &mut HashMap<ExprId, SExpr>) -> SExpr {
        if let Some(s) = memo.get(&e) {
            return *s;
        }
        let r = self.spec_uncached(e, memo);
        memo.insert(e, r);
        r
    }

    fn read_loc(&mut self, loc: Loc, e: ExprId) -> SExpr {
        if let Some(s) = self.local.get(&loc) {
            return *s;
        }
        match loc {
            Loc::Reg(r) => match self.before.reg(r) {
                Some(k) => {
                    if r == Reg::Esp {
                        if !self.before.esp_synced() {
                            self.out.read_unsynced = true;
                        }
                    } else if !k.synced {
                        self.out.read_unsynced = true;
                    }
                    SExpr::Known(k.value)
                }
                None => SExpr::Dyn(e),
            },
            Loc::Flag(f) => match self.before.flag(f) {
                Some(k) => {
                    if !k.synced {
                        self.out.read_unsynced = true;
                    }
                    SExpr::Known(SVal::Const(u64::from(k.value)))
                }
                None => SExpr::Dyn(e),
            },
            Loc::Mem => SExpr::Dyn(self.cur_mem),
            // A temporary read before written: cannot happen in a lifted
            // sequence; keep it residual so the fallback handles it.
            Loc::Temp(_) | Loc::Eip => {
                self.out.needs_fallback = true;
                SExpr::Dyn(e)
            }
        }
    }

    fn spec_uncached(&mut self, e: ExprId, memo: &mut HashMap<ExprId, SExpr>) -> SExpr {
        let op = self.pool.op(e);
        match op {
            Op::Const { val, .. } => return SExpr::Known(SVal::Const(val)),
            Op::Var(v) => {
                return match Loc::of_var(self.pool, v) {
                    Some(loc) => self.read_loc(loc, e),
                    None => SExpr::Dyn(e),
                }
            }
            Op::Load(n) => return self.load(e, u32::from(n), memo),
            _ => {}
        }
        let args: Vec<ExprId> = self.pool.args(e).to_vec();
        let vals: Vec<SExpr> = args.iter().map(|a| self.spec(*a, memo)).collect();
        if op == Op::Ite {
            if let SExpr::Known(SVal::Const(c)) = vals[0] {
                return if c & 1 == 1 { vals[1] } else { vals[2] };
            }
        }
        if vals
            .iter()
            .all(|v| matches!(v, SExpr::Known(SVal::Const(_))))
        {
            let consts: Vec<ExprId> = args
                .iter()
                .zip(&vals)
                .map(|(a, v)| match v {
                    SExpr::Known(SVal::Const(c)) => {
                        let w = self.pool.width(*a);
                        self.pool.bv(*c, w)
                    }
                    _ => unreachable!(),
                })
                .collect();
            if let Ok(r) = self.pool.mk(op, &consts) {
                if let Some(c) = self.pool.as_const(r) {
                    return SExpr::Known(SVal::Const(c));
                }
            }
        }
        if let Some(k) = addr_arith(op, &vals) {
            return SExpr::Known(k);
        }
        // Residual: rebuild with the specialized operands.
        let new_args: Vec<ExprId> = args
            .iter()
            .zip(&vals)
            .map(|(a, v)| match v {
                SExpr::Known(k) => {
                    let w = self.pool.width(*a);
                    self.embed_width(*k, w)
                }
                SExpr::Dyn(x) => *x,
            })
            .collect();
        match self.pool.mk(op, &new_args) {
            Ok(r) => match self.pool.as_const(r) {
                Some(c) => SExpr::Known(SVal::Const(c)),
                None => SExpr::Dyn(r),
            },
            Err(_) => {
                self.out.needs_fallback = true;
                SExpr::Dyn(e)
            }
        }
    }

    fn load(&mut self, e: ExprId, n: u32, memo: &mut HashMap<ExprId, SExpr>) -> SExpr {
        let args = self.pool.args(e).to_vec();
        let addr = self.spec(args[1], memo);
        let a = match addr {
            SExpr::Known(a) => a,
            SExpr::Dyn(ae) => {
                self.out.dyn_reads.push(ae);
                return SExpr::Dyn(self.pool.load(self.cur_mem, ae, n as u8));
            }
        };
        let (region, off) = Region::of(a);
        self.out.known_reads.push((region, off, n));
        let mut bytes = Vec::new();
        let mut all_known = true;
        for i in 0..n {
            let key = (region, off.wrapping_add(i));
            match self.store.mem.get(&key) {
                Some(k) => {
                    if !k.synced && self.before.mem.get(&key) == Some(k) {
                        self.out.read_unsynced = true;
                    }
                    bytes.push(k.value)
                }
                None => match self.read_only_byte(region, off.wrapping_add(i)) {
                    Some(b) => bytes.push(Byte::Const(b)),
                    None => {
                        all_known = false;
                        break;
                    }
                },
            }
        }
        if all_known {
            if let Some(v) = join_bytes(&bytes) {
                return SExpr::Known(v);
            }
        }
        // A slot the residual code just stored a register into (or loaded
        // one from) reads as that register.
        let mem_var = loc_var(self.pool, Loc::Mem);
        if n == 4 && region == Region::Of(Base::Stack) && self.cur_mem == mem_var {
            let none_known =
                (0..4).all(|i| !self.store.mem.contains_key(&(region, off.wrapping_add(i))));
            let copy = self.before.copies.iter().find(|(o, r)| {
                *o == off
                    && self.before.reg(*r).is_none()
                    && !self.local.contains_key(&Loc::Reg(*r))
            });
            if let (true, Some((_, r))) = (none_known, copy) {
                return SExpr::Dyn(loc_var(self.pool, Loc::Reg(*r)));
            }
        }
        self.out.partial_reads.push((region, off, n));
        let ae = self.embed(a);
        SExpr::Dyn(self.pool.load(self.cur_mem, ae, n as u8))
    }

    /// Records that a residual value computes a stack address.
    fn note_escape(&mut self, e: ExprId) {
        let Some(v) = self.pool.lookup_var(base_var_name(Base::Stack)) else {
            return;
        };
        // Addresses of loads and stores do not escape; values do.
        let mut todo = vec![e];
        let mut seen = std::collections::HashSet::new();
        while let Some(x) = todo.pop() {
            if !seen.insert(x) {
                continue;
            }
            match self.pool.op(x) {
                Op::Var(w) if w == v => {
                    self.out.escapes = true;
                    return;
                }
                Op::Load(_) => todo.push(self.pool.args(x)[0]),
                Op::Store => {
                    let a = self.pool.args(x);
                    todo.push(a[0]);
                    todo.push(a[2]);
                }
                _ => todo.extend(self.pool.args(x).iter().copied()),
            }
        }
    }

    /// A byte of a read-only segment of the binary at a region offset.
    fn read_only_byte(&self, region: Region, addr: u32) -> Option<u8> {
        let link = match (region, self.pie) {
            (Region::Abs, false) => addr,
            (Region::Of(Base::Load), true) => addr,
            _ => return None,
        };
        if !self.binary.is_read_only(link) {
            return None;
        }
        self.binary.read(link, 1).and_then(|b| b.first().copied())
    }
}

/// Arithmetic on specialization-time addresses: `base + k` plus or minus a
/// constant, differences and comparisons of addresses with the same base
/// (assuming no wrap-around inside one memory chunk), and the fact that no
/// such address is null.
fn addr_arith(op: Op, vals: &[SExpr]) -> Option<SVal> {
    use SExpr::Known as K;
    use SVal::{Addr, Const};
    let b = |x: bool| Some(Const(u64::from(x)));
    match (op, vals) {
        (Op::Add, [K(Addr(b, o)), K(Const(c))]) | (Op::Add, [K(Const(c)), K(Addr(b, o))]) => {
            Some(Addr(*b, o.wrapping_add(*c as u32)))
        }
        (Op::Sub, [K(Addr(b, o)), K(Const(c))]) => Some(Addr(*b, o.wrapping_sub(*c as u32))),
        (Op::Sub, [K(Addr(b1, o1)), K(Addr(b2, o2))]) if b1 == b2 => {
            Some(Const(u64::from(o1.wrapping_sub(*o2))))
        }
        (Op::Eq, [K(Addr(b1, o1)), K(Addr(b2, o2))]) if b1 == b2 => b(o1 == o2),
        (Op::Eq, [K(Addr(..)), K(Const(0))]) | (Op::Eq, [K(Const(0)), K(Addr(..))]) => b(false),
        (Op::Ult | Op::Slt, [K(Addr(b1, o1)), K(Addr(b2, o2))]) if b1 == b2 => {
            b((*o1 as i32) < (*o2 as i32))
        }
        (Op::Ule | Op::Sle, [K(Addr(b1, o1)), K(Addr(b2, o2))]) if b1 == b2 => {
            b((*o1 as i32) <= (*o2 as i32))
        }
        (Op::Extract { hi: 31, lo: 0 }, [K(v @ Addr(..))]) => Some(*v),
        (Op::ZeroExt(32) | Op::SignExt(32), [K(v @ Addr(..))]) => Some(*v),
        _ => None,
    }
}
