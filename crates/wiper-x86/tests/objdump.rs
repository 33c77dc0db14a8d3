//! The disassembler against GNU objdump, instruction for instruction, for every
//! function defined in the testdata sources, in every testdata binary.
//!
//! For each function: every instruction wiper decodes must be at an address where
//! objdump starts an instruction, with the same text after normalizing notation
//! (see [`normalize`]); and every instruction objdump lists inside the function's
//! symbol that wiper did not reach must be padding (nop forms) or an unreachable
//! `hlt` after an exit system call.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

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

/// Rewrites objdump's and wiper's notation into one form. Each rule is a pure
/// notation difference:
/// - `<symbol+off>` annotations are dropped and spaces collapsed;
/// - objdump's bare hex branch targets (`jmp 8049a20`) get a `0x` prefix;
/// - objdump's `ds:0x804c010` for an absolute memory operand is `[0x804c010]`
///   (`gs:0x14` is `gs:[0x14]`);
/// - objdump's `movs`/`stos`/`lods`/`scas`/`cmps` with `es:`/`ds:` operands are
///   the sized mnemonics `movsb`, `stosd`, ...;
/// - objdump's `eiz*1` pseudo-index and `+0x0` zero displacements are dropped;
/// - objdump's shift count `1` (the D1 encoding) is `0x1`;
/// - objdump prints no operand size for `mov` between the accumulator and an
///   absolute address (the `moffs` opcodes A0-A3);
/// - implicit x87 operands ([`x87_operands`]);
/// - iced writes `imul r,r,imm` with one register as `imul r,imm`.
fn normalize(text: &str) -> String {
    let mut s = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => s.push(c),
            _ => {}
        }
    }
    let mut words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    if words.is_empty() {
        return String::new();
    }
    let branch = words[0].starts_with('j') || words[0] == "call" || words[0] == "loop";
    if branch && words.len() == 2 && words[1].chars().all(|c| c.is_ascii_hexdigit()) {
        words[1] = format!("0x{}", words[1]);
    }
    let mnemonic_at = usize::from(matches!(
        words[0].as_str(),
        "rep" | "repz" | "repnz" | "repe" | "repne"
    ));
    if let (Some(m), Some(ops)) = (
        words.get(mnemonic_at).cloned(),
        words.get(mnemonic_at + 1).cloned(),
    ) {
        if matches!(
            m.as_str(),
            "movs" | "stos" | "lods" | "scas" | "cmps" | "ins" | "outs"
        ) {
            let suffix = match ops.split(' ').next().unwrap_or("") {
                o if o.starts_with("BYTE") => "b",
                o if o.starts_with("WORD") => "w",
                o if o.starts_with("DWORD") => "d",
                _ => "",
            };
            words[mnemonic_at] = format!("{m}{suffix}");
        }
    }
    let mut s = words.join(" ");
    for (from, to) in [("es:[", "["), ("ds:[", "["), ("+eiz*1", ""), ("+0x0]", "]")] {
        s = s.replace(from, to);
    }
    // `ds:0x1234` (no brackets) is an absolute address; `gs:0x14` one in
    // the `gs` segment, `gs:[0x14]`.
    for (segment, kept) in [("ds:0x", ""), ("fs:0x", "fs:"), ("gs:0x", "gs:")] {
        while let Some(at) = s.find(segment) {
            let end = s[at + 3..]
                .find(|c: char| !(c.is_ascii_hexdigit() || c == 'x'))
                .map_or(s.len(), |e| at + 3 + e);
            s = format!("{}{kept}[{}]{}", &s[..at], &s[at + 3..end], &s[end..]);
        }
    }
    let accumulator = ["al", "ax", "eax"]
        .iter()
        .any(|r| s.ends_with(&format!(",{r}")) || s.starts_with(&format!("mov {r},")));
    if words[0] == "mov" && accumulator {
        for size in ["DWORD PTR ", "BYTE PTR ", "WORD PTR "] {
            for segment in ["", "fs:", "gs:"] {
                s = s.replace(&format!("{size}{segment}[0x"), &format!("{segment}[0x"));
            }
        }
    }
    if matches!(
        words[0].as_str(),
        "shl" | "shr" | "sar" | "sal" | "rol" | "ror" | "rcl" | "rcr"
    ) && s.ends_with(",1")
    {
        s.push_str("x1");
        s.replace_range(s.len() - 3.., "0x1");
    }
    // iced prints `imul r,r,imm` (same registers) as `imul r,imm`.
    if words[0] == "imul" {
        if let Some((m, ops)) = s.split_once(' ') {
            if let [r, imm] = ops.split(',').collect::<Vec<_>>().as_slice() {
                if imm.starts_with("0x") || imm.starts_with('-') {
                    s = format!("{m} {r},{r},{imm}");
                }
            }
        }
    }
    x87_operands(&words[0], s)
}

