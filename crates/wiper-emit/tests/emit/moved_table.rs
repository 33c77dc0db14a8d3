//! Inputs without a `PT_NOTE`: the program header table moves to the end of
//! the file, grown by the new segment's `PT_LOAD` and one that maps the
//! table. Judged by goblin (the headers), binutils (no warnings, the new
//! symbol) and the kernel (the binaries run, and static glibc finds its
//! `PT_TLS` through `AT_PHDR`).

use std::process::Command;

use goblin::elf::program_header::{PF_R, PT_INTERP, PT_LOAD, PT_PHDR};
use goblin::elf::ProgramHeader;

use super::written_elf::{new_segment_header, read};
use super::*;

const PAGE: u64 = 0x1000;

/// Checks, with goblin, what the kernel and ld.so need of the program
/// headers of `bytes`, and returns `AT_PHDR` (the table's link-time
/// address): `PT_LOAD`s in ascending address order without overlap, each
/// inside the file with offset and address congruent modulo the page size;
/// the table inside the file bytes of a `PT_LOAD`, and at the same address
/// whether `AT_PHDR` is computed as Linux does since 5.18 (through that
/// `PT_LOAD`) or as it did before (through the first `PT_LOAD`'s
/// `p_vaddr - p_offset`); `PT_PHDR`, when there is one, before every
/// `PT_LOAD` and describing the table; `PT_INTERP` before every `PT_LOAD`.
pub(crate) fn check_loadable(bytes: &[u8]) -> u64 {
    let elf = read(bytes);
    let headers = &elf.program_headers;
    let loads: Vec<&ProgramHeader> = headers.iter().filter(|h| h.p_type == PT_LOAD).collect();
    for pair in loads.windows(2) {
        assert!(
            pair[0].p_vaddr + pair[0].p_memsz <= pair[1].p_vaddr,
            "PT_LOADs out of order or overlapping: {pair:x?}"
        );
    }
    for h in &loads {
        assert_eq!(h.p_offset % PAGE, h.p_vaddr % PAGE, "{h:x?}");
        assert!(h.p_offset + h.p_filesz <= bytes.len() as u64, "{h:x?}");
        assert!(h.p_filesz <= h.p_memsz, "{h:x?}");
    }
    let phoff = elf.header.e_phoff;
    let size = 32 * u64::from(elf.header.e_phnum);
    let holder = loads
        .iter()
        .find(|h| h.p_offset <= phoff && phoff + size <= h.p_offset + h.p_filesz)
        .expect("a PT_LOAD maps the program header table");
    let at_phdr = holder.p_vaddr + (phoff - holder.p_offset);
    let before_5_18 = (loads[0].p_vaddr + phoff).wrapping_sub(loads[0].p_offset);
    assert_eq!(before_5_18, at_phdr, "AT_PHDR before Linux 5.18");
    let first_load = headers.iter().position(|h| h.p_type == PT_LOAD).unwrap();
    for (i, h) in headers.iter().enumerate() {
        if h.p_type == PT_PHDR {
            assert!(i < first_load, "PT_PHDR after a PT_LOAD");
            let fields = (h.p_offset, h.p_vaddr, h.p_filesz, h.p_memsz);
            assert_eq!(fields, (phoff, at_phdr, size, size), "PT_PHDR");
        }
        if h.p_type == PT_INTERP {
            assert!(i < first_load, "PT_INTERP after a PT_LOAD");
        }
    }
    at_phdr
}

/// Checks that binutils read the written file without a warning
/// (`readelf -lSW`) and name the new code (`objdump -d` from its entry).
pub(crate) fn check_binutils(e: &Emitted) {
    let readelf = Command::new("readelf")
        .arg("-lSW")
        .arg(&e.path)
        .output()
        .unwrap();
    assert!(readelf.status.success(), "readelf failed");
    let warnings = String::from_utf8_lossy(&readelf.stderr);
    assert!(warnings.is_empty(), "readelf: {warnings}");
    let start = format!("--start-address={:#x}", e.encoded.entry_vaddr);
    let objdump = Command::new("objdump")
        .args(["-d", &start])
        .arg(&e.path)
        .output()
        .unwrap();
    assert!(objdump.status.success(), "objdump failed");
    let text = String::from_utf8_lossy(&objdump.stdout);
    assert!(text.contains("<f.specialized>:"), "{text}");
}

