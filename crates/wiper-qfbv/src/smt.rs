//! Translation to Z3 terms and an equivalence prover.
//!
//! Written for the z3 crate 0.22 over the system libz3 4.8.12 (see the field
//! guide): only BV, Bool, Array, Solver, Params, Model and `simplify` are used;
//! `FuncDecl::kind()` is never called, Z3 terms are never printed, and widths
//! are checked by [`ExprPool`] before Z3 sees them (Z3 panics on width errors).
//! Z3 objects live in the thread's implicit context, so a [`Prover`] is
//! neither `Send` nor `Sync`: use one per thread.

use std::collections::BTreeMap;

use z3::ast::{Array, Ast, Bool, BV};
use z3::{Params, SatResult, Solver};

use crate::fx::FxHashMap;
use crate::lia::LiaTranslator;
use crate::{Assignment, ExprId, ExprPool, MemImage, Op, Sort, VarId};

/// A translated expression: a Z3 bit-vector, or a Z3 array for memory.
/// 1-bit results (comparisons) are bit-vectors of width 1, as in the pool.
#[derive(Clone, Debug)]
pub enum Z3Term {
    /// Bit-vector term.
    Bv(BV),
    /// Array from bv32 to bv8.
    Mem(Array),
}

impl Z3Term {
    /// The bit-vector term; panics on memory.
    pub fn bv(&self) -> &BV {
        match self {
            Z3Term::Bv(b) => b,
            Z3Term::Mem(_) => panic!("expected a bit-vector term, got memory"),
        }
    }

    /// The array term; panics on a bit-vector.
    pub fn mem(&self) -> &Array {
        match self {
            Z3Term::Mem(m) => m,
            Z3Term::Bv(_) => panic!("expected a memory term, got a bit-vector"),
        }
    }
}

/// `b` as a 1-bit vector.
fn bool_to_bv(b: &Bool) -> BV {
    b.ite(&BV::from_u64(1, 1), &BV::from_u64(0, 1))
}

/// The 32-bit address `addr + i`.
fn offset(addr: &BV, i: u32) -> BV {
    if i == 0 {
        addr.clone()
    } else {
        addr.bvadd(BV::from_u64(u64::from(i), 32))
    }
}

/// Translates pool expressions to Z3 terms, memoized per node for the
/// lifetime of the translator (so shared sub-terms are translated once, and
/// repeated queries reuse earlier work). Variables become Z3 constants named
/// like the pool variables. Bound to the first pool it is used with.
#[derive(Default)]
pub struct Z3Translator {
    pool_tag: Option<u32>,
    memo: FxHashMap<ExprId, Z3Term>,
    vars: FxHashMap<VarId, Z3Term>,
}

impl Z3Translator {
    /// A translator with an empty memo table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The Z3 term of `e`.
    pub fn translate(&mut self, pool: &ExprPool, e: ExprId) -> Z3Term {
        match self.pool_tag {
            None => self.pool_tag = Some(pool.tag()),
            Some(t) => assert_eq!(t, pool.tag(), "Z3Translator used with two ExprPools"),
        }
        for s in pool.subterms_except(&[e], |s| self.memo.contains_key(&s)) {
            let t = self.node(pool, s);
            self.memo.insert(s, t);
        }
        self.memo[&e].clone()
    }

    /// The Z3 term of variable `v`, if it was translated.
    pub fn var_term(&self, v: VarId) -> Option<&Z3Term> {
        self.vars.get(&v)
    }

