//! `main` of every real program in `testdata/real/`, specialized with
//! nothing static and with a static `argc` of 2 (everything else dynamic),
//! must behave like the original on the same jobs: the compressors compress
//! each file of a set (`-c`) and decompress the original's output (`-dc`),
//! one argument each so that `argc` is 2, under the program's own name and
//! under the names that make it decompress (`bunzip2 -c`, `zcat -c`); Lua
//! runs scripts from standard input (`-`). Output bytes, standard error and exit status must be equal.
//!
//! Slow (each `main` inlines much of the program), so ignored in a default
//! `cargo test`: `cargo test --release --test real_main -- --ignored
//! --nocapture` (`.ci/run` runs it). Figures in docs/real-binaries.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wiper_run::{run, Invocation, Outcome, RunOutput};
use wiper_testkit::{real_bin, scratch_file, testdata_dir, REAL_BINARIES};

const TIMEOUT: Duration = Duration::from_secs(60);

/// One run: the name it runs under (`argv[0]`), its arguments and
/// standard input.
struct Job {
    argv0: &'static str,
    args: Vec<&'static str>,
    stdin: Vec<u8>,
}

/// Text with repeats, every byte value, and pseudo-random bytes.
fn files() -> Vec<Vec<u8>> {
    let text: Vec<u8> = (0..300)
        .flat_map(|i| format!("line {i}: partial evaluation of machine code\n").into_bytes())
        .collect();
    let mut rng = wiper_x86::Rng::new(0x9e37_79b9_7f4a_7c15);
    let random: Vec<u8> = (0..64 * 1024).map(|_| rng.next_u32() as u8).collect();
    vec![
        Vec::new(),
        b"x".to_vec(),
        text,
        (0..=255u8).cycle().take(2048).collect(),
        random,
    ]
}

/// Lua scripts: arithmetic, strings, tables, closures, an error.
const LUA_SCRIPTS: &[&str] = &[
    "print(1 + 2, 7 // 2, 2^10, 10 / 4)",
    "local t = {} for i = 1, 50 do t[i] = i * i end print(#t, t[7], table.concat(t, ',', 1, 5))",
    "print(string.format('%5.2f|%x|%s', 3.14159, 255, 'wiper'), ('abc'):rep(3), ('Hello'):upper())",
    "local function f(n) if n < 2 then return n end return f(n-1) + f(n-2) end print(f(20))",
    "error('boom')",
    "print(undefined_var.field)",
];

/// The name a real program runs under: its own (`bzip2-glibc` and
/// `debian/bzip2` run as `bzip2`). The compressors read it.
fn own_name(program: &'static str) -> &'static str {
    let file = program.rsplit('/').next().unwrap_or(program);
    file.split('-').next().unwrap_or(file)
}

/// The names under which a compressor decompresses (`bunzip2`, `zcat`):
/// each compares its `argv[0]` with strings of its own.
fn decompressing_names(name: &str) -> &'static [&'static str] {
    match name {
        "bzip2" => &["bunzip2", "bzcat"],
        "gzip" => &["gunzip", "zcat"],
        _ => &[],
    }
}

/// The jobs of `program`, for its original: compress each file, and
/// decompress what the original made of it, with `-d` and under the names
/// that decompress.
fn jobs(program: &'static str, original: &Path, env: &[(&str, &str)]) -> Vec<Job> {
    let argv0 = own_name(program);
    if program.starts_with("lua") {
        return LUA_SCRIPTS
            .iter()
            .map(|s| Job {
                argv0,
                args: vec!["-"],
                stdin: s.as_bytes().to_vec(),
            })
            .collect();
    }
    let mut out = Vec::new();
    for file in files() {
        let packed = run_job(
            original,
            &Job {
                argv0,
                args: vec!["-c"],
                stdin: file.clone(),
            },
            env,
        )
        .stdout;
        out.push(Job {
            argv0,
            args: vec!["-c"],
            stdin: file,
        });
        for &name in decompressing_names(argv0) {
            out.push(Job {
                argv0: name,
                args: vec!["-c"],
                stdin: packed.clone(),
            });
        }
        out.push(Job {
            argv0,
            args: vec!["-dc"],
            stdin: packed,
        });
    }
    // Not compressed data: an error.
    out.push(Job {
        argv0,
        args: vec!["-dc"],
        stdin: b"this is not compressed".to_vec(),
    });
    out
}

fn run_job(path: &Path, job: &Job, env: &[(&str, &str)]) -> RunOutput {
    let inv = Invocation {
        path,
        argv0: Some(Path::new(job.argv0)),
        args: &job.args,
        stdin: &job.stdin,
        env,
        timeout: TIMEOUT,
    };
    match run(&inv).unwrap() {
        Outcome::Finished(out) => out,
        Outcome::TimedOut(t) => panic!(
            "{} as {} {:?} ran longer than {t:?}",
            path.display(),
            job.argv0,
            job.args
        ),
    }
}

/// The library directory a real program needs (Debian's bzip2 is linked
/// against `libbz2.so.1.0`, kept beside it).
fn library_path(program: &str) -> Option<PathBuf> {
    program
        .starts_with("debian/")
        .then(|| testdata_dir().join("real/debian"))
}

#[test]
#[ignore = "slow: run in release (see the module doc)"]
fn main_of_every_real_program_behaves_like_the_original() {
    let options = wiper_specialize::Options::default();
    let mut failures = Vec::new();
    for &program in REAL_BINARIES {
        let original = real_bin(program);
        let libs = library_path(program);
        let libs_text = libs.as_ref().map(|p| p.display().to_string());
        let env: Vec<(&str, &str)> = libs_text
            .iter()
            .map(|p| ("LD_LIBRARY_PATH", p.as_str()))
            .collect();
        let binary = wiper_elf::Binary::open(&original).unwrap();
        let main = format!("{:#x}", wiper_x86::find_main(&binary).expect("main"));
        let jobs = jobs(program, &original, &env);
        let expected: Vec<RunOutput> = jobs.iter().map(|j| run_job(&original, j, &env)).collect();
        for statics in [vec![], vec!["arg0=2".to_string()]] {
            let label = format!("{program} main {statics:?}");
            let out = scratch_file(
                &format!("{}-main-{}", program.replace('/', "-"), statics.len()),
                b"",
            );
            let written =
                match wiper::commands::specialize_elf(&original, &main, &statics, &out, &options) {
                    Ok(w) => w,
                    Err(e) => {
                        failures.push(format!("{label}: {e:#}"));
                        continue;
                    }
                };
            let mut same = 0;
            for (job, want) in jobs.iter().zip(&expected) {
                let got = run_job(&out, job, &env);
                if &got == want {
                    same += 1;
                } else {
                    failures.push(format!(
                        "{label}: {} {:?} differs: {got:?} vs {want:?}",
                        job.argv0, job.args
                    ));
                }
            }
            println!(
                "{label}: {} residual instructions; {same}/{} jobs behave like the original",
                written.residual_instructions,
                jobs.len()
            );
            let _ = std::fs::remove_file(&out);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
