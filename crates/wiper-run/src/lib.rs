//! The one home for running i386 programs: the `wiper` command line
//! (`compare`, `check`) and every test run binaries through this crate
//! (`wiper-testkit` re-exports it).
//!
//! A program runs natively (the machines wiper runs on execute IA-32 ELF
//! files directly) with its arguments, an optional `argv[0]`, bytes on
//! standard input and a timeout, so a residual binary stuck in a loop is a
//! result ([`Outcome::TimedOut`]), never a hang. It has no dependencies.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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

impl fmt::Display for Termination {
    /// `exit status 3`, or `killed by signal 11 (SIGSEGV)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Termination::Exited(code) => write!(f, "exit status {code}"),
            Termination::Signaled(sig) => {
                write!(f, "killed by signal {sig} ({})", signal_name(sig))
            }
        }
    }
}

/// The name of Linux signal `n` (i386 and x86-64 numbering).
pub fn signal_name(n: i32) -> &'static str {
    const NAMES: [&str; 32] = [
        "?",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("a real-time signal")
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

impl fmt::Display for RunOutput {
    /// `"stdout", exit status N` and, when there was any, the stderr on
    /// the next line; each line ends with a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:?}, {}", self.stdout_str(), self.status)?;
        if !self.stderr.is_empty() {
            writeln!(f, "  stderr: {:?}", self.stderr_str())?;
        }
        Ok(())
    }
}

/// What a run with a timeout came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The program ended by itself.
    Finished(RunOutput),
    /// It ran longer than this and was killed (its output is dropped).
    TimedOut(Duration),
}

impl fmt::Display for Outcome {
    /// A finished run as [`RunOutput`] shows it, or `timed out after 10 s`
    /// (with a newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Finished(run) => run.fmt(f),
            Outcome::TimedOut(t) => writeln!(f, "timed out after {} s", t.as_secs_f64()),
        }
    }
}

/// One program run to make: the executable, its `argv[0]`, its arguments,
/// its standard input and how long it may take.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The executable. A bare file name is the file in the current
    /// directory, never a program looked up on `PATH`.
    pub path: &'a Path,
    /// `argv[0]`, when it should differ from `path`.
    pub argv0: Option<&'a Path>,
    /// The program's arguments.
    pub args: &'a [&'a str],
    /// The bytes on its standard input (then end of file).
    pub stdin: &'a [u8],
    /// Variables added to (or replacing those of) the inherited
    /// environment, as `(NAME, VALUE)`.
    pub env: &'a [(&'a str, &'a str)],
    /// How long it may run before it is killed.
    pub timeout: Duration,
}

/// Linux `ETXTBSY`: the executable is open for writing.
const ETXTBSY: i32 = 26;

/// `path`, with `./` before a bare file name so that it is never looked up
/// on `PATH`.
fn runnable(path: &Path) -> PathBuf {
    if path.components().count() == 1 && path.is_relative() {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    }
}

/// Starts the program of `inv` with all three standard streams piped.
fn spawn(inv: &Invocation<'_>) -> io::Result<Child> {
    // A file just written by this (multithreaded) process can be briefly
    // "busy" (ETXTBSY): another thread's child may still hold the write
    // descriptor it inherited at fork. Retry for a while.
    let mut attempt = 0;
    loop {
        let mut command = Command::new(runnable(inv.path));
        if let Some(argv0) = inv.argv0 {
            command.arg0(argv0);
        }
        let spawned = command
            .args(inv.args)
            .envs(inv.env.iter().copied())
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
                return other.map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot run {}: {e}", inv.path.display()))
                })
            }
        }
    }
}

