//! The disassembler against GNU objdump on the real-world test bed
//! (`testdata/real/`, see testdata/README.md): programs nobody here wrote.
//!
//! For each binary: every function wiper finds decodes; every instruction it
//! decodes matches objdump's after the documented normalization
//! (`common::normalize`); every instruction objdump lists inside a function
//! symbol that wiper does not reach is padding or explained
//! (`common::Unreached`: after a call that never returns, after `hlt`, a
//! landing pad, behind a table jump docs/limitations.md explains, or dead
//! code no branch leads to); no table target falls where objdump starts no
//! instruction; and enough table jumps resolve.
//!
//! Debian's two binaries and the musl one take about 3 s in a debug build
//! and run with `cargo test`; the static glibc ones take 10 to 20 s each in
//! debug, so the whole set is an ignored test, run in release:
//! `cargo test --release -p wiper-x86 --test real -- --ignored --nocapture`
//! (also printing the figures docs/real-binaries.md records).

mod common;

use common::{check_all_functions, Findings, Unreached};

/// Table jumps that must resolve, per binary: `None` for all of them.
fn resolved_floor(name: &str) -> Option<usize> {
    match name {
        // Observed 106 of 110 on 2026-12-03; the floor is 85% of that.
        "gzip-glibc" => Some(90),
        // Observed 113 of 133 on 2026-12-03; the floor is 85% of that.
        "bzip2-glibc" => Some(96),
        // Observed 151 of 156 on 2026-12-03; the floor is 85% of that.
        "lua-glibc" => Some(128),
        // debian/gzip 7 of 7, debian/bzip2 3 of 3, gzip-musl 4 of 4.
        _ => None,
    }
}

/// Checks the real binary `name` against objdump, prints its figures, and
/// fails on anything the module doc forbids.
fn judge(name: &str) -> Findings {
    let f = check_all_functions(&wiper_testkit::real_bin(name));
    println!(
        "{name}: {} functions, {} instructions, {} errors, {} mismatches, unreached {:?}, \
         jump tables {}/{}, {} stray targets",
        f.functions,
        f.instructions,
        f.errors.len(),
        f.mismatches.len(),
        f.unreached
            .iter()
            .map(|(k, v)| (k, v.len()))
            .collect::<Vec<_>>(),
        f.resolved_tables(),
        f.table_jumps.len(),
        f.stray_targets.len()
    );
    assert_eq!(
        f.errors,
        Vec::<String>::new(),
        "{name}: functions that fail"
    );
    assert_eq!(f.mismatches, Vec::<String>::new(), "{name}: unlike objdump");
    let unexplained = f.unreached(Unreached::Unexplained);
    assert!(
        unexplained.is_empty(),
        "{name}: not decoded: {unexplained:?}"
    );
    assert_eq!(
        f.stray_targets,
        Vec::<String>::new(),
        "{name}: table targets"
    );
    let unresolved: Vec<String> = f
        .table_jumps
        .iter()
        .filter(|(_, &r)| !r)
        .map(|(a, _)| format!("{a:#x}"))
        .collect();
    match resolved_floor(name) {
        Some(floor) => assert!(
            f.resolved_tables() >= floor,
            "{name}: {} tables resolved; unresolved {unresolved:?}",
            f.resolved_tables()
        ),
        None => assert!(unresolved.is_empty(), "{name}: unresolved {unresolved:?}"),
    }
    f
}

#[test]
fn debian_and_musl_binaries_decode_like_objdump() {
    let mut functions = 0;
    for name in ["debian/gzip", "debian/bzip2", "gzip-musl"] {
        functions += judge(name).functions;
    }
    // Observed 450 functions on 2026-12-03; the floor is 85% of that.
    assert!(functions >= 382, "{functions} functions");
}

#[test]
#[ignore]
fn every_real_binary_decodes_like_objdump() {
    for name in wiper_testkit::REAL_BINARIES {
        judge(name);
    }
}