/// Checks the moved table against the input's, as goblin reads both: the
/// input's entries with the new segment's `PT_LOAD` after the last
/// `PT_LOAD` and a read-only `PT_LOAD` of the table (page-aligned, as big as
/// the table) first when it is below the others, else right after the new
/// one; `PT_PHDR` describing it. Returns that `PT_LOAD`.
fn check_moved_program_headers(e: &Emitted) -> ProgramHeader {
    let (before, after) = (read(&e.input), read(&e.output));
    let count = before.program_headers.len() + 2;
    assert_eq!(usize::from(after.header.e_phnum), count);
    let (phoff, size) = (after.header.e_phoff, 32 * count as u64);
    let own = after
        .program_headers
        .iter()
        .find(|h| h.p_type == PT_LOAD && h.p_offset == phoff)
        .expect("a PT_LOAD starting at the table")
        .clone();
    let fields = (own.p_flags, own.p_filesz, own.p_memsz, own.p_align);
    assert_eq!(fields, (PF_R, size, size, PAGE));
    assert_eq!((own.p_offset % PAGE, own.p_paddr), (0, own.p_vaddr));
    let mut expected = before.program_headers.clone();
    let first = expected.iter().position(|h| h.p_type == PT_LOAD).unwrap();
    let last = expected.iter().rposition(|h| h.p_type == PT_LOAD).unwrap();
    let below = own.p_vaddr < expected[first].p_vaddr;
    expected.insert(last + 1, new_segment_header(e));
    expected.insert(if below { first } else { last + 2 }, own.clone());
    for h in expected.iter_mut().filter(|h| h.p_type == PT_PHDR) {
        (h.p_offset, h.p_vaddr, h.p_paddr) = (phoff, own.p_vaddr, own.p_vaddr);
        (h.p_filesz, h.p_memsz) = (size, size);
    }
    assert_eq!(after.program_headers, expected);
    own
}

/// Checks that the output's first `e.input.len()` bytes are the input's but
/// for `e_phoff`, `e_shoff`, `e_phnum`, `e_shnum` and the `jmp` at `entry`:
/// the input's own program header table stays as it was.
fn check_input_kept(e: &Emitted, entry: u32) {
    let text = e.binary.segments.iter().find(|s| s.contains(entry));
    let text = text.unwrap();
    let at = (text.offset + entry - text.vaddr) as usize;
    let allowed = [28..36, 44..46, 48..50, at..at + 5];
    let input_part = e.output[..e.input.len()].iter();
    for (i, (a, b)) in e.input.iter().zip(input_part).enumerate() {
        if a != b {
            assert!(allowed.iter().any(|r| r.contains(&i)), "byte {i:#x}");
        }
    }
}

/// Testdata binary `name` without its `PT_NOTE`, with `power` replaced by
/// `make`'s residual; and `power`'s address.
fn emit_without_note(name: &str, make: impl FnOnce(u32, &Binary) -> Residual) -> (Emitted, u32) {
    let (bytes, _) = load(name);
    let bytes = without_note(&bytes);
    let binary = Binary::parse(bytes.clone()).unwrap();
    let power = symbol(&binary, "power");
    let e = emit_at(&format!("{name}-no-note"), bytes, binary, power, make);
    (e, power)
}

/// A static executable at 0x8048000 without `PT_NOTE`: the table goes one
/// page below the image, at the end of the file, as the first `PT_LOAD`.
#[test]
fn a_static_executable_gets_its_table_below_the_image() {
    let (e, power) = emit_without_note("power-O2", square_first);
    assert_eq!(e.run(&["7", "0", "0"]).stdout_str(), "49\n");
    let own = check_moved_program_headers(&e);
    let elf = read(&e.output);
    assert_eq!(own.p_vaddr, 0x8047000);
    assert_eq!(elf.program_headers[0], own);
    // At the end of the file, the first page boundary after the sections.
    let shdrs_end = elf.header.e_shoff + 40 * u64::from(elf.header.e_shnum);
    assert_eq!(own.p_offset, shdrs_end.next_multiple_of(PAGE));
    assert_eq!(e.output.len() as u64, own.p_offset + own.p_filesz);
    assert_eq!(check_loadable(&e.output), own.p_vaddr);
    check_input_kept(&e, power);
    check_binutils(&e);
}

/// A PIE (with `PT_PHDR` and `PT_INTERP`) without `PT_NOTE`: nothing is
/// below address 0, so the table goes after the new segment, at the address
/// that is its file offset (as for the first `PT_LOAD`), the file padded up
/// to there; `PT_PHDR` moves with it, so ld.so finds the load bias.
#[test]
fn a_pie_gets_its_table_after_the_new_segment() {
    let (e, power) = emit_without_note("libc_demo-pie", thousand);
    let out = e.run(&["sub", "2", "3", "4", "9", "8"]);
    assert_eq!(out.stdout_lines(), vec!["2", "2003", "26", "8 9"]);
    let own = check_moved_program_headers(&e);
    assert_eq!(own.p_vaddr, own.p_offset);
    let segment_end = u64::from(e.plan.segment_vaddr) + new_segment_header(&e).p_memsz;
    assert_eq!(own.p_vaddr, segment_end.next_multiple_of(PAGE));
    assert_eq!(check_loadable(&e.output), own.p_vaddr);
    let types: Vec<u32> = read(&e.output)
        .program_headers
        .iter()
        .map(|h| h.p_type)
        .take(2)
        .collect();
    assert_eq!(types, [PT_PHDR, PT_INTERP]);
    check_input_kept(&e, power);
    check_binutils(&e);
}

