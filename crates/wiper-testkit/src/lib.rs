//! Test helpers shared by every wiper crate's tests.
//!
//! wiper's test bed lives in `<workspace>/testdata`: small C programs built
//! as 32-bit i386 executables and committed in `testdata/bin/` (see
//! `testdata/README.md`). This crate finds those binaries and runs them
//! natively (the test machines execute IA-32 ELF files directly), with a
//! timeout, so a differential test can compare an original binary with a
//! residual one without ever hanging the suite.
//!
//! [`count_instructions`] runs a binary single-stepped under `ptrace` and
//! counts the instructions it executes: a deterministic measure of a
//! residual's speed.
//!
//! It has no dependencies and is meant as a dev-dependency only.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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
    "fill",
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
/// `abn`, `loops`, `recursion`, `switch`, `calls`, `interp`, `wide`, `fill`), so tests can
/// loop over all of them.
pub fn rt_programs() -> &'static [&'static str] {
    RT_PROGRAMS
}

/// The optimization levels the binaries are built at: `["O0", "O1", "O2"]`,
/// as used in binary names like `power-O1`.
pub fn opt_levels() -> &'static [&'static str] {
    OPT_LEVELS
}

/// Every file in `testdata/bin`, sorted by path, for tests that should hold
/// for any binary (e.g. "the ELF loader accepts it").
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
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// How a program run ended: the distinction matters when comparing an
/// original binary with a residual one (a crash must not look like an exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Termination {
    /// The program exited with this status (0..=255 on Linux).
    Exited(i32),
    /// The program was killed by this signal number (e.g. 11 for SIGSEGV).
    Signaled(i32),
}

impl Termination {
    /// Converts a standard [`ExitStatus`] into a [`Termination`].
    ///
    /// # Panics
    ///
    /// Panics if the status has neither an exit code nor a signal, which
    /// does not happen for a child that has been waited for.
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Termination::Exited(code),
            (None, Some(sig)) => Termination::Signaled(sig),
            (None, None) => panic!("exit status {status:?} has neither code nor signal"),
        }
    }

    /// The exit code, or `None` if the program was killed by a signal.
    pub fn code(self) -> Option<i32> {
        match self {
            Termination::Exited(code) => Some(code),
            Termination::Signaled(_) => None,
        }
    }
}

/// Everything observable about one run of a program: what differential
/// tests compare between the original and the residual binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// All bytes the program wrote to standard output.
    pub stdout: Vec<u8>,
    /// All bytes the program wrote to standard error.
    pub stderr: Vec<u8>,
    /// Whether it exited (with which code) or was killed by a signal.
    pub status: Termination,
}

impl RunOutput {
    /// Standard output as text (invalid UTF-8 replaced), for readable asserts.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Standard output split into lines (without the newlines): our test
    /// programs print one result per line.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_str().lines().map(str::to_owned).collect()
    }
}

/// Runs the executable at `path` natively with `args`, feeding it `stdin`,
/// and collects its output; gives up after [`DEFAULT_TIMEOUT`].
///
/// # Errors
///
/// Returns the spawn or I/O error if the program cannot be run, and an error
/// of kind [`io::ErrorKind::TimedOut`] if it ran too long (it is killed).
pub fn run_binary(path: &Path, args: &[&str], stdin: &[u8]) -> io::Result<RunOutput> {
    run_binary_with_timeout(path, args, stdin, DEFAULT_TIMEOUT)
}

/// Linux `ETXTBSY`: the executable is open for writing.
const ETXTBSY: i32 = 26;

/// Like [`run_binary`], but with an explicit `timeout` after which the
/// program is killed and an error of kind [`io::ErrorKind::TimedOut`] is
/// returned.
///
/// Standard input is written from its own thread and both outputs are read
/// by their own threads, so a program that ignores its input or writes a lot
/// cannot deadlock against us.
///
/// # Errors
///
/// Returns the spawn or I/O error if the program cannot be run, and a
/// `TimedOut` error if it ran longer than `timeout`.
pub fn run_binary_with_timeout(
    path: &Path,
    args: &[&str],
    stdin: &[u8],
    timeout: Duration,
) -> io::Result<RunOutput> {
    // A file just written by this (multithreaded) test process can be
    // briefly "busy" (ETXTBSY): another thread's child may still hold the
    // write descriptor it inherited at fork. Retry for a while.
    let mut attempt = 0;
    let mut child = loop {
        let spawned = Command::new(path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < 200 => {
                attempt += 1;
                thread::sleep(Duration::from_millis(10));
            }
            other => {
                break other.map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot run {}: {e}", path.display()))
                })?
            }
        }
    };

    let io_threads = ChildIo::start(&mut child, stdin);

    let status = match wait_with_deadline(&mut child, timeout)? {
        Some(status) => status,
        None => {
            // Kill and reap; the reader threads then see EOF and finish.
            let _ = child.kill();
            let _ = child.wait();
            io_threads.abandon();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} {:?} ran longer than {:?} and was killed",
                    path.display(),
                    args,
                    timeout
                ),
            ));
        }
    };

    let (stdout, stderr) = io_threads.finish()?;
    Ok(RunOutput {
        stdout,
        stderr,
        status: Termination::from_status(status),
    })
}

/// The threads that feed a child's standard input and collect its standard
/// output and error (all three piped).
pub(crate) struct ChildIo {
    writer: thread::JoinHandle<io::Result<()>>,
    stdout: thread::JoinHandle<io::Result<Vec<u8>>>,
    stderr: thread::JoinHandle<io::Result<Vec<u8>>>,
}

impl ChildIo {
    /// Starts writing `stdin` to `child` and reading its output.
    pub(crate) fn start(child: &mut std::process::Child, stdin: &[u8]) -> ChildIo {
        let input = stdin.to_vec();
        let mut child_stdin = child.stdin.take().expect("stdin is piped");
        let writer = thread::spawn(move || {
            // A program may exit without reading all of its input: that
            // gives a broken pipe here, which is not an error of the run.
            match child_stdin.write_all(&input) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
                _ => Ok(()),
            }
            // Dropping child_stdin closes the pipe, so the program sees EOF.
        });
        ChildIo {
            writer,
            stdout: spawn_reader(child.stdout.take().expect("stdout is piped")),
            stderr: spawn_reader(child.stderr.take().expect("stderr is piped")),
        }
    }

    /// Waits for the threads of a child that was killed, ignoring errors.
    pub(crate) fn abandon(self) {
        let _ = self.writer.join();
        let _ = self.stdout.join();
        let _ = self.stderr.join();
    }

    /// Waits for the threads of a child that exited: its stdout and stderr.
    pub(crate) fn finish(self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        self.writer.join().expect("stdin writer thread panicked")?;
        let stdout = self.stdout.join().expect("stdout reader thread panicked")?;
        let stderr = self.stderr.join().expect("stderr reader thread panicked")?;
        Ok((stdout, stderr))
    }
}

/// Reads `pipe` to its end on a new thread.
fn spawn_reader<R: Read + Send + 'static>(mut pipe: R) -> thread::JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        pipe.read_to_end(&mut buf)?;
        Ok(buf)
    })
}

/// Polls `child` until it exits (`Some(status)`) or `timeout` passes (`None`).
fn wait_with_deadline(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
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
