//! wiper as a library (`wiper::Binary`, `Spec`, `specialize`, `Residual`):
//! it gives what the command line gives, its listing and ELF are the same
//! from run to run and from process to process, and its errors are typed.

mod common;

use std::path::Path;
use std::process::Command;

use wiper_testkit::{scratch_file, testdata_bin};

/// Specializations whose output is compared: a small static binary, a
/// PIE, a loop unrolled through a jump table, an interpreter, `main` with
/// libc calls.
const CASES: &[(&str, &str, &[&str])] = &[
    ("power-O2", "power", &["arg1=1", "arg2=2"]),
    ("pie_switch-O2", "main", &["arg0=2"]),
    ("switch-O2", "dispatch", &["arg0=2"]),
    ("interp-O2", "run_vm", &["arg0=@i32:1,2,3"]),
    ("libc_demo-O1", "main", &["arg0=2"]),
];

/// The residual of a case, through the library.
fn residual(binary: &str, function: &str, statics: &[&str]) -> wiper::Residual {
    let b = wiper::Binary::open(testdata_bin(binary)).unwrap();
    let f = b.function(function).unwrap();
    wiper::specialize(&b, &f, &wiper::Spec::parse(statics).unwrap()).unwrap()
}

/// `wiper specialize` run in `dir` (another process, another working
/// directory): the `--emit asm` listing, and the ELF written to `out`.
fn cli_outputs(
    dir: &Path,
    binary: &str,
    function: &str,
    statics: &[&str],
    out: &str,
) -> (String, Vec<u8>) {
    let input = testdata_bin(binary);
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wiper"));
        cmd.current_dir(dir)
            .arg("specialize")
            .arg(&input)
            .args(["-f", function]);
        for s in statics {
            cmd.args(["--static", s]);
        }
        let o = cmd.args(extra).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    let listing = String::from_utf8(run(&["--emit", "asm"]).stdout).unwrap();
    run(&["-o", out]);
    (listing, std::fs::read(dir.join(out)).unwrap())
}

/// Specializing the same input twice gives byte-identical listings and
/// ELF files: in one process, and in two other processes (each with its
/// own hash seeds, working directory and output file name).
#[test]
fn listings_and_elf_files_are_deterministic() {
    for &(binary, function, statics) in CASES {
        let a = residual(binary, function, statics);
        let b = residual(binary, function, statics);
        assert_eq!(a.listing(), b.listing(), "{binary} {function}");
        let elf = a.elf_bytes().unwrap();
        assert_eq!(elf, b.elf_bytes().unwrap(), "{binary} {function}");
        for (n, name) in ["first.out", "second-output"].into_iter().enumerate() {
            let dir = scratch_file("dir", b"");
            let dir = dir.parent().unwrap();
            let (listing, bytes) = cli_outputs(dir, binary, function, statics, name);
            assert_eq!(listing, a.listing(), "{binary} {function}: process {n}");
            assert!(
                bytes == elf,
                "{binary} {function}: process {n}: the ELF differs"
            );
        }
    }
}

/// What could vary between runs is not in the listing: no path, no time.
#[test]
fn the_listing_names_no_path_and_no_time() {
    let r = residual("power-O2", "power", &["arg1=1", "arg2=2"]);
    let listing = r.listing();
    let dir = testdata_bin("power-O2");
    let dir = dir.parent().unwrap().to_str().unwrap();
    assert!(!listing.contains(dir), "{listing}");
    assert!(!listing.contains("power-O2"), "{listing}");
    let time = format!("{:.2} s", r.summary().time.as_secs_f64());
    assert!(!listing.contains(&time), "{listing}");
}

/// The summary's figures are those of the CLI's summary line, and the
/// listing and raw code are those of `--emit asm` and `--emit bin`.
#[test]
fn the_library_gives_what_the_cli_gives() {
    let (binary, function, statics) = CASES[0];
    let r = residual(binary, function, statics);
    let s = r.summary();
    assert_eq!(s.function, "power");
    assert_eq!(s.residual_bytes as usize, r.code().len());
    let line = s.to_string();
    let dir = scratch_file("x", b"");
    let out = common::wiper(&[
        "specialize",
        testdata_bin(binary).to_str().unwrap(),
        "-f",
        function,
        "--static",
        statics[0],
        "--static",
        statics[1],
        "--emit",
        "bin",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The line without its time: `wiper: specialized power: ... fallbacks, `.
    let untimed = &line[..line.rfind(", ").unwrap()];
    assert!(
        stderr.starts_with(&format!("wiper: {untimed}, ")),
        "{stderr} vs {line}"
    );
    assert!(
        stderr.contains(&format!("code loads at {:#x}", r.code_address())),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&dir).unwrap(), r.code());
    // The ELF runs: power(5, 1, 2) = (5 + 1)^2, as the original computes.
    let elf = scratch_file("power-y1-n2", b"");
    r.write_elf(&elf).unwrap();
    let original = wiper_testkit::run_binary(&testdata_bin(binary), &["5", "1", "2"], b"").unwrap();
    let specialized = wiper_testkit::run_binary(&elf, &["5", "1", "2"], b"").unwrap();
    assert_eq!(specialized.stdout, original.stdout);
    assert_eq!(specialized.status, original.status);
}

/// Errors are typed: a file that is not ELF, a misspelt function, an
/// address inside a function (with the nearest function starts), a bad
/// spec, a write that fails.
#[test]
fn errors_are_typed() {
    let not_elf = scratch_file("not-elf", b"hello");
    assert!(matches!(
        wiper::Binary::open(&not_elf),
        Err(wiper::Error::Elf(_))
    ));
    let b = wiper::Binary::open(testdata_bin("power-O2")).unwrap();
    assert!(matches!(b.function("powr"), Err(wiper::Error::Function(_))));
    let power = b.function("power").unwrap();
    let inside = format!("{:#x}", power.entry() + 4);
    match b.function(&inside) {
        Err(wiper::Error::NotFunctionStart { address, below, .. }) => {
            assert_eq!(address, power.entry() + 4);
            assert_eq!(below, Some((power.entry(), "power".to_owned())));
        }
        other => panic!("{other:?}"),
    }
    let forced = b.function_forced(&inside).unwrap();
    assert_eq!(forced.entry(), power.entry() + 4);
    assert_eq!(b.function(&format!("{:#x}", power.entry())).unwrap(), power);
    assert!(matches!(
        wiper::Spec::parse(&["arg-1=3"]),
        Err(wiper::Error::Spec(_))
    ));
    let r = wiper::specialize(&b, &power, &wiper::Spec::default()).unwrap();
    let e = r.write_elf("/nonexistent/dir/out").unwrap_err();
    assert!(matches!(e, wiper::Error::Write { .. }), "{e}");
    assert!(!e.to_string().contains('\n'));
}
