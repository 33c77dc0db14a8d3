//! The one instruction generator: random instances of instruction forms
//! (iced `Code`s), for the generated table and every test that needs
//! instructions. CPU states for an instance are layered on top of it (the
//! conformance suite places them in the processor oracle's window).
//!
//! An [`Instance`] fixes one instruction, built from the form's iced
//! `OpCodeInfo` operand kinds and encoded at the [`Placement`]'s address
//! (then decoded back, and rejected unless it decodes to the same form):
//! random registers (all eight, `esp`/`ebp` and the byte registers `ah`..`bh`
//! included; `xmm0`..`xmm7` for SSE forms), register or memory for `r/m` operands (half each), memory
//! operands of every shape (absolute, base, base+disp8/disp32,
//! base+index*scale(+disp), index*scale+disp32, base = index; an `esp` base
//! with a small displacement; one in eight through `gs` or `fs`), immediates with edge values, branch targets
//! the placement accepts (`rel8` targets within reach on both sides, `rel32`
//! anywhere it says), string forms with no prefix, `rep`, or (`cmps`/`scas`)
//! `repne`, and `int 0x80`. Instance `nth` of a form
//! ([`Instance::generate`]) takes the `nth` of its [`edge_immediates`] (0, 1,
//! all ones, both sides of the sign boundary; shift counts 0, 1, width-1,
//! width, 32 and more) while there are any.
//!
//! All randomness comes from the machine model's one generator,
//! [`wiper_x86::Rng`].

use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, Formatter, Instruction, MemoryOperand, Mnemonic,
    NasmFormatter, OpCodeOperandKind as K, Register, RepPrefixKind,
};
use wiper_x86::{Rng, GPR16 as R16, GPR32 as R32, GPR8 as R8};

/// The SSE registers of 32-bit code (for opaque forms).
const XMM: [Register; 8] = [
    Register::XMM0,
    Register::XMM1,
    Register::XMM2,
    Register::XMM3,
    Register::XMM4,
    Register::XMM5,
    Register::XMM6,
    Register::XMM7,
];

/// Shift and rotate counts worth testing (masked to 5 bits by the processor).
pub const COUNTS: [u32; 16] = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 255];

/// Where generated instructions live: the address they are encoded at, the
/// data their absolute memory operands address and the targets their
/// branches may take.
pub trait Placement {
    /// The address instances are encoded (and decoded) at.
    fn ip(&self) -> u32;
    /// An absolute address for a memory operand of `size` bytes.
    fn data(&self, rng: &mut Rng, size: u32) -> u32;
    /// A target for a `rel32` branch.
    fn far_target(&self, rng: &mut Rng) -> u32;
    /// Whether a `rel8` branch of `len` bytes may target `target`.
    fn near_target(&self, target: u32, len: u32) -> bool;
    /// The base address of segment `fs` or `gs` where the instances run
    /// (absolute memory operands through them are offsets from it).
    fn segment_base(&self, segment: Register) -> u32;
}

/// A placement at an address and nowhere in particular: absolute addresses
/// and `rel32` targets are uniform, every `rel8` target is accepted. For
/// instructions that are lifted but not run.
#[derive(Clone, Copy, Debug)]
pub struct At(pub u32);

impl Placement for At {
    fn ip(&self) -> u32 {
        self.0
    }

    fn data(&self, rng: &mut Rng, _size: u32) -> u32 {
        rng.next_u32()
    }

    fn far_target(&self, rng: &mut Rng) -> u32 {
        rng.next_u32()
    }

    fn near_target(&self, _target: u32, _len: u32) -> bool {
        true
    }

    fn segment_base(&self, _segment: Register) -> u32 {
        0
    }
}

/// One generated instruction.
#[derive(Clone, Debug)]
pub struct Instance {
    /// The form asked for.
    pub code: Code,
    /// The instruction as decoded from [`Self::bytes`] at the placement's
    /// address.
    pub ins: Instruction,
    /// Its encoding.
    pub bytes: Vec<u8>,
    /// NASM text, for messages.
    pub text: String,
    /// Position of the instance among its form's instances: the first
    /// [`edge_count`] take the edge immediates in turn.
    pub nth: usize,
}

