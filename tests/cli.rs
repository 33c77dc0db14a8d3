//! The `wiper` command line: `info`, `disasm`, and every bad input giving one
//! error line and exit status 2.

mod common;

use common::{assert_fails, path_arg, stdout_of, wiper};
use wiper_testkit::{scratch_file, testdata_bin};

fn power_bytes() -> Vec<u8> {
    std::fs::read(testdata_bin("power-O0")).unwrap()
}

/// Copy of power-O0 with `patch` applied, in a scratch file.
fn patched(file: &str, patch: impl FnOnce(&mut Vec<u8>)) -> std::path::PathBuf {
    common::patched("power-O0", file, patch)
}

#[test]
fn missing_file() {
    assert_fails(
        &["info", "/nonexistent/binary"],
        "cannot read /nonexistent/binary: no such file",
    );
    assert_fails(
        &["disasm", "/nonexistent/binary", "--function", "main"],
        "cannot read /nonexistent/binary: no such file",
    );
}

#[test]
fn not_an_elf_file() {
    let f = scratch_file("script.sh", b"#!/bin/sh\necho hello\n");
    assert_fails(&["info", path_arg(&f)], "not an ELF file");
}

#[test]
fn elf64_is_rejected() {
    let host = std::env::current_exe().unwrap();
    assert_fails(&["info", path_arg(&host)], "64-bit ELF is not supported");
}

#[test]
fn other_machine_is_rejected() {
    let f = patched("arm", |b| b[18..20].copy_from_slice(&40u16.to_le_bytes()));
    assert_fails(
        &["info", path_arg(&f)],
        "unsupported machine ARM (e_machine 40)",
    );
}

#[test]
fn truncated_file() {
    let whole = power_bytes();
    let f = scratch_file("truncated", &whole[..whole.len() / 3]);
    assert_fails(&["info", path_arg(&f)], "truncated ELF file");
    let f = scratch_file("tiny", &whole[..30]);
    assert_fails(&["info", path_arg(&f)], "truncated ELF file");
}

#[test]
fn program_headers_outside_the_file() {
    let f = patched("phdr-outside", |b| {
        let phoff = u32::from_le_bytes(b[28..32].try_into().unwrap()) as usize;
        let len = b.len() as u32;
        // p_offset of the first program header (a PT_LOAD in these binaries).
        b[phoff + 4..phoff + 8].copy_from_slice(&(len + 0x1000).to_le_bytes());
        b[phoff + 16..phoff + 20].copy_from_slice(&0x100u32.to_le_bytes());
    });
    assert_fails(&["info", path_arg(&f)], "points outside the file");
    let f = patched("phdr-table-outside", |b| {
        let len = b.len() as u32;
        b[28..32].copy_from_slice(&(len - 8).to_le_bytes());
    });
    assert_fails(&["info", path_arg(&f)], "program header table");
}

#[test]
fn unknown_function() {
    let bin = testdata_bin("power-O0");
    assert_fails(
        &["disasm", path_arg(&bin), "--function", "no_such_function"],
        "unknown function `no_such_function`",
    );
    assert_fails(
        &["disasm", path_arg(&bin), "--function", "0xzz"],
        "invalid function address `0xzz`",
    );
}

