//! The results: one row per case, the summary, the goals and
//! `docs/benchmarks.md`.

use std::fmt::Write as _;

use crate::cases::Family;

/// The measurements of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `FAMILY-LEVEL`.
    pub case: String,
    /// Whether the function is an interpreter.
    pub interpreter: bool,
    /// Wall time of the specialization (the child process), in seconds.
    pub spec_secs: f64,
    /// Peak resident memory of the specialization, in KiB.
    pub peak_kib: u64,
    /// Size of the original function in bytes.
    pub original_bytes: u32,
    /// Size of the residual code in bytes.
    pub residual_bytes: u32,
    /// Residual instructions.
    pub residual_instructions: usize,
    /// Instructions executed per call: original, residual, hand-specialized.
    pub per_call: [f64; 3],
    /// The specializer's instruction visits, and how many of them the BTA
    /// did not decide (refined online or unanalysed).
    pub bta: (u64, u64),
}

impl Row {
    /// Original / residual instructions per call.
    pub fn speedup(&self) -> f64 {
        self.per_call[0] / self.per_call[1]
    }

    /// Residual / hand-specialized instructions per call.
    pub fn vs_hand(&self) -> f64 {
        self.per_call[1] / self.per_call[2]
    }

    /// The line printed as the case finishes.
    pub fn line(&self) -> String {
        format!(
            "{}: spec {:.2} s, {:.1} MiB; {} -> {} bytes; instructions per call {} / {} / hand {}: {:.2}x faster, {:.2}x hand",
            self.case,
            self.spec_secs,
            mib(self.peak_kib),
            self.original_bytes,
            self.residual_bytes,
            count(self.per_call[0]),
            count(self.per_call[1]),
            count(self.per_call[2]),
            self.speedup(),
            self.vs_hand()
        )
    }
}

/// A case that could not be measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `FAMILY-LEVEL`.
    pub case: String,
    /// Why, in one line.
    pub reason: String,
}

/// The aggregate numbers over the measured cases.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Measured cases.
    pub cases: usize,
    /// Cases that could not be measured (see [`Failure`]).
    pub failed: usize,
    /// Geometric mean of the speedups (`None` without cases).
    pub geomean_speedup: Option<f64>,
    /// Geometric mean of residual / hand-specialized.
    pub geomean_vs_hand: Option<f64>,
    /// Longest specialization, in seconds.
    pub max_spec_secs: f64,
    /// Largest peak memory, in KiB.
    pub max_peak_kib: u64,
    /// Smallest speedup of an interpreter case.
    pub min_interpreter_speedup: Option<f64>,
}

impl Summary {
    /// Summarizes `rows`, and `failed` cases that could not be measured.
    pub fn new(rows: &[Row], failed: usize) -> Summary {
        let min_interpreter_speedup = rows
            .iter()
            .filter(|r| r.interpreter)
            .map(Row::speedup)
            .reduce(f64::min);
        Summary {
            cases: rows.len(),
            failed,
            geomean_speedup: geomean(rows.iter().map(Row::speedup)),
            geomean_vs_hand: geomean(rows.iter().map(Row::vs_hand)),
            max_spec_secs: rows.iter().map(|r| r.spec_secs).fold(0.0, f64::max),
            max_peak_kib: rows.iter().map(|r| r.peak_kib).max().unwrap_or(0),
            min_interpreter_speedup,
        }
    }

    /// The last line of the runner's output.
    pub fn line(&self) -> String {
        format!(
            "cases: {}  failed: {}  geomean speedup: {}  geomean vs hand-specialized: {}  max spec time: {:.2} s",
            self.cases,
            self.failed,
            times(self.geomean_speedup),
            times(self.geomean_vs_hand),
            self.max_spec_secs
        )
    }

