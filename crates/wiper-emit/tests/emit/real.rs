//! The writer on the real-world test bed (testdata/real): gzip as Debian
//! ships it (a PIE run by the system's ld.so), gzip and bzip2 linked
//! statically with glibc (which reads `PT_TLS` through `AT_PHDR` at startup)
//! and gzip linked statically with musl (no `PT_NOTE`), each with its
//! `PT_NOTE` reused and, without it, with its program header table moved.
//! Each written binary compresses real input with a function replaced by
//! other, equivalent code; its output must be the original binary's, byte
//! for byte, and the original must decompress it. A residual that is wrong
//! on purpose must change the output, which shows the residual runs.

use std::path::Path;

use wiper_testkit::real_bin;
use wiper_x86::rng::Rng;

use super::moved_table::{check_binutils, check_loadable};
use super::*;

/// About 300 KB to compress: text from a small vocabulary, with stretches
/// of random bytes so the compressors build varied code tables.
fn corpus() -> Vec<u8> {
    let words = [
        "partial ",
        "evaluation ",
        "of ",
        "machine ",
        "code ",
        "the ",
        "residual ",
        "static ",
        "dynamic ",
        "binding-time ",
        "0x8048000 ",
        "segment\n",
        "jmp ",
    ];
    let mut rng = Rng::new(2015);
    let mut out = Vec::new();
    while out.len() < 300_000 {
        if rng.chance(1, 500) {
            let mut noise = vec![0u8; rng.range(100, 3000) as usize];
            rng.fill_bytes(&mut noise);
            out.extend_from_slice(&noise);
        }
        out.extend_from_slice(rng.choose(&words).as_bytes());
    }
    out
}

/// The real binary `name` with its `PT_NOTE` (`"note"`, when it has one)
/// and without it (`"moved"`): the inputs to write.
fn variants(name: &str) -> Vec<(&'static str, Vec<u8>)> {
    let bytes = std::fs::read(real_bin(name)).unwrap();
    if has_pt_note(&bytes) {
        vec![("note", bytes.clone()), ("moved", without_note(&bytes))]
    } else {
        vec![("moved", bytes)]
    }
}

/// Whether the file has a `PT_NOTE` program header (goblin's view).
fn has_pt_note(bytes: &[u8]) -> bool {
    let elf = super::written_elf::read(bytes);
    elf.program_headers
        .iter()
        .any(|h| h.p_type == goblin::elf::program_header::PT_NOTE)
}

/// The address of the only copy of `code` in `binary`'s executable
/// segments.
fn find_code(binary: &Binary, code: &[u8]) -> u32 {
    let mut found = Vec::new();
    for s in binary.segments.iter().filter(|s| s.perms.execute) {
        let bytes = binary.read(s.vaddr, s.file_size).unwrap();
        for (i, w) in bytes.windows(code.len()).enumerate() {
            if w == code {
                found.push(s.vaddr + i as u32);
            }
        }
    }
    assert_eq!(found.len(), 1, "copies of the code at {found:x?}");
    found[0]
}

/// gzip's `bi_reverse(code, len)`, the low `len` bits of `code` reversed (a
/// loop, in deflate's code tables): the same bytes in all three gzips, so
/// it is found in the stripped Debian one by gzip-glibc's symbol's bytes.
fn bi_reverse(binary: &Binary) -> u32 {
    let glibc = Binary::open(&real_bin("gzip-glibc")).unwrap();
    let f = glibc.function_at(symbol(&glibc, "bi_reverse")).unwrap();
    find_code(binary, &glibc.read(f.addr, f.size).unwrap())
}

/// `bi_reverse` without a loop: all 32 bits reversed (`bswap`, then nibbles,
/// bit pairs and bits swapped), shifted right by `32 - len`; `extra` more
/// when the residual is to be wrong.
fn reverse_without_loop(extra: i32) -> impl FnOnce(u32, &Binary) -> Residual {
    move |_, _| {
        let code = asm(|a| {
            a.mov(eax, dword_ptr(esp + 4))?;
            a.bswap(eax)?;
            for (shift, mask) in [(4, 0x0f0f_0f0f), (2, 0x3333_3333), (1, 0x5555_5555)] {
                a.mov(edx, eax)?;
                a.shr(eax, shift)?;
                a.and(eax, mask)?;
                a.and(edx, mask)?;
                a.shl(edx, shift)?;
                a.or(eax, edx)?;
            }
            a.mov(ecx, 32 + extra)?;
            a.sub(ecx, dword_ptr(esp + 8))?;
            a.shr(eax, cl)?;
            a.ret()
        });
        residual(0, vec![block(0, items(code, 0), Terminator::Exit)])
    }
}

/// Writes `name`'s variant `kind` (`bytes`) with `entry` replaced by
/// `make`'s residual, and checks the result's headers and binutils' view.
fn write(
    name: &str,
    kind: &str,
    bytes: Vec<u8>,
    entry: u32,
    make: impl FnOnce(u32, &Binary) -> Residual,
) -> Emitted {
    let binary = Binary::parse(bytes.clone()).unwrap();
    let scratch = format!("{}-{kind}", name.replace('/', "-"));
    let e = emit_at(&scratch, bytes, binary, entry, make);
    check_loadable(&e.output);
    check_binutils(&e);
    e
}

