//! What the synthesizer answers, goal by goal: a reviewed snapshot of the
//! sequence and candidate kind chosen for 400 random goals (from
//! `common::goals`, the generator of the CPU test), each asked twice, once
//! naming its original instruction and once without it (where only direct
//! candidates, splitting and search can answer).
//!
//! Every answer is proved, and the CPU test runs such answers on the
//! processor; this test judges their *quality*. A lost candidate family, a
//! wrong operand rewrite or a weaker search changes an answer (to a longer
//! sequence, another kind, or none) and fails here, where the CPU test's
//! solve rate would not notice. Z3 settles almost none of these goals (the
//! candidates are refuted on test states or equal to the goal by
//! hash-consing) and those few get a generous timeout, so the answers do
//! not depend on the machine's load.
//! After a deliberate change, review the new answers and accept them with
//! `cargo insta review`.

mod common;

use std::fmt::Write as _;

use wiper_qfbv::ExprPool;
use wiper_synth::{CandidateKind, Goal, Synthesizer};
use wiper_x86::Rng;

use common::goals::{case, codes, GoalParts};
use common::{text, Static};

/// Goals in the snapshot.
const GOALS: usize = 400;

/// The answer to `goal`, as `sequence [kind]` or `none`.
fn answer(synth: &mut Synthesizer, pool: &ExprPool, goal: &Goal) -> String {
    match synth.synthesize_detailed(pool, goal) {
        Some(s) => format!("{} [{}]", text(&s.instructions), s.kind.name()),
        None => "none".to_owned(),
    }
}

/// `reg=value` for each static register of a case.
fn statics_text(statics: &[(wiper_sem::Reg, Static)]) -> String {
    let parts: Vec<String> = statics
        .iter()
        .map(|&(r, s)| match s {
            Static::Const(c) => format!("{r:?}={c:#x}"),
            Static::EspPlus(k) => format!("{r:?}=esp+{k:#x}"),
        })
        .collect();
    parts.join(",").to_lowercase()
}

#[test]
fn answers_to_random_goals() {
    let codes = codes();
    let mut rng = Rng::new(0x0a45_2015);
    let mut sampler = Rng::new(0x0a45_2015 ^ 0x5eed);
    // A generous Z3 timeout: the few proofs must not give up on a loaded
    // machine (each takes milliseconds).
    let mut synth = Synthesizer::new(60_000);
    synth.set_budget(300);
    let mut out = String::new();
    let mut tried = 0;
    while tried < GOALS {
        let Some(c) = case(&mut rng, &mut sampler, &codes) else {
            continue;
        };
        let mut pool = ExprPool::new();
        let Some(parts) = GoalParts::of(&mut pool, &c) else {
            continue;
        };
        tried += 1;
        let mut goal = Goal {
            effects: parts.effects,
            live_regs: parts.live_regs,
            live_flags: c.live_flags,
            original: Some(&c.ins),
            static_regs: &parts.hints,
        };
        let with_original = answer(&mut synth, &pool, &goal);
        goal.original = None;
        let alone = answer(&mut synth, &pool, &goal);
        writeln!(
            out,
            "{} {{{}}} regs {:02x} flags {:02x}{}\n  original: {with_original}\n  alone:    {alone}",
            text(&[c.ins]),
            statics_text(&c.statics),
            goal.live_regs,
            c.live_flags,
            if c.keep_dead_flag_effects { " +dead flags" } else { "" },
        )
        .unwrap();
    }
    let st = synth.stats();
    let kinds: Vec<String> = CandidateKind::ALL
        .iter()
        .map(|&k| format!("{} {}", k.name(), st.solved(k)))
        .collect();
    let summary = format!(
        "{} goals asked, {} solved, {} proofs reached Z3; by kind: {}\n",
        st.goals,
        st.goals_solved,
        st.solver_calls,
        kinds.join(", ")
    );
    insta::assert_snapshot!("answers", summary + &out);
}
