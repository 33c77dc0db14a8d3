//! Leaving for the original code where the specializer cannot follow it
//! (docs/specialization.md, "Leaving for the original code"): the residual
//! writes everything known into the machine and jumps to the original
//! instruction. The differential cases of tests/specialize_diff.rs
//! (`loststack`, `codelen`, `scatter`) run the residuals.

use wiper_specialize::{specialize, Specialization, SpecializeError};

fn specialize_in(
    binary: &str,
    function: &str,
    statics: &[&str],
) -> Result<Specialization, SpecializeError> {
    let path = wiper_testkit::testdata_bin(binary);
    let binary = wiper_elf::Binary::open(&path).expect(binary);
    let entry = wiper_x86::resolve_function(&binary, function).expect(function);
    let statics: Vec<String> = statics.iter().map(|s| s.to_string()).collect();
    let spec = wiper_bta::StaticSpec::parse_all(&statics).expect("spec");
    specialize(&binary, entry, &spec, &Default::default())
}

#[test]
fn a_stack_pointer_loaded_from_unknown_memory_leaves_for_the_original_code() {
    // `mov esp, [edx]` with `edx` a dynamic pointer: an error before.
    for o in wiper_testkit::opt_levels() {
        for statics in [&[][..], &["arg2=4"][..]] {
            let s = specialize_in(&format!("loststack-{o}"), "through_slot", statics)
                .unwrap_or_else(|e| panic!("{o} {statics:?}: {e}"));
            assert_eq!(s.stats.left, 1, "{o} {statics:?}: {:?}", s.stats);
        }
    }
}

#[test]
fn a_stack_pointer_lost_inside_the_overwritten_entry_stays_an_error() {
    // lose_at_entry's `mov esp, [eax]` starts at byte 4, inside the 5
    // bytes the residual binary overwrites with its `jmp`: no jump can
    // reach it there.
    for o in wiper_testkit::opt_levels() {
        let bin = format!("loststack-{o}");
        let binary = wiper_elf::Binary::open(&wiper_testkit::testdata_bin(&bin)).expect("binary");
        let entry = wiper_x86::resolve_function(&binary, "lose_at_entry").expect("function");
        let e = specialize_in(&bin, "lose_at_entry", &[])
            .err()
            .unwrap_or_else(|| panic!("{o}: specialized"));
        assert_eq!(
            e.to_string(),
            format!(
                "unsupported at {:#x}: `mov` makes the stack pointer unknown (stack realignment)",
                entry + 4
            ),
            "{o}"
        );
    }
}
