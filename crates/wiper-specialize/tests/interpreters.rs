//! Specializing the testdata Brainfuck interpreter: the slow cases of the
//! differential tests (the whistle generalizes, specialization restarts).

use wiper_specialize::{specialize, Specialization};
use wiper_testkit::testdata_bin;

/// `bf` in `interp-O0` specialized to the Brainfuck program `program`.
fn specialize_bf(program: &str) -> Specialization {
    let binary = wiper_elf::Binary::open(&testdata_bin("interp-O0")).expect("interp-O0");
    let entry = wiper_x86::resolve_function(&binary, "bf").expect("bf");
    let spec: wiper_bta::StaticSpec = format!("arg0=@str:{program}").parse().expect("spec");
    specialize(&binary, entry, &spec, &Default::default()).expect("specialized")
}

#[test]
fn generalization_glue_is_deterministic() {
    // Several restarts generalize locations at the same points: the glue
    // that materializes them comes out in the same order every time.
    let first = specialize_bf(",[.,]");
    assert!(first.stats.restarts > 1, "{:?}", first.stats);
    for _ in 0..3 {
        assert_eq!(specialize_bf(",[.,]").residual, first.residual);
    }
}

#[test]
fn nested_loops_stay_loops_under_a_generalized_tape() {
    // At specialization time the inner loop runs 255 times per outer turn
    // until the whistle generalizes the tape: tens of thousands of
    // specialization points, each with the whole tape in its store. The
    // residual keeps the loops.
    let s = specialize_bf(",[>-[>+<-]<-]>>.");
    assert_eq!(s.stats.restarts, 1, "{:?}", s.stats);
    let items: usize = s.residual.blocks.iter().map(|b| b.items.len()).sum();
    assert!(items < 1_000, "{items} residual items");
}
