//! Control-flow graphs of the testdata programs: jump tables, calls that do not
//! return, `main` of stripped and PIE binaries, snapshots of the slides' examples.

use wiper_elf::Binary;
use wiper_testkit::{opt_levels, testdata_bin, testdata_dir};
use wiper_x86::{
    format, main_from_start, CallTarget, DecodeError, Disassembler, Function, Successor, Syntax,
};

fn load(name: &str) -> Binary {
    Binary::open(&testdata_bin(name)).unwrap()
}

fn decode(binary: &Binary, name: &str) -> Function {
    let entry = wiper_x86::resolve_function(binary, name).unwrap();
    Disassembler::new(binary).function(entry).unwrap()
}

/// Number of `case` labels in the body of `function` in a testdata source.
fn case_labels(source: &str, function: &str) -> usize {
    let text = std::fs::read_to_string(testdata_dir().join("src").join(source)).unwrap();
    let is_definition = |l: &&str| {
        !l.starts_with(char::is_whitespace)
            && l.contains(&format!("{function}("))
            && !l.ends_with(';')
    };
    text.lines()
        .skip_while(|l| !is_definition(l))
        .take_while(|l| *l != "}")
        .filter(|l| l.trim_start().starts_with("case "))
        .count()
}

/// The one block ending in a resolved jump table, its case edges, and its default.
fn switch_of(f: &Function) -> (Vec<(u32, u32)>, u32) {
    let tables: Vec<_> = f
        .blocks
        .values()
        .filter(|b| b.jump_table.is_some())
        .collect();
    assert_eq!(tables.len(), 1, "{:?}: one jump table", f.name);
    let cases: Vec<(u32, u32)> = tables[0]
        .successors
        .iter()
        .map(|s| match s {
            Successor::Case { index, target } => (*index, *target),
            other => panic!("jump-table block has a {other:?} edge"),
        })
        .collect();
    // The bounds check before the table sends everything else to the default label.
    let guard = f
        .blocks
        .values()
        .find(|b| {
            b.successors.contains(&Successor::NotTaken(tables[0].start))
                || b.end() == tables[0].start
        })
        .expect("a block leading to the table");
    let default = guard
        .successors
        .iter()
        .find_map(|s| match s {
            Successor::Taken(t) => Some(*t),
            _ => None,
        })
        .expect("bounds check");
    (cases, default)
}

#[test]
fn switch_dispatch_has_one_edge_per_case() {
    let cases_in_source = case_labels("switch.c", "dispatch");
    assert_eq!(cases_in_source, 10);
    for opt in opt_levels() {
        let binary = load(&format!("switch-{opt}"));
        let f = decode(&binary, "dispatch");
        let (cases, default) = switch_of(&f);
        assert_eq!(cases.len(), cases_in_source, "switch-{opt}");
        let indices: Vec<u32> = cases.iter().map(|c| c.0).collect();
        assert_eq!(indices, (0..cases_in_source as u32).collect::<Vec<_>>());
        for (i, target) in &cases {
            assert!(
                f.blocks.contains_key(target),
                "switch-{opt}: case {i} target {target:#x} is a block"
            );
            assert_ne!(
                *target, default,
                "switch-{opt}: case {i} is a real case, not the default"
            );
        }
        let distinct: std::collections::BTreeSet<u32> = cases.iter().map(|c| c.1).collect();
        assert_eq!(
            distinct.len(),
            cases_in_source,
            "switch-{opt}: every case has its own code"
        );
    }
}

#[test]
fn pic_switch_has_got_relative_table() {
    let cases_in_source = case_labels("pie_switch.c", "step");
    assert_eq!(cases_in_source, 8);
    for opt in ["O0", "O2"] {
        let binary = load(&format!("pie_switch-{opt}"));
        let f = decode(&binary, "step");
        let (cases, default) = switch_of(&f);
        assert_eq!(cases.len(), cases_in_source, "pie_switch-{opt}");
        let table = f
            .blocks
            .values()
            .find_map(|b| b.jump_table.clone())
            .unwrap();
        assert_eq!(table.relative_to, binary.got, "entries are GOT-relative");
        let distinct: std::collections::BTreeSet<u32> = cases.iter().map(|c| c.1).collect();
        assert_eq!(distinct.len(), cases_in_source);
        assert!(!distinct.contains(&default));
    }
}

