//! The optimizer against the processor: random residual functions (frame
//! slots and byte slots, arguments, saved callee-saved registers, register
//! shuffles, zero tests, forward branches, `ret`) run before
//! and after optimization on the same random machine states, through
//! wiper-oracle. Everything a caller can observe after `ret` must agree:
//! `eax`, `edx`, the callee-saved registers, `esp` and the memory outside
//! the callee's frame and argument area (the i386 System V ABI lets the
//! callee clobber `ecx`, the flags and its own arguments).

use iced_x86::code_asm::*;
use iced_x86::{ConditionCode, Instruction};
use wiper_emit::{Block, Item, Label, Origin, Plan, Residual, Terminator};
use wiper_oracle::{fallthrough_address, CpuState, Rng, CODE_BASE, ESP, SCRATCH_BASE};

/// Bytes of the random function's frame: dword slots below `BYTES`, byte
/// slots from there.
const FRAME: i32 = 0x20;
/// Where the byte slots start in the frame.
const BYTES: i32 = FRAME - 8;
/// Bytes of arguments above the return address.
const ARGS: i32 = 0x20;

/// Assembles one instruction with `f`.
fn one(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Instruction {
    let mut a = CodeAssembler::new(32).expect("32-bit assembler");
    f(&mut a).expect("valid instruction");
    a.instructions()[0]
}

/// A random general-purpose register other than `esp`.
fn reg(r: &mut Rng) -> AsmRegister32 {
    *r.choose(&[eax, ecx, edx, ebx, ebp, esi, edi])
}

/// A random register with a low byte.
fn reg8(r: &mut Rng) -> AsmRegister8 {
    *r.choose(&[al, cl, dl, bl])
}

/// A random frame slot or argument, as an `[esp+d]` operand (after the
/// prologue `esp` is `FRAME` bytes below the saved registers, `saved`
/// dwords below its entry value).
fn slot(r: &mut Rng, saved: i32) -> AsmMemoryOperand {
    let d = if r.coin() {
        4 * r.below(FRAME as u32 / 4) as i32
    } else {
        FRAME + 4 * saved + 4 + 4 * r.below(ARGS as u32 / 4) as i32
    };
    dword_ptr(esp + d)
}

/// A random byte slot, as a `byte [esp+d]` operand.
fn byte_slot(r: &mut Rng) -> AsmMemoryOperand {
    byte_ptr(esp + BYTES + r.below(4) as i32)
}

/// A random instruction of the kinds the specializer emits; `saved` is the
/// number of saved registers above the frame.
fn random_instruction(r: &mut Rng, saved: i32) -> Vec<Instruction> {
    let (a, b) = (reg(r), reg(r));
    let (a8, b8) = (reg8(r), reg8(r));
    let m = slot(r, saved);
    let m8 = byte_slot(r);
    let imm = r.interesting_u32() as i32;
    let ins = match r.below(26) {
        16 => one(|x| x.mov(m8, a8)),
        17 => one(|x| x.movzx(a, m8)),
        18 => one(|x| x.cmp(m8, 0)),
        19 => one(|x| x.mov(m8, imm & 0xff)),
        20 => one(|x| x.add(a8, m8)),
        21 => one(|x| x.movzx(a, b8)),
        22 => one(|x| x.mov(dword_ptr(esp + BYTES + 4 * r.below(2) as i32), imm)),
        23 => one(|x| x.mov(a8, b8)),
        0 => one(|x| x.mov(a, b)),
        1 => one(|x| x.mov(a, imm)),
        2 | 3 => one(|x| x.mov(a, m)),
        4 | 5 => one(|x| x.mov(m, a)),
        6 => one(|x| x.mov(m, imm)),
        7 => one(|x| x.add(a, b)),
        8 => one(|x| x.sub(a, m)),
        9 => one(|x| x.add(m, a)),
        10 => one(|x| x.xor(a, imm)),
        11 => one(|x| x.imul_3(a, b, *r.choose(&[1, 3, -1]))),
        12 => one(|x| x.dec(m)),
        13 => one(|x| x.test(a, a)),
        14 => one(|x| x.cmp(a, m)),
        24 => {
            // an operand moved aside for a commutative operation
            let t = reg(r);
            return vec![
                one(|x| x.mov(t, a)),
                one(|x| x.mov(a, b)),
                if r.coin() {
                    one(|x| x.imul_2(a, t))
                } else {
                    one(|x| x.add(a, t))
                },
            ];
        }
        _ => {
            // a register swap through a temporary
            let t = reg(r);
            return vec![
                one(|x| x.mov(t, a)),
                one(|x| x.mov(a, b)),
                one(|x| x.mov(b, t)),
            ];
        }
    };
    vec![ins]
}

/// A zero test of a register (of kind `kind`), as a block ends before its
/// branch.
fn zero_test(kind: u32) -> Instruction {
    match kind {
        0 => one(|x| x.test(cl, cl)),
        1 => one(|x| x.cmp(cl, 0)),
        2 => one(|x| x.test(eax, eax)),
        _ => one(|x| x.cmp(eax, 0)),
    }
}

/// A random residual function: a prologue that saves some callee-saved
/// registers and opens the frame, a few blocks with forward branches (often
/// on zero tests), an epilogue that restores the registers with `mov`s (as
/// the specializer reduces `pop`s) and returns.
fn random_function(r: &mut Rng) -> Residual {
    let blocks = 1 + r.below(5) as usize;
    let saved: Vec<AsmRegister32> = [ebx, esi, edi, ebp]
        .into_iter()
        .filter(|_| r.below(3) == 0)
        .collect();
    let n = saved.len() as i32;
    // One zero test per function, so that consecutive blocks repeat it.
    let test_kind = r.below(4);
    let mut tested = false;
    let mut out = Vec::new();
    for i in 0..blocks {
        let mut items = Vec::new();
        if i == 0 {
            for &s in &saved {
                items.push(one(|x| x.push(s)));
            }
            items.push(one(|x| x.lea(esp, ptr(esp - FRAME))));
        }
        let quiet = tested && r.below(4) != 0;
        for _ in 0..r.range(2, 10) {
            if quiet {
                // Leaves every register alone.
                let imm = r.interesting_u32() as i32;
                let (m, m8) = (slot(r, n), byte_slot(r));
                items.push(if r.coin() {
                    one(|x| x.mov(m, imm))
                } else {
                    one(|x| x.mov(m8, imm & 0xff))
                });
            } else {
                items.extend(random_instruction(r, n));
            }
        }
        // A block after a zero test often tests the same again.
        let test_here = i + 1 < blocks && if tested { r.below(4) != 0 } else { r.coin() };
        tested = test_here;
        let last = i + 1 == blocks;
        if last {
            for (k, &s) in saved.iter().enumerate() {
                let at = FRAME + 4 * (n - 1 - k as i32);
                items.push(one(|x| x.mov(s, dword_ptr(esp + at))));
            }
            items.push(one(|x| x.lea(esp, ptr(esp + FRAME + 4 * n))));
            items.push(one(|x| x.ret()));
        } else if test_here {
            items.push(zero_test(test_kind));
        }
        let next = Label(i as u32 + 1);
        let terminator = if last {
            Terminator::Exit
        } else if test_here || r.coin() {
            let target = Label(r.range(i as u32 + 1, blocks as u32));
            let cc = if test_here {
                *r.choose(&[ConditionCode::e, ConditionCode::ne])
            } else {
                *r.choose(&[
                    ConditionCode::e,
                    ConditionCode::ne,
                    ConditionCode::l,
                    ConditionCode::b,
                ])
            };
            Terminator::Branch {
                cc,
                taken: target,
                not_taken: next,
                origin: Origin::Original(0),
            }
        } else {
            Terminator::Jump(next, Origin::Original(0))
        };
        out.push(Block {
            label: Label(i as u32),
            items: items
                .into_iter()
                .map(|i| Item::Instr(i, Origin::Original(0)))
                .collect(),
            terminator,
        });
    }
    Residual {
        entry: Some(Label(0)),
        blocks: out,
        data: Vec::new(),
        edx_dead_at_return: false,
    }
}

/// Encodes `residual` at the oracle's code address.
fn encode(residual: &Residual) -> Vec<u8> {
    let plan = Plan {
        pie: false,
        segment_vaddr: CODE_BASE,
        segment_offset: 0,
        data_vaddr: CODE_BASE,
        thunk_vaddr: CODE_BASE,
        code_vaddr: CODE_BASE,
    };
    let encoded = wiper_emit::encode(&plan, residual).expect("encodable residual");
    assert_eq!(
        encoded.entry_vaddr, CODE_BASE,
        "the entry block comes first"
    );
    encoded.code
}

/// Runs `code` from `state` with the fall-through stub as return address.
fn run(code: &[u8], state: &CpuState) -> CpuState {
    let mut s = state.clone();
    let top = (s.regs[ESP] - SCRATCH_BASE) as usize;
    s.mem[top..top + 4].copy_from_slice(&fallthrough_address(code.len()).to_le_bytes());
    let out = wiper_oracle::run_code(code, &[s]).expect("the oracle runs");
    let outcome = out.into_iter().next().expect("one outcome");
    assert!(outcome.fault.is_none(), "fault {:?}", outcome.fault);
    outcome.state
}

/// What a caller can observe of a state after `ret` from a call made with
/// `entry_esp`.
fn observable(s: &CpuState, entry_esp: u32) -> (Vec<u32>, Vec<u8>) {
    let regs = [0, 2, 3, 4, 5, 6, 7].iter().map(|&i| s.regs[i]).collect();
    let lo = (entry_esp - SCRATCH_BASE) as usize - FRAME as usize - 64;
    let hi = (entry_esp - SCRATCH_BASE) as usize + 4 + ARGS as usize;
    let mut mem = s.mem.clone();
    mem[lo..hi].fill(0);
    (regs, mem)
}

#[test]
fn optimized_functions_agree_with_the_originals_on_the_processor() {
    let mut rng = Rng::new(0x0b7_1e5);
    let (mut promoted, mut before, mut after) = (0, 0, 0);
    let (mut bytes, mut decided, mut unframed) = (0, 0, 0);
    for case in 0..250 {
        let original = random_function(&mut rng);
        let mut optimized = original.clone();
        let stats = wiper_opt::optimize(&mut optimized);
        promoted += stats.promoted_slots;
        bytes += stats.promoted_byte_slots;
        decided += stats.decided_branches;
        unframed += usize::from(stats.unframed);
        before += stats.items_before;
        after += stats.items_after;
        let (code_a, code_b) = (encode(&original), encode(&optimized));
        for _ in 0..6 {
            let state = CpuState::random(&mut rng, 4096);
            let entry_esp = state.regs[ESP];
            let want = observable(&run(&code_a, &state), entry_esp);
            let got = observable(&run(&code_b, &state), entry_esp);
            assert_eq!(
                want, got,
                "case {case}: optimized code differs\noriginal: {original:#?}\noptimized: {optimized:#?}"
            );
        }
    }
    // The test must exercise the passes, not only the unchanged path.
    assert!(promoted > 50, "only {promoted} slots promoted");
    eprintln!("{bytes} byte slots, {decided} branches decided, {unframed} frames removed");
    assert!(bytes > 10, "only {bytes} byte slots promoted");
    assert!(decided > 5, "only {decided} branches decided");
    assert!(unframed > 10, "only {unframed} frames removed");
    assert!(after * 10 < before * 9, "only {before} -> {after} items");
}
