//! Differential tests of `wiper specialize`: for every case of the table in
//! `tests/common/cases.rs` (a testdata binary, a function, static specs), the
//! residual binary must behave exactly like the original on the same dynamic
//! inputs (same stdout, same stderr, same exit status or signal), and every
//! instruction the specializer reduced must be proved.
//!
//! A case's inputs are first its small dynamic domains enumerated (every
//! switch selector, every value of a masked index or a short count, boundary
//! values of compares, every short string over a few characters: see
//! `Rng::each` in `tests/common/cases.rs`), each combined with random values
//! for the other inputs, then `WIPER_DIFF_RUNS` random inputs.
//!
//! The specializations run once per test process, on two threads, and both
//! `residuals_behave_like_originals` and `every_reduction_is_proved` use them.
//! Environment knobs:
//! - `WIPER_DIFF_RUNS=N`: random inputs per case, besides the enumerated ones
//!   (default 20, a quick developer run; CI sets more).
//! - `WIPER_DIFF_CASES=TEXT`: only the cases whose label (`BINARY FUNCTION
//!   SPEC...`) contains TEXT, e.g. `interp-O2 run_vm`.
//! - `WIPER_SPECIALIZE_TIMEOUT=SECONDS`: how long one `wiper specialize` may run
//!   (default 300).
//!
//! The `case_table_*` tests check the table itself without the specializer:
//! every generated command line is accepted by the original program, every
//! spec is accepted by `wiper bta`, and the VM programs given as static arrays
//! are the ones in the binaries. `interpreter_instruction_counts` (ignored:
//! it needs valgrind and takes a while) counts the instructions the original
//! and the residual interpreters execute;
//! `interpreter_residuals_execute_fewer_instructions` judges the same
//! without valgrind, on shorter runs single-stepped under `ptrace`.
//! `new_styles_known_failures` (ignored) runs the cases of the wider
//! benchmark's styles listed as known failures in `tests/common/cases.rs`
//! (none at present).

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::cases::{
    all_cases, bf_case, stripped_classify_address, vm_case, Case, Input, BF_NESTED, VM_PROGRAMS,
    VM_PROGRAM_SYMBOLS,
};
use wiper_testkit::{
    count_instructions, run_binary, run_binary_with_timeout, scratch_file, testdata_bin, RunOutput,
};

/// Random dynamic inputs each residual is compared on (besides the
/// enumerated ones) unless `WIPER_DIFF_RUNS` says otherwise.
const DEFAULT_RUNS_PER_CASE: usize = 20;

/// Random inputs per case: `WIPER_DIFF_RUNS`, [`DEFAULT_RUNS_PER_CASE`] by
/// default.
///
/// # Panics
///
/// If `WIPER_DIFF_RUNS` is set but not a number.
fn runs_per_case() -> usize {
    match std::env::var("WIPER_DIFF_RUNS") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WIPER_DIFF_RUNS={v:?} is not a number of runs")),
        Err(_) => DEFAULT_RUNS_PER_CASE,
    }
}

/// Threads that specialize and run cases at the same time (the test machines
/// have two cores).
const WORKERS: usize = 2;

/// How long one residual run may take: the originals finish in milliseconds,
/// so this only stops a residual that loops forever.
const RESIDUAL_TIMEOUT: Duration = Duration::from_secs(10);

/// How much fewer instructions a specialized interpreter must execute than
/// the original (`interpreter_instruction_counts`; issue 6 asked for 10).
/// Set at ~85% of the smallest factor observed then: 17.8x (interp-O1 VM
/// program 2 with x = 100000; -O0 22.5x, Brainfuck 19000x and more).
const MIN_INTERPRETER_SPEEDUP: u64 = 15;

/// How much fewer instructions (single-stepped, start-up included) a
/// specialized interpreter must execute than the original on the short runs
/// of `interpreter_residuals_execute_fewer_instructions`. Set at ~85% of the
/// smallest factor observed then: 16.1x (interp-O1 VM program 2; -O0 20.5x,
/// Brainfuck 316x and more).
const MIN_STEPPED_SPEEDUP: u64 = 14;