#[test]
fn interpreters_dispatch_through_resolved_tables() {
    let vm_cases = case_labels("interp.c", "run_vm");
    let bf_cases = case_labels("interp.c", "bf");
    assert_eq!((vm_cases, bf_cases), (13, 8));
    for opt in opt_levels() {
        let binary = load(&format!("interp-{opt}"));
        // run_vm: opcodes 0..12 are all cases, a dense table.
        let (cases, _) = switch_of(&decode(&binary, "run_vm"));
        assert_eq!(cases.len(), vm_cases, "interp-{opt} run_vm");
        // bf: characters '+' (0x2b) to ']' (0x5d): 51 entries, 8 of them cases, the
        // rest the default.
        let (cases, default) = switch_of(&decode(&binary, "bf"));
        assert_eq!(cases.len(), usize::from(b']' - b'+') + 1, "interp-{opt} bf");
        let real: std::collections::BTreeSet<u32> = cases
            .iter()
            .map(|c| c.1)
            .filter(|&t| t != default)
            .collect();
        assert_eq!(real.len(), bf_cases, "interp-{opt} bf");
    }
}

#[test]
fn exit_paths_do_not_fall_into_the_next_function() {
    for opt in opt_levels() {
        let binary = load(&format!("power-{opt}"));
        let start = decode(&binary, "_start");
        let sym = binary.functions_named("_start")[0];
        assert!(
            start.instructions().all(|i| i.ip32() < sym.addr + sym.size),
            "power-{opt} _start"
        );
        let last = start.blocks.values().last().unwrap();
        assert_eq!(
            last.successors,
            vec![Successor::Halt],
            "exit system call halts"
        );
        let calls_main = start.blocks.values().any(|b| {
            b.successors.contains(&Successor::Call(CallTarget::Function(
                binary.functions_named("main")[0].addr,
            )))
        });
        assert!(calls_main);
    }
}

#[test]
fn main_is_found_from_start() {
    let with_symbols = load("libc_demo-O2");
    let main = with_symbols.functions_named("main")[0].addr;
    let stripped = load("libc_demo-stripped");
    assert!(stripped.symbols.is_empty());
    assert_eq!(wiper_x86::find_main(&stripped), Some(main));
    assert_eq!(wiper_x86::resolve_function(&stripped, "main"), Ok(main));
    for name in ["libc_demo-O0", "libc_demo-dyn", "libc_demo-pie"] {
        let binary = load(name);
        let main = binary.functions_named("main")[0].addr;
        assert_eq!(main_from_start(&binary), Some(main), "{name}");
    }
}

#[test]
fn plt_calls_are_named() {
    let binary = load("libc_demo-dyn");
    let main = decode(&binary, "main");
    let imports: std::collections::BTreeSet<String> = main
        .blocks
        .values()
        .flat_map(|b| &b.successors)
        .filter_map(|s| match s {
            Successor::Call(CallTarget::Import { name, .. }) => Some(name.clone()),
            _ => None,
        })
        .collect();
    for expected in ["printf", "strtol"] {
        assert!(
            imports.contains(expected),
            "main calls {expected}: {imports:?}"
        );
    }
}

#[test]
fn slides_examples_listing_snapshots() {
    for program in ["power", "prod", "abn"] {
        for opt in ["O0", "O2"] {
            let binary = load(&format!("{program}-{opt}"));
            let f = decode(&binary, program);
            insta::assert_snapshot!(
                format!("{program}-{opt}"),
                format::listing(&binary, &f, Syntax::Intel)
            );
        }
    }
}

