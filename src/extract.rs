//! `wiper extract`: the command line the extracted program behaves as if
//! started with (`--argv`, split like a POSIX shell splits words, and
//! `--env`), and the command itself. docs/extraction.md has the model.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::commands::{check_output, load, stderr_lines, EmitKind, Report};
use crate::{FunctionFate, ProcessImage};
use wiper_x86::reach::Kept;

/// Splits `line` into words as a POSIX shell does, without expansions:
/// blanks separate words; `'...'` is literal; in `"..."` a backslash
/// escapes only `"`, `\`, `$` and `` ` ``; elsewhere a backslash escapes
/// the next character. An unterminated quote or a trailing backslash is an
/// error.
pub fn split_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => bail!("unterminated ' in --argv `{line}`"),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => bail!("unterminated \" in --argv `{line}`"),
                        },
                        Some(c) => w.push(c),
                        None => bail!("unterminated \" in --argv `{line}`"),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => bail!("--argv `{line}` ends with a backslash"),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// The process image of `--argv LINE` and the `--env NAME=VALUE` values:
/// at least one word (`argv[0]`), no NUL anywhere, every environment entry
/// with a `=` after a non-empty name.
pub fn process_image(argv_line: &str, env: &[String]) -> Result<ProcessImage> {
    let argv = split_words(argv_line)?;
    if argv.is_empty() {
        bail!("--argv `{argv_line}` has no words: it needs at least the program name");
    }
    for e in env {
        match e.split_once('=') {
            Some((name, _)) if !name.is_empty() => {}
            _ => bail!("--env `{e}` is not NAME=VALUE"),
        }
    }
    let all = argv.iter().chain(env);
    if let Some(bad) = all.clone().find(|s| s.contains('\0')) {
        bail!("`{}` contains a NUL byte", bad.escape_debug());
    }
    Ok(ProcessImage {
        argv: argv.into_iter().map(String::into_bytes).collect(),
        envp: env.iter().map(|e| e.clone().into_bytes()).collect(),
    })
}

/// What `wiper extract` is asked for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The command line (`--argv`).
    pub argv: &'a str,
    /// The environment (`--env`, `NAME=VALUE` each).
    pub env: &'a [String],
    /// Where to write.
    pub output: &'a Path,
    /// What to write: the ELF or the listing (`--emit bin` is refused).
    pub emit: EmitKind,
    /// Where to write the list of the original functions, kept or
    /// dropped (`--report`).
    pub report: Option<&'a Path>,
}

/// `wiper extract`: specializes the program at `path` for the command line
/// and environment of `request` and writes the result; the summary line
/// and warnings go to stderr.
pub fn extract(
    path: &Path,
    request: &Request<'_>,
    options: &wiper_specialize::Options,
) -> Result<Report> {
    let Request {
        argv: argv_line,
        env,
        output,
        emit,
        report,
    } = *request;
    if emit == EmitKind::Bin {
        bail!("wiper extract writes --emit elf or --emit asm");
    }
    check_output(path, Some(output))?;
    check_output(path, report)?;
    let image = process_image(argv_line, env)?;
    let binary = crate::Binary::from_loaded(path, load(path)?);
    let residual = crate::extract(&binary, &image, options)
        .with_context(|| format!("{}: extracting `{argv_line}`", path.display()))?;
    let mut fallback = None;
    let bytes = match emit {
        EmitKind::Asm => residual.listing().into_bytes(),
        // A file the compact writer cannot lay out (no section headers,
        // no room for its program header table) is written whole: the
        // input with the residual appended.
        _ => residual
            .compact_elf_bytes()
            .or_else(|e| {
                fallback = Some(format!(
                    "wiper: warning: {e}; the output is the input with the residual code appended"
                ));
                residual.elf_bytes()
            })
            .map_err(|e| anyhow!(e))?,
    };
    crate::api::write_executable(output, &bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let fates = residual.function_fates();
    if let Some(file) = report {
        std::fs::write(file, fates_text(&fates))
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    let mut stderr = stderr_lines(&residual);
    stderr.insert(1, reach_line(&fates));
    stderr.extend(fallback);
    Ok(Report {
        stderr,
        ..Default::default()
    })
}

/// `wiper: original functions still reachable: K of N (B of A bytes)`.
fn reach_line(fates: &[FunctionFate]) -> String {
    let bytes = |kept_only: bool| -> u64 {
        fates
            .iter()
            .filter(|f| !kept_only || f.kept.is_some())
            .map(|f| u64::from(f.size))
            .sum()
    };
    format!(
        "wiper: original functions still reachable: {} of {} ({} of {} bytes)",
        fates.iter().filter(|f| f.kept.is_some()).count(),
        fates.len(),
        bytes(true),
        bytes(false)
    )
}

/// The `--report` file: a line per original function, by address: its
/// address, size and name, then `kept` and why, or `dropped`.
pub fn fates_text(fates: &[FunctionFate]) -> String {
    let mut out = String::new();
    for f in fates {
        let why = match f.kept {
            None => "dropped".to_owned(),
            Some(Kept::Entered) => "kept: the residual code enters it".to_owned(),
            Some(Kept::CalledBy(c)) => format!("kept: called by {c:#010x}"),
            Some(Kept::AddressIn(c)) => format!("kept: its address is in the code of {c:#010x}"),
            Some(Kept::AddressInData(d)) => format!("kept: its address is in data at {d:#010x}"),
            Some(Kept::Replaced) => {
                "replaced: only the jump at its entry to the residual code is kept".to_owned()
            }
        };
        out.push_str(&format!("{:#010x} {:6} {} {why}\n", f.addr, f.size, f.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell_splits_them() {
        let cases: [(&str, &[&str]); 6] = [
            ("gzip -d", &["gzip", "-d"]),
            ("  gzip\t-d  -c ", &["gzip", "-d", "-c"]),
            ("a 'b c' \"d e\"", &["a", "b c", "d e"]),
            (r#"x\ y "a\"b" 'c\d' "\n""#, &["x y", "a\"b", r"c\d", r"\n"]),
            ("a''b \"\"", &["ab", ""]),
            ("", &[]),
        ];
        for (line, words) in cases {
            assert_eq!(split_words(line).unwrap(), words, "{line}");
        }
        for bad in ["'a", "\"a", "a\\"] {
            assert!(split_words(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_environment_needs_names_and_values() {
        let image = process_image("gzip -d", &["A=1".into(), "B=".into()]).unwrap();
        assert_eq!(image.argv, [b"gzip".to_vec(), b"-d".to_vec()]);
        assert_eq!(image.envp, [b"A=1".to_vec(), b"B=".to_vec()]);
        for bad in ["A", "=1"] {
            assert!(process_image("gzip", &[bad.into()]).is_err(), "{bad}");
        }
        assert!(process_image("  ", &[]).is_err());
    }
}
