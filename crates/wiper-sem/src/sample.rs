//! Random instances of instruction forms, for tests and for the generated
//! table: [`Sampler::instance`] builds a valid instruction of a given iced
//! `Code` with random registers, memory operands, immediates, branch targets
//! and (for string forms) `rep` prefixes, encoded and decoded back so it is
//! exactly what the decoder would produce.

use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, Instruction, MemoryOperand, OpCodeOperandKind as K,
    Register,
};

use wiper_x86::{GPR16 as R16, GPR32 as R32, GPR8 as R8};

/// A deterministic source of random instances (xorshift; no dependencies).
#[derive(Clone, Debug)]
pub struct Sampler {
    state: u64,
}

/// One operand of an instance under construction.
#[derive(Copy, Clone)]
enum Operand {
    Reg(Register),
    Mem(MemoryOperand),
    Imm(u32),
}

impl Sampler {
    /// A sampler seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Sampler {
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        }
    }

    /// The next pseudo-random 32-bit number.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        (x >> 16) as u32
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }

    /// A random memory operand: a base register (sometimes none), sometimes
    /// a scaled index, and a displacement that is usually small.
    fn memory(&mut self) -> MemoryOperand {
        let base = if self.below(8) == 0 {
            Register::None
        } else {
            self.pick(&R32)
        };
        let index = if self.below(2) == 0 {
            Register::None
        } else {
            self.pick(&[
                Register::EAX,
                Register::ECX,
                Register::EDX,
                Register::EBX,
                Register::EBP,
                Register::ESI,
                Register::EDI,
            ])
        };
        let scale = self.pick(&[1, 2, 4, 8]);
        let disp = match (base, self.below(8)) {
            (Register::None, _) | (_, 0) => i64::from(self.next_u32() as i32),
            (_, 1..=3) => 0,
            _ => i64::from(self.below(128) as i32 - 64),
        };
        MemoryOperand::new(base, index, scale, disp, 1, false, Register::None)
    }

    /// An operand of kind `k`, or `None` for an implicit one.
    fn operand(&mut self, k: K, ip: u32) -> Option<Operand> {
        let reg_or_mem = |s: &mut Self, regs: &[Register; 8]| {
            if s.below(2) == 0 {
                Operand::Mem(s.memory())
            } else {
                Operand::Reg(s.pick(regs))
            }
        };
        Some(match k {
            K::r8_or_mem => reg_or_mem(self, &R8),
            K::r16_or_mem => reg_or_mem(self, &R16),
            K::r32_or_mem => reg_or_mem(self, &R32),
            K::mem => Operand::Mem(self.memory()),
            K::mem_offs => Operand::Mem(MemoryOperand::with_base_displ_size(
                Register::None,
                i64::from(self.next_u32()),
                4,
            )),
            K::r8_reg | K::r8_opcode => Operand::Reg(self.pick(&R8)),
            K::r16_reg | K::r16_opcode | K::r16_rm => Operand::Reg(self.pick(&R16)),
            K::r32_reg | K::r32_opcode | K::r32_rm => Operand::Reg(self.pick(&R32)),
            K::al => Operand::Reg(Register::AL),
            K::cl => Operand::Reg(Register::CL),
            K::ax => Operand::Reg(Register::AX),
            K::eax => Operand::Reg(Register::EAX),
            K::imm8 => Operand::Imm(self.small_imm8()),
            K::imm8sex16 | K::imm8sex32 => Operand::Imm(self.below(256) as i8 as i32 as u32),
            K::imm16 => Operand::Imm(self.below(0x1_0000)),
            K::imm32 => Operand::Imm(self.next_u32()),
            K::br32_1 => Operand::Imm(ip.wrapping_add(self.below(200)).wrapping_sub(90)),
            K::br32_4 => Operand::Imm(self.next_u32()),
            K::imm8_const_1 => Operand::Imm(1),
            K::seg_rSI | K::es_rDI | K::seg_rDI | K::None => return None,
            k => panic!("sample: operand kind {k:?} not handled"),
        })
    }

    /// An 8-bit immediate, biased towards small values (shift counts).
    fn small_imm8(&mut self) -> u32 {
        if self.below(2) == 0 {
            self.below(40)
        } else {
            self.below(256)
        }
    }

    /// A random instance of `code` at `ip`. String forms get no prefix,
    /// `rep`, or (for `cmps`/`scas`) `repe`/`repne` at random; `int` is
    /// always `int 0x80`.
    pub fn instance(&mut self, code: Code, ip: u32) -> Instruction {
        for _ in 0..1000 {
            if let Some(ins) = self.try_instance(code, ip) {
                return ins;
            }
        }
        panic!("sample: no instance of {code:?}")
    }

    fn try_instance(&mut self, code: Code, ip: u32) -> Option<Instruction> {
        let info = code.op_code();
        if code.is_string_instruction() {
            let mut bytes = Vec::new();
            let compares = matches!(
                code.mnemonic(),
                iced_x86::Mnemonic::Cmpsb
                    | iced_x86::Mnemonic::Cmpsw
                    | iced_x86::Mnemonic::Cmpsd
                    | iced_x86::Mnemonic::Scasb
                    | iced_x86::Mnemonic::Scasw
                    | iced_x86::Mnemonic::Scasd
            );
            match self.below(3) {
                0 => {}
                1 => bytes.push(0xf3),
                _ => bytes.push(if compares { 0xf2 } else { 0xf3 }),
            }
            if info.operand_size() == 16 {
                bytes.push(0x66);
            }
            bytes.push(info.op_code() as u8);
            return decode(&bytes, ip, code);
        }
        let mut ops = Vec::new();
        for i in 0..info.op_count() {
            if let Some(op) = self.operand(info.op_kind(i), ip) {
                ops.push(op);
            }
        }
        if code == Code::Int_imm8 {
            ops = vec![Operand::Imm(0x80)];
        }
        let built = if code.is_jcc_short_or_near()
            || code.is_jmp_short_or_near()
            || code.is_call_near() && info.op_kind(0) == K::br32_4
        {
            let Operand::Imm(target) = ops[0] else {
                unreachable!()
            };
            Instruction::with_branch(code, u64::from(target))
        } else {
            build(code, &ops)
        };
        let ins = built.ok()?;
        let mut enc = Encoder::new(32);
        enc.encode(&ins, u64::from(ip)).ok()?;
        decode(&enc.take_buffer(), ip, code)
    }
}

