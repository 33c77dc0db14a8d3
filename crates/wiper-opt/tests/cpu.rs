//! The optimizer against the processor: random residual functions (frame
//! slots and byte slots, arguments, saved callee-saved registers, register
//! shuffles, zero tests, forward branches, `ret`) run before
//! and after optimization on the same random machine states, through
//! wiper-oracle. Everything a caller can observe after `ret` must agree:
//! `eax`, `edx`, the callee-saved registers, `esp` and the memory outside
//! the callee's frame and argument area (the i386 System V ABI lets the
//! callee clobber `ecx`, the flags and its own arguments).

use iced_x86::code_asm::*;
use iced_x86::{ConditionCode, Instruction, RflagsBits};
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
    let ins = match r.below(32) {
        28..=31 => return affine_shape(r),
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
        27 => {
            // a power of a register: products by it and squarings
            let t = reg(r);
            let mut chain = vec![one(|x| x.mov(t, a))];
            for _ in 0..r.range(2, 8) {
                chain.push(if r.below(3) == 0 {
                    one(|x| x.imul_2(t, t))
                } else {
                    one(|x| x.imul_2(t, a))
                });
            }
            return chain;
        }
        25 | 26 => {
            // a byte read, changed and written back through a register, or
            // tested through one
            let (t, t8) = *r.choose(&[(eax, al), (ecx, cl), (edx, dl), (ebx, bl)]);
            let in_memory = r.coin();
            let load = if in_memory {
                one(|x| x.movzx(t, m8))
            } else {
                one(|x| x.movzx(t, b8))
            };
            let change = match r.below(4) {
                0 => one(|x| x.inc(t8)),
                1 => one(|x| x.dec(t8)),
                2 => one(|x| x.add(t8, imm & 0xff)),
                _ => one(|x| x.xor(t8, imm & 0xff)),
            };
            let back = if in_memory {
                one(|x| x.mov(m8, t8))
            } else {
                one(|x| x.mov(b8, t8))
            };
            return if r.coin() {
                vec![load, change, back]
            } else {
                vec![load, one(|x| x.test(t8, t8))]
            };
        }
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

/// Code that computes and recomputes affine forms of a few registers (for
/// the affine value numbering): chains of adds of one register, the same
/// offset recomputed, `lea`, `shl`, `imul`, `neg`, `inc` by constants,
/// frame addresses offset in one register and used in another's memory
/// operand, sometimes with the flags read afterwards (by `adc`, or by the
/// block's branch when the shape ends it).
fn affine_shape(r: &mut Rng) -> Vec<Instruction> {
    let (a, b, c) = (reg(r), reg(r), reg(r));
    let imm = if r.coin() {
        r.range(1, 20) as i32
    } else {
        r.interesting_u32() as i32
    };
    let mut out = Vec::new();
    match r.below(6) {
        5 => {
            // a frame address, offset into b, b's memory operand (the frame
            // address escapes, so no slot of this function is promoted)
            out.push(one(|x| x.lea(a, ptr(esp + 4 * r.below(4) as i32))));
            let k = 4 * r.below(3) as i32;
            if r.coin() {
                out.push(one(|x| x.lea(b, ptr(a + k))));
            } else {
                out.push(one(|x| x.mov(b, a)));
                out.push(one(|x| x.add(b, k)));
            }
            let m = dword_ptr(b + 4 * r.below(3) as i32);
            out.push(match r.below(3) {
                0 => one(|x| x.mov(c, m)),
                1 => one(|x| x.add(c, m)),
                _ => one(|x| x.mov(m, c)),
            });
            if a != b && a != c && r.coin() {
                // an index 1..4 in q, from p in 0..3; a, c and p distinct, so
                // the load stays in the frame (a read of the return address
                // would differ: the code's length moves it)
                let others: Vec<AsmRegister32> = [eax, ecx, edx, ebx, ebp, esi, edi]
                    .into_iter()
                    .filter(|&x| x != a)
                    .collect();
                let p = *r.choose(&others);
                let q = *r.choose(&others);
                out.push(one(|x| x.and(p, 3)));
                out.push(one(|x| x.lea(q, ptr(p + 1))));
                let scale = *r.choose(&[1, 2, 4]);
                out.push(one(|x| x.mov(c, dword_ptr(a + q * scale))));
            }
        }
        0 => {
            // c = (b + imm) summed n times, b + imm recomputed into a each time
            out.push(one(|x| x.lea(a, ptr(b + imm))));
            out.push(one(|x| x.mov(c, a)));
            for _ in 0..r.range(1, 8) {
                out.push(one(|x| x.lea(a, ptr(b + imm))));
                out.push(one(|x| x.add(c, a)));
            }
        }
        1 => {
            // a = b + imm, recomputed through a copy, used by c
            for _ in 0..r.range(2, 5) {
                out.push(one(|x| x.mov(a, b)));
                out.push(one(|x| x.add(a, imm)));
                out.push(if r.coin() {
                    one(|x| x.imul_2(c, a))
                } else {
                    one(|x| x.mov(c, a))
                });
            }
        }
        2 => {
            // a doubled or summed with itself
            out.push(one(|x| x.mov(c, b)));
            for _ in 0..r.range(1, 8) {
                out.push(if r.coin() {
                    one(|x| x.add(c, b))
                } else {
                    one(|x| x.add(c, c))
                });
            }
            out.push(one(|x| x.mov(a, c)));
        }
        _ => {
            // arithmetic by constants on two or three registers
            for _ in 0..r.range(2, 7) {
                let (d, e) = (*r.choose(&[a, b, c]), *r.choose(&[a, b, c]));
                let k = *r.choose(&[1, 2, 3, 4, 5, 8, 9, 12, -1, -4]);
                let imm = r.range(0, 40) as i32 - 8;
                out.push(match r.below(11) {
                    0 => one(|x| x.shl(d, r.below(32))),
                    1 => one(|x| x.imul_3(d, e, k)),
                    2 => one(|x| x.lea(d, ptr(e + imm))),
                    3 => one(|x| x.lea(d, ptr(d + e * *r.choose(&[1, 2, 4, 8]) + imm))),
                    4 => one(|x| x.inc(d)),
                    5 => one(|x| x.dec(d)),
                    6 => one(|x| x.neg(d)),
                    7 => one(|x| x.sub(d, e)),
                    8 => one(|x| x.add(d, e)),
                    9 => one(|x| x.sub(d, imm)),
                    _ => one(|x| x.mov(d, imm)),
                });
            }
        }
    }
    if r.below(3) == 0 {
        let d = reg(r);
        out.push(one(|x| x.adc(d, 0)));
    }
    out
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

/// Whether a branch on `cc` at the end of `items` reads only flags the
/// processor defines: the block's last flag writer must not leave them
/// undefined (`imul`'s SF and ZF, a shift's OF), and a block without one reads
/// its predecessor's flags, which are only known to be defined in the entry
/// block (the random state's). Undefined flags differ between Intel and AMD,
/// and no compiler branches on them.
fn flags_defined_for(cc: ConditionCode, items: &[Instruction], entry: bool) -> bool {
    let read = match cc {
        ConditionCode::e | ConditionCode::ne => RflagsBits::ZF,
        ConditionCode::l => RflagsBits::SF | RflagsBits::OF,
        ConditionCode::b => RflagsBits::CF,
        other => panic!("no flags known for {other:?}"),
    };
    match items.iter().rev().find(|i| i.rflags_modified() != 0) {
        Some(writer) => writer.rflags_undefined() & read == 0,
        None => entry,
    }
}

/// Makes random instructions for a function with this many saved registers.
type Generator = fn(&mut Rng, i32) -> Vec<Instruction>;

/// A random residual function: a prologue that saves some callee-saved
/// registers and opens the frame, a few blocks with forward branches (often
/// on zero tests), an epilogue that restores the registers with `mov`s (as
/// the specializer reduces `pop`s) and returns.
fn random_function(r: &mut Rng, instruction: Generator) -> Residual {
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
                items.extend(instruction(r, n));
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
            if r.below(3) == 0 {
                // a byte tested through a scratch register
                let m8 = byte_slot(r);
                items.push(one(|x| x.movzx(ecx, m8)));
                items.push(one(|x| x.test(cl, cl)));
            } else {
                items.push(zero_test(test_kind));
            }
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
            if !flags_defined_for(cc, &items, i == 0) {
                items.push(one(|x| x.cmp(eax, 0)));
            }
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

/// A register of a counted loop, byte or dword.
#[derive(Clone, Copy)]
enum LoopReg {
    Byte(AsmRegister8),
    Dword(AsmRegister32),
}

/// `inc`, `dec`, `add imm` or `sub imm` on `reg`.
fn step(r: &mut Rng, reg: LoopReg) -> Instruction {
    let imm = *r.choose(&[1, 2, 3, 7, 0x7f, 0x80, 0xff]);
    match (reg, r.below(4)) {
        (LoopReg::Byte(g), 0) => one(|x| x.inc(g)),
        (LoopReg::Byte(g), 1) => one(|x| x.dec(g)),
        (LoopReg::Byte(g), 2) => one(|x| x.add(g, imm)),
        (LoopReg::Byte(g), _) => one(|x| x.sub(g, imm)),
        (LoopReg::Dword(g), 0) => one(|x| x.inc(g)),
        (LoopReg::Dword(g), 1) => one(|x| x.dec(g)),
        (LoopReg::Dword(g), 2) => one(|x| x.add(g, imm)),
        (LoopReg::Dword(g), _) => one(|x| x.sub(g, imm)),
    }
}

/// A random counted loop: a block that sets some registers to constants
/// and bounds the counter below 256; a block that loops to itself while the
/// counter, stepped by one, is not zero, adding constants to byte and
/// dword registers (sometimes with an instruction no closed form covers);
/// and an exit that may read the flags the loop left and branches on a
/// register the first block set to a constant.
fn random_loop_function(r: &mut Rng) -> Residual {
    let o = Origin::Original(0);
    let (counter, counter_full) = match r.below(3) {
        0 => (LoopReg::Dword(esi), esi),
        1 => (LoopReg::Byte(cl), ecx),
        _ => (LoopReg::Byte(bl), ebx),
    };
    let mut setup = Vec::new();
    // A constant to branch on at the exit, and constants fed to the loop.
    let (flag_reg, imm) = (edi, r.interesting_u32() as i32);
    setup.push(one(|x| x.mov(flag_reg, imm)));
    if r.coin() {
        setup.push(one(|x| x.mov(eax, r.interesting_u32() as i32)));
    }
    if r.coin() {
        setup.push(one(|x| x.mov(dh, 0x10)));
        setup.push(one(|x| x.add(dl, dh)));
    }
    // Fewer than 257 turns: stepping down from 1..256, or up from
    // -256..-1.
    let down = r.coin();
    if let LoopReg::Dword(c) = counter {
        if down {
            setup.push(one(|x| x.and(c, 0xff)));
        }
        setup.push(if down {
            one(|x| x.or(c, 1)) // 0 would mean 2^32 turns
        } else {
            one(|x| x.or(c, -0x100))
        });
    }
    let mut body = Vec::new();
    // Mostly registers that a closed form covers: one width per register,
    // no wider than the counter.
    let wide_ok = matches!(counter, LoopReg::Dword(_)) || r.below(6) == 0;
    let mixed_ok = r.below(6) == 0;
    let mut used = Vec::new();
    for _ in 0..r.range(1, 5) {
        let (g, full) = *r.choose(&[
            (LoopReg::Byte(al), 0),
            (LoopReg::Byte(ah), 1),
            (LoopReg::Byte(dl), 2),
            (LoopReg::Dword(edx), 2),
            (LoopReg::Dword(ebp), 3),
        ]);
        if matches!(g, LoopReg::Dword(_)) && !wide_ok
            || used.iter().any(|&(u, _)| u == full) && !mixed_ok
        {
            continue;
        }
        used.push((full, ()));
        for _ in 0..r.range(1, 3) {
            body.push(step(r, g));
        }
    }
    if r.below(8) == 0 {
        body.push(one(|x| x.add(edx, eax))); // no closed form
    }
    body.insert(
        r.below(body.len() as u32 + 1) as usize,
        match (counter, down) {
            (LoopReg::Byte(c), true) => one(|x| x.dec(c)),
            (LoopReg::Byte(c), false) => one(|x| x.add(c, 1)),
            (LoopReg::Dword(c), true) => one(|x| x.sub(c, 1)),
            (LoopReg::Dword(c), false) => one(|x| x.inc(c)),
        },
    );
    // The last flag writer must test the counter, or the loop need not end.
    body.push(match (counter, r.coin()) {
        (LoopReg::Byte(c), true) => one(|x| x.test(c, c)),
        (LoopReg::Byte(c), false) => one(|x| x.cmp(c, 0)),
        (LoopReg::Dword(c), _) => one(|x| x.cmp(c, 0)),
    });
    let mut exit = Vec::new();
    if r.below(4) == 0 {
        exit.push(one(|x| x.adc(eax, 0))); // reads the loop's carry
    }
    exit.push(one(|x| x.mov(ecx, counter_full)));
    exit.push(one(|x| x.cmp(flag_reg, r.interesting_u32() as i32)));
    let ret = |add: i32| Block {
        label: Label(3 + add as u32),
        items: instrs(vec![one(|x| x.add(eax, add)), one(|x| x.ret())]),
        terminator: Terminator::Exit,
    };
    let exit_branch = Terminator::Branch {
        cc: *r.choose(&[
            ConditionCode::e,
            ConditionCode::ne,
            ConditionCode::l,
            ConditionCode::a,
        ]),
        taken: Label(3),
        not_taken: Label(4),
        origin: o,
    };
    self_loop_function(r, setup, body, (exit, exit_branch), vec![ret(0), ret(1)])
}

/// A random function that saves a callee-saved register in `ecx` on entry,
/// uses it for temporaries over a few forward-branching blocks, and
/// restores it before `ret`; now and then `ecx` is used too, or the entry
/// value is read again, and the register must stay as it is.
fn random_saved_function(r: &mut Rng) -> Residual {
    let o = Origin::Original(0);
    let (saved, low) = *r.choose(&[(ebx, Some(bl)), (esi, None), (edi, None), (ebp, None)]);
    let blocks = r.range(1, 4);
    let mut out = Vec::new();
    for i in 0..blocks {
        let mut items = Vec::new();
        if i == 0 {
            items.push(one(|x| x.mov(ecx, saved)));
            if r.below(8) == 0 {
                items.push(one(|x| x.add(eax, saved))); // the entry value, again
            } else {
                items.push(one(|x| x.mov(saved, dword_ptr(esp + 4))));
            }
        }
        for _ in 0..r.range(2, 7) {
            let imm = r.interesting_u32() as i32;
            items.push(match r.below(13) {
                0 => one(|x| x.mov(saved, eax)),
                1 => one(|x| x.mov(saved, imm)),
                2 => one(|x| x.add(saved, eax)),
                3 => one(|x| x.add(eax, saved)),
                4 => one(|x| x.imul_3(saved, saved, 3)),
                5 => one(|x| x.lea(saved, ptr(saved + eax * 2 + 5))),
                6 => one(|x| x.xor(edx, saved)),
                7 => one(|x| x.mov(saved, dword_ptr(esp + 8))),
                8 => one(|x| x.sub(saved, edx)),
                9 => one(|x| x.lea(eax, ptr(saved + 7))),
                10 if r.below(3) == 0 => one(|x| x.mov(ecx, eax)),
                _ => match low {
                    Some(b) => one(|x| x.add(al, b)),
                    None => one(|x| x.neg(saved)),
                },
            });
        }
        let last = i + 1 == blocks;
        if last {
            items.push(one(|x| x.mov(saved, ecx)));
            items.push(one(|x| x.ret()));
        } else {
            items.push(one(|x| x.cmp(saved, eax)));
        }
        let terminator = if last {
            Terminator::Exit
        } else {
            Terminator::Branch {
                cc: *r.choose(&[ConditionCode::e, ConditionCode::l, ConditionCode::a]),
                taken: Label(r.range(i + 1, blocks)),
                not_taken: Label(i + 1),
                origin: o,
            }
        };
        out.push(Block {
            label: Label(i),
            items: instrs(items),
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

/// Instructions as residual items.
fn instrs(v: Vec<Instruction>) -> Vec<Item> {
    v.into_iter()
        .map(|i| Item::Instr(i, Origin::Original(0)))
        .collect()
}

/// A function of three blocks and `more`: `setup` (label 0), then `body`
/// (label 1) looping to itself while ZF is clear (as `jne` back or `je`
/// out, at random), then the exit's items and terminator (label 2).
fn self_loop_function(
    r: &mut Rng,
    setup: Vec<Instruction>,
    body: Vec<Instruction>,
    (exit, exit_terminator): (Vec<Instruction>, Terminator),
    more: Vec<Block>,
) -> Residual {
    let o = Origin::Original(0);
    let (cc, taken, not_taken) = if r.coin() {
        (ConditionCode::ne, Label(1), Label(2))
    } else {
        (ConditionCode::e, Label(2), Label(1))
    };
    let mut blocks = vec![
        Block {
            label: Label(0),
            items: instrs(setup),
            terminator: Terminator::Jump(Label(1), o),
        },
        Block {
            label: Label(1),
            items: instrs(body),
            terminator: Terminator::Branch {
                cc,
                taken,
                not_taken,
                origin: o,
            },
        },
        Block {
            label: Label(2),
            items: instrs(exit),
            terminator: exit_terminator,
        },
    ];
    blocks.extend(more);
    Residual {
        entry: Some(Label(0)),
        blocks,
        data: Vec::new(),
        edx_dead_at_return: false,
    }
}

/// A random walk over the argument area: a pointer and an end a known
/// distance apart (or a counter and a constant bound), a block that loops
/// to itself reading through the pointer and stepping it until it meets
/// the end, and an exit that returns what was read (sometimes with the
/// loop's flags). Short walks unroll; long ones, and walks whose end the
/// code before does not relate to the pointer, stay loops.
fn random_walk_function(r: &mut Rng) -> Residual {
    let stride = *r.choose(&[1u32, 2, 4, 8]);
    let turns = r.range(1, 32 / stride + 1);
    let mut setup = vec![one(|x| x.lea(eax, ptr(esp + 4)))];
    let by_counter = r.below(4) == 0;
    let end_known = r.below(6) != 0;
    if by_counter {
        setup.push(one(|x| x.mov(ebx, 0)));
    } else if end_known {
        let span = (turns * stride) as i32;
        setup.push(if r.coin() {
            one(|x| x.lea(ecx, ptr(eax + span)))
        } else {
            one(|x| x.mov(ecx, eax))
        });
        if !matches!(setup.last(), Some(i) if i.mnemonic() == iced_x86::Mnemonic::Lea) {
            setup.push(one(|x| x.add(ecx, span)));
        }
    } else {
        // An end the code before cannot relate to the pointer.
        setup.push(one(|x| x.mov(ecx, eax)));
        setup.push(one(|x| x.add(ecx, dword_ptr(esp + 4))));
        setup.push(one(|x| x.and(ecx, 0)));
        setup.push(one(|x| {
            x.lea(ecx, ptr(ecx + eax + (turns * stride) as i32))
        }));
    }
    setup.push(one(|x| x.mov(edx, r.interesting_u32() as i32)));
    let mut body = Vec::new();
    let read_first = r.coin();
    let read = match r.below(4) {
        0 => one(|x| x.add(edx, dword_ptr(eax))),
        1 => one(|x| x.xor(edx, dword_ptr(eax + 4))),
        2 => one(|x| x.movzx(esi, byte_ptr(eax))),
        _ => one(|x| x.sub(dl, byte_ptr(eax + 1))),
    };
    if read_first {
        body.push(read);
    }
    body.push(match stride {
        1 => one(|x| x.inc(eax)),
        _ => one(|x| x.add(eax, stride as i32)),
    });
    if !read_first {
        body.push(read);
    }
    if by_counter {
        body.push(one(|x| x.inc(ebx)));
        body.push(one(|x| x.cmp(ebx, turns as i32)));
    } else if r.coin() {
        body.push(one(|x| x.cmp(eax, ecx)));
    } else {
        body.push(one(|x| x.cmp(ecx, eax)));
    }
    let mut exit = Vec::new();
    if r.below(4) == 0 {
        exit.push(one(|x| x.adc(edx, 0))); // reads the last compare's carry
    }
    exit.push(one(|x| x.add(eax, edx)));
    exit.push(one(|x| x.ret()));
    self_loop_function(r, setup, body, (exit, Terminator::Exit), Vec::new())
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

/// Runs `original` and `optimized` (case `case`) from six random states
/// and asserts that a caller sees the same.
fn assert_agree(rng: &mut Rng, case: usize, original: &Residual, optimized: &Residual) {
    let (code_a, code_b) = (encode(original), encode(optimized));
    for _ in 0..6 {
        let state = CpuState::random(rng, 4096);
        let entry_esp = state.regs[ESP];
        let want = observable(&run(&code_a, &state), entry_esp);
        let got = observable(&run(&code_b, &state), entry_esp);
        let first_byte = want.1.iter().zip(&got.1).position(|(a, b)| a != b);
        assert!(
            want == got,
            "case {case}: optimized code differs: registers {:x?} vs {:x?}, first byte {first_byte:?}\noriginal:\n{}optimized:\n{}",
            want.0,
            got.0,
            listing(original),
            listing(optimized)
        );
    }
}

/// `residual` as text, an instruction a line.
fn listing(residual: &Residual) -> String {
    let mut out = String::new();
    for block in &residual.blocks {
        out += &format!("L{}:\n", block.label.0);
        for item in &block.items {
            match item {
                Item::Instr(ins, _) => out += &format!("  {ins}\n"),
                other => out += &format!("  {other:?}\n"),
            }
        }
        out += &format!("  -> {:?}\n", block.terminator);
    }
    out
}

#[test]
fn optimized_functions_agree_with_the_originals_on_the_processor() {
    let mut rng = Rng::new(0x0b7_1e5);
    let (mut promoted, mut before, mut after) = (0, 0, 0);
    let (mut bytes, mut decided, mut unframed, mut affine) = (0, 0, 0, 0);
    for case in 0..250 {
        let original = random_function(&mut rng, random_instruction);
        let mut optimized = original.clone();
        let stats = wiper_opt::optimize(&mut optimized);
        promoted += stats.promoted_slots;
        bytes += stats.promoted_byte_slots;
        decided += stats.decided_branches;
        affine += stats.affine_rewrites;
        unframed += usize::from(stats.unframed);
        before += stats.items_before;
        after += stats.items_after;
        assert_agree(&mut rng, case, &original, &optimized);
    }
    // The test must exercise the passes, not only the unchanged path.
    assert!(promoted > 50, "only {promoted} slots promoted");
    eprintln!(
        "{bytes} byte slots, {decided} branches decided, {unframed} frames removed, \
         {affine} affine rewrites"
    );
    assert!(bytes > 10, "only {bytes} byte slots promoted");
    // (Constant propagation decides most repeated zero tests now; the
    // branches pass keeps the `jne` edges, where the value is only known
    // to be non-zero.)
    assert!(decided > 2, "only {decided} branches decided");
    assert!(unframed > 10, "only {unframed} frames removed");
    assert!(affine > 100, "only {affine} affine rewrites");
    assert!(after * 10 < before * 9, "only {before} -> {after} items");
}

#[test]
fn closed_loops_and_folded_constants_agree_with_the_processor() {
    let mut rng = Rng::new(0x1_0095);
    let (mut closed, mut folded, mut loops_left) = (0, 0, 0);
    for case in 0..300 {
        let original = random_loop_function(&mut rng);
        let mut optimized = original.clone();
        let stats = wiper_opt::optimize(&mut optimized);
        closed += stats.closed_loops;
        folded += stats.folded_constants;
        let self_loop = optimized.blocks.iter().any(|b| {
            matches!(b.terminator, Terminator::Branch { taken, not_taken, .. }
                if taken == b.label || not_taken == b.label)
        });
        loops_left += usize::from(self_loop);
        assert_agree(&mut rng, case, &original, &optimized);
    }
    eprintln!("{closed} loops closed, {loops_left} left, {folded} constants folded");
    assert!(closed > 80, "only {closed} loops closed");
    assert!(loops_left > 20, "only {loops_left} loops rightly kept");
    assert!(folded > 300, "only {folded} constants folded");
}

#[test]
fn unrolled_walks_agree_with_the_processor() {
    let mut rng = Rng::new(0x3a1c);
    let (mut unrolled, mut loops_left, mut before, mut after) = (0, 0, 0, 0);
    for case in 0..300 {
        let original = random_walk_function(&mut rng);
        let mut optimized = original.clone();
        let stats = wiper_opt::optimize(&mut optimized);
        unrolled += stats.unrolled_loops;
        before += stats.items_before;
        after += stats.items_after;
        loops_left += usize::from(optimized.blocks.iter().any(|b| {
            matches!(b.terminator, Terminator::Branch { taken, not_taken, .. }
                if taken == b.label || not_taken == b.label)
        }));
        assert_agree(&mut rng, case, &original, &optimized);
    }
    eprintln!("{unrolled} walks unrolled, {loops_left} left, {before} -> {after} items");
    assert!(unrolled > 100, "only {unrolled} walks unrolled");
    assert!(loops_left > 40, "only {loops_left} walks rightly kept");
}

/// Functions made of affine shapes only, so that more of what the affine
/// value numbering rewrites reaches the registers a caller sees.
#[test]
fn affine_rewrites_agree_with_the_originals_on_the_processor() {
    let mut rng = Rng::new(0x00af_f14e);
    let (mut affine, mut before, mut after) = (0, 0, 0);
    for case in 0..300 {
        let original = random_function(&mut rng, |r, _| affine_shape(r));
        let mut optimized = original.clone();
        let stats = wiper_opt::optimize(&mut optimized);
        affine += stats.affine_rewrites;
        before += stats.items_before;
        after += stats.items_after;
        assert_agree(&mut rng, case, &original, &optimized);
    }
    eprintln!("{affine} affine rewrites, {before} -> {after} items");
    assert!(affine > 2000, "only {affine} affine rewrites");
    assert!(after * 10 < before * 8, "only {before} -> {after} items");
}

#[test]
fn freed_saved_registers_agree_with_the_processor() {
    let mut rng = Rng::new(0x5a7ed);
    let (mut freed, mut kept) = (0, 0);
    for case in 0..300 {
        let original = random_saved_function(&mut rng);
        let mut optimized = original.clone();
        let stats = wiper_opt::optimize(&mut optimized);
        freed += stats.freed_registers;
        kept += usize::from(stats.freed_registers == 0);
        assert_agree(&mut rng, case, &original, &optimized);
    }
    eprintln!("{freed} saved registers freed, {kept} functions kept theirs");
    assert!(freed > 100, "only {freed} saved registers freed");
    assert!(kept > 30, "only {kept} functions kept their saved register");
}
