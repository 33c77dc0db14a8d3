//! Reduce for wiper: synthesizes IA-32 code for a specialized QFBV formula.
//!
//! WiPEr reduces a *lifted* instruction (a dynamic instruction that reads a
//! static value) by substituting the static values into its formula and
//! synthesizing machine code for the result. A [`Goal`] says what the
//! residual code must leave in every location, as formulas over the state
//! before it; [`Synthesizer::synthesize`] returns the cheapest instruction
//! sequence it can **prove** (with Z3, answer `Proved`) to do exactly that for
//! every live register, live flag and all of memory, or `None`.
//!
//! Candidates, cheapest first ([`CandidateKind`]); the first proved wins:
//! 1. **Empty**: nothing, when every required location keeps its value;
//! 2. **Original**: the original instruction unchanged;
//! 3. **Rewritten**: the original with a static register operand (or a
//!    memory operand whose value the goal shows is constant) replaced by an
//!    immediate, and/or its memory operand re-addressed through registers
//!    that are not stale, read off the goal's address formula
//!    (`mov eax,[ebp+8]` with `ebp = esp+4` becomes `mov eax,[esp+0xc]`);
//! 4. **Direct**: one `mov`/`lea`/`xor`/`movzx`/`movsx`/`op r,imm`/
//!    `mov [a],r`/`push`/`pop` matched against the shape of a formula;
//! 5. **Divide**: a quotient and remainder of `eax` by a constant (`div`
//!    or `idiv` with a static divisor) as a multiplication by a magic
//!    number and shifts (`divide.rs`);
//! 6. **Materialized**: the original (or a rewritten form) after
//!    `mov r, value` for each stale register it still reads, when those
//!    registers may be written (`sub eax,ecx` with `eax = 5` becomes
//!    `mov eax,5; sub eax,ecx`);
//! 7. **Split**: divide and conquer over independent locations;
//! 8. **Search**: McSynth-style enumeration of sequences of length 1 to 3
//!    over an instruction pool pruned by the goal's footprint.
//!
//! Every candidate is lifted with `wiper_sem::lift` and its parts composed
//! symbolically; structural checks refuse control transfers,
//! faults, reads of stale registers and memory accesses the goal does not
//! make; concrete evaluation on pseudo-random states (and on earlier Z3
//! counterexamples) refutes most wrong candidates; only the survivors reach
//! the prover, one query per required location whose formula differs from
//! the goal's (hash-consed formulas that are identical are equal, which is
//! also what [`Prover::prove_equal`] answers without calling Z3). Formulas live in the synthesizer's own [`ExprPool`]: goals are
//! imported into it, which leaves the caller's pool untouched and makes
//! structurally equal goals hit one cache entry.
//!
//! ```
//! use wiper_qfbv::ExprPool;
//! use wiper_sem::{loc_var, Loc, Reg};
//! use wiper_synth::{Goal, Synthesizer};
//!
//! let mut pool = ExprPool::new();
//! // eax := eax + 5, flags dead.
//! let eax = loc_var(&mut pool, Loc::Reg(Reg::Eax));
//! let five = pool.bv(5, 32);
//! let sum = pool.add(eax, five);
//! let goal = Goal {
//!     effects: vec![(Loc::Reg(Reg::Eax), sum)],
//!     live_regs: 0xff,
//!     live_flags: 0,
//!     original: None,
//!     static_regs: &[],
//! };
//! let mut synth = Synthesizer::new(1000);
//! let code = synth.synthesize(&mut pool, &goal).unwrap();
//! assert_eq!(code.len(), 1);
//! ```

mod asm;
mod cands;
mod check;
mod compose;
mod divide;
mod import;
mod search;
mod spec;

use std::collections::HashMap;

use iced_x86::Instruction;
use wiper_qfbv::{ExprId, ExprPool, Op, ProofResult, Prover, VarId};
use wiper_sem::{loc_var, Flag, Loc, Reg};

use crate::check::Vectors;
use crate::compose::{Composer, SymState};
use crate::spec::{covered, slot, undefined_within, Spec};