    /// Translates one node whose operands are memoized.
    fn node(&mut self, pool: &ExprPool, e: ExprId) -> Z3Term {
        let args = pool.args(e);
        let bv = |i: usize| self.memo[&args[i]].bv();
        let b = |f: fn(&BV, &BV) -> BV| Z3Term::Bv(f(bv(0), bv(1)));
        let cmp = |f: fn(&BV, &BV) -> Bool| Z3Term::Bv(bool_to_bv(&f(bv(0), bv(1))));
        match pool.op(e) {
            Op::Const { val, width } => Z3Term::Bv(BV::from_u64(val, width)),
            Op::Var(v) => {
                let name = pool.var_name(v);
                let t = match pool.var_sort(v) {
                    Sort::Bv(w) => Z3Term::Bv(BV::new_const(name, w)),
                    Sort::Mem => Z3Term::Mem(Array::new_const(
                        name,
                        &z3::Sort::bitvector(32),
                        &z3::Sort::bitvector(8),
                    )),
                };
                self.vars.insert(v, t.clone());
                t
            }
            Op::Not => Z3Term::Bv(bv(0).bvnot()),
            Op::Neg => Z3Term::Bv(bv(0).bvneg()),
            Op::Add => b(|x, y| x.bvadd(y)),
            Op::Sub => b(|x, y| x.bvsub(y)),
            Op::Mul => b(|x, y| x.bvmul(y)),
            Op::Udiv => b(|x, y| x.bvudiv(y)),
            Op::Urem => b(|x, y| x.bvurem(y)),
            Op::Sdiv => b(|x, y| x.bvsdiv(y)),
            Op::Srem => b(|x, y| x.bvsrem(y)),
            Op::And => b(|x, y| x.bvand(y)),
            Op::Or => b(|x, y| x.bvor(y)),
            Op::Xor => b(|x, y| x.bvxor(y)),
            Op::Shl => b(|x, y| x.bvshl(y)),
            Op::Lshr => b(|x, y| x.bvlshr(y)),
            Op::Ashr => b(|x, y| x.bvashr(y)),
            Op::Rotl => b(|x, y| x.bvrotl(y)),
            Op::Rotr => b(|x, y| x.bvrotr(y)),
            Op::Concat => b(|x, y| x.concat(y)),
            Op::Eq => cmp(|x, y| x.eq(y)),
            Op::Ult => cmp(|x, y| x.bvult(y)),
            Op::Ule => cmp(|x, y| x.bvule(y)),
            Op::Slt => cmp(|x, y| x.bvslt(y)),
            Op::Sle => cmp(|x, y| x.bvsle(y)),
            Op::Extract { hi, lo } => Z3Term::Bv(bv(0).extract(hi, lo)),
            Op::ZeroExt(to) => Z3Term::Bv(bv(0).zero_ext(to - pool.width(args[0]))),
            Op::SignExt(to) => Z3Term::Bv(bv(0).sign_ext(to - pool.width(args[0]))),
            Op::Ite => {
                let c = bv(0).eq(BV::from_u64(1, 1));
                match (&self.memo[&args[1]], &self.memo[&args[2]]) {
                    (Z3Term::Bv(t), Z3Term::Bv(f)) => Z3Term::Bv(c.ite(t, f)),
                    (Z3Term::Mem(t), Z3Term::Mem(f)) => Z3Term::Mem(c.ite(t, f)),
                    _ => unreachable!("ite branches of different sorts"),
                }
            }
            Op::Load(n) => {
                let (m, a) = (self.memo[&args[0]].mem(), bv(1));
                let byte = |i: u32| m.select(&offset(a, i)).as_bv().expect("byte");
                let top = byte(u32::from(n) - 1);
                Z3Term::Bv(
                    (0..u32::from(n) - 1)
                        .rev()
                        .fold(top, |acc, i| acc.concat(byte(i))),
                )
            }
            Op::Store => {
                let (m, a, v) = (self.memo[&args[0]].mem(), bv(1), bv(2));
                let m = (0..v.get_size() / 8).fold(m.clone(), |m, i| {
                    m.store(&offset(a, i), &v.extract(8 * i + 7, 8 * i))
                });
                Z3Term::Mem(m)
            }
        }
    }
}

/// A concrete witness that two expressions differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// Values of the free variables. Memory images hold every byte that any
    /// load in the two expressions reads (and no default), so
    /// [`ExprPool::eval`] can replay the counterexample.
    pub assignment: Assignment,
    /// For memory equalities: an address whose byte differs.
    pub address: Option<u32>,
}