/// Most instructions a single-stepped run may execute (the originals of
/// `interpreter_residuals_execute_fewer_instructions` execute about 100000).
const STEP_LIMIT: u64 = 5_000_000;

/// How long one `wiper specialize` may run: `WIPER_SPECIALIZE_TIMEOUT`
/// seconds, 300 by default.
fn specialize_timeout() -> Duration {
    let secs = std::env::var("WIPER_SPECIALIZE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// The cases this run covers: all of them, or those whose label contains
/// `WIPER_DIFF_CASES`.
fn selected_cases() -> Vec<Case> {
    let filter = std::env::var("WIPER_DIFF_CASES").unwrap_or_default();
    all_cases()
        .into_iter()
        .filter(|c| c.label().contains(&filter))
        .collect()
}

/// Applies `f` to every item on [`WORKERS`] threads; the results keep the
/// items' order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item was mapped"))
        .collect()
}

/// Panics with every failure, one paragraph each, if there are any.
fn report(what: &str, failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{what}: {} of {total} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The numbers of the line `wiper specialize` prints on stderr:
/// `wiper: specialized NAME: N -> M instructions, B bytes, R reduced (P proved), F fallbacks, T s`
/// (then `, J jumps into the original code` when J > 0).
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    /// NAME.
    function: String,
    /// N: instructions of the original function.
    before: u64,
    /// M: instructions of the residual code.
    after: u64,
    /// B: bytes of residual code.
    bytes: u64,
    /// R: instructions reduced.
    reduced: u64,
    /// P: reductions proved.
    proved: u64,
    /// F: fallbacks.
    fallbacks: u64,
    /// T: seconds the specialization took.
    seconds: f64,
    /// The `wiper: warning: ` lines that followed it on stderr (none from
    /// [`parse_summary`]).
    warnings: Vec<String>,
}

/// Parses the summary line (the whole line, without its newline).
fn parse_summary(line: &str) -> Result<Summary, String> {
    let bad = |why: &str| format!("malformed summary line ({why}): `{line}`");
    let rest = line
        .strip_prefix("wiper: specialized ")
        .ok_or_else(|| bad("prefix"))?;
    let (function, rest) = rest.rsplit_once(": ").ok_or_else(|| bad("`NAME: `"))?;
    let mut parts: Vec<&str> = rest.split(", ").collect();
    // `, J jumps into the original code` follows when J > 0.
    if let Some(jumps) = parts
        .last()
        .and_then(|p| p.strip_suffix(" jumps into the original code"))
    {
        jumps.parse::<u64>().map_err(|_| bad("J"))?;
        parts.pop();
    }
    let [counts, bytes, reduced, fallbacks, seconds] = parts[..] else {
        return Err(bad("five comma-separated fields"));
    };
    let num = |s: &str, what: &str| s.parse::<u64>().map_err(|_| bad(what));
    let (before, after) = counts
        .strip_suffix(" instructions")
        .and_then(|s| s.split_once(" -> "))
        .ok_or_else(|| bad("`N -> M instructions`"))?;
    let (r, p) = reduced
        .strip_suffix(" proved)")
        .and_then(|s| s.split_once(" reduced ("))
        .ok_or_else(|| bad("`R reduced (P proved)`"))?;
    Ok(Summary {
        function: function.to_owned(),
        before: num(before, "N")?,
        after: num(after, "M")?,
        bytes: num(
            bytes.strip_suffix(" bytes").ok_or_else(|| bad("bytes"))?,
            "B",
        )?,
        reduced: num(r, "R")?,
        proved: num(p, "P")?,
        fallbacks: num(
            fallbacks
                .strip_suffix(" fallbacks")
                .ok_or_else(|| bad("fallbacks"))?,
            "F",
        )?,
        seconds: seconds
            .strip_suffix(" s")
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| bad("`T s`"))?,
        warnings: Vec::new(),
    })
}

/// Several lines of tool output as one line (non-empty lines joined with ` / `),
/// so each failure stays one paragraph.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// A fresh path for `case`'s residual in a scratch directory of its own.
/// The file itself does not exist yet: `wiper` must create it, executable.
fn residual_path(case: &Case) -> PathBuf {
    let name = format!("{}.{}.residual", case.binary, case.function);
    let path = scratch_file(&name, b"");
    std::fs::remove_file(&path).expect("remove scratch placeholder");
    path
}

