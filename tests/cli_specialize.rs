//! `wiper specialize`: residual listings of the slides' examples and others
//! (insta snapshots, plus structural checks that hold whatever the exact
//! code), the summary line, the output file, and one-line errors.

mod common;

use common::{assert_fails, path_arg, stdout_of, wiper};
use wiper_testkit::{run_binary, scratch_file, testdata_bin};

fn bin(name: &str) -> String {
    path_arg(&testdata_bin(name)).to_owned()
}

/// The `--emit asm` listing of a specialization.
fn residual_asm(binary: &str, function: &str, statics: &[&str]) -> String {
    let b = bin(binary);
    let mut args = vec!["specialize", &b, "--function", function, "--emit", "asm"];
    for s in statics {
        args.push("--static");
        args.push(s);
    }
    stdout_of(&args)
}

/// The instruction lines of a listing (mnemonic and operands).
fn instructions(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| {
            let text = l.split(';').next().unwrap_or("");
            // address, then the code bytes (two hex digits each), then the text.
            text.split_whitespace()
                .skip(1)
                .skip_while(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Targets of the residual's branches that lie at or before the branch
/// (loops).
fn backward_branches(listing: &str) -> usize {
    listing
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(" j"))
        .filter(|l| {
            let mut words = l.split_whitespace();
            let addr = u32::from_str_radix(words.next().unwrap(), 16).unwrap();
            let target = l
                .split_whitespace()
                .find(|w| w.starts_with("0x"))
                .and_then(|w| u32::from_str_radix(&w[2..], 16).ok());
            target.is_some_and(|t| t <= addr)
        })
        .count()
}

#[test]
fn power_y1_n2_is_x_plus_1_squared_without_a_loop() {
    for level in ["O0", "O1", "O2"] {
        let out = residual_asm(&format!("power-{level}"), "power", &["arg1=1", "arg2=2"]);
        assert_eq!(backward_branches(&out), 0, "no loop at -{level}:\n{out}");
        let muls = instructions(&out)
            .iter()
            .filter(|i| i.starts_with("imul"))
            .count();
        // a = 1 * (x+1) is a move once the optimizer sees the dead flags.
        assert!(
            (1..=2).contains(&muls),
            "one or two multiplications at -{level}:\n{out}"
        );
        assert!(
            out.contains("+0x1]") || out.contains(",0x1"),
            "x+1 at -{level}:\n{out}"
        );
        if level != "O1" {
            insta::assert_snapshot!(format!("specialize_power_{level}_y1_n2"), out);
        }
    }
}

#[test]
fn prod_y1_n3_unrolls_into_one_lea() {
    let out = residual_asm("prod-O0", "prod", &["arg1=1", "arg2=3"]);
    assert_eq!(backward_branches(&out), 0, "{out}");
    // The three additions of x+1 are (x+1)*3 = x*3+3, one lea.
    assert!(out.contains("lea    eax,[edx+edx*2+0x3]"), "{out}");
    insta::assert_snapshot!("specialize_prod_O0_y1_n3", out);
    let out = residual_asm("prod-O2", "prod", &["arg1=1", "arg2=3"]);
    assert_eq!(backward_branches(&out), 0, "{out}");
    insta::assert_snapshot!("specialize_prod_O2_y1_n3", out);
}

#[test]
fn abn_has_no_specialization_time_address() {
    for level in ["O0", "O2"] {
        let out = residual_asm(&format!("abn-{level}"), "abn", &["arg1=1"]);
        // Every memory operand is relative to the run-time stack pointer:
        // no absolute address stands for the specialization-time stack.
        for line in instructions(&out) {
            if let Some(start) = line.find('[') {
                assert!(
                    line[start..].starts_with("[esp"),
                    "-{level}: `{line}` is not esp-relative:\n{out}"
                );
            }
        }
        assert!(out.contains("*4"), "b[n] stays an indexed load:\n{out}");
        insta::assert_snapshot!(format!("specialize_abn_{level}_v1"), out);
    }
}

#[test]
fn more_residuals() {
    // A dynamic loop with a static invariant inside.
    let out = residual_asm("power-O2", "power", &["arg1=3"]);
    assert!(backward_branches(&out) >= 1, "the loop stays:\n{out}");
    insta::assert_snapshot!("specialize_power_O2_y3", out);
    // A switch through a jump table with a static selector.
    let out = residual_asm("switch-O2", "dispatch", &["arg0=2"]);
    assert!(!out.contains("jmp    DWORD PTR"), "{out}");
    insta::assert_snapshot!("specialize_dispatch_O2_op2", out);
    // The VM running x*x + 1 is that computation.
    let out = residual_asm("interp-O2", "run_vm", &["arg0=@i32:2,6,5,1,1,3,0"]);
    assert_eq!(backward_branches(&out), 0, "{out}");
    insta::assert_snapshot!("specialize_run_vm_O2_square_plus_one", out);
    // A PIE: the global is reached through a pc thunk.
    let out = residual_asm("pie_switch-O2", "step", &["arg0=2"]);
    insta::assert_snapshot!("specialize_pie_step_O2_op2", out);
    // A recursive function with a static argument becomes a constant.
    let out = residual_asm("recursion-O2", "fact", &["arg0=5"]);
    assert!(out.contains("0x78"), "5! = 120:\n{out}");
    insta::assert_snapshot!("specialize_fact_O2_5", out);
}

#[test]
fn summary_line_and_runnable_output() {
    let out_path = scratch_file("power-O2-specialized", b"");
    let b = bin("power-O2");
    let o = path_arg(&out_path).to_owned();
    let out = wiper(&[
        "specialize",
        &b,
        "--function",
        "power",
        "--static",
        "arg1=1",
        "--static",
        "arg2=2",
        "-o",
        &o,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().unwrap();
    assert!(
        line.starts_with("wiper: specialized power: 17 -> "),
        "{line}"
    );
    assert!(
        line.contains(" reduced (") && line.contains(" fallbacks, "),
        "{line}"
    );
    // Callers pass 1 and 2 for y and n, or anything: the residual ignores them.
    for (x, y, n) in [(5, 1, 2), (-3, 7, 9), (100, 0, 0)] {
        let args = [x.to_string(), y.to_string(), n.to_string()];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let want = run_binary(&testdata_bin("power-O2"), &[args[0], "1", "2"], b"").unwrap();
        let got = run_binary(&out_path, &args, b"").unwrap();
        assert_eq!(got.stdout, want.stdout);
        assert_eq!(got.status, want.status);
    }
    // objdump and gdb see the residual code.
    let binary = wiper_elf::Binary::open(&out_path).unwrap();
    assert_eq!(binary.functions_named("power.specialized").len(), 1);
    assert_eq!(binary.functions_named("power").len(), 1);
}

/// Runs `wiper specialize INPUT -f FUNCTION --static S -o OUTPUT` and
/// checks that it succeeds; OUTPUT is a fresh scratch file named `name`.
fn specialize_to(
    input: &std::path::Path,
    function: &str,
    s: &str,
    name: &str,
) -> std::path::PathBuf {
    let out_path = scratch_file(name, b"");
    let (i, o) = (path_arg(input), path_arg(&out_path));
    let out = wiper(&["specialize", i, "-f", function, "--static", s, "-o", o]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    out_path
}

/// A specialized binary is an input like any other: power-O2's `power`
/// with n = 2 (the output's `PT_NOTE` is gone), then that output's
/// `power.specialized` with y = 3 (its program header table moves), then
/// `print_int` with its argument 7 (the table moves again).
#[test]
fn a_specialized_binary_is_specialized_again() {
    let first = specialize_to(&testdata_bin("power-O2"), "power", "arg2=2", "power-n2");
    let second = specialize_to(&first, "power.specialized", "arg1=3", "power-n2-y3");
    let third = specialize_to(&second, "print_int", "arg0=7", "power-n2-y3-print7");
    for (x, y, n) in [(5, 1, 0), (-3, 7, 9), (1, 0, 4)] {
        let args = [x.to_string(), y.to_string(), n.to_string()];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let power = (x + 3) * (x + 3);
        let got = run_binary(&second, &args, b"").unwrap();
        assert_eq!(got.stdout_str(), format!("{power}\n"), "{args:?}");
        let got = run_binary(&third, &args, b"").unwrap();
        assert_eq!(got.stdout_str(), "7\n", "{args:?}");
        assert_eq!(got.status.code(), Some(power & 0xff), "{args:?}");
    }
    let binary = wiper_elf::Binary::open(&third).unwrap();
    for name in ["power.specialized", "power.specialized.specialized"] {
        assert_eq!(binary.functions_named(name).len(), 1, "{name}");
    }
}

#[test]
fn emit_bin_writes_raw_code_with_its_address() {
    let out_path = scratch_file("power-O2-residual.bin", b"");
    let b = bin("power-O2");
    let o = path_arg(&out_path).to_owned();
    let out = wiper(&[
        "specialize",
        &b,
        "-f",
        "power",
        "--static",
        "arg2=2",
        "--emit",
        "bin",
        "-o",
        &o,
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("code loads at 0x"), "{stderr}");
    let code = std::fs::read(&out_path).unwrap();
    assert!(!code.is_empty() && code.ends_with(&[0xc3]), "{code:02x?}");
}

#[test]
fn errors_are_one_line_with_status_2() {
    let b = bin("power-O2");
    assert_fails(
        &[
            "specialize",
            &b,
            "-f",
            "power",
            "--static",
            "arg1=x",
            "-o",
            "/tmp/never",
        ],
        "arg1=x",
    );
    assert_fails(
        &[
            "specialize",
            &b,
            "-f",
            "power",
            "--static",
            "arg9=1",
            "-o",
            "/tmp/never",
        ],
        "arg9",
    );
    assert_fails(
        &["specialize", &b, "-f", "nosuch", "-o", "/tmp/never"],
        "nosuch",
    );
    assert_fails(&["specialize", &b, "-f", "power"], "-o");
    assert_fails(
        &[
            "specialize",
            "/nonexistent/file",
            "-f",
            "power",
            "-o",
            "/tmp/never",
        ],
        "/nonexistent/file",
    );
    // Never the input as output.
    let copy = scratch_file(
        "power-O2-copy",
        &std::fs::read(testdata_bin("power-O2")).unwrap(),
    );
    let before = std::fs::read(&copy).unwrap();
    let c = path_arg(&copy).to_owned();
    assert_fails(&["specialize", &c, "-f", "power", "-o", &c], "overwrite");
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    // Unbounded unrolling hits the residual bound.
    let out_path = scratch_file("never-written", b"");
    std::fs::remove_file(&out_path).unwrap();
    let o = path_arg(&out_path).to_owned();
    let b = bin("power-O2");
    assert_fails(
        &[
            "specialize",
            &b,
            "-f",
            "power",
            "--static",
            "arg2=50",
            "--max-residual",
            "20",
            "-o",
            &o,
        ],
        "exceeds 20 instructions",
    );
    assert!(!out_path.exists(), "no output on failure");
}

/// `wiper compare` arguments for `power` of power-O2 with `statics`,
/// writing the residual to `out`; `extra` goes before `--` and `run` after.
fn compare_args(out: &str, statics: &[&str], extra: &[&str], run: &[&str]) -> Vec<String> {
    let mut args = vec!["compare", &bin("power-O2"), "-f", "power", "-o", out]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for s in statics {
        args.extend(["--static".to_owned(), s.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".to_owned());
    args.extend(run.iter().map(|s| s.to_string()));
    args
}

/// `compare` counts the instructions both runs execute with callgrind
/// (where valgrind is installed): the residual executes fewer in the
/// function, and exactly as many outside it (the rest of the program is
/// the same). Without valgrind on `PATH` it says it skipped the count.
#[test]
fn compare_counts_executed_instructions() {
    let out_path = scratch_file("power-O2-count", b"");
    let args = compare_args(
        path_arg(&out_path),
        &["arg1=1", "arg2=2"],
        &[],
        &["5", "1", "2"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let empty = scratch_file("no-valgrind", b"");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wiper"))
        .args(&args)
        .env("PATH", empty.parent().unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("same output and exit status\n== instructions executed: skipped (valgrind is not installed)\n"),
        "{text}"
    );
    if wiper::callgrind::valgrind().is_none() {
        eprintln!("skipped: valgrind is not installed");
        return;
    }
    let text = stdout_of(&args);
    let counts = |which: &str| -> (u64, u64) {
        let line = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{which}: "))
                    .filter(|l| l.contains(" in total, "))
            })
            .unwrap_or_else(|| panic!("no {which} count:\n{text}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[6..], ["call", "of", "power"], "{line}");
        (words[0].parse().unwrap(), words[3].parse().unwrap())
    };
    assert!(
        text.contains("\n== instructions executed (valgrind --tool=callgrind)\n"),
        "{text}"
    );
    let (original_total, original_power) = counts("original");
    let (residual_total, residual_power) = counts("residual");
    assert!(residual_power < original_power, "{text}");
    assert_eq!(
        original_total - original_power,
        residual_total - residual_power,
        "{text}"
    );
}

#[test]
fn compare_runs_both_binaries() {
    let out_path = scratch_file("power-O2-compare", b"");
    let args = compare_args(
        path_arg(&out_path),
        &["arg1=1", "arg2=2"],
        &[],
        &["5", "1", "2"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = wiper(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let [line] = stderr.lines().collect::<Vec<_>>()[..] else {
        panic!("one stderr line: {stderr}");
    };
    assert!(
        line.starts_with("wiper: specialized power: 17 -> "),
        "{line}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("== original power (17 instructions)\n"),
        "{text}"
    );
    assert!(text.contains("\n== residual power.specialized ("), "{text}");
    assert!(text.contains("\n== run with arguments: 5 1 2\n"), "{text}");
    assert!(text.contains("same output and exit status\n"), "{text}");
    assert!(out_path.exists());
}

#[test]
fn compare_reports_a_different_run_with_status_2() {
    // The residual ignores the y and n it is given: 0 and 0 are not 1 and 2.
    let out_path = scratch_file("power-O2-compare-different", b"");
    let args = compare_args(
        path_arg(&out_path),
        &["arg1=1", "arg2=2"],
        &[],
        &["5", "0", "0"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = wiper(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "summary and error: {stderr}");
    assert!(
        lines[0].starts_with("wiper: specialized power: "),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        "wiper: error: the residual binary behaves differently"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\nDIFFERENT\n"), "both runs shown: {text}");
}

#[test]
fn compare_errors_are_one_line_with_status_2() {
    let out_path = scratch_file("compare-never-written", b"");
    std::fs::remove_file(&out_path).unwrap();
    let o = path_arg(&out_path).to_owned();
    // Unbounded unrolling hits the residual bound, as for `specialize`.
    let args = compare_args(
        &o,
        &["arg2=50"],
        &["--max-residual", "20"],
        &["5", "1", "50"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_fails(&args, "exceeds 20 instructions");
    assert!(!out_path.exists(), "no output on failure");
    // Never the input as output.
    let copy = scratch_file(
        "power-O2-compare-copy",
        &std::fs::read(testdata_bin("power-O2")).unwrap(),
    );
    let c = path_arg(&copy).to_owned();
    assert_fails(
        &["compare", &c, "-f", "power", "-o", &c, "--", "1", "2", "3"],
        "overwrite",
    );
    assert_fails(
        &["compare", &c, "-f", "nosuch", "--static", "arg1=1"],
        "unknown function `nosuch`",
    );
    assert_fails(
        &["compare", &c, "-f", "power", "--static", "arg1=x"],
        "arg1=x",
    );
}

/// The stack protector survives specialization: `checksum` of
/// `canary-O2` (`-fstack-protector-all`) with a static length of 20 copies
/// up to 20 bytes of its dynamic string into a 16-byte buffer. The residual
/// keeps the canary's load and check (`gs:0x14`) and the call of
/// `__stack_chk_fail`: a short string runs as the original does, a long one
/// smashes the stack and the residual aborts with glibc's message, as the
/// original does.
#[test]
fn a_smashed_stack_is_still_caught() {
    let listing = residual_asm("canary-O2", "checksum", &["arg1=20"]);
    let canary = listing.matches("gs:[0x14]").count();
    assert!(canary >= 2, "the canary's load and check stay:\n{listing}");
    assert!(listing.contains("__stack_chk_fail"), "{listing}");
    let out = scratch_file("canary-O2-checksum-n20", b"");
    let b = bin("canary-O2");
    stdout_of(&[
        "specialize",
        &b,
        "--function",
        "checksum",
        "--static",
        "arg1=20",
        "-o",
        path_arg(&out),
    ]);
    for word in [
        "short",
        "exactly16bytes!!",
        "seventeen bytes!!",
        "a string of more than twenty bytes",
    ] {
        let args = [word, "20", "2"];
        let original = run_binary(&testdata_bin("canary-O2"), &args, b"").unwrap();
        let residual = run_binary(&out, &args, b"").unwrap();
        assert_eq!(residual, original, "{word}");
        if word.len() > 16 {
            assert!(
                original.stderr_str().contains("stack smashing detected"),
                "{word}"
            );
            assert_eq!(
                original.status,
                wiper_testkit::Termination::Signaled(6),
                "{word}"
            );
        }
    }
}

#[test]
fn compare_runs_a_bare_file_name_from_the_current_directory_and_shows_stderr() {
    // A copy of gzip in a directory of its own, named by its bare file name
    // from there: `gzip` on PATH must not be what runs. Without -o, the
    // residual goes beside the input.
    let dir = scratch_file("compare-cwd-marker", b"");
    let dir = dir.parent().unwrap();
    std::fs::copy(wiper_testkit::real_bin("gzip-glibc"), dir.join("gzip")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wiper"))
        .current_dir(dir)
        .args([
            "compare",
            "gzip",
            "-f",
            "license",
            "--",
            "-d",
            "/nonexistent.gz",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("original: \"\", exit status 1\n  stderr: \"gzip: /nonexistent.gz: No such file or directory\\n\"\n"),
        "{text}"
    );
    assert!(text.contains("same output and exit status\n"), "{text}");
    assert!(dir.join("gzip.license.specialized").is_file());
}

/// `jecxz` (glibc's symbol lookup, `memset`) passes through specialization:
/// decided when `ecx` is static, and with `ecx` dynamic a branch that leaves
/// the flags as they were (`pushfd; test ecx,ecx; je`, then `popfd` on both
/// sides). `power` of `power-O0` is overwritten with code that compares,
/// branches on `ecx` and then reads the compare's carry on both paths; the
/// residual must run as the patched original does.
#[test]
fn jecxz_is_decided_or_branches_without_touching_the_flags() {
    let entry = wiper_elf::Binary::open(&testdata_bin("power-O0"))
        .unwrap()
        .functions_named("power")[0]
        .addr;
    #[rustfmt::skip]
    let code = [
        0x8b, 0x44, 0x24, 0x04, // mov eax,[esp+0x4]   x
        0x8b, 0x4c, 0x24, 0x0c, // mov ecx,[esp+0xc]   n
        0x3b, 0x44, 0x24, 0x08, // cmp eax,[esp+0x8]   x < y: carry
        0xe3, 0x03,             // jecxz +3
        0x8d, 0x04, 0x40,       // lea eax,[eax+eax*2] (no flags)
        0x83, 0xd0, 0x64,       // adc eax,0x64
        0xc3,                   // ret
    ];
    let at = common::file_offset("power-O0", entry);
    let original = common::patched("power-O0", "power-O0-jecxz", |b| {
        b[at..at + code.len()].copy_from_slice(&code);
    });
    std::fs::set_permissions(
        &original,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (statics, n) in [
        (vec![], None),
        (vec!["arg2=0"], Some(0)),
        (vec!["arg2=3"], Some(3)),
    ] {
        let out = scratch_file(
            &format!("power-O0-jecxz-{}", statics.len() + n.unwrap_or(0)),
            b"",
        );
        let mut args = vec!["specialize", path_arg(&original), "--function", "power"];
        for s in &statics {
            args.extend(["--static", s]);
        }
        args.extend(["-o", path_arg(&out)]);
        stdout_of(&args);
        let listing = stdout_of(&[&args[..args.len() - 2], &["--emit", "asm"]].concat());
        assert_eq!(listing.contains("popfd"), n.is_none(), "{listing}");
        for (x, y) in [(5, 9), (9, 5), (7, 7)] {
            for n in n.map_or(vec![0, 1, 4], |n| vec![n]) {
                let run_args = [x.to_string(), y.to_string(), n.to_string()];
                let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
                let want = run_binary(&original, &run_args, b"").unwrap();
                let got = run_binary(&out, &run_args, b"").unwrap();
                assert_eq!(got, want, "{statics:?} {run_args:?}");
            }
        }
    }
}
