//! Runs IA-32 code on the real processor from chosen machine states.
//!
//! This is wiper's semantic oracle: for an instruction (or a short sequence)
//! it runs many register/flag/memory states natively and returns the states
//! the processor left, so wiper's own concrete evaluator can be compared
//! against silicon. Everything is generated here in Rust: a minimal static
//! ELF32 i386 executable (the *harness*) is assembled with iced-x86, written to
//! a temporary file and run once per batch, with states streamed through its
//! stdin/stdout. It needs an x86 Linux kernel that runs i386 executables
//! (native or IA-32 emulation); no 32-bit toolchain.
//!
//! # Memory map of the harness process
//!
//! | range | what |
//! |---|---|
//! | `0x0804_8000..0x0804_a000` (r-x) | ELF headers, harness code |
//! | `0x0810_0000..` (rw-) | harness data: I/O records, save areas, signal stacks |
//! | [`LANDING_BASE`]`..+`[`LANDING_SIZE`] = `0x2000_0000..0x2002_0000` (r-x) | landing zone: `int3` bytes |
//! | [`CODE_BASE`] = `0x2001_0000` | the code under test, then a 5-byte `jmp` to the capture stub |
//! | [`SCRATCH_BASE`] = `0x3000_0000` (rw-) | scratch window of `mem.len()` bytes (page-rounded) |
//!
//! Nothing else is mapped near these ranges, so stray accesses fault
//! ([`Fault::PageFault`]); the window and harness data are not executable.
//!
//! # How one state runs
//!
//! The harness reads one input record, copies its bytes into the window (zeroing
//! the rest of the window's last page), arms a CPU-time timer, loads
//! `eax..edi` with `popad` and EFLAGS with `popfd` from a frame in harness data,
//! sets `esp` last with `mov esp, [abs]`, and jumps to [`CODE_BASE`]. Only CF,
//! PF, AF, ZF, SF, OF and DF come from the state ([`flags::MASK`]); IF is on, TF,
//! AC and NT off. `cs`, `ds`, `es` and `ss` are the kernel's flat segments;
//! `gs` and `fs` are segments based at [`GS_BASE`] and [`FS_BASE`], below
//! the window (set up once with `set_thread_area`), so `gs:[d]` reaches
//! window bytes as a thread pointer's offsets do.
//!
//! Control leaves the code under test in one of three ways:
//! * **fall-through**: the `jmp` at [`fallthrough_address`] reaches a stub that
//!   stores `esp` to an absolute address before anything else, then
//!   `pushfd`/`pushad` into a save frame (fast path, no kernel entry);
//! * **landing**: any branch, call or return to an `int3` byte of the landing
//!   zone traps; the `SIGTRAP` handler (on an alternate stack, so the window is
//!   not touched) reads the registers from the signal context and reports the
//!   address as [`Outcome::next_eip`] with no fault;
//! * **fault**: any other `SIGSEGV`/`SIGFPE`/`SIGILL`/`SIGBUS`/`SIGTRAP`, or the
//!   CPU-time timer (`SIGVTALRM`, [`Fault::Timeout`]), is caught the same way and
//!   reported as [`Outcome::fault`]; the batch goes on with the next state.
//!
//! In every case the window is copied back and one output record is written.
//! If the process dies anyway (e.g. the code made an `exit` system call), that
//! state gets [`Fault::ProcessDied`] and a fresh process continues with the next.
//!
//! # Choosing branch targets (landing zones)
//!
//! Relative branch targets are fixed by the encoding: assemble at [`CODE_BASE`]
//! and pick targets for which [`is_landing_address`] holds, i.e. inside
//! `LANDING_BASE..LANDING_BASE+LANDING_SIZE` but not on the code itself or on
//! the 5 bytes after it. `rel8` branches reach ±128 bytes around the code,
//! which is all landing zone. For indirect transfers (`jmp eax`, `call [esi]`,
//! `ret`) the caller puts a landing address, or the fall-through address, in
//! the register, memory slot or stack slot. A `call` pushes the fall-through
//! address as its return address.
//!
//! # Record layout (little-endian u32 fields)
//!
//! Input record, `48 + 4*ceil(mem_len/4)` bytes:
//! `0 magic "WIPR"`, `4 sequence number`, `8..40 eax ecx edx ebx esp ebp esi edi`,
//! `40 eflags`, `44 reserved`, `48.. window bytes` (zero-padded to a dword).
//!
//! Output record, `80 + 4*ceil(mem_len/4)` bytes:
//! `0 magic`, `4 sequence number` (both echoed), `8..40 registers`, `40 eflags`,
//! `44 eip` (fall-through address, or the `eip` of the signal context),
//! `48 kind` (0 fall-through, 1 signal), `52 signal number`, `56 trap number`,
//! `60 error code`, `64 cr2`, `68..80 reserved`, `80.. window bytes`.
//!
//! # Limitations
//! * Only the general-purpose registers, the flags of [`flags::MASK`] and the
//!   window are controlled and observed; x87/SSE state, segment registers
//!   (fixed as above) and other EFLAGS bits are not.
//! * Code under test must not make system calls that touch stdin/stdout or
//!   block; `exit` is tolerated ([`Fault::ProcessDied`]).
//! * The code under test is mapped read-only: self-modifying code faults.
//! * At most [`MAX_CODE_LEN`] code bytes and [`MAX_SCRATCH_SIZE`] window bytes.
//! * The harness executable is written to [`std::env::temp_dir`] (or to
//!   `$WIPER_ORACLE_TMPDIR`, which must allow execution) and removed afterwards.
//!
//! # Example
//! ```
//! use wiper_oracle::{assemble, run_code, CpuState, EAX, EBX};
//! use iced_x86::code_asm::*;
//!
//! let code = assemble(|a| a.add(eax, ebx)).unwrap();
//! let mut s = CpuState::new();
//! s.regs[EAX] = 2;
//! s.regs[EBX] = 3;
//! let out = run_code(&code, &[s]).unwrap();
//! assert_eq!(out[0].state.regs[EAX], 5);
//! assert_eq!(out[0].fault, None);
//! ```