/// What Reduce must produce: after the residual code runs, each live
/// location holds the given value.
#[derive(Clone, Debug)]
pub struct Goal<'a> {
    /// Location -> its value after the instruction, as a formula over the
    /// machine state *before* it (variables from [`wiper_sem::loc_var`]:
    /// registers, flags, `mem`). `Loc::Mem`'s value is a memory-array formula
    /// (e.g. `store(mem, esp + 8, eax)`). Locations not listed keep their
    /// value (they must not change if live). No `Temp`/`Eip` locations. A
    /// flag whose value is an undefined-value variable
    /// ([`wiper_sem::undefined_var`]) may take any value. Registers listed
    /// here must get their value even when not live.
    pub effects: Vec<(Loc, ExprId)>,
    /// Registers (bit = [`Reg::index`]) that are live after: the candidate
    /// may clobber only dead registers not in `effects`, and must produce the
    /// listed value for every live one. `esp` is always live.
    pub live_regs: u8,
    /// Flags (bit = [`Flag::index`]) live after; dead flags may take any value.
    pub live_flags: u8,
    /// The original instruction the goal was specialized from (a hint for
    /// the cheapest candidates), with its address.
    pub original: Option<&'a Instruction>,
    /// Registers whose *static* value is known (their machine contents are
    /// stale and must not be read): hint for candidates that put the value
    /// in an immediate.
    pub static_regs: &'a [(Reg, u32)],
}

/// The candidate families, cheapest first (see the crate documentation).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CandidateKind {
    /// The empty sequence.
    Empty,
    /// The original instruction unchanged.
    Original,
    /// The original with operands folded into immediates or re-addressed.
    Rewritten,
    /// One instruction matched against a formula's shape.
    Direct,
    /// Division by a constant as a multiplication by a magic number and
    /// shifts.
    Divide,
    /// The original (or a rewritten form) after `mov`s that put static
    /// values into the stale registers it reads (when they may be written).
    Materialized,
    /// Divide and conquer over independent locations.
    Split,
    /// Enumerative search over the footprint-pruned pool.
    Search,
}

impl CandidateKind {
    /// Every kind, in the order they are tried.
    pub const ALL: [CandidateKind; 8] = [
        CandidateKind::Empty,
        CandidateKind::Original,
        CandidateKind::Rewritten,
        CandidateKind::Direct,
        CandidateKind::Divide,
        CandidateKind::Materialized,
        CandidateKind::Split,
        CandidateKind::Search,
    ];

    /// Position in [`CandidateKind::ALL`] (and in [`SynthStats::solved_by`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        [
            "empty",
            "original",
            "rewritten",
            "direct",
            "divide",
            "materialized",
            "split",
            "search",
        ][self.index()]
    }
}

/// A sequence for a goal, the kind of candidate it came from and the
/// evidence that it meets the goal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synthesized {
    /// The instructions, placed one after the other from the original's
    /// address (0 without an original).
    pub instructions: Vec<Instruction>,
    /// Where it came from.
    pub kind: CandidateKind,
    /// Z3's verdicts on it; a caller uses the sequence only when
    /// [`Proof::holds`].
    pub proof: Proof,
}

/// Z3's answer to one equivalence query.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Equal on every input.
    Proved,
    /// A counterexample exists.
    Refuted,
    /// Undecided (time-out or incomplete theory).
    Unknown,
}

impl Verdict {
    /// The verdict of a prover answer.
    pub fn of(result: &ProofResult) -> Verdict {
        match result {
            ProofResult::Proved => Verdict::Proved,
            ProofResult::Refuted(_) => Verdict::Refuted,
            ProofResult::Unknown => Verdict::Unknown,
        }
    }
}

/// The evidence that a candidate meets its goal: Z3's verdict for every
/// location whose candidate formula is not the goal's own expression
/// (identical expressions in the hash-consed pool need no proof).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proof {
    /// One verdict per location that needed a proof.
    pub verdicts: Vec<Verdict>,
}

