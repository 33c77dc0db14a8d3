//! Runs the committed test binaries and checks their output against values
//! computed here, independently, by Rust re-implementations of the C code.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use wiper_testkit::{
    all_binaries, opt_levels, rt_programs, run_binary, run_binary_with_timeout, testdata_bin,
    testdata_dir, RunOutput, Termination,
};

/// Runs `testdata/bin/<name>` and panics with context if it cannot run.
fn run(name: &str, args: &[&str], stdin: &[u8]) -> RunOutput {
    run_binary(&testdata_bin(name), args, stdin)
        .unwrap_or_else(|e| panic!("running {name} {args:?}: {e}"))
}

/// Runs `name` and checks its stdout lines and exit status.
fn check(name: &str, args: &[&str], stdin: &[u8], lines: &[String], exit: i32) {
    let out = run(name, args, stdin);
    assert_eq!(out.stdout_lines(), lines, "stdout of {name} {args:?}");
    assert_eq!(
        out.status,
        Termination::Exited(exit),
        "status of {name} {args:?}"
    );
    assert!(out.stderr.is_empty(), "stderr of {name} {args:?}");
}

/// Formats each value on its own line, as the C programs print them.
fn lines<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

/// The status the C programs return for a result: `r & 0x7f`.
fn status(r: i32) -> i32 {
    r & 0x7f
}

// ---- Reference implementations (wrapping, as the i386 code computes). ----

fn power(x: i32, y: i32, n: i32) -> i32 {
    let mut a = 1i32;
    for _ in 0..n.max(0) {
        a = a.wrapping_mul(x.wrapping_add(y));
    }
    a
}

fn prod(x: i32, y: i32, n: i32) -> i32 {
    let mut p = 0i32;
    for _ in 0..n.max(0) {
        p = p.wrapping_add(x.wrapping_add(y));
    }
    p
}

fn sum_to(n: i32) -> i32 {
    (1..=n).fold(0i32, |s, i| s.wrapping_add(i))
}

fn gcd(a: i32, b: i32) -> i32 {
    let (mut x, mut y) = (a.unsigned_abs(), b.unsigned_abs());
    while y != 0 {
        (x, y) = (y, x % y);
    }
    x as i32
}

fn nested(n: i32, m: i32) -> i32 {
    let mut s = 0i32;
    for i in 0..n {
        for j in 0..m {
            s = s.wrapping_add((i * j) ^ (i + j));
        }
    }
    s
}

fn collatz_steps(n: i32) -> i32 {
    if n <= 1 {
        return 0;
    }
    let mut u = n as u32;
    let mut steps = 0;
    while u != 1 && steps < 1000 {
        u = if u & 1 == 1 {
            u.wrapping_mul(3).wrapping_add(1)
        } else {
            u / 2
        };
        steps += 1;
    }
    steps
}

fn fact(n: i32) -> i32 {
    (2..=n).fold(1i32, |f, i| f.wrapping_mul(i))
}

fn fib(n: i32) -> i32 {
    let (mut a, mut b) = (0i32, 1i32);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

fn ackermann(m: i32, n: i32) -> i32 {
    // Closed forms for m <= 3, independent of the recursive definition.
    match m {
        0 => n + 1,
        1 => n + 2,
        2 => 2 * n + 3,
        3 => (1 << (n + 3)) - 3,
        _ => unreachable!("tests only use m <= 3"),
    }
}

fn pow_rec(x: i32, n: i32) -> i32 {
    x.wrapping_pow(n.max(0) as u32)
}

/// The globals of switch.c.
#[derive(Default)]
struct SwitchState {
    last_op: i32,
    hits: [i32; 4],
}

fn dispatch(op: i32, a: i32, b: i32, st: &mut SwitchState) -> i32 {
    match op {
        0 => a.wrapping_add(b),
        1 => {
            st.last_op = 1;
            a.wrapping_sub(b)
        }
        2 => {
            st.hits[0] += 1;
            a.wrapping_mul(b)
        }
        3 => {
            st.last_op = 3;
            if b == 0 {
                0
            } else {
                ((a as u32) / (b as u32)) as i32
            }
        }
        4 => {
            st.hits[1] = st.hits[1].wrapping_add(a);
            a & b
        }
        5 => {
            st.last_op = 5;
            st.hits[2] += 5;
            a | b
        }
        6 => {
            st.hits[2] -= 1;
            a ^ b
        }
        7 => {
            st.hits[3] = b;
            ((a as u32) << (b & 31)) as i32
        }
        8 => {
            st.last_op = 8;
            a.wrapping_mul(2).wrapping_sub(b)
        }
        9 => {
            st.hits[0] += 9;
            a.wrapping_neg().wrapping_add(b.wrapping_mul(2))
        }
        _ => {
            st.last_op = -1;
            -1
        }
    }
}

const PRIMES: [i32; 16] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53];