/// A random instance of `code` at `ip` for code that is only lifted
/// ([`At`]), with random immediates; tries until one encodes to `code`.
///
/// # Panics
/// If no instance of `code` can be made (the form is not generated).
pub fn instance(code: Code, ip: u32, rng: &mut Rng) -> Instruction {
    let mut last = String::new();
    for _ in 0..1000 {
        match Instance::generate(code, usize::MAX, &At(ip), rng) {
            Ok(inst) => return inst.ins,
            Err(e) => last = e,
        }
    }
    panic!("sample: no instance of {code:?}: {last}")
}

/// The mask of `bits` low bits.
pub fn width_mask(bits: u32) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1 << bits) - 1
    }
}

/// The width in bits of an `r/m`, register or accumulator operand kind.
fn kind_bits(k: K) -> Option<u32> {
    Some(match k {
        K::r8_reg | K::r8_opcode | K::r8_or_mem | K::al | K::cl => 8,
        K::r16_reg | K::r16_opcode | K::r16_rm | K::r16_or_mem | K::ax => 16,
        K::r32_reg | K::r32_opcode | K::r32_rm | K::r32_or_mem | K::eax => 32,
        _ => return None,
    })
}

/// Whether `m` is a shift or rotate (whose count is masked to 5 bits).
pub fn is_shift_or_rotate(m: Mnemonic) -> bool {
    matches!(
        m,
        Mnemonic::Shl
            | Mnemonic::Sal
            | Mnemonic::Shr
            | Mnemonic::Sar
            | Mnemonic::Rol
            | Mnemonic::Ror
            | Mnemonic::Rcl
            | Mnemonic::Rcr
            | Mnemonic::Shld
            | Mnemonic::Shrd
    )
}

/// The edge values of immediate operand `i` of `code` (empty if it is not
/// an immediate with a choice): 0, 1, all ones (-1), the sign boundary on
/// both sides (`0x80..`, `0x7f..`) and the maximum in the immediate's
/// encoded width; shift and rotate counts: 0, 1, 2, width-1, width,
/// width+1 and counts of 32 and more (masked to 5 bits by the processor).
/// Values as [`Instance::immediate`] reads them back.
pub fn edge_immediates(code: Code, i: u32) -> Vec<u32> {
    let oc = code.op_code();
    let mn = code.mnemonic();
    let signed = |vs: [i8; 5], mask: u32| vs.iter().map(|&v| v as i32 as u32 & mask).collect();
    let mut v: Vec<u32> = match oc.op_kind(i) {
        K::imm8 if is_shift_or_rotate(mn) => {
            let w = kind_bits(oc.op_kind(0)).unwrap_or(32);
            vec![0, 1, 2, w - 1, w, w + 1, 32, 33, 255]
        }
        K::imm8 if mn == Mnemonic::Int => vec![],
        K::imm8 => vec![0, 1, 0xff, 0x80, 0x7f],
        K::imm8sex16 => signed([0, 1, -1, -128, 127], 0xffff),
        K::imm8sex32 => signed([0, 1, -1, -128, 127], u32::MAX),
        K::imm16 => vec![0, 1, 0xffff, 0x8000, 0x7fff],
        K::imm32 => vec![0, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff],
        _ => vec![],
    };
    let mut seen = Vec::new();
    v.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
    v
}

/// How many instances of `code` it takes to see every edge immediate: the
/// longest [`edge_immediates`] list of its operands (0 without immediates).
pub fn edge_count(code: Code) -> usize {
    let oc = code.op_code();
    (0..oc.op_count())
        .map(|i| edge_immediates(code, i).len())
        .max()
        .unwrap_or(0)
}

/// Whether `code`'s instructions are barriers: they are lifted but never run
/// (a system call, `hlt`, a trap).
pub fn is_barrier(code: Code) -> bool {
    matches!(
        code.mnemonic(),
        Mnemonic::Int
            | Mnemonic::Int3
            | Mnemonic::Int1
            | Mnemonic::Hlt
            | Mnemonic::Ud2
            | Mnemonic::Into
            | Mnemonic::Syscall
            | Mnemonic::Sysenter
    )
}