impl Proof {
    /// Whether Z3 proved every location that needed a proof.
    pub fn holds(&self) -> bool {
        self.verdicts.iter().all(|v| *v == Verdict::Proved)
    }
}

/// Work counters of a [`Synthesizer`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SynthStats {
    /// Calls of `synthesize`.
    pub goals: u64,
    /// Calls answered from the goal cache.
    pub goals_cached: u64,
    /// Calls that returned a sequence (cached answers included).
    pub goals_solved: u64,
    /// Calls that returned `None` (cached answers included).
    pub goals_failed: u64,
    /// Candidate sequences examined (composed and checked).
    pub candidates: u64,
    /// Candidates refuted by concrete evaluation.
    pub refuted_by_evaluation: u64,
    /// Equivalence queries given to the prover (pairs of different formulas).
    pub proofs: u64,
    /// Of those, answered from the prover's cache.
    pub proofs_cached: u64,
    /// Queries that reached the Z3 solver.
    pub solver_calls: u64,
    /// Queries Z3 refuted (a counterexample).
    pub proofs_refuted: u64,
    /// Queries Z3 left undecided.
    pub proofs_unknown: u64,
    /// Goals solved per [`CandidateKind`] (index [`CandidateKind::index`]),
    /// counted when computed (not for cached answers).
    pub solved_by: [u64; CandidateKind::ALL.len()],
}

impl SynthStats {
    /// Goals solved by candidates of `kind`.
    pub fn solved(&self, kind: CandidateKind) -> u64 {
        self.solved_by[kind.index()]
    }
}

/// Candidates examined per goal by default (over all kinds).
pub const DEFAULT_BUDGET: usize = 3000;
/// Longest sequence the search tries by default.
pub const DEFAULT_MAX_LENGTH: usize = 3;
/// Refuted or undecided proofs after which a goal is given up.
const MAX_FAILED_PROOFS: usize = 16;
/// Nodes in the private pool after which it is rebuilt (with the caches).
const POOL_LIMIT: usize = 2_000_000;
/// Seed of every goal's random test states (runs are reproducible).
const SEED: u64 = 0x7769_7065_7253_796e;

/// The goal cache key: the imported goal.
#[derive(Clone, PartialEq, Eq, Hash)]
struct GoalKey {
    effects: Vec<(Loc, ExprId)>,
    live_regs: u8,
    live_flags: u8,
    original: Option<(Instruction, u32)>,
    statics: Vec<(Reg, u32)>,
}

/// The state of the search for one goal.
pub(crate) struct GoalCtx {
    /// The goal.
    pub spec: Spec,
    /// Its test states.
    pub vectors: Vectors,
    /// Candidates examined.
    pub tried: usize,
    /// Candidates allowed.
    pub budget: usize,
    /// Proofs that failed (refuted or unknown).
    pub failed_proofs: usize,
    /// The verdicts on the last candidate `check_state` accepted.
    pub proof: Proof,
}

impl GoalCtx {
    /// Whether the budget is spent.
    pub fn exhausted(&self) -> bool {
        self.tried >= self.budget || self.failed_proofs >= MAX_FAILED_PROOFS
    }

    /// Candidates still allowed.
    pub fn budget_left(&self) -> usize {
        self.budget.saturating_sub(self.tried)
    }
}

/// Synthesizes instruction sequences for goals, proving each with Z3.
/// Owns its expression pool, a [`Prover`] and caches of lifts, proofs and
/// answers. Not `Send` (Z3 contexts are per thread): use one per thread.
pub struct Synthesizer {
    pool: ExprPool,
    prover: Prover,
    composer: Composer,
    timeout_ms: u32,
    cache: HashMap<GoalKey, Option<Synthesized>>,
    stats: SynthStats,
    budget: usize,
    max_len: usize,
}