    /// The goals of the benchmark issues, each with what was measured and
    /// whether it is met (`None`: nothing to judge): the first issue's,
    /// then issue 14's.
    pub fn goals(&self, rows: &[Row]) -> Vec<(String, String, Option<bool>)> {
        let interpreters: Vec<&Row> = rows.iter().filter(|r| r.interpreter).collect();
        let any = !rows.is_empty();
        let mut goals = vec![
            (
                "geomean speedup >= 3x".to_owned(),
                times(self.geomean_speedup),
                self.geomean_speedup.map(|g| g >= 3.0),
            ),
            (
                "every interpreter case >= 10x".to_owned(),
                format!("min {}", times(self.min_interpreter_speedup)),
                (!interpreters.is_empty())
                    .then(|| interpreters.iter().all(|r| r.speedup() >= 10.0)),
            ),
            (
                "geomean residual / hand-specialized <= 1.5x".to_owned(),
                times(self.geomean_vs_hand),
                self.geomean_vs_hand.map(|g| g <= 1.5),
            ),
            (
                "every specialization < 1 s".to_owned(),
                format!("max {:.2} s", self.max_spec_secs),
                any.then(|| rows.iter().all(|r| r.spec_secs < 1.0)),
            ),
            (
                "peak memory < 1 GiB".to_owned(),
                format!("max {:.1} MiB", mib(self.max_peak_kib)),
                any.then_some(self.max_peak_kib < 1024 * 1024),
            ),
        ];
        goals.extend(self.wider_goals(rows));
        goals
    }

    /// Issue 14's goals: every case specializes and behaves like the
    /// original; residual / hand-specialized at most 2x for every case, 1.5x
    /// for interpreters, 1.3x in geometric mean.
    fn wider_goals(&self, rows: &[Row]) -> Vec<(String, String, Option<bool>)> {
        let max_vs_hand = |interp: bool| {
            rows.iter()
                .filter(|r| r.interpreter || !interp)
                .map(Row::vs_hand)
                .reduce(f64::max)
        };
        let (all, interp) = (max_vs_hand(false), max_vs_hand(true));
        vec![
            (
                "every case specializes and agrees (issue 14)".to_owned(),
                format!("{} failed", self.failed),
                (self.cases + self.failed > 0).then_some(self.failed == 0),
            ),
            (
                "every residual / hand-specialized <= 2x (issue 14)".to_owned(),
                format!("max {}", times(all)),
                all.map(|m| m <= 2.0),
            ),
            (
                "every interpreter residual / hand-specialized <= 1.5x (issue 14)".to_owned(),
                format!("max {}", times(interp)),
                interp.map(|m| m <= 1.5),
            ),
            (
                "geomean residual / hand-specialized <= 1.3x (issue 14)".to_owned(),
                times(self.geomean_vs_hand),
                self.geomean_vs_hand.map(|g| g <= 1.3),
            ),
        ]
    }
}

/// Where and how the benchmarks ran, for the generated document.
#[derive(Clone, Debug)]
pub struct Context {
    /// The command that generated the document.
    pub command: String,
    /// `YYYY-MM-DD HH:MM` (UTC).
    pub date: String,
    /// CPU model, number of CPUs and load average.
    pub machine: String,
}

