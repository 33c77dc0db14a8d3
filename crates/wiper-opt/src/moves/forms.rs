//! The values registers hold over a run: [`Linear`] forms of the registers'
//! entry values and of the run's one opaque result, and the instructions
//! that step them.

use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use wiper_x86::Reg;

use crate::effects::{is_fixed_register, is_pure};

/// The index of `esp`, which runs never touch.
pub const ESP: usize = 4;
/// The coefficient index of the run's opaque result (after the eight
/// registers').
pub const ATOM: usize = 8;

/// `sum(coeffs[r] * entry value of r) + coeffs[ATOM] * atom + offset`
/// modulo 2^32, over the register indices 0..8 (`esp`'s entry unused) and
/// the run's opaque result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    /// The multiplier of each register's entry value, then of the atom.
    pub coeffs: [u32; 9],
    /// The constant added.
    pub offset: u32,
}

impl Linear {
    /// The constant `c`.
    pub fn constant(c: u32) -> Self {
        Linear {
            coeffs: [0; 9],
            offset: c,
        }
    }

    /// The entry value of register `r` (or the atom, for [`ATOM`]).
    pub fn entry(r: usize) -> Self {
        let mut coeffs = [0; 9];
        coeffs[r] = 1;
        Linear { coeffs, offset: 0 }
    }

    /// The constant, if the form is one.
    pub fn as_constant(self) -> Option<u32> {
        self.coeffs.iter().all(|&c| c == 0).then_some(self.offset)
    }

    /// `self + other`.
    pub fn plus(self, other: Linear) -> Linear {
        Linear {
            coeffs: std::array::from_fn(|i| self.coeffs[i].wrapping_add(other.coeffs[i])),
            offset: self.offset.wrapping_add(other.offset),
        }
    }

    /// `k * self`.
    pub fn times(self, k: u32) -> Linear {
        Linear {
            coeffs: self.coeffs.map(|c| c.wrapping_mul(k)),
            offset: self.offset.wrapping_mul(k),
        }
    }

    /// `self - other`.
    pub fn minus(self, other: Linear) -> Linear {
        self.plus(other.times(u32::MAX))
    }

    /// The constant `c` with `self == k * x + c`, if there is one (the
    /// same as `self.minus(x.times(k)).as_constant()`, faster: the
    /// optimizer asks this many times).
    pub fn less_multiple(&self, x: Linear, k: u32) -> Option<u32> {
        self.coeffs
            .iter()
            .zip(x.coeffs)
            .all(|(&a, b)| a == b.wrapping_mul(k))
            .then(|| self.offset.wrapping_sub(x.offset.wrapping_mul(k)))
    }
}

/// The forms of the registers at the start of a run: their entry values.
pub fn entry_forms() -> [Linear; 8] {
    std::array::from_fn(Linear::entry)
}

/// The index of a 32-bit general-purpose register other than `esp`.
pub fn gpr(reg: Register) -> Option<usize> {
    Reg::from_iced(reg)
        .filter(|_| reg.is_gpr32())
        .map(Reg::index)
        .filter(|&i| i != ESP)
}

/// The form of operand `k` of `ins` (a register of [`gpr`] or an
/// immediate) in `regs`.
fn operand(regs: &[Linear; 8], ins: &Instruction, k: u32) -> Option<Linear> {
    match ins.op_kind(k) {
        OpKind::Register => gpr(ins.op_register(k)).map(|i| regs[i]),
        OpKind::Immediate8 | OpKind::Immediate8to32 | OpKind::Immediate32 => {
            Some(Linear::constant(ins.immediate(k) as u32))
        }
        _ => None,
    }
}

/// The form of the address `lea` computes: base and index registers of
/// [`gpr`] (or none), no segment override.
fn address(regs: &[Linear; 8], ins: &Instruction) -> Option<Linear> {
    if ins.segment_prefix() != Register::None {
        return None;
    }
    let part = |reg: Register| match reg {
        Register::None => Some(Linear::constant(0)),
        r => gpr(r).map(|i| regs[i]),
    };
    let base = part(ins.memory_base())?;
    let index = part(ins.memory_index())?.times(ins.memory_index_scale());
    Some(
        base.plus(index)
            .plus(Linear::constant(ins.memory_displacement32())),
    )
}