impl Synthesizer {
    /// A synthesizer whose Z3 checks give up after `timeout_ms`
    /// milliseconds (an undecided check counts as a failed candidate).
    pub fn new(timeout_ms: u32) -> Self {
        Synthesizer {
            pool: fresh_pool(),
            prover: Prover::new(timeout_ms),
            composer: Composer::default(),
            timeout_ms,
            cache: HashMap::new(),
            stats: SynthStats::default(),
            budget: DEFAULT_BUDGET,
            max_len: DEFAULT_MAX_LENGTH,
        }
    }

    /// Sets the candidates examined per goal (default [`DEFAULT_BUDGET`]).
    pub fn set_budget(&mut self, candidates: usize) {
        self.budget = candidates;
        self.cache.clear();
    }

    /// Sets the longest sequence the search tries, 1 to 3 (default
    /// [`DEFAULT_MAX_LENGTH`]).
    pub fn set_max_length(&mut self, len: usize) {
        self.max_len = len.clamp(1, 3);
        self.cache.clear();
    }

    /// Work counters so far.
    pub fn stats(&self) -> SynthStats {
        let mut s = self.stats;
        s.solver_calls = self.prover.stats().solver_calls;
        s
    }

    /// Cheapest proved instruction sequence for the goal, or `None` if no
    /// candidate within the search bounds is proved (the caller then falls
    /// back to materializing the static inputs). Every returned sequence has
    /// been proved equivalent by Z3 (`Proved`, not `Unknown`) for all live
    /// locations and memory; answers are cached per goal, proofs per pair of
    /// formulas. `pool` is only read.
    pub fn synthesize(&mut self, pool: &mut ExprPool, goal: &Goal) -> Option<Vec<Instruction>> {
        self.synthesize_detailed(pool, goal)
            .filter(|s| s.proof.holds())
            .map(|s| s.instructions)
    }

    /// The accepted candidate with its kind and Z3's verdicts on it
    /// ([`Synthesized::proof`]): unlike [`Synthesizer::synthesize`], this
    /// does not drop a sequence whose proof does not hold, so a caller can
    /// count it; it must not use it.
    pub fn synthesize_detailed(&mut self, pool: &ExprPool, goal: &Goal) -> Option<Synthesized> {
        self.stats.goals += 1;
        if self.pool.len() > POOL_LIMIT {
            self.reset();
        }
        let r = self.answer(pool, goal);
        if r.is_some() {
            self.stats.goals_solved += 1;
        } else {
            self.stats.goals_failed += 1;
        }
        r
    }

    /// Replaces the private pool (and everything bound to it).
    fn reset(&mut self) {
        self.pool = fresh_pool();
        self.prover = Prover::new(self.timeout_ms);
        self.composer.clear();
        self.cache.clear();
    }

    /// The cached or computed answer.
    fn answer(&mut self, pool: &ExprPool, goal: &Goal) -> Option<Synthesized> {
        let values: Vec<ExprId> = goal.effects.iter().map(|e| e.1).collect();
        let imported = import::import(pool, &mut self.pool, &values)?;
        let mut effects: Vec<(Loc, ExprId)> = goal
            .effects
            .iter()
            .zip(imported)
            .map(|(&(l, _), e)| (l, e))
            .collect();
        effects.sort();
        let mut statics = goal.static_regs.to_vec();
        statics.sort();
        statics.dedup();
        let key = GoalKey {
            effects: effects.clone(),
            live_regs: goal.live_regs,
            live_flags: goal.live_flags,
            original: goal.original.map(|i| (*i, i.ip32())),
            statics: statics.clone(),
        };
        if let Some(r) = self.cache.get(&key) {
            self.stats.goals_cached += 1;
            return r.clone();
        }
        let original = goal.original.copied();
        let r = Spec::new(
            &mut self.pool,
            &effects,
            goal.live_regs,
            goal.live_flags,
            &statics,
            original,
        )
        .and_then(|spec| self.solve(spec, self.budget, self.max_len, true))
        .map(|(seq, kind, proof)| {
            self.stats.solved_by[kind.index()] += 1;
            Synthesized {
                instructions: asm::place(&seq, original.map_or(0, |i| i.ip32())),
                kind,
                proof,
            }
        });
        self.cache.insert(key, r.clone());
        r
    }

