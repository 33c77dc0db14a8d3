//! `wiper extract`: the command line's errors (fast), and `gzip -d` and
//! `bzip2 -d` extracted from each real compressor (the source-built ones,
//! static; Debian's, dynamic), judged against the original on a corpus
//! the original makes (slow: ignored in a default run; `.ci/run` runs them
//! in release: `cargo test --release --test extract -- --ignored`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use wiper_run::{run, Invocation, Outcome, RunOutput, Termination};
use wiper_testkit::{real_bin, scratch_file};

use common::{assert_fails, wiper};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `path` as `argv0 args...` on `stdin`, with `env` added to the
/// environment.
fn run_as(
    path: &Path,
    argv0: &str,
    args: &[&str],
    stdin: &[u8],
    env: &[(&str, &str)],
) -> RunOutput {
    let inv = Invocation {
        path,
        argv0: Some(Path::new(argv0)),
        args,
        stdin,
        env,
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

/// A compressor of the real test bed: the file, the name it runs under
/// (`gzip`, `bzip2`), and the environment it needs (Debian's bzip2 finds
/// `libbz2.so.1.0` beside it).
struct Compressor {
    path: PathBuf,
    name: &'static str,
    env: Vec<(&'static str, String)>,
}

impl Compressor {
    fn new(program: &str) -> Compressor {
        let path = real_bin(program);
        let name = if program.contains("bzip2") {
            "bzip2"
        } else {
            "gzip"
        };
        let dir = path
            .parent()
            .expect("a directory")
            .to_string_lossy()
            .into_owned();
        let env = match program.starts_with("debian/") {
            true => vec![("LD_LIBRARY_PATH", dir)],
            false => Vec::new(),
        };
        Compressor { path, name, env }
    }

    /// Runs `program` (this compressor or its extracted `-d`) as this
    /// compressor's name with `args` on `stdin`.
    fn run(&self, program: &Path, args: &[&str], stdin: &[u8]) -> RunOutput {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_as(program, self.name, args, stdin, &env)
    }

    /// The decompressor's corpus, compressed by the compressor itself:
    /// empty input, one byte, text, every byte value, random bytes, at
    /// levels 1, 6 and 9; two members (streams) in one file; and bad
    /// input: not compressed, truncated, a flipped bit in the data and one
    /// near the end (gzip's CRC, bzip2's stream CRC), trailing garbage.
    fn corpus(&self) -> Vec<(String, Vec<u8>)> {
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
            let out = self.run(&self.path, &[level, "-c"], data);
            assert_eq!(
                out.status,
                Termination::Exited(0),
                "{} {level} -c",
                self.name
            );
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
}

/// The bytes a program loads that are not writable data, as `size`
/// counts its "text": the sections that are loaded and have contents,
/// code or read-only.
fn text_bytes(path: &Path) -> u64 {
    const SHF_WRITE: u32 = 1;
    const SHF_ALLOC: u32 = 2;
    const SHF_EXECINSTR: u32 = 4;
    const SHT_NOBITS: u32 = 8;
    let binary = wiper_elf::Binary::open(path).expect("an ELF");
    binary
        .sections
        .iter()
        .filter(|s| s.flags & SHF_ALLOC != 0 && s.kind != SHT_NOBITS)
        .filter(|s| s.flags & SHF_EXECINSTR != 0 || s.flags & SHF_WRITE == 0)
        .map(|s| u64::from(s.size))
        .sum()
}

/// The functions `--report` lists as dropped must be gone from the
/// extracted program: no symbol names them, and the code of each (its
/// first 32 bytes, for those that long) is nowhere in the file.
fn assert_dropped_are_gone(original: &Path, extracted: &Path, report: &str) {
    let binary = wiper_elf::Binary::open(original).unwrap();
    let out = wiper_elf::Binary::open(extracted).unwrap();
    let file = std::fs::read(extracted).unwrap();
    let original = std::fs::read(original).unwrap();
    for line in report.lines().filter(|l| l.ends_with(" dropped")) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let addr = u32::from_str_radix(fields[0].trim_start_matches("0x"), 16).unwrap();
        let size: u32 = fields[1].parse().unwrap();
        let name = fields[2];
        assert!(
            !out.symbols.iter().any(|s| s.name == name && s.addr == addr),
            "{}: the dropped {name} still has its symbol",
            extracted.display()
        );
        let code = binary.read(addr, 32).unwrap_or_default();
        // (A function whose first 32 bytes are another's too, such as two
        // copies of one static helper, cannot be told apart by them.)
        let unique = original.windows(32).filter(|w| *w == code).count() == 1;
        if size >= 32 && unique {
            assert!(
                !file.windows(32).any(|w| w == code),
                "{}: the code of the dropped {name} is still in the file",
                extracted.display()
            );
        }
    }
}

/// Extracts `NAME -d` from `program` and runs it against the original
/// with `-d` on the corpus: standard output, standard error and how it
/// ended must be equal. The functions the report drops must be gone, and
/// when `smaller`, the extracted program must load fewer bytes of code
/// and read-only data than the original.
fn judge(program: &str, smaller: bool) -> String {
    let c = Compressor::new(program);
    let extracted = scratch_file(&format!("{}-d", c.name), b"");
    let report = scratch_file(&format!("{}-d.report", c.name), b"");
    let o = wiper(&[
        "extract",
        c.path.to_str().unwrap(),
        "--argv",
        &format!("{} -d", c.name),
        "-o",
        extracted.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(&report).unwrap();
    assert_dropped_are_gone(&c.path, &extracted, &report);
    let (before, after) = (text_bytes(&c.path), text_bytes(&extracted));
    assert!(
        !smaller || after < before,
        "{program}: {after} bytes of code and read-only data, the original has {before}"
    );
    let summary = String::from_utf8_lossy(&o.stderr).into_owned();
    for (name, data) in c.corpus() {
        let want = c.run(&c.path, &["-d"], &data);
        // The extracted program has its command line built in.
        let got = c.run(&extracted, &[], &data);
        assert_eq!(
            (got.status, got.stderr_str()),
            (want.status, want.stderr_str()),
            "{program}: {name}: how it ended, standard error"
        );
        assert!(
            got.stdout == want.stdout,
            "{program}: {name}: standard output differs"
        );
    }
    summary
}

#[test]
#[ignore = "slow: extracts from a whole program"]
fn gzip_d_extracted_from_musl_gzip_behaves_like_gzip_d() {
    let summary = judge("gzip-musl", true);
    // Calls whose specializing cannot pay call the original code
    // (docs/extraction.md): 2,021 residual instructions observed; 82,426
    // when every call was inlined. The bound leaves room for the code of
    // the start-up and option parsing to change shape.
    let residual: usize = summary
        .split("-> ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no residual size in {summary}"));
    assert!(residual < 4_000, "{residual} residual instructions");
    // `main` is specialized (its option parsing ran at extraction time:
    // no call of `getopt_long` is left), and what the input decides runs
    // as the original code (`treat_stdin` is called, not inlined).
    let listing = scratch_file("gzip-d.s", b"");
    let o = wiper(&[
        "extract",
        real_bin("gzip-musl").to_str().unwrap(),
        "--argv",
        "gzip -d",
        "--emit",
        "asm",
        "-o",
        listing.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listing = std::fs::read_to_string(&listing).unwrap();
    assert!(
        !listing.contains("<rpl_getopt_long>"),
        "getopt_long is still called"
    );
    assert!(
        listing.contains("<treat_stdin>"),
        "treat_stdin is not called"
    );
}

#[test]
#[ignore = "slow: extracts from a whole program"]
fn gzip_d_extracted_from_glibc_gzip_behaves_like_gzip_d() {
    judge("gzip-glibc", true);
}

#[test]
#[ignore = "slow: extracts from a whole program"]
fn bzip2_d_extracted_from_glibc_bzip2_behaves_like_bzip2_d() {
    judge("bzip2-glibc", true);
}

#[test]
#[ignore = "slow: extracts from main of a dynamically linked program"]
fn gzip_d_extracted_from_debian_s_gzip_behaves_like_gzip_d() {
    judge("debian/gzip", false);
}

#[test]
#[ignore = "slow: extracts from main of a dynamically linked program"]
fn bzip2_d_extracted_from_debian_s_bzip2_behaves_like_bzip2_d() {
    judge("debian/bzip2", false);
}

#[test]
#[ignore = "slow: extracts from a whole program"]
fn a_program_without_section_headers_is_written_whole_with_a_warning() {
    // gzip-musl with its section header table cut off (`e_shoff`,
    // `e_shnum`, `e_shstrndx` zero): the compact writer has no sections to
    // split, so the output is the input with the residual appended.
    let mut bytes = std::fs::read(real_bin("gzip-musl")).unwrap();
    bytes[32..36].fill(0);
    bytes[48..52].fill(0);
    let input = scratch_file("gzip-nosections", &bytes);
    let mut perms = std::fs::metadata(&input).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&input, perms).unwrap();
    let out = scratch_file("gzip-nosections-d", b"");
    let o = wiper(&[
        "extract",
        input.to_str().unwrap(),
        "--argv",
        "gzip -d",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: cannot write the compact output: the output has no section headers"
        ),
        "{stderr}"
    );
    let c = Compressor::new("gzip-musl");
    for (name, data) in c.corpus().into_iter().take(6) {
        let want = c.run(&input, &["-d"], &data);
        let got = c.run(&out, &[], &data);
        assert_eq!(
            (got.status, got.stderr_str(), &got.stdout),
            (want.status, want.stderr_str(), &want.stdout),
            "{name}"
        );
    }
}

/// The auxiliary vector's entries the extracted program's built-in stack
/// gives otherwise than Linux does (docs/extraction.md, "What is static at
/// the start"), with the line `stackprobe` prints for each in the
/// extracted program.
const AUXV_MODEL_CHOICES: [(&str, &str); 12] = [
    ("AT_BASE", "AT_BASE absent"),
    ("AT_FLAGS", "AT_FLAGS absent"),
    ("AT_UID", "AT_UID absent"),
    ("AT_EUID", "AT_EUID absent"),
    ("AT_GID", "AT_GID absent"),
    ("AT_EGID", "AT_EGID absent"),
    ("AT_HWCAP", "AT_HWCAP 0"),
    ("AT_HWCAP2", "AT_HWCAP2 absent"),
    ("AT_SYSINFO", "AT_SYSINFO absent"),
    ("AT_SYSINFO_EHDR", "AT_SYSINFO_EHDR absent"),
    ("AT_MINSIGSTKSZ", "AT_MINSIGSTKSZ absent"),
    // Fixed bytes in the extracted program's data: another address.
    ("AT_RANDOM", ""),
];

/// The kernel judges the process stack that `wiper extract` builds in
/// (testdata/src/stackprobe.c, static glibc): the original, started by
/// Linux with a command line and an environment, and the program
/// extracted for the same ones print the same `argc`, `argv` strings,
/// environment, stack alignment, and auxiliary vector entries (program
/// headers, page size, entry point, platform, clock ticks, `AT_SECURE`,
/// `AT_EXECFN`), but for the entries the model leaves out or fixes.
#[test]
#[ignore = "slow: extracts from a whole program"]
fn the_built_in_process_stack_is_the_one_linux_lays_out() {
    use std::os::unix::fs::PermissionsExt;
    let bytes = std::fs::read(wiper_testkit::testdata_bin("stackprobe")).unwrap();
    let probe = scratch_file("stackprobe", &bytes);
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let args = ["one", "two words", "", "x=y"];
    // In the order `Command` passes them (sorted by name).
    let env = [("A", "1"), ("EMPTY", ""), ("PATH_LIKE", "/a:/b=c")];
    let argv = format!("{} one 'two words' '' x=y", probe.display());
    let extracted = scratch_file("stackprobe-x", b"");
    let mut command = vec!["extract", probe.to_str().unwrap(), "--argv", &argv];
    let env_args: Vec<String> = env.iter().map(|(n, v)| format!("{n}={v}")).collect();
    for e in &env_args {
        command.extend(["--env", e.as_str()]);
    }
    command.extend(["-o", extracted.to_str().unwrap()]);
    let o = wiper(&command);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = |path: &Path| {
        let out = std::process::Command::new(path)
            .args(args)
            .env_clear()
            .envs(env)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {:?}", path.display(), out.status);
        String::from_utf8(out.stdout).unwrap()
    };
    let (kernel, built_in) = (run(&probe), run(&extracted));
    assert!(
        kernel.contains("AT_PHDR 0x") && kernel.contains("argc 5\n"),
        "{kernel}"
    );
    assert_eq!(
        kernel.lines().count(),
        built_in.lines().count(),
        "{built_in}"
    );
    for (k, b) in kernel.lines().zip(built_in.lines()) {
        let key = k.split(' ').next().unwrap();
        assert_eq!(key, b.split(' ').next().unwrap(), "{built_in}");
        match AUXV_MODEL_CHOICES.iter().find(|(name, _)| *name == key) {
            Some((_, "")) => assert!(!b.ends_with("absent"), "{b}"),
            Some((_, model)) => assert_eq!(b, *model),
            None => assert_eq!(b, k, "the kernel's stack and the built-in one differ"),
        }
    }
}
