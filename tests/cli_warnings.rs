//! Warnings of meaning (docs/usage.md, "Warnings"): each of the five on the
//! command line, their absence on the specs that make sense (the README's
//! example and every case of the differential suite), and that they never
//! change the residual or the exit status.

mod common;

use common::cases::all_cases;
use common::{path_arg, wiper};
use wiper_testkit::{scratch_file, testdata_bin};

/// `wiper specialize BINARY -f FUNCTION --static SPEC... --emit asm`:
/// (exit status, stdout, the warning lines of stderr).
fn specialize(
    binary: &str,
    function: &str,
    statics: &[&str],
) -> (Option<i32>, String, Vec<String>) {
    let bin = testdata_bin(binary);
    let mut args = vec![
        "specialize",
        path_arg(&bin),
        "-f",
        function,
        "--emit",
        "asm",
    ];
    for s in statics {
        args.extend(["--static", s]);
    }
    let out = wiper(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        warnings_of(&stderr),
    )
}

/// The `wiper: warning: ` lines of `stderr`.
fn warnings_of(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("warning:"))
        .map(str::to_owned)
        .collect()
}

/// Asserts that specializing gives exactly one warning, containing every
/// one of `expected`, and exit status 0; returns the listing.
fn warns(binary: &str, function: &str, statics: &[&str], expected: &[&str]) -> String {
    let (status, listing, warnings) = specialize(binary, function, statics);
    assert_eq!(
        status,
        Some(0),
        "{binary} {function} {statics:?}: {warnings:?}"
    );
    let [w] = &warnings[..] else {
        panic!("{binary} {function} {statics:?}: expected one warning, got {warnings:?}");
    };
    assert!(w.starts_with("wiper: warning: "), "{w}");
    for e in expected {
        assert!(w.contains(e), "`{w}` should contain `{e}`");
    }
    listing
}

#[test]
fn a_static_integer_used_as_a_pointer_warns() {
    // sum_array(int *a, int n) with an integer where the array goes.
    warns(
        "calls-O2",
        "sum_array",
        &["arg0=5", "arg1=4"],
        &[
            "static arg0=5 is used as an address at 0x",
            "4-byte load from 0x5",
            "did you mean arg0=@i32:",
        ],
    );
}

#[test]
fn a_static_input_never_read_warns() {
    // pick(a, unused, c) never reads its second argument.
    warns(
        "uncalled-O0",
        "pick",
        &["arg1=7"],
        &["static arg1=7 is never read: pick and its callees"],
    );
    // count_bits(x) reads no register.
    warns(
        "loops-O2",
        "count_bits",
        &["arg0=757", "eax=3"],
        &["static eax=3 is never read", "count_bits"],
    );
}

#[test]
fn a_static_array_shorter_than_what_the_code_reads_warns() {
    warns(
        "calls-O2",
        "sum_array",
        &["arg0=@i32:1,2", "arg1=4"],
        &[
            "static arg0=@i32:1,2 is read past its end at 0x",
            "4 bytes at offset 8; it has 8 bytes",
        ],
    );
}

#[test]
fn a_function_nothing_calls_warns() {
    warns(
        "uncalled-O0",
        "never_called",
        &["arg0=3"],
        &[
            "nothing in the binary calls never_called",
            "would never run",
        ],
    );
}

#[test]
fn call_sites_passing_other_constants_warn() {
    warns(
        "uncalled-O0",
        "scale",
        &["arg1=4"],
        &[
            "the call at 0x",
            "in main passes arg1=3, not the static arg1=4",
        ],
    );
}