#[test]
fn a_misspelt_function_name_suggests_the_closest_names() {
    let bin = testdata_bin("power-O0");
    assert_fails(
        &["disasm", path_arg(&bin), "--function", "Powr"],
        "unknown function `Powr`: no function symbol of that name; did you mean `power`?",
    );
    // PLT imports count too.
    let dynamic = testdata_bin("libc_demo-dyn");
    assert_fails(
        &["lift", path_arg(&dynamic), "--function", "printff"],
        "did you mean `printf`",
    );
    // Nothing close: no suggestion.
    let out = wiper(&["disasm", path_arg(&bin), "--function", "zzzzzzzzzz"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("did you mean"), "{stderr}");
}

#[test]
fn address_outside_executable_segments() {
    let bin = testdata_bin("power-O0");
    assert_fails(
        &["disasm", path_arg(&bin), "--function", "0x10"],
        "address 0x10 is outside the executable segments",
    );
    // .rodata is loaded, but not executable.
    let binary = wiper_elf::Binary::open(&bin).unwrap();
    let rodata = binary.section(".rodata").unwrap().addr;
    let arg = format!("{rodata:#x}");
    assert_fails(
        &["disasm", path_arg(&bin), "--function", &arg],
        &format!("address {rodata:#x} is outside"),
    );
}

#[test]
fn undecodable_bytes() {
    let binary = wiper_elf::Binary::open(&testdata_bin("power-O0")).unwrap();
    let power = binary.functions_named("power")[0].addr;
    let offset = common::file_offset("power-O0", power);
    // 0f 04 is not an IA-32 instruction.
    let f = patched("undecodable", |b| {
        b[offset..offset + 2].copy_from_slice(&[0x0f, 0x04])
    });
    assert_fails(
        &["disasm", path_arg(&f), "--function", "power"],
        &format!("undecodable instruction bytes at {power:#x}: 0f 04"),
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = wiper(&["disasm", path_arg(&testdata_bin("power-O0"))]);
    assert_eq!(out.status.code(), Some(2));
    let out = wiper(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = wiper(&[
        "disasm",
        path_arg(&testdata_bin("power-O0")),
        "--function",
        "power",
        "--syntax",
        "att",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn info_summarizes_static_dynamic_and_pie() {
    let text = stdout_of(&["info", path_arg(&testdata_bin("power-O2"))]);
    let binary = wiper_elf::Binary::open(&testdata_bin("power-O2")).unwrap();
    assert!(text.contains("class:       ELF32, little-endian"), "{text}");
    assert!(text.contains("machine:     Intel 80386"));
    assert!(text.contains("type:        EXEC (executable)"));
    assert!(text.contains("linking:     static"));
    assert!(text.contains(&format!("entry:       {:#010x}", binary.entry)));
    let main = binary.functions_named("main")[0].addr;
    assert!(text.contains(&format!("main:        {main:#010x}")));
    assert!(text.contains(&format!("segments:    {}", binary.segments.len())));
    assert!(text.contains("  LOAD r-x"));

    let pie = stdout_of(&["info", path_arg(&testdata_bin("libc_demo-pie"))]);
    assert!(
        pie.contains("type:        DYN (position-independent executable)"),
        "{pie}"
    );
    assert!(pie.contains("linking:     dynamic, interpreter /lib/ld-linux.so.2"));

    let stripped = stdout_of(&["info", path_arg(&testdata_bin("libc_demo-stripped"))]);
    assert!(
        stripped.contains("symbols:     0 (0 functions)"),
        "{stripped}"
    );
    assert!(!stripped.contains("main:        not found"));
}

#[test]
fn help_says_how_arguments_are_counted() {
    let help = stdout_of(&["specialize", "--help"]);
    assert!(
        help.contains("32-bit stack slot of the arguments, counted from 0 ([esp+4+4N] at entry)"),
        "{help}"
    );
}

#[test]
fn info_lists_every_function_in_text_and_json() {
    let bin = testdata_bin("power-O2");
    let binary = wiper_elf::Binary::open(&bin).unwrap();
    let power = binary.functions_named("power")[0];
    let text = stdout_of(&["info", "--functions", path_arg(&bin)]);
    let line = format!("  {:#010x} {:8}  power", power.addr, power.size);
    assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");

    // Debian's stripped gzip: every .eh_frame FDE is a listed function.
    let gzip = wiper_testkit::real_bin("debian/gzip");
    let json = stdout_of(&["info", "--functions", "--format", "json", path_arg(&gzip)]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let listed: std::collections::BTreeMap<String, u64> = v["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["address"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(v["function_count"].as_u64(), Some(listed.len() as u64));
    assert_eq!(v["main"].as_str(), Some("0x2510"), "found from _start");
    let fdes = wiper_elf::Binary::open(&gzip).unwrap().unwind_ranges();
    // Observed 133 FDEs on 2026-12-03 (readelf --debug-dump=frames).
    assert_eq!(fdes.len(), 133);
    for r in &fdes {
        let size = listed.get(&format!("{:#x}", r.start));
        assert_eq!(size, Some(&u64::from(r.len)), "FDE at {:#x}", r.start);
    }
    // Without --functions: the count only.
    let short = stdout_of(&["info", "--format", "json", path_arg(&gzip)]);
    let v: serde_json::Value = serde_json::from_str(&short).unwrap();
    assert!(v.get("functions").is_none());
    assert_eq!(v["function_count"].as_u64(), Some(listed.len() as u64));
}

#[test]
fn disasm_by_name_and_by_address_agree() {
    let bin = testdata_bin("power-O1");
    let binary = wiper_elf::Binary::open(&bin).unwrap();
    let addr = format!("{:#x}", binary.functions_named("power")[0].addr);
    let by_name = stdout_of(&["disasm", path_arg(&bin), "--function", "power"]);
    let by_addr = stdout_of(&["disasm", path_arg(&bin), "-f", &addr]);
    assert_eq!(by_name, by_addr);
    assert!(by_name.starts_with("function power at "), "{by_name}");
    assert!(by_name.contains("imul   "));
    assert!(by_name.contains("-> return"));
}

#[test]
fn disasm_gas_syntax() {
    let text = stdout_of(&[
        "disasm",
        path_arg(&testdata_bin("power-O0")),
        "--function",
        "power",
        "--syntax",
        "gas",
    ]);
    assert!(text.contains("push   %ebp"), "{text}");
    assert!(text.contains("mov    %esp, %ebp"), "{text}");
}

#[test]
fn disasm_dot_has_a_node_per_block_and_an_edge_per_successor() {
    let bin = testdata_bin("switch-O2");
    let binary = wiper_elf::Binary::open(&bin).unwrap();
    let f = wiper_x86::Disassembler::new(&binary)
        .function(binary.functions_named("dispatch")[0].addr)
        .unwrap();
    let dot = stdout_of(&[
        "disasm",
        path_arg(&bin),
        "--function",
        "dispatch",
        "--format",
        "dot",
    ]);
    assert!(dot.starts_with("digraph \"dispatch\" {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    let nodes = dot.lines().filter(|l| l.contains("[label=\"0x")).count();
    assert_eq!(nodes, f.blocks.len());
    let edges = dot.lines().filter(|l| l.contains(" -> ")).count();
    let successors: usize = f.blocks.values().map(|b| b.successors.len()).sum();
    assert_eq!(edges, successors);
    assert_eq!(dot.matches("label=\"case ").count(), 10);
}

/// An address inside a function is refused, naming the nearest function
/// starts below and above (from the symbol table here), unless `--force`.
#[test]
fn an_address_that_is_not_a_function_start_needs_force() {
    let bin = testdata_bin("power-O2");
    let binary = wiper_elf::Binary::open(&bin).unwrap();
    let power = binary.functions_named("power")[0].addr;
    let inside = power + 4;
    let next = binary
        .symbols
        .iter()
        .filter(|s| s.is_code() && s.addr > inside)
        .min_by_key(|s| s.addr)
        .unwrap();
    let arg = format!("{inside:#x}");
    for command in [
        &["disasm"][..],
        &["lift"],
        &["bta"],
        &["specialize", "--emit", "asm"],
    ] {
        let mut args = command.to_vec();
        args.extend([path_arg(&bin), "--function", &arg]);
        assert_fails(
            &args,
            &format!(
                "{inside:#x} is not the start of a known function (nearest: {power:#x} <power> below, {:#x} <{}> above); --force uses it anyway",
                next.addr, next.name
            ),
        );
    }
    let forced = stdout_of(&["disasm", path_arg(&bin), "--function", &arg, "--force"]);
    assert!(
        forced.starts_with(&format!("function ? at {inside:#010x}:")),
        "{forced}"
    );
    // A function start given by address needs no --force.
    let start = format!("{power:#x}");
    let by_address = stdout_of(&["disasm", path_arg(&bin), "--function", &start]);
    assert!(by_address.starts_with("function power at"), "{by_address}");
}