/// x87 operands both tools leave implicit in different places: iced shows
/// the stack top `st` (`fild st,DWORD PTR [x]`, `fstp QWORD PTR [x],st`,
/// `fstp st(1),st`), objdump does not; objdump shows the default `st(1)` of
/// the popping arithmetic forms and `fxch` (`faddp st(1),st`, `fxch
/// st(1)`), iced does not. Both sides drop `st`, and a lone `st(1)` of
/// those forms.
fn x87_operands(mnemonic: &str, s: String) -> String {
    if !mnemonic.starts_with('f') {
        return s;
    }
    let Some((m, ops)) = s.split_once(' ') else {
        return s;
    };
    let kept: Vec<&str> = ops.split(',').filter(|o| *o != "st").collect();
    let default_st1 = matches!(
        m,
        "faddp" | "fsubp" | "fsubrp" | "fmulp" | "fdivp" | "fdivrp" | "fxch"
    );
    match kept.as_slice() {
        [] => m.to_owned(),
        ["st(1)"] if default_st1 => m.to_owned(),
        _ => format!("{m} {}", kept.join(",")),
    }
}

fn is_padding(text: &str) -> bool {
    let n = normalize(text);
    n == "hlt"
        || n.starts_with("nop")
        || n == "xchg ax,ax"
        || n.starts_with("lea esi,[esi")
        || n.starts_with("lea edi,[edi")
        || n == "mov esi,esi"
        || n == "mov edi,edi"
        || n.starts_with("data16")
        || n.starts_with("cs nop")
}

/// objdump's Intel listing of all executable sections: address -> text.
fn objdump(path: &Path) -> BTreeMap<u32, String> {
    let out = Command::new("objdump")
        .args(["-d", "-M", "intel", "--no-show-raw-insn", "-w"])
        .arg(path)
        .output()
        .expect("objdump (binutils) must be installed");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (addr, text) = l.split_once(":\t")?;
            let addr = u32::from_str_radix(addr.trim(), 16).ok()?;
            Some((addr, text.trim().to_string()))
        })
        .collect()
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
    assert_eq!(normalize("mov    eax,gs:0x14"), "mov eax,gs:[0x14]");
    assert_eq!(
        normalize("mov eax,DWORD PTR gs:[0x14]"),
        "mov eax,gs:[0x14]"
    );
    assert_eq!(
        normalize("sub    edx,DWORD PTR gs:0x14"),
        "sub edx,DWORD PTR gs:[0x14]"
    );
    assert_eq!(normalize("imul   eax,0x186a0"), "imul eax,eax,0x186a0");
    assert_eq!(normalize("imul   eax,ecx"), "imul eax,ecx");
    assert_eq!(
        normalize("fild   st,DWORD PTR [ebp+0x8]"),
        "fild DWORD PTR [ebp+0x8]"
    );
    assert_eq!(
        normalize("fstp   QWORD PTR [esp],st"),
        "fstp QWORD PTR [esp]"
    );
    assert_eq!(normalize("faddp  st(1),st"), "faddp");
    assert_eq!(normalize("fxch   st(1)"), "fxch");
    assert_eq!(normalize("fstp   st(0),st"), "fstp st(0)");
    assert_eq!(normalize("fcomi  st,st(1)"), "fcomi st(1)");
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
}

