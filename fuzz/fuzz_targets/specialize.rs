//! The whole path on a mutated binary: load, locate the first function of
//! [`CASES`] it has, specialize it for that case's static inputs (bounded:
//! a small residual, short proofs, shallow inlining), optimize, plan,
//! encode, list and write the ELF in memory; then load the written ELF
//! again. Every step ends in a result or a one-line error, never a panic,
//! and a written ELF loads.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Functions of the seeds (testdata/bin) and the static inputs to give them.
const CASES: &[(&str, &[&str])] = &[
    ("power", &["arg1=3", "arg2=5"]),
    ("prod", &["arg2=6"]),
    ("abn", &["arg1=7"]),
    ("dispatch", &["arg0=2"]),
    ("run_vm", &["arg0=@i32:1,2,3,9,0"]),
    ("gcd", &["arg0=360"]),
    ("fact", &["arg0=5"]),
    ("main", &[]),
];

fuzz_target!(|data: &[u8]| {
    let binary = match wiper::Binary::from_bytes("input", data.to_vec()) {
        Ok(b) => b,
        Err(e) => return wiper_fuzz::one_line(&e),
    };
    let Some((function, statics)) = CASES
        .iter()
        .find_map(|&(name, statics)| binary.function(name).ok().map(|f| (f, statics)))
    else {
        return;
    };
    let spec = wiper::Spec::parse(statics).expect("the cases' specs parse");
    // Bounds that keep one input to seconds: `main` of a seed with nothing
    // static unrolls and inlines much of the program (with 2,000 residual
    // instructions and depth 8, a mutated `debian/bzip2` took 17 s of
    // processor time under the address sanitizer, 90 s on the loaded
    // machine: libFuzzer's timeout; 2.4 s in a debug build of the command
    // line, which refuses it at the residual bound).
    let options = wiper::Options {
        max_residual: 300,
        proof_timeout_ms: 50,
        max_inline_depth: 4,
        ..wiper::Options::default()
    };
    let residual = match wiper::specialize_with(&binary, &function, &spec, &options) {
        Ok(r) => r,
        Err(e) => return wiper_fuzz::one_line(&e),
    };
    let _ = residual.listing();
    let _ = residual.summary().to_string();
    match residual.elf_bytes() {
        Err(e) => wiper_fuzz::one_line(&e),
        Ok(elf) => {
            if let Err(e) = wiper_elf::Binary::parse(elf) {
                panic!("the written ELF does not load: {e}");
            }
        }
    }
});
