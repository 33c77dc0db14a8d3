//! The disassembler against GNU objdump on the real-world test bed
//! (`testdata/real/`, see testdata/README.md): programs nobody here wrote.

mod common;

use common::check_all_functions;

#[test]
#[ignore]
fn measure_real_binaries() {
    for name in wiper_testkit::REAL_BINARIES {
        let f = check_all_functions(&wiper_testkit::real_bin(name));
        println!(
            "{name}: {} functions, {} instructions, {} errors, {} mismatches, {} undecoded, jump tables {}/{}, {} stray targets",
            f.functions,
            f.instructions,
            f.errors.len(),
            f.mismatches.len(),
            f.undecoded.len(),
            f.resolved_tables(),
            f.table_jumps.len(),
            f.stray_targets.len()
        );
        if let Ok(dir) = std::env::var("WIPER_MEASURE_DUMP") {
            let all: Vec<&String> = f
                .errors
                .iter()
                .chain(&f.mismatches)
                .chain(&f.undecoded)
                .collect();
            let file = format!("{dir}/{}.txt", name.replace('/', "_"));
            let unresolved: Vec<String> = f
                .table_jumps
                .iter()
                .filter(|(_, &r)| !r)
                .map(|(a, _)| format!("unresolved {a:#x}\n"))
                .collect();
            std::fs::write(
                file,
                all.iter()
                    .map(|l| format!("{l}\n"))
                    .chain(unresolved)
                    .collect::<String>(),
            )
            .unwrap();
        }
        for line in f
            .errors
            .iter()
            .chain(&f.mismatches)
            .chain(&f.undecoded)
            .take(12)
        {
            println!("    {line}");
        }
    }
}
