//! Helpers shared by the wiper-bta tests.
#![allow(dead_code)]

use wiper_bta::{analyze, Analysis, BindingTime, StaticSpec};
use wiper_elf::Binary;
use wiper_testkit::testdata_bin;

/// Loads `testdata/bin/<name>`.
pub fn binary(name: &str) -> Binary {
    Binary::open(&testdata_bin(name)).expect("testdata binary")
}

/// Analyses `function` of `testdata/bin/<bin>` under `spec` (whitespace
/// separated).
pub fn run(bin: &str, function: &str, spec: &str) -> (Binary, Analysis) {
    let b = binary(bin);
    let entry = wiper_x86::resolve_function(&b, function).expect("function");
    let spec: StaticSpec = spec.parse().expect("spec");
    let a = analyze(&b, entry, &spec).expect("analysis");
    (b, a)
}

/// The binding time of the part at `address`.`index`.
pub fn bt(a: &Analysis, address: u32, index: u8) -> &BindingTime {
    let p = a.part_at(address, index).expect("part");
    &a.binding[p.index()]
}

/// The parts whose text starts with `prefix` (e.g. a mnemonic), by id.
pub fn parts_with(a: &Analysis, prefix: &str) -> Vec<usize> {
    a.parts
        .iter()
        .filter(|p| p.part.text.starts_with(prefix))
        .map(|p| p.id.index())
        .collect()
}

/// Conditional branch parts (`j` mnemonics other than `jmp`, and `jrep`).
pub fn conditional_branches(a: &Analysis) -> Vec<usize> {
    a.parts
        .iter()
        .filter(|p| {
            let m = p.part.text.split_whitespace().next().unwrap_or("");
            m.starts_with('j') && m != "jmp" && a.successors(p.id).len() >= 2
        })
        .map(|p| p.id.index())
        .collect()
}

/// Whether the output `name` (`eax`, `flags`, ...) at exit is dynamic.
pub fn exit_dynamic(a: &Analysis, name: &str) -> bool {
    a.outputs
        .iter()
        .find(|(o, _)| o.to_string() == name)
        .map(|(_, d)| *d)
        .expect("output")
}
