//! Test helpers shared by every wiper crate's tests.
//!
//! wiper's test bed lives in `<workspace>/testdata`: small C programs built
//! as 32-bit i386 executables and committed in `testdata/bin/` (see
//! `testdata/README.md`). This crate finds those binaries and runs them
//! natively (the test machines execute IA-32 ELF files directly, through
//! `wiper-run`), with a timeout, so a differential test can compare an
//! original binary with a residual one without ever hanging the suite.
//!
//! [`count_instructions`] runs a binary single-stepped under `ptrace` and
//! counts the instructions it executes: a deterministic measure of a
//! residual's speed.
//!
//! Running a program is `wiper-run`'s (re-exported here); this crate is
//! meant as a dev-dependency only.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod steps;

pub use steps::count_instructions;

/// The programs built against the tiny `testdata/rt` runtime; each has the
/// binaries `<name>-O0`, `<name>-O1` and `<name>-O2` in `testdata/bin`.
const RT_PROGRAMS: &[&str] = &[
    "power",
    "prod",
    "abn",
    "loops",
    "recursion",
    "switch",
    "calls",
    "interp",
    "wide",
    "fpu",
    "fill",
    "divide",
    "globals",
    // The wider benchmark's programs (issue 14).
    "cgvm",
    "bftable",
    "expr",
    "regex",
    "fmt",
    "arrays",
    "modpow",
    // glibc's `rep stosd`/`rep movsd` shapes (docs/specialization.md).
    "search",
    // A call to an undefined weak function (`call 0`) behind a test.
    "weak",
    // A variable-length array (`sub esp, eax`).
    "vla",
    // Loops under dynamic control leaving static data in ever new
    // combinations (a heap in local arrays, a digit buffer).
    "codelen",
    // A store at an unchecked index beside a static argument (guarded
    // stores).
    "scatter",
    // A stack pointer loaded from memory the specializer does not know.
    "loststack",
    // Addresses into a local array that travel through registers.
    "framereg",
];

/// The optimization levels every rt program (and `libc_demo`) is built at.
const OPT_LEVELS: &[&str] = &["O0", "O1", "O2"];

/// How long [`run_binary`] lets a program run before killing it: generous
/// for our tiny programs, short enough that a residual binary stuck in a
/// loop fails its test instead of hanging the suite.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Absolute path of the workspace's `testdata` directory.
///
/// Found from this crate's manifest directory (`crates/wiper-testkit/../../testdata`),
/// so it works whichever crate's test calls it and from any working directory.
pub fn testdata_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    // Canonicalize for tidy paths in messages; fall back to the joined path.
    dir.canonicalize().unwrap_or(dir)
}

/// Path of the committed binary `testdata/bin/<name>`, e.g. `"power-O2"`.
///
/// # Panics
///
/// Panics with a message naming the path if the file does not exist, since a
/// test cannot do anything useful without it.
pub fn testdata_bin(name: &str) -> PathBuf {
    let path = testdata_dir().join("bin").join(name);
    assert!(
        path.is_file(),
        "test binary {} is missing: it should be committed; rebuild with \
         `make -C testdata` (needs gcc-multilib)",
        path.display()
    );
    path
}

/// The binaries of the real-world test bed, `testdata/real/` (made by its
/// `build.sh`), by name: `debian/gzip`, `debian/bzip2` (Debian's own, PIE,
/// stripped), `gzip-glibc`, `gzip-musl`, `bzip2-glibc`, `lua-glibc`
/// (static, -O2, with symbols).
pub const REAL_BINARIES: &[&str] = &[
    "debian/gzip",
    "debian/bzip2",
    "gzip-glibc",
    "gzip-musl",
    "bzip2-glibc",
    "lua-glibc",
];

/// Path of the committed real-world binary `testdata/real/<name>` (one of
/// [`REAL_BINARIES`]).
///
/// # Panics
///
/// Panics with a message naming the path if the file does not exist.
pub fn real_bin(name: &str) -> PathBuf {
    let path = testdata_dir().join("real").join(name);
    assert!(
        path.is_file(),
        "real test binary {} is missing: it should be committed; remake it \
         with testdata/real/build.sh",
        path.display()
    );
    path
}

