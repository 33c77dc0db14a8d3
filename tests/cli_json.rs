//! `--format json` of every command that prints a report (`info`, `disasm`,
//! `lift`, `bta`, `specialize`, `compare`, `check`): stdout parses as JSON,
//! says what the text output says, and writes every address as a `"0x..."`
//! string; errors stay one line on stderr with exit status 2.

mod common;

use std::path::Path;

use common::planted::{miscompiled_power, out_path};
use common::{assert_fails, path_arg, stdout_of, wiper};
use serde_json::Value;
use wiper_testkit::{run_binary, testdata_bin};

fn bin(name: &str) -> String {
    path_arg(&testdata_bin(name)).to_owned()
}

/// Runs wiper expecting success and parses its stdout as JSON; every
/// address in it must be a hex string.
fn json_of(args: &[&str]) -> Value {
    json_with_status(args, 0).0
}

/// Runs wiper expecting exit status `status`: its stdout parsed as JSON
/// (every address in it a hex string), and its stderr.
fn json_with_status(args: &[&str], status: i32) -> (Value, String) {
    let out = wiper(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(status), "{args:?}: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{stdout}"));
    assert_addresses_are_hex(&v, "$");
    (v, stderr)
}

/// The keys whose values are addresses in every JSON output.
const ADDRESS_KEYS: [&str; 10] = [
    "address",
    "entry",
    "start",
    "end",
    "target",
    "table",
    "relative_to",
    "code_address",
    "load_address",
    "vaddr",
];