fn lookup(i: i32) -> i32 {
    PRIMES[(i & 15) as usize]
}

/// CRC-8, polynomial 0x07, computed bit by bit (the C code uses a table).
fn crc8(bytes: &[u8]) -> i32 {
    let mut c = 0u8;
    for &byte in bytes {
        c ^= byte;
        for _ in 0..8 {
            c = if c & 0x80 != 0 {
                (c << 1) ^ 0x07
            } else {
                c << 1
            };
        }
    }
    i32::from(c)
}

/// The complete expected output of `calls A B S`, and its exit status.
fn calls_expected(a: i32, b: i32, s: &str) -> (Vec<String>, i32) {
    let arr = [a, b, a.wrapping_mul(b), a.wrapping_sub(b), 7];
    let sum = |v: &[i32]| v.iter().fold(0i32, |acc, &x| acc.wrapping_add(x));
    let mut counter = 0i32;
    let mut out = vec![
        sum(&arr),
        b, // x after swap
        a, // y after swap
        s.len() as i32,
        s.bytes().filter(|&c| c == b'a').count() as i32,
    ];
    counter += a;
    out.push(counter);
    counter += b;
    out.push(counter);
    out.push(lookup(a));
    out.push(crc8(s.as_bytes()));
    out.push(a.wrapping_mul(a));
    out.push(b + 1);
    // mix(a, b)
    let v = [lookup(b), b, lookup(a), a];
    counter += a & 7;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let m = sum(&v)
        .wrapping_mul(3)
        .wrapping_add(v[0] + 1)
        .wrapping_add(counter)
        .wrapping_add(crc8(&bytes));
    out.push(m);
    out.push(counter);
    (lines(&out), status(m))
}

// ---- Tests ----

