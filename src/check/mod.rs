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

use crate::commands::{run_program, specialize_beside, stderr_lines, FunctionArg, Report};
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
/// the first difference minimized, with exit status 1.
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
    let (residual, stderr) = match &check.residual {
        Some(r) if !r.is_file() => return Err(anyhow!("{}: no such residual binary", r.display())),
        Some(r) => (r.clone(), Vec::new()),
        None => {
            let (sp, out) = specialize_beside(path, function, statics, output, options)?;
            (out, stderr_lines(&sp))
        }
    };
    let pair = Pair {
        original: path,
        residual: &residual,
        timeout: check.timeout,
    };
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
        let (a, b) = pair.run(&input)?;
        let mut text = format!(
            "run {} of {} differs: {}\n",
            i + 1,
            check.runs,
            command_line(path, &first)
        );
        let _ = writeln!(text, "reproducer: {}", command_line(path, &input));
        if check.stdin.is_some() {
            let _ = writeln!(text, "stdin: \"{}\"", input.stdin.escape_ascii());
        }
        let _ = write!(text, "original: {a}residual: {b}");
        return Ok(Report {
            stdout: text,
            stderr,
            exit_status: 1,
            ..Default::default()
        });
    }
    Ok(Report {
        stdout: format!("{0}/{0} agree\n", check.runs),
        stderr,
        ..Default::default()
    })
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