/// Outcome of [`Prover::prove_equal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofResult {
    /// Equal under every assignment.
    Proved,
    /// Different under the given assignment.
    Refuted(Counterexample),
    /// Z3 gave up (timeout or incompleteness).
    Unknown,
}

/// Counters describing the work a [`Prover`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProverStats {
    /// Calls of `prove_equal`/`prove_valid`.
    pub queries: u64,
    /// Queries answered from the cache.
    pub cache_hits: u64,
    /// Queries decided by Z3's `simplify` alone.
    pub by_simplify: u64,
    /// Queries that reached the solver.
    pub solver_calls: u64,
    /// Of those, queries with a division tried in linear integer
    /// arithmetic first ([`Prover::prove_equal`]).
    pub linear_calls: u64,
    /// Of those, the ones proved there.
    pub linear_proofs: u64,
}

/// Decides equivalence of expressions with Z3: one reused solver per logic
/// (`QF_BV`, `QF_ABV` when memory is involved) with a per-check timeout, a
/// memoizing [`Z3Translator`], a `simplify` pre-check, and a cache of definite
/// answers keyed by the (unordered) pair of ids. `Unknown` is not cached.
/// Bound to one [`ExprPool`]; not `Send` (Z3 contexts are per thread).
pub struct Prover {
    timeout_ms: u32,
    qf_bv: Option<Solver>,
    qf_abv: Option<Solver>,
    translator: Z3Translator,
    cache: FxHashMap<(ExprId, ExprId), ProofResult>,
    probe_addr: BV,
    stats: ProverStats,
}

impl Prover {
    /// A prover whose solver checks give up after `timeout_ms` milliseconds.
    pub fn new(timeout_ms: u32) -> Self {
        Prover {
            timeout_ms,
            qf_bv: None,
            qf_abv: None,
            translator: Z3Translator::new(),
            cache: FxHashMap::default(),
            probe_addr: BV::new_const("wiper!probe_addr", 32),
            stats: ProverStats::default(),
        }
    }

    /// Work counters so far.
    pub fn stats(&self) -> ProverStats {
        self.stats
    }

    /// The translator, for callers that build their own Z3 queries.
    pub fn translator(&mut self) -> &mut Z3Translator {
        &mut self.translator
    }

    /// Whether `a` and `b` (of the same sort) are equal for every value of
    /// their variables. Memories are equal when every byte is.
    pub fn prove_equal(&mut self, pool: &ExprPool, a: ExprId, b: ExprId) -> ProofResult {
        assert_eq!(
            pool.sort(a),
            pool.sort(b),
            "prove_equal on expressions of different sorts"
        );
        self.stats.queries += 1;
        if a == b {
            return ProofResult::Proved;
        }
        let key = (a.min(b), a.max(b));
        if let Some(r) = self.cache.get(&key) {
            self.stats.cache_hits += 1;
            return r.clone();
        }
        let (ta, tb) = (
            self.translator.translate(pool, a),
            self.translator.translate(pool, b),
        );
        let differ = match (&ta, &tb) {
            (Z3Term::Bv(x), Z3Term::Bv(y)) => x.eq(y).not(),
            (Z3Term::Mem(x), Z3Term::Mem(y)) => {
                let k = &self.probe_addr;
                let (bx, by) = (x.select(k).as_bv(), y.select(k).as_bv());
                bx.expect("byte").eq(by.expect("byte")).not()
            }
            _ => unreachable!("sorts checked above"),
        };
        let probe = (pool.sort(a) == Sort::Mem).then(|| self.probe_addr.clone());
        // Dividers defeat bit-blasting; in integer arithmetic a division by
        // a constant is linear, so such formulas are tried there first.
        let divides = |e: ExprId| {
            pool.subterms(&[e])
                .iter()
                .any(|&s| matches!(pool.op(s), Op::Udiv | Op::Urem | Op::Sdiv | Op::Srem))
        };
        let mut r = ProofResult::Unknown;
        if pool.sort(a) != Sort::Mem && (divides(a) || divides(b)) {
            r = self.prove_equal_linear(pool, a, b);
        }
        if r == ProofResult::Unknown {
            r = self.check_differ(pool, &[a, b], &differ, probe);
        }
        if r != ProofResult::Unknown {
            self.cache.insert(key, r.clone());
        }
        r
    }

