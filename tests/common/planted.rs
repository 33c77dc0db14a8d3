//! A residual binary with a planted miscompilation, for the tests of
//! `wiper check` (text and JSON): power-O2 specialized for y = 3, n = 5,
//! then patched.

use super::{path_arg, wiper};
use wiper_testkit::{scratch_file, testdata_bin};

/// A scratch path for a residual binary (the directory is this test's own).
pub fn out_path(name: &str) -> String {
    path_arg(&scratch_file(name, b"")).to_owned()
}

/// Writes power-O2 specialized for y = 3, n = 5 to a scratch file and
/// returns its path and the residual listing.
pub fn power_residual(name: &str) -> (String, String) {
    let out = out_path(name);
    let bin = testdata_bin("power-O2");
    let b = path_arg(&bin);
    let statics = ["--static", "arg1=3", "--static", "arg2=5"];
    let mut args = vec!["specialize", b, "-f", "power", "-o", &out];
    args.extend(statics);
    assert!(wiper(&args).status.success());
    let mut args = vec!["specialize", b, "-f", "power", "--emit", "asm"];
    args.extend(statics);
    let listing = String::from_utf8_lossy(&wiper(&args).stdout).into_owned();
    (out, listing)
}

/// Overwrites the bytes of the residual binary at `path` at virtual
/// address `addr` with `bytes`.
pub fn patch(path: &str, addr: u32, bytes: &[u8]) {
    let binary = wiper_elf::Binary::open(std::path::Path::new(path)).unwrap();
    let seg = binary.segment_at(addr).unwrap();
    let at = (addr - seg.vaddr + seg.offset) as usize;
    let mut file = std::fs::read(path).unwrap();
    file[at..at + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, file).unwrap();
}

/// The address of the first listing line whose text contains `needle`, and
/// its code bytes.
pub fn find_instruction(listing: &str, needle: &str) -> (u32, Vec<u8>) {
    let line = listing
        .lines()
        .find(|l| l.starts_with("  ") && l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in the residual:\n{listing}"));
    let mut words = line.split_whitespace();
    let addr = u32::from_str_radix(words.next().unwrap(), 16).unwrap();
    let bytes = words
        .take_while(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|w| u8::from_str_radix(w, 16).unwrap())
        .collect();
    (addr, bytes)
}

/// The residual of power(x, 3, 5) = (x + 3)^5 with `lea ecx,[edx+0x3]`
/// made `[edx+0x4]`: a planted miscompilation.
pub fn miscompiled_power(name: &str) -> String {
    let (out, listing) = power_residual(name);
    let (addr, mut bytes) = find_instruction(&listing, "+0x3]");
    assert_eq!(bytes.last(), Some(&3), "a disp8 of 3: {bytes:x?}");
    *bytes.last_mut().unwrap() = 4;
    patch(&out, addr, &bytes);
    out
}
