//! Eval: symbolic evaluation of one instruction's decoupled parts over the
//! static store.
//!
//! Each formula is specialized bottom-up: a sub-formula whose inputs are all
//! known becomes a [`SVal`] (constant folding goes through the pool's
//! simplifier; address arithmetic on `base + offset` is done here), and any
//! other becomes a residual formula over the machine state before the
//! instruction, with known values substituted (addresses as `@stack + k` or
//! `@load + k`, later rewritten relative to the machine's `esp`).

use wiper_elf::Binary;
use wiper_qfbv::{bv, ExprId, ExprPool, Op, VarId};
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

/// The formula variables that stand for frame addresses in `store`: the
/// stack and entry bases (with offset hint 0) and the registers it marks
/// as holding frame addresses (with their hints, [`Store::frame_regs`]).
pub(crate) fn frame_vars(pool: &mut ExprPool, store: &Store) -> Vec<(VarId, u32)> {
    let mut frames: Vec<(VarId, u32)> = [Base::Stack, Base::Entry]
        .into_iter()
        .filter_map(|b| pool.lookup_var(base_var_name(b)))
        .map(|v| (v, 0))
        .collect();
    for r in Reg::ALL {
        if let Some(k) = store.frame_reg(r) {
            let v = loc_var(pool, Loc::Reg(r));
            frames.extend(pool.as_var(v).map(|v| (v, k)));
        }
    }
    frames
}

/// The name of the formula variable standing for a symbolic base.
pub fn base_var_name(b: Base) -> &'static str {
    match b {
        Base::Stack => "@stack",
        Base::Entry => "@entry",
        Base::Load => "@load",
        Base::Fs => "@fs",
        Base::Gs => "@gs",
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
    /// Addresses (residual formulas) and widths in bytes of stores through
    /// unknown pointers.
    pub dyn_writes: Vec<(ExprId, u32)>,
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
    /// The offset from [`Base::Entry`] the stack pointer gets when the
    /// instruction leaves a realigned stack (`lea esp,[ecx-0x4]`).
    pub esp_entry: Option<u32>,
    /// Whether some formula could not be specialized to something the
    /// machine can compute (a symbolic base stayed in a residual formula).
    pub needs_fallback: bool,
    /// Whether the instruction is opaque (`wiper_sem::Opaque`): it is
    /// always emitted, after its known inputs are materialized.
    pub opaque: bool,
}

impl Evaluated {
    /// Whether the instruction leaves anything for the residual program.
    pub fn has_residual(&self) -> bool {
        !self.regs.is_empty() || !self.flags.is_empty() || self.mem.is_some() || self.opaque
    }
}

/// Memory reused by successive evaluations over one pool (kept by the
/// caller, so an evaluation allocates nothing for its memo table), and
/// facts about the pool's variables.
#[derive(Default)]
pub struct Scratch {
    /// The memory variable `mem`.
    mem_var: Option<ExprId>,
    /// The location of each variable (by [`VarId::index`]), once looked up.
    var_locs: Vec<Option<Option<Loc>>>,
    /// Specialized formulas by [`ExprId::index`]; an entry is valid when
    /// stamped with the current `part` number.
    memo: Vec<(u32, SExpr)>,
    /// The number of the part being evaluated (stamps `memo` entries).
    part: u32,
    /// Values of locations assigned earlier in the current instruction.
    local: Vec<(Loc, SExpr)>,
    /// The current part's effects, specialized.
    results: Vec<(Loc, Value, Option<SExpr>)>,
    /// The known bytes a load reads.
    bytes: Vec<Byte>,
}

impl Scratch {
    /// The location a formula variable stands for, if any.
    fn var_loc(&mut self, pool: &ExprPool, v: VarId) -> Option<Loc> {
        let i = v.index();
        if i >= self.var_locs.len() {
            self.var_locs.resize(i + 1, None);
        }
        *self.var_locs[i].get_or_insert_with(|| Loc::of_var(pool, v))
    }