    /// The first try of [`Prover::prove_equal`] for formulas with a
    /// division: both bit-vector formulas translated exactly into linear
    /// integer arithmetic (each is its unsigned value; see `lia.rs`).
    /// `Proved` when Z3 finds no assignment of the variables in their ranges
    /// that tells them apart, `Refuted` with the one it finds, `Unknown`
    /// when a formula leaves the linear fragment (a product of two
    /// variables, `or`, memory, …) or Z3 gives up.
    pub fn prove_equal_linear(&mut self, pool: &ExprPool, a: ExprId, b: ExprId) -> ProofResult {
        // In a context of its own: Z3's search depends on the order in
        // which terms were created, so sharing the context of earlier
        // queries made the time of the same query vary a thousandfold.
        let timeout_ms = self.timeout_ms;
        let outcome =
            z3::with_z3_config(&z3::Config::new(), || linear_query(pool, a, b, timeout_ms));
        if let Some(r) = &outcome {
            self.stats.solver_calls += 1;
            self.stats.linear_calls += 1;
            if *r == ProofResult::Proved {
                self.stats.linear_proofs += 1;
            }
        }
        outcome.unwrap_or(ProofResult::Unknown)
    }

    /// Whether the 1-bit `cond` is 1 for every value of its variables.
    pub fn prove_valid(&mut self, pool: &ExprPool, cond: ExprId) -> ProofResult {
        assert_eq!(
            pool.sort(cond),
            Sort::Bv(1),
            "prove_valid on a non-bv1 expression"
        );
        self.stats.queries += 1;
        if pool.as_const(cond) == Some(1) {
            return ProofResult::Proved;
        }
        let key = (cond, cond);
        if let Some(r) = self.cache.get(&key) {
            self.stats.cache_hits += 1;
            return r.clone();
        }
        let t = self.translator.translate(pool, cond);
        let differ = t.bv().eq(BV::from_u64(0, 1));
        let r = self.check_differ(pool, &[cond], &differ, None);
        if r != ProofResult::Unknown {
            self.cache.insert(key, r.clone());
        }
        r
    }

    /// Asks whether `differ` is satisfiable; `roots` are the expressions it
    /// speaks about (for building the counterexample).
    fn check_differ(
        &mut self,
        pool: &ExprPool,
        roots: &[ExprId],
        differ: &Bool,
        probe: Option<BV>,
    ) -> ProofResult {
        if differ.simplify().as_bool() == Some(false) {
            self.stats.by_simplify += 1;
            return ProofResult::Proved;
        }
        self.stats.solver_calls += 1;
        let subterms = pool.subterms(roots);
        let uses_memory = subterms.iter().any(|&s| pool.sort(s) == Sort::Mem);
        let solver = self.solver(uses_memory);
        solver.push();
        solver.assert(differ);
        let result = match solver.check() {
            SatResult::Unsat => ProofResult::Proved,
            SatResult::Unknown => ProofResult::Unknown,
            SatResult::Sat => match solver.get_model() {
                Some(model) => {
                    ProofResult::Refuted(self.counterexample(pool, &subterms, &model, probe))
                }
                None => ProofResult::Unknown,
            },
        };
        self.solver(uses_memory).pop(1);
        result
    }

    /// The reused solver for the logic, created on first use.
    fn solver(&mut self, memory: bool) -> &Solver {
        let (slot, logic) = if memory {
            (&mut self.qf_abv, "QF_ABV")
        } else {
            (&mut self.qf_bv, "QF_BV")
        };
        let timeout = self.timeout_ms;
        slot.get_or_insert_with(|| {
            let s = Solver::new_for_logic(logic).unwrap_or_default();
            let mut params = Params::new();
            params.set_u32("timeout", timeout);
            s.set_params(&params);
            s
        })
    }