    /// Tries the candidate kinds in order on `spec`; the first accepted
    /// comes with the verdicts that accepted it.
    fn solve(
        &mut self,
        mut spec: Spec,
        budget: usize,
        max_len: usize,
        top: bool,
    ) -> Option<(Vec<Instruction>, CandidateKind, Proof)> {
        if let Some(orig) = spec.original.filter(|_| top) {
            let more = self.original_accesses(&orig);
            spec.accesses.extend(more);
        }
        let vectors = Vectors::new(&self.pool, spec.targets(), SEED);
        let mut ctx = GoalCtx {
            spec,
            vectors,
            tried: 0,
            budget,
            failed_proofs: 0,
            proof: Proof::default(),
        };
        let (seq, kind) = self.first_accepted(&mut ctx, max_len, top)?;
        Some((seq, kind, ctx.proof))
    }

    /// The first candidate, kind by kind, that `check_state` accepts.
    fn first_accepted(
        &mut self,
        ctx: &mut GoalCtx,
        max_len: usize,
        top: bool,
    ) -> Option<(Vec<Instruction>, CandidateKind)> {
        let init = SymState::initial(&mut self.pool, ctx.spec.stale);
        if self.check_state(ctx, &init, false) {
            return Some((Vec::new(), CandidateKind::Empty));
        }
        let mut bases: Vec<Instruction> = Vec::new();
        if top {
            if let Some(orig) = ctx.spec.original {
                bases.push(orig);
                if let Some(st) = self.compose_seq(&ctx.spec, &[orig]) {
                    if self.check_state(ctx, &st, true) {
                        return Some((vec![orig], CandidateKind::Original));
                    }
                }
            }
            for ins in cands::rewritten(&self.pool, &ctx.spec) {
                bases.push(ins);
                if let Some(st) = self.compose_seq(&ctx.spec, &[ins]) {
                    if self.check_state(ctx, &st, false) {
                        return Some((vec![ins], CandidateKind::Rewritten));
                    }
                }
            }
        }
        for ins in cands::direct(&mut self.pool, &ctx.spec) {
            if let Some(st) = self.compose_seq(&ctx.spec, &[ins]) {
                if self.check_state(ctx, &st, false) {
                    return Some((vec![ins], CandidateKind::Direct));
                }
            }
        }
        if let Some(seq) = divide::candidate(&self.pool, &ctx.spec) {
            if let Some(st) = self.compose_seq(&ctx.spec, &seq) {
                if self.check_state(ctx, &st, false) {
                    return Some((seq, CandidateKind::Divide));
                }
            }
        }
        // The static values are hints, not facts: a materialized sequence
        // gets no leniency (its accesses depend on those values).
        for ins in bases {
            let Some(seq) = self.materialized(&ctx.spec, &ins) else {
                continue;
            };
            if let Some(st) = self.compose_seq(&ctx.spec, &seq) {
                if self.check_state(ctx, &st, false) {
                    return Some((seq, CandidateKind::Materialized));
                }
            }
        }
        if top {
            if let Some(seq) = self.split(ctx) {
                return Some((seq, CandidateKind::Split));
            }
        }
        self.search(ctx, max_len)
            .map(|seq| (seq, CandidateKind::Search))
    }

    /// The memory accesses of the original instruction addressed through
    /// `esp` alone or absolute: the goal may have lost them to
    /// simplification (`add [esp],0` stores what it loaded), but the
    /// original makes them, so a candidate may too. Addresses through other
    /// registers are not trusted: a register the caller did not list as
    /// static may still be stale.
    fn original_accesses(&mut self, orig: &Instruction) -> Vec<compose::Access> {
        let Some(info) = self.composer.info(&mut self.pool, orig) else {
            return Vec::new();
        };
        let Some(st) = SymState::initial(&mut self.pool, 0).step(&mut self.pool, &info) else {
            return Vec::new();
        };
        st.accesses
            .into_iter()
            .filter(|a| {
                self.pool
                    .vars(a.addr)
                    .into_iter()
                    .all(|v| Loc::of_var(&self.pool, v) == Some(Loc::Reg(Reg::Esp)))
            })
            .collect()
    }