    /// Starts a new part: forgets every memo entry.
    fn next_part(&mut self) {
        self.part = self.part.wrapping_add(1);
        if self.part == 0 {
            // The stamps wrapped around: old entries could look valid.
            self.memo.clear();
            self.part = 1;
        }
    }

    fn get(&self, e: ExprId) -> Option<SExpr> {
        match self.memo.get(e.index()) {
            Some((part, s)) if *part == self.part => Some(*s),
            _ => None,
        }
    }

    fn insert(&mut self, e: ExprId, s: SExpr) {
        let i = e.index();
        if i >= self.memo.len() {
            self.memo.resize(i + 1, (0, SExpr::Dyn(e)));
        }
        self.memo[i] = (self.part, s);
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
    before: &'a Store,
    /// The memo table of the current part and the values of locations
    /// assigned earlier in this instruction.
    scratch: &'a mut Scratch,
    /// The memory variable `mem` (memory before the instruction).
    mem_var: ExprId,
    /// The memory after the stores evaluated so far.
    cur_mem: ExprId,
    out: Evaluated,
}

impl<'a> Evaluator<'a> {
    /// Starts evaluating an instruction in `store`, with `scratch` for its
    /// temporary tables.
    pub fn new(
        pool: &'a mut ExprPool,
        binary: &'a Binary,
        pie: bool,
        store: &'a Store,
        scratch: &'a mut Scratch,
    ) -> Self {
        let mem = *scratch
            .mem_var
            .get_or_insert_with(|| loc_var(pool, Loc::Mem));
        scratch.local.clear();
        Evaluator {
            pool,
            binary,
            pie,
            store: store.clone(),
            before: store,
            scratch,
            mem_var: mem,
            cur_mem: mem,
            out: Evaluated::default(),
        }
    }