/// `docs/benchmarks.md`: the whole document.
pub fn markdown(ctx: &Context, families: &[&Family], rows: &[Row], failures: &[Failure]) -> String {
    let summary = Summary::new(rows, failures.len());
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "{}",
        wrap(&format!(
            "Generated by `{}` on {} (UTC) on {}. Do not edit: run the command again.",
            ctx.command, ctx.date, ctx.machine
        ))
    );
    let _ = writeln!(w, "## What is measured\n");
    let _ = writeln!(
        w,
        "{}",
        wrap(
            "Each family is a driver in `testdata/bench/FAMILY.c` that calls one function \
         REPS times on fixed inputs and prints an accumulator. It is built at -O0, -O1 and \
         -O2 (`testdata/bin/bench/FAMILY-O*`, the original function) and once more with the \
         function specialized by hand in C (`FAMILY-hand`, `gcc -m32 -O2`); a case is a \
         family at one level. The runner specializes the function with the case's static \
         inputs through the code path of `wiper specialize`, in a child process, timing it \
         from the parent and reading its peak resident memory (`VmHWM`). It then runs the \
         original, the residual and the hand-specialized binary on `REPS DYNARGS` and \
         requires identical output and exit status, and counts instructions with \
         `valgrind --tool=callgrind`: the instructions per call are the inclusive `Ir` cost \
         of the calls to the function from outside it (in the residual binary, the entry's \
         jump to `FUNCTION.specialized` and recursion clones count as inside), divided by the \
         number of calls. Sizes: the function's symbol size in the original binary, and the \
         residual code's size and instruction count as encoded."
        )
    );
    families_table(w, families);
    let _ = writeln!(
        w,
        "\n{}",
        wrap(
            "Also: `cargo bench -p wiper-bta` times the binding-time analysis on every \
         testdata function, and the ignored test `interpreter_instruction_counts` \
         (`cargo test --test specialize_diff -- --ignored interpreter_instruction_counts`) \
         counts whole-program instructions of the interpreters before and after \
         specialization."
        )
    );
    let _ = writeln!(w, "## Goals\n");
    let _ = writeln!(w, "| goal | measured | |\n|---|---|---|");
    for (goal, measured, met) in summary.goals(rows) {
        let _ = writeln!(w, "| {goal} | {measured} | {} |", verdict(met));
    }
    let _ = writeln!(w, "\n## Cases\n");
    let _ = writeln!(
        w,
        "{}",
        wrap(
            "Instructions are per call. Speedup = original / residual; vs hand = residual / \
             hand-specialized. Interpreter cases are marked with *. Cases that could not be \
             measured (wiper failed, or a binary behaved differently) follow the others, with \
             the reason."
        )
    );
    let _ = writeln!(
        w,
        "| case | spec time (s) | peak RSS (MiB) | original bytes | residual bytes | residual instructions | original | residual | hand | speedup | vs hand | visits: BTA decided / refined |"
    );
    let _ = writeln!(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let _ = writeln!(
            w,
            "| {}{} | {:.2} | {:.1} | {} | {} | {} | {} | {} | {} | {:.2}x | {:.2}x | {} / {} |",
            r.case,
            if r.interpreter { " *" } else { "" },
            r.spec_secs,
            mib(r.peak_kib),
            r.original_bytes,
            r.residual_bytes,
            r.residual_instructions,
            count(r.per_call[0]),
            count(r.per_call[1]),
            count(r.per_call[2]),
            r.speedup(),
            r.vs_hand(),
            r.bta.0 - r.bta.1,
            r.bta.1
        );
    }
    for f in failures {
        let _ = writeln!(
            w,
            "| {} | failed: {} |||||||||||",
            f.case,
            f.reason.replace('|', "\\|")
        );
    }
    let _ = writeln!(w, "\n## Summary\n");
    let _ = writeln!(
        w,
        "Max peak RSS {:.1} MiB; smallest interpreter speedup {}.\n",
        mib(summary.max_peak_kib),
        times(summary.min_interpreter_speedup)
    );
    let _ = writeln!(w, "```\n{}\n```", summary.line());
    md
}

/// The table of the families, then what the families of issue 14 add.
fn families_table(w: &mut String, families: &[&Family]) {
    let _ = writeln!(
        w,
        "| family | function | style | static inputs | arguments |\n|---|---|---|---|---|"
    );
    for f in families {
        let statics: Vec<String> = f.statics.iter().map(|s| format!("`{s}`")).collect();
        let _ = writeln!(
            w,
            "| {}{} | `{}` | {} | {} | `{} {}` |",
            f.name,
            if f.interpreter { " *" } else { "" },
            f.function,
            f.style,
            statics.join(" "),
            f.reps,
            f.dynargs.join(" ")
        );
    }
    let _ = write!(
        w,
        "\n{}",
        wrap(
            "The families from `cgvm_fib` on came with issue 14: one per style of code \
             a partial evaluator meets, each with a hand-specialized C version. `cgvm_fib` \
             dispatches by computed goto (`goto *dispatch[code[pc++]]` through a `static \
             void *dispatch[]` table: writable `.data` at -O0, `.rodata` at -O1/-O2) and keeps \
             its operand stack in memory; `bf_table` matches the brackets into a local array \
             before running; `bf_reverse` (`>,[>,]<[.<]`) reads its input into successive \
             cells and prints them backwards, so after each loop the head depends on the \
             input; `expr` parses and evaluates the expression string on every call; \
             `regex` backtracks through mutually recursive functions; `fmt` reads its \
             arguments with `va_arg`; `matvec`, `isort` and `bsearch` are array code over \
             static sizes and tables; `modpow` has a static exponent and modulus (a `%` by \
             a static divisor). Marked with * (interpreters of a static program): the VMs, \
             the Brainfuck interpreters, `expr` and `regex`; `fmt` is not (most of its work \
             is copying dynamic data). The hand versions compile the static program to C \
             statement by statement, and gcc -O2 may then go further (it computes the \
             Brainfuck loops of `bf_nested` and `bf_table` in closed form); see \
             `testdata/README.md`."
        )
    );
}