/// Every function of damaged binaries decodes or fails with an error, never a panic.
#[test]
fn damaged_code_never_panics() {
    let original = std::fs::read(testdata_bin("interp-O2")).unwrap();
    let pristine = Binary::parse(original.clone()).unwrap();
    let text = pristine.section(".text").unwrap().clone();
    let entries = pristine.function_symbol_addrs();
    let mut rng = wiper_x86::Rng::new(0x2545_f491_4f6c_dd1d);
    for _ in 0..200 {
        let mut bytes = original.clone();
        for _ in 0..8 {
            let r = rng.next_u64();
            let at = text.offset as usize + (r as usize % text.size as usize);
            bytes[at] = (r >> 32) as u8;
        }
        let binary = Binary::parse(bytes).unwrap();
        let mut dis = Disassembler::new(&binary);
        for &entry in &entries {
            let _ = dis.function(entry);
        }
    }
}

#[test]
fn the_entry_run_stops_at_the_first_gap() {
    // objdump: `__x86.get_pc_thunk.dx` is `mov edx,[esp]; ret` (4 bytes) and
    // padding follows; `power`'s first instructions run on past 5 bytes.
    let pie = load("pie_switch-O2");
    assert_eq!(decode(&pie, "__x86.get_pc_thunk.dx").entry_run(), 4);
    let step = decode(&pie, "step");
    let first = &step.blocks[&step.entry];
    assert!(step.entry_run() >= first.end() - first.start);
    let power = load("power-O2");
    let f = decode(&power, "power");
    let end_of_code = f.instructions().map(|i| i.next_ip32()).max().unwrap();
    assert!(f.entry_run() >= 5 && f.entry_run() <= end_of_code - f.entry);
}

#[test]
fn every_unwind_entry_is_a_function_that_decodes_within_its_range() {
    // An FDE says where a function's code lies, independently of symbols
    // and of wiper: each must be a function wiper finds, and what wiper
    // decodes from its start must stay inside its range or another FDE's
    // (gcc's `.cold` parts have their own), or be alignment padding (glibc's
    // hand-written `__memcpy_chk` falls through padding into `memcpy`).
    // Decoding past the range means a call was taken to return that does
    // not (as `__libc_message` before the decoder used the ranges).
    // glibc's `__clone` and `__clone3` are hand-written: the child's code
    // after the system call has no FDE.
    const NO_CFI_AFTER_SYSCALL: &[&str] = &["__clone", "__clone3"];
    for name in wiper_testkit::REAL_BINARIES {
        let binary = Binary::open(&wiper_testkit::real_bin(name)).unwrap();
        let ranges = binary.unwind_ranges();
        let mut dis = Disassembler::new(&binary);
        let found: std::collections::BTreeSet<u32> = dis.discover_functions().into_iter().collect();
        let inside_some = |a: u32| {
            let i = ranges.partition_point(|r| r.start <= a);
            ranges[..i]
                .iter()
                .rev()
                .take(4)
                .any(|r| a.wrapping_sub(r.start) < r.len)
        };
        let mut printer = format::InstructionPrinter::new(&binary, Syntax::Intel);
        let mut outside = Vec::new();
        for r in &ranges {
            assert!(
                found.contains(&r.start),
                "{name}: FDE at {:#x} not a function",
                r.start
            );
            let exempt = binary
                .function_at(r.start)
                .is_some_and(|s| NO_CFI_AFTER_SYSCALL.contains(&s.name.as_str()));
            let Ok(f) = dis.function(r.start) else {
                continue;
            };
            for ins in f.instructions() {
                let a = ins.ip32();
                let text = printer.format(ins);
                let padding = text.starts_with("nop") || text.starts_with("xchg   ax,ax");
                if !(a.wrapping_sub(r.start) < r.len || inside_some(a) || padding || exempt) {
                    outside.push(format!("{:#x}: {a:#x} {text}", r.start));
                }
            }
        }
        assert!(
            outside.is_empty(),
            "{name}: decoded outside the FDEs:\n{}",
            outside.join("\n")
        );
    }
}

