//! Guarded stores: a store into the frame at an index the specializer does
//! not know keeps the frame's known bytes behind a run-time check of the
//! address (docs/specialization.md, "Guarded stores"); the differential
//! cases of tests/specialize_diff.rs (`scatter`, `fmt`) run the residuals,
//! with indexes outside the window too.

use wiper_specialize::{specialize, Specialization};

fn specialize_in(binary: &str, function: &str, statics: &[&str]) -> Specialization {
    let path = wiper_testkit::testdata_bin(binary);
    let binary = wiper_elf::Binary::open(&path).expect(binary);
    let entry = wiper_x86::resolve_function(&binary, function).expect(function);
    let statics: Vec<String> = statics.iter().map(|s| s.to_string()).collect();
    let spec = wiper_bta::StaticSpec::parse_all(&statics).expect("spec");
    specialize(&binary, entry, &spec, &Default::default()).expect("specialized")
}

/// The residual's jumps into the original code: here, one per guard (no
/// point of these functions spends its budget of variants).
fn guard_exits(s: &Specialization) -> usize {
    s.stats.left
}

#[test]
fn a_store_at_an_unknown_index_beside_static_arguments_is_guarded() {
    // scatter keeps its static N and SCALE arguments in the frame; the
    // store `cells[at] = 7` could reach them.
    let s = specialize_in("scatter-O2", "scatter", &["arg2=5", "arg3=3"]);
    assert!(guard_exits(&s) >= 1, "{:?}", s.stats);
}

#[test]
fn a_digit_buffer_beside_a_static_format_is_guarded() {
    // fmt-O2's inlined digit writer stores `buf[--i]` with `i` generalized;
    // guarded, the stores leave the format string known (fmt-O2: 306
    // instructions per call on 2026-12-05, 452 without the guard;
    // docs/benchmarks.md).
    let s = specialize_in("fmt-O2", "fmt", &["arg1=@str:x: %d, y: %x, s: %s, %d%%"]);
    assert!(guard_exits(&s) >= 1, "{:?}", s.stats);
}

#[test]
fn with_nothing_known_in_the_frame_no_guard_is_placed() {
    // The near miss: with N and SCALE dynamic the frame holds nothing the store
    // could destroy, so the guard would cost code for nothing.
    let s = specialize_in("scatter-O2", "scatter", &[]);
    assert_eq!(guard_exits(&s), 0, "{:?}", s.stats);
}
