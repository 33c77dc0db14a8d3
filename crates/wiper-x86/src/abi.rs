//! The i386 System V calling convention, as far as wiper relies on it: which
//! registers a call may change, which a function must preserve, where the
//! result is returned and where the stack arguments are.

use crate::Reg;

/// The registers a call may change (the caller saves them if it needs
/// them): `eax`, `ecx`, `edx`.
pub const CALLER_SAVED: [Reg; 3] = [Reg::Eax, Reg::Ecx, Reg::Edx];

/// The registers a function leaves as it found them (besides `esp`, which
/// `ret` restores): `ebx`, `esi`, `edi`, `ebp`.
pub const CALLEE_SAVED: [Reg; 4] = [Reg::Ebx, Reg::Esi, Reg::Edi, Reg::Ebp];

/// The registers a result is returned in: `eax`, and `edx` for the high
/// half of a 64-bit result (`edx:eax`).
pub const RETURN: [Reg; 2] = [Reg::Eax, Reg::Edx];

/// The direction flag at every call and return: clear (0), so string
/// instructions count up.
pub const DIRECTION_FLAG_AT_CALLS: bool = false;

/// Bytes of one stack argument slot.
pub const ARG_SIZE: u32 = 4;

/// The offset from `esp` at a function's entry of its 32-bit stack
/// argument `index` (0-based): `[esp+4+4*index]`, above the return address
/// at `[esp]`.
pub const fn arg_offset(index: u32) -> u32 {
    ARG_SIZE + ARG_SIZE * index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sets_partition_the_registers_but_esp() {
        let mut all: Vec<Reg> = CALLER_SAVED.iter().chain(&CALLEE_SAVED).copied().collect();
        all.sort();
        let want: Vec<Reg> = Reg::ALL.into_iter().filter(|&r| r != Reg::Esp).collect();
        assert_eq!(all, want);
        assert!(RETURN.iter().all(|r| CALLER_SAVED.contains(r)));
        assert_eq!((arg_offset(0), arg_offset(2)), (4, 12));
    }
}