/// `text` as lines of at most 80 characters (longer words stay whole),
/// followed by an empty line.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for word in text.split_whitespace() {
        if width > 0 && width + 1 + word.len() > 80 {
            out.push('\n');
            width = 0;
        } else if width > 0 {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.len();
    }
    out.push('\n');
    out
}

/// `met`, `not met` or `n/a`.
pub fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "not met",
        None => "n/a",
    }
}

/// The geometric mean of positive finite values (`None` without any).
fn geomean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((0u32, 0.0), |(n, s), v| (n + 1, s + v.ln()));
    (n > 0).then(|| (sum / f64::from(n)).exp())
}

/// KiB to MiB.
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `4.17x` or `n/a`.
fn times(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}x"))
}

/// An instruction count: an integer when exact, else one decimal.
fn count(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `YYYY-MM-DD HH:MM` for `secs` seconds after the Unix epoch (UTC).
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(case: &str, interpreter: bool, per_call: [f64; 3]) -> Row {
        Row {
            case: case.to_owned(),
            interpreter,
            spec_secs: 0.25,
            peak_kib: 20 * 1024,
            original_bytes: 60,
            residual_bytes: 20,
            residual_instructions: 8,
            per_call,
            bta: (0, 0),
        }
    }

    #[test]
    fn summary_and_goals() {
        let rows = [
            row("power-O0", false, [80.0, 10.0, 10.0]),
            row("bf_echo-O2", true, [1000.0, 50.0, 25.0]),
        ];
        let s = Summary::new(&rows, 1);
        assert_eq!(
            s.line(),
            "cases: 2  failed: 1  geomean speedup: 12.65x  geomean vs hand-specialized: 1.41x  max spec time: 0.25 s"
        );
        let met: Vec<Option<bool>> = s.goals(&rows).into_iter().map(|g| g.2).collect();
        assert_eq!(
            met,
            [
                Some(true),
                Some(true),
                Some(true),
                Some(true),
                Some(true),
                Some(false),
                Some(true),
                Some(false),
                Some(false)
            ]
        );
        assert!(rows[0].line().contains("80 / 10 / hand 10: 8.00x faster"));
        let md = markdown(
            &Context {
                command: "cargo run --release --bin wiper-bench".to_owned(),
                date: "2026-11-21 18:00".to_owned(),
                machine: "a CPU, 2 CPUs".to_owned(),
            },
            &[&crate::cases::FAMILIES[0]],
            &rows,
            &[Failure {
                case: "abn-O1".to_owned(),
                reason: "outputs differ".to_owned(),
            }],
        );
        assert!(md.contains(
            "| bf_echo-O2 * | 0.25 | 20.0 | 60 | 20 | 8 | 1000 | 50 | 25 | 20.00x | 2.00x |"
        ));
        assert!(md.contains("| abn-O1 | failed: outputs differ |||||||||||"));
        assert!(md.contains(
            "| power | `power` | a loop multiplying by x + y, static trip count | `arg1=3` `arg2=5` | `200 7` |"
        ));
        let long = |l: &&str| l.len() > 80 && !l.starts_with('|') && !l.starts_with("cases:");
        assert_eq!(md.lines().find(long), None);
        assert!(md.trim_end().ends_with(&format!("{}\n```", s.line())));
    }

    #[test]
    fn no_cases() {
        let s = Summary::new(&[], 0);
        assert_eq!(
            s.line(),
            "cases: 0  failed: 0  geomean speedup: n/a  geomean vs hand-specialized: n/a  max spec time: 0.00 s"
        );
        assert!(s.goals(&[]).iter().all(|g| g.2.is_none()));
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00");
        assert_eq!(utc_date(951_782_400 + 3_660), "2000-02-29 01:01");
        assert_eq!(utc_date(1_798_761_599), "2026-12-31 23:59");
    }
}