    /// Evaluates every part of `lifted`; `is_call` marks a near call, whose
    /// pushed return address is a code address (load-relative in a PIE).
    pub fn run(mut self, lifted: &Lifted, is_call: bool) -> (Store, Evaluated) {
        for part in &lifted.parts {
            let mut results = std::mem::take(&mut self.scratch.results);
            self.scratch.next_part();
            // A fault the static inputs make certain (`div` by a static 0)
            // happens in the residual too: the original instruction runs.
            if let Some(fault) = part.fault {
                if matches!(self.spec(fault), SExpr::Known(SVal::Const(c)) if c != 0) {
                    self.out.needs_fallback = true;
                }
            }
            if let Some(opaque) = &part.opaque {
                // Its inputs are read (known memory, unsynced values) like
                // any formula's; their values matter only to the machine.
                self.out.opaque = true;
                for &input in &opaque.inputs {
                    self.spec(input);
                }
            }
            for eff in &part.effects {
                let v = match eff.value {
                    Value::Expr(e) => Some(self.spec(e)),
                    Value::Undefined => None,
                };
                results.push((eff.dst, eff.value, v));
            }
            for (dst, value, v) in results.drain(..) {
                match (dst, v) {
                    (Loc::Mem, _) => {
                        if let Value::Expr(e) = value {
                            self.store_chain(e, is_call);
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
            self.scratch.results = results;
        }
        let mut out = self.out;
        if out.mem.is_some() && self.cur_mem == self.mem_var {
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
                        Some(SVal::Addr(Base::Entry, k)) => self.out.esp_entry = Some(k),
                        _ => self.out.esp_lost = true,
                    }
                } else {
                    match known {
                        Some(value) => self.store.set_reg(
                            r,
                            Some(Known {
                                value,
                                synced: false,
                            }),
                        ),
                        None => {
                            let frame = dynamic.and_then(|e| self.frame_value(e));
                            self.store.set_dynamic(r, frame);
                        }
                    }
                    // An entry-relative value cannot be rebuilt later: the
                    // instruction computes it into the machine too.
                    let dynamic = match known {
                        Some(v @ SVal::Addr(Base::Entry, _)) => Some(self.embed(v)),
                        _ => dynamic,
                    };
                    if let Some(e) = dynamic {
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
                    self.out.flags.push((f, e));
                }
            }
            // The store has no place for `fpu`: the machine always holds it.
            Loc::Temp(_) | Loc::Fpu => {}
            Loc::Mem | Loc::Eip => unreachable!("handled by the caller"),
            Loc::FsBase | Loc::GsBase => unreachable!("no instruction assigns a segment base"),
        }
        // Undefined: reads see "the machine's value".
        let s = sexpr.unwrap_or_else(|| SExpr::Dyn(loc_var(self.pool, loc)));
        let local = &mut self.scratch.local;
        match local.iter_mut().find(|(l, _)| *l == loc) {
            Some(entry) => entry.1 = s,
            None => local.push((loc, s)),
        }
    }

    /// The value of a location assigned earlier in this instruction.
    fn local(&self, loc: Loc) -> Option<SExpr> {
        let local = &self.scratch.local;
        local.iter().find(|(l, _)| *l == loc).map(|(_, s)| *s)
    }

    /// Applies a memory effect: a chain of stores over `mem`, under `ite`s
    /// whose condition is static (a `rep` step's `ecx == 0` guard). Any
    /// other shape (a dynamic condition) sends the instruction to the
    /// fallback, each of its stores a store through an unknown pointer.
    fn store_chain(&mut self, e: ExprId, is_call: bool) {
        let Some(e) = self.static_arm(e) else {
            return self.unknown_stores(e);
        };
        let mut chain = Vec::new();
        let mut cur = e;
        while self.pool.op(cur) == Op::Store {
            let args = self.pool.args(cur).to_vec();
            chain.push((args[1], args[2]));
            cur = args[0];
        }
        if cur != self.mem_var {
            return self.unknown_stores(e);
        }
        chain.reverse();
        for (addr, value) in chain {
            let a = self.spec(addr);
            let mut v = self.spec(value);
            let nbytes = self.pool.width(value) / 8;
            if let (true, true, SExpr::Known(SVal::Const(c))) = (is_call, self.pie, v) {
                v = SExpr::Known(SVal::Addr(Base::Load, c as u32));
            }
            match (a, v) {
                (SExpr::Known(a), SExpr::Known(v)) => {
                    let (region, off) = Region::of(a);
                    if region == Region::Of(Base::Entry) || matches!(v, SVal::Addr(Base::Entry, _))
                    {
                        // Entry-frame bytes and entry-relative values cannot
                        // be written back later: the instruction stores them
                        // now, and they are known too.
                        let (ae, ve) = (self.embed(a), self.embed_width(v, nbytes * 8));
                        self.cur_mem = self.pool.store(self.cur_mem, ae, ve);
                        self.out.mem = Some(self.cur_mem);
                    }
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
                        self.store.mem.remove((region, off.wrapping_add(i)));
                    }
                    self.out.dyn_known_writes.push((region, off, nbytes));
                    let ae = self.embed(a);
                    self.cur_mem = self.pool.store(self.cur_mem, ae, v);
                    self.out.mem = Some(self.cur_mem);
                }
                (SExpr::Dyn(a), v) => {
                    let ve = self.as_formula(v, nbytes * 8);
                    self.note_escape(ve);
                    self.out.dyn_writes.push((a, nbytes));
                    self.cur_mem = self.pool.store(self.cur_mem, a, ve);
                    self.out.mem = Some(self.cur_mem);
                }
            }
        }
    }

    /// The memory `e` is once the static conditions of the `ite`s around
    /// it pick their arms; `None` when a condition is dynamic.
    fn static_arm(&mut self, mut e: ExprId) -> Option<ExprId> {
        while self.pool.op(e) == Op::Ite {
            let args = self.pool.args(e).to_vec();
            match self.spec(args[0]) {
                SExpr::Known(SVal::Const(c)) => e = if c & 1 == 1 { args[1] } else { args[2] },
                _ => return None,
            }
        }
        Some(e)
    }

    /// A memory effect that is not a plain chain of stores: the original
    /// instruction runs (the fallback), and every store in `e` counts as a
    /// store through an unknown pointer, so the bytes it may reach are in
    /// memory before and forgotten after.
    fn unknown_stores(&mut self, e: ExprId) {
        self.out.needs_fallback = true;
        let mut todo = vec![e];
        let mut seen = std::collections::HashSet::new();
        while let Some(x) = todo.pop() {
            if x == self.mem_var || !seen.insert(x) {
                continue;
            }
            let args = self.pool.args(x).to_vec();
            if self.pool.op(x) == Op::Store {
                let a = self.spec(args[1]);
                let a = self.as_formula(a, 32);
                let nbytes = self.pool.width(args[2]) / 8;
                self.out.dyn_writes.push((a, nbytes));
            }
            todo.extend(args);
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
    fn spec(&mut self, e: ExprId) -> SExpr {
        let op = self.pool.op(e);
        if let Op::Const { val, .. } = op {
            return SExpr::Known(SVal::Const(val));
        }
        if let Some(s) = self.scratch.get(e) {
            return s;
        }
        let r = self.spec_uncached(e, op);
        self.scratch.insert(e, r);
        r
    }

    fn read_loc(&mut self, loc: Loc, e: ExprId) -> SExpr {
        if let Some(s) = self.local(loc) {
            return s;
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
            Loc::Fpu => SExpr::Dyn(e),
            // A segment base is a symbolic base the machine always holds
            // (the thread pointer once the C library installed it).
            Loc::FsBase => SExpr::Known(SVal::Addr(Base::Fs, 0)),
            Loc::GsBase => SExpr::Known(self.before.gs_base.unwrap_or(SVal::Addr(Base::Gs, 0))),
            // A temporary read before written: cannot happen in a lifted
            // sequence; keep it residual so the fallback handles it.
            Loc::Temp(_) | Loc::Eip => {
                self.out.needs_fallback = true;
                SExpr::Dyn(e)
            }
        }
    }

    /// [`Evaluator::spec`] of a formula `e` = `op(...)` that is not a
    /// constant and not in the memo table yet.
    fn spec_uncached(&mut self, e: ExprId, op: Op) -> SExpr {
        match op {
            Op::Var(v) => {
                return match self.scratch.var_loc(self.pool, v) {
                    Some(loc) => self.read_loc(loc, e),
                    None => SExpr::Dyn(e),
                }
            }
            Op::Load(n) => return self.load(e, u32::from(n)),
            _ => {}
        }
        // Operands: at most three (`ite`, `store`).
        let mut args = [e; 3];
        let n = {
            let a = self.pool.args(e);
            args[..a.len()].copy_from_slice(a);
            a.len()
        };
        let args = &args[..n];
        let mut vals = [SExpr::Dyn(e); 3];
        for (v, a) in vals.iter_mut().zip(args) {
            *v = self.spec(*a);
        }
        let vals = &vals[..n];
        if op == Op::Ite {
            if let SExpr::Known(SVal::Const(c)) = vals[0] {
                return if c & 1 == 1 { vals[1] } else { vals[2] };
            }
        }
        // Constant operands: fold (as the pool's simplifier would).
        let mut consts = [(0, 0); 3];
        let all_const = vals.iter().zip(args).zip(&mut consts).all(|((v, a), c)| {
            let SExpr::Known(SVal::Const(v)) = v else {
                return false;
            };
            let w = self.pool.width(*a);
            *c = (v & bv::mask(w), w);
            true
        });
        if all_const {
            if let Some(c) = bv::apply(op, &consts[..n]) {
                return SExpr::Known(SVal::Const(c));
            }
        }
        if let Some(k) = addr_arith(op, vals) {
            return SExpr::Known(k);
        }
        // Residual: rebuild with the specialized operands.
        let mut new_args = [e; 3];
        for ((x, a), v) in new_args.iter_mut().zip(args).zip(vals) {
            *x = match v {
                SExpr::Known(k) => {
                    let w = self.pool.width(*a);
                    self.embed_width(*k, w)
                }
                SExpr::Dyn(x) => *x,
            };
        }
        match self.pool.mk(op, &new_args[..n]) {
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

    fn load(&mut self, e: ExprId, n: u32) -> SExpr {
        let addr = self.spec(self.pool.args(e)[1]);
        let a = match addr {
            SExpr::Known(a) => a,
            SExpr::Dyn(ae) => {
                self.out.dyn_reads.push(ae);
                return SExpr::Dyn(self.pool.load(self.cur_mem, ae, n as u8));
            }
        };
        let (region, off) = Region::of(a);
        self.out.known_reads.push((region, off, n));
        let mut bytes = std::mem::take(&mut self.scratch.bytes);
        bytes.clear();
        let mut all_known = true;
        for i in 0..n {
            let key = (region, off.wrapping_add(i));
            match self.store.mem.get(key) {
                Some(k) => {
                    if !k.synced && self.before.mem.get(key) == Some(k) {
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
        let joined = if all_known { join_bytes(&bytes) } else { None };
        self.scratch.bytes = bytes;
        if let Some(v) = joined {
            return SExpr::Known(v);
        }
        // A slot the residual code just stored a register into (or loaded
        // one from) reads as that register.
        if n == 4 && region == Region::Of(Base::Stack) && self.cur_mem == self.mem_var {
            let none_known =
                (0..4).all(|i| !self.store.mem.contains((region, off.wrapping_add(i))));
            let copy = self.before.copies.iter().find(|(o, r)| {
                *o == off && self.before.reg(*r).is_none() && self.local(Loc::Reg(*r)).is_none()
            });
            if let (true, Some((_, r))) = (none_known, copy) {
                return SExpr::Dyn(loc_var(self.pool, Loc::Reg(*r)));
            }
        }
        self.out.partial_reads.push((region, off, n));
        let ae = self.embed(a);
        SExpr::Dyn(self.pool.load(self.cur_mem, ae, n as u8))
    }

    /// Records that a value stored to memory may be a frame address (the
    /// frame escapes).
    fn note_escape(&mut self, e: ExprId) {
        if self.frame_value(e).is_some() {
            self.out.escapes = true;
        }
    }

    /// Whether the residual value `e` may be a frame address: it is
    /// computed from a stack base or from a register holding a frame
    /// address (through a load only by its memory: the value at an address
    /// is not the address). Then the stack offset it most likely points
    /// near (`k` of `stack + k + dynamic terms`, else 0), a hint for the
    /// window of a guarded store.
    fn frame_value(&mut self, e: ExprId) -> Option<u32> {
        let frames = frame_vars(self.pool, self.before);
        if frames.is_empty() {
            return None;
        }
        let mut todo = vec![e];
        let mut seen = std::collections::HashSet::new();
        let mut found = false;
        while let Some(x) = todo.pop() {
            if !seen.insert(x) {
                continue;
            }
            match self.pool.op(x) {
                Op::Var(w) if frames.iter().any(|f| f.0 == w) => {
                    found = true;
                    break;
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
        if !found {
            return None;
        }
        let (terms, constant) = crate::linear::terms(self.pool, e).unwrap_or_default();
        let base = terms
            .iter()
            .filter(|t| t.1 == 1)
            .find_map(|t| frames.iter().find(|f| f.0 == t.0).map(|f| f.1));
        Some(base.map_or(0, |k| k.wrapping_add(constant)))
    }

    /// A byte of a read-only segment of the binary at a region offset.
    fn read_only_byte(&self, region: Region, addr: u32) -> Option<u8> {
        let link = match (region, self.pie) {
            (Region::Abs, false) => addr,
            (Region::Of(Base::Load), true) => addr,
            _ => return None,
        };
        if !self.binary.is_constant(link) {
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
