//! The figures of docs/specialization.md on how the specializer uses the
//! binding-time analysis, for every differential case: instruction visits
//! the BTA decided, those the online step refined, those emitted without
//! evaluation, and the specialization time (the least of three runs of
//! `wiper specialize`). Not a test of correctness, so it is ignored; run it
//! with
//!
//! ```sh
//! cargo test --release --test bta_figures -- --ignored --nocapture
//! ```
//!
//! With `WIPER_BASELINE=PATH` (another build of `wiper`) each case is also
//! timed with that binary, for a before/after table.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cases::all_cases;
use wiper_testkit::scratch_file;

/// The `BtaStats` fields of the specializer's debug line, in order.
const FIELDS: [&str; 7] = [
    "contexts",
    "static_",
    "dynamic",
    "lifted",
    "unanalysed",
    "emitted",
    "refined",
];

/// The value of `field` in the `bta=BtaStats { ... }` text of `stderr`.
fn bta_field(stderr: &str, field: &str) -> Option<usize> {
    let stats = stderr.split("bta=BtaStats {").nth(1)?;
    let value = stats.split(&format!("{field}: ")).nth(1)?;
    value
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Runs `wiper` with `args` three times; the least wall time and the last
/// stderr, or `None` when it fails.
fn timed(wiper: &Path, args: &[String]) -> Option<(Duration, String)> {
    let mut best = Duration::MAX;
    let mut stderr = String::new();
    for _ in 0..3 {
        let start = Instant::now();
        let out = std::process::Command::new(wiper)
            .args(args)
            .env("RUST_LOG", "wiper_specialize=debug")
            .output()
            .ok()?;
        best = best.min(start.elapsed());
        if !out.status.success() {
            return None;
        }
        stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    }
    Some((best, stderr))
}

#[test]
#[ignore = "prints figures for docs/specialization.md; see the module doc"]
fn binding_time_figures() {
    let wiper = Path::new(env!("CARGO_BIN_EXE_wiper"));
    let baseline = std::env::var_os("WIPER_BASELINE");
    let out = scratch_file("bta_figures.residual", b"");
    let mut totals = [0usize; 7];
    let (mut time, mut base_time) = (Duration::ZERO, Duration::ZERO);
    println!("| case | visits | static | dynamic | lifted | unanalysed | emitted unevaluated | refined | time (ms) | baseline (ms) |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for case in all_cases() {
        let args = case.specialize_args(out.to_str().expect("UTF-8 path"));
        let Some((t, stderr)) = timed(wiper, &args) else {
            println!("| {} | failed |", case.label());
            continue;
        };
        let base = baseline
            .as_ref()
            .and_then(|b| timed(Path::new(b), &args))
            .map(|(t, _)| t);
        let f: Vec<usize> = FIELDS
            .iter()
            .map(|k| bta_field(&stderr, k).unwrap_or(0))
            .collect();
        for (total, v) in totals.iter_mut().zip(&f) {
            *total += v;
        }
        time += t;
        base_time += base.unwrap_or_default();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            case.label(),
            f[1] + f[2] + f[3] + f[4],
            f[1],
            f[2],
            f[3],
            f[4],
            f[5],
            f[6],
            t.as_millis(),
            base.map_or("-".to_string(), |b| b.as_millis().to_string())
        );
    }
    println!(
        "| total | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        totals[1] + totals[2] + totals[3] + totals[4],
        totals[1],
        totals[2],
        totals[3],
        totals[4],
        totals[5],
        totals[6],
        time.as_millis(),
        base_time.as_millis()
    );
}

#[test]
fn the_debug_line_is_read() {
    let line = "DEBUG specialized 0x80490a0 points=8 bta=BtaStats { contexts: 1, static_: 17, dynamic: 7, lifted: 2, unanalysed: 0, emitted: 5, refined: 1 }";
    let read: Vec<Option<usize>> = FIELDS.iter().map(|f| bta_field(line, f)).collect();
    assert_eq!(read, [1, 17, 7, 2, 0, 5, 1].map(Some).to_vec(), "{line}");
    assert_eq!(bta_field("no stats here", "static_"), None);
}
