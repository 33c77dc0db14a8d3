//! The static-data rule (docs/specialization.md): a writable global that
//! no code writes and whose address does not escape is as static as
//! read-only data. globals.c's `sum_primes` over such a table specializes
//! to its sum; `weighted` and `scratch_sum`, over tables that code writes
//! (directly, or through an escaped address), keep their loads. That the
//! residuals compute what the originals do is the differential test's job
//! (the "writable globals" cases of tests/specialize_diff.rs).
//!
//! Also here: `run_ops`, a computed-goto interpreter whose dispatch table
//! is in writable `.data` at -O0 (`.rodata` at -O1), specialized to a
//! static program: no indirect jump is left.

use wiper_testkit::testdata_bin;

/// The residual listing of `function` of `binary` for `statics`.
fn listing(binary: &str, function: &str, statics: &[&str]) -> String {
    let bin = wiper::Binary::open(testdata_bin(binary)).unwrap();
    let function = bin.function(function).unwrap();
    let statics: Vec<String> = statics.iter().map(|s| s.to_string()).collect();
    let spec = wiper::Spec::parse(&statics).unwrap();
    wiper::specialize(&bin, &function, &spec).unwrap().listing()
}

/// The address of the object `name` in `binary`, as the listing prints it.
fn address_of(binary: &str, name: &str) -> String {
    let elf = wiper_elf::Binary::open(&testdata_bin(binary)).unwrap();
    let sym = elf.symbols.iter().find(|s| s.name == name).unwrap();
    format!("{:#x}", sym.addr)
}

#[test]
fn an_unwritten_table_folds_and_written_ones_stay() {
    for level in ["O0", "O1", "O2"] {
        let binary = format!("globals-{level}");
        let sum = listing(&binary, "sum_primes", &["arg0=5"]);
        assert!(sum.contains("mov    eax,0x1c"), "{binary}:\n{sum}");
        assert!(!sum.contains("PTR ["), "{binary}:\n{sum}");
        for (function, table) in [("weighted", "weights"), ("scratch_sum", "scratch")] {
            let text = listing(&binary, function, &["arg0=5"]);
            let table = address_of(&binary, table);
            assert!(text.contains(&table), "{binary} {function}:\n{text}");
        }
    }
}

#[test]
fn a_computed_goto_interpreter_over_a_static_program_leaves_no_jump() {
    for level in ["O0", "O1", "O2"] {
        let binary = format!("globals-{level}");
        let text = listing(&binary, "run_ops", &["arg0=@str:+*-+", "arg1=4"]);
        // (x + 3) * 2 - 1 + 3, straight-line.
        assert!(!text.contains("jmp"), "{binary}:\n{text}");
        assert!(!text.contains("PTR [0x"), "{binary}:\n{text}");
        assert!(text.matches("lea ").count() >= 2, "{binary}:\n{text}");
    }
}
