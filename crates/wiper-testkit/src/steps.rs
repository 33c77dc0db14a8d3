//! Counting the instructions a program executes, by single-stepping it
//! under `ptrace(2)`: an exact, deterministic count (not a timing), with no
//! tool beyond the kernel. Slow (two context switches per instruction), so
//! only for runs of up to a few million instructions.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use crate::{ChildIo, RunOutput, Termination};

/// `PTRACE_TRACEME`: the child asks to be traced by its parent.
const PTRACE_TRACEME: i32 = 0;
/// `PTRACE_SINGLESTEP`: resume the tracee for one instruction.
const PTRACE_SINGLESTEP: i32 = 9;
/// `SIGTRAP`: the stop after each single step (and after `execve`).
const SIGTRAP: i32 = 5;
/// `SIGKILL`.
const SIGKILL: i32 = 9;

extern "C" {
    fn ptrace(request: i32, ...) -> i64;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Waits for the traced child `pid` to stop or end; returns the raw status.
fn wait_for(pid: i32) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes one int through a valid pointer.
        let r = unsafe { waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Runs the executable at `path` natively with `args` and `stdin`,
/// single-stepping it from its first instruction (after `execve`) to its
/// end, and returns the number of instructions it executed (each iteration
/// of a `rep` string instruction counts once, as does each system call) and
/// its output.
///
/// Must run on one thread from start to end (the tracer is the thread that
/// spawned the program).
///
/// # Errors
///
/// Returns the spawn, `ptrace` or I/O error, or an error of kind
/// [`io::ErrorKind::TimedOut`] if the program executed more than `limit`
/// instructions (it is killed).
pub fn count_instructions(
    path: &Path,
    args: &[&str],
    stdin: &[u8],
    limit: u64,
) -> io::Result<(u64, RunOutput)> {
    let mut command = Command::new(path);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before execve and only
    // makes one async-signal-safe system call.
    unsafe {
        command.pre_exec(|| {
            if ptrace(PTRACE_TRACEME, 0i32, 0usize, 0usize) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", path.display())))?;
    let pid = child.id() as i32;
    let io_threads = ChildIo::start(&mut child, stdin);

    // The first stop is the SIGTRAP of execve: nothing executed yet.
    let mut status = wait_for(pid)?;
    let mut steps = 0u64;
    let ended = loop {
        if status & 0xff != 0x7f {
            break status; // exited or killed: not a stop
        }
        // A single step stops with SIGTRAP; any other signal is the
        // program's own, passed on.
        let sig = (status >> 8) & 0xff;
        let deliver = if sig == SIGTRAP { 0 } else { sig };
        if steps >= limit {
            // SAFETY: plain system call on our own child.
            unsafe { kill(pid, SIGKILL) };
            let _ = wait_for(pid);
            io_threads.abandon();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} {args:?} ran more than {limit} instructions",
                    path.display()
                ),
            ));
        }
        // SAFETY: single-steps our stopped tracee, delivering `deliver`.
        if unsafe { ptrace(PTRACE_SINGLESTEP, pid, 0usize, deliver as usize) } == -1 {
            return Err(io::Error::last_os_error());
        }
        steps += 1;
        status = wait_for(pid)?;
    };
    let (stdout, stderr) = io_threads.finish()?;
    Ok((
        steps,
        RunOutput {
            stdout,
            stderr,
            status: Termination::from_status(ExitStatus::from_raw(ended)),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{run_binary, testdata_bin};

    /// Counts of `power X Y N` on power-O2.
    fn power(n: &str) -> (u64, RunOutput) {
        count_instructions(&testdata_bin("power-O2"), &["3", "4", n], b"", 1_000_000)
            .expect("count power-O2")
    }

    /// The count is deterministic, grows with the loop's trip count, and
    /// the output is the one of a plain run.
    #[test]
    fn counts_are_exact_and_grow_with_the_work() {
        let (a, out) = power("5");
        assert_eq!(power("5").0, a);
        let (b, _) = power("50");
        assert!(a > 20 && b > a + 45, "power 5: {a}, power 50: {b}");
        let plain = run_binary(&testdata_bin("power-O2"), &["3", "4", "5"], b"").unwrap();
        assert_eq!(out, plain);
    }

    /// A program that runs longer than the limit is killed.
    #[test]
    fn the_limit_stops_a_run() {
        let err = count_instructions(&testdata_bin("power-O2"), &["3", "4", "50"], b"", 30)
            .expect_err("over the limit");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
