//! Machine states fed to the processor and the outcomes read back.

use crate::layout::{LANDING_BASE, LANDING_SIZE, SCRATCH_BASE, SCRATCH_SIZE};
use crate::Rng;
use wiper_x86::Reg;

/// Index of `eax` in [`CpuState::regs`].
pub const EAX: usize = Reg::Eax.index();
/// Index of `ecx` in [`CpuState::regs`].
pub const ECX: usize = Reg::Ecx.index();
/// Index of `edx` in [`CpuState::regs`].
pub const EDX: usize = Reg::Edx.index();
/// Index of `ebx` in [`CpuState::regs`].
pub const EBX: usize = Reg::Ebx.index();
/// Index of `esp` in [`CpuState::regs`].
pub const ESP: usize = Reg::Esp.index();
/// Index of `ebp` in [`CpuState::regs`].
pub const EBP: usize = Reg::Ebp.index();
/// Index of `esi` in [`CpuState::regs`].
pub const ESI: usize = Reg::Esi.index();
/// Index of `edi` in [`CpuState::regs`].
pub const EDI: usize = Reg::Edi.index();

/// EFLAGS bit masks (at their architectural positions) for the flags the
/// oracle sets and reports.
pub mod flags {
    /// Carry flag (bit 0).
    pub const CF: u32 = 1 << 0;
    /// Parity flag (bit 2): set when the low byte of a result has an even number of ones.
    pub const PF: u32 = 1 << 2;
    /// Auxiliary (half) carry flag (bit 4).
    pub const AF: u32 = 1 << 4;
    /// Zero flag (bit 6).
    pub const ZF: u32 = 1 << 6;
    /// Sign flag (bit 7).
    pub const SF: u32 = 1 << 7;
    /// Direction flag (bit 10): string instructions step down when set.
    pub const DF: u32 = 1 << 10;
    /// Overflow flag (bit 11).
    pub const OF: u32 = 1 << 11;
    /// The six arithmetic status flags.
    pub const STATUS: u32 = CF | PF | AF | ZF | SF | OF;
    /// Every flag loaded from and reported in [`crate::CpuState::eflags`]:
    /// the status flags plus DF. Other bits are ignored on input and cleared on output.
    pub const MASK: u32 = STATUS | DF;
    /// `(mask, name)` pairs for messages.
    pub const NAMES: [(u32, &str); 7] = [
        (CF, "CF"),
        (PF, "PF"),
        (AF, "AF"),
        (ZF, "ZF"),
        (SF, "SF"),
        (DF, "DF"),
        (OF, "OF"),
    ];
}

/// The machine state the code under test starts from, or the one it left.
///
/// Only the general-purpose registers, the flags in [`flags::MASK`] and the
/// scratch window are part of a state; segment registers stay as the kernel set
/// them and x87/SSE state is not controlled.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CpuState {
    /// `eax ecx edx ebx esp ebp esi edi`: indexed by [`Reg::index`] (the
    /// encoding order, see [`EAX`]..[`EDI`]).
    pub regs: [u32; 8],
    /// EFLAGS; only the bits in [`flags::MASK`] are loaded and reported.
    pub eflags: u32,
    /// Contents of the scratch window at [`SCRATCH_BASE`]: `mem[i]` is the byte at
    /// `SCRATCH_BASE + i`. Every state of one batch must have the same length
    /// (at most [`crate::MAX_SCRATCH_SIZE`]). The window is mapped in whole
    /// pages; bytes past `mem.len()` in its last page are zeroed before each
    /// state and not reported.
    pub mem: Vec<u8>,
}

impl Default for CpuState {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuState {
    /// A zeroed state with a [`SCRATCH_SIZE`]-byte window and `esp` in its middle,
    /// so that both pushes and pops stay inside the window.
    #[must_use]
    pub fn new() -> Self {
        Self::with_mem_len(SCRATCH_SIZE)
    }

    /// A zeroed state with a `len`-byte window and `esp` at its (4-aligned) middle.
    #[must_use]
    pub fn with_mem_len(len: usize) -> Self {
        let mut regs = [0; 8];
        regs[ESP] = SCRATCH_BASE + ((len / 2) as u32 & !3);
        Self {
            regs,
            eflags: 0,
            mem: vec![0; len],
        }
    }

    /// A random state: random registers (edge values mixed in), random status
    /// flags and DF, random window bytes; `esp` points at a random 4-aligned
    /// address in the middle half of the window. Pointer registers other than
    /// `esp` are left random: set them yourself.
    #[must_use]
    pub fn random(rng: &mut Rng, mem_len: usize) -> Self {
        let mut s = Self::with_mem_len(mem_len);
        for r in &mut s.regs {
            *r = rng.interesting_u32();
        }
        s.eflags = rng.next_u32() & flags::MASK;
        rng.fill_bytes(&mut s.mem);
        let quarter = (mem_len / 4) as u32;
        s.regs[ESP] = if quarter == 0 {
            SCRATCH_BASE
        } else {
            (SCRATCH_BASE + quarter + rng.below(2 * quarter)) & !3
        };
        s
    }

    /// Whether every flag in `mask` (e.g. [`flags::CF`]) is set.
    #[must_use]
    pub fn flag(&self, mask: u32) -> bool {
        self.eflags & mask == mask
    }