/// Steps `regs` past `ins` when it is a linear instruction a run may hold
/// (see the module docs of [`crate::moves`]); `None` (and `regs`
/// unchanged) otherwise.
pub fn interpret(regs: &mut [Linear; 8], ins: &Instruction) -> Option<()> {
    use Mnemonic as M;
    if ins.op_count() == 0 || ins.op0_kind() != OpKind::Register {
        return None;
    }
    let dst = gpr(ins.op0_register())?;
    let x = |k| operand(regs, ins, k);
    let form = match (ins.mnemonic(), ins.op_count()) {
        (M::Xchg, 2) => {
            let src = (ins.op1_kind() == OpKind::Register)
                .then(|| gpr(ins.op1_register()))
                .flatten()?;
            regs.swap(dst, src);
            return Some(());
        }
        (M::Mov, 2) => x(1)?,
        (M::Add, 2) => x(0)?.plus(x(1)?),
        (M::Sub, 2) => x(0)?.minus(x(1)?),
        (M::Xor, 2)
            if ins.op1_kind() == OpKind::Register && ins.op1_register() == ins.op0_register() =>
        {
            Linear::constant(0)
        }
        (M::Inc, 1) => x(0)?.plus(Linear::constant(1)),
        (M::Dec, 1) => x(0)?.plus(Linear::constant(u32::MAX)),
        (M::Neg, 1) => x(0)?.times(u32::MAX),
        (M::Shl | M::Sal, 2) => x(0)?.times(1 << (x(1)?.as_constant()? & 31)),
        (M::Imul, 3) => x(1)?.times(x(2)?.as_constant()?),
        (M::Lea, 2) => address(regs, ins)?,
        _ => return None,
    };
    regs[dst] = form;
    Some(())
}

/// The one instruction of a run that is not linear: `OP r,s` or `OP r,imm`
/// for `imul`, `and`, `or`, `xor`, `shr`, `sar`, `rol`, `ror`, or `not r`,
/// on 32-bit registers of [`gpr`]. Its result is the run's atom; the new
/// code runs it on whichever register holds its first operand.
#[derive(Clone, Copy, Debug)]
pub struct Opaque {
    /// The instruction as the run has it.
    pub ins: Instruction,
    /// The form of its first operand (the destination) before it.
    pub first: Linear,
    /// The form of its second operand when that is a register.
    pub second: Option<Linear>,
}

/// Whether `ins` is an instruction an [`Opaque`] may be (its effects aside).
pub fn is_opaque(ins: &Instruction) -> bool {
    use Mnemonic as M;
    let regs_ok = (0..ins.op_count()).all(|k| match ins.op_kind(k) {
        OpKind::Register => gpr(ins.op_register(k)).is_some() && !is_fixed_register(ins, k),
        OpKind::Immediate8 | OpKind::Immediate8to32 | OpKind::Immediate32 => k == 1,
        _ => false,
    });
    let shape = match ins.mnemonic() {
        M::Imul | M::And | M::Or | M::Xor => ins.op_count() == 2,
        M::Shr | M::Sar | M::Rol | M::Ror => {
            ins.op_count() == 2 && ins.op1_kind() == OpKind::Immediate8
        }
        M::Not => ins.op_count() == 1,
        _ => false,
    };
    shape && regs_ok && is_pure(ins) && ins.op0_kind() == OpKind::Register
}

impl Opaque {
    /// `ins` (an [`is_opaque`] instruction) over the forms `regs`.
    pub fn of(ins: &Instruction, regs: &[Linear; 8]) -> Option<Opaque> {
        let first = regs[gpr(ins.op0_register())?];
        let second = match ins.op_count() {
            2 if ins.op1_kind() == OpKind::Register => Some(regs[gpr(ins.op1_register())?]),
            _ => None,
        };
        Some(Opaque {
            ins: *ins,
            first,
            second,
        })
    }

    /// This instruction on register `r`, with register `s` as its second
    /// operand when that is a register.
    pub fn on(&self, r: usize, s: Option<usize>) -> Instruction {
        let mut ins = self.ins;
        ins.set_op0_register(crate::effects::reg_of_bit(r as u32));
        if let Some(s) = s {
            ins.set_op1_register(crate::effects::reg_of_bit(s as u32));
        }
        ins
    }

    /// Steps `regs` past `ins` when it is this instruction (maybe on other
    /// registers) applied to the same operand forms.
    pub fn step(&self, regs: &mut [Linear; 8], ins: &Instruction) -> Option<()> {
        if ins.code() != self.ins.code() || ins.op_count() != self.ins.op_count() {
            return None;
        }
        let same = Opaque::of(ins, regs)?;
        let imm_same = match self.ins.op_count() {
            2 if self.ins.op1_kind() != OpKind::Register => {
                ins.immediate(1) == self.ins.immediate(1)
            }
            _ => true,
        };
        if same.first != self.first || same.second != self.second || !imm_same {
            return None;
        }
        regs[gpr(ins.op0_register())?] = Linear::entry(ATOM);
        Some(())
    }
}

