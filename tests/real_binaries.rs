//! How wiper fares on real programs nobody here wrote (testdata/real):
//! measurements, ignored by default; their figures are in
//! docs/real-binaries.md ("Semantics and specialization").
//!
//! `cargo test --release --test real_binaries -- --ignored --nocapture`
//!
//! `gzip_functions_reachable_from_main`: every function of `gzip-glibc`
//! reachable from `main` by direct calls (the binary's own code and the
//! static glibc it contains; not PLT stubs) is specialized with nothing
//! static (`wiper specialize --function 0xADDR`), and each residual binary
//! runs gzip's usual jobs next to the original on the same input
//! (compressing at levels 1, 6 and 9, decompressing, testing, listing):
//! stdout, stderr and exit status must be the same. A residual whose
//! function none of the jobs calls passes trivially; the count of those is
//! not separated out (the jobs call `main`, the deflate and inflate paths and
//! the I/O they use). `WIPER_REAL_LIMIT=N` specializes only the first N
//! functions.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use wiper_elf::Binary;
use wiper_testkit::{real_bin, run_binary_with_timeout, scratch_file, RunOutput};
use wiper_x86::Disassembler;

/// How long one specialization may take.
const SPECIALIZE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one run of gzip (original or residual) may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// Entries of the functions reachable from `main` by direct calls and tail
/// calls, `main` included, in address order.
fn reachable_from_main(binary: &Binary) -> Vec<u32> {
    let main = wiper_x86::find_main(binary).expect("main");
    Disassembler::new(binary).reachable_from([main])
}

/// Input for gzip: text with repeats and some noise, 48 KiB.
fn sample_input() -> Vec<u8> {
    let mut rng = wiper_x86::Rng::new(0x6a19);
    let words = [
        "wiper ",
        "partial ",
        "evaluation ",
        "of ",
        "machine ",
        "code\n",
    ];
    let mut out = Vec::new();
    while out.len() < 48 * 1024 {
        if rng.below(8) == 0 {
            out.push(rng.next_u32() as u8);
        } else {
            let w = words[rng.below(words.len() as u32) as usize];
            out.extend_from_slice(w.as_bytes());
        }
    }
    out
}

/// The jobs: (arguments, stdin).
fn jobs(input: &[u8], compressed: &[u8]) -> Vec<(Vec<&'static str>, Vec<u8>)> {
    vec![
        (vec!["-c"], input.to_vec()),
        (vec!["-1c"], input.to_vec()),
        (vec!["-9c"], input.to_vec()),
        (vec!["-dc"], compressed.to_vec()),
        (vec!["-t"], compressed.to_vec()),
        (vec!["-dc"], b"not gzip data".to_vec()),
    ]
}

/// The first words of an error line, to group failures.
fn error_kind(stderr: &str) -> String {
    let line = stderr.lines().last().unwrap_or("").to_owned();
    let after = line.rsplit(": ").next().unwrap_or(&line);
    let words: Vec<&str> = after.split_whitespace().take(6).collect();
    // Drop addresses, so one reason is one group.
    words
        .into_iter()
        .map(|w| {
            if w.starts_with("0x") || w.starts_with("`") {
                "_"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
#[ignore]
fn gzip_functions_reachable_from_main() {
    let gzip = real_bin("gzip-glibc");
    let binary = Binary::open(&gzip).unwrap();
    let mut functions = reachable_from_main(&binary);
    if let Some(n) = std::env::var("WIPER_REAL_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        functions.truncate(n);
    }
    let input = sample_input();
    let original = |args: &[&str], stdin: &[u8]| {
        run_binary_with_timeout(&gzip, args, stdin, RUN_TIMEOUT).expect("the original runs")
    };
    let compressed = original(&["-c"], &input).stdout;
    let expected: Vec<RunOutput> = jobs(&input, &compressed)
        .iter()
        .map(|(a, i)| original(a, i))
        .collect();
    // gzip names itself after its file in messages: the same name.
    let out = scratch_file("gzip-glibc", b"");
    let (mut specialized, mut same) = (0, 0);
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut differ = Vec::new();
    let started = Instant::now();
    for &f in &functions {
        let name = binary
            .function_at(f)
            .map_or_else(|| format!("{f:#x}"), |s| s.name.clone());
        let result = specialize(&gzip, f, &out);
        if let Err(e) = result {
            errors.entry(error_kind(&e)).or_default().push(name);
            continue;
        }
        specialized += 1;
        let ok = jobs(&input, &compressed)
            .iter()
            .zip(&expected)
            .all(|((a, i), want)| {
                run_binary_with_timeout(&out, a, i, RUN_TIMEOUT).is_ok_and(|r| r == *want)
            });
        if ok {
            same += 1;
        } else {
            differ.push(name);
        }
    }
    println!(
        "gzip-glibc: {} functions reachable from main; {specialized} specialize with nothing \
         static, {same} of them behave like the original on every job; {:.0} s",
        functions.len(),
        started.elapsed().as_secs_f64()
    );
    println!("residuals that differ: {differ:?}");
    let mut by_count: Vec<(&String, &Vec<String>)> = errors.iter().collect();
    by_count.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (kind, names) in by_count {
        let shown: Vec<&String> = names.iter().take(6).collect();
        println!("  {:4} {kind}  (e.g. {shown:?})", names.len());
    }
    assert!(differ.is_empty(), "residuals that differ: {differ:?}");
}

/// Runs `wiper specialize` on the function at `entry` of `binary`, writing
/// `out`; the error line on failure.
fn specialize(binary: &Path, entry: u32, out: &Path) -> Result<(), String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wiper"))
        .args(["specialize", binary.to_str().unwrap(), "--function"])
        .arg(format!("{entry:#x}"))
        .arg("-o")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run wiper");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            use std::io::Read as _;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return if status.success() { Ok(()) } else { Err(err) };
        }
        if started.elapsed() > SPECIALIZE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err("timed out".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
