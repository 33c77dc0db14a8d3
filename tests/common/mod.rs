//! Helpers shared by the command-line tests: running `wiper`, asserting its
//! one-line errors, and patching testdata binaries.

#![allow(dead_code)] // each test file uses a different subset

pub mod cases;
pub mod planted;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wiper_testkit::{scratch_file, testdata_bin};

/// Runs the `wiper` binary under test.
pub fn wiper(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wiper"))
        .args(args)
        .output()
        .expect("run wiper")
}

/// A path as a command-line argument.
pub fn path_arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs wiper expecting failure: exit status 2, empty stdout, and exactly one stderr
/// line that contains `expected`.
pub fn assert_fails(args: &[&str], expected: &str) {
    let out = wiper(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: no output on failure");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    assert!(stderr.starts_with("wiper: error: "), "{stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: `{stderr}` should mention `{expected}`"
    );
}

/// Runs wiper expecting success, and returns its stdout.
pub fn stdout_of(args: &[&str]) -> String {
    let out = wiper(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A copy of the testdata binary `name` with `patch` applied, in a scratch file.
pub fn patched(name: &str, file: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(testdata_bin(name)).unwrap();
    patch(&mut bytes);
    scratch_file(file, &bytes)
}

/// File offset of the virtual address `addr` in the testdata binary `name`.
pub fn file_offset(name: &str, addr: u32) -> usize {
    let binary = wiper_elf::Binary::open(&testdata_bin(name)).unwrap();
    let seg = binary.segment_at(addr).unwrap();
    (addr - seg.vaddr + seg.offset) as usize
}