/// Steps `regs` past `ins`: a linear instruction, or `op`'s instruction.
pub fn step(regs: &mut [Linear; 8], ins: &Instruction, op: Option<&Opaque>) -> Option<()> {
    interpret(regs, ins).or_else(|| op?.step(regs, ins))
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::asm;

    /// `xor r,r` is the constant 0 to the runs (a linear instruction);
    /// `xor r,s` of two registers is not linear.
    #[test]
    fn a_zeroing_xor_is_the_constant_zero() {
        let mut regs = super::entry_forms();
        let zero = asm(|a| a.xor(ecx, ecx))[0];
        assert_eq!(super::interpret(&mut regs, &zero), Some(()));
        assert_eq!(regs[1].as_constant(), Some(0));
        let other = asm(|a| a.xor(ecx, edx))[0];
        assert_eq!(super::interpret(&mut regs, &other), None);
    }

    /// `shl r,k` and `sal r,k` multiply by 2^k, with the count masked
    /// to 5 bits as the processor does (`shl ecx,33` doubles).
    #[test]
    fn a_left_shift_is_a_product_by_a_power_of_two() {
        let entry = super::entry_forms();
        let shifts = asm(|a| {
            a.shl(eax, 3)?;
            a.sal(ecx, 1)?;
            a.shl(edx, 33)?;
            a.shl(ebx, 0)
        });
        let mut regs = super::entry_forms();
        for ins in &shifts {
            assert_eq!(super::interpret(&mut regs, ins), Some(()), "{ins}");
        }
        assert_eq!(regs[0], entry[0].times(8));
        assert_eq!(regs[1], entry[1].times(2));
        assert_eq!(regs[2], entry[2].times(2));
        assert_eq!(regs[3], entry[3]);
    }

    /// Which instructions may be a run's one non-linear instruction:
    /// `OP r,s` and `OP r,imm` of the listed operations on free registers,
    /// and `not r`; not three operands, memory, a count in `cl` or the
    /// accumulator form of `and eax,imm32`.
    #[test]
    fn opaque_instructions_are_register_or_immediate_operations() {
        type Op = fn(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>;
        let yes: [Op; 6] = [
            |a| a.and(ecx, 0xff),
            |a| a.xor(ecx, edx),
            |a| a.imul_2(ebx, esi),
            |a| a.shr(edx, 3),
            |a| a.rol(esi, 1),
            |a| a.not(edi),
        ];
        let no: [Op; 5] = [
            |a| a.imul_3(ebx, esi, 3),
            |a| a.and(ecx, dword_ptr(esi)),
            |a| a.shr(edx, cl),
            |a| a.add(ecx, 1),
            |a| a.not(dword_ptr(esi)),
        ];
        for op in yes {
            let ins = asm(op)[0];
            assert!(super::is_opaque(&ins), "{ins}");
        }
        for op in no {
            let ins = asm(op)[0];
            assert!(!super::is_opaque(&ins), "{ins}");
        }
    }

    /// `neg r` is linear: the register times -1.
    #[test]
    fn a_negation_is_a_product_by_minus_one() {
        let entry = super::entry_forms();
        let mut regs = super::entry_forms();
        let neg = asm(|a| a.neg(edx))[0];
        assert_eq!(super::interpret(&mut regs, &neg), Some(()));
        assert_eq!(regs[2], entry[2].times(u32::MAX));
    }

    /// The run's opaque instruction steps only over itself on the same
    /// operand forms: `imul eax,ebx` (on the entry values) is neither
    /// `imul eax,ecx` nor `imul ecx,ebx`.
    #[test]
    fn an_opaque_step_needs_both_operand_forms() {
        let regs = super::entry_forms();
        let imul = |r: AsmRegister32, s: AsmRegister32| asm(|a| a.imul_2(r, s))[0];
        let op = super::Opaque::of(&imul(eax, ebx), &regs).expect("opaque");
        for other in [imul(eax, ecx), imul(ecx, ebx)] {
            let mut stepped = regs;
            assert_eq!(op.step(&mut stepped, &other), None, "{other}");
        }
        let mut stepped = regs;
        assert_eq!(op.step(&mut stepped, &imul(eax, ebx)), Some(()));
    }
}
