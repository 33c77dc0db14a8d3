//! The general registers: one type, [`Reg`], with the encoding order every
//! register array of wiper follows (`eax ecx edx ebx esp ebp esi edi`, the
//! `reg` field of ModR/M) and the mapping to and from iced-x86's
//! [`Register`]s of every width.

use iced_x86::Register;

/// A 32-bit general register, in encoding order. Byte and word registers
/// (`al`, `ah`, `ax`, …) are parts of these.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reg {
    /// `eax` (encoding 0).
    Eax,
    /// `ecx` (encoding 1).
    Ecx,
    /// `edx` (encoding 2).
    Edx,
    /// `ebx` (encoding 3).
    Ebx,
    /// `esp` (encoding 4).
    Esp,
    /// `ebp` (encoding 5).
    Ebp,
    /// `esi` (encoding 6).
    Esi,
    /// `edi` (encoding 7).
    Edi,
}

/// The 32-bit general registers in encoding order (the `reg` field of ModR/M).
pub const GPR32: [Register; 8] = {
    use Register::*;
    [EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI]
};
/// The 16-bit general registers in encoding order.
pub const GPR16: [Register; 8] = {
    use Register::*;
    [AX, CX, DX, BX, SP, BP, SI, DI]
};
/// The 8-bit general registers in encoding order: the low bytes of `eax`,
/// `ecx`, `edx`, `ebx`, then their second bytes (`ah`..`bh`).
pub const GPR8: [Register; 8] = {
    use Register::*;
    [AL, CL, DL, BL, AH, CH, DH, BH]
};

impl Reg {
    /// All registers in encoding order.
    pub const ALL: [Reg; 8] = [
        Reg::Eax,
        Reg::Ecx,
        Reg::Edx,
        Reg::Ebx,
        Reg::Esp,
        Reg::Ebp,
        Reg::Esi,
        Reg::Edi,
    ];

    /// The encoding number (0 for `eax` … 7 for `edi`), also the index of
    /// the register in every array of eight register values.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The full 32-bit register that iced's `reg` is (a part of): `al`, `ah`,
    /// `ax` and `eax` all give [`Reg::Eax`]. `None` for registers that are not
    /// general-purpose (segment, x87, SSE, …).
    pub fn from_iced(reg: Register) -> Option<Reg> {
        use Register as R;
        Some(match reg {
            R::AL | R::AH | R::AX | R::EAX => Reg::Eax,
            R::CL | R::CH | R::CX | R::ECX => Reg::Ecx,
            R::DL | R::DH | R::DX | R::EDX => Reg::Edx,
            R::BL | R::BH | R::BX | R::EBX => Reg::Ebx,
            R::SP | R::ESP => Reg::Esp,
            R::BP | R::EBP => Reg::Ebp,
            R::SI | R::ESI => Reg::Esi,
            R::DI | R::EDI => Reg::Edi,
            _ => return None,
        })
    }

    /// The iced register of this register's full 32 bits.
    pub fn to_iced(self) -> Register {
        GPR32[self.index()]
    }

    /// The iced register of this register's low 16 bits (`ax` of `eax`).
    pub fn word(self) -> Register {
        GPR16[self.index()]
    }

    /// The iced register of this register's low 8 bits (`al` of `eax`):
    /// only `eax`, `ecx`, `edx` and `ebx` have one.
    pub fn low_byte(self) -> Option<Register> {
        (self.index() < 4).then(|| GPR8[self.index()])
    }

    /// The iced register of this register's bits 8..16 (`ah` of `eax`):
    /// only `eax`, `ecx`, `edx` and `ebx` have one.
    pub fn high_byte(self) -> Option<Register> {
        (self.index() < 4).then(|| GPR8[self.index() + 4])
    }

    /// Lower-case name, also the name of the register's formula variable.
    pub fn name(self) -> &'static str {
        ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"][self.index()]
    }
}

/// Whether `reg` is `ah`, `ch`, `dh` or `bh`: bits 8..16 of a register.
pub fn is_high_byte(reg: Register) -> bool {
    GPR8[4..].contains(&reg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iced_registers_map_to_their_full_register() {
        assert_eq!(Reg::from_iced(Register::AH), Some(Reg::Eax));
        assert_eq!(Reg::from_iced(Register::BH), Some(Reg::Ebx));
        assert_eq!(Reg::from_iced(Register::DI), Some(Reg::Edi));
        assert_eq!(Reg::from_iced(Register::ES), None);
        assert_eq!(Reg::from_iced(Register::None), None);
        assert_eq!(Reg::from_iced(Register::RAX), None);
        for r in Reg::ALL {
            let parts = [
                Some(r.to_iced()),
                Some(r.word()),
                r.low_byte(),
                r.high_byte(),
            ];
            for part in parts.into_iter().flatten() {
                assert_eq!(Reg::from_iced(part), Some(r), "{part:?}");
                assert_eq!(part.full_register32(), r.to_iced(), "{part:?}");
            }
            assert_eq!(r.to_iced().number() - Register::EAX.number(), r.index());
            assert_eq!(format!("{:?}", r.to_iced()).to_lowercase(), r.name());
            assert!(r.high_byte().map_or(true, is_high_byte));
            assert!(!is_high_byte(r.to_iced()) && !r.low_byte().is_some_and(is_high_byte));
        }
    }
}
