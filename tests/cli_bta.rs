//! `wiper bta`: the classified listing of the slides' examples, dot and
//! JSON output, and malformed static specs as one error line with exit
//! status 2.

mod common;

use common::{assert_fails, stdout_of};
use wiper_testkit::testdata_bin;

fn bin(name: &str) -> String {
    testdata_bin(name).to_str().unwrap().to_owned()
}

#[test]
fn bta_prod_o0_listing() {
    let b = bin("prod-O0");
    let out = stdout_of(&[
        "bta",
        &b,
        "--function",
        "prod",
        "--static",
        "arg1=1",
        "--static",
        "arg2=3",
    ]);
    insta::assert_snapshot!("bta_prod_O0", out);
    // Several values after one --static work too.
    let same = stdout_of(&["bta", &b, "-f", "prod", "--static", "arg1=1", "arg2=3"]);
    assert_eq!(out, same);
}

#[test]
fn bta_abn_o2_listing() {
    let b = bin("abn-O2");
    let out = stdout_of(&["bta", &b, "--function", "abn", "--static", "arg1=1"]);
    insta::assert_snapshot!("bta_abn_O2", out);
}

#[test]
fn bta_dot_colours_nodes_and_is_deterministic() {
    let b = bin("power-O2");
    let args = [
        "bta", &b, "-f", "power", "--static", "arg1=1", "arg2=2", "--format", "dot",
    ];
    let out = stdout_of(&args);
    assert!(out.starts_with("digraph \"bta power\" {"), "{out}");
    assert!(out.contains("#b7e4b7"), "static nodes are green");
    assert!(out.contains("#f4a6a6"), "dynamic nodes are red");
    assert!(out.contains("#f9c784"), "lifted nodes are orange");
    assert!(
        out.contains("label=\"control\", style=dashed"),
        "control edges"
    );
    assert!(out.trim_end().ends_with('}'));
    assert_eq!(out, stdout_of(&args));
}

#[test]
fn bta_json_lists_every_part() {
    let b = bin("prod-O2");
    let out = stdout_of(&[
        "bta", &b, "-f", "prod", "--static", "arg1=1", "arg2=3", "--format", "json",
    ]);
    assert!(out.starts_with("{\n  \"function\": \"prod\","), "{out}");
    assert!(out.contains("\"static\": [\"arg1=1\", \"arg2=3\"]"));
    assert!(out.contains("\"binding\": \"lifted\", \"static_reads\": [\"eax\"]"));
    let parts = out.matches("\"address\": ").count();
    assert_eq!(parts, 14, "{out}");
    assert!(out.trim_end().ends_with('}'));
}

/// Each malformed spec: one line on stderr, exit status 2.
#[test]
fn malformed_specs_are_one_line_errors() {
    let b = bin("prod-O0");
    let cases = [
        (
            "arg-1=3",
            "invalid static spec `arg-1=3`: argument index must be a non-negative integer",
        ),
        (
            "arg0=@i32:1,,2",
            "invalid static spec `arg0=@i32:1,,2`: empty element 1 in i32 list",
        ),
        ("foo=1", "unknown input `foo`"),
        ("esp=4", "always static"),
        ("arg1", "expected NAME=VALUE"),
        ("arg1=12abc", "not an integer"),
        ("arg9=1", "static input arg9 is out of range: the function reads only 3 stack arguments (arg0..arg2)"),
    ];
    for (spec, expected) in cases {
        assert_fails(&["bta", &b, "-f", "prod", "--static", spec], expected);
    }
    assert_fails(
        &["bta", &b, "-f", "prod", "--static", "arg1=1", "arg1=2"],
        "arg1 is given more than once",
    );
    assert_fails(&["bta", &b, "-f", "nope"], "unknown function `nope`");
}
