//! Writing the harness to a temporary executable, streaming states through it
//! and decoding the outcomes.

use std::fs;
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::harness::{build_elf, HarnessConfig};
use crate::layout::*;
use crate::state::{flags, CpuState, Fault, Outcome};
use crate::{is_landing_address, OracleError, RunOptions};

/// Validates the batch, builds the harness and runs every state.
pub(crate) fn run(
    code: &[u8],
    states: &[CpuState],
    opts: &RunOptions,
) -> Result<Vec<Outcome>, OracleError> {
    if code.len() > MAX_CODE_LEN {
        return Err(OracleError::CodeTooLong {
            len: code.len(),
            max: MAX_CODE_LEN,
        });
    }
    let Some(first) = states.first() else {
        return Ok(Vec::new());
    };
    let mem_len = first.mem.len();
    if mem_len > MAX_SCRATCH_SIZE {
        return Err(OracleError::MemoryTooLarge {
            len: mem_len,
            max: MAX_SCRATCH_SIZE,
        });
    }
    if let Some((index, s)) = states
        .iter()
        .enumerate()
        .find(|(_, s)| s.mem.len() != mem_len)
    {
        return Err(OracleError::MemorySizeMismatch {
            index,
            len: s.mem.len(),
            expected: mem_len,
        });
    }
    if states.len() > u32::MAX as usize {
        return Err(OracleError::Protocol("more than 2^32 states".into()));
    }

    let layout = Layout::new(code.len(), mem_len);
    let cfg = HarnessConfig {
        timeout_ms: opts.timeout_ms,
    };
    let elf = build_elf(code, &layout, &cfg)?;
    let exe = TempExe::create(&elf)?;

    let mut outcomes = Vec::with_capacity(states.len());
    while outcomes.len() < states.len() {
        let start = outcomes.len();
        let status = run_process(&exe.path, &layout, states, start, &mut outcomes)?;
        if outcomes.len() == states.len() {
            if !status.success() {
                return Err(OracleError::Harness(format!(
                    "harness ended with {status} after the last state"
                )));
            }
            break;
        }
        if let Some(code) = status.code() {
            if matches!(
                code as u32,
                EXIT_SIGALTSTACK
                    | EXIT_SIGACTION
                    | EXIT_READ
                    | EXIT_PARTIAL
                    | EXIT_WRITE
                    | EXIT_SETITIMER
                    | EXIT_SET_THREAD_AREA
            ) {
                return Err(OracleError::Harness(format!(
                    "harness failed with exit code {code} at state {}",
                    outcomes.len()
                )));
            }
        }
        // The process ended early: blame the state it was running and go on
        // with a fresh process from the next one.
        let i = outcomes.len();
        outcomes.push(Outcome {
            state: states[i].clone(),
            next_eip: CODE_BASE,
            fault: Some(Fault::ProcessDied {
                status: status.to_string(),
            }),
        });
    }
    Ok(outcomes)
}

/// A harness executable in the temporary directory, removed on drop.
struct TempExe {
    path: PathBuf,
}

impl TempExe {
    fn create(bytes: &[u8]) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::var_os("WIPER_ORACLE_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let path = dir.join(format!(
            "wiper-oracle-{}-{n}-{nanos:08x}",
            std::process::id()
        ));
        let exe = Self { path };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&exe.path)?;
        // No fsync: the kernel runs the file from its page cache, and an
        // fsync per batch made the processor tests wait on the disk (the
        // optimizer's took twice as long).
        f.write_all(bytes)?;
        drop(f);
        Ok(exe)
    }
}

impl Drop for TempExe {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Spawns the executable, retrying on `ETXTBSY`: another thread of this
/// process may have forked while our write handle was still open, and its child
/// keeps the handle until it calls `exec`.
fn spawn(path: &Path) -> io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut attempt = 0;
    loop {
        match Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < 200 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5 * attempt.min(20)));
            }
            r => return r,
        }
    }
}

/// Runs one harness process over `states[start..]`, appending outcomes until
/// it exits; returns its exit status.
fn run_process(
    path: &Path,
    l: &Layout,
    states: &[CpuState],
    start: usize,
    outcomes: &mut Vec<Outcome>,
) -> Result<ExitStatus, OracleError> {
    let mut child = spawn(path)?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::scope(|scope| {
        scope.spawn(|| feed(stdin, l, states, start));
        let result = collect(stdout, l, states, start, outcomes);
        if result.is_err() {
            let _ = child.kill();
        }
        let status = child.wait();
        result?;
        Ok(status?)
    })
}

