//! The optimizer against the processor: random residual functions (frame
//! slots and byte slots, arguments, saved callee-saved registers, register
//! shuffles, zero tests, forward branches, loads and stores through
//! argument pointers and to global memory, byte and word operands, `ret`)
//! run on the same random machine states before optimization and after
//! every pass of it ([`wiper_opt::optimize_observed`]), through
//! wiper-oracle. Everything a caller can observe after `ret` must agree:
//! `eax`, `edx`, the callee-saved registers, `esp` and all memory but the
//! callee's dead frame and its argument area (see [`observable`]); a
//! difference names the pass that made it.
//!
//! Besides the shapes each rewrite wants, the generators make the near
//! misses each rewrite must refuse: non-commutative operators where a
//! commutative one is wanted, flags read later (by a branch, `adc` or
//! `setcc`), memory reached through two pointers that may alias, registers
//! read again after a peephole would drop them, partial (byte and word)
//! writes of registers and slots, and stores in loops.

use iced_x86::code_asm::*;
use iced_x86::{Code, ConditionCode, Instruction, Register, RflagsBits};
use wiper_emit::Plan;
use wiper_oracle::{fallthrough_address, CpuState, Rng, CODE_BASE, ESP, SCRATCH_BASE};
use wiper_residual::{Block, Item, Label, Origin, Residual, Terminator};
use wiper_x86::{abi, Reg};

/// Bytes of the random function's frame: dword slots below `BYTES`, byte
/// slots from there.
const FRAME: i32 = 0x20;
/// Where the byte slots start in the frame.
const BYTES: i32 = FRAME - 8;
/// Bytes of arguments above the return address. The first `POINTERS`
/// hold pointers into the global area (set in every state); the code only
/// reads them.
const ARGS: i32 = 0x20;
/// How many arguments are pointers into the global area.
const POINTERS: i32 = 2;
/// The global area: the first bytes of the scratch window, below every
/// stack the random states make (their `esp` is at least a quarter of the
/// window in), so global stores are judged on their own.
const GLOBAL: u32 = SCRATCH_BASE;
/// Bytes of the global area.
const GLOBAL_LEN: u32 = 0x100;
/// Bytes of the scratch window.
const MEM_LEN: usize = 4096;
/// How far below the entry stack pointer the functions' stacks reach, at
/// most (frame, saved registers; with room to spare).
const STACK_BELOW: u32 = 0x100;
/// Random machine states per function.
const STATES: usize = 24;