/// `power-O2` with `code(entry)` written over the first bytes of `power`, and
/// `power`'s address (`entry`).
fn power_with_code(code: impl Fn(u32) -> Vec<u8>) -> (Binary, u32) {
    let original = load("power-O2");
    let entry = original.functions_named("power")[0].addr;
    (original.with_bytes_at(entry, &code(entry)).unwrap(), entry)
}

#[test]
fn a_call_to_address_zero_is_an_absent_callee() {
    // `call 0; ret`, as glibc calls an undefined weak function.
    let (binary, entry) = power_with_code(|entry| {
        let mut code = vec![0xe8];
        code.extend(0u32.wrapping_sub(entry + 5).to_le_bytes());
        code.push(0xc3);
        code
    });
    // Executing it would fault: it does not return, and the `ret` after it
    // is reached by no edge.
    let f = Disassembler::new(&binary).function(entry).unwrap();
    assert_eq!(
        f.blocks[&entry].successors,
        vec![Successor::Call(CallTarget::Absent)]
    );
    assert!(!f.blocks.contains_key(&(entry + 5)));
}

/// `test eax,eax; jne L; ARGS; call print_nl; L: mov eax,[esp+4]; ret`
/// over `power`, with `args` two bytes; and `print_nl`'s address.
fn call_falling_into_a_join(args: [u8; 2]) -> (Binary, u32, u32) {
    let callee = load("power-O2").functions_named("print_nl")[0].addr;
    let (binary, entry) = power_with_code(|entry| {
        let mut code = vec![0x85, 0xc0, 0x75, 0x07, args[0], args[1], 0xe8];
        code.extend(callee.wrapping_sub(entry + 11).to_le_bytes());
        code.extend([0x8b, 0x44, 0x24, 0x04, 0xc3]);
        code
    });
    (binary, entry, callee)
}

#[test]
fn a_call_whose_fall_through_another_path_enters_at_another_height_does_not_return() {
    // After `push 1; call` the stack is 4 bytes lower than along the `jne`
    // into the same block: gcc knew the callee does not return there (it
    // emitted no `add esp, 4`), as glibc's malloc calls `__libc_message`.
    let (binary, entry, callee) = call_falling_into_a_join([0x6a, 0x01]);
    let f = Disassembler::new(&binary).function(entry).unwrap();
    let call_block = &f.blocks[&(entry + 4)];
    assert_eq!(
        call_block.successors,
        vec![Successor::Call(CallTarget::Function(callee))]
    );
    // The join is still code, entered by the `jne`.
    assert!(f.blocks.contains_key(&(entry + 11)));
}

#[test]
fn a_call_whose_fall_through_meets_the_same_height_returns() {
    // Near miss: `nop; nop` instead of the push leaves the heights equal.
    let (binary, entry, _) = call_falling_into_a_join([0x90, 0x90]);
    let f = Disassembler::new(&binary).function(entry).unwrap();
    let call_block = &f.blocks[&(entry + 4)];
    assert!(
        call_block
            .successors
            .contains(&Successor::FallThrough(entry + 11)),
        "{:?}",
        call_block.successors
    );
}

#[test]
fn a_jump_over_a_lock_prefix_gives_two_blocks_with_one_end() {
    // `je 1f; lock; 1: inc DWORD PTR [eax]; ret`: glibc's single-threaded
    // fast path skips the prefix.
    let (binary, entry) = power_with_code(|_| vec![0x74, 0x01, 0xf0, 0xff, 0x00, 0xc3]);
    let f = Disassembler::new(&binary).function(entry).unwrap();
    let (outer, inner, end) = (entry + 2, entry + 3, entry + 5);
    for start in [outer, inner] {
        let block = &f.blocks[&start];
        assert_eq!(block.instructions.len(), 1, "{start:#x}");
        assert_eq!(block.end(), end);
        assert_eq!(block.successors, vec![Successor::FallThrough(end)]);
    }
    assert!(f.blocks[&outer].instructions[0].has_lock_prefix());
    assert!(!f.blocks[&inner].instructions[0].has_lock_prefix());
    assert_eq!(f.blocks[&end].successors, vec![Successor::Return]);
    // Every byte once in the listing's count: 2 + 3 + 1.
    assert!(format::listing(&binary, &f, Syntax::Intel).contains("6 bytes"));
}