    /// `ins` preceded by `mov r, value` for every stale register it reads,
    /// if each has a static value and may be written.
    fn materialized(&mut self, spec: &Spec, ins: &Instruction) -> Option<Vec<Instruction>> {
        let info = self.composer.info(&mut self.pool, ins)?;
        let need = info.reads_regs & spec.stale;
        if need == 0 || need & !spec.writable() != 0 {
            return None;
        }
        let mut seq = Vec::new();
        for r in Reg::ALL {
            if need & 1 << r.index() != 0 {
                let v = spec.statics.iter().find(|s| s.0 == r)?.1;
                seq.push(asm::build(
                    "Mov",
                    &[asm::Opnd::R(r.to_iced()), asm::Opnd::I(v)],
                )?);
            }
        }
        seq.push(*ins);
        Some(seq)
    }

    /// Solves a part of a split goal: direct candidates and a short search.
    pub(crate) fn solve_part(
        &mut self,
        spec: &Spec,
        budget: usize,
    ) -> Option<(Vec<Instruction>, CandidateKind)> {
        self.solve(spec.clone(), budget, 2, false)
            .map(|(seq, kind, _)| (seq, kind))
    }

    /// The symbolic state after `seq`.
    pub(crate) fn compose_seq(&mut self, spec: &Spec, seq: &[Instruction]) -> Option<SymState> {
        let mut st = SymState::initial(&mut self.pool, spec.stale);
        for ins in seq {
            let info = self.composer.info(&mut self.pool, ins)?;
            st = st.step(&mut self.pool, &info)?;
        }
        Some(st)
    }

    /// Whether the candidate that led to `st` is proved to meet the goal.
    /// `original` admits the original instruction's own faults (#DE): it
    /// raises them on exactly the inputs the original does.
    pub(crate) fn check_state(&mut self, ctx: &mut GoalCtx, st: &SymState, original: bool) -> bool {
        ctx.tried += 1;
        self.stats.candidates += 1;
        let spec = &ctx.spec;
        if (st.faults && !original)
            || st
                .accesses
                .iter()
                .any(|a| !covered(&self.pool, a, &spec.accesses))
        {
            return false;
        }
        let targets = ctx.vectors.targets.clone();
        let values: Vec<ExprId> = targets.iter().map(|&(l, _)| value_of(st, l)).collect();
        if !ctx.vectors.agree(&self.pool, &values) {
            self.stats.refuted_by_evaluation += 1;
            return false;
        }
        for (&(loc, g), &c) in targets.iter().zip(&values) {
            if c != g && !undefined_within(&self.pool, c, &spec.undefined[slot(loc)]) {
                return false;
            }
        }
        let mut proof = Proof::default();
        // Each proved equality is a lemma for the later targets: a remainder
        // computed from the candidate's quotient is proved from the goal's.
        let mut lemmas = self.quotient_lemmas(ctx, st, &targets, &mut proof);
        for (&(_, g), &c) in targets.iter().zip(&values) {
            if c == g {
                continue;
            }
            // Returns below unless this target is proved too.
            lemmas.push((c, g));
            let c = lemmas[..lemmas.len() - 1]
                .iter()
                .fold(c, |c, &(proved, goal)| {
                    self.pool.replace(c, proved, goal).unwrap_or(c)
                });
            if c == g {
                proof.verdicts.push(Verdict::Proved);
                continue;
            }
            self.stats.proofs += 1;
            let hits = self.prover.stats().cache_hits;
            let r = self.prover.prove_equal(&self.pool, g, c);
            if self.prover.stats().cache_hits > hits {
                self.stats.proofs_cached += 1;
            }
            let verdict = Verdict::of(&r);
            proof.verdicts.push(verdict);
            match verdict {
                Verdict::Refuted => self.stats.proofs_refuted += 1,
                Verdict::Unknown => self.stats.proofs_unknown += 1,
                Verdict::Proved => {}
            }
            match r {
                ProofResult::Proved => {}
                ProofResult::Refuted(cex) => {
                    ctx.failed_proofs += 1;
                    ctx.vectors.add_counterexample(&self.pool, cex.assignment);
                    return false;
                }
                ProofResult::Unknown => {
                    ctx.failed_proofs += 1;
                    return false;
                }
            }
        }
        ctx.proof = proof;
        true
    }
}

