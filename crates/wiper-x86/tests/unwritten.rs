//! Writable objects no code writes (`unwritten_objects`), on globals.c:
//! `primes` is never written and its address never escapes; `weights` is
//! stored to; `scratch`'s address is passed to a function.

use wiper_testkit::testdata_bin;

/// The named objects of `binary` among the unwritten ranges.
fn unwritten_names(binary: &str) -> Vec<String> {
    let elf = wiper_elf::Binary::open(&testdata_bin(binary)).unwrap();
    let ranges = wiper_x86::unwritten_objects(&elf);
    elf.symbols
        .iter()
        .filter(|s| ranges.contains(&(s.addr, s.addr + s.size)))
        .map(|s| s.name.clone())
        .collect()
}

#[test]
fn only_objects_nothing_writes_are_unwritten() {
    for level in ["O0", "O1", "O2"] {
        let names = unwritten_names(&format!("globals-{level}"));
        assert!(names.contains(&"primes".to_owned()), "{level}: {names:?}");
        assert!(!names.contains(&"weights".to_owned()), "{level}: {names:?}");
        assert!(!names.contains(&"scratch".to_owned()), "{level}: {names:?}");
    }
    // -O0 keeps the computed-goto table in .data; nothing writes it.
    assert!(unwritten_names("globals-O0").contains(&"dispatch.0".to_owned()));
}

/// Position-independent code reaches globals relative to the GOT
/// (`[ebx+crc@GOTOFF]`): the real static binaries (PIC glibc and musl, and
/// gzip itself compiled as PIE) get no unwritten objects, though gzip's
/// `crc` would look unwritten to a sweep for absolute addresses.
#[test]
fn position_independent_code_gets_none() {
    for b in [
        "real/gzip-musl",
        "real/gzip-glibc",
        "real/bzip2-glibc",
        "real/lua-glibc",
    ] {
        let path = wiper_testkit::testdata_dir().join(b);
        let elf = wiper_elf::Binary::open(&path).unwrap();
        assert_eq!(wiper_x86::unwritten_objects(&elf), vec![], "{b}");
    }
}
