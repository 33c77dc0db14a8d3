//! The caller analysis on the testdata binaries: which functions' callers
//! ignore `edx` after the call, and the evidence that keeps it live.

use wiper_elf::Binary;
use wiper_testkit::{opt_levels, testdata_bin};
use wiper_x86::{resolve_function, CallerAnalysis, EdxAtReturn, EdxLive};

fn edx_at_return(binary: &str, function: &str) -> EdxAtReturn {
    let b = Binary::open(&testdata_bin(binary)).unwrap();
    let entry = resolve_function(&b, function).unwrap();
    CallerAnalysis::new(&b).edx_at_return(entry)
}

#[test]
fn bench_drivers_ignore_edx() {
    // The bench drivers fold the 32-bit result into an accumulator; the
    // original program's main prints it. Both write edx (or call functions
    // that do, or exit) before reading it.
    for (family, function) in [
        ("power", "power"),
        ("prod", "prod"),
        ("pow_rec", "pow_rec"),
        ("bf_nested", "bf"),
        ("vm_fact", "run_vm"),
    ] {
        for o in opt_levels() {
            let name = format!("bench/{family}-{o}");
            let at = edx_at_return(&name, function);
            assert!(
                matches!(at, EdxAtReturn::Dead { calls, .. } if calls >= 1),
                "{name} {function}: {at}"
            );
        }
    }
}

#[test]
fn a_caller_reading_the_high_half_keeps_edx_live() {
    // main prints the high half of widen's `long long`.
    for o in opt_levels() {
        let at = edx_at_return(&format!("wide-{o}"), "widen");
        assert!(
            matches!(at, EdxAtReturn::Live(EdxLive::ReadAfterCall(_))),
            "wide-{o}: {at}"
        );
    }
    // libgcc's 64-bit division returns its quotient in edx:eax.
    let at = edx_at_return("libc_demo-O2", "__udivdi3");
    assert!(
        matches!(at, EdxAtReturn::Live(EdxLive::ReadAfterCall(_))),
        "{at}"
    );
}

#[test]
fn an_escaping_address_keeps_edx_live() {
    // `apply(square, a)` passes square's address: a call through a pointer
    // may come from anywhere.
    for o in opt_levels() {
        let at = edx_at_return(&format!("calls-{o}"), "square");
        assert!(
            matches!(at, EdxAtReturn::Live(EdxLive::AddressTaken(_))),
            "calls-{o}: {at}"
        );
    }
}

#[test]
fn an_indirect_call_after_the_return_counts_as_a_read() {
    // calls-O0's main calls apply (which calls through a pointer) after
    // sum_array returns, before writing edx.
    let at = edx_at_return("calls-O0", "sum_array");
    assert!(
        matches!(at, EdxAtReturn::Live(EdxLive::ReadAfterCall(_))),
        "{at}"
    );
}

#[test]
fn recursion_is_a_least_fixpoint() {
    // fib calls itself and adds the results: its own calls read eax, not
    // edx, and main ignores edx.
    for o in opt_levels() {
        let at = edx_at_return(&format!("recursion-{o}"), "fib");
        assert!(at.is_dead(), "recursion-{o}: {at}");
    }
}

#[test]
fn branch_encodings_in_alignment_padding_are_no_references() {
    // calls-O2 pads rt_write with `lea esi,[esi+0x0]` (8d 76 00), whose
    // `76 00` reads as `jbe` to rt_read's entry.
    let at = edx_at_return("calls-O2", "rt_read");
    assert!(at.is_dead(), "{at}");
}

#[test]
fn position_independent_code_and_the_entry_point_stay_live() {
    assert_eq!(
        edx_at_return("libc_demo-pie", "main"),
        EdxAtReturn::Live(EdxLive::PositionIndependent)
    );
    assert_eq!(
        edx_at_return("power-O2", "_start"),
        EdxAtReturn::Live(EdxLive::EntryPoint)
    );
}
