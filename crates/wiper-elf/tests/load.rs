//! The loader against binutils (readelf, objdump) on every testdata binary, and
//! against damaged files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use wiper_elf::{Binary, ElfError, FileType, SymbolKind};
use wiper_testkit::{all_binaries, testdata_bin};

fn tool(program: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (binutils): {e}"));
    assert!(
        out.status.success(),
        "{program} failed on {}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hex(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn segments_match_readelf() {
    for path in all_binaries() {
        let binary = Binary::open(&path).unwrap();
        let expected: Vec<(u32, u32, u32, u32, String)> = tool("readelf", &["-lW"], &path)
            .lines()
            .filter(|l| l.trim_start().starts_with("LOAD"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg... Align
                let flags: String = f[6..f.len() - 1].concat();
                (hex(f[1]), hex(f[2]), hex(f[4]), hex(f[5]), flags)
            })
            .collect();
        let ours: Vec<(u32, u32, u32, u32, String)> = binary
            .segments
            .iter()
            .map(|s| {
                let p = s.perms;
                let flags = [(p.read, 'R'), (p.write, 'W'), (p.execute, 'E')]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, c)| *c)
                    .collect();
                (s.offset, s.vaddr, s.file_size, s.mem_size, flags)
            })
            .collect();
        assert_eq!(ours, expected, "{}", path.display());
    }
}

#[test]
fn function_symbols_match_readelf() {
    for path in all_binaries() {
        let binary = Binary::open(&path).unwrap();
        let mut checked = 0;
        for line in tool("readelf", &["-sW"], &path).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Num: Value Size Type Bind Vis Ndx Name
            if f.len() < 8 || !matches!(f[3], "FUNC" | "IFUNC") || f[6] == "UND" {
                continue;
            }
            let (addr, name) = (hex(f[1]), f[7].split('@').next().unwrap());
            if addr == 0 {
                continue;
            }
            let found = binary
                .symbols
                .iter()
                .any(|s| s.name == name && s.addr == addr && s.is_code());
            assert!(found, "{}: {name} at {addr:#x} missing", path.display());
            checked += 1;
        }
        let stripped = path.ends_with("libc_demo-stripped");
        assert_eq!(checked == 0, stripped, "{}", path.display());
    }
}

/// `objdump -d` labels dynamic PLT stubs `<name@plt>`.
fn objdump_plt_labels(path: &Path) -> BTreeMap<u32, String> {
    tool("objdump", &["-d", "-j", ".plt", "-j", ".plt.got"], path)
        .lines()
        .filter_map(|l| {
            let (addr, rest) = l.split_once(" <")?;
            let name = rest.strip_suffix("@plt>:")?;
            Some((hex(addr), name.to_string()))
        })
        .collect()
}

#[test]
fn dynamic_plt_entries_are_named_like_objdump() {
    for name in ["libc_demo-dyn", "libc_demo-pie"] {
        let path = testdata_bin(name);
        let binary = Binary::open(&path).unwrap();
        let expected = objdump_plt_labels(&path);
        // A premise (objdump lists the PLT; 10 entries observed on
        // 2026-12-03), not a measure: the judge is the equality below.
        assert!(expected.len() >= 8, "{name}: objdump shows {expected:?}");
        assert_eq!(binary.plt, expected, "{name}");
    }
}

#[test]
fn static_glibc_plt_entries_name_their_ifuncs() {
    let path = testdata_bin("libc_demo-O2");
    let binary = Binary::open(&path).unwrap();
    let irelative = tool("readelf", &["-rW"], &path)
        .lines()
        .filter(|l| l.contains("R_386_IRELATIVE"))
        .count();
    assert!(irelative > 0);
    assert_eq!(binary.plt.len(), irelative);
    for (addr, name) in &binary.plt {
        assert!(
            binary
                .symbols
                .iter()
                .any(|s| &s.name == name && s.kind == SymbolKind::IndirectFunction),
            "PLT stub {addr:#x} named {name}, which is no IFUNC"
        );
    }
}

#[test]
fn file_types_and_interpreters() {
    let exec = Binary::open(&testdata_bin("power-O0")).unwrap();
    assert_eq!(exec.file_type, FileType::Executable);
    assert_eq!(exec.interpreter, None);
    let pie = Binary::open(&testdata_bin("libc_demo-pie")).unwrap();
    assert_eq!(pie.file_type, FileType::PositionIndependent);
    assert_eq!(pie.interpreter.as_deref(), Some("/lib/ld-linux.so.2"));
    let elf_header_entry = u32::from_le_bytes(pie.file_bytes()[24..28].try_into().unwrap());
    assert_eq!(pie.entry, elf_header_entry);
}