/// Decodes `bytes` at `ip`, if they give `code`.
fn decode(bytes: &[u8], ip: u32, code: Code) -> Option<Instruction> {
    let ins = Decoder::with_ip(32, bytes, u64::from(ip), DecoderOptions::NONE).decode();
    (ins.code() == code && ins.len() == bytes.len()).then_some(ins)
}

/// `Instruction::withN` for the operand combinations of supported forms.
fn build(code: Code, ops: &[Operand]) -> Result<Instruction, iced_x86::IcedError> {
    use Operand::*;
    match *ops {
        [] => Ok(Instruction::with(code)),
        [Reg(a)] => Instruction::with1(code, a),
        [Mem(a)] => Instruction::with1(code, a),
        [Imm(a)] => Instruction::with1(code, a),
        [Reg(a), Reg(b)] => Instruction::with2(code, a, b),
        [Reg(a), Mem(b)] => Instruction::with2(code, a, b),
        [Mem(a), Reg(b)] => Instruction::with2(code, a, b),
        [Reg(a), Imm(b)] => Instruction::with2(code, a, b),
        [Mem(a), Imm(b)] => Instruction::with2(code, a, b),
        [Reg(a), Reg(b), Imm(c)] => Instruction::with3(code, a, b, c),
        [Reg(a), Mem(b), Imm(c)] => Instruction::with3(code, a, b, c),
        [Mem(a), Reg(b), Imm(c)] => Instruction::with3(code, a, b, c),
        [Reg(a), Reg(b), Reg(c)] => Instruction::with3(code, a, b, c),
        [Mem(a), Reg(b), Reg(c)] => Instruction::with3(code, a, b, c),
        _ => panic!("sample: operand combination of {code:?} not handled"),
    }
}
