//! The disassembler against GNU objdump, instruction for instruction, for every
//! function defined in the testdata sources, in every testdata binary.
//!
//! For each function: every instruction wiper decodes must be at an address where
//! objdump starts an instruction, with the same text after normalizing notation
//! (see [`normalize`]); and every instruction objdump lists inside the function's
//! symbol that wiper did not reach must be padding (nop forms) or an unreachable
//! `hlt` after an exit system call (except in the functions of
//! `PARTLY_DECODED`).

mod common;

use std::path::Path;

use common::{extents, normalize, Objdump};
use wiper_elf::Binary;
use wiper_testkit::{all_binaries, testdata_dir};
use wiper_x86::format::InstructionPrinter;
use wiper_x86::{Disassembler, Syntax};

/// Names of the functions a C (or assembly) source file defines: a line at column 0
/// that names `identifier(` and does not end in `;`, followed by a `{` line; or an
/// assembly label `name:` that is declared `.globl`. Each name comes with whether it
/// is `static` (gcc may inline a static function away entirely).
fn defined_functions(source: &Path) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(source).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut names = Vec::new();
    if source.extension().is_some_and(|e| e == "S") {
        for l in &lines {
            if let Some(name) = l.trim().strip_prefix(".globl") {
                names.push((name.trim().to_string(), false));
            }
        }
        return names;
    }
    for (i, l) in lines.iter().enumerate() {
        let starts_definition = l
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let opens_body = l.trim_end().ends_with('{')
            || lines
                .get(i + 1)
                .is_some_and(|n| n.trim_start().starts_with('{'));
        if !starts_definition || l.trim_end().ends_with(';') || !opens_body {
            continue;
        }
        let Some(paren) = l.find('(') else { continue };
        let before = l[..paren].trim_end();
        let name: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !name.is_empty() && name != "WIPER_TARGET" {
            names.push((name, l.starts_with("static")));
        }
    }
    names
}

/// The sources a testdata binary was built from (see testdata/Makefile).
fn sources_of(binary: &Path) -> Vec<std::path::PathBuf> {
    let file = binary.file_name().unwrap().to_str().unwrap();
    let program = file.split('-').next().unwrap();
    let dir = testdata_dir();
    let source = dir.join("src").join(format!("{program}.c"));
    let uses_rt = std::fs::read_to_string(&source)
        .unwrap()
        .contains("#include \"../rt/rt.h\"");
    let mut sources = vec![source];
    if uses_rt {
        sources.push(dir.join("rt/rt.c"));
        sources.push(dir.join("rt/start.S"));
    }
    sources
}

#[test]
fn normalization_rules() {
    assert_eq!(normalize("jmp    804903c <abn+0x1c>"), "jmp 0x804903c");
    assert_eq!(
        normalize("mov    edx,DWORD PTR ds:0x804b15c"),
        "mov edx,DWORD PTR [0x804b15c]"
    );
    assert_eq!(
        normalize("rep movs BYTE PTR es:[edi],BYTE PTR ds:[esi]"),
        "rep movsb BYTE PTR [edi],BYTE PTR [esi]"
    );
    assert_eq!(normalize("lea    esi,[esi+eiz*1+0x0]"), "lea esi,[esi]");
    assert_eq!(normalize("shr    eax,1"), "shr eax,0x1");
    assert_eq!(normalize("add    eax,1"), "add eax,1");
    assert_eq!(normalize("mov    ds:0x804b15c,eax"), "mov [0x804b15c],eax");
    assert_eq!(
        normalize("mov DWORD PTR [0x804b15c],eax"),
        "mov [0x804b15c],eax"
    );
    assert_eq!(
        normalize("mov DWORD PTR [0x804b15c],edx"),
        "mov DWORD PTR [0x804b15c],edx"
    );
    assert_eq!(normalize("mov    eax,gs:0x14"), "mov eax,gs:[0x14]");
    assert_eq!(
        normalize("mov eax,DWORD PTR gs:[0x14]"),
        "mov eax,gs:[0x14]"
    );
    assert_eq!(
        normalize("sub    eax,DWORD PTR gs:0x14"),
        "sub eax,DWORD PTR gs:[0x14]"
    );
    assert_eq!(
        normalize("lods   eax,DWORD PTR ds:[esi]"),
        "lodsd eax,DWORD PTR [esi]"
    );
    assert_eq!(normalize("xbegin 80bf824"), "xbegin 0x80bf824");
}

