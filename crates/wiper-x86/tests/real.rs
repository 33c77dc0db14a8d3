//! The disassembler against GNU objdump on the real-world test bed
//! (`testdata/real/`, see testdata/README.md): programs nobody here wrote.

mod common;

use common::{check_all_functions, Unreached};

#[test]
#[ignore]
fn measure_real_binaries() {
    for name in wiper_testkit::REAL_BINARIES {
        let f = check_all_functions(&wiper_testkit::real_bin(name));
        println!(
            "{name}: {} functions, {} instructions, {} errors, {} mismatches, \
             unreached {:?}, jump tables {}/{}, {} stray targets",
            f.functions,
            f.instructions,
            f.errors.len(),
            f.mismatches.len(),
            f.unreached
                .iter()
                .map(|(k, v)| (k, v.len()))
                .collect::<Vec<_>>(),
            f.resolved_tables(),
            f.table_jumps.len(),
            f.stray_targets.len()
        );
        if let Ok(dir) = std::env::var("WIPER_MEASURE_DUMP") {
            let mut all: Vec<String> = f.errors.iter().chain(&f.mismatches).cloned().collect();
            for (why, lines) in &f.unreached {
                all.extend(lines.iter().map(|l| format!("{why:?} {l}")));
            }
            all.extend(f.stray_targets.iter().cloned());
            all.extend(
                f.table_jumps
                    .iter()
                    .filter(|(_, &r)| !r)
                    .map(|(a, _)| format!("unresolved {a:#x}")),
            );
            let file = format!("{dir}/{}.txt", name.replace('/', "_"));
            std::fs::write(
                file,
                all.iter().map(|l| format!("{l}\n")).collect::<String>(),
            )
            .unwrap();
        }
        for line in f
            .errors
            .iter()
            .chain(&f.mismatches)
            .chain(f.unreached(Unreached::Unexplained))
            .take(12)
        {
            println!("    {line}");
        }
    }
}
