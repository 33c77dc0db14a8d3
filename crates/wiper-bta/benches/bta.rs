//! Times the binding-time analysis of every function of the testdata
//! programs (all `-O` levels; for the glibc binaries the functions their
//! sources define) under a typical spec: the first argument dynamic, every
//! other argument the function reads static.
//!
//! `cargo bench -p wiper-bta` prints the slowest functions and the maximum.

use std::time::{Duration, Instant};

use wiper_bta::{analyze, StaticSpec};
use wiper_elf::Binary;
use wiper_testkit::{opt_levels, rt_programs, testdata_bin};
use wiper_x86::Disassembler;

fn main() {
    let mut times: Vec<(Duration, String)> = Vec::new();
    let mut failures = 0;
    let mut work: Vec<(String, Option<Vec<&str>>)> = Vec::new();
    for prog in rt_programs() {
        for opt in opt_levels() {
            work.push((format!("{prog}-{opt}"), None));
        }
    }
    for b in ["O0", "O1", "O2", "dyn", "pie"] {
        work.push((
            format!("libc_demo-{b}"),
            Some(vec!["main", "power", "sort_and_sum", "classify", "cmp_int"]),
        ));
    }
    for b in ["O0", "O2"] {
        work.push((format!("pie_switch-{b}"), Some(vec!["main", "step"])));
    }
    for (name, only) in work {
        {
            let binary = Binary::open(&testdata_bin(&name)).expect("testdata binary");
            let entries: Vec<u32> = match &only {
                None => Disassembler::new(&binary).discover_functions(),
                Some(names) => names
                    .iter()
                    .map(|n| wiper_x86::resolve_function(&binary, n).expect("function"))
                    .collect(),
            };
            for entry in entries {
                let fname = binary
                    .name_of(entry)
                    .unwrap_or_else(|| format!("{entry:#x}"));
                // How many arguments it reads: analyse with no static input first.
                let Ok(base) = analyze(&binary, entry, &StaticSpec::default()) else {
                    failures += 1;
                    continue;
                };
                let specs: Vec<String> =
                    (1..base.arg_count).map(|k| format!("arg{k}={k}")).collect();
                let spec = StaticSpec::parse_all(&specs).expect("spec");
                let runs = 5;
                let start = Instant::now();
                for _ in 0..runs {
                    let a = analyze(&binary, entry, &spec).expect("analysis");
                    std::hint::black_box(&a);
                }
                times.push((start.elapsed() / runs, format!("{name} {fname}")));
            }
        }
    }
    times.sort();
    println!(
        "{} functions analysed ({failures} not analysable)",
        times.len()
    );
    for (t, f) in times.iter().rev().take(10) {
        println!("{:>10.3} ms  {f}", t.as_secs_f64() * 1e3);
    }
    let total: Duration = times.iter().map(|t| t.0).sum();
    if let Some((max, f)) = times.last() {
        println!(
            "max {:.3} ms ({f}), mean {:.3} ms",
            max.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3 / times.len() as f64
        );
    }
}