/// Found by fuzzing: a PIE without `PT_NOTE` whose last segment's memory
/// size was damaged to reach 1 GiB asked for 1 GiB of zeros before the
/// moved table; it is refused with a one-line error before anything is
/// allocated, and a `.bss` of a few MiB is still padded.
#[test]
fn a_damaged_memory_size_does_not_pad_the_file_with_a_gigabyte() {
    let (bytes, _) = load("libc_demo-pie");
    let bytes = without_note(&bytes);
    for (end, refused) in [(0x40_0000u64, false), (0x4000_0000, true)] {
        let bytes = super::with_load_end(&bytes, end);
        let binary = Binary::parse(bytes.clone()).unwrap();
        let power = symbol(&binary, "power");
        let plan = plan(&binary, 0).unwrap();
        let r = thousand(0, &binary);
        let encoded = encode(&plan, &r).unwrap();
        let written = write_elf(&bytes, &binary, &plan, &r, &encoded, power, "f");
        if refused {
            let err = written.unwrap_err();
            assert!(matches!(err, EmitError::TooMuchPadding { padding } if padding > MAX_PADDING));
            assert_eq!(err.to_string().lines().count(), 1, "{err}");
        } else {
            assert!(written.unwrap().len() as u64 > end);
        }
    }
}

/// A written binary is an input like any other: power-O2 specialized three
/// times over (the `PT_NOTE` reused, then the table moved, then moved
/// again), each time with the last residual in force and every earlier
/// segment still mapped.
#[test]
fn an_output_is_written_again_and_again() {
    let (bytes, binary) = load("power-O2");
    let power = symbol(&binary, "power");
    let first = emit_at("power-1", bytes, binary, power, square_first);
    let second_input = Binary::parse(first.output.clone()).unwrap();
    let second = emit_at("power-2", first.output, second_input, power, thousand);
    assert_eq!(second.run(&["6", "7", "0"]).stdout_str(), "6007\n");
    check_moved_program_headers(&second);
    // The first residual is still there, now called from the third.
    let square = first.encoded.entry_vaddr;
    let third_input = Binary::parse(second.output.clone()).unwrap();
    let third = emit_at("power-3", second.output, third_input, power, |_, _| {
        let code = asm(|a| {
            a.push(dword_ptr(esp + 4))?;
            a.call(u64::from(square))?;
            a.add(esp, 4)?;
            a.add(eax, 1)?;
            a.ret()
        });
        residual(0, vec![block(0, items(code, 0), Terminator::Exit)])
    });
    assert_eq!(third.run(&["6", "7", "0"]).stdout_str(), "37\n");
    let own = check_moved_program_headers(&third);
    assert_eq!(own.p_vaddr, 0x8046000, "below the previous table");
    check_loadable(&third.output);
    check_binutils(&third);
}

/// A table that cannot grow by two entries within the 64 KiB Linux loads
/// is refused: power-O2 without `PT_NOTE`, its table padded with `PT_NULL`
/// entries to 2047 at the end of the file.
#[test]
fn a_table_that_cannot_grow_is_refused() {
    let (bytes, _) = load("power-O2");
    let mut bytes = without_note(&bytes);
    let phnum = u16::from_le_bytes([bytes[44], bytes[45]]) as usize;
    let table = bytes[52..52 + 32 * phnum].to_vec();
    let phoff = bytes.len().next_multiple_of(4);
    bytes.resize(phoff, 0);
    bytes.extend_from_slice(&table);
    bytes.resize(phoff + 32 * 2047, 0);
    bytes[28..32].copy_from_slice(&(phoff as u32).to_le_bytes());
    bytes[44..46].copy_from_slice(&2047u16.to_le_bytes());
    let binary = Binary::parse(bytes.clone()).unwrap();
    let p = plan(&binary, 0).unwrap();
    let r = square_first(0, &binary);
    let enc = encode(&p, &r).unwrap();
    let power = symbol(&binary, "power");
    let err = write_elf(&bytes, &binary, &p, &r, &enc, power, "x").unwrap_err();
    assert_eq!(err, EmitError::TooManyProgramHeaders(2049));
    assert!(one_line(&err).contains("2048"), "{err}");
}
