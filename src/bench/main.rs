//! `wiper-bench`: the benchmark runner.
//!
//! For every case (a family of `testdata/bench/` at -O0, -O1 or -O2; see
//! [`cases::FAMILIES`]) it specializes the function as `wiper specialize`
//! does, in a child process (wall time and peak memory), checks that the
//! original, residual and hand-specialized binaries print the same, counts
//! the instructions per call of each with callgrind, and writes the report to
//! `docs/benchmarks.md`. The last line of stdout is the summary line.
//!
//! Run it as `cargo run --release --bin wiper-bench [-- --filter SUBSTR]
//! [--output PATH] [--no-write]`. Needs valgrind. Exit status: 0, 1 when a
//! case failed, 2 on an error.

mod cases;
mod report;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Parser;

use cases::Case;
use report::{Failure, Row};
use wiper::callgrind::{self, Target};

/// The hidden first argument that makes the runner a specialization child:
/// `wiper-bench --specialize-child BINARY FUNCTION OUTPUT [STATIC...]`.
const CHILD_FLAG: &str = "--specialize-child";

/// How the child reports its numbers on stdout.
const CHILD_PREFIX: &str = "wiper-bench-child:";

/// Longest a specialization or a program run may take.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Benchmarks wiper against the original and hand-specialized functions of
/// `testdata/bench/` (needs valgrind).
#[derive(Parser)]
#[command(name = "wiper-bench")]
struct Cli {
    /// Run only the cases whose name (FAMILY-O0, ...) contains SUBSTR.
    #[arg(long, value_name = "SUBSTR")]
    filter: Option<String>,
    /// Where to write the report [default: docs/benchmarks.md in the workspace].
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Only print; do not write the report.
    #[arg(long)]
    no_write: bool,
}

/// The workspace root (the `wiper` package's directory).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `docs/benchmarks.md` in the workspace.
fn default_output() -> PathBuf {
    root().join("docs/benchmarks.md")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CHILD_FLAG) {
        return match child(&args[2..]) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wiper-bench: error: {}", one_line(&format!("{e:#}")));
                ExitCode::from(2)
            }
        };
    }
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("wiper-bench: error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// The child: specializes and writes the ELF through `wiper specialize`'s
/// code path, and returns the line with its numbers and peak memory.
fn child(args: &[String]) -> Result<String> {
    let [binary, function, output, statics @ ..] = args else {
        bail!("usage: wiper-bench {CHILD_FLAG} BINARY FUNCTION OUTPUT [STATIC...]");
    };
    let written = wiper::commands::specialize_elf(
        Path::new(binary),
        function,
        statics,
        Path::new(output),
        &wiper_specialize::Options::default(),
    )?;
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| anyhow!("no VmHWM in /proc/self/status"))?;
    let bta = &written.stats.bta;
    Ok(format!(
        "{CHILD_PREFIX} residual_instructions={} residual_bytes={} code_start={} code_end={} peak_kib={peak} bta_visits={} bta_refined={}",
        written.residual_instructions,
        written.residual_bytes,
        written.code_range.0,
        written.code_range.1,
        bta.static_ + bta.dynamic + bta.lifted + bta.unanalysed,
        bta.refined + bta.unanalysed,
    ))
}

/// What the parent learns from a specialization child.
#[derive(Debug, PartialEq, Eq)]
struct ChildReport {
    residual_instructions: usize,
    residual_bytes: u32,
    code_range: (u32, u32),
    peak_kib: u64,
    /// Instruction visits of the specializer ([`wiper_specialize::BtaStats`]).
    bta_visits: u64,
    /// Of those, the ones the BTA did not decide (refined online, or in a
    /// function it could not analyse).
    bta_refined: u64,
}

/// Parses the child's line (`key=value` fields after [`CHILD_PREFIX`]).
fn parse_child(stdout: &str) -> Result<ChildReport> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(CHILD_PREFIX))
        .ok_or_else(|| anyhow!("the specialization child printed no result"))?;
    let field = |key: &str| -> Result<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("no {key} in the specialization child's line"))
    };
    let u32_field = |key: &str| -> Result<u32> {
        u32::try_from(field(key)?).map_err(|_| anyhow!("{key} out of range"))
    };
    Ok(ChildReport {
        residual_instructions: usize::try_from(field("residual_instructions")?)?,
        residual_bytes: u32_field("residual_bytes")?,
        code_range: (u32_field("code_start")?, u32_field("code_end")?),
        peak_kib: field("peak_kib")?,
        bta_visits: field("bta_visits")?,
        bta_refined: field("bta_refined")?,
    })
}