#[test]
fn read_only_data_and_memory_reads() {
    let binary = Binary::open(&testdata_bin("calls-O2")).unwrap();
    let rodata = binary.section(".rodata").expect(".rodata");
    let data = binary
        .section(".data")
        .or_else(|| binary.section(".bss"))
        .expect("writable data");
    let text = binary.section(".text").expect(".text");
    assert!(binary.is_read_only(rodata.addr));
    assert!(binary.is_read_only(text.addr));
    assert!(binary.is_executable(text.addr));
    assert!(!binary.is_executable(rodata.addr));
    assert!(!binary.is_read_only(data.addr));
    assert!(!binary.is_read_only(0x10));
    // Bytes read by address equal the file bytes at the section's offset.
    let by_addr = binary.read(rodata.addr, rodata.size).unwrap();
    let off = rodata.offset as usize;
    assert_eq!(
        by_addr,
        &binary.file_bytes()[off..off + rodata.size as usize]
    );
    // .bss reads as zeros.
    if let Some(bss) = binary.section(".bss") {
        assert_eq!(
            binary.read(bss.addr, bss.size.min(16)).unwrap(),
            vec![0; bss.size.min(16) as usize]
        );
    }
    assert_eq!(binary.read(0xffff_fff0, 32), None);
}

fn power_bytes() -> Vec<u8> {
    std::fs::read(testdata_bin("power-O0")).unwrap()
}

#[test]
fn rejects_what_it_cannot_load() {
    let err = |bytes: Vec<u8>| Binary::parse(bytes).unwrap_err();
    assert!(matches!(err(b"#!/bin/sh\n".to_vec()), ElfError::NotElf));
    assert!(matches!(err(Vec::new()), ElfError::NotElf));
    let host = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(matches!(err(host), ElfError::Elf64));

    let mut arm = power_bytes();
    arm[18..20].copy_from_slice(&40u16.to_le_bytes());
    assert_eq!(
        err(arm).to_string(),
        "unsupported machine ARM (e_machine 40): wiper reads i386 (EM_386) executables only"
    );

    let mut object = power_bytes();
    object[16..18].copy_from_slice(&1u16.to_le_bytes());
    assert!(matches!(err(object), ElfError::FileType(_)));

    let truncated = power_bytes()[..40].to_vec();
    assert!(matches!(err(truncated), ElfError::Truncated(_)));
    let half = power_bytes();
    let half = half[..half.len() / 2].to_vec();
    assert!(matches!(err(half), ElfError::Truncated(_)));

    // First program header's p_offset pushed past the end of the file.
    let mut outside = power_bytes();
    let phoff = u32::from_le_bytes(outside[28..32].try_into().unwrap()) as usize;
    let len = outside.len() as u32;
    let load = (0..u16::from_le_bytes(outside[44..46].try_into().unwrap()) as usize)
        .map(|i| phoff + 32 * i)
        .find(|&at| u32::from_le_bytes(outside[at..at + 4].try_into().unwrap()) == 1)
        .unwrap();
    outside[load + 4..load + 8].copy_from_slice(&len.to_le_bytes());
    outside[load + 16..load + 20].copy_from_slice(&0x1000u32.to_le_bytes());
    let e = err(outside);
    assert!(e.to_string().contains("points outside the file"), "{e}");
}

/// Deterministic damage to a real binary: no input may panic the loader.
#[test]
fn damaged_files_never_panic() {
    let original = std::fs::read(testdata_bin("calls-O1")).unwrap();
    for cut in (0..original.len()).step_by(97) {
        let _ = Binary::parse(original[..cut].to_vec());
    }
    let mut rng = wiper_x86::Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next_u64();
    for _ in 0..3000 {
        let mut bytes = original.clone();
        for _ in 0..1 + next() % 4 {
            // Mostly hit the headers, sometimes anywhere.
            let at = if next() % 4 == 0 {
                next() as usize % bytes.len()
            } else {
                next() as usize % 0x200
            };
            bytes[at] = next() as u8;
        }
        if let Ok(binary) = Binary::parse(bytes) {
            let _ = binary.read(binary.entry, 16);
        }
    }
}

/// The file offset of the section header of `name` in `bytes`.
fn section_header_at(bytes: &[u8], name: &str) -> usize {
    let binary = Binary::parse(bytes.to_vec()).unwrap();
    let index = binary.sections.iter().position(|s| s.name == name).unwrap();
    let shoff = u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as usize;
    shoff + 40 * index
}

/// `bytes` with the section `name` made `SHT_NOBITS` of `size` bytes.
fn nobits(mut bytes: Vec<u8>, name: &str, size: u32) -> Vec<u8> {
    let at = section_header_at(&bytes, name);
    bytes[at + 4..at + 8].copy_from_slice(&8u32.to_le_bytes()); // SHT_NOBITS
    bytes[at + 20..at + 24].copy_from_slice(&size.to_le_bytes());
    bytes
}