/// Element size of a string instruction form, if `code` is one.
pub fn string_elem(code: Code) -> Option<u32> {
    use Code as C;
    Some(match code {
        C::Movsb_m8_m8 | C::Cmpsb_m8_m8 | C::Stosb_m8_AL | C::Lodsb_AL_m8 | C::Scasb_AL_m8 => 1,
        C::Movsw_m16_m16
        | C::Cmpsw_m16_m16
        | C::Stosw_m16_AX
        | C::Lodsw_AX_m16
        | C::Scasw_AX_m16 => 2,
        C::Movsd_m32_m32
        | C::Cmpsd_m32_m32
        | C::Stosd_m32_EAX
        | C::Lodsd_EAX_m32
        | C::Scasd_EAX_m32 => 4,
        _ => return None,
    })
}

/// NASM text of an instruction.
pub fn text(ins: &Instruction) -> String {
    let mut s = String::new();
    NasmFormatter::new().format(ins, &mut s);
    s
}

/// Operand values while an instance is built.
#[derive(Clone, Copy, Debug)]
enum Op {
    R(Register),
    M(MemoryOperand),
    I(u32),
    B(u32),
}

/// Builds a string instruction with the given prefix.
fn string_instruction(code: Code, rep: RepPrefixKind) -> Result<Instruction, String> {
    use Code as C;
    let n = Register::None;
    let r = match code {
        C::Movsb_m8_m8 => Instruction::with_movsb(32, n, rep),
        C::Movsw_m16_m16 => Instruction::with_movsw(32, n, rep),
        C::Movsd_m32_m32 => Instruction::with_movsd(32, n, rep),
        C::Cmpsb_m8_m8 => Instruction::with_cmpsb(32, n, rep),
        C::Cmpsw_m16_m16 => Instruction::with_cmpsw(32, n, rep),
        C::Cmpsd_m32_m32 => Instruction::with_cmpsd(32, n, rep),
        C::Lodsb_AL_m8 => Instruction::with_lodsb(32, n, rep),
        C::Lodsw_AX_m16 => Instruction::with_lodsw(32, n, rep),
        C::Lodsd_EAX_m32 => Instruction::with_lodsd(32, n, rep),
        C::Stosb_m8_AL => Instruction::with_stosb(32, rep),
        C::Stosw_m16_AX => Instruction::with_stosw(32, rep),
        C::Stosd_m32_EAX => Instruction::with_stosd(32, rep),
        C::Scasb_AL_m8 => Instruction::with_scasb(32, rep),
        C::Scasw_AX_m16 => Instruction::with_scasw(32, rep),
        C::Scasd_EAX_m32 => Instruction::with_scasd(32, rep),
        _ => return Err(format!("{code:?} is not a string instruction")),
    };
    r.map_err(|e| e.to_string())
}

/// Calls the iced-x86 constructor matching the operand types.
fn build(code: Code, ops: &[Op]) -> Result<Instruction, String> {
    use Op::*;
    let r = match *ops {
        [] => Ok(Instruction::with(code)),
        [B(t)] => Instruction::with_branch(code, u64::from(t)),
        [R(a)] => Instruction::with1(code, a),
        [M(a)] => Instruction::with1(code, a),
        [I(a)] => Instruction::with1(code, a),
        [R(a), R(b)] => Instruction::with2(code, a, b),
        [R(a), M(b)] => Instruction::with2(code, a, b),
        [M(a), R(b)] => Instruction::with2(code, a, b),
        [R(a), I(b)] => Instruction::with2(code, a, b),
        [M(a), I(b)] => Instruction::with2(code, a, b),
        [I(a), I(b)] => Instruction::with2(code, a, b),
        [R(a), R(b), I(c)] => Instruction::with3(code, a, b, c),
        [R(a), M(b), I(c)] => Instruction::with3(code, a, b, c),
        [M(a), R(b), I(c)] => Instruction::with3(code, a, b, c),
        [R(a), R(b), R(c)] => Instruction::with3(code, a, b, c),
        [M(a), R(b), R(c)] => Instruction::with3(code, a, b, c),
        _ => return Err(format!("no iced-x86 constructor for operands {ops:?}")),
    };
    r.map_err(|e| e.to_string())
}