/// Assembles one instruction with `f`.
fn one(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Instruction {
    let mut a = CodeAssembler::new(32).expect("32-bit assembler");
    f(&mut a).expect("valid instruction");
    a.instructions()[0]
}

/// The assembler's name of `reg`.
fn asm32(reg: Reg) -> AsmRegister32 {
    get_gpr32(reg.to_iced()).expect("a 32-bit register")
}

/// The general-purpose registers other than `esp`, in encoding order.
fn registers() -> Vec<AsmRegister32> {
    Reg::ALL
        .into_iter()
        .filter(|&x| x != Reg::Esp)
        .map(asm32)
        .collect()
}

/// A random general-purpose register other than `esp`.
fn reg(r: &mut Rng) -> AsmRegister32 {
    *r.choose(&registers())
}

/// A random register with a low byte.
fn reg8(r: &mut Rng) -> AsmRegister8 {
    *r.choose(&[al, cl, dl, bl])
}

/// A random frame slot or argument, as an `[esp+d]` operand (after the
/// prologue `esp` is `FRAME` bytes below the saved registers, `saved`
/// dwords below its entry value); never one of the pointer arguments.
fn slot(r: &mut Rng, saved: i32) -> AsmMemoryOperand {
    dword_ptr(esp + slot_offset(r, saved))
}

/// The displacement of a random slot for [`slot`].
fn slot_offset(r: &mut Rng, saved: i32) -> i32 {
    if r.coin() {
        4 * r.below(FRAME as u32 / 4) as i32
    } else {
        argument(
            saved,
            POINTERS + r.below((ARGS / 4 - POINTERS) as u32) as i32,
        )
    }
}

/// The `[esp+d]` displacement of argument `k` after the prologue.
fn argument(saved: i32, k: i32) -> i32 {
    FRAME + 4 * saved + abi::arg_offset(k as u32) as i32
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
    let ins = match r.below(46) {
        28..=31 => return affine_shape(r),
        32..=35 => return near_miss_shape(r, saved),
        36..=39 => return memory_shape(r, saved),
        40..=43 => return width_shape(r, saved),
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
        24 | 44 | 45 => return moved_aside(r),
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
                let others: Vec<AsmRegister32> =
                    registers().into_iter().filter(|&x| x != a).collect();
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

/// The low byte of a 32-bit register, when it has one.
fn low8(x: AsmRegister32) -> Option<AsmRegister8> {
    [(eax, al), (ecx, cl), (edx, dl), (ebx, bl)]
        .into_iter()
        .find(|&(w, _)| w == x)
        .map(|(_, b)| b)
}

/// The 16-bit part of a 32-bit register.
fn word16(x: AsmRegister32) -> AsmRegister16 {
    [
        (eax, ax),
        (ecx, cx),
        (edx, dx),
        (ebx, bx),
        (ebp, bp),
        (esi, si),
        (edi, di),
    ]
    .into_iter()
    .find(|&(w, _)| w == x)
    .map(|(_, h)| h)
    .expect("a register other than esp")
}

/// A random register with a low byte, and that byte.
fn reg_with_low(r: &mut Rng) -> (AsmRegister32, AsmRegister8) {
    *r.choose(&[(eax, al), (ecx, cl), (edx, dl), (ebx, bl)])
}

/// A random register other than `esp` and those in `not`.
fn reg_except(r: &mut Rng, not: &[AsmRegister32]) -> AsmRegister32 {
    let free: Vec<AsmRegister32> = registers()
        .into_iter()
        .filter(|x| !not.contains(x))
        .collect();
    *r.choose(&free)
}

/// An instruction that reads the flags: `adc`, `setcc` or `cmovcc`. With
/// `all_defined` false (after `imul`) only CF and OF, which `imul` defines.
fn flag_reader(r: &mut Rng, all_defined: bool) -> Instruction {
    let (d, s, d8) = (reg(r), reg(r), reg8(r));
    match r.below(if all_defined { 8 } else { 4 }) {
        0 => one(|x| x.adc(d, 0)),
        1 => one(|x| x.setb(d8)),
        2 => one(|x| x.seto(d8)),
        3 => one(|x| x.cmovb(d, s)),
        4 => one(|x| x.sete(d8)),
        5 => one(|x| x.sets(d8)),
        6 => one(|x| x.setl(d8)),
        _ => one(|x| x.setp(d8)),
    }
}

/// `OP a, b` for a random two-operand arithmetic `OP`, commutative or not.
fn any_op(r: &mut Rng, a: AsmRegister32, b: AsmRegister32) -> Instruction {
    match r.below(9) {
        0 => one(|x| x.add(a, b)),
        1 => one(|x| x.imul_2(a, b)),
        2 => one(|x| x.and(a, b)),
        3 => one(|x| x.or(a, b)),
        4 => one(|x| x.xor(a, b)),
        5 => one(|x| x.adc(a, b)),
        6 => one(|x| x.sbb(a, b)),
        7 => one(|x| x.cmp(a, b)),
        _ => one(|x| x.sub(a, b)),
    }
}

/// `add reg, k` in the sign-extended 8-bit immediate form compilers use
/// (the assembler picks `add eax, imm32`'s short form for `eax`, whose
/// register the optimizer never renames).
fn add_imm8(reg: AsmRegister32, k: i32) -> Instruction {
    Instruction::with2(
        iced_x86::Code::Add_rm32_imm8,
        iced_x86::Register::from(reg),
        k,
    )
    .expect("add r32, imm8")
}

/// An operand moved aside for an operation, `mov t,a; mov a,b; OP a,t`,
/// which becomes `OP a,b` when `OP` is commutative and `t` dead after:
/// here also the near misses, `OP` not commutative (`sub`, `cmp`, `adc`,
/// `sbb`, `shl a,cl` with t = ecx), and the flags read after.
fn moved_aside(r: &mut Rng) -> Vec<Instruction> {
    let (a, b, d) = (reg(r), reg(r), reg(r));
    // `ecx` is dead at `ret`, so a temporary in it is often dead after.
    let t = if r.coin() { ecx } else { reg(r) };
    if r.below(3) == 0 {
        // `mov t,b; OP t,a; mov a,t` -> `OP a,b` for a commutative `OP`,
        // `t` dead after (and the near misses: `sub`, `adc`, flags read)
        let mut out = vec![one(|x| x.mov(t, b)), any_op(r, t, a), one(|x| x.mov(a, t))];
        if r.below(3) == 0 {
            out.push(flag_reader(r, false));
        }
        return out;
    }
    let mut out = vec![one(|x| x.mov(t, a)), one(|x| x.mov(a, b))];
    match r.below(12) {
        0 | 1 => out.push(one(|x| x.add(a, t))),
        2 | 3 => out.push(one(|x| x.imul_2(a, t))),
        4 | 5 => out.push(one(|x| x.sub(a, t))),
        6 if t == ecx && a != ecx => {
            // (a shift by more than one leaves OF undefined: read CF)
            out.push(one(|x| x.shl(a, cl)));
            out.push(one(|x| x.adc(d, 0)));
            return out;
        }
        _ => out.push(any_op(r, a, t)),
    }
    if r.below(3) == 0 {
        out.push(flag_reader(r, false));
    }
    out
}

/// Shapes that look like what a peephole, copy propagation, dead-code
/// elimination, the affine numbering, constants or powers rewrite, but
/// where the rewrite must not fire (or only with care): each arm names
/// the rewrite and what differs.
fn near_miss_shape(r: &mut Rng, saved: i32) -> Vec<Instruction> {
    let (a, b, c, d) = (reg(r), reg(r), reg(r), reg(r));
    let imm = r.interesting_u32() as i32;
    let mut out = Vec::new();
    match r.below(13) {
        0 => return moved_aside(r),
        12 => {
            // `add a,k; X [a+d]` -> `X [a+d+k]` wants X to read a only
            // in its address: `mul` reads `eax` as its multiplicand too
            let k = r.range(1, 9) as i32;
            let c = reg_except(r, &[eax]);
            out.push(load_pointer(r, eax, saved));
            out.push(add_imm8(eax, k));
            out.push(one(|x| x.mul(dword_ptr(eax + r.below(16) as i32))));
            out.push(one(|x| x.mov(eax, c))); // the product is dead
        }
        1 => {
            // `mov a,b; OP a,c; mov b,a` -> `OP b,c` wants a dead after and
            // the last move back into b; `mov a,c; OP a,b; mov b,a` -> `OP
            // b,c` (c the other operand) wants `OP` commutative too
            // (`ecx` is dead at `ret`, so often dead after)
            let a = if r.coin() { ecx } else { a };
            let c = if r.coin() { d } else { c };
            out.push(one(|x| x.mov(a, b)));
            out.push(if r.coin() {
                any_op(r, a, c)
            } else {
                one(|x| x.sub(a, imm))
            });
            out.push(if r.coin() {
                one(|x| x.mov(b, a))
            } else {
                one(|x| x.mov(d, a))
            });
            if r.coin() {
                out.push(one(|x| x.add(c, a))); // a read again
            }
        }
        2 => {
            // a zero test after a flag writer goes only when the writer
            // sets ZF, SF and PF from the tested register and nothing
            // reads CF or OF: writers that do not, and readers of each flag
            let (w, w8) = reg_with_low(r);
            let byte = r.coin();
            out.push(match (byte, r.below(8)) {
                (true, 0) => one(|x| x.sub(w8, imm & 0xff)),
                (true, 1) => one(|x| x.mov(w8, imm & 0xff)),
                (true, 2) => one(|x| x.shl(w8, 1)),
                (true, _) => one(|x| x.add(w8, 0x80)),
                (false, 0) => one(|x| x.mov(w, b)),
                (false, 1) => one(|x| x.imul_2(w, b)),
                (false, 2) => one(|x| x.shl(w, r.range(1, 32))),
                (false, 3) => one(|x| x.lea(w, ptr(b + 1))),
                (false, 4) => one(|x| x.neg(w)),
                (false, 5) => one(|x| x.and(w, imm)),
                (false, 6) => one(|x| x.inc(w)),
                (false, _) => one(|x| x.sub(w, b)),
            });
            out.push(match (byte, r.coin()) {
                (true, true) => one(|x| x.test(w8, w8)),
                (true, false) => one(|x| x.cmp(w8, 0)),
                (false, true) => one(|x| x.test(w, w)),
                (false, false) => one(|x| x.cmp(w, 0)),
            });
            out.push(flag_reader(r, true));
        }
        3 => {
            // `imul r,s,1` -> `mov r,s` wants the flags dead
            out.push(one(|x| x.imul_3(a, b, 1)));
            out.push(flag_reader(r, false));
        }
        4 => {
            // `mov a,[m]; OP b,a` -> `OP b,[m]` wants a dead after, b != a
            // and an `OP` with a memory form
            let m = slot(r, saved);
            let a = if r.coin() { ecx } else { a };
            out.push(one(|x| x.mov(a, m)));
            out.push(match r.below(5) {
                0 if a == ecx => one(|x| x.shl(b, cl)),
                1 => one(|x| x.test(b, a)),
                2 => one(|x| x.add(a, a)),
                3 => one(|x| x.imul_3(b, a, 3)),
                _ => any_op(r, b, a),
            });
            if r.coin() {
                out.push(one(|x| x.mov(c, a))); // a read again
            }
        }
        5 => {
            // `movzx r,x; OP rl; mov x,rl` -> `OP x` wants the byte stored
            // back where it came from, an `OP` of the list, r dead after
            let (t, t8) = reg_with_low(r);
            let (x8, y8) = (reg8(r), reg8(r));
            out.push(one(|x| x.movzx(t, x8)));
            out.push(match r.below(3) {
                0 => one(|x| x.shl(t8, 1)),
                1 => one(|x| x.adc(t8, 1)),
                _ => one(|x| x.inc(t8)),
            });
            out.push(one(|x| x.mov(y8, t8)));
            if r.coin() {
                out.push(one(|x| x.add(c, t)));
            }
        }
        6 => {
            // `movzx r,rl; X` drops the `movzx` when X reads only rl and
            // r is dead after: X reads more of r here
            let (w, w8) = reg_with_low(r);
            let w_high = *r.choose(&[ah, ch, dh, bh]);
            out.push(one(|x| x.movzx(w, w8)));
            out.push(match r.below(3) {
                0 => one(|x| x.add(c, w)),
                1 => one(|x| x.mov(w_high, w8)),
                _ => one(|x| x.mov(word16(c), word16(w))),
            });
        }
        k => return near_miss_more(r, k),
    }
    out
}

/// The rest of [`near_miss_shape`]: shape `k` (7 to 11).
fn near_miss_more(r: &mut Rng, k: u32) -> Vec<Instruction> {
    let (a, b, c, d) = (reg(r), reg(r), reg(r), reg(r));
    let t = if r.coin() { ecx } else { reg(r) };
    let imm = r.interesting_u32() as i32;
    let mut out = Vec::new();
    match k {
        7 => {
            // copies: the source, or part of it, written before the copy is
            // read
            out.push(one(|x| x.mov(a, b)));
            out.push(match (low8(b), r.below(3)) {
                (Some(b8), 0) => one(|x| x.mov(b8, imm & 0xff)),
                (_, 1) => one(|x| x.mov(word16(b), imm & 0xffff)),
                _ => one(|x| x.inc(b)),
            });
            out.push(one(|x| x.add(c, a)));
        }
        8 => {
            // a byte write, then one that overwrites only part of it or
            // reads it
            let (w, w8) = reg_with_low(r);
            let w_high = *r.choose(&[ah, ch, dh, bh]);
            out.push(one(|x| x.mov(w8, imm & 0xff)));
            out.push(match r.below(4) {
                0 => one(|x| x.mov(w_high, 3)),
                1 => one(|x| x.add(w8, 1)),
                2 => one(|x| x.movzx(c, w8)),
                _ => one(|x| x.mov(word16(w), 7)),
            });
        }
        9 => {
            // a power whose last `imul`'s flags are read
            out.push(one(|x| x.mov(t, a)));
            for _ in 0..r.range(2, 6) {
                out.push(if r.coin() {
                    one(|x| x.imul_2(t, t))
                } else {
                    one(|x| x.imul_2(t, a))
                });
            }
            out.push(flag_reader(r, false));
        }
        10 => {
            // affine: the same sum recomputed after its source changed in
            // a way the forms do not follow (and, or, shifts right, byte
            // and word writes)
            out.push(one(|x| x.lea(a, ptr(b + 4))));
            out.push(match (low8(b), r.below(5)) {
                (_, 0) => one(|x| x.and(b, imm)),
                (_, 1) => one(|x| x.shr(b, 3)),
                (_, 2) => one(|x| x.or(b, imm)),
                (Some(b8), 3) => one(|x| x.mov(b8, imm & 0xff)),
                _ => one(|x| x.add(word16(b), 1)),
            });
            out.push(one(|x| x.lea(c, ptr(b + 4))));
            out.push(one(|x| x.add(d, c)));
            out.push(one(|x| x.add(d, a)));
        }
        _ => {
            // constants: a known result whose flags are read, or a known
            // register with an unknown part
            out.push(one(|x| x.mov(a, imm)));
            if r.coin() {
                out.push(one(|x| x.add(a, 0x7fff_ffff)));
                out.push(flag_reader(r, true));
            } else {
                if let Some(a8) = low8(a) {
                    let b8 = reg8(r);
                    out.push(one(|x| x.mov(a8, b8)));
                } else {
                    out.push(one(|x| x.mov(word16(a), word16(b))));
                }
                out.push(one(|x| x.add(c, a)));
            }
        }
    }
    out
}

/// A pointer into the global area, as an argument holds it, loaded into
/// `p`.
fn load_pointer(r: &mut Rng, p: AsmRegister32, saved: i32) -> Instruction {
    let k = r.below(POINTERS as u32) as i32;
    one(|x| x.mov(p, dword_ptr(esp + argument(saved, k))))
}

/// Loads and stores through the argument pointers (which may alias: the
/// states make them equal or a byte apart now and then) and at absolute
/// addresses in the global area: the memory every caller sees.
fn memory_shape(r: &mut Rng, saved: i32) -> Vec<Instruction> {
    // (`eax` often: `mul` reads it besides the address)
    let p = if r.below(3) == 0 { eax } else { reg(r) };
    let q = reg_except(r, &[p]);
    let (a, b, c) = (
        reg_except(r, &[p, q]),
        reg_except(r, &[p, q]),
        reg_except(r, &[p, q]),
    );
    let (d1, d2) = (r.below(12) as i32, r.below(12) as i32);
    let g = GLOBAL + r.below(GLOBAL_LEN - 8);
    let mut out = vec![load_pointer(r, p, saved), load_pointer(r, q, saved)];
    match r.below(6) {
        0 => {
            // a store through p, a load through q: the same bytes or not
            out.push(match (low8(a), r.below(3)) {
                (Some(a8), 0) => one(|x| x.mov(byte_ptr(p + d1), a8)),
                (_, 1) => one(|x| x.mov(word_ptr(p + d1), word16(a))),
                _ => one(|x| x.mov(dword_ptr(p + d1), a)),
            });
            out.push(match r.below(3) {
                0 => one(|x| x.add(b, dword_ptr(q + d2))),
                1 => one(|x| x.movzx(b, byte_ptr(q + d2))),
                _ => one(|x| x.mov(b, dword_ptr(q + d2))),
            });
            if r.coin() {
                out.push(one(|x| x.mov(dword_ptr(p + d1), c))); // again
            }
        }
        1 => {
            // one address loaded twice around a store through the other
            // pointer: the loads may differ
            out.push(one(|x| x.mov(a, dword_ptr(p + d1))));
            out.push(one(|x| x.mov(dword_ptr(q + d2), c)));
            out.push(one(|x| x.mov(b, dword_ptr(p + d1))));
            out.push(any_op(r, a, b));
        }
        2 => {
            // `mov a,[m]; OP b,a` -> `OP b,[m]`, a read again or not
            out.push(one(|x| x.mov(a, dword_ptr(p + d1))));
            out.push(any_op(r, b, a));
            if r.coin() {
                out.push(one(|x| x.mov(dword_ptr(q + d2), a)));
            }
        }
        3 => {
            // `add p,k; X [p+d]` -> `X [p+d+k]` wants p and the flags dead
            // after and X to read p only in its address (not `mul`'s eax)
            let k = r.range(1, 9) as i32;
            out.push(match r.below(4) {
                0 => one(|x| x.sub(p, k)),
                1 => one(|x| x.inc(p)),
                2 => one(|x| x.lea(p, ptr(p + k))),
                _ => add_imm8(p, k),
            });
            let d = 8 + d1;
            let p8 = low8(p);
            let x = match (r.below(9), low8(b)) {
                (0, _) => one(|x| x.mov(dword_ptr(p + d), b)),
                (1, _) => one(|x| x.add(b, dword_ptr(p + d))),
                (2, _) => one(|x| x.adc(b, dword_ptr(p + d))),
                (3, _) if q != eax && q != edx => one(|x| x.mul(dword_ptr(p + d))),
                (4, _) => one(|x| x.movzx(b, byte_ptr(p + d))),
                (5, Some(b8)) => one(|x| x.mov(byte_ptr(p + d), b8)),
                (6, _) => one(|x| x.inc(dword_ptr(p + d))),
                (7, _) if p8.is_some() => one(|x| x.mov(p8.expect("a low byte"), byte_ptr(p + d))),
                _ => one(|x| x.mov(b, dword_ptr(p + d))),
            };
            // (`mul` leaves SF, ZF, AF and PF undefined: read CF or OF)
            let all_defined = x.rflags_undefined() == 0;
            out.push(x);
            out.push(match r.below(4) {
                0 => flag_reader(r, all_defined),
                1 => one(|x| x.mov(c, p)),
                2 => one(|x| x.mov(p, c)), // p dead after X
                _ => one(|x| x.mov(c, dword_ptr(q + d2))),
            });
        }
        4 => {
            // a byte changed through a register and stored back, maybe to
            // a neighbour or through the other pointer
            let (t, t8) = *r.choose(
                &[(eax, al), (ecx, cl), (edx, dl), (ebx, bl)]
                    .into_iter()
                    .filter(|&(w, _)| w != p && w != q)
                    .collect::<Vec<_>>(),
            );
            out.push(one(|x| x.movzx(t, byte_ptr(p + d1))));
            out.push(if r.coin() {
                one(|x| x.dec(t8))
            } else {
                one(|x| x.xor(t8, 0x5a))
            });
            out.push(match r.below(3) {
                0 => one(|x| x.mov(byte_ptr(p + d1 + 1), t8)),
                1 => one(|x| x.mov(byte_ptr(q + d1), t8)),
                _ => one(|x| x.mov(byte_ptr(p + d1), t8)),
            });
        }
        _ => {
            // absolute addresses in the global area, of every width
            for _ in 0..r.range(2, 5) {
                let g = g + r.below(4);
                let a8 = reg8(r);
                out.push(match r.below(7) {
                    0 => one(|x| x.mov(dword_ptr(g), a)),
                    1 => one(|x| x.add(dword_ptr(g), b)),
                    2 => one(|x| x.mov(c, dword_ptr(g))),
                    3 => one(|x| x.inc(byte_ptr(g))),
                    4 => one(|x| x.mov(word_ptr(g), word16(a))),
                    5 => one(|x| x.movzx(b, word_ptr(g))),
                    _ => one(|x| x.mov(byte_ptr(g), a8)),
                });
            }
        }
    }
    out
}

/// Byte and word operands on registers and frame slots, overlapping the
/// dword slots (so those must not be promoted as dwords) and the byte
/// slots (a dword read over them).
fn width_shape(r: &mut Rng, saved: i32) -> Vec<Instruction> {
    let (a, b) = (reg(r), reg(r));
    let d = slot_offset(r, saved);
    let imm = r.interesting_u32() as i32;
    vec![match r.below(9) {
        0 => one(|x| x.mov(word16(a), word16(b))),
        1 => one(|x| x.add(word16(a), imm & 0xffff)),
        2 => one(|x| x.movzx(a, word16(b))),
        3 => one(|x| x.movsx(a, *r.choose(&[al, ah, bl, ch]))),
        4 => one(|x| x.mov(word_ptr(esp + d + 2 * r.below(2) as i32), word16(a))),
        5 => one(|x| x.movzx(a, word_ptr(esp + d))),
        6 => one(|x| x.mov(byte_ptr(esp + d + r.range(1, 4) as i32), reg8(r))),
        7 => one(|x| x.mov(a, dword_ptr(esp + BYTES + r.below(5) as i32))),
        _ => one(|x| x.inc(word16(a))),
    }]
}

/// A zero test of a register (of kind `kind`), as a block ends before its
/// branch.
fn zero_test(kind: u32) -> Instruction {
    match kind {
        0 => one(|x| x.test(cl, cl)),
        1 => one(|x| x.cmp(cl, 0)),
        2 => one(|x| x.test(eax, eax)),
        3 => one(|x| x.cmp(eax, 0)),
        // near misses: the other width of the same register
        4 => one(|x| x.test(ecx, ecx)),
        _ => one(|x| x.test(al, al)),
    }
}

/// Now and then (a near miss for the decided branches) a zero test of
/// another width of the register that tests of `kind` test.
fn zero_test_near(r: &mut Rng, kind: u32) -> Instruction {
    match (kind, r.below(8)) {
        (0 | 1, 0) => zero_test(4),
        (_, 0) => zero_test(5),
        _ => zero_test(kind),
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
    let saved: Vec<AsmRegister32> = abi::CALLEE_SAVED
        .into_iter()
        .map(asm32)
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
                let g = GLOBAL + r.below(GLOBAL_LEN - 4);
                items.push(match r.below(6) {
                    0 => one(|x| x.mov(dword_ptr(g), imm)),
                    1 | 2 => one(|x| x.mov(m8, imm & 0xff)),
                    _ => one(|x| x.mov(m, imm)),
                });
            } else {
                items.extend(instruction(r, n));
            }
        }
        if quiet && r.below(8) == 0 {
            // the high byte of the tested register (a near miss for the
            // decided branches when it is `eax`)
            let imm = r.interesting_u32() as i32;
            let at = r.below(items.len() as u32 + 1) as usize;
            items.insert(at, one(|x| x.mov(*r.choose(&[ah, ch]), imm & 0xff)));
        }
        // A block after a zero test often tests the same again.
        let test_here = i + 1 < blocks && if tested { r.below(4) != 0 } else { r.coin() };
        tested = test_here;
        let last = i + 1 == blocks;
        if last {
            if r.below(6) == 0 {
                // restores by `pop` (which the frame elimination refuses)
                items.push(one(|x| x.lea(esp, ptr(esp + FRAME))));
                for &s in saved.iter().rev() {
                    items.push(one(|x| x.pop(s)));
                }
            } else {
                for (k, &s) in saved.iter().enumerate() {
                    let at = FRAME + 4 * (n - 1 - k as i32);
                    items.push(one(|x| x.mov(s, dword_ptr(esp + at))));
                }
                items.push(one(|x| x.lea(esp, ptr(esp + FRAME + 4 * n))));
            }
            items.push(one(|x| x.ret()));
        } else if test_here {
            if r.below(3) == 0 {
                // a byte tested in memory, or through a scratch register
                // (of either width: `test ecx, ecx` after `mov cl, m` is a
                // near miss). The form follows from the slot and the block
                // (the random stream stays as the floors below were
                // measured with): an even block tests a global byte in
                // memory, the next one tests it through a register, so
                // that a branch on it may be decided by the one before.
                let slot = r.below(4);
                let global = slot % 2 == 1;
                let m8 = if global {
                    // global memory, which no pass promotes to a register
                    byte_ptr(GLOBAL + slot)
                } else {
                    byte_ptr(esp + BYTES + slot as i32)
                };
                match (global, i % 2 == 0, slot) {
                    (true, true, _) => items.push(one(|x| x.cmp(m8, 0))),
                    (true, false, 3) => {
                        items.push(one(|x| x.mov(cl, m8)));
                        items.push(one(|x| x.test(ecx, ecx)));
                    }
                    _ => {
                        items.push(one(|x| x.movzx(ecx, m8)));
                        items.push(one(|x| x.test(cl, cl)));
                    }
                }
            } else {
                items.push(zero_test_near(r, test_kind));
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
        data_vaddr: 0,
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
    if r.below(8) == 0 {
        // a store to global memory every turn: no closed form either
        let g = GLOBAL + r.below(GLOBAL_LEN - 4);
        body.push(if r.coin() {
            one(|x| x.mov(dword_ptr(g), edx))
        } else {
            one(|x| x.add(byte_ptr(g), 1))
        });
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
    let (saved, low) = *r.choose(&abi::CALLEE_SAVED.map(|reg| {
        let low = reg.low_byte().and_then(get_gpr8);
        (asm32(reg), low)
    }));
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
        data_vaddr: 0,
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
        data_vaddr: 0,
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
    // Now and then a store each turn through the first argument, a
    // pointer into the global area, stepped by one.
    let store = r.below(3) == 0;
    if store {
        setup.push(one(|x| x.mov(edi, dword_ptr(esp + 4))));
    }
    let mut body = Vec::new();
    if store {
        body.push(if r.coin() {
            one(|x| x.mov(byte_ptr(edi), dl))
        } else {
            one(|x| x.mov(dword_ptr(edi + 1), edx))
        });
        body.push(one(|x| x.inc(edi)));
    }
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

/// Random machine states for one function: the pointer arguments point
/// into the global area, now and then at the same or overlapping bytes.
fn random_states(rng: &mut Rng) -> Vec<CpuState> {
    (0..STATES)
        .map(|_| {
            let mut s = CpuState::random(rng, MEM_LEN);
            let entry_esp = s.regs[ESP];
            assert!(entry_esp - STACK_BELOW >= GLOBAL + GLOBAL_LEN);
            // The stack below the entry pointer repeats one random dword:
            // passes that add or remove a save (`borrow`, `pushed`) move the
            // frame by 4 bytes, and a slot read before it is written must
            // see the same garbage in both.
            let garbage = rng.next_u32();
            for a in (entry_esp - STACK_BELOW..entry_esp).step_by(4) {
                s.write_u32(a, garbage);
            }
            let first = GLOBAL + 16 + 4 * rng.below(40);
            for k in 0..POINTERS as u32 {
                let pointer = match (k, rng.below(4)) {
                    (0, _) => first,
                    (_, 0) => first,
                    (_, 1) => first + rng.range(1, 4),
                    _ => GLOBAL + 16 + 4 * rng.below(40),
                };
                s.write_u32(entry_esp + abi::arg_offset(k), pointer);
            }
            s
        })
        .collect()
}

/// Runs `code` from each of `states` with the fall-through stub as return
/// address; what a caller sees of each outcome.
fn run(code: &[u8], states: &[CpuState]) -> Vec<Observed> {
    let states: Vec<CpuState> = states
        .iter()
        .map(|state| {
            let mut s = state.clone();
            s.write_u32(s.regs[ESP], fallthrough_address(code.len()));
            s
        })
        .collect();
    let out = wiper_oracle::run_code(code, &states).expect("the oracle runs");
    out.into_iter()
        .zip(&states)
        .map(|(outcome, state)| {
            assert!(outcome.fault.is_none(), "fault {:?}", outcome.fault);
            observable(&outcome.state, state.regs[ESP])
        })
        .collect()
}

/// What a caller sees after `ret`: registers but `ecx`, and memory.
type Observed = (Vec<u32>, Vec<u8>);

/// What a caller can observe of a state after `ret` from a call made with
/// `entry_esp`: the registers but `ecx` (which no convention preserves or
/// returns; the flags are not preserved either), and all memory but two
/// ranges the i386 System V ABI gives the callee:
/// - its dead frame, below the stack pointer at return (`entry_esp + 4`):
///   locals, saved registers, and the return address slot, which differs
///   anyway (the fall-through address depends on the code's length);
/// - its incoming arguments (`entry_esp + 4 ..+ ARGS`), which the callee
///   owns and may change; the optimizer takes them as dead at `ret`
///   (`frame.rs`, `liveness.rs`). What is written through the pointer
///   arguments lands in the global area and is compared.
fn observable(s: &CpuState, entry_esp: u32) -> Observed {
    let seen = |r: &Reg| *r == Reg::Esp || abi::RETURN.contains(r) || abi::CALLEE_SAVED.contains(r);
    let regs = Reg::ALL
        .iter()
        .filter(|r| seen(r))
        .map(|r| s.regs[r.index()])
        .collect();
    let lo = (entry_esp - STACK_BELOW - SCRATCH_BASE) as usize;
    let hi = (entry_esp - SCRATCH_BASE) as usize + 4 + ARGS as usize;
    let mut mem = s.mem.clone();
    mem[lo..hi].fill(0);
    (regs, mem)
}

/// The first difference between two runs, as a message.
fn difference(want: &[Observed], got: &[Observed]) -> Option<String> {
    let (k, (w, g)) = want
        .iter()
        .zip(got)
        .enumerate()
        .find(|(_, (w, g))| w != g)?;
    let byte = w.1.iter().zip(&g.1).position(|(a, b)| a != b);
    Some(format!(
        "state {k}: registers (eax edx ebx esp ebp esi edi) {:x?} vs {:x?}, \
         first differing byte {:?}",
        w.0,
        g.0,
        byte.map(|b| format!("{:#x}", SCRATCH_BASE as usize + b))
    ))
}

/// How many times each pass changed the code, by pass name.
type Changes = std::collections::BTreeMap<String, usize>;

/// Optimizes `original` (case `case`), running it before and after every
/// pass that changes the code on the same random states, and asserts that
/// a caller sees the same; a difference names the pass that made it.
/// Counts in `changes` the passes that changed the code; returns the
/// optimizer's statistics and the optimized function.
fn optimize_counted(
    rng: &mut Rng,
    case: usize,
    original: &Residual,
    changes: &mut Changes,
) -> (wiper_opt::OptStats, Residual) {
    let states = random_states(rng);
    let mut last_code = encode(original);
    let want = run(&last_code, &states);
    let mut last = (String::from("(none: the original)"), original.clone());
    let mut optimized = original.clone();
    let stats = wiper_opt::optimize_observed(&mut optimized, |pass, residual| {
        if *residual == last.1 {
            return;
        }
        let code = encode(residual);
        if code != last_code {
            let got = run(&code, &states);
            if let Some(diff) = difference(&want, &got) {
                panic!(
                    "case {case}: pass `{pass}` broke the code: {diff}\n\
                     original:\n{}before `{pass}` (after `{}`):\n{}after `{pass}`:\n{}",
                    listing(original),
                    last.0,
                    listing(&last.1),
                    listing(residual)
                );
            }
            last_code = code;
            *changes.entry(pass.to_string()).or_default() += 1;
        }
        last = (pass.to_string(), residual.clone());
    });
    if let Some(cleaner) = wiper_opt::left_to_clean(&optimized) {
        panic!(
            "case {case}: the optimizer left work for its clean-up:\n\
             original:\n{}optimized:\n{}cleaned up again:\n{}",
            listing(original),
            listing(&optimized),
            listing(&cleaner)
        );
    }
    (stats, optimized)
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

/// Asserts that `what` (observed `observed` times) reached `floor`.
/// Floors sit at 80-90% of what was observed when they were set, so
/// that a change that stops a pass from firing fails the test.
fn at_least(what: &str, observed: usize, floor: usize) {
    if screening() {
        return;
    }
    assert!(
        observed >= floor,
        "only {observed} {what} (at least {floor} expected)"
    );
}

/// How many of its `full` cases a test runs: all of them, or the first
/// `WIPER_OPT_CPU_CASES` percent (at least one) for a quick screen, such
/// as a mutation-testing run (docs/reliability.md). The cases a screen runs
/// are the first ones of the full run, drawn the same, so a mismatch a
/// screen finds is one the full run finds too.
fn cases(full: usize) -> usize {
    match std::env::var("WIPER_OPT_CPU_CASES") {
        Ok(p) => {
            let percent: usize = p
                .trim()
                .parse()
                .expect("WIPER_OPT_CPU_CASES is a percentage");
            (full * percent.min(100) / 100).max(1)
        }
        Err(_) => full,
    }
}

/// Whether the run is a screen ([`cases`]): then the floors, which count
/// what the full run does, are not checked.
fn screening() -> bool {
    std::env::var_os("WIPER_OPT_CPU_CASES").is_some()
}

/// Optimizes the first `cases(200)` functions `generate` draws from
/// `seed`, each intermediate residual checked on the processor; the code
/// changes by pass (printed).
fn changes_over(seed: u64, generate: fn(&mut Rng) -> Residual) -> Changes {
    let mut rng = Rng::new(seed);
    let mut changes = Changes::new();
    for case in 0..cases(200) {
        let original = generate(&mut rng);
        optimize_counted(&mut rng, case, &original, &mut changes);
    }
    eprintln!("code changed by pass: {changes:?}");
    changes
}

/// Asserts for each `(pass, floor)` that the pass changed the code at
/// least `floor` times (see [`at_least`]); prints them all.
fn passes_fired(changes: &Changes, floors: &[(&str, usize)]) {
    eprintln!("code changed by pass: {changes:?}");
    for &(pass, floor) in floors {
        let n = changes.get(pass).copied().unwrap_or(0);
        at_least(&format!("code changes by `{pass}`"), n, floor);
    }
}

/// Whether `residual` has a block that branches to itself.
fn has_self_loop(residual: &Residual) -> bool {
    residual.blocks.iter().any(|b| {
        matches!(b.terminator, Terminator::Branch { taken, not_taken, .. }
            if taken == b.label || not_taken == b.label)
    })
}

#[test]
fn optimized_functions_agree_with_the_originals_on_the_processor() {
    let mut rng = Rng::new(0x0b7_1e5);
    let mut changes = Changes::new();
    let (mut promoted, mut before, mut after) = (0, 0, 0);
    let (mut bytes, mut decided, mut unframed, mut affine) = (0, 0, 0, 0);
    for case in 0..cases(250) {
        let original = random_function(&mut rng, random_instruction);
        let (stats, _) = optimize_counted(&mut rng, case, &original, &mut changes);
        promoted += stats.promoted_slots;
        bytes += stats.promoted_byte_slots;
        decided += stats.decided_branches;
        affine += stats.affine_rewrites;
        unframed += usize::from(stats.unframed);
        before += stats.items_before;
        after += stats.items_after;
    }
    eprintln!(
        "{promoted} slots promoted, {bytes} byte slots, {decided} branches decided, \
         {unframed} frames removed, {affine} affine rewrites, {before} -> {after} items"
    );
    // The test must exercise the passes, not only the unchanged path.
    // (Constant propagation decides most repeated zero tests; the
    // branches pass keeps the `jne` edges, where the value is only known
    // to be non-zero.)
    passes_fired(
        &changes,
        // observed on 2026-12-04 (the generator with commuted moved-aside
        // shapes): copies 640, dead 557, dead_slots 253, promote 586,
        // overwritten_parts 234, affine 364, peephole 105, unframe 72,
        // split_word_stores 47, offsets 35, constants 27, powers 18,
        // pushed 28, branches 7, cfg 14; on 2026-12-05 pushed 19 and saves
        // 13 (`saves` takes the `push`/`pop` pairs around a few
        // instructions before `pushed` sees them)
        &[
            ("copies", 544),
            ("dead", 473),
            ("dead_slots", 215),
            ("promote", 498),
            ("overwritten_parts", 199),
            ("affine", 309),
            ("peephole", 89),
            ("unframe", 61),
            ("split_word_stores", 40),
            ("offsets", 30),
            ("constants", 23),
            ("powers", 15),
            ("pushed", 15),
            ("saves", 10),
            ("branches", 5),
            ("cfg", 11),
        ],
    );
    at_least("slots promoted", promoted, 855); // observed 1006 on 2026-12-04
                                               // observed 133 on 2026-12-04; 115 on 2026-12-05, when half of the
                                               // generator's tested byte slots moved to global memory (not promoted)
    at_least("byte slots promoted", bytes, 100);
    at_least("branches decided", decided, 5); // observed 7 on 2026-12-04
    at_least("frames removed", unframed, 65); // observed 77 on 2026-12-04
    at_least("affine rewrites", affine, 526); // observed 619 on 2026-12-04
    at_least("items removed", before - after, 4116); // observed 4843 on 2026-12-04
}

#[test]
fn closed_loops_and_folded_constants_agree_with_the_processor() {
    let mut rng = Rng::new(0x1_0095);
    let mut changes = Changes::new();
    let (mut closed, mut folded, mut loops_left) = (0, 0, 0);
    for case in 0..cases(200) {
        let original = random_loop_function(&mut rng);
        let (stats, optimized) = optimize_counted(&mut rng, case, &original, &mut changes);
        closed += stats.closed_loops;
        folded += stats.folded_constants;
        loops_left += usize::from(has_self_loop(&optimized));
    }
    eprintln!("{closed} loops closed, {loops_left} left, {folded} constants folded");
    passes_fired(
        &changes,
        // observed on 2026-12-04: constants 207, counted 83, peephole 55,
        // offsets 21, overwritten_parts 7
        &[
            ("constants", 176),
            ("counted", 70),
            ("peephole", 46),
            ("offsets", 17),
            ("overwritten_parts", 6),
        ],
    );
    at_least("loops closed", closed, 70); // observed 83 on 2026-12-04
    at_least("loops rightly kept", loops_left, 99); // observed 117 on 2026-12-04
    at_least("constants folded", folded, 290); // observed 342 on 2026-12-04
}

/// `function` (a [`random_loop_function`]) with its loop rotated, as gcc
/// and the specializer lay out `while` loops: the body's first items move
/// to a block of their own (label 5) that jumps to the rest, which keeps
/// the test and branches back to it; the setup enters at either block.
fn rotated(r: &mut Rng, mut function: Residual) -> Residual {
    let o = Origin::Original(0);
    let body = &mut function.blocks[1];
    let split = r.range(1, body.items.len() as u32) as usize;
    let head: Vec<Item> = body.items.drain(..split).collect();
    if r.coin() {
        function.blocks[0].terminator = Terminator::Jump(Label(5), o);
    }
    function.blocks[1].label = Label(5);
    function.blocks.insert(
        1,
        Block {
            label: Label(1),
            items: head,
            terminator: Terminator::Jump(Label(5), o),
        },
    );
    // The rest (label 5) branches back to label 1, now the head.
    function
}

#[test]
fn closed_rotated_loops_agree_with_the_processor() {
    let mut rng = Rng::new(0x2_0095);
    let mut changes = Changes::new();
    let mut closed = 0;
    for case in 0..cases(200) {
        let loop_function = random_loop_function(&mut rng);
        let original = rotated(&mut rng, loop_function);
        let (stats, _) = optimize_counted(&mut rng, case, &original, &mut changes);
        closed += stats.closed_loops;
    }
    eprintln!("{closed} rotated loops closed; code changed by pass: {changes:?}");
    at_least("rotated loops closed", closed, 73); // observed 86 on 2026-12-04
}

/// A dword read, changed and written back through a register (`mov a,m;
/// OP a,c; mov m,a`, which the peepholes make `OP m,c` when `a` is dead
/// after), at a frame slot, a global or through an argument pointer; near
/// misses: `OP` reads `a` twice, or the store goes to another address
/// (the address computed from `a` is a unit test's: no processor state
/// makes the loaded value a valid pointer). Otherwise a random instruction.
fn read_modify_write_shape(r: &mut Rng, saved: i32) -> Vec<Instruction> {
    if r.below(3) == 0 {
        return random_instruction(r, saved);
    }
    let a = reg(r);
    let c = reg_except(r, &[a]);
    let imm = r.interesting_u32() as i32;
    let g = GLOBAL + r.below(GLOBAL_LEN - 8);
    let mut out = Vec::new();
    let (m, other) = match r.below(3) {
        0 => (dword_ptr(g), dword_ptr(g + 4)),
        1 => {
            let p = reg_except(r, &[a, c]);
            out.push(load_pointer(r, p, saved));
            (dword_ptr(p + 4), dword_ptr(p + 8))
        }
        _ => {
            // (the other address is another slot: the one after the last
            // slot is a saved register or the return address)
            let (d, d2) = (slot_offset(r, saved), slot_offset(r, saved));
            (dword_ptr(esp + d), dword_ptr(esp + d2))
        }
    };
    out.push(one(|x| x.mov(a, m)));
    out.push(match r.below(9) {
        0 => one(|x| x.inc(a)),
        1 => one(|x| x.dec(a)),
        2 => one(|x| x.neg(a)),
        3 => one(|x| x.not(a)),
        4 => one(|x| x.add(a, imm)),
        5 => one(|x| x.sub(a, c)),
        6 => one(|x| x.xor(a, c)),
        7 => one(|x| x.and(a, imm)),
        _ => one(|x| x.add(a, a)),
    });
    out.push(if r.below(6) == 0 {
        one(|x| x.mov(other, a))
    } else {
        one(|x| x.mov(m, a))
    });
    out
}

#[test]
fn read_modify_write_agrees_with_the_processor() {
    let mut rng = Rng::new(0x5_e11d);
    let mut changes = Changes::new();
    for case in 0..cases(200) {
        let original = random_function(&mut rng, read_modify_write_shape);
        optimize_counted(&mut rng, case, &original, &mut changes);
    }
    eprintln!("code changed by pass: {changes:?}");
    // observed on 2026-12-04: peephole 166 (of which the read-modify-writes
    // are the shape this test makes most)
    passes_fired(&changes, &[("peephole", 141)]);
}

#[test]
fn unrolled_walks_agree_with_the_processor() {
    let mut rng = Rng::new(0x3a1c);
    let mut changes = Changes::new();
    let (mut unrolled, mut loops_left, mut before, mut after) = (0, 0, 0, 0);
    for case in 0..cases(200) {
        let original = random_walk_function(&mut rng);
        let (stats, optimized) = optimize_counted(&mut rng, case, &original, &mut changes);
        unrolled += stats.unrolled_loops;
        before += stats.items_before;
        after += stats.items_after;
        loops_left += usize::from(has_self_loop(&optimized));
    }
    eprintln!("{unrolled} walks unrolled, {loops_left} left, {before} -> {after} items");
    passes_fired(
        &changes,
        // observed on 2026-12-04: unroll 145, offsets 135, affine 236
        &[("unroll", 123), ("offsets", 114), ("affine", 200)],
    );
    at_least("walks unrolled", unrolled, 123); // observed 145 on 2026-12-04
    at_least("walks rightly kept", loops_left, 42); // observed 50 on 2026-12-04
}

/// Functions made of affine shapes only, so that more of what the affine
/// value numbering rewrites reaches the registers a caller sees.
#[test]
fn affine_rewrites_agree_with_the_originals_on_the_processor() {
    let mut rng = Rng::new(0x00af_f14e);
    let mut changes = Changes::new();
    let (mut affine, mut before, mut after) = (0, 0, 0);
    for case in 0..cases(150) {
        let original = random_function(&mut rng, |r, _| affine_shape(r));
        let (stats, _) = optimize_counted(&mut rng, case, &original, &mut changes);
        affine += stats.affine_rewrites;
        before += stats.items_before;
        after += stats.items_after;
    }
    eprintln!("{affine} affine rewrites, {before} -> {after} items");
    passes_fired(
        &changes,
        // observed on 2026-12-04: affine 283, overwritten_parts 553,
        // dead 782, offsets 203, copies 226, peephole 29, unframe 24;
        // with the address folding: address 653, affine 755; on
        // 2026-12-05 (byte tests in global memory): address 764, affine
        // 912, peephole 24
        &[
            ("address", 555),
            ("affine", 240),
            ("overwritten_parts", 470),
            ("dead", 664),
            ("offsets", 172),
            ("copies", 192),
            ("peephole", 20),
            ("unframe", 20),
        ],
    );
    at_least("affine rewrites", affine, 1820); // observed 2142 on 2026-12-04
    at_least("items removed", before - after, 7630); // observed 8980 on 2026-12-04
}

#[test]
fn freed_saved_registers_agree_with_the_processor() {
    let mut rng = Rng::new(0x5a7ed);
    let mut changes = Changes::new();
    let (mut freed, mut kept) = (0, 0);
    for case in 0..cases(200) {
        let original = random_saved_function(&mut rng);
        let (stats, _) = optimize_counted(&mut rng, case, &original, &mut changes);
        freed += stats.freed_registers;
        kept += usize::from(stats.freed_registers == 0);
    }
    eprintln!("{freed} saved registers freed, {kept} functions kept theirs");
    passes_fired(
        &changes,
        // observed on 2026-12-04: scratch 119, promote 196, copies 237
        &[("scratch", 101), ("promote", 166), ("copies", 201)],
    );
    at_least("saved registers freed", freed, 101); // observed 119 on 2026-12-04
    at_least("functions that kept their saved register", kept, 68); // observed 81 on 2026-12-04
}

/// A function whose loop works on frame slots (and now and then an
/// argument) while every caller-saved register is busy: `eax` and `edx`
/// carry values across the loop and `cl` counts it, so the slots can live
/// in registers only if a callee-saved one is borrowed. Some callee-saved
/// registers are saved by the function itself, and one of them may be
/// used in the loop (it is then not free to borrow); the loop may also
/// store to global memory. Every slot is written before it is read (the
/// frame moves when a register is borrowed, so garbage would differ).
fn random_crowded_loop_function(r: &mut Rng) -> Residual {
    let saved: Vec<AsmRegister32> = abi::CALLEE_SAVED
        .into_iter()
        .map(asm32)
        .filter(|_| r.below(3) == 0)
        .collect();
    let n = saved.len() as i32;
    let words: Vec<i32> = (0..r.range(1, 4))
        .map(|_| 4 * r.below(BYTES as u32 / 4) as i32)
        .collect();
    let bytes: Vec<i32> = (0..r.below(3)).map(|_| BYTES + r.below(4) as i32).collect();
    let arg = argument(n, POINTERS + r.below((ARGS / 4 - POINTERS) as u32) as i32);
    let mut setup: Vec<Instruction> = saved.iter().map(|&s| one(|x| x.push(s))).collect();
    setup.push(one(|x| x.lea(esp, ptr(esp - FRAME))));
    setup.push(one(|x| x.mov(eax, dword_ptr(esp + arg))));
    let imm = r.interesting_u32() as i32;
    setup.push(one(|x| x.mov(edx, imm)));
    let turns = 1 + r.below(255) as i32;
    setup.push(one(|x| x.mov(cl, turns)));
    for &d in &words {
        let imm = r.interesting_u32() as i32;
        setup.push(one(|x| x.mov(dword_ptr(esp + d), imm)));
    }
    for &b in &bytes {
        let imm = r.interesting_u32() as i32 & 0xff;
        setup.push(one(|x| x.mov(byte_ptr(esp + b), imm)));
    }
    let mut body = Vec::new();
    for _ in 0..r.range(1, 6) {
        let d = *r.choose(&words);
        let imm = *r.choose(&[1, 3, 7, 0x80, -1]);
        body.push(match (bytes.is_empty(), r.below(9)) {
            (false, 0) => one(|x| x.inc(byte_ptr(esp + *r.choose(&bytes)))),
            (false, 1) => one(|x| x.add(byte_ptr(esp + *r.choose(&bytes)), imm & 0xff)),
            (_, 2) => one(|x| x.add(dword_ptr(esp + d), eax)),
            (_, 3) => one(|x| x.add(eax, dword_ptr(esp + d))),
            (_, 4) => one(|x| x.xor(dword_ptr(esp + d), edx)),
            (_, 5) => one(|x| x.add(eax, dword_ptr(esp + arg))),
            (_, 6) if !saved.is_empty() && r.coin() => one(|x| x.add(saved[0], eax)),
            (_, 6) => one(|x| x.mov(dword_ptr(GLOBAL + 4 * r.below(8)), eax)),
            _ => one(|x| x.sub(dword_ptr(esp + d), imm)),
        });
    }
    body.push(one(|x| x.dec(cl)));
    let mut exit = Vec::new();
    for &d in &words {
        exit.push(one(|x| x.add(eax, dword_ptr(esp + d))));
    }
    for &b in &bytes {
        exit.push(one(|x| x.movzx(ecx, byte_ptr(esp + b))));
        exit.push(one(|x| x.add(edx, ecx)));
    }
    for (k, &s) in saved.iter().enumerate() {
        let at = FRAME + 4 * (n - 1 - k as i32);
        exit.push(one(|x| x.mov(s, dword_ptr(esp + at))));
    }
    exit.push(one(|x| x.lea(esp, ptr(esp + FRAME + 4 * n))));
    exit.push(one(|x| x.ret()));
    self_loop_function(r, setup, body, (exit, Terminator::Exit), Vec::new())
}

#[test]
fn borrowed_saved_registers_agree_with_the_processor() {
    let mut rng = Rng::new(0xb0_4404);
    let mut changes = Changes::new();
    let (mut promoted, mut before, mut after) = (0, 0, 0);
    for case in 0..cases(200) {
        let original = random_crowded_loop_function(&mut rng);
        let (stats, _) = optimize_counted(&mut rng, case, &original, &mut changes);
        promoted += stats.promoted_slots;
        before += stats.items_before;
        after += stats.items_after;
    }
    eprintln!("{promoted} slots promoted, {before} -> {after} items");
    // observed on 2026-12-04: borrow 185, promote 1164, pushed 44 (the
    // borrowed registers given back when a scratch register is free); on
    // 2026-12-05 widen 196 (byte moves into registers whose upper bits are
    // dead; a widening that ignores a read of them fails 6 to 8 of the
    // processor tests, checked)
    passes_fired(
        &changes,
        &[
            ("borrow", 157),
            ("promote", 989),
            ("pushed", 37),
            ("widen", 167),
        ],
    );
}

/// Stack traffic as the specializer leaves it, each sequence leaving the
/// stack pointer where it found it: values passed through the stack
/// (`push r; pop s`, `lea esp,[esp-8]; mov [esp],r; pop s; lea esp,[esp+4]`),
/// chains of adjustments around instructions that do not touch the stack
/// (or do: a near miss), and near misses of the round trips (a second
/// store between the store and the `pop`, an instruction between the
/// `push` and the `pop`), and a save whose word is read back before its
/// `pop`. Nothing reads the stack below where it was written (the
/// specializer never does). Otherwise a random instruction.
fn stack_shape(r: &mut Rng, saved: i32) -> Vec<Instruction> {
    let (a, b) = (reg(r), reg(r));
    let k = 4 * r.range(1, 4) as i32;
    match r.below(6) {
        0 => vec![one(|x| x.push(a)), one(|x| x.pop(b))],
        1 => vec![
            one(|x| x.lea(esp, ptr(esp - 8))),
            one(|x| x.mov(dword_ptr(esp), a)),
            one(|x| x.pop(b)),
            one(|x| x.lea(esp, ptr(esp + 4))),
        ],
        2 => {
            let middle = if r.coin() {
                one(|x| x.add(a, b)) // independent of the stack
            } else {
                one(|x| x.mov(a, dword_ptr(esp + k))) // reads it
            };
            vec![
                one(|x| x.lea(esp, ptr(esp - k))),
                middle,
                one(|x| x.lea(esp, ptr(esp + k))),
            ]
        }
        3 => {
            let c = reg(r);
            vec![
                one(|x| x.lea(esp, ptr(esp - 8))),
                one(|x| x.mov(dword_ptr(esp), a)),
                one(|x| x.mov(dword_ptr(esp + 4), b)),
                one(|x| x.pop(c)),
                one(|x| x.pop(a)),
            ]
        }
        4 if r.coin() => vec![one(|x| x.push(a)), one(|x| x.inc(b)), one(|x| x.pop(b))],
        // A save whose word is read back while it is on the stack.
        4 => {
            let c = reg_except(r, &[a, esp]);
            vec![
                one(|x| x.push(a)),
                one(|x| x.mov(c, dword_ptr(esp))),
                one(|x| x.pop(a)),
            ]
        }
        _ => random_instruction(r, saved),
    }
}

#[test]
fn stack_traffic_agrees_with_the_processor() {
    let mut rng = Rng::new(0x57_ac4);
    let mut changes = Changes::new();
    for case in 0..cases(200) {
        let original = random_function(&mut rng, stack_shape);
        optimize_counted(&mut rng, case, &original, &mut changes);
    }
    // observed on 2026-12-04: stack 204; on 2026-12-05, with saves whose
    // word is read back added to the shapes, stack 271 and saves 65 (a
    // save around a few instructions; not lowering the `[esp+d]` operands
    // between, renaming to a register that is read afterwards, or taking
    // a save whose word is read fails the processor check, checked; the
    // last also found `pushed` dropping such a save)
    passes_fired(&changes, &[("stack", 217), ("saves", 52)]);
}

/// One step of a register shuffle over the registers `pool` (for the
/// recompaction of moves): a copy, a swap, a rotation through a temporary,
/// a sum, difference or offset, an increment, or an operation the
/// recompaction does not interpret (`imul`, `and`, `xor`, `shr`) on a copy
/// of a register that is then moved back. With `flags_free` false only
/// flag-free steps (`mov`, `xchg`, `lea`), so that flags live across the
/// shuffle survive it.
fn shuffle_step(r: &mut Rng, pool: &[AsmRegister32], flags_free: bool) -> Vec<Instruction> {
    let (a, b, c) = (*r.choose(pool), *r.choose(pool), *r.choose(pool));
    let imm = r.range(0, 20) as i32 - 4;
    let kind = if flags_free { r.below(10) } else { r.below(5) };
    match kind {
        0 => vec![one(|x| x.mov(a, b))],
        1 => vec![one(|x| x.xchg(a, b))],
        2 => vec![
            one(|x| x.mov(c, a)),
            one(|x| x.mov(a, b)),
            one(|x| x.mov(b, c)),
        ],
        3 => vec![one(|x| x.lea(a, ptr(b + c + imm)))],
        4 => vec![one(|x| x.lea(a, ptr(b + imm)))],
        5 => vec![one(|x| x.add(a, b))],
        6 => vec![one(|x| x.sub(a, b))],
        7 => vec![if r.coin() {
            one(|x| x.inc(a))
        } else {
            one(|x| x.dec(a))
        }],
        _ => {
            let op = match r.below(4) {
                0 => one(|x| x.imul_2(c, b)),
                1 => one(|x| x.and(c, imm)),
                2 => one(|x| x.xor(c, b)),
                _ => one(|x| x.shr(c, r.range(1, 31))),
            };
            vec![one(|x| x.mov(c, a)), op, one(|x| x.mov(a, c))]
        }
    }
}

/// A register shuffle of a few steps ([`shuffle_step`]), as the
/// specializer leaves between the blocks of an interpreter; now and then
/// with the flags of a `cmp` before it read after it (flags live across
/// the shuffle), or with `ecx` read after it (every register live: no
/// scratch register).
fn shuffle_shape(r: &mut Rng, _saved: i32) -> Vec<Instruction> {
    let pool = registers();
    let live_flags = r.below(4) == 0;
    let mut out = Vec::new();
    if live_flags {
        let (a, b) = (reg(r), reg(r));
        out.push(one(|x| x.cmp(a, b)));
    }
    for _ in 0..r.range(2, 7) {
        out.extend(shuffle_step(r, &pool, !live_flags));
    }
    if live_flags {
        out.push(flag_reader(r, true));
    }
    if r.below(3) == 0 {
        out.push(one(|x| x.add(eax, ecx)));
    }
    out
}

/// A rotated loop as the specializer leaves an interpreter's loop: a setup
/// block that sets a counter `k` to 1..8 and jumps to the header (label
/// 5); a body (label 1) that steps `k` down, shuffles the other registers
/// and jumps to the header; a small header that shuffles some more and
/// branches back to the body while `k` (or a copy of it) is not zero; an
/// exit that may read `ecx` or the flags of the test.
fn random_shuffle_loop(r: &mut Rng) -> Residual {
    let o = Origin::Original(0);
    let k = reg(r);
    let pool: Vec<AsmRegister32> = registers().into_iter().filter(|&x| x != k).collect();
    let mut setup = vec![one(|x| x.and(k, 7)), one(|x| x.inc(k))];
    for _ in 0..r.below(3) {
        setup.extend(shuffle_step(r, &pool, true));
    }
    let mut body = vec![one(|x| x.dec(k))];
    for _ in 0..r.range(1, 5) {
        body.extend(shuffle_step(r, &pool, true));
    }
    let mut header = Vec::new();
    for _ in 0..r.below(3) {
        header.extend(shuffle_step(r, &pool, true));
    }
    if r.coin() {
        let t = *r.choose(&pool);
        header.push(one(|x| x.mov(t, k)));
        header.push(one(|x| x.test(t, t)));
    } else {
        header.push(one(|x| x.test(k, k)));
    }
    let mut exit = Vec::new();
    if r.coin() {
        exit.push(one(|x| x.add(eax, ecx)));
    }
    if r.below(3) == 0 {
        exit.push(flag_reader(r, true));
    }
    exit.push(one(|x| x.ret()));
    let block = |label: u32, items: Vec<Instruction>, terminator| Block {
        label: Label(label),
        items: instrs(items),
        terminator,
    };
    let back = Terminator::Branch {
        cc: ConditionCode::ne,
        taken: Label(1),
        not_taken: Label(2),
        origin: o,
    };
    Residual {
        entry: Some(Label(0)),
        blocks: vec![
            block(0, setup, Terminator::Jump(Label(5), o)),
            block(1, body, Terminator::Jump(Label(5), o)),
            block(5, header, back),
            block(2, exit, Terminator::Exit),
        ],
        data: Vec::new(),
        data_vaddr: 0,
        edx_dead_at_return: false,
    }
}

/// Functions of register shuffles ([`shuffle_shape`]): permutation
/// cycles, cycles with computed values and opaque operations, flags live
/// across them or dead, every register live or a scratch register free.
#[test]
fn recompacted_moves_agree_with_the_processor() {
    let mut rng = Rng::new(0x5_4ff1e);
    let mut changes = Changes::new();
    let (mut runs, mut before, mut after) = (0, 0, 0);
    for case in 0..cases(200) {
        let original = random_function(&mut rng, shuffle_shape);
        let (stats, _) = optimize_counted(&mut rng, case, &original, &mut changes);
        runs += stats.recompacted_runs;
        before += stats.items_before;
        after += stats.items_after;
    }
    eprintln!("{runs} runs recompacted, {before} -> {after} items");
    // observed on 2026-12-04: moves 155, 336 runs, 18780 -> 8390 items
    passes_fired(&changes, &[("moves", 132)]);
    at_least("runs recompacted", runs, 285);
    at_least("items removed", before - after, 8830);
}

/// Rotated loops of register shuffles ([`random_shuffle_loop`]): the
/// header is copied into the body where that pays, and the one-block loop
/// recompacted.
#[test]
fn duplicated_loop_headers_agree_with_the_processor() {
    let mut rng = Rng::new(0x07a1_1d0b);
    let mut changes = Changes::new();
    let (mut copied, mut runs, mut self_loops) = (0, 0, 0);
    for case in 0..cases(200) {
        let original = random_shuffle_loop(&mut rng);
        let (stats, optimized) = optimize_counted(&mut rng, case, &original, &mut changes);
        copied += stats.duplicated_headers;
        runs += stats.recompacted_runs;
        self_loops += usize::from(has_self_loop(&optimized));
    }
    eprintln!("{copied} headers copied, {runs} runs recompacted, {self_loops} self-loops left");
    // observed on 2026-12-04: tails 95, moves 126; 95 headers copied, 185
    // runs recompacted, 95 self-loops left; on 2026-12-05 sink 57 (values
    // a copied header computes for one of its exits; a sink that ignores
    // a later read or a second way into the target fails 8 and 13 of the
    // processor tests, checked)
    passes_fired(&changes, &[("tails", 80), ("moves", 107), ("sink", 46)]);
    at_least("headers copied", copied, 80);
    at_least("runs recompacted", runs, 157);
    at_least("self-loops", self_loops, 80);
}

/// A branch around setting a register to the value it was compared with
/// (`cmp r,k; je L2`, L1: `mov r,k`, L2), which the known-values rewrite
/// makes the move alone, and its near misses: another value or register
/// in the arm, a second instruction there, the compare's flags read at
/// the join, a compare of another width.
fn guarded_set_function(r: &mut Rng) -> Residual {
    let o = Origin::Original(0);
    let mut setup = vec![one(|x| x.lea(esp, ptr(esp - FRAME)))];
    for _ in 0..r.range(1, 4) {
        setup.extend(random_instruction(r, 0));
    }
    let (w, w8) = reg_with_low(r);
    let byte = r.coin();
    let k = if r.coin() {
        r.interesting_u32()
    } else {
        r.below(3)
    };
    let k = if byte { k & 0xff } else { k };
    setup.push(match (byte, k == 0 && r.coin()) {
        (true, true) => one(|x| x.test(w8, w8)),
        (true, false) => one(|x| x.cmp(w8, k as i32)),
        (false, true) => one(|x| x.test(w, w)),
        (false, false) => one(|x| x.cmp(w, k as i32)),
    });
    let value = if r.below(4) == 0 {
        k.wrapping_add(1)
    } else {
        k
    };
    let (other, other8) = reg_with_low(r);
    let mut arm = vec![match (byte, r.below(4) == 0) {
        (true, false) => one(|x| x.mov(w8, value & 0xff)),
        (true, true) => one(|x| x.mov(other8, value & 0xff)),
        (false, false) => one(|x| x.mov(w, value as i32)),
        (false, true) => one(|x| x.mov(other, value as i32)),
    }];
    if r.below(4) == 0 {
        arm.push(one(|x| x.inc(other)));
    }
    let mut join = Vec::new();
    if r.below(3) == 0 {
        join.push(flag_reader(r, true));
    }
    for _ in 0..r.range(0, 3) {
        join.extend(random_instruction(r, 0));
    }
    join.push(one(|x| x.lea(esp, ptr(esp + FRAME))));
    join.push(one(|x| x.ret()));
    let (cc, taken, not_taken) = if r.coin() {
        (ConditionCode::e, Label(2), Label(1))
    } else {
        (ConditionCode::ne, Label(1), Label(2))
    };
    let block = |label, items, terminator| Block {
        label: Label(label),
        items: instrs(items),
        terminator,
    };
    Residual {
        entry: Some(Label(0)),
        blocks: vec![
            block(
                0,
                setup,
                Terminator::Branch {
                    cc,
                    taken,
                    not_taken,
                    origin: o,
                },
            ),
            block(1, arm, Terminator::Jump(Label(2), o)),
            block(2, join, Terminator::Exit),
        ],
        data: Vec::new(),
        data_vaddr: 0,
        edx_dead_at_return: false,
    }
}

#[test]
fn guarded_sets_agree_with_the_processor() {
    let changes = changes_over(0x6a_4d5e7, guarded_set_function);
    // observed on 2026-12-04: known_values 55 (of 200 cases; the others
    // are near misses or decided before)
    passes_fired(&changes, &[("known_values", 47)]);
}

/// A zero test whose two arms join at a block that tests the same again
/// (what closing an interpreter's loops leaves: `if (c) ...; while (c)`):
/// a setup ending in a zero test of a register or of a global byte in
/// memory, two arms that store to memory or set other registers, and a
/// join of up to five items that repeats the test (through a register
/// loaded from the byte) and branches to two exits. Near misses: an arm
/// that changes the tested register or stores to the tested byte, a join
/// that changes the register before its test or tests it at another
/// width, a join too long to copy.
fn rejoined_test_function(r: &mut Rng) -> Residual {
    let o = Origin::Original(0);
    let mut setup = vec![one(|x| x.lea(esp, ptr(esp - FRAME)))];
    for _ in 0..r.range(1, 4) {
        setup.extend(random_instruction(r, 0));
    }
    let (w, w8) = reg_with_low(r);
    let byte = byte_ptr(GLOBAL + r.below(4));
    let in_memory = r.below(3) == 0;
    setup.push(if in_memory {
        one(|x| x.cmp(byte, 0))
    } else if r.coin() {
        one(|x| x.test(w, w))
    } else {
        one(|x| x.cmp(w, 0))
    });
    let other = reg_except(r, &[w, esp]);
    let arm = |r: &mut Rng| -> Vec<Instruction> {
        let imm = r.interesting_u32() as i32;
        match r.below(8) {
            0 if in_memory => vec![one(|x| x.mov(byte, imm & 0xff))],
            0 => vec![one(|x| x.add(w, 1))],
            1 | 2 => vec![one(|x| x.mov(dword_ptr(GLOBAL + 4 + 4 * r.below(4)), imm))],
            _ => vec![one(|x| x.mov(other, imm))],
        }
    };
    let (left, right) = (arm(r), arm(r));
    let mut join = Vec::new();
    for _ in 0..r.range(0, 3) {
        let imm = r.interesting_u32() as i32;
        join.push(one(|x| x.mov(dword_ptr(GLOBAL + 4 + 4 * r.below(4)), imm)));
    }
    if r.below(6) == 0 {
        join.push(one(|x| x.inc(w)));
    }
    let (t, t8) = if in_memory { reg_with_low(r) } else { (w, w8) };
    if in_memory {
        join.push(one(|x| x.movzx(t, byte)));
    }
    join.push(match r.below(6) {
        0 => one(|x| x.test(t8, t8)),
        _ => one(|x| x.test(t, t)),
    });
    let cc = |r: &mut Rng| *r.choose(&[ConditionCode::e, ConditionCode::ne]);
    let exit = |r: &mut Rng, k: i32| {
        let mut items = vec![one(|x| x.mov(dword_ptr(GLOBAL + 20), k))];
        items.extend(random_instruction(r, 0));
        // a byte loaded and extended again (zero or sign), then stored
        let (a, a8) = reg_with_low(r);
        let b = reg_except(r, &[a, esp]);
        let m8 = byte_ptr(GLOBAL + r.below(4));
        items.push(one(|x| x.movzx(a, m8)));
        items.push(match r.below(3) {
            0 => one(|x| x.movsx(b, a8)),
            _ => one(|x| x.movzx(b, a8)),
        });
        items.push(one(|x| x.mov(dword_ptr(GLOBAL + 24), b)));
        items.push(one(|x| x.lea(esp, ptr(esp + FRAME))));
        items.push(one(|x| x.ret()));
        items
    };
    let (e1, e2) = (exit(r, 1), exit(r, 2));
    let block = |label, items, terminator| Block {
        label: Label(label),
        items: instrs(items),
        terminator,
    };
    let branch = |cc, taken, not_taken| Terminator::Branch {
        cc,
        taken: Label(taken),
        not_taken: Label(not_taken),
        origin: o,
    };
    Residual {
        entry: Some(Label(0)),
        blocks: vec![
            block(0, setup, branch(cc(r), 1, 2)),
            block(1, left, Terminator::Jump(Label(3), o)),
            block(2, right, Terminator::Jump(Label(3), o)),
            block(3, join, branch(cc(r), 4, 5)),
            block(4, e1, Terminator::Exit),
            block(5, e2, Terminator::Exit),
        ],
        data: Vec::new(),
        data_vaddr: 0,
        edx_dead_at_return: false,
    }
}

/// A zero test (of a register, or of a global byte in memory, made 0 or
/// 1 first so that both edges run) whose nonzero edge leads to a block
/// that compares the same value (the register, or the byte loaded into a
/// register) with a constant and branches, one of its targets the zero
/// edge's block (`if (c == 0) goto out; if (c != 'z') goto out;`). Near
/// misses: the constant 0, conditions other than `je`/`jne` (decided or
/// not by a zero value), a compare of another byte, a compare block that
/// writes a register the zero target reads, changes the value first or
/// reads the carry the zero test left.
fn compared_after_zero_test_function(r: &mut Rng) -> Residual {
    let o = Origin::Original(0);
    let mut setup = vec![one(|x| x.lea(esp, ptr(esp - FRAME)))];
    for _ in 0..r.range(0, 3) {
        setup.extend(random_instruction(r, 0));
    }
    let (w, w8) = reg_with_low(r);
    let k = r.below(4);
    let byte = byte_ptr(GLOBAL + k);
    let in_memory = r.coin();
    let read_by_exit = reg_except(r, &[w, esp]);
    // Flags unlike the zero test's before it (from an `add` whose result
    // the exits store), for a compare block that reads the carry (a near
    // miss).
    let other_flags = one(|x| x.add(read_by_exit, 0x8000_0000u32 as i32));
    if in_memory {
        setup.push(one(|x| x.and(byte, 1)));
        setup.push(other_flags);
        setup.push(one(|x| x.cmp(byte, 0)));
    } else {
        setup.push(one(|x| x.and(w, 0x100 | r.below(2))));
        setup.push(other_flags);
        setup.push(match r.below(3) {
            0 => one(|x| x.test(w8, w8)),
            1 => one(|x| x.cmp(w, 0)),
            _ => one(|x| x.test(w, w)),
        });
    }
    let mut compare = Vec::new();
    if r.below(5) == 0 {
        compare.push(one(|x| x.mov(read_by_exit, 7)));
    }
    if r.below(6) == 0 {
        compare.push(one(|x| x.dec(w)));
    }
    let (t, t8) = if in_memory { reg_with_low(r) } else { (w, w8) };
    // `ecx` is read by the other exit only.
    if w != ecx && t != ecx && read_by_exit != ecx && r.coin() {
        compare.push(one(|x| x.setb(cl)));
    }
    if in_memory {
        let m = if r.below(5) == 0 {
            byte_ptr(GLOBAL + (k + 1) % 4)
        } else {
            byte
        };
        compare.push(match r.below(3) {
            0 => one(|x| x.movsx(t, m)),
            _ => one(|x| x.movzx(t, m)),
        });
    }
    let imm = *r.choose(&[0, 0x7a, 0x61, 1, 0xff, 0x80]);
    compare.push(if r.coin() {
        one(|x| x.cmp(t8, imm))
    } else {
        one(|x| x.cmp(t, imm))
    });
    use ConditionCode as C;
    let cc2 = *r.choose(&[C::e, C::ne, C::e, C::ne, C::b, C::a, C::l, C::g, C::s]);
    let exit = |r: &mut Rng, k: i32| {
        let mut items = vec![one(|x| x.mov(dword_ptr(GLOBAL + 20), k))];
        items.push(one(|x| x.mov(dword_ptr(GLOBAL + 24), read_by_exit)));
        items.extend(random_instruction(r, 0));
        items.push(one(|x| x.lea(esp, ptr(esp + FRAME))));
        items.push(one(|x| x.ret()));
        items
    };
    let (out, mut other) = (exit(r, 1), exit(r, 2));
    other.insert(0, one(|x| x.mov(dword_ptr(GLOBAL + 28), ecx)));
    let block = |label, items, terminator| Block {
        label: Label(label),
        items: instrs(items),
        terminator,
    };
    let branch = |cc, taken, not_taken| Terminator::Branch {
        cc,
        taken: Label(taken),
        not_taken: Label(not_taken),
        origin: o,
    };
    let first = if r.coin() {
        branch(C::e, 2, 1)
    } else {
        branch(C::ne, 1, 2)
    };
    let second = if r.coin() {
        branch(cc2, 2, 3)
    } else {
        branch(cc2, 3, 2)
    };
    Residual {
        entry: Some(Label(0)),
        blocks: vec![
            block(0, setup, first),
            block(1, compare, second),
            block(2, out, Terminator::Exit),
            block(3, other, Terminator::Exit),
        ],
        data: Vec::new(),
        data_vaddr: 0,
        edx_dead_at_return: false,
    }
}

#[test]
fn zero_tests_before_compares_agree_with_the_processor() {
    let changes = changes_over(0x050b_50ed, compared_after_zero_test_function);
    // observed on 2026-12-05: subsumed 20 (of 200 cases; the others are
    // near misses). A drop that ignores what the zero target reads, takes
    // a compare that goes elsewhere, or lets the compare block read the
    // test's flags fails the processor check (checked).
    passes_fired(&changes, &[("subsumed", 16)]);
}

/// A condition turned into a byte (`setCC`), perhaps extended into its
/// register, and tested against zero by the block's branch, with items
/// between that store to memory or set another register. Near misses: an
/// item between that writes the flags or the register, an exit that reads
/// the register or the flags (`adc`), an extension of another byte.
fn condition_value_test_function(r: &mut Rng) -> Residual {
    use ConditionCode as C;
    let o = Origin::Original(0);
    let mut setup = vec![one(|x| x.lea(esp, ptr(esp - FRAME)))];
    for _ in 0..r.range(0, 3) {
        setup.extend(random_instruction(r, 0));
    }
    let (w, w8) = reg_with_low(r);
    let (a, b) = (reg_except(r, &[esp]), reg_except(r, &[esp]));
    let imm = r.interesting_u32() as i32;
    setup.push(if r.coin() {
        one(|x| x.cmp(a, b))
    } else {
        one(|x| x.cmp(a, imm))
    });
    let cc = *r.choose(&[
        C::e,
        C::ne,
        C::b,
        C::ae,
        C::be,
        C::a,
        C::l,
        C::ge,
        C::le,
        C::g,
        C::s,
        C::o,
        C::p,
    ]);
    setup.push(Instruction::with1(set_code(cc), Register::from(w8)).expect("setCC"));
    let extended = r.below(3) != 0;
    if extended {
        let v8 = if r.below(6) == 0 {
            reg_with_low(r).1
        } else {
            w8
        };
        setup.push(match r.coin() {
            true => one(|x| x.movzx(w, v8)),
            false => one(|x| x.movsx(w, v8)),
        });
    }
    let other = reg_except(r, &[w, esp]);
    match r.below(6) {
        0 => setup.push(one(|x| x.add(other, 3))),
        1 => setup.push(one(|x| x.inc(w))),
        2 | 3 => setup.push(one(|x| x.mov(dword_ptr(GLOBAL + 4 * r.below(4)), other))),
        _ => {}
    }
    setup.push(match (extended, r.below(3)) {
        (true, 0) => one(|x| x.cmp(w, 0)),
        (true, _) => one(|x| x.test(w, w)),
        (false, 0) => one(|x| x.cmp(w8, 0)),
        (false, _) => one(|x| x.test(w8, w8)),
    });
    let exit = |r: &mut Rng, k: i32| {
        let mut items = vec![one(|x| x.mov(dword_ptr(GLOBAL + 20), k))];
        match r.below(6) {
            0 => items.push(one(|x| x.mov(dword_ptr(GLOBAL + 24), w))),
            1 => items.push(one(|x| x.adc(dword_ptr(GLOBAL + 24), 0))),
            _ => {}
        }
        items.extend(random_instruction(r, 0));
        items.push(one(|x| x.lea(esp, ptr(esp + FRAME))));
        items.push(one(|x| x.ret()));
        items
    };
    let (e1, e2) = (exit(r, 1), exit(r, 2));
    let block = |label, items, terminator| Block {
        label: Label(label),
        items: instrs(items),
        terminator,
    };
    Residual {
        entry: Some(Label(0)),
        blocks: vec![
            block(
                0,
                setup,
                Terminator::Branch {
                    cc: *r.choose(&[C::e, C::ne]),
                    taken: Label(1),
                    not_taken: Label(2),
                    origin: o,
                },
            ),
            block(1, e1, Terminator::Exit),
            block(2, e2, Terminator::Exit),
        ],
        data: Vec::new(),
        data_vaddr: 0,
        edx_dead_at_return: false,
    }
}

/// The `setCC r/m8` code of condition `cc`.
fn set_code(cc: ConditionCode) -> Code {
    use ConditionCode as C;
    match cc {
        C::o => Code::Seto_rm8,
        C::no => Code::Setno_rm8,
        C::b => Code::Setb_rm8,
        C::ae => Code::Setae_rm8,
        C::e => Code::Sete_rm8,
        C::ne => Code::Setne_rm8,
        C::be => Code::Setbe_rm8,
        C::a => Code::Seta_rm8,
        C::s => Code::Sets_rm8,
        C::ns => Code::Setns_rm8,
        C::p => Code::Setp_rm8,
        C::np => Code::Setnp_rm8,
        C::l => Code::Setl_rm8,
        C::ge => Code::Setge_rm8,
        C::le => Code::Setle_rm8,
        C::g | C::None => Code::Setg_rm8,
    }
}

#[test]
fn tested_condition_values_agree_with_the_processor() {
    let changes = changes_over(0x5e7_7e57, condition_value_test_function);
    // observed on 2026-12-05: settest 16 (of 200 cases; the others are
    // near misses or lose the `setCC` as dead code first). A fold that
    // ignores the register or the flags read after the branch, keeps the
    // condition for `je`, or lets an item between write the flags fails
    // the processor check (checked).
    passes_fired(&changes, &[("settest", 13)]);
}

/// Saves that one arm of a branch undoes at once (an inlined callee's
/// entry): two blocks that push the same registers and jump to a block
/// that compares and branches; one arm pops them straight away, the other
/// reads a pushed word and pops them later. Near misses: pushes that
/// differ between the two ways in, a compare block that changes a pushed
/// register, pops in the other order.
fn undone_saves_function(r: &mut Rng) -> Residual {
    let o = Origin::Original(0);
    let mut setup = vec![one(|x| x.lea(esp, ptr(esp - FRAME)))];
    for _ in 0..r.range(0, 3) {
        setup.extend(random_instruction(r, 0));
    }
    setup.push(one(|x| x.test(eax, eax)));
    let r1 = reg_except(r, &[esp]);
    let r2 = reg_except(r, &[esp, r1]);
    let other = if r.below(6) == 0 {
        reg_except(r, &[esp, r1])
    } else {
        r2
    };
    let way_in = |r: &mut Rng, second: AsmRegister32| {
        let mut items = random_instruction(r, 0);
        items.push(one(|x| x.push(r1)));
        items.push(one(|x| x.push(second)));
        items
    };
    let (in1, in2) = (way_in(r, r2), way_in(r, other));
    let mut compare = Vec::new();
    if r.below(6) == 0 {
        compare.push(one(|x| x.inc(r1)));
    }
    let c = reg_except(r, &[esp]);
    let imm = r.interesting_u32() as i32;
    compare.push(one(|x| x.cmp(c, imm)));
    let swapped = r.below(6) == 0;
    let pops = |items: &mut Vec<Instruction>| {
        if swapped {
            items.push(one(|x| x.pop(r1)));
            items.push(one(|x| x.pop(r2)));
        } else {
            items.push(one(|x| x.pop(r2)));
            items.push(one(|x| x.pop(r1)));
        }
    };
    let exit = |items: &mut Vec<Instruction>, k: i32| {
        items.push(one(|x| x.mov(dword_ptr(GLOBAL + 20), k)));
        items.push(one(|x| x.mov(dword_ptr(GLOBAL + 24), r1)));
        items.push(one(|x| x.mov(dword_ptr(GLOBAL + 28), r2)));
        items.push(one(|x| x.lea(esp, ptr(esp + FRAME))));
        items.push(one(|x| x.ret()));
    };
    let mut undo = Vec::new();
    pops(&mut undo);
    exit(&mut undo, 1);
    let mut keep = vec![one(|x| x.mov(dword_ptr(GLOBAL + 16), r2))];
    let y = reg_except(r, &[esp, r1, r2]);
    keep.push(one(|x| x.mov(y, dword_ptr(esp + 4))));
    keep.push(one(|x| x.add(dword_ptr(GLOBAL + 32), y)));
    pops(&mut keep);
    exit(&mut keep, 2);
    use ConditionCode as C;
    let block = |label, items, terminator| Block {
        label: Label(label),
        items: instrs(items),
        terminator,
    };
    let branch = |cc, taken, not_taken| Terminator::Branch {
        cc,
        taken: Label(taken),
        not_taken: Label(not_taken),
        origin: o,
    };
    let cc = *r.choose(&[C::e, C::ne, C::l, C::b]);
    let mut blocks = vec![
        block(0, setup, branch(C::e, 1, 2)),
        block(1, in1, Terminator::Jump(Label(3), o)),
        block(2, in2, Terminator::Jump(Label(3), o)),
        block(3, compare, branch(cc, 4, 5)),
        block(4, undo, Terminator::Exit),
        block(5, keep, Terminator::Exit),
    ];
    if r.coin() {
        blocks[3].terminator = branch(cc, 5, 4);
    }
    Residual {
        entry: Some(Label(0)),
        blocks,
        data: Vec::new(),
        data_vaddr: 0,
        edx_dead_at_return: false,
    }
}

#[test]
fn undone_saves_agree_with_the_processor() {
    let changes = changes_over(0x0005_a7e5, undone_saves_function);
    // observed on 2026-12-05: pushes 177 (joins and sinks), saves 142. A
    // sink that ignores a compare block writing a pushed register, pops in
    // the other order, or a join of pushes that differ fails the processor
    // check (checked). The generator has no arm with another way in, so a
    // sink into such an arm is not caught here (docs/reliability.md).
    passes_fired(&changes, &[("pushes", 141), ("saves", 113)]);
}

#[test]
fn threaded_repeated_tests_agree_with_the_processor() {
    let changes = changes_over(0x7e_5a7ed, rejoined_test_function);
    // observed on 2026-12-05: threads 82 (of 200 cases; the others are
    // near misses), peephole 141 (the exits' bytes loaded and extended
    // again). A threaded jump that ignores a changed register or takes the
    // other side, and a reload that zero-extends where `movsx` was asked,
    // fail the processor check (checked).
    passes_fired(&changes, &[("threads", 70), ("peephole", 120)]);
}