/// Names of the programs linked against the tiny runtime (`power`, `prod`,
/// `abn`, `loops`, `recursion`, `switch`, `calls`, `interp`, `wide`, `fpu`,
/// `fill`), so tests can loop over all of them.
pub fn rt_programs() -> &'static [&'static str] {
    RT_PROGRAMS
}

/// The optimization levels the binaries are built at: `["O0", "O1", "O2"]`,
/// as used in binary names like `power-O1`.
pub fn opt_levels() -> &'static [&'static str] {
    OPT_LEVELS
}

/// Every file in `testdata/bin`, sorted by path, for tests that should hold
/// for any binary (e.g. "the ELF loader accepts it"). wiper's own outputs
/// written beside their input (`NAME.FUNCTION.specialized`, as README's main
/// job leaves one) are not testdata and are left out.
///
/// # Panics
///
/// Panics if `testdata/bin` cannot be read.
pub fn all_binaries() -> Vec<PathBuf> {
    let dir = testdata_dir().join("bin");
    let entries =
        fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
                .path()
        })
        .filter(|path| path.is_file() && path.extension() != Some("specialized".as_ref()))
        .collect();
    files.sort();
    files
}

/// The functions the source of a testdata program linked with the C
/// library defines, by the binary's file name (`libc_demo-O2`): in a
/// static one everything else is glibc's. `None` for the rt programs, whose
/// every function is their own.
pub fn own_functions(binary_name: &str) -> Option<&'static [&'static str]> {
    if binary_name.starts_with("libc_demo") {
        Some(&["main", "sort_and_sum", "classify", "power", "cmp_int"])
    } else if binary_name.starts_with("canary") {
        Some(&["main", "checksum", "bump"])
    } else if binary_name.starts_with("stackprobe") {
        Some(&["main", "print_entry"])
    } else {
        None
    }
}

pub use wiper_run::{run_binary_with_timeout, ChildIo, Outcome, RunOutput, Termination};

/// Runs the executable at `path` natively with `args`, feeding it `stdin`,
/// and collects its output; gives up after [`DEFAULT_TIMEOUT`] (through
/// `wiper-run`, the one home for running programs).
///
/// # Errors
///
/// Returns the spawn or I/O error if the program cannot be run, and an error
/// of kind [`io::ErrorKind::TimedOut`] if it ran too long (it is killed).
pub fn run_binary(path: &Path, args: &[&str], stdin: &[u8]) -> io::Result<RunOutput> {
    run_binary_with_timeout(path, args, stdin, DEFAULT_TIMEOUT)
}

/// Removes `wiper-test-PID-N` directories under the temp directory whose
/// process `PID` is gone (on Linux: no `/proc/PID`).
fn remove_stale_scratch() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("wiper-test-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Writes `bytes` to a fresh file named `name` in a directory of its own under the
/// system temp directory, and returns its path: for tests that need a damaged or
/// hand-made input file. Each call gets a new directory, so parallel tests never
/// share a file.
///
/// The first call in a process removes the scratch directories of test
/// processes that have ended, so runs do not pile files up in the temp
/// directory.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(remove_stale_scratch);
    let dir = std::env::temp_dir().join(format!(
        "wiper-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write scratch file");
    path
}

#[cfg(test)]
mod scratch_tests {
    use super::*;

    #[test]
    fn scratch_directories_of_ended_processes_are_removed() {
        // No process has a PID this large (the kernel's limit is 2^22).
        let stale = std::env::temp_dir().join("wiper-test-4000000000-0");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("f"), b"x").unwrap();
        let mine = scratch_file("kept", b"y");
        remove_stale_scratch();
        assert!(!stale.exists(), "{} still there", stale.display());
        assert!(mine.exists(), "this process's own scratch file was removed");
    }
}
