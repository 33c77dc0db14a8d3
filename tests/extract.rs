//! `wiper extract`: the command line's errors (fast), and `gzip -d`
//! extracted from the musl-built gzip, judged against the original on a
//! corpus the original makes (slow: ignored in a default run; `.ci/run`
//! runs it in release: `cargo test --release --test extract -- --ignored`).

mod common;

use std::path::Path;
use std::time::Duration;

use wiper_run::{run, Invocation, Outcome, RunOutput, Termination};
use wiper_testkit::{real_bin, scratch_file};

use common::{assert_fails, wiper};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `path` as `argv0 args...` on `stdin`.
fn run_as(path: &Path, argv0: &str, args: &[&str], stdin: &[u8]) -> RunOutput {
    let inv = Invocation {
        path,
        argv0: Some(Path::new(argv0)),
        args,
        stdin,
        env: &[],
        timeout: TIMEOUT,
    };
    match run(&inv).expect("the program runs") {
        Outcome::Finished(out) => out,
        Outcome::TimedOut(t) => panic!("{} ran longer than {t:?}", path.display()),
    }
}

#[test]
fn bad_command_lines_are_one_line_errors_and_write_nothing() {
    let gzip = real_bin("gzip-musl");
    let out = scratch_file("out", b"untouched");
    let out_text = out.to_str().expect("a UTF-8 path");
    let gzip_text = gzip.to_str().expect("a UTF-8 path");
    let cases: [(&[&str], &str); 5] = [
        (&["--argv", "gzip 'd"], "unterminated '"),
        (&["--argv", "   "], "no words"),
        (&["--argv", "gzip -d", "--env", "NOVALUE"], "not NAME=VALUE"),
        (
            &["--argv", "gzip -d", "--emit", "bin"],
            "--emit elf or --emit asm",
        ),
        (
            &["--argv", "gzip -d", "-o", gzip_text],
            "refusing to overwrite",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["extract", gzip_text];
        if !args.contains(&"-o") {
            all.extend(["-o", out_text]);
        }
        all.extend_from_slice(args);
        assert_fails(&all, message);
        assert_eq!(std::fs::read(&out).unwrap(), b"untouched", "{args:?}");
    }
    assert!(std::fs::read(&gzip).unwrap().starts_with(b"\x7fELF"));
}

/// The decompressor's corpus, compressed by `gzip` itself: empty input,
/// one byte, text, every byte value, random bytes, at levels 1, 6 and 9;
/// two members in one file; and bad input: not compressed, truncated, a
/// flipped bit in the data and one in the CRC, trailing garbage.
fn corpus(gzip: &Path) -> Vec<(String, Vec<u8>)> {
    let text: Vec<u8> = (0..2000)
        .flat_map(|i| format!("line {i} of a text to compress\n").into_bytes())
        .collect();
    let mut rng = wiper_x86::Rng::new(0x5eed);
    let random: Vec<u8> = (0..256 * 1024).map(|_| rng.next_u32() as u8).collect();
    let plain = [
        ("empty", Vec::new()),
        ("one", b"x".to_vec()),
        ("text", text.clone()),
        ("bytes", (0..=255u8).cycle().take(4096).collect()),
        ("random", random),
    ];
    let pack = |level: &str, data: &[u8]| -> Vec<u8> {
        let out = run_as(gzip, "gzip", &[level, "-c"], data);
        assert_eq!(out.status, Termination::Exited(0), "gzip {level} -c");
        out.stdout
    };
    let mut files = Vec::new();
    for (name, data) in &plain {
        for level in ["-1", "-6", "-9"] {
            files.push((format!("{name}{level}"), pack(level, data)));
        }
    }
    let packed = pack("-6", &text);
    let mut two = packed.clone();
    two.extend(pack("-6", b"second member\n"));
    files.push(("two-members".into(), two));
    files.push(("not-compressed".into(), text.clone()));
    files.push(("truncated".into(), packed[..packed.len() / 2].to_vec()));
    let mut flipped = packed.clone();
    flipped[packed.len() / 2] ^= 0x10;
    files.push(("flipped-data".into(), flipped));
    let mut crc = packed.clone();
    let at = packed.len() - 6;
    crc[at] ^= 1;
    files.push(("flipped-crc".into(), crc));
    let mut trailing = packed;
    trailing.extend(b"trailing garbage");
    files.push(("trailing".into(), trailing));
    files
}

#[test]
#[ignore = "slow: extracts from a whole program (release: about 2 minutes on 2 loaded cores)"]
fn gzip_d_extracted_from_musl_gzip_behaves_like_gzip_d() {
    let gzip = real_bin("gzip-musl");
    let extracted = scratch_file("gzip-d", b"");
    let o = wiper(&[
        "extract",
        gzip.to_str().unwrap(),
        "--argv",
        "gzip -d",
        "-o",
        extracted.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (name, data) in corpus(&gzip) {
        let want = run_as(&gzip, "gzip", &["-d"], &data);
        // The extracted program has its command line built in.
        let got = run_as(&extracted, "gzip", &[], &data);
        assert_eq!(
            (got.status, got.stderr_str()),
            (want.status, want.stderr_str()),
            "{name}: how it ended, standard error"
        );
        assert!(got.stdout == want.stdout, "{name}: standard output differs");
    }
}