#[test]
fn disassembly_matches_objdump_for_every_source_function() {
    let mut functions_checked = 0;
    let mut instructions_checked = 0;
    for path in all_binaries() {
        let binary = Binary::open(&path).unwrap();
        let reference = objdump(&path);
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
                let theirs = reference.get(&ins.ip32()).unwrap_or_else(|| {
                    panic!(
                        "{}: {name}: objdump has no instruction at {:#x}",
                        path.display(),
                        ins.ip32()
                    )
                });
                assert_eq!(
                    normalize(&printer.format(ins)),
                    normalize(theirs),
                    "{}: {name} at {:#x}",
                    path.display(),
                    ins.ip32()
                );
                instructions_checked += 1;
            }
            let ours: std::collections::BTreeSet<u32> =
                f.instructions().map(|i| i.ip32()).collect();
            for (addr, text) in reference.range(sym.addr..sym.addr + sym.size) {
                assert!(
                    ours.contains(addr) || is_padding(text),
                    "{}: {name}: objdump's {addr:#x} `{text}` was not decoded",
                    path.display()
                );
            }
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

/// What checking the functions of one binary against objdump found.
#[derive(Default, Debug)]
struct Findings {
    functions: usize,
    instructions: usize,
    /// Functions that do not decode, with the error.
    errors: Vec<String>,
    /// Instructions whose text differs from objdump's, or where objdump
    /// starts none.
    mismatches: Vec<String>,
    /// Instructions objdump lists inside a function symbol that wiper did not
    /// reach (and that are not padding).
    undecoded: Vec<String>,
    /// Indirect `jmp`s in the shapes of jump tables ([`is_table_jump`]), and
    /// how many of them wiper resolved.
    indirect_jumps: usize,
    resolved_tables: usize,
}

/// Whether `ins` is an indirect jump of a shape gcc emits for a switch: through
/// a table of 4-byte entries (`jmp [reg*4+table]`) or to a register (PIC:
/// the entry plus the GOT address, `add eax,ebx; jmp eax`).
fn is_table_jump(ins: &iced_x86::Instruction) -> bool {
    use iced_x86::{Mnemonic, OpKind};
    ins.mnemonic() == Mnemonic::Jmp
        && match ins.op0_kind() {
            OpKind::Register => true,
            OpKind::Memory => {
                ins.memory_index_scale() == 4 && ins.memory_index() != iced_x86::Register::None
            }
            _ => false,
        }
}

/// Checks every function wiper finds in `path` (symbols, entry, `main`,
/// call targets) against objdump.
fn check_all_functions(path: &Path) -> Findings {
    let binary = Binary::open(path).unwrap();
    let reference = objdump(path);
    let mut printer = InstructionPrinter::new(&binary, Syntax::Intel);
    let mut dis = Disassembler::new(&binary);
    let mut found = Findings::default();
    for entry in dis.discover_functions() {
        let name = binary
            .name_of(entry)
            .unwrap_or_else(|| format!("fn_{entry:x}"));
        let f = match dis.function(entry) {
            Ok(f) => f,
            Err(e) => {
                found.errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        found.functions += 1;
        for ins in f.instructions() {
            found.instructions += 1;
            let ours = normalize(&printer.format(ins));
            match reference.get(&ins.ip32()) {
                Some(theirs) if normalize(theirs) == ours => {}
                theirs => found.mismatches.push(format!(
                    "{name} at {:#x}: wiper `{ours}`, objdump `{}`",
                    ins.ip32(),
                    theirs.map_or("(no instruction)".to_string(), |t| normalize(t))
                )),
            }
        }
        for block in f.blocks.values() {
            let last = block.instructions.last().expect("blocks are not empty");
            if is_table_jump(last) {
                found.indirect_jumps += 1;
                found.resolved_tables += usize::from(block.jump_table.is_some());
            }
        }
        if let Some(sym) = binary.function_at(entry) {
            let ours: std::collections::BTreeSet<u32> =
                f.instructions().map(|i| i.ip32()).collect();
            for (addr, text) in reference.range(sym.addr..sym.addr + sym.size) {
                if !ours.contains(addr) && !is_padding(text) {
                    found.undecoded.push(format!("{name}: {addr:#x} `{text}`"));
                }
            }
        }
    }
    found
}

#[test]
#[ignore]
fn measure_real_binaries() {
    for name in wiper_testkit::REAL_BINARIES {
        let f = check_all_functions(&wiper_testkit::real_bin(name));
        println!(
            "{name}: {} functions, {} instructions, {} errors, {} mismatches, {} undecoded, jump tables {}/{}",
            f.functions,
            f.instructions,
            f.errors.len(),
            f.mismatches.len(),
            f.undecoded.len(),
            f.resolved_tables,
            f.indirect_jumps
        );
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