/// Encodes `ins` at `ip` and decodes it back.
fn encode(ins: &Instruction, ip: u32) -> Result<(Instruction, Vec<u8>), String> {
    let mut enc = Encoder::new(32);
    enc.encode(ins, u64::from(ip)).map_err(|e| e.to_string())?;
    let bytes = enc.take_buffer();
    let mut dec = Decoder::with_ip(32, &bytes, u64::from(ip), DecoderOptions::NONE);
    let d = dec.decode();
    if d.is_invalid() || d.len() != bytes.len() {
        return Err(format!("{bytes:02x?} does not decode back"));
    }
    Ok((d, bytes))
}

fn imm8(rng: &mut Rng) -> u32 {
    match rng.below(3) {
        0 => *rng.choose(&[0, 1, 2, 0x7f, 0x80, 0x81, 0xfe, 0xff]),
        _ => rng.below(256),
    }
}

fn imm16(rng: &mut Rng) -> u32 {
    match rng.below(3) {
        0 => *rng.choose(&[
            0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff,
        ]),
        _ => rng.interesting_u32() & 0xffff,
    }
}

fn simm8(rng: &mut Rng) -> i32 {
    match rng.below(3) {
        0 => *rng.choose(&[0, 1, 2, -1, -2, 127, -128, 126, -127]),
        _ => rng.below(256) as u8 as i8 as i32,
    }
}

/// A random memory operand shape: absolute, base, base+disp,
/// base+index*scale(+disp) or index*scale+disp32, any registers (esp as a
/// base with a small displacement, so that it can stay where the stack is).
fn memory_operand(rng: &mut Rng, lea: bool, at: &dyn Placement) -> MemoryOperand {
    let scale = *rng.choose(&[1, 2, 4, 8]);
    let index = loop {
        let r = *rng.choose(&R32);
        if r != Register::ESP {
            break r;
        }
    };
    let base = *rng.choose(&R32);
    let disp8 = simm8(rng) as i64;
    let disp32 = i64::from(rng.interesting_u32() as i32);
    let disp_esp = rng.range(0, 49) as i64 - 24;
    let (b, i, s, d) = match rng.below(10) {
        0 if !lea => (
            Register::None,
            Register::None,
            1,
            i64::from(at.data(rng, 8)),
        ),
        0 => (Register::None, Register::None, 1, disp32),
        1 => (base, Register::None, 1, 0),
        2 | 3 => (base, Register::None, 1, disp8),
        4 => (base, Register::None, 1, disp32),
        5 => (base, index, scale, 0),
        6 | 7 => (base, index, scale, disp8),
        8 => (base, index, scale, disp32),
        _ => (Register::None, index, scale, disp32),
    };
    let d = if b == Register::ESP && !lea {
        disp_esp
    } else {
        d
    };
    // One operand in eight through `gs` or `fs` (not with an `esp` base,
    // whose small displacement must stay near the stack): an absolute
    // address becomes an offset from the segment's base.
    let segment = match rng.below(16) {
        0 if b != Register::ESP => Register::GS,
        1 if b != Register::ESP => Register::FS,
        _ => Register::None,
    };
    let d = if segment != Register::None && b == Register::None && i == Register::None && !lea {
        i64::from((d as u32).wrapping_sub(at.segment_base(segment)) as i32)
    } else {
        d
    };
    let size = if b == Register::None {
        4
    } else if d == 0 {
        0
    } else {
        1
    };
    MemoryOperand::new(b, i, s, d, size, false, segment)
}

