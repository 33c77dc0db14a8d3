//! The proofs are real: every sequence the synthesizer returns is run on the
//! processor (through `wiper-oracle`) from random machine states, and the
//! live registers, live flags and the memory window it leaves are compared
//! with the goal's formulas evaluated on the same states.
//!
//! Goals come from `common::goals`: random instances of the supported
//! data-processing forms, with memory operands in the oracle's window and a
//! random half of the registers read static (their value substituted into
//! the formulas; on the CPU they hold garbage, so a sequence that reads one
//! is caught).
//!
//! `cpu_random_goals` runs [`GOALS`] goals (seconds in a debug build);
//! `cpu_random_goals_long` (ignored) runs 3000 with the default budget
//! (`WIPER_SYNTH_SEED=N` picks another seed). `WIPER_SYNTH_SHOW_FAILED=1`
//! lists the goals left unsolved.

mod common;

use std::sync::Mutex;

use iced_x86::Instruction;
use wiper_oracle::{CpuState, Outcome, Rng, SCRATCH_BASE};
use wiper_qfbv::{Env, ExprId, ExprPool, Value, VarId};
use wiper_sem::{loc_var, Flag, Loc, Reg};
use wiper_synth::{CandidateKind, Goal, Synthesizer};

use common::goals::{case, codes, GoalParts};
use common::text;

/// Goals in the default run.
const GOALS: usize = 300;
/// States each solved goal is run from.
const STATES: usize = 24;
/// Bytes in the oracle's window (`esp` lands in its middle half).
const WINDOW: usize = 512;

/// One harness at a time (parallel harness processes slow each other down).
static ORACLE: Mutex<()> = Mutex::new(());

fn run(seq: &[Instruction], states: &[CpuState]) -> Vec<Outcome> {
    let _one = ORACLE.lock().unwrap_or_else(|e| e.into_inner());
    wiper_oracle::run_instructions(seq, states).expect("harness runs")
}

/// The machine state of an oracle state, as formula variables.
struct CpuEnv<'a> {
    pool: &'a ExprPool,
    s: &'a CpuState,
}

impl Env for CpuEnv<'_> {
    fn bv(&self, var: VarId) -> Option<u64> {
        match Loc::from_var_name(self.pool.var_name(var))? {
            Loc::Reg(r) => Some(u64::from(self.s.regs[r.index()])),
            Loc::Flag(f) => Some(u64::from(self.s.eflags & f.eflags_bit() != 0)),
            _ => None,
        }
    }

    fn mem_byte(&self, _var: VarId, addr: u32) -> Option<u8> {
        self.s.read_u8(addr)
    }
}

/// Differences between the processor's result and the goal on one state.
fn compare(pool: &mut ExprPool, goal: &Goal, input: &CpuState, out: &Outcome) -> Vec<String> {
    let reg_vars = Reg::ALL.map(|r| loc_var(pool, Loc::Reg(r)));
    let flag_vars = Flag::ALL.map(|f| loc_var(pool, Loc::Flag(f)));
    let mem_var = loc_var(pool, Loc::Mem);
    let pool = &*pool;
    let env = CpuEnv { pool, s: input };
    let mut diffs = Vec::new();
    if let Some(f) = &out.fault {
        return vec![format!("fault {f:?}")];
    }
    let value = |l: Loc, var: ExprId| goal.effects.iter().find(|e| e.0 == l).map_or(var, |e| e.1);
    for r in Reg::ALL {
        let l = Loc::Reg(r);
        let listed = goal.effects.iter().any(|e| e.0 == l);
        if goal.live_regs & 1 << r.index() == 0 && r != Reg::Esp && !listed {
            continue;
        }
        let var = reg_vars[r.index()];
        let want = pool.eval(value(l, var), &env).expect("registers evaluate");
        let got = out.state.regs[r.index()];
        if want.as_u64() != Some(u64::from(got)) {
            diffs.push(format!(
                "{}: cpu {got:#x}, goal {:#x}",
                r.name(),
                want.as_u64().unwrap_or(0)
            ));
        }
    }
    for f in Flag::ALL {
        if goal.live_flags & 1 << f.index() == 0 {
            continue;
        }
        let var = flag_vars[f.index()];
        // A flag the goal leaves undefined on this state evaluates to an
        // error: any value is right.
        let Ok(want) = pool.eval(value(Loc::Flag(f), var), &env) else {
            continue;
        };
        let got = out.state.eflags & f.eflags_bit() != 0;
        if want.as_u64() != Some(u64::from(got)) {
            diffs.push(format!(
                "{}: cpu {}, goal {:?}",
                f.name(),
                u8::from(got),
                want.as_u64()
            ));
        }
    }
    match pool.eval(value(Loc::Mem, mem_var), &env) {
        Ok(Value::Mem(m)) => {
            for (i, &got) in out.state.mem.iter().enumerate() {
                let addr = SCRATCH_BASE + i as u32;
                let want = m.read(&env, addr);
                if want != Some(got) {
                    diffs.push(format!("mem[{addr:#x}]: cpu {got:#04x}, goal {want:?}"));
                }
            }
            let end = SCRATCH_BASE + out.state.mem.len() as u32;
            if m.writes()
                .keys()
                .any(|&a| !(SCRATCH_BASE..end).contains(&a))
            {
                diffs.push("goal writes outside the window".to_owned());
            }
        }
        other => diffs.push(format!("memory does not evaluate: {other:?}")),
    }
    diffs
}

