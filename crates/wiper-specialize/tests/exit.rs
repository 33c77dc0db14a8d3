//! What the residual function puts into the machine at its `ret`: `edx`
//! only when some caller of the original function may read it (the caller
//! analysis of `wiper-x86`).

use iced_x86::{OpKind, Register};
use wiper_residual::{Item, Origin, Terminator};
use wiper_specialize::{specialize, Specialization};
use wiper_testkit::testdata_bin;

fn specialized(binary: &str, function: &str, spec: &str) -> Specialization {
    let b = wiper_elf::Binary::open(&testdata_bin(binary)).expect("binary");
    let entry = wiper_x86::resolve_function(&b, function).expect("function");
    let spec: wiper_bta::StaticSpec = spec.parse().expect("spec");
    specialize(&b, entry, &spec, &Default::default()).expect("specialized")
}

/// The immediates materialized into `edx` in blocks that leave the
/// residual function.
fn edx_at_exit(s: &Specialization) -> Vec<u64> {
    s.residual
        .blocks
        .iter()
        .filter(|b| b.terminator == Terminator::Exit)
        .flat_map(|b| &b.items)
        .filter_map(|item| match item {
            Item::Instr(ins, Origin::Materialized(_))
                if ins.op_count() == 2
                    && ins.op0_kind() == OpKind::Register
                    && ins.op0_register() == Register::EDX =>
            {
                Some(ins.immediate(1))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_known_edx_no_caller_reads_is_not_materialized() {
    // Each of these knew edx at its exit (a loop counter left at -1 or 0,
    // a multiplier) and set it before `ret`.
    for (binary, function, spec) in [
        ("power-O0", "power", "arg1=1 arg2=2"),
        ("power-O2", "power", "arg1=3"),
        ("prod-O0", "prod", "arg1=1 arg2=3"),
        ("prod-O2", "prod", "arg1=1 arg2=3"),
        ("recursion-O2", "fact", "arg0=5"),
        ("bench/power-O0", "power", "arg1=3 arg2=5"),
        ("bench/prod-O0", "prod", "arg1=2 arg2=8"),
        ("bench/bf_nested-O2", "bf", "arg0=@str:,[>-[>+<-]<-]>>."),
    ] {
        let s = specialized(binary, function, spec);
        assert_eq!(
            edx_at_exit(&s),
            Vec::<u64>::new(),
            "{binary} {function} {spec}"
        );
    }
}

#[test]
fn a_known_edx_a_caller_reads_is_materialized() {
    // widen returns `(long long)k << 32 | (x + k)`: with k static, edx is
    // known at the exit, and main prints it.
    for o in ["O0", "O1", "O2"] {
        let s = specialized(&format!("wide-{o}"), "widen", "arg1=7");
        assert_eq!(edx_at_exit(&s), vec![7], "wide-{o}");
    }
}