/// Functions whose code the decoder cannot reach whole, by binary and
/// function, with the reason: only the instructions it decodes are checked.
const PARTLY_DECODED: &[(&str, &str, &str)] = &[
    (
        "cgvm-O0",
        "cg_run",
        "computed goto: the handlers are reached only through `jmp eax` with \
         targets loaded from `static void *dispatch[]`, which gcc leaves in \
         writable .data at -O0 (not a jump table the decoder resolves)",
    ),
    (
        "globals-O0",
        "run_ops",
        "computed goto, its table in writable .data: decoded from the targets \
         only when the specializer knows them",
    ),
    (
        "globals-O2",
        "run_ops",
        "computed goto (gcc -O2 keeps `goto *` through its own table of \
         label addresses): decoded from the targets only when the specializer \
         knows them",
    ),
    (
        "globals-O1",
        "run_ops",
        "computed goto whose index is computed on other paths than the one \
         into the shared `jmp ebx`: decoded from the targets only when the \
         specializer knows them",
    ),
    (
        "weak-O0",
        "hooked",
        "gcc's code after `call 0` (an undefined weak function, which \
         faults) is never reached, so it is not decoded",
    ),
    ("weak-O1", "hooked", "as weak-O0"),
    ("weak-O2", "hooked", "as weak-O0"),
];

/// Whether `name` in the binary at `path` is in [`PARTLY_DECODED`].
fn partly_decoded(path: &Path, name: &str) -> bool {
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    PARTLY_DECODED
        .iter()
        .any(|(bin, function, _)| *bin == file && *function == name)
}

#[test]
fn disassembly_matches_objdump_for_every_source_function() {
    let mut functions_checked = 0;
    let mut instructions_checked = 0;
    for path in all_binaries() {
        let binary = Binary::open(&path).unwrap();
        let reference = Objdump::of(&path);
        let mut printer = InstructionPrinter::new(&binary, Syntax::Intel);
        let mut dis = Disassembler::new(&binary);
        let names: Vec<(String, bool)> = sources_of(&path)
            .iter()
            .flat_map(|s| defined_functions(s))
            .collect();
        assert!(
            names.len() >= 2,
            "{}: sources define {names:?}",
            path.display()
        );
        let stripped = binary.symbols.is_empty();
        for (name, is_static) in &names {
            let Some(sym) = binary.functions_named(name).first().copied().cloned() else {
                // The stripped binary has no names.
                assert!(stripped || *is_static, "{}: {name} missing", path.display());
                continue;
            };
            let f = dis
                .function(sym.addr)
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
            for ins in f.instructions() {
                if let Some(m) = reference.mismatch(&mut printer, ins) {
                    panic!("{}: {name} at {:#x}: {m}", path.display(), ins.ip32());
                }
                instructions_checked += 1;
            }
            let missed = reference.undecoded(&binary, &extents(&f), sym.addr, sym.addr + sym.size);
            assert!(
                missed.is_empty() || partly_decoded(&path, name),
                "{}: {name}: objdump's {missed:?} not decoded",
                path.display()
            );
            functions_checked += 1;
        }
    }
    // Observed 607 functions on 2026-12-03; the floor is 86% of that.
    assert!(functions_checked >= 520, "{functions_checked} functions");
    assert!(
        instructions_checked > 10_000,
        "{instructions_checked} instructions"
    );
}