/// A scratch directory under the system's temporary directory, removed when
/// dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the selected cases; `Ok(false)` when one failed.
fn run(cli: &Cli) -> Result<bool> {
    let selected = cases::cases(cli.filter.as_deref());
    if selected.is_empty() {
        bail!(
            "no case matches --filter {}",
            cli.filter.as_deref().unwrap_or("")
        );
    }
    let output = cli.output.clone().unwrap_or_else(default_output);
    let dir = output.parent().filter(|d| !d.as_os_str().is_empty());
    if !cli.no_write && dir.is_some_and(|d| !d.is_dir()) {
        bail!("{}: no such directory for the report", output.display());
    }
    let bin_dir = root().join("testdata/bin/bench");
    for case in &selected {
        for bin in [case.original(&bin_dir), case.hand(&bin_dir)] {
            if !bin.is_file() {
                bail!(
                    "{}: no such benchmark binary (run `make -C testdata`)",
                    bin.display()
                );
            }
        }
    }
    let valgrind = Command::new("valgrind").arg("--version").output();
    if !matches!(&valgrind, Ok(o) if o.status.success()) {
        bail!("valgrind is not installed or does not run (e.g. `apt-get install -y valgrind`)");
    }
    if cfg!(debug_assertions) {
        println!("note: a debug build; specialization times need `cargo run --release`");
    }
    let work = WorkDir(std::env::temp_dir().join(format!("wiper-bench-{}", std::process::id())));
    std::fs::create_dir_all(&work.0)
        .with_context(|| format!("cannot create {}", work.0.display()))?;
    let exe = std::env::current_exe().context("cannot find the wiper-bench executable")?;

    let machine = machine();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in &selected {
        match measure(case, &bin_dir, &work.0, &exe) {
            Ok(row) => {
                println!("{}", row.line());
                rows.push(row);
            }
            Err(e) => {
                let reason = one_line(&format!("{e:#}"));
                println!("{}: FAILED: {reason}", case.name());
                failures.push(Failure {
                    case: case.name(),
                    reason,
                });
            }
        }
    }

    let summary = report::Summary::new(&rows, failures.len());
    for (goal, measured, met) in summary.goals(&rows) {
        println!("goal: {goal}: {measured}: {}", report::verdict(met));
    }
    if !failures.is_empty() {
        let names: Vec<&str> = failures.iter().map(|f| f.case.as_str()).collect();
        println!("failed: {} ({})", failures.len(), names.join(", "));
    }
    if !cli.no_write {
        let ctx = report::Context {
            command: command_line(cli),
            date: now_utc(),
            machine,
        };
        let families: Vec<&cases::Family> = cases::FAMILIES
            .iter()
            .filter(|f| selected.iter().any(|c| c.family.name == f.name))
            .collect();
        let md = report::markdown(&ctx, &families, &rows, &failures);
        std::fs::write(&output, md)
            .with_context(|| format!("cannot write {}", output.display()))?;
        println!("wrote {}", output.display());
    }
    println!("{}", summary.line());
    Ok(failures.is_empty())
}

/// The command that reproduces this run, for the report.
fn command_line(cli: &Cli) -> String {
    let mut cmd = "cargo run --release --bin wiper-bench".to_owned();
    if let Some(f) = &cli.filter {
        cmd.push_str(&format!(" -- --filter {f}"));
    }
    cmd
}

/// Specializes, checks and counts one case.
fn measure(case: &Case, bin_dir: &Path, work: &Path, exe: &Path) -> Result<Row> {
    let family = case.family;
    let original = case.original(bin_dir);
    let hand = case.hand(bin_dir);
    let residual = work.join(format!("{}.residual", case.name()));

    // 1. Specialize in a child process.
    let mut spec = Command::new(exe);
    spec.arg(CHILD_FLAG)
        .arg(&original)
        .arg(family.function)
        .arg(&residual)
        .args(family.statics);
    let start = Instant::now();
    let out = run_program(&mut spec, work)?;
    let spec_secs = start.elapsed().as_secs_f64();
    if out.status != Some(0) {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "specialization failed: {}",
            err.lines().last().unwrap_or("no message")
        );
    }
    let child = parse_child(&String::from_utf8_lossy(&out.stdout))?;

    // 2. Same behaviour, then instructions per call.
    let args = case.args();
    let want = run_program(Command::new(&original).args(&args), work)?;
    for bin in [&residual, &hand] {
        let got = run_program(Command::new(bin).args(&args), work)?;
        if (&got.stdout, got.status) != (&want.stdout, want.status) {
            bail!(
                "{} behaves differently from {}: {} vs {}",
                file_name(bin),
                file_name(&original),
                got.shown(),
                want.shown()
            );
        }
    }
    let (orig_target, original_bytes) = target(&original, family.function, None)?;
    let (res_target, _) = target(&residual, family.function, Some(child.code_range))?;
    let (hand_target, _) = target(&hand, family.function, None)?;
    let mut per_call = [0.0; 3];
    for (i, (bin, t)) in [
        (&original, &orig_target),
        (&residual, &res_target),
        (&hand, &hand_target),
    ]
    .into_iter()
    .enumerate()
    {
        per_call[i] = count(bin, &args, t, family.reps, &want, work)?;
    }
    Ok(Row {
        case: case.name(),
        interpreter: family.interpreter,
        spec_secs,
        peak_kib: child.peak_kib,
        original_bytes,
        residual_bytes: child.residual_bytes,
        residual_instructions: child.residual_instructions,
        per_call,
        bta: (child.bta_visits, child.bta_refined),
    })
}