impl Instance {
    /// One attempt at instance `nth` of `code` placed by `at`: random
    /// operands (the first [`edge_count`] instances of a form take its
    /// [`edge_immediates`] in turn, every immediate operand the `nth` value
    /// of its list; `usize::MAX` for random immediates). An error when the
    /// choices do not make an instruction of the form; try again.
    pub fn generate(
        code: Code,
        nth: usize,
        at: &dyn Placement,
        rng: &mut Rng,
    ) -> Result<Instance, String> {
        let oc = code.op_code();
        if !oc.mode32() {
            return Err(format!("{code:?} is not available in 32-bit mode"));
        }
        let mn = code.mnemonic();
        let ins = if string_elem(code).is_some() {
            let rep = match (mn, rng.below(3)) {
                (_, 0) => RepPrefixKind::None,
                (Mnemonic::Cmpsb | Mnemonic::Cmpsw | Mnemonic::Cmpsd, 1)
                | (Mnemonic::Scasb | Mnemonic::Scasw | Mnemonic::Scasd, 1) => RepPrefixKind::Repne,
                _ => RepPrefixKind::Repe,
            };
            string_instruction(code, rep)?
        } else {
            let ops = Self::operands(code, nth, rng, at)?;
            let ins = build(code, &ops)?;
            // Branches: choose the target once the length is known.
            match ops.iter().position(|o| matches!(o, Op::B(_))) {
                Some(pos) => {
                    let (_, bytes) = encode(&ins, at.ip())?;
                    let target = Self::target(oc.op_kind(pos as u32), bytes.len() as u32, at, rng)?;
                    let mut ops = ops;
                    ops[pos] = Op::B(target);
                    build(code, &ops)?
                }
                None => ins,
            }
        };
        let (ins, bytes) = encode(&ins, at.ip())?;
        if ins.code() != code {
            return Err(format!(
                "`{}` decodes as {:?}, not {code:?}",
                text(&ins),
                ins.code()
            ));
        }
        Ok(Instance {
            code,
            text: text(&ins),
            ins,
            bytes,
            nth,
        })
    }

    /// The target of a branch operand of kind `kind` in an instruction of
    /// `len` bytes.
    fn target(kind: K, len: u32, at: &dyn Placement, rng: &mut Rng) -> Result<u32, String> {
        if kind != K::br32_1 {
            return Ok(at.far_target(rng));
        }
        let next = at.ip() + len;
        let rel = match rng.below(4) {
            0 => *rng.choose(&[-128i32, 127, -3 - len as i32, 5]),
            _ => rng.range(0, 256) as i32 - 128,
        };
        let t = next.wrapping_add(rel as u32);
        if !at.near_target(t, len) {
            return Err(format!("rel8 target {t:#x} is not a landing address"));
        }
        Ok(t)
    }

    /// Random operands for `code` (branch targets provisional).
    fn operands(
        code: Code,
        nth: usize,
        rng: &mut Rng,
        at: &dyn Placement,
    ) -> Result<Vec<Op>, String> {
        let oc = code.op_code();
        let mn = code.mnemonic();
        let lea = mn == Mnemonic::Lea;
        let is_shift = is_shift_or_rotate(mn);
        let mut ops = Vec::new();
        for i in 0..oc.op_count() {
            let kind = oc.op_kind(i);
            let mem = |rng: &mut Rng| Op::M(memory_operand(rng, lea, at));
            let edges = edge_immediates(code, i);
            let op = match kind {
                _ if nth < edges.len() => Op::I(edges[nth]),
                K::r8_reg | K::r8_opcode => Op::R(*rng.choose(&R8)),
                K::r16_reg | K::r16_opcode | K::r16_rm => Op::R(*rng.choose(&R16)),
                K::r32_reg | K::r32_opcode | K::r32_rm => Op::R(*rng.choose(&R32)),
                K::r8_or_mem if rng.coin() => Op::R(*rng.choose(&R8)),
                K::r16_or_mem if rng.coin() => Op::R(*rng.choose(&R16)),
                K::r32_or_mem if rng.coin() => Op::R(*rng.choose(&R32)),
                K::xmm_or_mem if rng.coin() => Op::R(*rng.choose(&XMM)),
                K::xmm_reg | K::xmm_rm => Op::R(*rng.choose(&XMM)),
                K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::xmm_or_mem | K::mem => mem(rng),
                K::mem_offs => Op::M(MemoryOperand::new(
                    Register::None,
                    Register::None,
                    1,
                    i64::from(at.data(rng, 4)),
                    4,
                    false,
                    Register::None,
                )),
                K::al => Op::R(Register::AL),
                K::cl => Op::R(Register::CL),
                K::ax => Op::R(Register::AX),
                K::eax => Op::R(Register::EAX),
                K::imm8_const_1 => Op::I(1),
                K::imm8 if is_shift => Op::I(if rng.chance(3, 4) {
                    *rng.choose(&COUNTS)
                } else {
                    rng.below(256)
                }),
                K::imm8 if mn == Mnemonic::Int => Op::I(0x80),
                K::imm8 => Op::I(imm8(rng)),
                K::imm8sex16 => Op::I(u32::from(simm8(rng) as i16 as u16)),
                K::imm8sex32 => Op::I(simm8(rng) as u32),
                K::imm16 if mn == Mnemonic::Ret => Op::I(match rng.below(3) {
                    0 => *rng.choose(&[0, 4, 8, 12, 0xfffc, 0xffff, 1, 2]),
                    1 => 4 * rng.below(16),
                    _ => imm16(rng),
                }),
                K::imm16 => Op::I(imm16(rng)),
                K::imm32 => Op::I(rng.interesting_u32()),
                K::br32_1 | K::br32_4 => Op::B(at.ip() + 2),
                other => return Err(format!("{code:?}: operand kind {other:?} is not generated")),
            };
            ops.push(op);
        }
        Ok(ops)
    }

