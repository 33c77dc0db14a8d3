//! Instructions the passes write: one home for how a register move, an
//! added constant or a `lea` is encoded.

use iced_x86::{Code, Instruction, MemoryOperand, Register};

use crate::effects::displacement_size;

/// Unwraps an instruction a pass builds from operands it checked.
pub fn checked(ins: Result<Instruction, iced_x86::IcedError>) -> Instruction {
    ins.expect("an instruction built from checked operands is well-formed")
}

/// `mov r, s` between 32-bit registers.
pub fn mov(r: Register, s: Register) -> Instruction {
    checked(Instruction::with2(Code::Mov_r32_rm32, r, s))
}

/// `add r, c`, with the short immediate when `c` fits in a byte.
pub fn add_imm(r: Register, c: u32) -> Instruction {
    let imm = c as i32;
    let code = if i8::try_from(imm).is_ok() {
        Code::Add_rm32_imm8
    } else {
        Code::Add_rm32_imm32
    };
    checked(Instruction::with2(code, r, imm))
}

/// `lea r, [base + index*scale + disp]` (a 32-bit displacement when there
/// is no base).
pub fn lea(r: Register, base: Register, index: Register, scale: u32, disp: u32) -> Instruction {
    let disp = disp as i32;
    let size = if base == Register::None {
        4
    } else {
        displacement_size(disp)
    };
    let memory = MemoryOperand::new(base, index, scale, disp as i64, size, false, Register::None);
    checked(Instruction::with2(Code::Lea_r32_m, r, memory))
}

#[cfg(test)]
mod tests {
    use iced_x86::{Encoder, Instruction, Register};

    /// A `lea` with a base takes the shortest displacement (none for 0,
    /// one byte for a small one, four else); one without a base takes four,
    /// as it must.
    #[test]
    fn a_lea_takes_the_shortest_displacement() {
        use Register::{None as NO, EAX, EBX, ECX};
        let len = |ins: Instruction| Encoder::new(32).encode(&ins, 0).expect("encodes");
        assert_eq!(len(super::lea(EAX, EBX, NO, 1, 0)), 2);
        assert_eq!(len(super::lea(EAX, EBX, NO, 1, 5)), 3);
        assert_eq!(len(super::lea(EAX, EBX, ECX, 2, -3i32 as u32)), 4);
        assert_eq!(len(super::lea(EAX, EBX, ECX, 2, 0x100)), 7);
        assert_eq!(len(super::lea(EAX, NO, ECX, 4, 5)), 7);
    }
}