/// Runs `wiper specialize` for `case` (with a timeout); on success returns
/// its parsed summary line and the residual's path.
fn specialize(case: &Case) -> Result<(Summary, PathBuf), String> {
    let out = residual_path(case);
    let args = case.specialize_args(out.to_str().expect("UTF-8 temp path"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let wiper = Path::new(env!("CARGO_BIN_EXE_wiper"));
    let run = run_binary_with_timeout(wiper, &args, b"", specialize_timeout())
        .map_err(|e| format!("wiper specialize did not finish: {e}"))?;
    let stderr = run.stderr_str();
    if run.status.code() != Some(0) {
        return Err(format!(
            "wiper specialize ended with {:?}: {}",
            run.status,
            one_line(&stderr)
        ));
    }
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("wiper: specialized "))
        .collect();
    let [line] = lines[..] else {
        return Err(format!(
            "expected one `wiper: specialized` line on stderr, got: {}",
            one_line(&stderr)
        ));
    };
    let mut summary = parse_summary(line)?;
    summary.warnings = stderr
        .lines()
        .filter(|l| l.starts_with("wiper: warning: "))
        .map(str::to_owned)
        .collect();
    if !case.function.starts_with("0x") && summary.function != case.function {
        return Err(format!(
            "summary names `{}`, not `{}`: {line}",
            summary.function, case.function
        ));
    }
    if !out.is_file() {
        return Err(format!(
            "exit status 0 but no residual at {}",
            out.display()
        ));
    }
    Ok((summary, out))
}

/// One case's specialization, done once per test process.
struct Specialized {
    case: Case,
    result: Result<(Summary, PathBuf), String>,
}

/// The specializations of [`selected_cases`], computed on first use (on
/// [`WORKERS`] threads) and shared by the tests of this file.
fn specializations() -> &'static [Specialized] {
    static DONE: OnceLock<Vec<Specialized>> = OnceLock::new();
    DONE.get_or_init(|| {
        let cases = selected_cases();
        assert!(!cases.is_empty(), "WIPER_DIFF_CASES selects no case");
        par_map(&cases, |case| {
            let start = Instant::now();
            let result = specialize(case);
            let status = match &result {
                Ok((s, _)) => format!(
                    "{} -> {} instructions, {} reduced ({} proved), {} fallbacks",
                    s.before, s.after, s.reduced, s.proved, s.fallbacks
                ),
                Err(e) => format!("FAILED: {e}"),
            };
            eprintln!(
                "specialize {} [{:.1} s]: {status}",
                case.label(),
                start.elapsed().as_secs_f64()
            );
            Specialized {
                case: case.clone(),
                result,
            }
        })
    })
}

/// Text for a byte string in a message: lossy UTF-8, quoted with escapes.
fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// An input in a message: its arguments, and stdin if any.
fn shown_input(input: &Input) -> String {
    if input.stdin.is_empty() {
        format!("argv {:?}", input.args)
    } else {
        format!("argv {:?} stdin {}", input.args, shown(&input.stdin))
    }
}

/// One run's result in a message.
fn shown_run(run: &RunOutput) -> String {
    let mut s = format!("{:?}, stdout {}", run.status, shown(&run.stdout));
    if !run.stderr.is_empty() {
        s.push_str(&format!(", stderr {}", shown(&run.stderr)));
    }
    s
}