/// Runs `written` and `original` with `args` on `input`, checks that they
/// exit with status 0 and give the same output, and returns it; with `same`
/// false, checks that the outputs differ instead.
fn compare(written: &Path, original: &Path, args: &[&str], input: &[u8], same: bool) -> Vec<u8> {
    let want = run_binary(original, args, input).unwrap();
    let got = run_binary(written, args, input).unwrap();
    let name = written.display();
    if !same {
        assert!(got.stdout != want.stdout, "{name}: the same bytes");
        return got.stdout;
    }
    assert_eq!(want.status.code(), Some(0), "{}", want.stderr_str());
    assert_eq!(got.status, want.status, "{name}: {}", got.stderr_str());
    assert_eq!(got.stderr, want.stderr, "{name}");
    assert!(got.stdout == want.stdout, "{name}: other bytes");
    got.stdout
}

/// `name` (a gzip) compresses with `bi_reverse` replaced by code without a
/// loop, in every variant; with the residual one bit off, its output differs.
fn gzip_with_bi_reverse_replaced(name: &str) {
    for (kind, bytes) in variants(name) {
        let entry = bi_reverse(&Binary::parse(bytes.clone()).unwrap());
        let (original, input) = (real_bin(name), corpus());
        let right = write(name, kind, bytes.clone(), entry, reverse_without_loop(0));
        let packed = compare(&right.path, &original, &["-c", "-n"], &input, true);
        let back = run_binary(&original, &["-d", "-c"], &packed).unwrap();
        assert!(back.stdout == input, "{name} ({kind}): not the corpus");
        let wrong = write(name, kind, bytes, entry, reverse_without_loop(1));
        compare(&wrong.path, &original, &["-c", "-n"], &input, false);
    }
}

#[test]
fn musl_gzip_runs_with_its_table_moved() {
    assert_eq!(variants("gzip-musl").len(), 1, "gzip-musl has no PT_NOTE");
    gzip_with_bi_reverse_replaced("gzip-musl");
}

#[test]
fn static_glibc_gzip_runs_with_its_note_reused_or_its_table_moved() {
    gzip_with_bi_reverse_replaced("gzip-glibc");
}

#[test]
fn debian_pie_gzip_runs_with_its_note_reused_or_its_table_moved() {
    gzip_with_bi_reverse_replaced("debian/gzip");
}

/// bzip2's `BZ2_indexIntoF(indx, cftab)`: a binary search for the last of
/// the 257 ascending `cftab` entries not above `indx`, which decompression
/// in small mode (`-s`) calls for the first byte of each block (the calls
/// for the others are inlined). The residual scans down from entry `start`:
/// 255 gives the same answer; 0, which answers 0, is wrong on purpose.
fn index_by_scan(start: u32) -> impl FnOnce(u32, &Binary) -> Residual {
    move |_, _| {
        let setup = asm(|a| {
            a.mov(edx, dword_ptr(esp + 8))?;
            a.mov(eax, start)
        });
        let test = asm(|a| {
            a.mov(ecx, dword_ptr(edx + eax * 4))?;
            a.cmp(ecx, dword_ptr(esp + 4))
        });
        let down = asm(|a| a.dec(eax));
        let blocks = vec![
            block(0, items(setup, 0), jump(1)),
            block(1, items(test, 0), branch(ConditionCode::g, 2, 3)),
            block(2, items(down, 0), jump(1)),
            block(3, items(asm(|a| a.ret()), 0), Terminator::Exit),
        ];
        residual(0, blocks)
    }
}

#[test]
fn static_glibc_bzip2_runs_with_its_note_reused_or_its_table_moved() {
    let (original, input) = (real_bin("bzip2-glibc"), corpus());
    // Blocks of 100 kB: three of them.
    let packed = run_binary(&original, &["-1", "-c"], &input).unwrap().stdout;
    let unpack = ["-d", "-s", "-c"];
    for (kind, bytes) in variants("bzip2-glibc") {
        let entry = symbol(&Binary::parse(bytes.clone()).unwrap(), "BZ2_indexIntoF");
        let right = write(
            "bzip2-glibc",
            kind,
            bytes.clone(),
            entry,
            index_by_scan(255),
        );
        let out = compare(&right.path, &original, &unpack, &packed, true);
        assert!(out == input, "bzip2-glibc ({kind}): not the corpus");
        let wrong = write("bzip2-glibc", kind, bytes, entry, index_by_scan(0));
        compare(&wrong.path, &original, &unpack, &packed, false);
    }
}

/// Debian's gzip (a PIE that ld.so loads through `AT_PHDR`) compacted:
/// `bi_reverse`'s body after the jump to its replacement and the unwind
/// tables left out. The new program header table must be mapped where
/// `PT_PHDR` says, which is where the kernel's `AT_PHDR` points (before
/// and after Linux 5.18), and the program must still compress as the
/// original does.
#[test]
fn a_compacted_pie_loads_its_new_program_header_table_and_runs() {
    let name = "debian/gzip";
    let (kind, bytes) = variants(name).remove(0);
    let binary = Binary::parse(bytes.clone()).unwrap();
    let entry = bi_reverse(&binary);
    let full = write(name, kind, bytes, entry, reverse_without_loop(0));
    let body_end = binary
        .read(entry, 256)
        .unwrap()
        .iter()
        .position(|&b| b == 0xc3)
        .expect("bi_reverse returns") as u32;
    let mut ranges = vec![(entry + 5, entry + body_end + 1)];
    for name in [".eh_frame_hdr", ".eh_frame"] {
        let s = binary.section(name).unwrap();
        ranges.push((s.addr, s.addr + s.size));
    }
    let compact = wiper_emit::compact_elf(&full.output, &wiper_emit::Dropped { ranges }).unwrap();
    assert!(compact.len() < full.output.len());
    check_loadable(&compact);
    let path = scratch_file("debian-gzip-compacted", &compact);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    compare(&path, &real_bin(name), &["-c", "-n"], &corpus(), true);
}