/// The callgrind target for `function` in the binary at `path` (its symbols
/// named `function` or `function.*`, plus `extra`), and the function's size
/// in bytes: its symbol's, or else the extent of its decoded instructions.
fn target(path: &Path, function: &str, extra: Option<(u32, u32)>) -> Result<(Target, u32)> {
    let binary = wiper::commands::load(path)?;
    let entry = wiper_x86::resolve_function(&binary, function)
        .with_context(|| format!("{}", path.display()))?;
    let mut target = Target::of_function(&binary, function, entry);
    target.ranges.extend(extra);
    let size = match binary.function_at(entry).map(|s| s.size) {
        Some(size) if size > 0 => size,
        _ => {
            let f = wiper_x86::Disassembler::new(&binary)
                .function(entry)
                .with_context(|| format!("{}: function {function}", path.display()))?;
            f.blocks.values().map(|b| b.end() - b.start).sum()
        }
    };
    Ok((target, size))
}

/// Instructions per call of `t` when `bin` runs under callgrind on `args`,
/// checking the output against `want` and the number of calls against `reps`.
fn count(
    bin: &Path,
    args: &[String],
    t: &Target,
    reps: u32,
    want: &Output,
    work: &Path,
) -> Result<f64> {
    let out_file = work.join("callgrind.out");
    let mut cmd = Command::new("valgrind");
    cmd.args(callgrind::valgrind_args(&out_file))
        .arg(bin)
        .args(args);
    let got = run_program(&mut cmd, work)?;
    if (&got.stdout, got.status) != (&want.stdout, want.status) {
        bail!(
            "{} behaves differently under valgrind: {}",
            file_name(bin),
            got.shown()
        );
    }
    let text = std::fs::read_to_string(&out_file)
        .with_context(|| format!("no callgrind output for {}", file_name(bin)))?;
    let cost = callgrind::external_calls(&text, t)
        .with_context(|| format!("callgrind output for {}", file_name(bin)))?;
    if cost.calls != u64::from(reps) {
        bail!(
            "{}: callgrind shows {} calls to {}, not {reps}",
            file_name(bin),
            cost.calls,
            t.name
        );
    }
    Ok(cost.instructions as f64 / cost.calls as f64)
}

/// A finished program run.
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The exit status (`None`: killed by a signal).
    status: Option<i32>,
}

impl Output {
    /// Output and status, for a message.
    fn shown(&self) -> String {
        let status = self.status.map_or_else(
            || "killed by a signal".to_owned(),
            |c| format!("exit status {c}"),
        );
        let out = String::from_utf8_lossy(&self.stdout);
        let out: String = out.chars().take(80).collect();
        format!("{out:?}, {status}")
    }
}

/// Runs `cmd` with its output in files of `work`, killing it after
/// [`TIMEOUT`].
fn run_program(cmd: &mut Command, work: &Path) -> Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let (out_path, err_path) = (work.join("run.stdout"), work.join("run.stderr"));
    let create =
        |p: &Path| File::create(p).with_context(|| format!("cannot create {}", p.display()));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?)
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{program}: still running after {} s", TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    Ok(Output {
        stdout: std::fs::read(&out_path)?,
        stderr: std::fs::read(&err_path)?,
        status: status.code(),
    })
}

/// The last component of `p`, for messages.
fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The date and time now, UTC.
fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    report::utc_date(secs)
}

/// The CPU model (from `/proc/cpuinfo`), the number of CPUs and the load
/// average over the last minute (`/proc/loadavg`) as the run starts: other
/// work on the machine lengthens the specialization times.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "an unknown CPU".to_owned());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .map_or_else(String::new, |l| format!(", load average {l}"));
    format!("{model}, {cpus} CPUs{load}")
}

/// Joins the lines of an error message.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_line_round_trip() {
        let out = format!(
            "{CHILD_PREFIX} residual_instructions=9 residual_bytes=25 code_start=134524928 code_end=134524960 peak_kib=10240 bta_visits=30 bta_refined=2\n"
        );
        assert_eq!(
            parse_child(&out).unwrap(),
            ChildReport {
                residual_instructions: 9,
                residual_bytes: 25,
                code_range: (134_524_928, 134_524_960),
                peak_kib: 10240,
                bta_visits: 30,
                bta_refined: 2,
            }
        );
        assert!(parse_child("").is_err());
        assert!(parse_child(&format!("{CHILD_PREFIX} residual_bytes=x")).is_err());
    }
}