#[test]
fn other_jumps_into_an_instruction_are_errors() {
    // `je 1f; mov eax, 0x90c3c3c3` with 1f at its second byte: a different
    // instruction there (`ret`), not the same one without prefixes.
    let (binary, entry) = power_with_code(|_| vec![0x74, 0x01, 0xb8, 0xc3, 0xc3, 0xc3, 0x90]);
    assert_eq!(
        Disassembler::new(&binary).function(entry),
        Err(DecodeError::Overlap(entry + 3, entry + 2))
    );
}

/// A computed `goto`'s targets (globals.c's `run_ops` at -O1: the table of
/// label addresses in `.rodata`) are unknown to recursive descent; once a
/// caller records them, the function decodes from them too.
#[test]
fn known_targets_of_a_computed_goto_join_the_function() {
    let binary = wiper_elf::Binary::open(&wiper_testkit::testdata_bin("globals-O1")).unwrap();
    let entry = binary.functions_named("run_ops")[0].addr;
    let table = binary
        .symbols
        .iter()
        .find(|s| s.name == "dispatch.0")
        .unwrap();
    let targets: Vec<u32> = (0..4)
        .map(|k| binary.read_u32(table.addr + 4 * k).unwrap())
        .collect();
    let mut dis = wiper_x86::Disassembler::new(&binary);
    let before = dis.function(entry).unwrap();
    // `stop` is reached by a direct jump too; the others only through the table.
    let hidden = targets
        .iter()
        .filter(|t| !before.blocks.contains_key(t))
        .count();
    assert_eq!(hidden, 3);
    for &t in &targets {
        assert!(dis.add_known_target(entry, t));
    }
    assert!(!dis.add_known_target(entry, targets[0]), "recorded twice");
    let after = dis.function(entry).unwrap();
    for t in &targets {
        assert!(after.blocks.contains_key(t), "{t:#x} not a block");
    }
    // An address outside the function is not decoded from.
    let other = binary.functions_named("sum_primes")[0].addr;
    dis.add_known_target(entry, other);
    assert!(!dis.function(entry).unwrap().blocks.contains_key(&other));
}

/// Found by fuzzing: jump-table recognition follows the stack height
/// through `sub esp, ...` and took the second operand for an immediate;
/// `sub esp,[eax]` (a memory operand) panicked. The height becomes
/// unknown, and the table is still found through `eax`.
#[test]
fn sub_esp_from_memory_before_a_jump_table() {
    let mut bytes = std::fs::read(testdata_bin("switch-O0")).unwrap();
    let binary = Binary::parse(bytes.clone()).unwrap();
    let entry = wiper_x86::resolve_function(&binary, "dispatch").unwrap();
    let at = binary.file_offset(entry + 3).unwrap();
    assert_eq!(bytes[at..at + 3], [0x83, 0xec, 0x28], "sub esp,0x28");
    for patch in [[0x2b, 0x20, 0x90], [0x2b, 0x65, 0x08], [0x03, 0x20, 0x90]] {
        // sub esp,[eax]; nop / sub esp,[ebp+8] / add esp,[eax]; nop
        bytes[at..at + 3].copy_from_slice(&patch);
        let binary = Binary::parse(bytes.clone()).unwrap();
        let f = Disassembler::new(&binary).function(entry).unwrap();
        let (cases, _) = switch_of(&f);
        assert!(!cases.is_empty(), "{patch:02x?}");
    }
}