#[test]
fn warnings_change_neither_the_residual_nor_the_exit_status() {
    // The residual of a spec with a warning is the one the library makes,
    // and `--emit elf` exits 0 with the warning on stderr.
    let (_, listing, warnings) = specialize("calls-O2", "sum_array", &["arg0=@i32:1,2", "arg1=4"]);
    assert_eq!(warnings.len(), 1);
    let binary = wiper::Binary::open(testdata_bin("calls-O2")).unwrap();
    let f = binary.function("sum_array").unwrap();
    let spec = wiper::Spec::parse(&["arg0=@i32:1,2", "arg1=4"]).unwrap();
    let residual = wiper::specialize(&binary, &f, &spec).unwrap();
    assert_eq!(residual.listing(), listing);
    assert!(matches!(
        residual.warnings(),
        [wiper::Warning::ReadPastEnd {
            offset: 8,
            size: 4,
            len: 8,
            ..
        }]
    ));
    let out = scratch_file("sum_array.elf", b"");
    let bin = testdata_bin("calls-O2");
    let run = wiper(&[
        "specialize",
        path_arg(&bin),
        "-f",
        "sum_array",
        "--static",
        "arg0=@i32:1,2",
        "arg1=4",
        "-o",
        path_arg(&out),
    ]);
    assert_eq!(run.status.code(), Some(0));
    assert_eq!(warnings_of(&String::from_utf8_lossy(&run.stderr)).len(), 1);
}

#[test]
fn every_specializing_command_prints_the_warnings() {
    let bin = testdata_bin("calls-O2");
    let out = scratch_file("warn.out", b"");
    let page = scratch_file("warn.html", b"");
    let common = ["-f", "sum_array", "--static", "arg0=5", "arg1=4"];
    let runs: [Vec<&str>; 3] = [
        [
            &["compare", path_arg(&bin)],
            &common[..],
            &["-o", path_arg(&out), "--", "1", "2", "x"],
        ]
        .concat(),
        [
            &["check", path_arg(&bin)],
            &common[..],
            &["-o", path_arg(&out), "--runs", "1", "--", "1", "2", "x"],
        ]
        .concat(),
        [
            &["report", path_arg(&bin)],
            &common[..],
            &["-o", path_arg(&page), "--no-graphviz"],
        ]
        .concat(),
    ];
    for args in runs {
        let run = wiper(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("wiper: warning: static arg0=5 is used as an address"),
            "{args:?}: {stderr}"
        );
    }
    // The report page lists them in its summary.
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<li>warning: static arg0=5 is used as an address at 0x"),
        "the page lists the warning"
    );
}

#[test]
fn the_readme_example_gives_no_warning() {
    let bin = testdata_bin("power-O2");
    let run = wiper(&[
        "compare",
        path_arg(&bin),
        "--function",
        "power",
        "--static",
        "arg1=1",
        "--static",
        "arg2=2",
        "-o",
        path_arg(&scratch_file("power-y1-n2", b"")),
        "--",
        "5",
        "1",
        "2",
    ]);
    assert_eq!(run.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(warnings_of(&stderr), Vec::<String>::new(), "{stderr}");
}

/// A few cases of the differential suite (`tests/common/cases.rs`) give no
/// warning on the command line; `tests/specialize_diff.rs` checks every one.
#[test]
fn cases_of_the_differential_suite_give_no_warning() {
    let labels = [
        "power-O0 power arg1=3 arg2=5",
        "calls-O2 my_strlen arg0=@str:abracadabra",
        "interp-O1 bf arg0=@str:>,[>,]<[.<]",
        "switch-O1 dispatch arg0=1",
        "libc_demo-O2 classify arg0=@str:wiper",
    ];
    let cases: Vec<_> = all_cases()
        .into_iter()
        .filter(|c| labels.contains(&c.label().as_str()))
        .collect();
    assert_eq!(cases.len(), labels.len(), "every label names a case");
    for case in cases {
        let statics: Vec<&str> = case.statics.iter().map(String::as_str).collect();
        let (status, _, warnings) = specialize(&case.binary, &case.function, &statics);
        assert_eq!(status, Some(0), "{}", case.label());
        assert!(warnings.is_empty(), "{}: {warnings:?}", case.label());
    }
}
