//! Identity specialization of real programs: every function reachable from
//! `main` of the real compressors in `testdata/real/` is specialized with
//! nothing static, and the residual binary must compress and decompress a
//! set of files byte for byte like the original, with the same exit status.
//! This is the soundness test of the whole pipeline on code nobody here
//! wrote: a residual that behaves differently fails it; a function wiper
//! refuses must be refused with a one-line error (counted and reported).
//!
//! The whole set is slow (hundreds of specializations and thousands of
//! runs), so it is ignored in a default `cargo test` and run with
//! `cargo test --release --test real_identity -- --ignored --nocapture`
//! (`.ci/run` runs it); `WIPER_REAL_LIMIT=N` takes every k-th function so
//! that about N are tried, `WIPER_REAL_PROGRAMS=A,B` only the programs
//! named, and `WIPER_REAL_FUNCTIONS=F,G` only the functions so named. The
//! figures are in docs/real-binaries.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use wiper_elf::Binary;
use wiper_testkit::{real_bin, run_binary_with_timeout, scratch_file, RunOutput};
use wiper_x86::Disassembler;

/// The files each residual compresses and decompresses: empty, one byte,
/// text, every byte value, 1 MiB of pseudo-random bytes, and text that is
/// already compressed (by the original).
fn file_set() -> Vec<(&'static str, Vec<u8>)> {
    let text: Vec<u8> = (0..400)
        .flat_map(|i| {
            format!("line {i}: the quick brown fox jumps over the lazy dog\n").into_bytes()
        })
        .collect();
    let every_byte: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let mut rng = wiper_x86::Rng::new(0x2545_f491_4f6c_dd1d);
    let random: Vec<u8> = (0..1 << 20).map(|_| rng.next_u32() as u8).collect();
    vec![
        ("empty", Vec::new()),
        ("one byte", b"x".to_vec()),
        ("text", text),
        ("every byte", every_byte),
        ("random 1 MiB", random),
    ]
}

/// The compressors under test (static, with symbols; each takes `-c` and
/// `-d -c` like gzip).
const PROGRAMS: &[&str] = &["gzip-musl", "gzip-glibc", "bzip2-glibc"];

/// What one run of compress-then-decompress over the file set gave.
#[derive(Debug, PartialEq, Eq)]
struct Behaviour(Vec<(String, RunOutput)>);

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `binary` as `-c` on each file and as `-d -c` on what the reference
/// compressor made of it (the original's compressed bytes, so that a
/// residual decompressor is judged on the same input).
fn behaviour(binary: &Path, files: &[(&str, Vec<u8>)], compressed: &[Vec<u8>]) -> Behaviour {
    let mut runs = Vec::new();
    for ((name, bytes), packed) in files.iter().zip(compressed) {
        let c = run_binary_with_timeout(binary, &["-c"], bytes, TIMEOUT).unwrap();
        runs.push((format!("compress {name}"), c));
        let d = run_binary_with_timeout(binary, &["-d", "-c"], packed, TIMEOUT).unwrap();
        runs.push((format!("decompress {name}"), d));
    }
    // Already compressed input, compressed again.
    let again = run_binary_with_timeout(binary, &["-c"], &compressed[2], TIMEOUT).unwrap();
    runs.push(("compress compressed text".to_string(), again));
    Behaviour(runs)
}

/// Entry addresses of `main` and every function it reaches by direct calls.
fn reachable_from_main(binary: &Binary) -> Vec<u32> {
    let main = wiper_x86::find_main(binary).expect("main");
    Disassembler::new(binary).reachable_from([main])
}

/// The kind of a specialization error: its message with addresses and
/// names taken out, so that errors group.
fn error_kind(message: &str) -> String {
    let last = message.rsplit(": ").next().unwrap_or(message);
    last.split_whitespace()
        .map(|w| {
            if w.contains("0x") || w.starts_with('`') {
                "…"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The figures for one program.
#[derive(Default, Debug)]
struct Figures {
    functions: usize,
    specialized: usize,
    same: usize,
    different: Vec<String>,
    /// Per kind of error: how many, and the first function refused so.
    errors: BTreeMap<String, (usize, String)>,
}

/// Specializes (about `limit` of) the functions reachable from `main` of
/// `program` and compares each residual's behaviour with the original's.
fn check_program(program: &str, files: &[(&str, Vec<u8>)], limit: usize) -> Figures {
    let path = real_bin(program);
    let binary = Binary::open(&path).unwrap();
    let compressed: Vec<Vec<u8>> = files
        .iter()
        .map(|(_, b)| {
            run_binary_with_timeout(&path, &["-c"], b, TIMEOUT)
                .unwrap()
                .stdout
        })
        .collect();
    let reference = behaviour(&path, files, &compressed);
    let mut functions = reachable_from_main(&binary);
    if let Ok(names) = std::env::var("WIPER_REAL_FUNCTIONS") {
        functions.retain(|&f| {
            binary
                .name_of(f)
                .is_some_and(|n| names.split(',').any(|x| x == n))
        });
    }
    let step = functions.len().div_ceil(limit.max(1)).max(1);
    let mut figures = Figures::default();
    let options = wiper_specialize::Options::default();
    for &entry in functions.iter().step_by(step) {
        figures.functions += 1;
        let out = scratch_file(&format!("{program}-{entry:x}"), b"");
        let function = format!("{entry:#x}");
        match wiper::commands::specialize_elf(&path, &function, &[], &out, &options) {
            Err(e) => {
                let message = format!("{e:#}");
                assert!(
                    !message.contains('\n'),
                    "{function}: not one line: {message}"
                );
                let name = binary.name_of(entry).unwrap_or_else(|| function.clone());
                figures
                    .errors
                    .entry(error_kind(&message))
                    .or_insert((0, name))
                    .0 += 1;
            }
            Ok(_) => {
                figures.specialized += 1;
                let got = behaviour(&out, files, &compressed);
                if got == reference {
                    figures.same += 1;
                } else {
                    let name = binary.name_of(entry).unwrap_or(function);
                    let first = reference
                        .0
                        .iter()
                        .zip(&got.0)
                        .find(|(a, b)| a != b)
                        .map_or("?".to_string(), |(a, _)| a.0.clone());
                    figures
                        .different
                        .push(format!("{name} ({entry:#x}): {first}"));
                }
            }
        }
        let _ = std::fs::remove_file(&out);
    }
    figures
}

#[test]
#[ignore = "slow: hundreds of specializations; run in release (see the module doc)"]
fn every_function_reachable_from_main_specializes_to_a_residual_that_behaves_like_the_original() {
    let limit = std::env::var("WIPER_REAL_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let only = std::env::var("WIPER_REAL_PROGRAMS").ok();
    let chosen = |p: &str| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == p));
    let files = file_set();
    let mut wrong = Vec::new();
    for &program in PROGRAMS.iter().filter(|p| chosen(p)) {
        let f = check_program(program, &files, limit);
        println!(
            "{}: {} functions tried, {} specialized, {} behave like the original, {} differ",
            program,
            f.functions,
            f.specialized,
            f.same,
            f.different.len()
        );
        let mut errors: Vec<_> = f.errors.iter().collect();
        errors.sort_by_key(|(_, (n, _))| std::cmp::Reverse(*n));
        for (kind, (n, first)) in errors {
            println!("    {n:4} {kind} (first: {first})");
        }
        wrong.extend(f.different.iter().map(|d| format!("{program}: {d}")));
    }
    assert!(
        wrong.is_empty(),
        "residuals that behave differently:\n{}",
        wrong.join("\n")
    );
}
