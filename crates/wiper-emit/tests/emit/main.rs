//! The emitter on hand-made residual programs: every written binary is run
//! natively, so the processor and the kernel's loader are the judges; goblin,
//! an independent ELF reader, judges the written headers and tables.

mod encoding_edges;
mod inconsistent_inputs;
mod listings;
mod moved_table;
mod real;
mod written_elf;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use iced_x86::code_asm::*;
use iced_x86::{ConditionCode, Instruction, Register};
use wiper_elf::{Binary, SymbolKind};
use wiper_emit::{encode, listing, plan, write_elf, EmitError, Encoded, Plan, MAX_PADDING};
use wiper_residual::{Block, Item, Label, Origin, Residual, ResidualError, Terminator};
use wiper_testkit::{run_binary, scratch_file, testdata_bin, RunOutput};

/// Instructions written with iced's assembler (no labels).
fn asm(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<Instruction> {
    let mut a = CodeAssembler::new(32).unwrap();
    f(&mut a).unwrap();
    a.take_instructions()
}

/// The instructions as items, all from `origin`.
fn items(instructions: Vec<Instruction>, origin: u32) -> Vec<Item> {
    instructions
        .into_iter()
        .map(|i| Item::Instr(i, Origin::Original(origin)))
        .collect()
}

fn block(label: u32, items: Vec<Item>, terminator: Terminator) -> Block {
    Block {
        label: Label(label),
        items,
        terminator,
    }
}

fn jump(label: u32) -> Terminator {
    Terminator::Jump(Label(label), Origin::Glue(0))
}

fn branch(cc: ConditionCode, taken: u32, not_taken: u32) -> Terminator {
    Terminator::Branch {
        cc,
        taken: Label(taken),
        not_taken: Label(not_taken),
        origin: Origin::Original(0x1234),
    }
}

fn residual(entry: u32, blocks: Vec<Block>) -> Residual {
    Residual {
        entry: Some(Label(entry)),
        blocks,
        data: Vec::new(),
        data_vaddr: 0,
        edx_dead_at_return: false,
    }
}

fn load(name: &str) -> (Vec<u8>, Binary) {
    let bytes = std::fs::read(testdata_bin(name)).unwrap();
    let binary = Binary::parse(bytes.clone()).unwrap();
    (bytes, binary)
}

/// What one emission produced.
struct Emitted {
    path: PathBuf,
    input: Vec<u8>,
    binary: Binary,
    plan: Plan,
    residual: Residual,
    encoded: Encoded,
    output: Vec<u8>,
}

impl Emitted {
    fn run(&self, args: &[&str]) -> RunOutput {
        run_binary(&self.path, args, b"").unwrap()
    }
}

/// Specializes `function` of testdata binary `name` to the residual
/// `make(data_vaddr, binary)` builds, writes the result and makes it executable.
fn emit(name: &str, function: &str, make: impl FnOnce(u32, &Binary) -> Residual) -> Emitted {
    let (bytes, binary) = load(name);
    let entry = wiper_x86::resolve_function(&binary, function).unwrap();
    emit_at(name, bytes, binary, entry, make)
}

fn emit_at(
    name: &str,
    input: Vec<u8>,
    binary: Binary,
    entry: u32,
    make: impl FnOnce(u32, &Binary) -> Residual,
) -> Emitted {
    // The data address does not depend on the amount of data.
    let data_vaddr = plan(&binary, 0).unwrap().data_vaddr;
    let r = make(data_vaddr, &binary);
    let plan = plan(&binary, r.data.len() as u32).unwrap();
    assert_eq!(plan.data_vaddr, data_vaddr);
    let encoded = encode(&plan, &r).unwrap();
    let output = write_elf(&input, &binary, &plan, &r, &encoded, entry, "f.specialized").unwrap();
    let path = executable(&format!("{name}.wiper"), &output);
    Emitted {
        path,
        input,
        binary,
        plan,
        residual: r,
        encoded,
        output,
    }
}

/// `bytes`, an ELF file, with every `PT_NOTE` program header turned into
/// `PT_NULL` (an entry loaders skip), so the writer has none to reuse.
fn without_note(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let phoff = u32::from_le_bytes(out[28..32].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(out[44..46].try_into().unwrap()) as usize;
    let mut found = false;
    for i in 0..phnum {
        let at = phoff + 32 * i;
        if out[at..at + 4] == 4u32.to_le_bytes() {
            out[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
            found = true;
        }
    }
    assert!(found, "no PT_NOTE to remove");
    out
}

/// `bytes` written to a fresh executable scratch file named `name`.
fn executable(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_file(name, bytes);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The address of a symbol of the binary.
fn symbol(binary: &Binary, name: &str) -> u32 {
    binary
        .symbols
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no symbol {name}"))
        .addr
}

/// The link-time address of the first occurrence of `needle` in `.rodata`.
fn rodata(binary: &Binary, needle: &[u8]) -> u32 {
    let ro = binary.section(".rodata").unwrap();
    let bytes = binary.read(ro.addr, ro.size).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    ro.addr + at as u32
}

/// Mnemonics of the residual's branch instructions, in address order.
fn branches(e: &Encoded) -> Vec<String> {
    e.lines
        .iter()
        .filter(|l| {
            l.origin.is_some()
                && (l.instruction.is_jcc_short_or_near() || l.instruction.is_jmp_short_or_near())
        })
        .map(|l| format!("{:?}", l.instruction.mnemonic()).to_lowercase())
        .collect()
}

// ---------------------------------------------------------------------------
// Straight-line code, calls.

/// power(x, y, n) = x*x, as the only block.
fn square_first(_: u32, _: &Binary) -> Residual {
    let code = asm(|a| {
        a.mov(eax, dword_ptr(esp + 4))?;
        a.imul_2(eax, eax)?;
        a.ret()
    });
    residual(0, vec![block(0, items(code, 0x80490a0), Terminator::Exit)])
}

#[test]
fn straight_line_residual_runs_in_a_static_binary() {
    let e = emit("power-O2", "power", square_first);
    let out = e.run(&["7", "0", "0"]);
    assert_eq!(out.stdout_str(), "49\n");
    assert_eq!(out.status.code(), Some(49));
    assert_eq!(e.encoded.instruction_count, 3);
    assert_eq!(e.encoded.entry_vaddr, e.plan.code_vaddr);
    assert!(!e.plan.pie);
    assert_eq!(e.plan.thunk_vaddr, e.plan.code_vaddr);
    assert_eq!(e.plan.segment_vaddr % 0x1000, 0);
    assert_eq!(e.plan.segment_offset % 0x1000, 0);
    let text = listing(&e.binary, &e.encoded);
    assert!(text.contains("L0:\n"), "{text}");
    assert!(text.contains("imul   eax,eax"), "{text}");
    assert!(text.contains("; from 0x80490a0"), "{text}");
}

#[test]
fn residual_calls_an_original_function_in_a_static_binary() {
    let e = emit("power-O2", "power", |_, b| {
        let print_int = symbol(b, "print_int");
        let code = asm(|a| {
            a.push(42)?;
            a.call(u64::from(print_int))?;
            a.add(esp, 4)?;
            a.mov(eax, 9)?;
            a.ret()
        });
        residual(0, vec![block(0, items(code, 0x80490a0), Terminator::Exit)])
    });
    let out = e.run(&["1", "2", "3"]);
    assert_eq!(out.stdout_str(), "429\n");
    assert_eq!(out.status.code(), Some(9));
    let text = listing(&e.binary, &e.encoded);
    assert!(text.contains("<print_int>"), "{text}");
}

#[test]
fn call_label_calls_a_residual_block() {
    // power(x, y, n) = square(x + y), square a block called with CallLabel.
    let e = emit("power-O2", "power", |_, _| {
        let entry = asm(|a| {
            a.mov(eax, dword_ptr(esp + 4))?;
            a.add(eax, dword_ptr(esp + 8))?;
            a.push(eax)
        });
        let after = asm(|a| {
            a.add(esp, 4)?;
            a.ret()
        });
        let square = asm(|a| {
            a.mov(eax, dword_ptr(esp + 4))?;
            a.imul_2(eax, eax)?;
            a.ret()
        });
        let mut first = items(entry, 0x80490a0);
        first.push(Item::CallLabel(Label(7), Origin::Glue(0x80490a0)));
        first.extend(items(after, 0x80490a0));
        residual(
            0,
            vec![
                block(7, items(square, 0x80490c0), Terminator::Exit),
                block(0, first, Terminator::Exit),
            ],
        )
    });
    let out = e.run(&["3", "4", "0"]);
    assert_eq!(out.stdout_str(), "49\n");
    assert_eq!(e.encoded.entry_vaddr, e.encoded.labels[&Label(0)]);
    let call = e
        .encoded
        .lines
        .iter()
        .find(|l| l.instruction.is_call_near())
        .unwrap();
    assert_eq!(
        call.instruction.near_branch32(),
        e.encoded.labels[&Label(7)]
    );
    assert_eq!(call.origin, Some(Origin::Glue(0x80490a0)));
    let text = listing(&e.binary, &e.encoded);
    assert!(
        text.contains("<L7>") && text.contains("; glue 0x80490a0"),
        "{text}"
    );
}

#[test]
fn exit_block_that_falls_through_traps() {
    let e = emit("power-O2", "power", |_, _| {
        let code = asm(|a| a.mov(eax, 1));
        residual(0, vec![block(0, items(code, 0x80490a0), Terminator::Exit)])
    });
    let last = e.encoded.lines.last().unwrap();
    assert_eq!(last.instruction.code(), iced_x86::Code::Ud2);
    assert_eq!(last.origin, None);
    assert_eq!(e.encoded.instruction_count, 1);
    let out = e.run(&["1", "2", "3"]);
    assert_eq!(
        out.status,
        wiper_testkit::Termination::Signaled(4),
        "SIGILL"
    );
}

/// The tail of the original power-O2 at 0x80490d0: `mov edx,1; mov eax,edx; ret`.
const RETURN_ONE: u64 = 0x80490d0;

/// `mov eax, 77; ret`, from power-O2's 0x80490c8.
fn return_77() -> Vec<Item> {
    let code = asm(|a| {
        a.mov(eax, 77)?;
        a.ret()
    });
    items(code, 0x80490c8)
}

#[test]
fn short_branch_into_original_code_is_widened() {
    // power(x, y, n) = n == 0 ? 1 (in the original code) : 77.
    let e = emit("power-O2", "power", |_, _| {
        let mut code = items(asm(|a| a.cmp(dword_ptr(esp + 12), 0)), 0x80490a7);
        let je = Instruction::with_branch(iced_x86::Code::Je_rel8_32, RETURN_ONE).unwrap();
        code.push(Item::Instr(je, Origin::Original(0x80490a9)));
        code.extend(return_77());
        residual(0, vec![block(0, code, Terminator::Exit)])
    });
    assert_eq!(e.run(&["1", "1", "0"]).stdout_str(), "1\n");
    assert_eq!(e.run(&["1", "1", "5"]).stdout_str(), "77\n");
    let je = e
        .encoded
        .lines
        .iter()
        .find(|l| l.instruction.is_jcc_short_or_near())
        .unwrap();
    assert_eq!(je.instruction.code(), iced_x86::Code::Je_rel32_32);
    assert_eq!(u64::from(je.instruction.near_branch32()), RETURN_ONE);
}

#[test]
fn loop_into_original_code_is_rewritten_and_keeps_its_origin() {
    // power(x, y, n) = n - 1 == 0 ? 77 : 1 (in the original code): `loop` has
    // only a rel8 form, so the block encoder rewrites it into three branches.
    let e = emit("power-O2", "power", |_, _| {
        let mut code = items(asm(|a| a.mov(ecx, dword_ptr(esp + 12))), 0x80490a0);
        let lp = Instruction::with_branch(iced_x86::Code::Loop_rel8_32_ECX, RETURN_ONE).unwrap();
        code.push(Item::Instr(lp, Origin::Fallback(0x80490c6)));
        code.extend(return_77());
        residual(0, vec![block(0, code, Terminator::Exit)])
    });
    assert_eq!(e.run(&["1", "1", "1"]).stdout_str(), "77\n");
    assert_eq!(e.run(&["1", "1", "2"]).stdout_str(), "1\n");
    let from_loop: Vec<_> = e
        .encoded
        .lines
        .iter()
        .filter(|l| l.origin == Some(Origin::Fallback(0x80490c6)))
        .collect();
    assert!(from_loop.len() > 1, "{:?}", e.encoded.lines);
    assert_eq!(
        e.encoded.lines.last().unwrap().origin,
        Some(Origin::Original(0x80490c8))
    );
}

// ---------------------------------------------------------------------------
// Loops and layouts: power(x, y, n) = (x + y)^n in three block structures.

fn setup() -> Vec<Item> {
    items(
        asm(|a| {
            a.mov(ecx, dword_ptr(esp + 12))?;
            a.mov(edx, dword_ptr(esp + 4))?;
            a.add(edx, dword_ptr(esp + 8))?;
            a.mov(eax, 1)
        }),
        0x80490a0,
    )
}

fn test_ecx() -> Vec<Item> {
    items(asm(|a| a.test(ecx, ecx)), 0x80490a7)
}

fn body() -> Vec<Item> {
    items(
        asm(|a| {
            a.imul_2(eax, edx)?;
            a.dec(ecx)
        }),
        0x80490c0,
    )
}

fn ret() -> Vec<Item> {
    items(asm(|a| a.ret()), 0x80490ca)
}

fn cat(parts: Vec<Vec<Item>>) -> Vec<Item> {
    parts.into_iter().flatten().collect()
}

fn check_power(e: &Emitted) {
    for (args, expected) in [
        (["2", "3", "3"], 125),
        (["2", "3", "0"], 1),
        (["1", "1", "10"], 1024),
        (["5", "0", "1"], 5),
    ] {
        let out = e.run(&args);
        assert_eq!(out.stdout_str(), format!("{expected}\n"), "power {args:?}");
        assert_eq!(out.status.code(), Some(expected & 0x7f));
    }
}

/// The blocks' addresses in layout order.
fn layout(e: &Emitted) -> Vec<u32> {
    let mut by_addr: Vec<(u32, u32)> = e.encoded.labels.iter().map(|(l, a)| (*a, l.0)).collect();
    by_addr.sort();
    by_addr.into_iter().map(|(_, l)| l).collect()
}

#[test]
fn loop_with_not_taken_next_and_neither_next() {
    use ConditionCode::ne;
    let e = emit("power-O2", "power", |_, _| {
        residual(
            0,
            vec![
                block(0, cat(vec![setup(), test_ecx()]), branch(ne, 2, 1)),
                block(1, ret(), Terminator::Exit),
                block(2, body(), jump(3)),
                block(3, test_ecx(), branch(ne, 2, 1)),
            ],
        )
    });
    check_power(&e);
    assert_eq!(layout(&e), vec![0, 1, 2, 3]);
    // 0: jne L2 (L1 next); 2: jump to L3 elided; 3: jne L2; jmp L1.
    assert_eq!(branches(&e.encoded), vec!["jne", "jne", "jmp"]);
    let jmp = e
        .encoded
        .lines
        .iter()
        .rev()
        .find(|l| l.origin.is_some())
        .unwrap();
    assert_eq!(jmp.instruction.near_branch32(), e.encoded.labels[&Label(1)]);
    assert_eq!(jmp.origin, Some(Origin::Original(0x1234)));
}

#[test]
fn loop_with_taken_next_and_empty_blocks() {
    use ConditionCode::e as eq;
    let e = emit("power-O2", "power", |_, _| {
        residual(
            0,
            vec![
                block(0, setup(), jump(4)),
                block(4, Vec::new(), jump(3)),
                block(3, test_ecx(), branch(eq, 1, 2)),
                block(2, body(), branch(eq, 1, 3)),
                block(1, ret(), Terminator::Exit),
            ],
        )
    });
    check_power(&e);
    // 0 and the empty 4 jump to their successors, which follow: both elided.
    assert_eq!(e.encoded.labels[&Label(4)], e.encoded.labels[&Label(3)]);
    // 3: je L1 (L2 next); 2: taken L1 is next, so jne L3.
    assert_eq!(branches(&e.encoded), vec!["je", "jne"]);
    let check = e
        .encoded
        .lines
        .iter()
        .find(|l| l.block == Some(Label(3)))
        .unwrap();
    assert_eq!(check.empty_blocks, vec![Label(4)]);
    let text = listing(&e.binary, &e.encoded);
    // One label per branch target: the empty block L4 shares L3's address.
    assert!(text.contains("\nL3:\n") && !text.contains("L4:"), "{text}");
}

#[test]
fn while_loop_is_rotated_so_each_turn_falls_through() {
    use ConditionCode::e as eq;
    let e = emit("power-O2", "power", |_, _| {
        residual(
            0,
            vec![
                block(0, setup(), jump(3)),
                block(3, test_ecx(), branch(eq, 1, 2)),
                block(2, body(), jump(3)),
                block(1, ret(), Terminator::Exit),
            ],
        )
    });
    check_power(&e);
    // The latch 2 goes before the header 3: the entry jumps into the loop
    // once, and a turn is body, test and `jne` back to the body.
    assert_eq!(layout(&e), vec![0, 2, 3, 1]);
    assert_eq!(branches(&e.encoded), vec!["jmp", "jne"]);
}

#[test]
fn loop_with_same_targets_unreachable_and_trailing_blocks() {
    use ConditionCode::{e as eq, ne};
    let e = emit("power-O2", "power", |_, _| {
        let unreachable = items(asm(|a| a.ud2()), 0);
        residual(
            0,
            vec![
                block(9, unreachable, Terminator::Exit),
                block(0, cat(vec![setup(), test_ecx()]), branch(eq, 5, 2)),
                block(2, body(), branch(ne, 2, 6)),
                block(6, Vec::new(), branch(eq, 1, 1)),
                block(1, ret(), Terminator::Exit),
                block(5, Vec::new(), jump(1)),
            ],
        )
    });
    check_power(&e);
    // 6 is empty and shares 1's address.
    assert_eq!(layout(&e), vec![0, 2, 1, 6, 5]);
    assert!(!e.encoded.labels.contains_key(&Label(9)));
    assert_eq!(e.encoded.labels[&Label(6)], e.encoded.labels[&Label(1)]);
    assert_eq!(branches(&e.encoded), vec!["je", "jne", "jmp"]);
}

// ---------------------------------------------------------------------------
// Position-independent executables and data.

/// step(op, a, b) of pie_switch-O2 = the first word of "usage: ...", and
/// calls = 1234: two `Item::Address`es, through the thunks of eax and ecx.
fn usage_and_calls(b: &Binary) -> Residual {
    let usage = rodata(b, b"usage");
    let calls = symbol(b, "calls");
    let load = asm(|a| a.mov(eax, dword_ptr(eax)));
    let store = asm(|a| {
        a.mov(dword_ptr(ecx), 1234)?;
        a.ret()
    });
    let origin = Origin::Materialized(0x1290);
    let mut first = vec![Item::Address {
        reg: Register::EAX,
        addr: usage,
        origin,
    }];
    first.extend(items(load, 0x12a8));
    first.push(Item::Address {
        reg: Register::ECX,
        addr: calls,
        origin,
    });
    first.extend(items(store, 0x12b1));
    residual(0, vec![block(0, first, Terminator::Exit)])
}

/// What pie_switch prints after [`usage_and_calls`].
fn check_usage_and_calls(out: &RunOutput) {
    let word = u32::from_le_bytes(*b"usag");
    assert_eq!(out.stdout_str(), format!("{word}\n1234\n"));
}

#[test]
fn pie_residual_addresses_data_through_pc_thunks() {
    let e = emit("pie_switch-O2", "step", |_, b| usage_and_calls(b));
    assert!(e.plan.pie);
    assert_eq!(e.encoded.thunks.len(), 2);
    assert_eq!(e.encoded.thunks[0].1, e.plan.thunk_vaddr);
    // Two runs: under ASLR the load base differs, the result does not.
    for _ in 0..2 {
        check_usage_and_calls(&e.run(&["3", "4", "5"]));
    }
    // Address expansions carry the item's origin; thunks none.
    let with_origin = e
        .encoded
        .lines
        .iter()
        .filter(|l| l.origin == Some(Origin::Materialized(0x1290)))
        .count();
    assert_eq!(with_origin, 4);
    assert_eq!(
        e.encoded
            .lines
            .iter()
            .filter(|l| l.origin.is_none())
            .count(),
        6
    );
    assert_eq!(e.encoded.instruction_count, 7);
    let text = listing(&e.binary, &e.encoded);
    assert!(
        text.contains("<pc_thunk.eax>") && text.contains("pc_thunk.ecx:"),
        "{text}"
    );
    assert!(text.contains("; materialized for 0x1290"), "{text}");
}

/// step(op, a, b) of pie_switch-O2 = 2 * table[op] for op <= 7, also stored
/// in `calls`; op > 7 jumps to the original default case (`step.cold`: -1,
/// calls = 0). It loads the residual's data, the GOT (edx) and `calls` (ecx)
/// through PC thunks, calls a residual block, and branches to a block that
/// never runs: a hand-written call to ecx's thunk and a trap.
fn table_and_calls(data_vaddr: u32, b: &Binary) -> Residual {
    let data: Vec<u8> = (10u32..18).flat_map(|v| v.to_le_bytes()).collect();
    // ecx's thunk is the first: edx comes after it in the thunk area.
    let ecx_thunk = plan(b, data.len() as u32).unwrap().thunk_vaddr;
    let address = |reg, addr, at| Item::Address {
        reg,
        addr,
        origin: Origin::Materialized(at),
    };
    let cold = symbol(b, "step.cold");
    let ja = Instruction::with_branch(iced_x86::Code::Ja_rel32_32, u64::from(cold)).unwrap();
    let mut entry = vec![address(Register::EDX, b.got.unwrap(), 0x1290)];
    entry.extend(items(
        asm(|a| {
            a.mov(eax, dword_ptr(esp + 4))?;
            a.cmp(eax, 7)
        }),
        0x129b,
    ));
    entry.push(Item::Instr(ja, Origin::Original(0x12a2)));
    entry.push(address(Register::ECX, data_vaddr, 0x12a8));
    entry.extend(items(asm(|a| a.mov(eax, dword_ptr(ecx + eax * 4))), 0x12a8));
    entry.push(Item::CallLabel(Label(2), Origin::Glue(0x12af)));
    entry.extend(items(asm(|a| a.test(eax, eax)), 0x12af));
    let mut store = vec![address(Register::ECX, symbol(b, "calls"), 0x12d1)];
    store.extend(items(
        asm(|a| {
            a.mov(dword_ptr(ecx), eax)?;
            a.ret()
        }),
        0x12d1,
    ));
    let double = asm(|a| {
        a.add(eax, eax)?;
        a.ret()
    });
    let odd = asm(|a| {
        a.call(u64::from(ecx_thunk))?;
        a.lea(edx, dword_ptr(ecx + 16))
    });
    Residual {
        entry: Some(Label(0)),
        blocks: vec![
            block(0, entry, branch(ConditionCode::s, 3, 1)),
            block(1, store, Terminator::Exit),
            block(2, items(double, 0x1300), Terminator::Exit),
            block(3, items(odd, 0x1080), Terminator::Exit),
        ],
        data,
        data_vaddr,
        edx_dead_at_return: false,
    }
}

/// A table of words, and a residual that returns `table[arg]` (argument
/// `index` counted from 1).
fn table_lookup(data_vaddr: u32, index: i32) -> Residual {
    let data: Vec<u8> = [11u32, 22, 33, 44, 55]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut code = items(asm(|a| a.mov(eax, dword_ptr(esp + 4 * index))), 0x1000);
    code.push(Item::Address {
        reg: Register::EDX,
        addr: data_vaddr,
        origin: Origin::Materialized(0x1000),
    });
    code.extend(items(
        asm(|a| {
            a.mov(eax, dword_ptr(edx + eax * 4))?;
            a.ret()
        }),
        0x1004,
    ));
    Residual {
        entry: Some(Label(0)),
        blocks: vec![block(0, code, Terminator::Exit)],
        data,
        data_vaddr,
        edx_dead_at_return: false,
    }
}

#[test]
fn residual_reads_its_data_in_a_static_binary() {
    let e = emit("power-O2", "power", |d, _| table_lookup(d, 3));
    assert_eq!(e.run(&["0", "0", "3"]).stdout_str(), "44\n");
    let at = e.plan.segment_offset as usize;
    assert_eq!(&e.output[at..at + 4], &11u32.to_le_bytes());
}

#[test]
fn residual_reads_its_data_in_a_pie() {
    let e = emit("pie_switch-O2", "step", |d, _| table_lookup(d, 1));
    assert_eq!(e.run(&["4", "0", "0"]).stdout_str(), "55\n0\n");
    assert_eq!(e.run(&["0", "0", "0"]).stdout_str(), "11\n0\n");
}

// ---------------------------------------------------------------------------
// glibc binaries: static, dynamic, PIE, stripped.

/// power(x, y, n) = 1000 x + y.
fn thousand(_: u32, _: &Binary) -> Residual {
    let code = asm(|a| {
        a.mov(eax, dword_ptr(esp + 4))?;
        a.imul_3(eax, eax, 1000)?;
        a.add(eax, dword_ptr(esp + 8))?;
        a.ret()
    });
    residual(0, vec![block(0, items(code, 0), Terminator::Exit)])
}

#[test]
fn glibc_binaries_of_every_kind_run_specialized() {
    let (_, o2) = load("libc_demo-O2");
    let power_o2 = symbol(&o2, "power");
    for name in [
        "libc_demo-O2",
        "libc_demo-dyn",
        "libc_demo-pie",
        "libc_demo-stripped",
    ] {
        let (bytes, binary) = load(name);
        // The stripped binary is libc_demo-O2 through `strip`: same addresses.
        let entry = if name.ends_with("stripped") {
            power_o2
        } else {
            symbol(&binary, "power")
        };
        let e = emit_at(name, bytes, binary, entry, thousand);
        let out = e.run(&["sub", "2", "3", "4", "9", "8"]);
        assert_eq!(out.stdout_lines(), vec!["2", "2003", "26", "8 9"], "{name}");
        assert_eq!(out.status.code(), Some((2 + 2003 + 26) & 0x7f), "{name}");
        // The new symbol is in the symbol table, even of the stripped binary.
        let written = Binary::parse(e.output.clone()).unwrap();
        let sym = written
            .symbols
            .iter()
            .find(|s| s.name == "f.specialized")
            .unwrap();
        assert_eq!(
            (sym.addr, sym.size, sym.kind),
            (
                e.encoded.entry_vaddr,
                e.encoded.code_size(),
                SymbolKind::Function
            ),
            "{name}"
        );
    }
}

#[test]
fn pie_residual_calls_original_code_and_the_plt() {
    // classify(s) = puts("add") (through the PLT, ebx = GOT) + power(2, 3, 2).
    let e = emit("libc_demo-pie", "classify", |_, b| {
        let power = symbol(b, "power");
        let puts = *b.plt.iter().find(|(_, n)| *n == "puts").unwrap().0;
        let mut code = items(asm(|a| a.push(ebx)), 0x1500);
        code.push(Item::Address {
            reg: Register::EBX,
            addr: b.got.unwrap(),
            origin: Origin::Materialized(0x1500),
        });
        code.push(Item::Address {
            reg: Register::EAX,
            addr: rodata(b, b"add\0"),
            origin: Origin::Materialized(0x1504),
        });
        code.extend(items(
            asm(|a| {
                a.sub(esp, 4)?;
                a.push(eax)?;
                a.call(u64::from(puts))?;
                a.add(esp, 8)?;
                a.push(2)?;
                a.push(3)?;
                a.push(2)?;
                a.call(u64::from(power))?;
                a.add(esp, 12)?;
                a.pop(ebx)?;
                a.ret()
            }),
            0x1508,
        ));
        residual(0, vec![block(0, code, Terminator::Exit)])
    });
    let out = e.run(&["x", "1", "1", "1"]);
    assert_eq!(out.stdout_lines(), vec!["add", "25", "2", "0", ""]);
    let text = listing(&e.binary, &e.encoded);
    assert!(
        text.contains("<puts@plt>") && text.contains("<power>"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// The written file.

/// Byte ranges `write_elf` may change in the input's part of the output.
fn allowed_changes(e: &Emitted, entry: u32) -> Vec<std::ops::Range<usize>> {
    let d = &e.input;
    let phoff = u32::from_le_bytes(d[28..32].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(d[44..46].try_into().unwrap()) as usize;
    let text = e
        .binary
        .segments
        .iter()
        .find(|s| s.contains(entry))
        .unwrap();
    let at = (text.offset + entry - text.vaddr) as usize;
    vec![32..36, 48..50, phoff..phoff + 32 * phnum, at..at + 5]
}

#[test]
fn output_keeps_the_input_and_adds_section_and_symbol() {
    let e = emit("power-O2", "power", square_first);
    let entry = symbol(&e.binary, "power");
    // The input file is untouched and every other byte of it is kept.
    assert_eq!(std::fs::read(testdata_bin("power-O2")).unwrap(), e.input);
    let allowed = allowed_changes(&e, entry);
    for (i, (a, b)) in e.input.iter().zip(&e.output).enumerate() {
        if a != b {
            assert!(
                allowed.iter().any(|r| r.contains(&i)),
                "byte {i:#x} changed"
            );
        }
    }
    // The entry jumps to the residual.
    let jmp = &e.output[allowed[3].clone()];
    assert_eq!(jmp[0], 0xe9);
    let rel = u32::from_le_bytes(jmp[1..5].try_into().unwrap());
    assert_eq!(
        entry.wrapping_add(5).wrapping_add(rel),
        e.encoded.entry_vaddr
    );
    // Symbols: all kept, one added.
    let written = Binary::parse(e.output.clone()).unwrap();
    for s in &e.binary.symbols {
        assert!(written.symbols.contains(s), "{} lost", s.name);
    }
    let added: Vec<_> = written
        .symbols
        .iter()
        .filter(|s| !e.binary.symbols.contains(s))
        .collect();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].name, "f.specialized");
    assert_eq!(added[0].addr, e.encoded.entry_vaddr);
    assert_eq!(added[0].size, 8);
    // The new segment, as the loader sees it.
    let seg = written
        .segments
        .iter()
        .find(|s| s.vaddr == e.plan.segment_vaddr)
        .unwrap();
    assert!(seg.perms.read && seg.perms.write && seg.perms.execute);
    assert_eq!(seg.offset as u64, e.plan.segment_offset);
    assert_eq!(
        written.read(e.encoded.entry_vaddr, 8).unwrap(),
        e.encoded.code
    );
    let wiper = written.section(".wiper").unwrap();
    assert_eq!((wiper.addr, wiper.size), (e.plan.thunk_vaddr, 8));
}

#[test]
fn note_before_the_loads_is_moved_after_them() {
    // power-O2 with its program headers reordered: NOTE first, then the LOADs.
    let (mut bytes, _) = load("power-O2");
    let phoff = u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    let note = (0..5)
        .find(|i| bytes[phoff + 32 * i..][..4] == 4u32.to_le_bytes())
        .unwrap();
    bytes[phoff..phoff + 32 * (note + 1)].rotate_right(32);
    let binary = Binary::parse(bytes.clone()).unwrap();
    // The reordered input itself runs.
    let reordered = executable("power-note-first", &bytes);
    let out = run_binary(&reordered, &["6", "0", "0"], b"").unwrap();
    assert_eq!(out.stdout_str(), "1\n");
    let entry = symbol(&binary, "power");
    let e = emit_at("power-note-first", bytes, binary, entry, square_first);
    assert_eq!(e.run(&["6", "0", "0"]).stdout_str(), "36\n");
    let written = Binary::parse(e.output.clone()).unwrap();
    let vaddrs: Vec<u32> = written.segments.iter().map(|s| s.vaddr).collect();
    let mut sorted = vaddrs.clone();
    sorted.sort();
    assert_eq!(vaddrs, sorted);
    assert_eq!(*vaddrs.last().unwrap(), e.plan.segment_vaddr);
}

#[test]
fn binutils_see_the_new_segment_and_symbol() {
    let e = emit("pie_switch-O2", "step", |d, _| table_lookup(d, 1));
    let run = |tool: &str, args: &[&str]| {
        let out = std::process::Command::new(tool)
            .args(args)
            .arg(&e.path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool} failed");
        String::from_utf8(out.stdout).unwrap()
    };
    let headers = run("readelf", &["-lSW"]);
    assert!(
        headers.contains(" .wiper ") && headers.contains(" .wiper.data "),
        "{headers}"
    );
    let load = format!(
        "0x{:06x} 0x{:08x}",
        e.plan.segment_offset, e.plan.segment_vaddr
    );
    assert!(
        headers.contains(&load) && headers.contains("RWE 0x1000"),
        "{headers}"
    );
    let program_headers = headers.split("Program Headers:").nth(1).unwrap();
    assert!(!program_headers.contains("\n  NOTE "), "{headers}");
    let disasm = run("objdump", &["-d", "-M", "intel"]);
    assert!(disasm.contains("<f.specialized>:"), "{disasm}");
    assert!(disasm.contains("<f.specialized.pc_thunk.edx>:"), "{disasm}");
    assert!(
        disasm.contains("jmp    ") && disasm.contains("<f.specialized>\n"),
        "{disasm}"
    );
}

// ---------------------------------------------------------------------------
// Errors.

fn one_line(e: &EmitError) -> String {
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text}");
    text
}

#[test]
fn bad_residuals_are_refused() {
    let (_, binary) = load("power-O2");
    let p = plan(&binary, 0).unwrap();
    let ret = || items(asm(|a| a.ret()), 0);
    let cases = [
        (
            Residual::default(),
            EmitError::Residual(ResidualError::NoEntry),
        ),
        (
            residual(1, vec![block(0, ret(), Terminator::Exit)]),
            EmitError::Residual(ResidualError::UnknownLabel(Label(1))),
        ),
        (
            residual(0, vec![block(0, ret(), jump(5))]),
            EmitError::Residual(ResidualError::UnknownLabel(Label(5))),
        ),
        (
            residual(
                0,
                vec![
                    block(0, ret(), Terminator::Exit),
                    block(0, ret(), Terminator::Exit),
                ],
            ),
            EmitError::Residual(ResidualError::DuplicateLabel(Label(0))),
        ),
        (
            residual(
                0,
                vec![block(0, Vec::new(), branch(ConditionCode::None, 0, 0))],
            ),
            EmitError::Residual(ResidualError::NoCondition(Label(0))),
        ),
        (
            residual(
                0,
                vec![block(
                    0,
                    vec![Item::Address {
                        reg: Register::AX,
                        addr: 0,
                        origin: Origin::Glue(0x10),
                    }],
                    Terminator::Exit,
                )],
            ),
            EmitError::AddressRegister {
                reg: "ax".into(),
                origin: 0x10,
            },
        ),
        (
            Residual {
                data: vec![0; 17],
                ..residual(0, vec![block(0, ret(), Terminator::Exit)])
            },
            EmitError::DataTooLarge { len: 17, room: 0 },
        ),
    ];
    for (r, expected) in cases {
        let err = encode(&p, &r).unwrap_err();
        one_line(&err);
        assert_eq!(err, expected);
    }
    // Data the code expects elsewhere than the plan puts it.
    let room = plan(&binary, 16).unwrap();
    let elsewhere = Residual {
        data: vec![0; 16],
        data_vaddr: room.data_vaddr + 0x1000,
        ..residual(0, vec![block(0, ret(), Terminator::Exit)])
    };
    assert!(
        matches!(encode(&room, &elsewhere), Err(EmitError::Mismatch(m)) if m.contains("belongs at"))
    );
    let right = Residual {
        data_vaddr: room.data_vaddr,
        ..elsewhere
    };
    assert!(encode(&room, &right).is_ok());
    // esp cannot go through a PC thunk.
    let (_, pie) = load("pie_switch-O2");
    let to_esp = residual(
        0,
        vec![block(
            0,
            vec![Item::Address {
                reg: Register::ESP,
                addr: 0,
                origin: Origin::Glue(0x10),
            }],
            Terminator::Exit,
        )],
    );
    let err = encode(&plan(&pie, 0).unwrap(), &to_esp).unwrap_err();
    assert!(one_line(&err).contains("esp"), "{err}");
    // An instruction iced cannot encode names its origin.
    let bad = Instruction::with(iced_x86::Code::INVALID);
    let r = residual(
        0,
        vec![block(
            0,
            vec![Item::Instr(bad, Origin::Reduced(0x80490a4))],
            Terminator::Exit,
        )],
    );
    let err = encode(&p, &r).unwrap_err();
    assert!(one_line(&err).contains("0x80490a4"), "{err}");
}

#[test]
fn bad_patch_targets_are_refused() {
    let (bytes, binary) = load("power-O2");
    let p = plan(&binary, 0).unwrap();
    let r = square_first(0, &binary);
    let enc = encode(&p, &r).unwrap();
    // Not code.
    let rodata = binary.section(".rodata").unwrap().addr;
    let err = write_elf(&bytes, &binary, &p, &r, &enc, rodata, "x").unwrap_err();
    assert_eq!(err, EmitError::EntryNotMapped(rodata));
    one_line(&err);
    // Bytes that are not the binary's.
    let err = write_elf(&bytes[1..], &binary, &p, &r, &enc, 0x80490a0, "x").unwrap_err();
    assert!(matches!(err, EmitError::Mismatch(_)), "{err}");
    // A plan for another binary.
    let (_, other) = load("libc_demo-O2");
    let other_plan = plan(&other, 0).unwrap();
    let err = write_elf(&bytes, &binary, &other_plan, &r, &enc, 0x80490a0, "x").unwrap_err();
    assert!(matches!(err, EmitError::Mismatch(_)), "{err}");
    // A function shorter than the jmp that nothing calls directly: shrink
    // `_start`'s symbol (the kernel enters it; no `call` does).
    let start = symbol(&binary, "_start");
    let small = with_symbol_size(&bytes, &binary, "_start", 4);
    let shrunk = Binary::parse(small.clone()).unwrap();
    let err = write_elf(&small, &shrunk, &p, &r, &enc, start, "x").unwrap_err();
    assert_eq!(
        err,
        EmitError::FunctionTooShort {
            addr: start,
            size: 4
        }
    );
    one_line(&err);
}

#[test]
fn the_calls_of_a_function_shorter_than_the_jump_reach_the_residual() {
    // power's symbol shrunk to 4 bytes: no jmp is written over its entry;
    // main's `call power` calls the residual (x*x) instead, and power's
    // own bytes stay as they were.
    let (bytes, binary) = load("power-O2");
    let power = symbol(&binary, "power");
    let small = with_symbol_size(&bytes, &binary, "power", 4);
    let shrunk = Binary::parse(small.clone()).unwrap();
    let e = emit_at("power-O2.short", small, shrunk, power, square_first);
    let at = e.binary.file_offset(power).unwrap();
    assert_eq!(e.output[at..at + 8], e.input[at..at + 8]);
    assert_eq!(e.run(&["7", "0", "0"]).stdout_str(), "49\n");
    assert_eq!(e.run(&["-3", "5", "9"]).stdout_str(), "9\n");
}

#[test]
fn a_function_shorter_than_the_jump_is_measured_without_a_symbol_size() {
    // As in a stripped binary: `__x86.get_pc_thunk.dx` (4 bytes, then the
    // padding before `step`) with no size to say so. The decoded
    // instructions do: no jump is written there (it would run into what
    // follows); the thunk's direct calls are pointed at the residual.
    let (bytes, binary) = load("pie_switch-O2");
    let thunk = symbol(&binary, "__x86.get_pc_thunk.dx");
    let sizeless = with_symbol_size(&bytes, &binary, "__x86.get_pc_thunk.dx", 0);
    let binary = Binary::parse(sizeless.clone()).unwrap();
    let p = plan(&binary, 0).unwrap();
    let r = square_first(0, &binary);
    let enc = encode(&p, &r).unwrap();
    let out = write_elf(&sizeless, &binary, &p, &r, &enc, thunk, "x").unwrap();
    let at = binary.file_offset(thunk).unwrap();
    assert_eq!(out[at..at + 4], sizeless[at..at + 4]);
    let calls =
        wiper_x86::callsites::direct_calls(&mut wiper_x86::Disassembler::new(&binary), thunk);
    assert!(!calls.is_empty());
    for c in calls {
        let at = binary.file_offset(c.site).unwrap();
        let rel = u32::from_le_bytes(out[at + 1..at + 5].try_into().unwrap());
        assert_eq!(c.site.wrapping_add(5).wrapping_add(rel), enc.entry_vaddr);
    }
    // `step`, right after it, is long enough for the jmp.
    let step = symbol(&binary, "step");
    write_elf(&sizeless, &binary, &p, &r, &enc, step, "x").unwrap();
}

/// `bytes` (the file of `binary`) with the size of symbol `name` in
/// `.symtab` set to `size`.
fn with_symbol_size(bytes: &[u8], binary: &Binary, name: &str, size: u32) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let symtab = binary.section(".symtab").unwrap();
    let strtab = binary.section(".strtab").unwrap();
    let wanted = format!("{name}\0");
    for i in 0..symtab.size as usize / 16 {
        let at = symtab.offset as usize + 16 * i;
        let name_at = u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) as usize;
        let start = strtab.offset as usize + name_at;
        if out[start..].starts_with(wanted.as_bytes()) {
            out[at + 8..at + 12].copy_from_slice(&size.to_le_bytes());
        }
    }
    out
}

#[test]
fn origins_print_as_listing_comments() {
    assert_eq!(Origin::Original(0x8049abc).to_string(), "from 0x8049abc");
    assert_eq!(Origin::Reduced(0x10).to_string(), "reduced from 0x10");
    assert_eq!(
        Origin::Materialized(0x10).to_string(),
        "materialized for 0x10"
    );
    assert_eq!(Origin::Fallback(0x10).to_string(), "fallback 0x10");
    assert_eq!(Origin::Glue(0x10).to_string(), "glue 0x10");
    assert_eq!(Label(3).to_string(), "L3");
}

#[test]
fn every_testdata_binary_runs_with_main_replaced() {
    // main() = 5, in every bundled binary: static rt, static/dynamic glibc,
    // PIE, stripped; with its PT_NOTE reused and, without one, with the
    // program header table moved.
    for path in wiper_testkit::all_binaries() {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        for (kind, bytes) in [("note", bytes.clone()), ("moved", without_note(&bytes))] {
            let binary = Binary::parse(bytes.clone()).unwrap();
            let main = wiper_x86::find_main(&binary).unwrap();
            let e = emit_at(&format!("{name}-{kind}"), bytes, binary, main, |_, _| {
                let code = asm(|a| {
                    a.mov(eax, 5)?;
                    a.ret()
                });
                residual(0, vec![block(0, items(code, main), Terminator::Exit)])
            });
            let out = e.run(&[]);
            assert_eq!(out.status.code(), Some(5), "{name} ({kind}): {out:?}");
            assert_eq!(out.stdout_str(), "", "{name} ({kind})");
            moved_table::check_loadable(&e.output);
            Binary::parse(e.output).unwrap();
        }
    }
}

/// `bytes` with the memory size of its highest `PT_LOAD` changed so that
/// the segment ends at `end`.
fn with_load_end(bytes: &[u8], end: u64) -> Vec<u8> {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let phoff = u32_at(28) as usize;
    let phnum = u16::from_le_bytes([bytes[44], bytes[45]]) as usize;
    let loads = (0..phnum)
        .map(|i| phoff + 32 * i)
        .filter(|&at| u32_at(at) == 1);
    let top = loads
        .max_by_key(|&at| u64::from(u32_at(at + 8)) + u64::from(u32_at(at + 20)))
        .expect("a PT_LOAD");
    let memsz = (end - u64::from(u32_at(top + 8))) as u32;
    let mut out = bytes.to_vec();
    out[top + 20..top + 24].copy_from_slice(&memsz.to_le_bytes());
    out
}

/// The new segment goes after the highest `PT_LOAD`, and a binary that
/// leaves less than a page of address space above it is refused; one that
/// leaves a page is not.
#[test]
fn a_segment_that_would_not_fit_below_4_gib_is_refused() {
    let (bytes, _) = load("power-O2");
    let room = Binary::parse(with_load_end(&bytes, 0xfffe_0000)).unwrap();
    let p = plan(&room, 0).expect("a page is left");
    assert_eq!(p.code_vaddr, 0xfffe_0000);
    let full = Binary::parse(with_load_end(&bytes, 0xffff_f001)).unwrap();
    let err = plan(&full, 0).unwrap_err();
    assert!(matches!(err, EmitError::AddressSpace(_)), "{err}");
}

/// `esp :=` a link-time address is a plain `mov esp, imm32` in an
/// executable at a fixed address; a PIE has no thunk for `esp` (a call
/// through it would push onto the stack being set), so it is refused.
#[test]
fn an_esp_address_is_a_move_in_a_fixed_executable_and_refused_in_a_pie() {
    let esp_at = |addr| {
        residual(
            0,
            vec![block(
                0,
                vec![Item::Address {
                    reg: Register::ESP,
                    addr,
                    origin: Origin::Glue(0x10),
                }],
                Terminator::Exit,
            )],
        )
    };
    let (_, fixed) = load("power-O2");
    let enc = encode(&plan(&fixed, 0).unwrap(), &esp_at(0x0804_c000)).unwrap();
    let first = enc.lines[0].instruction;
    assert_eq!(first.code(), iced_x86::Code::Mov_r32_imm32, "{first}");
    assert_eq!(
        (first.op0_register(), first.immediate32()),
        (Register::ESP, 0x0804_c000)
    );
    let (_, pie) = load("pie_switch-O2");
    let err = encode(&plan(&pie, 0).unwrap(), &esp_at(0x2000)).unwrap_err();
    assert!(matches!(err, EmitError::AddressRegister { .. }), "{err}");
}

/// An empty exit block placed after a block that ends in `ret` still gets
/// its trap: the `ret` before it is another block's.
#[test]
fn an_empty_exit_block_after_a_return_traps() {
    let (_, binary) = load("power-O2");
    let p = plan(&binary, 0).unwrap();
    let r = residual(
        0,
        vec![
            block(
                0,
                items(asm(|a| a.test(eax, eax)), 0),
                branch(ConditionCode::e, 2, 1),
            ),
            block(1, ret(), Terminator::Exit),
            block(2, Vec::new(), Terminator::Exit),
        ],
    );
    let enc = encode(&p, &r).unwrap();
    let at_l2 = enc
        .lines
        .iter()
        .find(|l| l.block == Some(Label(2)) || l.empty_blocks.contains(&Label(2)))
        .expect("L2 is placed");
    assert_eq!(
        at_l2.instruction.code(),
        iced_x86::Code::Ud2,
        "{:?}",
        enc.lines
    );
}