    /// Sets or clears the flags in `mask`.
    pub fn set_flag(&mut self, mask: u32, on: bool) {
        if on {
            self.eflags |= mask;
        } else {
            self.eflags &= !mask;
        }
    }

    /// Offset into [`Self::mem`] of the `len` bytes at virtual address `addr`,
    /// if they all lie inside the window.
    #[must_use]
    pub fn mem_offset(&self, addr: u32, len: usize) -> Option<usize> {
        let off = addr.checked_sub(SCRATCH_BASE)? as usize;
        (off.checked_add(len)? <= self.mem.len()).then_some(off)
    }

    /// The byte at virtual address `addr`, if inside the window.
    #[must_use]
    pub fn read_u8(&self, addr: u32) -> Option<u8> {
        self.mem_offset(addr, 1).map(|o| self.mem[o])
    }

    /// The little-endian dword at virtual address `addr`, if inside the window.
    #[must_use]
    pub fn read_u32(&self, addr: u32) -> Option<u32> {
        let o = self.mem_offset(addr, 4)?;
        Some(u32::from_le_bytes(self.mem[o..o + 4].try_into().ok()?))
    }

    /// Writes `bytes` at virtual address `addr`.
    ///
    /// # Panics
    /// If the bytes do not all lie inside the window (a bug in the caller's test).
    pub fn write_bytes(&mut self, addr: u32, bytes: &[u8]) {
        let o = self.mem_offset(addr, bytes.len()).unwrap_or_else(|| {
            panic!(
                "{} bytes at {addr:#x} are outside the scratch window {SCRATCH_BASE:#x}+{:#x}",
                bytes.len(),
                self.mem.len()
            )
        });
        self.mem[o..o + bytes.len()].copy_from_slice(bytes);
    }

    /// Writes the little-endian dword `value` at virtual address `addr`.
    ///
    /// # Panics
    /// If the dword is not inside the window.
    pub fn write_u32(&mut self, addr: u32, value: u32) {
        self.write_bytes(addr, &value.to_le_bytes());
    }
}

/// Why the code under test did not reach a capture point normally.
///
/// Hardware exceptions are told apart by the signal and the trap number the
/// kernel reports (`trapno` in the signal context).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// `#DE` (SIGFPE, trap 0): division by zero or quotient too large.
    DivideError,
    /// `#PF` (SIGSEGV, trap 14): access to an unmapped or protected page.
    PageFault {
        /// The faulting linear address (CR2).
        address: u32,
        /// The page-fault error code (bit 1 set for writes, bit 4 for instruction fetches).
        error_code: u32,
    },
    /// `#GP` (SIGSEGV, trap 13): e.g. a privileged instruction or `int n`.
    GeneralProtection {
        /// The error code pushed by the processor.
        error_code: u32,
    },
    /// `#UD` (SIGILL, trap 6): invalid opcode, e.g. `ud2`.
    InvalidOpcode,
    /// `#BP` (SIGTRAP, trap 3) from an `int3` outside the landing zone.
    Breakpoint,
    /// `#OF` (SIGSEGV, trap 4) from `into` with OF set.
    Overflow,
    /// `#BR` (SIGSEGV, trap 5) from `bound`.
    BoundRange,
    /// The code ran longer than [`crate::RunOptions::timeout_ms`] of CPU time.
    Timeout,
    /// Any other signal.
    Signal {
        /// Signal number.
        signo: u32,
        /// Trap number from the signal context.
        trapno: u32,
        /// Error code from the signal context.
        error_code: u32,
        /// CR2 from the signal context.
        address: u32,
    },
    /// The harness process ended while running this state (e.g. the code under
    /// test made an `exit` system call). The state reported is the input state.
    ProcessDied {
        /// How the process ended, e.g. `exit status: 3`.
        status: String,
    },
}

/// What running the code under test from one state produced.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// The state when control left the code under test (or at the fault: for a
    /// faulting instruction the registers are those before it executed).
    pub state: CpuState,
    /// Where control went: the fall-through address ([`crate::fallthrough_address`]),
    /// a landing-zone address that was jumped, called or returned to, or, with a
    /// fault, the `eip` the processor reported: the faulting instruction for
    /// faults (`#DE`, `#PF`, `#GP`, `#UD`), the following instruction for traps
    /// such as `into`, the interrupted instruction for [`Fault::Timeout`], the
    /// `int3` itself for [`Fault::Breakpoint`], [`crate::CODE_BASE`] for
    /// [`Fault::ProcessDied`].
    pub next_eip: u32,
    /// `None` when control reached the fall-through stub or the landing zone.
    pub fault: Option<Fault>,
}

/// True when `addr` can serve as a branch, call or return target: it lies in the
/// landing zone but not on the code under test or the fall-through jump after it.
#[must_use]
pub fn is_landing_address(addr: u32, code_len: usize) -> bool {
    let in_zone = addr.wrapping_sub(LANDING_BASE) < LANDING_SIZE;
    let used_end = crate::fallthrough_address(code_len) + crate::layout::FALLTHROUGH_JMP_LEN;
    in_zone && !(crate::CODE_BASE..used_end).contains(&addr)
}