/// `--static` flags of a case, for messages.
fn shown_specs(case: &Case) -> String {
    if case.statics.is_empty() {
        "no --static".to_owned()
    } else {
        case.statics
            .iter()
            .map(|s| format!("--static {s}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Compares the original and the residual of one specialized case on its
/// inputs (enumerated and [`runs_per_case`] random ones); returns the
/// failure message, if any.
fn compare(s: &Specialized) -> Option<String> {
    let case = &s.case;
    let head = format!(
        "{} --function {} {} ({})",
        case.binary,
        case.function,
        shown_specs(case),
        case.what
    );
    let (summary, residual) = match &s.result {
        Ok(ok) => ok,
        Err(e) => return Some(format!("{head}:\n  specialization failed: {e}")),
    };
    let mut problems = Vec::new();
    if summary.reduced != summary.proved {
        problems.push(format!(
            "{} reduced instructions but only {} proved",
            summary.reduced, summary.proved
        ));
    }
    let original = testdata_bin(&case.binary);
    let inputs = case.inputs(runs_per_case());
    let mut differing = 0;
    for (k, input) in inputs.iter().enumerate() {
        let args = input.arg_strs();
        let want = match run_binary(&original, &args, &input.stdin) {
            Ok(run) if valid_run(case, &run) => run,
            Ok(run) => {
                problems.push(format!(
                    "the original rejects or crashes on {} (a case-table bug): {}",
                    shown_input(input),
                    shown_run(&run)
                ));
                break;
            }
            Err(e) => {
                problems.push(format!("original failed on {}: {e}", shown_input(input)));
                break;
            }
        };
        let got = match run_binary_with_timeout(residual, &args, &input.stdin, RESIDUAL_TIMEOUT) {
            Ok(run) => run,
            Err(e) => {
                problems.push(format!(
                    "input {k}: residual failed on {}: {e}",
                    shown_input(input)
                ));
                break;
            }
        };
        if want != got {
            differing += 1;
            if differing <= 2 {
                problems.push(format!(
                    "input {k}: {}\n    original: {}\n    residual: {}",
                    shown_input(input),
                    shown_run(&want),
                    shown_run(&got)
                ));
            }
        }
    }
    if differing > 0 {
        problems.push(format!("{differing} of {} inputs differ", inputs.len()));
    }
    if problems.is_empty() {
        // Keep only failing residuals (their paths are in the messages).
        if let Some(dir) = residual.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        None
    } else {
        Some(format!(
            "{head} (residual {}):\n  {}",
            residual.display(),
            problems.join("\n  ")
        ))
    }
}

/// The residual of every case prints the same (stdout and stderr) and ends
/// the same way as the original on the case's inputs.
#[test]
fn residuals_behave_like_originals() {
    let done = specializations();
    let failures: Vec<String> = par_map(done, compare).into_iter().flatten().collect();
    report("residuals_behave_like_originals", &failures, done.len());
}

/// Every specialization succeeds and reports `R reduced (R proved)` with a
/// non-empty residual.
#[test]
fn every_reduction_is_proved() {
    let done = specializations();
    let mut failures = Vec::new();
    for s in done {
        let label = s.case.label();
        match &s.result {
            Err(e) => failures.push(format!("{label}: specialization failed: {e}")),
            Ok((sum, _)) => {
                if sum.reduced != sum.proved {
                    failures.push(format!(
                        "{label}: {} reduced but {} proved",
                        sum.reduced, sum.proved
                    ));
                }
                if sum.after == 0 || sum.bytes == 0 || sum.before == 0 {
                    failures.push(format!("{label}: implausible summary {sum:?}"));
                }
            }
        }
    }
    report("every_reduction_is_proved", &failures, done.len());
}

/// Warnings of meaning that the differential cases do give, rightly: a
/// call site the case's runs never take passes another constant (`mix`
/// calls crc8 with 16 and sum_array with 4; main calls sort_and_sum with 0
/// when no Vs are given). (Case label, the warning's text after `wiper:
/// warning: `, up to the call's address.)
const EXPECTED_WARNINGS: [(&str, &str); 3] = [
    (
        "calls-O0 crc8 arg0=@bytes:7769706572 arg1=5",
        "the call at 0x8049209 in mix passes arg1=16, not the static arg1=5",
    ),
    (
        "calls-O1 sum_array arg0=@i32:3,-1,4,1,-5,9,2,6 arg1=5",
        "the call at 0x8049187 in mix passes arg1=4, not the static arg1=5",
    ),
    (
        "libc_demo-O1 sort_and_sum arg1=5",
        "the call at 0x8049a33 in main passes arg1=0, not the static arg1=5",
    ),
];

/// No case's spec gives a warning of meaning (docs/usage.md, "Warnings"),
/// but the [`EXPECTED_WARNINGS`], which every run gives.
#[test]
fn no_case_gives_an_unexpected_warning() {
    let done = specializations();
    let mut failures = Vec::new();
    for s in done {
        let label = s.case.label();
        let Ok((sum, _)) = &s.result else { continue };
        let expected: Vec<&str> = EXPECTED_WARNINGS
            .iter()
            .filter(|(l, _)| *l == label)
            .map(|(_, w)| *w)
            .collect();
        for w in &sum.warnings {
            if !expected.iter().any(|e| w.contains(e)) {
                failures.push(format!("{label}: {w}"));
            }
        }
        for e in expected {
            if !sum.warnings.iter().any(|w| w.contains(e)) {
                failures.push(format!("{label}: expected the warning `{e}`"));
            }
        }
    }
    report("no_case_gives_an_unexpected_warning", &failures, done.len());
}

/// The messages with which the programs' `main`s reject a command line.
const REJECTIONS: [&str; 4] = ["usage", "out of range", "no such", "bad "];

/// glibc's message when the stack protector catches a smashed stack:
/// canary.c smashes its stack on purpose for long words, and then aborts.
const SMASHED_STACK: &str = "*** stack smashing detected ***";

/// Whether an original's run of `case` shows a valid command line: it
/// exits, prints no rejection and nothing on stderr; or it aborts (SIGABRT)
/// because the stack protector caught a smashed stack ([`SMASHED_STACK`]);
/// or it faults (SIGSEGV) where the case says its program does.
fn valid_run(case: &Case, run: &RunOutput) -> bool {
    let text = run.stdout_str();
    let smashed = run.status == wiper_testkit::Termination::Signaled(6)
        && run.stderr_str().starts_with(SMASHED_STACK);
    let faulted = case.faults && run.status == wiper_testkit::Termination::Signaled(11);
    smashed
        || faulted
        || run.status.code().is_some()
            && !REJECTIONS.iter().any(|r| text.contains(r))
            && run.stderr.is_empty()
}

/// The case table's command lines are valid for the original programs:
/// none is rejected by `main`, none crashes or hangs. Also prints how long the
/// original runs take. Checks the enumerated inputs and
/// [`DEFAULT_RUNS_PER_CASE`] random ones (`residuals_behave_like_originals`
/// checks the same of all the inputs it runs).
#[test]
fn case_table_inputs_run_on_originals() {
    let cases = all_cases();
    let runs = DEFAULT_RUNS_PER_CASE;
    let start = Instant::now();
    let results = par_map(&cases, |case| {
        let t = Instant::now();
        let original = testdata_bin(&case.binary);
        let mut problems = Vec::new();
        for input in case.inputs(runs) {
            match run_binary(&original, &input.arg_strs(), &input.stdin) {
                Err(e) => problems.push(format!("{}: {e}", shown_input(&input))),
                Ok(run) => {
                    if !valid_run(case, &run) {
                        problems.push(format!("{}: {}", shown_input(&input), shown_run(&run)));
                    }
                }
            }
        }
        let failure = (!problems.is_empty())
            .then(|| format!("{}:\n  {}", case.label(), problems.join("\n  ")));
        (failure, t.elapsed(), case.label(), case.inputs(runs).len())
    });
    let slowest = results.iter().max_by_key(|r| r.1).expect("cases");
    eprintln!(
        "{} cases, {} original runs ({runs} random per case) in {:.2} s wall ({:.2} s summed); slowest case {} ({:.3} s)",
        cases.len(),
        results.iter().map(|r| r.3).sum::<usize>(),
        start.elapsed().as_secs_f64(),
        results.iter().map(|r| r.1.as_secs_f64()).sum::<f64>(),
        slowest.2,
        slowest.1.as_secs_f64()
    );
    let failures: Vec<String> = results.into_iter().filter_map(|r| r.0).collect();
    report("case_table_inputs_run_on_originals", &failures, cases.len());
}

/// Every case names a function of its binary and specs that the binding-time
/// analysis accepts (valid syntax, arguments the function reads).
#[test]
fn case_table_specs_pass_the_binding_time_analysis() {
    let cases = all_cases();
    let failures: Vec<String> = par_map(&cases, |case| {
        let bin = testdata_bin(&case.binary);
        let mut args = vec![
            "bta".to_owned(),
            bin.to_str().unwrap().to_owned(),
            "--function".to_owned(),
            case.function.clone(),
        ];
        for spec in &case.statics {
            args.push("--static".to_owned());
            args.push(spec.clone());
        }
        let out = Command::new(env!("CARGO_BIN_EXE_wiper"))
            .args(&args)
            .output()
            .expect("run wiper bta");
        (!out.status.success()).then(|| {
            format!(
                "{}: wiper bta failed: {}",
                case.label(),
                one_line(&String::from_utf8_lossy(&out.stderr))
            )
        })
    })
    .into_iter()
    .flatten()
    .collect();
    report(
        "case_table_specs_pass_the_binding_time_analysis",
        &failures,
        cases.len(),
    );
}

/// The static VM programs of the table are word for word the `vm_programs`
/// arrays of interp.c, read from each binary; and the stripped binary's
/// function address is `classify` in both files.
#[test]
fn case_table_static_data_matches_the_binaries() {
    for opt in ["O0", "O1", "O2"] {
        let name = format!("interp-{opt}");
        let binary = wiper_elf::Binary::open(&testdata_bin(&name)).unwrap();
        for (words, symbol) in VM_PROGRAMS.iter().zip(VM_PROGRAM_SYMBOLS) {
            let sym = binary
                .symbols
                .iter()
                .find(|s| s.name == symbol)
                .unwrap_or_else(|| panic!("{name}: no symbol {symbol}"));
            assert_eq!(sym.size as usize, 4 * words.len(), "{name}: {symbol} size");
            let bytes = binary.read(sym.addr, sym.size).expect("program bytes");
            let actual: Vec<i32> = bytes
                .chunks(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(&actual[..], *words, "{name}: {symbol}");
        }
    }
    let addr = stripped_classify_address();
    let addr = u32::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap();
    let o2 = wiper_elf::Binary::open(&testdata_bin("libc_demo-O2")).unwrap();
    let stripped = wiper_elf::Binary::open(&testdata_bin("libc_demo-stripped")).unwrap();
    let size = o2.function_at(addr).expect("classify symbol").size;
    assert_eq!(o2.read(addr, size), stripped.read(addr, size));
}

/// Case labels are unique: they seed the inputs and name the failures.
#[test]
fn case_table_labels_are_unique() {
    let cases = all_cases();
    let mut seen = HashSet::new();
    for case in &cases {
        assert!(seen.insert(case.label()), "duplicate case {}", case.label());
    }
    // 123 cases when this floor was set.
    assert!(cases.len() >= 105, "only {} cases", cases.len());
}

/// The selectors every dynamic-selector case of a switch over `0..=last`
/// runs: each case label, values just outside, the extremes.
fn expected_selectors(last: i64) -> Vec<i64> {
    let mut ops: Vec<i64> = (-2..=last + 2).collect();
    ops.extend([i64::from(i32::MIN), i64::from(i32::MAX)]);
    ops
}

/// The table enumerates small dynamic domains: every case of a switch with
/// a dynamic selector runs every case label and values outside them, and
/// the enumerated inputs stay plentiful (floors below what was observed).
#[test]
fn case_table_enumerates_small_domains() {
    let cases = all_cases();
    let mut with_domains = 0;
    let mut enumerated = 0;
    for case in &cases {
        // Without random runs: the enumerated inputs only.
        let inputs = case.inputs(0);
        if !case.domains().is_empty() {
            with_domains += 1;
        }
        enumerated += inputs.len();
        let switch_last = match case.function.as_str() {
            "dispatch" => 9,
            "step" => 7,
            _ => continue,
        };
        if case.statics.iter().any(|s| s.starts_with("arg0=")) {
            continue;
        }
        let seen: HashSet<i64> = inputs
            .iter()
            .map(|i| i.args[0].parse::<i64>().expect("a selector"))
            .collect();
        for op in expected_selectors(switch_last) {
            assert!(
                seen.contains(&op),
                "{}: selector {op} never runs",
                case.label()
            );
        }
    }
    eprintln!(
        "{with_domains} of {} cases enumerate domains; {enumerated} enumerated inputs",
        cases.len()
    );
    // Observed when these floors were set: 92 of 123 cases enumerate
    // domains, 3499 enumerated inputs.
    assert!(
        with_domains >= 80,
        "only {with_domains} cases enumerate a domain"
    );
    assert!(enumerated >= 3000, "only {enumerated} enumerated inputs");
}

/// Instructions executed (callgrind's `Ir`) by `binary` on `input`, with its
/// output.
fn callgrind_ir(binary: &Path, input: &Input) -> Result<(u64, RunOutput), String> {
    let out_file = scratch_file("callgrind.out", b"");
    let mut args = wiper::callgrind::valgrind_args(&out_file);
    args.push(binary.to_str().unwrap().to_owned());
    args.extend(input.args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_binary_with_timeout(
        Path::new("valgrind"),
        &args,
        &input.stdin,
        Duration::from_secs(600),
    )
    .map_err(|e| format!("valgrind on {}: {e}", binary.display()))?;
    let text = std::fs::read_to_string(&out_file)
        .map_err(|e| format!("no callgrind output for {}: {e}", binary.display()))?;
    let total =
        wiper::callgrind::total(&text).map_err(|e| format!("{}: {e:#}", out_file.display()))?;
    Ok((total, run))
}

/// Specialized interpreters execute at least [`MIN_INTERPRETER_SPEEDUP`]
/// times fewer instructions than the originals on long runs: VM programs 1
/// (x!) and 2 (1 + ... + x) with x = 100000, and a Brainfuck program with two
/// nested loops (122 * 255 inner iterations), at -O0, -O1 and -O2. Counted
/// with valgrind's callgrind; prints both counts per case.
#[test]
#[ignore = "needs valgrind and takes minutes: cargo test --test specialize_diff -- --ignored"]
fn interpreter_instruction_counts() {
    let valgrind = Command::new("valgrind").arg("--version").output();
    assert!(
        matches!(&valgrind, Ok(out) if out.status.success()),
        "valgrind is not installed (or does not run): install it, e.g. `apt-get install -y valgrind`"
    );
    let mut work: Vec<(Case, Input)> = Vec::new();
    for opt in ["O0", "O1", "O2"] {
        for prog in [1, 2] {
            let input = Input::argv(vec!["vm".into(), prog.to_string(), "100000".into()]);
            work.push((vm_case(opt, prog), input));
        }
        let input = Input::argv(vec!["bf".into(), BF_NESTED.into(), "z".into()]);
        work.push((bf_case(opt, BF_NESTED), input));
    }
    let results = par_map(&work, |(case, input)| -> Result<String, String> {
        let (_, residual) = specialize(case)?;
        let (orig_ir, want) = callgrind_ir(&testdata_bin(&case.binary), input)?;
        let (res_ir, got) = callgrind_ir(&residual, input)?;
        let line = format!(
            "{} on {}: original {orig_ir} instructions, residual {res_ir} ({:.1}x fewer)",
            case.label(),
            shown_input(input),
            orig_ir as f64 / res_ir.max(1) as f64
        );
        eprintln!("{line}");
        if want.stdout != got.stdout || want.status != got.status {
            return Err(format!(
                "{line}\n    outputs differ: original {}, residual {}",
                shown_run(&want),
                shown_run(&got)
            ));
        }
        let bar = MIN_INTERPRETER_SPEEDUP;
        if res_ir * bar > orig_ir {
            return Err(format!("{line}: not {bar}x fewer instructions"));
        }
        Ok(line)
    });
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().cloned())
        .collect();
    report("interpreter_instruction_counts", &failures, work.len());
}

/// Specialized interpreters execute at least [`MIN_STEPPED_SPEEDUP`] times
/// fewer instructions than the originals, counted exactly by
/// single-stepping both (`wiper_testkit::count_instructions`, no valgrind):
/// VM programs 1 (x!) and 2 (1 + ... + x) with x = 500, and the Brainfuck
/// program with two nested loops on the input byte 2 (510 inner
/// iterations), at -O0, -O1 and -O2. The counts include the programs'
/// start-up and printing. Prints both counts per case.
#[test]
fn interpreter_residuals_execute_fewer_instructions() {
    let mut work: Vec<(Case, Input)> = Vec::new();
    for opt in ["O0", "O1", "O2"] {
        for prog in [1, 2] {
            let input = Input::argv(vec!["vm".into(), prog.to_string(), "500".into()]);
            work.push((vm_case(opt, prog), input));
        }
        let input = Input::argv(vec!["bf".into(), BF_NESTED.into(), "\u{2}".into()]);
        work.push((bf_case(opt, BF_NESTED), input));
    }
    let results = par_map(&work, |(case, input)| -> Result<String, String> {
        // Its own residuals: `residuals_behave_like_originals` deletes
        // those that pass.
        let (_, residual) = specialize(case)?;
        let count = |bin: &Path| {
            count_instructions(bin, &input.arg_strs(), &input.stdin, STEP_LIMIT)
                .map_err(|e| format!("{}: {e}", case.label()))
        };
        let (orig, want) = count(&testdata_bin(&case.binary))?;
        let (res, got) = count(&residual)?;
        let line = format!(
            "{} on {}: original {orig} instructions, residual {res} ({:.1}x fewer)",
            case.label(),
            shown_input(input),
            orig as f64 / res.max(1) as f64
        );
        eprintln!("{line}");
        if want != got {
            return Err(format!(
                "{line}\n    outputs differ: original {}, residual {}",
                shown_run(&want),
                shown_run(&got)
            ));
        }
        if res * MIN_STEPPED_SPEEDUP > orig {
            return Err(format!(
                "{line}: not {MIN_STEPPED_SPEEDUP}x fewer instructions"
            ));
        }
        Ok(line)
    });
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    report(
        "interpreter_residuals_execute_fewer_instructions",
        &failures,
        work.len(),
    );
}

/// The cases of the wider benchmark's styles that wiper does not yet
/// specialize correctly (`NEW_STYLES_KNOWN_FAILURES` in
/// `tests/common/cases.rs`, each with its reason): specialized and compared
/// like the others, so this test fails while any of them still fails (and
/// shows how). Prints each case's outcome next to its recorded reason.
#[test]
#[ignore = "known failures: cargo test --test specialize_diff -- --ignored new_styles_known_failures"]
fn new_styles_known_failures() {
    let cases = common::cases::new_styles_known_failures();
    let results = par_map(&cases, |(case, why)| {
        let s = Specialized {
            case: case.clone(),
            result: specialize(case),
        };
        let outcome = compare(&s);
        eprintln!(
            "{} (known: {why}): {}",
            case.label(),
            outcome.as_deref().map_or("now passes".to_owned(), one_line)
        );
        outcome
    });
    let failures: Vec<String> = results.into_iter().flatten().collect();
    report("new_styles_known_failures", &failures, cases.len());
}

/// The summary parser reads the documented line and rejects other shapes.
#[test]
fn summary_line_parses() {
    let s = parse_summary(
        "wiper: specialized power: 17 -> 9 instructions, 31 bytes, 4 reduced (4 proved), 0 fallbacks, 0.12 s",
    )
    .unwrap();
    assert_eq!(
        s,
        Summary {
            function: "power".into(),
            before: 17,
            after: 9,
            bytes: 31,
            reduced: 4,
            proved: 4,
            fallbacks: 0,
            seconds: 0.12,
            warnings: Vec::new(),
        }
    );
    let left = parse_summary(
        "wiper: specialized f: 17 -> 9 instructions, 31 bytes, 4 reduced (4 proved), 0 fallbacks, 0.12 s, 3 jumps into the original code",
    )
    .unwrap();
    assert_eq!((left.after, left.seconds), (9, 0.12));
    assert!(parse_summary(
        "wiper: specialized f: 17 -> 9 instructions, 31 bytes, 4 reduced (4 proved), 0 fallbacks, 0.12 s, x jumps into the original code"
    )
    .is_err());
    assert!(parse_summary("wiper: specialized power: 17 -> 9 instructions").is_err());
    assert!(parse_summary(
        "wiper: specialized power: 17 -> x instructions, 31 bytes, 4 reduced (4 proved), 0 fallbacks, 0.12 s"
    )
    .is_err());
}