/// Every value under an address key in `v` is `null` or a `0x` hex string.
fn assert_addresses_are_hex(v: &Value, at: &str) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let here = format!("{at}.{k}");
                if ADDRESS_KEYS.contains(&k.as_str()) && !x.is_null() {
                    let s = x
                        .as_str()
                        .unwrap_or_else(|| panic!("{here}: {x} is no string"));
                    let digits = s
                        .strip_prefix("0x")
                        .unwrap_or_else(|| panic!("{here}: {s}"));
                    assert!(u32::from_str_radix(digits, 16).is_ok(), "{here}: {s}");
                }
                assert_addresses_are_hex(x, &here);
            }
        }
        Value::Array(xs) => {
            for (i, x) in xs.iter().enumerate() {
                assert_addresses_are_hex(x, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

/// `s` as a string (panics otherwise).
fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// `0x...` as a number.
fn addr(v: &Value) -> u32 {
    u32::from_str_radix(str_of(v).strip_prefix("0x").unwrap(), 16).unwrap()
}

/// The address of `name` as `wiper info --functions --format json` lists it.
fn function_address(binary: &str, name: &str) -> u32 {
    let info = json_of(&["info", "--functions", "--format", "json", binary]);
    let f = info["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {info}"));
    addr(&f["address"])
}

/// The instruction lines of a text listing (`  0804b000  8b ...`).
fn instruction_lines(listing: &str) -> Vec<&str> {
    listing
        .lines()
        .filter(|l| {
            l.starts_with("  ") && l.trim_start().starts_with(|c: char| c.is_ascii_hexdigit())
        })
        .filter(|l| !l.trim_start().starts_with("->"))
        .collect()
}

#[test]
fn disasm_json_is_the_cfg_of_the_text_listing() {
    let b = bin("power-O2");
    let entry = function_address(&b, "power");
    for syntax in ["intel", "gas"] {
        let v = json_of(&[
            "disasm", &b, "-f", "power", "--syntax", syntax, "--format", "json",
        ]);
        assert_eq!(v["function"], "power");
        assert_eq!(v["syntax"], syntax);
        assert_eq!(addr(&v["entry"]), entry);
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(addr(&blocks[0]["start"]), entry);
        assert_eq!(addr(&blocks[0]["instructions"][0]["address"]), entry);
        // Instruction for instruction what the text listing shows.
        let text = stdout_of(&["disasm", &b, "-f", "power", "--syntax", syntax]);
        let lines = instruction_lines(&text);
        let instructions: Vec<&Value> = blocks
            .iter()
            .flat_map(|b| b["instructions"].as_array().unwrap())
            .collect();
        assert_eq!(instructions.len(), lines.len(), "{text}");
        assert_eq!(v["instruction_count"], lines.len());
        for (ins, line) in instructions.iter().zip(&lines) {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(format!("{:08x}", addr(&ins["address"])), words[0]);
            assert!(line.contains(str_of(&ins["bytes"])), "{line}");
            assert!(line.ends_with(str_of(&ins["text"])), "{line}");
        }
        // Each block's successors as the `->` line shows them.
        let arrows: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  -> "))
            .collect();
        assert_eq!(arrows.len(), blocks.len());
        for (block, arrow) in blocks.iter().zip(arrows) {
            let texts: Vec<&str> = block["successors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| str_of(&s["text"]))
                .collect();
            assert_eq!(texts.join(", "), arrow);
        }
        assert_eq!(blocks[0]["successors"][0]["kind"], "taken");
    }
    let gas = json_of(&[
        "disasm", &b, "-f", "power", "--syntax", "gas", "--format", "json",
    ]);
    assert!(str_of(&gas["blocks"][0]["instructions"][0]["text"]).contains('%'));
}

#[test]
fn lift_json_has_the_parts_and_formulas_of_the_text() {
    let b = bin("power-O2");
    let v = json_of(&["lift", &b, "-f", "power", "--format", "json"]);
    let text = stdout_of(&["lift", &b, "-f", "power"]);
    assert_eq!(addr(&v["entry"]), function_address(&b, "power"));
    let header = text.lines().next().unwrap();
    assert!(
        header.ends_with(&format!("{} parts", v["part_count"])),
        "{header} / {}",
        v["part_count"]
    );
    let mut parts = 0;
    for block in v["blocks"].as_array().unwrap() {
        assert!(text.contains(&format!("\nblock {:#010x}:\n", addr(&block["start"]))));
        for ins in block["instructions"].as_array().unwrap() {
            let line = format!(
                "\n{:08x}  {}\n",
                addr(&ins["address"]),
                str_of(&ins["text"])
            );
            assert!(text.contains(&line), "{line}");
            for part in ins["parts"].as_array().unwrap() {
                parts += 1;
                assert_eq!(part["kind"], "assignment", "{part}");
                for e in part["effects"].as_array().unwrap() {
                    let shown = format!("{} := {}\n", str_of(&e["dst"]), str_of(&e["formula"]));
                    assert!(text.contains(&shown), "{shown}");
                }
            }
        }
    }
    assert_eq!(v["part_count"], parts);
    let first = &v["blocks"][0]["instructions"][0]["parts"][0];
    assert_eq!(first["effects"][0]["dst"], "edx");
    assert_eq!(first["effects"][0]["formula"], "load32(mem, esp + 0xc)");
}

#[test]
fn info_and_bta_json_write_addresses_as_hex_strings() {
    let b = bin("prod-O2");
    json_of(&["info", "--functions", "--format", "json", &b]);
    let v = json_of(&[
        "bta", &b, "-f", "prod", "--static", "arg1=1", "arg2=3", "--format", "json",
    ]);
    assert_eq!(addr(&v["entry"]), function_address(&b, "prod"));
    assert_eq!(v["parts"].as_array().unwrap().len(), 14);
}

/// `specialize --format json`: the listing item for item as the text
/// listing shows it, and the summary (no summary line on stderr).
#[test]
fn specialize_json_has_the_listing_and_the_summary() {
    let b = bin("power-O2");
    let base = [
        "specialize",
        &b,
        "-f",
        "power",
        "--static",
        "arg1=1",
        "arg2=2",
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }
    let args = with(&base, &["--emit", "asm", "--format", "json"]);
    let (v, stderr) = json_with_status(&args, 0);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(v["emit"], "asm");
    assert_eq!(v["output"], Value::Null);
    let text = stdout_of(&with(&base, &["--emit", "asm"]));
    let lines = instruction_lines(&text);
    let items = v["listing"]["items"].as_array().unwrap();
    assert_eq!(items.len(), lines.len(), "{text}");
    for (item, line) in items.iter().zip(&lines) {
        assert!(
            line.starts_with(&format!(
                "  {:08x}  {}",
                addr(&item["address"]),
                str_of(&item["bytes"])
            )),
            "{line}"
        );
        assert!(line.contains(str_of(&item["text"])), "{line}");
        assert!(
            line.ends_with(&format!("; {}", str_of(&item["annotation"]))),
            "{line}"
        );
        let origin = &item["origin"];
        assert!(str_of(&item["annotation"]).contains(&format!("{:#x}", addr(&origin["address"]))));
    }
    assert_eq!(items[0]["labels"][0], "L5", "{text}");
    assert!(text.contains("\nL5:\n"), "{text}");
    let summary = &v["summary"];
    assert_eq!(summary["function"], "power");
    assert_eq!(summary["original_instructions"], 17);
    assert_eq!(
        summary["residual_instructions"],
        v["listing"]["instruction_count"]
    );
    assert_eq!(summary["residual_instructions"], items.len());
    assert_eq!(summary["residual_bytes"], v["listing"]["bytes"]);
    assert_eq!(v["listing"]["entry"], items[0]["address"]);
    // --emit elf: the summary, and the file written as in text.
    let out_file = out_path("power-O2.json.elf");
    let v = json_of(&with(&base, &["-o", &out_file, "--format", "json"]));
    assert_eq!(v["emit"], "elf");
    assert_eq!(v["output"], out_file.as_str());
    assert!(v.get("listing").is_none());
    assert_eq!(v["summary"]["residual_instructions"], items.len());
    let r = run_binary(Path::new(&out_file), &["5", "1", "2"], b"").unwrap();
    assert_eq!(r.stdout_str(), "36\n");
}

/// `compare --format json`: both runs as running the binaries gives them,
/// and whether they agree; a difference is still exit status 2.
#[test]
fn compare_json_has_both_runs() {
    let b = bin("power-O2");
    let out_file = out_path("power-O2.json.compare");
    let args = |run: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "compare", &b, "-f", "power", "--static", "arg1=1", "arg2=2", "-o", &out_file,
            "--format", "json", "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(run.iter().map(|s| s.to_string()));
        a
    };
    for (run, same) in [(&["5", "1", "2"], true), (&["5", "0", "0"], false)] {
        let a = args(run);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (v, stderr) = json_with_status(&a, if same { 0 } else { 2 });
        assert_eq!(v["same"], same, "{v}");
        if same {
            assert!(stderr.is_empty(), "{stderr}");
        } else {
            assert_eq!(
                stderr,
                "wiper: error: the residual binary behaves differently\n"
            );
        }
        assert_eq!(v["args"], serde_json::json!(run));
        for (which, path) in [
            ("original", testdata_bin("power-O2")),
            ("residual", out_file.clone().into()),
        ] {
            let expected = run_binary(&path, run, b"").unwrap();
            let got = &v[which]["run"];
            assert_eq!(
                got["exit_status"],
                expected.status.code().unwrap(),
                "{which}: {got}"
            );
            assert_eq!(got["signal"], Value::Null);
            assert_eq!(got["timed_out"], false);
            assert_eq!(got["stdout"], expected.stdout_str());
            assert_eq!(got["stderr"], expected.stderr_str());
        }
        assert_eq!(v["original"]["instructions"], 17);
        assert_eq!(
            addr(&v["original"]["cfg"]["entry"]),
            function_address(&b, "power")
        );
        let items = v["residual"]["listing"]["items"].as_array().unwrap();
        assert_eq!(v["residual"]["instructions"], items.len());
        assert_eq!(v["residual"]["path"], out_file.as_str());
        if wiper::callgrind::valgrind().is_some() {
            let executed = &v["residual"]["executed"];
            assert_eq!(executed["calls"], 1, "{executed}");
            assert!(executed["per_call"].as_f64().unwrap() > 0.0, "{executed}");
        }
    }
}

/// `check --format json`: on a correct residual every run agrees; on the
/// planted miscompilation of `tests/cli_check.rs`, exit status 1 and the
/// minimized reproducer, which really differs.
#[test]
fn check_json_reports_agreement_and_the_reproducer() {
    let b = bin("power-O2");
    let out_file = out_path("power-O2.json.check");
    let args = [
        "check", &b, "-f", "power", "--static", "arg1=3", "arg2=5", "-o", &out_file, "--runs",
        "50", "--format", "json", "--", "{int}", "3", "5",
    ];
    let (v, stderr) = json_with_status(&args, 0);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(v["runs"], 50);
    assert_eq!(v["agreed"], 50);
    assert_eq!(v["seed"], wiper::check::DEFAULT_SEED);
    assert_eq!(v["difference"], Value::Null);
    assert_eq!(v["summary"]["function"], "power");

    let residual = miscompiled_power("power-O2.json.planted");
    let args = [
        "check",
        &b,
        "-f",
        "power",
        "--residual",
        &residual,
        "--format",
        "json",
        "--",
        "{int:7..100000}",
        "3",
        "5",
    ];
    let (v, stderr) = json_with_status(&args, 1);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(v["agreed"], 0);
    assert_eq!(v["summary"], Value::Null);
    let d = &v["difference"];
    assert_eq!(d["run"], 1);
    assert_eq!(d["reproducer"]["args"], serde_json::json!(["7", "3", "5"]));
    assert_eq!(d["reproducer"]["stdin"], Value::Null);
    assert_eq!(d["reproducer"]["command_line"], format!("{b} 7 3 5"));
    assert_eq!(d["original"]["stdout"], "100000\n");
    let a = run_binary(&testdata_bin("power-O2"), &["7", "3", "5"], b"").unwrap();
    let r = run_binary(Path::new(&residual), &["7", "3", "5"], b"").unwrap();
    assert_ne!(a, r);
    assert_eq!(d["original"]["stdout"], a.stdout_str());
    assert_eq!(d["residual"]["stdout"], r.stdout_str());
    assert_eq!(d["residual"]["exit_status"], r.status.code().unwrap());
}

/// Errors are one line on stderr with exit status 2 in JSON too.
#[test]
fn json_errors_are_one_line_with_status_2() {
    let b = bin("power-O2");
    for command in [
        &["disasm"][..],
        &["lift"],
        &["specialize", "--emit", "asm"],
        &["compare"],
        &["check"],
    ] {
        let mut args = command.to_vec();
        args.extend([b.as_str(), "-f", "nosuch", "--format", "json"]);
        assert_fails(&args, "unknown function `nosuch`");
    }
    assert_fails(
        &[
            "specialize",
            &b,
            "-f",
            "power",
            "--emit",
            "bin",
            "--format",
            "json",
        ],
        "-o OUTPUT is required",
    );
    assert_fails(
        &[
            "check", &b, "-f", "power", "--runs", "0", "--format", "json",
        ],
        "--runs must be at least 1",
    );
}