    /// The value of immediate operand `i` in the width it is encoded in
    /// (as [`edge_immediates`] lists it), if operand `i` is an immediate.
    pub fn immediate(&self, i: u32) -> Option<u32> {
        let mask = match self.code.op_code().op_kind(i) {
            K::imm8 | K::imm8_const_1 => 0xff,
            K::imm8sex16 | K::imm16 => 0xffff,
            K::imm8sex32 | K::imm32 => u32::MAX,
            _ => return None,
        };
        Some(self.ins.immediate(i) as u32 & mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The edge immediates follow the operand's width: a shift count's
    /// edges are the width's (w - 1, w, w + 1) besides 32, 33 and 255, and
    /// a sign-extended byte's are its values extended to the operand.
    #[test]
    fn edge_immediates_follow_the_operand_width() {
        let shift = |w: u32| vec![0, 1, 2, w - 1, w, w + 1, 32, 33, 255];
        assert_eq!(edge_immediates(Code::Shl_rm8_imm8, 1), shift(8));
        assert_eq!(edge_immediates(Code::Shl_rm16_imm8, 1), shift(16));
        // (32 and 33 once)
        assert_eq!(
            edge_immediates(Code::Shl_rm32_imm8, 1),
            vec![0, 1, 2, 31, 32, 33, 255]
        );
        assert_eq!(
            edge_immediates(Code::Add_rm16_imm8, 1),
            vec![0, 1, 0xffff, 0xff80, 0x7f]
        );
        assert_eq!(
            edge_immediates(Code::Add_rm32_imm8, 1),
            vec![0, 1, u32::MAX, 0xffff_ff80, 0x7f]
        );
        assert_eq!(
            edge_immediates(Code::Add_rm16_imm16, 1),
            vec![0, 1, 0xffff, 0x8000, 0x7fff]
        );
        assert_eq!(
            edge_immediates(Code::Add_rm8_imm8, 1),
            vec![0, 1, 0xff, 0x80, 0x7f]
        );
    }

    #[test]
    fn every_supported_form_has_instances() {
        let mut rng = Rng::new(1);
        for code in crate::supported_codes()
            .into_iter()
            .chain(crate::barrier_codes())
        {
            for nth in 0..edge_count(code).max(1) {
                let inst = (0..100)
                    .find_map(|_| Instance::generate(code, nth, &At(0x1000), &mut rng).ok())
                    .unwrap_or_else(|| panic!("no instance of {code:?}"));
                assert_eq!(inst.ins.code(), code);
                assert_eq!(inst.ins.ip32(), 0x1000);
                for i in 0..inst.ins.op_count() {
                    if let Some(&edge) = edge_immediates(code, i).get(nth) {
                        assert_eq!(inst.immediate(i), Some(edge), "{}", inst.text);
                    }
                }
            }
        }
    }
}