fn random_goals(goals: usize, budget: Option<usize>, seed: u64) {
    let codes = codes();
    let mut rng = Rng::new(seed);
    let mut sampler = Rng::new(seed ^ 0x5eed);
    let mut synth = Synthesizer::new(2000);
    if let Some(b) = budget {
        synth.set_budget(b);
    }
    let mut solved = 0usize;
    let mut tried = 0usize;
    let mut failures: Vec<String> = Vec::new();
    let mut by_kind = [0usize; CandidateKind::ALL.len()];
    while tried < goals {
        let Some(c) = case(&mut rng, &mut sampler, &codes) else {
            continue;
        };
        let mut pool = ExprPool::new();
        let Some(parts) = GoalParts::of(&mut pool, &c) else {
            continue;
        };
        tried += 1;
        let (effects, live_regs, hints) = (parts.effects, parts.live_regs, parts.hints);
        let goal = Goal {
            effects,
            live_regs,
            live_flags: c.live_flags,
            original: c.hint.then_some(&c.ins),
            static_regs: &hints,
        };
        let Some(s) = synth.synthesize_detailed(&pool, &goal) else {
            if std::env::var_os("WIPER_SYNTH_SHOW_FAILED").is_some() {
                eprintln!(
                    "unsolved: {}{} with {:?} (live regs {live_regs:#x}, flags {:#x})",
                    text(&[c.ins]),
                    if c.hint { "" } else { " (no hint)" },
                    c.statics,
                    c.live_flags
                );
            }
            continue;
        };
        solved += 1;
        by_kind[s.kind.index()] += 1;
        let states: Vec<CpuState> = (0..STATES)
            .map(|_| CpuState::random(&mut rng, WINDOW))
            .collect();
        let outs = if s.instructions.is_empty() {
            states
                .iter()
                .map(|st| Outcome {
                    state: st.clone(),
                    next_eip: 0,
                    fault: None,
                })
                .collect()
        } else {
            run(&s.instructions, &states)
        };
        for (st, out) in states.iter().zip(&outs) {
            let d = compare(&mut pool, &goal, st, out);
            if !d.is_empty() {
                failures.push(format!(
                    "{}{} with {:?} (live regs {:#x}, flags {:#x}) -> {} [{}]:\n    {}",
                    text(&[c.ins]),
                    if c.hint { "" } else { " (no hint)" },
                    c.statics,
                    live_regs,
                    c.live_flags,
                    text(&s.instructions),
                    s.kind.name(),
                    d.join("\n    ")
                ));
                break;
            }
        }
    }
    let st = synth.stats();
    eprintln!(
        "{tried} goals, {solved} solved; by kind: {}; {st:?}",
        CandidateKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), by_kind[k.index()]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} wrong sequences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Observed 266 of 300 goals solved (89%) on 2026-12-03; the floor, 75%
    // of the goals, is 85% of that.
    assert!(
        solved * 4 >= tried * 3,
        "only {solved} of {tried} goals solved"
    );
}

#[test]
fn cpu_random_goals() {
    random_goals(GOALS, Some(300), 0x0cc5_2015);
}

#[test]
#[ignore = "long: 3000 goals with the default budget"]
fn cpu_random_goals_long() {
    let seed = std::env::var("WIPER_SYNTH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0b5e_55ed);
    random_goals(3000, None, seed);
}