impl Synthesizer {
    /// For every remainder the goal asks for without its quotient: a
    /// register of the candidate that holds the quotient (on every test
    /// state), proved equal to it, as a lemma `(register's value,
    /// quotient)`. Proving the quotient first and the remainder from it is
    /// how a magic-number remainder is proved within the time the whole
    /// would not be (its verdict joins `proof`).
    fn quotient_lemmas(
        &mut self,
        ctx: &GoalCtx,
        st: &SymState,
        targets: &[(Loc, ExprId)],
        proof: &mut Proof,
    ) -> Vec<(ExprId, ExprId)> {
        let mut lemmas = Vec::new();
        for &(_, g) in targets {
            let Some(q) = quotient_of_remainder(&mut self.pool, g) else {
                continue;
            };
            if targets.iter().any(|&(_, t)| t == q) {
                continue; // the quotient is a target: proved in turn
            }
            let envs = &ctx.vectors.envs;
            let holder = st.regs.iter().copied().find(|&r| {
                self.pool.sort(r) == self.pool.sort(q)
                    && envs.iter().all(|env| {
                        matches!((self.pool.eval(r, env), self.pool.eval(q, env)),
                            (Ok(a), Ok(b)) if check::same(env, &a, &b))
                    })
            });
            let Some(c) = holder else { continue };
            self.stats.proofs += 1;
            if self.prover.prove_equal(&self.pool, q, c) == ProofResult::Proved {
                proof.verdicts.push(Verdict::Proved);
                lemmas.push((c, q));
            }
        }
        lemmas
    }
}

/// The quotient of the division whose remainder `e` is (`urem`/`srem`,
/// possibly truncated to 32 bits, as `div` and `idiv` leave it).
fn quotient_of_remainder(pool: &mut ExprPool, e: ExprId) -> Option<ExprId> {
    let (rem, truncated) = match pool.op(e) {
        Op::Extract { hi: 31, lo: 0 } => (pool.args(e)[0], true),
        _ => (e, false),
    };
    let op = match pool.op(rem) {
        Op::Urem => Op::Udiv,
        Op::Srem => Op::Sdiv,
        _ => return None,
    };
    let args = pool.args(rem).to_vec();
    let q = pool.mk(op, &args).ok()?;
    Some(if truncated { pool.extract(q, 31, 0) } else { q })
}

/// A private pool with every location variable (and undefined-value
/// variable) declared at its sort, so that an imported goal whose pool
/// uses one of these names at another sort is refused instead of breaking
/// the lifter later.
fn fresh_pool() -> ExprPool {
    let mut pool = ExprPool::new();
    for r in Reg::ALL {
        loc_var(&mut pool, Loc::Reg(r));
    }
    for f in Flag::ALL {
        loc_var(&mut pool, Loc::Flag(f));
        wiper_sem::undefined_var(&mut pool, f);
    }
    for t in 0..16 {
        loc_var(&mut pool, Loc::Temp(wiper_sem::Temp(t)));
    }
    loc_var(&mut pool, Loc::Mem);
    loc_var(&mut pool, Loc::Eip);
    pool
}

/// The value of `loc` in `st`.
fn value_of(st: &SymState, loc: Loc) -> ExprId {
    match loc {
        Loc::Reg(r) => st.regs[r.index()],
        Loc::Flag(f) => st.flags[f.index()],
        _ => st.mem,
    }
}