/// Re-export, so callers assemble with the same iced-x86 the oracle uses.
pub use iced_x86;

mod harness;
mod layout;
mod run;
mod state;

use iced_x86::code_asm::CodeAssembler;
use iced_x86::{BlockEncoder, BlockEncoderOptions, IcedError, Instruction, InstructionBlock};

pub use layout::{
    fallthrough_address, CODE_BASE, FALLTHROUGH_JMP_LEN, FS_BASE, GS_BASE, LANDING_BASE,
    LANDING_SIZE, MAX_CODE_LEN, MAX_SCRATCH_SIZE, SCRATCH_BASE, SCRATCH_SIZE,
};
pub use state::{
    flags, is_landing_address, CpuState, Fault, Outcome, EAX, EBP, EBX, ECX, EDI, EDX, ESI, ESP,
};
/// The machine model's generator, so oracle states and library code draw
/// from one implementation.
pub use wiper_x86::Rng;

/// Why a batch could not be run at all (per-state problems are [`Fault`]s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OracleError {
    /// The code under test is longer than [`MAX_CODE_LEN`].
    #[error("code under test is {len} bytes, at most {max} are supported")]
    CodeTooLong {
        /// Length given.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A state's window is longer than [`MAX_SCRATCH_SIZE`].
    #[error("scratch window of {len} bytes exceeds the maximum of {max}")]
    MemoryTooLarge {
        /// Length given.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// States of one batch have windows of different lengths.
    #[error("state {index} has a {len}-byte window, state 0 has {expected}")]
    MemorySizeMismatch {
        /// Index of the first offending state.
        index: usize,
        /// Its window length.
        len: usize,
        /// The first state's window length.
        expected: usize,
    },
    /// Assembling or encoding failed.
    #[error("assembling failed: {0}")]
    Assemble(#[from] IcedError),
    /// Writing or running the harness executable failed.
    #[error("i/o error running the harness: {0}")]
    Io(#[from] std::io::Error),
    /// The harness itself failed (not the code under test).
    #[error("harness failure: {0}")]
    Harness(String),
    /// The output stream did not match the input (e.g. the code under test
    /// read stdin or wrote stdout).
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Settings for [`run_code_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// CPU-time budget per state in milliseconds (user time, so a loaded
    /// machine does not cause spurious timeouts); 0 disables the timer.
    /// A state over budget gets [`Fault::Timeout`].
    pub timeout_ms: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { timeout_ms: 1000 }
    }
}

impl RunOptions {
    /// Options with the given per-state CPU-time budget.
    #[must_use]
    pub fn with_timeout_ms(timeout_ms: u32) -> Self {
        Self { timeout_ms }
    }
}

/// Runs `code` (machine code assembled for address [`CODE_BASE`]) from each of
/// `states` on the processor, in one harness process, and returns one outcome
/// per state in order. All states must have windows of the same length.
pub fn run_code(code: &[u8], states: &[CpuState]) -> Result<Vec<Outcome>, OracleError> {
    run_code_with(code, states, &RunOptions::default())
}

/// [`run_code`] with explicit options.
pub fn run_code_with(
    code: &[u8],
    states: &[CpuState],
    options: &RunOptions,
) -> Result<Vec<Outcome>, OracleError> {
    run::run(code, states, options)
}

/// Encodes `instructions` at [`CODE_BASE`] (branch targets are absolute in
/// iced-x86 instructions) and runs them like [`run_code`].
pub fn run_instructions(
    instructions: &[Instruction],
    states: &[CpuState],
) -> Result<Vec<Outcome>, OracleError> {
    run_code(&encode_instructions(instructions)?, states)
}

/// Encodes `instructions` for address [`CODE_BASE`].
pub fn encode_instructions(instructions: &[Instruction]) -> Result<Vec<u8>, OracleError> {
    let block = InstructionBlock::new(instructions, u64::from(CODE_BASE));
    Ok(BlockEncoder::encode(32, block, BlockEncoderOptions::NONE)?.code_buffer)
}

/// Assembles code for address [`CODE_BASE`] with a 32-bit [`CodeAssembler`],
/// e.g. `assemble(|a| a.add(eax, ebx))`.
pub fn assemble(
    f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Result<Vec<u8>, OracleError> {
    let mut a = CodeAssembler::new(32)?;
    f(&mut a)?;
    Ok(a.assemble(u64::from(CODE_BASE))?)
}
