//! `wiper check`: specializes like `specialize`, then runs the original and
//! the residual binary on many generated argument vectors (from templates,
//! `template.rs`) and compares what they print and how they end; the first
//! difference is minimized (`shrink.rs`) into a reproducer.

mod shrink;
mod template;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use wiper_run::Outcome;
use wiper_x86::rng::Rng;

use crate::commands::{
    run_program, specialize_beside, stderr_lines, warning_lines, FunctionArg, Report, ReportFormat,
};
use crate::json;
use template::{Inputs, Rendered};

/// The seed `check` draws its inputs with unless `--seed` says otherwise.
pub const DEFAULT_SEED: u64 = 0x7769_7065;

/// The most candidate inputs minimization tries.
const SHRINK_BUDGET: usize = 2000;

/// How long minimization may take before it settles for what it has.
const SHRINK_TIME: Duration = Duration::from_secs(60);

/// What `check` runs, beyond the specialization's own options.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// How many generated inputs to run both binaries on.
    pub runs: u64,
    /// The seed of the input generator.
    pub seed: u64,
    /// How long each run may take (a run past it is `timed out`).
    pub timeout: Duration,
    /// A residual binary to compare against instead of specializing.
    pub residual: Option<PathBuf>,
    /// The program's argument templates, one per argument.
    pub args: Vec<String>,
    /// The template of standard input, if it is generated.
    pub stdin: Option<String>,
    /// Text, or one JSON object.
    pub format: ReportFormat,
}

/// The two programs under comparison, both run with the original's
/// `argv[0]`.
struct Pair<'a> {
    original: &'a Path,
    residual: &'a Path,
    timeout: Duration,
}

impl Pair<'_> {
    /// Runs both programs on `input`.
    fn run(&self, input: &Rendered) -> Result<(Outcome, Outcome)> {
        let args: Vec<&str> = input.args.iter().map(String::as_str).collect();
        let run = |p| run_program(p, self.original, &args, &input.stdin, self.timeout);
        Ok((run(self.original)?, run(self.residual)?))
    }
}

/// `wiper check`: specializes `function` for `statics` (or takes the
/// residual binary of `check.residual`), then runs both binaries on
/// `check.runs` generated inputs. The report says `N/N agree`, or gives
/// the first difference minimized, with exit status 1; in JSON, one object
/// with the runs, the seed, how many agreed and the difference, if any.
pub fn check<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    output: Option<&Path>,
    options: &wiper_specialize::Options,
    check: &CheckOptions,
) -> Result<Report> {
    let inputs = Inputs::parse(&check.args, check.stdin.as_deref())?;
    if check.runs == 0 {
        return Err(anyhow!("--runs must be at least 1"));
    }
    let (residual, sp) = match &check.residual {
        Some(r) if !r.is_file() => return Err(anyhow!("{}: no such residual binary", r.display())),
        Some(r) => (r.clone(), None),
        None => {
            let (sp, out) = specialize_beside(path, function, statics, output, options)?;
            (out, Some(sp))
        }
    };
    let pair = Pair {
        original: path,
        residual: &residual,
        timeout: check.timeout,
    };
    let found = first_difference(&pair, &inputs, check)?;
    let (stdout, stderr) = match check.format {
        ReportFormat::Text => (
            match &found {
                Some(d) => d.text(path, check),
                None => format!("{0}/{0} agree\n", check.runs),
            },
            sp.as_ref().map(stderr_lines).unwrap_or_default(),
        ),
        ReportFormat::Json => {
            let v = serde_json::json!({
                "runs": check.runs,
                "seed": check.seed,
                "agreed": found.as_ref().map_or(check.runs, |d| d.run),
                "residual": residual.display().to_string(),
                "summary": sp.as_ref().map(json::summary),
                "difference": found.as_ref().map(|d| d.json(path, check)),
            });
            (
                json::to_text(&v),
                sp.as_ref().map(warning_lines).unwrap_or_default(),
            )
        }
    };
    Ok(Report {
        stdout,
        stderr,
        exit_status: u8::from(found.is_some()),
        ..Default::default()
    })
}