/// The effect of instruction `ins` on every location it changes, as
/// formulas over the state before it (its decoupled parts composed), with
/// the registers of `substitute` replaced by the given formulas (e.g. static
/// values, or `esp + 4` for a frame pointer known relative to `esp`): the
/// form a [`Goal`]'s effects take. Flags the instruction leaves undefined
/// get their undefined-value variable ([`wiper_sem::undefined_var`]).
/// Registers in `substitute` that the instruction does not write are not
/// listed. `None` for instructions `wiper_sem` cannot lift, control
/// transfers, barriers and `rep` loops, or a replacement that is not 32 bits
/// wide.
pub fn instruction_effects(
    pool: &mut ExprPool,
    ins: &Instruction,
    substitute: &[(Reg, ExprId)],
) -> Option<Vec<(Loc, ExprId)>> {
    let mut composer = Composer::default();
    let info = composer.info(pool, ins)?;
    let st = SymState::initial(pool, 0).step(pool, &info)?;
    let mut map: HashMap<VarId, ExprId> = HashMap::new();
    for &(r, e) in substitute {
        let v = loc_var(pool, Loc::Reg(r));
        map.insert(pool.as_var(v)?, e);
    }
    let mut out = Vec::new();
    let mut locs: Vec<(Loc, ExprId)> = Reg::ALL
        .iter()
        .map(|&r| (Loc::Reg(r), st.regs[r.index()]))
        .collect();
    locs.push((Loc::Mem, st.mem));
    locs.extend(
        Flag::ALL
            .iter()
            .map(|&f| (Loc::Flag(f), st.flags[f.index()])),
    );
    for (loc, e) in locs {
        if e == loc_var(pool, loc) {
            continue;
        }
        let e = if map.is_empty() {
            e
        } else {
            pool.subst(e, &map).ok()?
        };
        out.push((loc, e));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `eax := ebx + ecx`, `ecx := edx ^ ebx`, `eax := ecx * edx + ebx`
    /// (every register live, flags dead): a direct candidate, a search of
    /// length 2 and one of length 3, which lift many instructions.
    fn goals(pool: &mut ExprPool) -> Vec<(Loc, ExprId)> {
        let [ebx, ecx, edx] = [Reg::Ebx, Reg::Ecx, Reg::Edx].map(|r| loc_var(pool, Loc::Reg(r)));
        let sum = pool.add(ebx, ecx);
        let x = pool.xor(edx, ebx);
        let prod = pool.mul(ecx, edx);
        let madd = pool.add(prod, ebx);
        vec![
            (Loc::Reg(Reg::Eax), sum),
            (Loc::Reg(Reg::Ecx), x),
            (Loc::Reg(Reg::Eax), madd),
        ]
    }

    fn ask(synth: &mut Synthesizer, pool: &ExprPool, fx: (Loc, ExprId)) -> Option<Synthesized> {
        let goal = Goal {
            effects: vec![fx],
            live_regs: 0xff,
            live_flags: 0,
            original: None,
            static_regs: &[],
        };
        synth.synthesize_detailed(pool, &goal)
    }

    /// Rebuilding the private pool (when it grows past [`POOL_LIMIT`])
    /// must forget everything bound to the old one: a prepared lift kept
    /// across it would compose candidates from another pool's formulas.
    /// After `reset` the answers are a fresh synthesizer's, in any order.
    #[test]
    fn answers_after_the_pool_is_rebuilt_are_a_fresh_synthesizer_s() {
        let mut pool = ExprPool::new();
        let goals = goals(&mut pool);
        let fresh: Vec<Option<Synthesized>> = goals
            .iter()
            .map(|&g| ask(&mut Synthesizer::new(2_000), &pool, g))
            .collect();
        assert!(fresh
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s.proof.holds())));
        let mut synth = Synthesizer::new(2_000);
        for (&g, want) in goals.iter().zip(&fresh) {
            assert_eq!(&ask(&mut synth, &pool, g), want);
        }
        synth.reset();
        for (&g, want) in goals.iter().zip(&fresh).rev() {
            assert_eq!(&ask(&mut synth, &pool, g), want, "after reset");
        }
    }
}