/// Writes the input records of `states[start..]`; stops quietly when the
/// process has gone away (broken pipe).
fn feed(stdin: ChildStdin, l: &Layout, states: &[CpuState], start: usize) {
    let mut w = BufWriter::with_capacity(1 << 16, stdin);
    let mut rec = vec![0u8; l.in_size as usize];
    for (i, s) in states.iter().enumerate().skip(start) {
        encode_input(&mut rec, i as u32, s);
        if w.write_all(&rec).is_err() {
            return;
        }
    }
    let _ = w.flush();
}

/// Fills one input record.
fn encode_input(rec: &mut [u8], seq: u32, s: &CpuState) {
    let put = |rec: &mut [u8], off: u32, v: u32| {
        rec[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
    };
    put(rec, 0, MAGIC);
    put(rec, 4, seq);
    for (i, r) in s.regs.iter().enumerate() {
        put(rec, IN_REGS + 4 * i as u32, *r);
    }
    put(rec, IN_EFLAGS, s.eflags & flags::MASK);
    put(rec, IN_EFLAGS + 4, 0);
    let m = IN_HDR as usize;
    rec[m..m + s.mem.len()].copy_from_slice(&s.mem);
    rec[m + s.mem.len()..].fill(0);
}

/// Reads output records until end of file (a truncated record counts as end).
fn collect(
    stdout: impl Read,
    l: &Layout,
    states: &[CpuState],
    start: usize,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), OracleError> {
    let mut r = BufReader::with_capacity(1 << 16, stdout);
    let mut rec = vec![0u8; l.out_size as usize];
    let mut expected = start;
    while read_record(&mut r, &mut rec)? {
        let get = |off: u32| {
            u32::from_le_bytes(
                rec[off as usize..off as usize + 4]
                    .try_into()
                    .expect("4 bytes"),
            )
        };
        let seq = get(4) as usize;
        if get(0) != MAGIC || seq != expected || expected >= states.len() {
            return Err(OracleError::Protocol(format!(
                "bad output record (magic {:#x}, sequence {seq}, expected {expected}); \
                 did the code under test read stdin or write stdout?",
                get(0)
            )));
        }
        outcomes.push(decode_output(&rec, l, get));
        expected += 1;
    }
    Ok(())
}

/// Fills `rec` from `r`; `Ok(false)` at end of file, including a truncated record.
fn read_record(r: &mut impl Read, rec: &mut [u8]) -> io::Result<bool> {
    let mut have = 0;
    while have < rec.len() {
        match r.read(&mut rec[have..]) {
            Ok(0) => return Ok(false),
            Ok(n) => have += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Turns one output record into an outcome.
fn decode_output(rec: &[u8], l: &Layout, get: impl Fn(u32) -> u32) -> Outcome {
    let mut regs = [0; 8];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = get(OUT_REGS + 4 * i as u32);
    }
    let m = OUT_HDR as usize;
    let state = CpuState {
        regs,
        eflags: get(OUT_EFLAGS) & flags::MASK,
        mem: rec[m..m + l.mem_len as usize].to_vec(),
    };
    let eip = get(OUT_EIP);
    let (next_eip, fault) = if get(OUT_KIND) == KIND_FALLTHROUGH {
        (eip, None)
    } else {
        classify(
            l,
            eip,
            get(OUT_SIGNO),
            get(OUT_TRAPNO),
            get(OUT_ERR),
            get(OUT_CR2),
        )
    };
    Outcome {
        state,
        next_eip,
        fault,
    }
}

/// Decides what a signal means: a landing (an `int3` trap just after a landing
/// address) or a fault.
fn classify(
    l: &Layout,
    eip: u32,
    signo: u32,
    trapno: u32,
    error_code: u32,
    address: u32,
) -> (u32, Option<Fault>) {
    const SIGILL: u32 = 4;
    const SIGTRAP: u32 = 5;
    const SIGFPE: u32 = 8;
    const SIGSEGV: u32 = 11;
    const SIGVTALRM: u32 = 26;
    let fault = match (signo, trapno) {
        (SIGTRAP, 3) if is_landing_address(eip.wrapping_sub(1), l.code_len as usize) => {
            return (eip.wrapping_sub(1), None);
        }
        (SIGTRAP, 3) => {
            return (eip.wrapping_sub(1), Some(Fault::Breakpoint));
        }
        (SIGVTALRM, _) => Fault::Timeout,
        (SIGFPE, 0) => Fault::DivideError,
        (SIGSEGV, 14) => Fault::PageFault {
            address,
            error_code,
        },
        (SIGSEGV, 13) => Fault::GeneralProtection { error_code },
        (SIGSEGV, 4) => Fault::Overflow,
        (SIGSEGV, 5) => Fault::BoundRange,
        (SIGILL, 6) => Fault::InvalidOpcode,
        _ => Fault::Signal {
            signo,
            trapno,
            error_code,
            address,
        },
    };
    (eip, Some(fault))
}