/// The first input on which the two programs differ, minimized.
struct Difference {
    /// How many runs agreed before it (it is run `run + 1`).
    run: u64,
    /// The input as generated.
    first: Rendered,
    /// The input minimized.
    input: Rendered,
    /// How the original and the residual program ran on `input`.
    outcomes: (Outcome, Outcome),
}

impl Difference {
    /// `run I of N differs: ...`, the reproducer's command line and
    /// standard input, and both outcomes.
    fn text(&self, path: &Path, check: &CheckOptions) -> String {
        let mut text = format!(
            "run {} of {} differs: {}\n",
            self.run + 1,
            check.runs,
            command_line(path, &self.first)
        );
        let _ = writeln!(text, "reproducer: {}", command_line(path, &self.input));
        if check.stdin.is_some() {
            let _ = writeln!(text, "stdin: \"{}\"", self.input.stdin.escape_ascii());
        }
        let (a, b) = &self.outcomes;
        let _ = write!(text, "original: {a}residual: {b}");
        text
    }

    /// The difference as JSON: the run, the first and the minimized input
    /// (`reproducer`), and both outcomes on the reproducer.
    fn json(&self, path: &Path, check: &CheckOptions) -> serde_json::Value {
        let input = |i: &Rendered| {
            let stdin = check.stdin.is_some();
            serde_json::json!({
                "args": i.args,
                "command_line": command_line(path, i),
                "stdin": stdin.then(|| String::from_utf8_lossy(&i.stdin)),
                "stdin_hex": stdin.then(|| wiper_x86::format::bytes_text(&i.stdin)),
            })
        };
        serde_json::json!({
            "run": self.run + 1,
            "first": input(&self.first),
            "reproducer": input(&self.input),
            "original": json::run(&self.outcomes.0),
            "residual": json::run(&self.outcomes.1),
        })
    }
}

/// Runs both programs of `pair` on `check.runs` inputs drawn from `inputs`
/// with `check.seed`; the first on which they differ, minimized.
fn first_difference(
    pair: &Pair<'_>,
    inputs: &Inputs,
    check: &CheckOptions,
) -> Result<Option<Difference>> {
    let mut rng = Rng::new(check.seed);
    for i in 0..check.runs {
        let values = inputs.generate(i, check.runs, &mut rng);
        let first = inputs.render(&values);
        let (a, b) = pair.run(&first)?;
        if a == b {
            continue;
        }
        let deadline = Instant::now() + SHRINK_TIME;
        let small = shrink::minimize(&inputs.templates, values, SHRINK_BUDGET, |v| {
            if Instant::now() > deadline {
                return Ok(false);
            }
            let (a, b) = pair.run(&inputs.render(v))?;
            Ok(a != b)
        })?;
        let input = inputs.render(&small);
        let outcomes = pair.run(&input)?;
        return Ok(Some(Difference {
            run: i,
            first,
            input,
            outcomes,
        }));
    }
    Ok(None)
}

/// `./BINARY ARGS...` as a shell would take it (a bare file name gets
/// `./`; words with other than plain characters are single-quoted).
fn command_line(path: &Path, input: &Rendered) -> String {
    let program = path.display().to_string();
    let program = if path.components().count() == 1 && path.is_relative() {
        format!("./{program}")
    } else {
        program
    };
    std::iter::once(program.as_str())
        .chain(input.args.iter().map(String::as_str))
        .map(shell_word)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` quoted for a POSIX shell when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_quoted_for_the_shell() {
        let input = Rendered {
            args: vec!["-5".into(), String::new(), "a b".into(), "it's".into()],
            stdin: Vec::new(),
        };
        assert_eq!(
            command_line(Path::new("power-O2"), &input),
            r"./power-O2 -5 '' 'a b' 'it'\''s'"
        );
        assert!(command_line(Path::new("/x/p"), &input).starts_with("/x/p -5"));
    }
}