/// Runs the program of `inv` natively and collects its output, or kills it
/// once its timeout has passed.
///
/// Standard input is written from its own thread and both outputs are read
/// by their own threads, so a program that ignores its input or writes a lot
/// cannot deadlock against us.
///
/// # Errors
///
/// Returns the spawn or I/O error if the program cannot be run.
pub fn run(inv: &Invocation<'_>) -> io::Result<Outcome> {
    let mut child = spawn(inv)?;
    let io_threads = ChildIo::start(&mut child, inv.stdin);
    match wait_with_deadline(&mut child, inv.timeout)? {
        Some(status) => {
            let (stdout, stderr) = io_threads.finish()?;
            Ok(Outcome::Finished(RunOutput {
                stdout,
                stderr,
                status: Termination::from_status(status),
            }))
        }
        None => {
            // Kill and reap; the reader threads then see EOF and finish.
            let _ = child.kill();
            let _ = child.wait();
            io_threads.abandon();
            Ok(Outcome::TimedOut(inv.timeout))
        }
    }
}

/// Runs the executable at `path` with `args`, feeding it `stdin`, and
/// collects its output; a run longer than `timeout` is an error.
///
/// # Errors
///
/// Returns the spawn or I/O error if the program cannot be run, and an
/// error of kind [`io::ErrorKind::TimedOut`] if it ran longer than
/// `timeout` (it is killed).
pub fn run_binary_with_timeout(
    path: &Path,
    args: &[&str],
    stdin: &[u8],
    timeout: Duration,
) -> io::Result<RunOutput> {
    let inv = Invocation {
        path,
        argv0: None,
        args,
        stdin,
        env: &[],
        timeout,
    };
    match run(&inv)? {
        Outcome::Finished(out) => Ok(out),
        Outcome::TimedOut(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{} {:?} ran longer than {:?} and was killed",
                path.display(),
                args,
                timeout
            ),
        )),
    }
}

/// The threads that feed a child's standard input and collect its standard
/// output and error (all three piped): for callers that start a program
/// their own way (`wiper-testkit` traces one under `ptrace`).
pub struct ChildIo {
    writer: thread::JoinHandle<io::Result<()>>,
    stdout: thread::JoinHandle<io::Result<Vec<u8>>>,
    stderr: thread::JoinHandle<io::Result<Vec<u8>>>,
}

impl ChildIo {
    /// Starts writing `stdin` to `child` and reading its output.
    ///
    /// # Panics
    ///
    /// If the child's three standard streams are not piped.
    pub fn start(child: &mut Child, stdin: &[u8]) -> ChildIo {
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
    pub fn abandon(self) {
        let _ = self.writer.join();
        let _ = self.stdout.join();
        let _ = self.stderr.join();
    }

    /// Waits for the threads of a child that exited: its stdout and stderr.
    ///
    /// # Errors
    ///
    /// The I/O error of writing the input or reading an output.
    ///
    /// # Panics
    ///
    /// If one of the threads panicked.
    pub fn finish(self) -> io::Result<(Vec<u8>, Vec<u8>)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named() {
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(31), "SIGSYS");
        assert_eq!(signal_name(40), "a real-time signal");
        assert_eq!(
            Termination::Signaled(11).to_string(),
            "killed by signal 11 (SIGSEGV)"
        );
        assert_eq!(Termination::Exited(3).to_string(), "exit status 3");
    }

    /// The variables of `env` reach the program, over the inherited ones.
    #[test]
    fn env_reaches_the_program() {
        let inv = Invocation {
            path: Path::new("/bin/sh"),
            argv0: None,
            args: &["-c", "echo \"$WIPER_RUN_PROBE\" \"$PATH\""],
            stdin: b"",
            env: &[("WIPER_RUN_PROBE", "seen"), ("PATH", "/nowhere")],
            timeout: Duration::from_secs(20),
        };
        let Outcome::Finished(out) = run(&inv).unwrap() else {
            panic!("timed out");
        };
        assert_eq!(out.stdout, b"seen /nowhere\n");
    }

    /// A run longer than its timeout is killed and reported, not waited for.
    #[test]
    fn a_run_past_its_timeout_is_an_outcome() {
        let started = Instant::now();
        let inv = Invocation {
            path: Path::new("/bin/sleep"),
            argv0: None,
            args: &["5"],
            stdin: b"",
            env: &[],
            timeout: Duration::from_millis(200),
        };
        let outcome = run(&inv).unwrap();
        assert_eq!(outcome, Outcome::TimedOut(Duration::from_millis(200)));
        assert_eq!(outcome.to_string(), "timed out after 0.2 s\n");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