/// Found by fuzzing: a `SHT_NOBITS` `.eh_frame` or `.plt` has no file
/// bytes, so its size (any size, unchecked against the file) is never read:
/// no unwind ranges and no PLT names come from it, and nothing the size of
/// the section is allocated.
#[test]
fn nobits_sections_are_never_read() {
    let dynamic = std::fs::read(testdata_bin("libc_demo-dyn")).unwrap();
    let pristine = Binary::parse(dynamic.clone()).unwrap();
    assert!(!pristine.unwind_ranges().is_empty());
    let eh_frame = pristine.section(".eh_frame").unwrap().size;
    for size in [eh_frame, 0xffff_fff0] {
        let damaged = Binary::parse(nobits(dynamic.clone(), ".eh_frame", size)).unwrap();
        assert_eq!(damaged.unwind_ranges(), vec![], "size {size:#x}");
    }
    let plt = pristine.section(".plt").unwrap();
    let in_plt = |a: u32| a >= plt.addr && a - plt.addr < plt.size;
    assert!(pristine.plt.keys().any(|&a| in_plt(a)));
    for size in [plt.size, 0xffff_fff0] {
        let damaged = Binary::parse(nobits(dynamic.clone(), ".plt", size)).unwrap();
        assert!(
            !damaged.plt.keys().any(|&a| in_plt(a)),
            "size {size:#x}: {:?}",
            damaged.plt
        );
    }
    // Found by fuzzing (elf_load, out of memory): a section header table
    // moved by a few bytes reads as `SHT_NULL` entries of any size (there
    // 0x6ffffff6 bytes, inside a segment damaged to 2 GiB). A section
    // without file bytes, or larger than the file, has no bytes; here 1 MiB,
    // mapped by the segment that holds `.eh_frame`, grown to cover it.
    let mut big = dynamic.clone();
    let at = section_header_at(&big, ".eh_frame");
    big[at + 4..at + 8].copy_from_slice(&0u32.to_le_bytes()); // SHT_NULL
    big[at + 20..at + 24].copy_from_slice(&0x10_0000u32.to_le_bytes());
    let segment = pristine
        .segment_at(pristine.section(".eh_frame").unwrap().addr)
        .unwrap();
    let phoff = u32::from_le_bytes(big[28..32].try_into().unwrap()) as usize;
    let load = (0..)
        .map(|i| phoff + 32 * i)
        .find(|&p| u32::from_le_bytes(big[p + 8..p + 12].try_into().unwrap()) == segment.vaddr)
        .unwrap();
    big[load + 20..load + 24].copy_from_slice(&0x20_0000u32.to_le_bytes());
    let damaged = Binary::parse(big).unwrap();
    let eh_frame = damaged.section(".eh_frame").unwrap();
    assert!(
        damaged.read(eh_frame.addr, eh_frame.size).is_some(),
        "mapped"
    );
    assert!(damaged.section_bytes(eh_frame).is_none(), "SHT_NULL");
    assert_eq!(damaged.unwind_ranges(), vec![]);
    let mut long = eh_frame.clone();
    long.kind = 1; // SHT_PROGBITS, past the end of the file
    assert!(damaged.section_bytes(&long).is_none(), "past the file");
    let text_section = pristine.section(".text").unwrap();
    assert_eq!(
        pristine.section_bytes(text_section).unwrap(),
        pristine.read(text_section.addr, text_section.size).unwrap()
    );
    // A read of almost 4 GiB allocates nothing when the range is not mapped.
    let text = pristine.section(".text").unwrap().addr;
    assert_eq!(pristine.read(text, u32::MAX - text), None);
    assert_eq!(pristine.read(text, 0), Some(vec![]));
    assert_eq!(pristine.read(u32::MAX, 2), None);
}

/// readelf's FDE ranges (`pc=START..END`) in `.eh_frame`, non-empty ones.
fn readelf_fdes(path: &Path) -> Vec<(u32, u32)> {
    let text = tool("readelf", &["--debug-dump=frames"], path);
    let mut out = Vec::new();
    let mut in_eh_frame = false;
    for line in text.lines() {
        if line.starts_with("Contents of the ") {
            in_eh_frame = line.contains(".eh_frame section");
        }
        let Some(pc) = line.split_once(" pc=").map(|(_, p)| p) else {
            continue;
        };
        if !in_eh_frame || !line.contains(" FDE ") {
            continue;
        }
        let (start, end) = pc.trim().split_once("..").unwrap();
        let (start, end) = (hex(start), hex(end));
        if end > start {
            out.push((start, end - start));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn unwind_ranges_match_readelf_on_real_binaries() {
    let mut total = 0;
    for name in wiper_testkit::REAL_BINARIES {
        let path = wiper_testkit::real_bin(name);
        let binary = Binary::open(&path).unwrap();
        let ours: Vec<(u32, u32)> = binary
            .unwind_ranges()
            .iter()
            .map(|r| (r.start, r.len))
            .collect();
        assert_eq!(ours, readelf_fdes(&path), "{name}");
        total += ours.len();
        println!("{name}: {} FDEs", ours.len());
    }
    // Observed 4,571 FDEs on 2026-12-03 (debian/gzip 133, debian/bzip2 28);
    // the floor is 87% of that.
    assert!(total >= 4_000, "{total} FDEs");
}
