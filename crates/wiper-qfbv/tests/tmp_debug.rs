//! tmp
mod common;
use common::Gen;
use wiper_qfbv::{ExprPool, Prover, ProofResult};
#[test]
fn show() {
    let (mut pr, mut un, mut re, mut same) = (0, 0, 0, 0);
    let mut prover_stats = (0,0);
    for seed in 0..200u64 {
        let mut p = ExprPool::new();
        let mut g = Gen::new(seed, &[1, 4, 8, 16]);
        g.max_bytes = 2;
        let w = g.width();
        let raw = g.bv(&mut p, w, 4);
        let s = p.simplify(raw);
        let mut prover = Prover::new(5000);
        if raw == s { same += 1; }
        match prover.prove_equal(&p, raw, s) { ProofResult::Proved => pr += 1, ProofResult::Unknown => un += 1, _ => re += 1 }
        let st = prover.stats(); prover_stats.0 += st.by_simplify; prover_stats.1 += st.solver_calls;
        let a = g.bv(&mut p, w, 3);
        let b = g.bv(&mut p, w, 3);
        if let ProofResult::Refuted(c) = prover.prove_equal(&p, a, b) { if seed < 20 { println!("{} vs {}: {}", p.display(a), p.display(b), c.assignment.display(&p)); } }
    }
    println!("proved {pr} unknown {un} refuted {re} same {same} stats {prover_stats:?}");
}