#[test]
fn testdata_layout() {
    let dir = testdata_dir();
    assert!(dir.is_absolute());
    assert!(dir.join("Makefile").is_file());
    let names: Vec<String> = all_binaries()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut expected = Vec::new();
    for p in rt_programs() {
        for o in opt_levels() {
            expected.push(format!("{p}-{o}"));
        }
    }
    for v in ["O0", "O1", "O2", "dyn", "pie", "stripped"] {
        expected.push(format!("libc_demo-{v}"));
    }
    for v in ["O0", "O2"] {
        expected.push(format!("pie_switch-{v}"));
        expected.push(format!("canary-{v}"));
    }
    // The warnings' program, built at -O0 only.
    expected.push("uncalled-O0".to_owned());
    // The process-stack probe of the extraction tests.
    expected.push("stackprobe".to_owned());
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
#[should_panic(expected = "is missing")]
fn missing_binary_panics() {
    testdata_bin("no-such-binary");
}

#[test]
fn power_and_prod() {
    for o in opt_levels() {
        for (x, y, n) in [(3, 1, 2), (2, 0, 10), (-2, 1, 3), (5, 5, 0), (1, 1, 30)] {
            let args = [x.to_string(), y.to_string(), n.to_string()];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let p = power(x, y, n);
            check(&format!("power-{o}"), &args, b"", &lines(&[p]), status(p));
            let q = prod(x, y, n);
            check(&format!("prod-{o}"), &args, b"", &lines(&[q]), status(q));
        }
        // The slides' example, spelled out.
        check(
            &format!("power-{o}"),
            &["3", "1", "2"],
            b"",
            &lines(&[16]),
            16,
        );
    }
}

#[test]
fn abn() {
    for o in opt_levels() {
        let name = format!("abn-{o}");
        for n in 0..=4 {
            let n_arg = n.to_string();
            check(&name, &["10", "5", &n_arg], b"", &lines(&[15]), 15);
        }
        check(
            &name,
            &["-100", "0x10", "2"],
            b"",
            &lines(&[-84]),
            status(-84),
        );
        // Out-of-range n is rejected by main, not passed to abn.
        let out = run(&name, &["1", "2", "5"], b"");
        assert_eq!(out.status, Termination::Exited(2));
    }
}

#[test]
fn loops() {
    for o in opt_levels() {
        let name = format!("loops-{o}");
        for (a, b) in [(10, 4), (48, 18), (27, -12), (0, 0), (-5, 7), (97, 1000)] {
            let results = [
                sum_to(a),
                gcd(a, b),
                a.count_ones() as i32,
                nested(a & 15, b & 15),
                collatz_steps(a),
            ];
            let total = results.iter().fold(0i32, |t, &r| t.wrapping_add(r));
            let (sa, sb) = (a.to_string(), b.to_string());
            check(&name, &[&sa, &sb], b"", &lines(&results), status(total));
            // Same numbers through stdin (read_int).
            let input = format!("{a} {b}\n");
            check(
                &name,
                &[],
                input.as_bytes(),
                &lines(&results),
                status(total),
            );
        }
    }
}

#[test]
fn recursion() {
    for o in opt_levels() {
        let name = format!("recursion-{o}");
        for (n, x) in [(10, 3), (5, 2), (0, 1), (12, -2), (15, 7), (1, 0)] {
            let f = fact(n);
            let expected = [f, fib(n & 15), ackermann(x & 3, n & 7), pow_rec(x, n & 31)];
            let (sn, sx) = (n.to_string(), x.to_string());
            check(&name, &[&sn, &sx], b"", &lines(&expected), status(f));
        }
    }
}

#[test]
fn switch_dispatch() {
    for o in opt_levels() {
        let name = format!("switch-{o}");
        for op in [-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1000] {
            for (a, b) in [(6, 7), (-20, 3), (100, 0)] {
                let mut st = SwitchState::default();
                let r = dispatch(op, a, b, &mut st);
                let hits = st.hits.iter().sum::<i32>();
                let args = [op.to_string(), a.to_string(), b.to_string()];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                check(&name, &args, b"", &lines(&[r, st.last_op, hits]), status(r));
            }
        }
    }
}

#[test]
fn calls() {
    for o in opt_levels() {
        let name = format!("calls-{o}");
        for (a, b, s) in [
            (5, 9, "banana"),
            (-3, 100, "abracadabra"),
            (0, 0, ""),
            (17, -4, "The quick brown fox"),
        ] {
            let (expected, exit) = calls_expected(a, b, s);
            let (sa, sb) = (a.to_string(), b.to_string());
            check(&name, &[&sa, &sb, s], b"", &expected, exit);
        }
    }
}

#[test]
fn interp_vm() {
    for o in opt_levels() {
        let name = format!("interp-{o}");
        for x in [0, 1, 5, 10, 13, 100] {
            let expected = [x * x + 1, fact(x), sum_to(x), 3 * x - 7];
            for (n, r) in expected.iter().enumerate() {
                let (sn, sx) = (n.to_string(), x.to_string());
                check(&name, &["vm", &sn, &sx], b"", &lines(&[r]), status(*r));
            }
        }
        // Unknown program and out-of-range x are rejected by main.
        assert_eq!(
            run(&name, &["vm", "4", "1"], b"").status,
            Termination::Exited(2)
        );
        assert_eq!(
            run(&name, &["vm", "1", "-1"], b"").status,
            Termination::Exited(2)
        );
    }
}

#[test]
fn interp_bf() {
    const HELLO: &str = "++++++++[>++++[>++>+++>+++>+<<<<-]>+>+>->>+[<]<-]>>.>---.+++++++..+++.>>.<-.<.+++.------.--------.>>+.>++.";
    for o in opt_levels() {
        let name = format!("interp-{o}");
        let out = run(&name, &["bf", HELLO, ""], b"");
        let text = "Hello World!\n";
        assert_eq!(out.stdout_str(), format!("{text}\n{}\n", text.len()));
        assert_eq!(out.status, Termination::Exited(text.len() as i32));

        // cat: copies its input.
        let out = run(&name, &["bf", ",[.,]", "wiper"], b"");
        assert_eq!(out.stdout_str(), "wiper\n5\n");

        // Add one to each input byte; '<' wraps the head around the tape.
        let out = run(&name, &["bf", ",[+.,]<<<", "HAL"], b"");
        assert_eq!(out.stdout_str(), "IBM\n3\n");
    }
}

/// Expected output of `libc_demo WORD X Y N V...`, and its exit status.
fn libc_demo_expected(word: &str, x: i32, y: i32, n: i32, vs: &[i32]) -> (Vec<String>, i32) {
    let c = match word {
        "add" => 1,
        "sub" => 2,
        "mul" => 3,
        _ => 100 + word.len() as i32,
    };
    let p = power(x, y, n);
    let mut sorted = vs.to_vec();
    sorted.sort_unstable();
    let s = sorted
        .iter()
        .zip(1i32..)
        .fold(0i32, |acc, (&v, i)| acc.wrapping_add(v.wrapping_mul(i)));
    let list: Vec<String> = sorted.iter().map(ToString::to_string).collect();
    let out = vec![c.to_string(), p.to_string(), s.to_string(), list.join(" ")];
    (out, c.wrapping_add(p).wrapping_add(s) & 0x7f)
}

#[test]
fn libc_demo() {
    let variants = ["O0", "O1", "O2", "dyn", "pie", "stripped"];
    let cases: [(&str, i32, i32, i32, &[i32]); 4] = [
        ("add", 2, 1, 3, &[5, -1, 3]),
        ("mul", 3, 1, 2, &[]),
        ("something", -2, 0, 5, &[9, 8, 7, 6, 5, 4, 3, 2, 1]),
        ("sub", 1, 1, 10, &[42]),
    ];
    for v in variants {
        let name = format!("libc_demo-{v}");
        for (word, x, y, n, vs) in cases {
            let mut args = vec![
                word.to_string(),
                x.to_string(),
                y.to_string(),
                n.to_string(),
            ];
            args.extend(vs.iter().map(ToString::to_string));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (expected, exit) = libc_demo_expected(word, x, y, n, vs);
            check(&name, &args, b"", &expected, exit);
        }
    }
}

#[test]
fn timeout_kills_a_looping_program() {
    // "+[]" loops forever in the Brainfuck interpreter.
    let start = Instant::now();
    let err = run_binary_with_timeout(
        &testdata_bin("interp-O2"),
        &["bf", "+[]", ""],
        b"",
        Duration::from_millis(200),
    )
    .expect_err("an endless loop must time out");
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn large_stdin_and_early_exit() {
    // The program reads two numbers and exits without draining a large input:
    // the writer thread must not block or fail the run.
    let mut input = b"3 4\n".to_vec();
    input.resize(1 << 20, b' ');
    let out = run("loops-O1", &[], &input);
    assert_eq!(out.stdout_lines()[0], sum_to(3).to_string());
    assert!(matches!(out.status, Termination::Exited(_)));
}

/// `step` of pie_switch.c: the result, and the global `calls` after one call from 0.
fn pie_step(op: i32, a: i32, b: i32) -> (i32, i32) {
    match op {
        0 => (a.wrapping_add(b), 1),
        1 => (a.wrapping_sub(b), 2),
        2 => (a.wrapping_mul(b), 3),
        3 => (a & b, -1),
        4 => (a | b, 5),
        5 => (a ^ b, a),
        6 => (a.wrapping_shl((b & 7) as u32), b),
        7 => (((a as u32) >> (b & 7)) as i32, 0),
        _ => (-1, 0),
    }
}

#[test]
fn pie_switch() {
    for o in ["O0", "O2"] {
        for op in -1..=9 {
            for (a, b) in [(7, 3), (-100, 9), (i32::MAX, 2)] {
                let (r, calls) = pie_step(op, a, b);
                let args = [op.to_string(), a.to_string(), b.to_string()];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                check(
                    &format!("pie_switch-{o}"),
                    &args,
                    b"",
                    &lines(&[r, calls]),
                    status(r),
                );
            }
        }
    }
}