    /// Reads the variables of `subterms` out of `model`; memories are read at
    /// every byte some load (or the probe address) touches.
    fn counterexample(
        &self,
        pool: &ExprPool,
        subterms: &[ExprId],
        model: &z3::Model,
        probe: Option<BV>,
    ) -> Counterexample {
        let value = |t: &BV| model.eval(t, true).and_then(|v| v.as_u64()).unwrap_or(0);
        let address = probe.as_ref().map(|k| value(k) as u32);
        let mut addrs: Vec<u32> = address.into_iter().collect();
        for &s in subterms {
            if let Op::Load(n) = pool.op(s) {
                let base = value(self.translator.memo[&pool.args(s)[1]].bv()) as u32;
                addrs.extend((0..u32::from(n)).map(|i| base.wrapping_add(i)));
            }
        }
        let mut assignment = Assignment::new();
        for &s in subterms {
            let Some(v) = pool.as_var(s) else { continue };
            match &self.translator.vars[&v] {
                Z3Term::Bv(t) => {
                    assignment.set_bv(v, value(t));
                }
                Z3Term::Mem(m) => {
                    let bytes: BTreeMap<u32, u8> = addrs
                        .iter()
                        .map(|&a| {
                            let byte = m.select(&BV::from_u64(u64::from(a), 32)).as_bv();
                            (a, byte.map_or(0, |b| value(&b) as u8))
                        })
                        .collect();
                    assignment.set_mem(
                        v,
                        MemImage {
                            bytes,
                            default: None,
                        },
                    );
                }
            }
        }
        Counterexample {
            assignment,
            address,
        }
    }
}

/// The seeds of Z3's search for the linear query, tried in turn, each
/// with its share of the time: how long Z3 takes on one of these queries
/// depends on its path more than on the query, and two paths rarely both
/// get lost.
const LINEAR_SEEDS: [u32; 2] = [0, 3];

/// The query of [`Prover::prove_equal_linear`] in the current context:
/// `None` when a formula has no linear translation.
///
/// Z3's older simplex-based arithmetic solver (`arith.solver=2`) decides
/// the rounding of gcc's magic-number divisions in milliseconds where the
/// default one took seconds (signed divisions; measured on 21 divisors,
/// quotients and remainders, in wiper-synth's division tests).
fn linear_query(pool: &ExprPool, a: ExprId, b: ExprId, timeout_ms: u32) -> Option<ProofResult> {
    let mut lia = LiaTranslator::new(pool);
    let (ia, ib) = (lia.unsigned(a)?, lia.unsigned(b)?);
    let solver = Solver::new();
    for range in &lia.ranges {
        solver.assert(range);
    }
    solver.assert(ia.eq(&ib).not());
    let mut result = SatResult::Unknown;
    for seed in LINEAR_SEEDS {
        let mut params = Params::new();
        params.set_u32("timeout", timeout_ms / LINEAR_SEEDS.len() as u32);
        params.set_u32("arith.solver", 2);
        params.set_u32("random_seed", seed);
        solver.set_params(&params);
        result = solver.check();
        if result != SatResult::Unknown {
            break;
        }
    }
    Some(match result {
        SatResult::Unsat => ProofResult::Proved,
        SatResult::Sat => match solver.get_model() {
            Some(model) => {
                let mut assignment = Assignment::new();
                for (v, x) in &lia.vars {
                    let value = model.eval(x, true).and_then(|n| n.as_u64());
                    assignment.set_bv(*v, value.unwrap_or(0));
                }
                // A variable the translation never reached (`(z << 8)[3:0]`
                // is 0 whatever `z` is) does not matter: any value will do.
                for v in pool.vars(a).into_iter().chain(pool.vars(b)) {
                    assignment.bvs.entry(v).or_insert(0);
                }
                ProofResult::Refuted(Counterexample {
                    assignment,
                    address: None,
                })
            }
            None => ProofResult::Unknown,
        },
        SatResult::Unknown => ProofResult::Unknown,
    })
}
