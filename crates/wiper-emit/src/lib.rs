//! The *emit* stage of wiper: from a [`Residual`](wiper_residual::Residual) program to a runnable ELF.
//!
//! Three steps, each a function:
//!
//! 1. [`plan`] chooses where the new code goes: one new loadable segment,
//!    page-aligned after the highest existing `PT_LOAD`, holding the residual's
//!    static data, the PC thunks a position-independent executable needs, and
//!    the code.
//! 2. [`encode`] lays the residual blocks out for fall-through, turns
//!    terminators into `jcc`/`jmp`, [`Item::Address`](wiper_residual::Item::Address) into `mov` (or, in a PIE,
//!    a call to a PC thunk plus `lea`), and lets iced's `BlockEncoder` pick the
//!    branch encodings. The result keeps every instruction's [`Origin`](wiper_residual::Origin).
//! 3. [`write_elf`] writes the output file: the input, byte for byte, except for
//!    a `PT_LOAD` for the new segment (the input's `PT_NOTE` entry reused, or,
//!    without one, the program header table grown and moved to the end of the
//!    file), a `jmp` at the specialized function's entry, and new sections and
//!    symbols appended at the end of the file so `objdump` and `gdb` see the
//!    new code. Any executable wiper loads can be written, outputs included.
//!
//! [`listing`] prints the encoded code like `objdump -d -M intel`, with the origin
//! of every instruction.

mod compact;
mod elf;
mod encode;
mod layout;
mod listing;
mod phdrs;
mod write;

pub use compact::{compact_elf, Dropped, Range, JOIN_GAP};
pub use encode::{encode, Encoded, Line};
pub use listing::{listing, listing_in, listing_items, ListingItem};
pub use write::write_elf;

use wiper_elf::{Binary, FileType};
use wiper_residual::{ResidualError, PAGE_SIZE};

/// The most zero bytes written between the input's end and the moved
/// program header table: 64 MiB. The padding is about the size of the
/// program's `.bss` (see `phdrs`); a damaged memory size could ask for
/// gigabytes.
pub const MAX_PADDING: u64 = 64 << 20;

/// Alignment of the thunk and code areas in the new segment.
const CODE_ALIGN: u32 = 16;

/// Bytes reserved for PC thunks in a PIE: one 8-byte slot for each of the seven
/// registers a thunk can load (every general register but `esp`), rounded up to
/// [`CODE_ALIGN`]. [`plan`] runs before the residual's registers are known, so it
/// reserves room for all of them.
pub(crate) const THUNK_AREA: u32 = 64;

/// Size of one PC thunk slot (`call next; next: pop reg; ret` is 7 bytes, padded with `int3`).
pub(crate) const THUNK_SLOT: u32 = 8;

/// Why emission failed. Each message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The input has no loadable segment at all.
    #[error("the binary has no PT_LOAD segment")]
    NoLoadSegment,
    /// The new segment would not fit below 4 GiB.
    #[error("the new segment does not fit in the 32-bit address space ({0})")]
    AddressSpace(String),
    /// The residual breaks the shape [`wiper_residual::Residual::verify`] checks.
    #[error(transparent)]
    Residual(#[from] ResidualError),
    /// `Item::Address` into something other than a 32-bit general register
    /// (or into `esp` in a PIE, where the thunk would pop into the stack pointer).
    #[error("cannot load an address into register {reg} (from {origin:#x}): a 32-bit general register other than esp is needed")]
    AddressRegister {
        /// The register, as iced names it.
        reg: String,
        /// The original address of the item.
        origin: u32,
    },
    /// An `Item::Instr` that iced cannot encode, or that is invalid.
    #[error("cannot encode the instruction from {origin:#x}: {message}")]
    Instruction {
        /// The original address of the item.
        origin: u32,
        /// iced's reason, on one line.
        message: String,
    },
    /// The block encoder failed on the whole residual.
    #[error("cannot encode the residual code: {0}")]
    Encode(String),
    /// The residual's static data is larger than the plan left room for.
    #[error("the residual has {len} bytes of data but the plan reserves {room}")]
    DataTooLarge {
        /// Bytes of data in the residual.
        len: usize,
        /// Bytes the plan reserved.
        room: u32,
    },
    /// The plan, the encoded code and the binary do not belong together.
    #[error("inconsistent emit inputs: {0}")]
    Mismatch(String),
    /// The function to patch is not in a file-backed executable segment.
    #[error("function entry {0:#x} is not in a file-backed executable segment")]
    EntryNotMapped(u32),
    /// The function to patch is shorter than the 5-byte `jmp rel32` written
    /// over its entry (by its symbol's size, or by its decoded instructions),
    /// and no direct `call` of it could be pointed at the residual instead.
    #[error("function at {addr:#x} is {size} bytes long, too short for the 5-byte jmp to its specialized code, and no direct call of it can be redirected")]
    FunctionTooShort {
        /// Function entry.
        addr: u32,
        /// Its length: the symbol's size, or the bytes its instructions
        /// cover without a gap from the entry, whichever is smaller.
        size: u32,
    },
    /// The symbol name for the new code cannot go into a string table.
    #[error("invalid symbol name {0:?}: it must be non-empty and contain no NUL byte")]
    SymbolName(String),
    /// The input has no `PT_NOTE` to reuse and so many program headers that
    /// the table, grown by two entries, would be over the 64 KiB Linux loads.
    #[error("{0} program headers are too many: Linux loads at most 2048")]
    TooManyProgramHeaders(usize),
    /// The moved program header table would have to go so far past the end
    /// of the file (a PIE's or a low executable's `.bss`, as its headers
    /// give it) that the zero padding before it would exceed
    /// [`MAX_PADDING`].
    #[error("the program header table would need {padding:#x} bytes of zero padding in the output, over the {max:#x} allowed (is the last segment's memory size right?)", max = MAX_PADDING)]
    TooMuchPadding {
        /// Zero bytes between the end of the file and the table.
        padding: u64,
    },
    /// The compact output of an extraction cannot be laid out (see
    /// [`compact_elf`]).
    #[error("cannot write the compact output: {0}")]
    Compact(String),
    /// The input's ELF headers are not what [`wiper_elf::Binary`] accepted.
    #[error("malformed input ELF: {0}")]
    Malformed(String),
}

/// Where the new segment goes, in link-time addresses (for a PIE, relative to
/// load base 0). Made by [`plan`] before encoding, because the code's addresses
/// (and a PIE's thunk offsets) depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Whether the binary is position-independent: `Item::Address` then goes
    /// through a PC thunk instead of an immediate.
    pub pie: bool,
    /// First address of the new `PT_LOAD` segment (page-aligned).
    pub segment_vaddr: u32,
    /// File offset of the new segment (page-aligned, at or past the input's end).
    pub segment_offset: u64,
    /// Where the residual's static data goes (= `segment_vaddr`).
    pub data_vaddr: u32,
    /// Where the PC thunks go (16-aligned, after the data); the encoded bytes
    /// start here.
    pub thunk_vaddr: u32,
    /// Where the residual code starts (16-aligned, after the thunk area; equal
    /// to `thunk_vaddr` when the binary is not a PIE).
    pub code_vaddr: u32,
}

impl Plan {
    /// Bytes reserved for data: `thunk_vaddr - data_vaddr` (0 for a plan
    /// whose addresses are out of order).
    pub fn data_room(&self) -> u32 {
        self.thunk_vaddr.saturating_sub(self.data_vaddr)
    }
}

/// Chooses the new segment for `binary` with `data_len` bytes of static data:
/// the page after the highest end of any `PT_LOAD` (memory size, so `.bss` is
/// never overlapped), at the next page-aligned file offset past the end of the
/// file (so vaddr and offset are congruent modulo the page size). Data comes
/// first, then (in a PIE) the area for PC thunks, then code, each 16-aligned.
///
/// Fails when the binary has no `PT_LOAD`, or when the segment would not fit
/// below 4 GiB.
pub fn plan(binary: &Binary, data_len: u32) -> Result<Plan, EmitError> {
    let data = binary.file_bytes();
    let header = elf::ElfHeader::read(data)?;
    let phdrs = header.program_headers(data)?;
    let end = phdrs
        .iter()
        .filter(|p| p.kind == elf::PT_LOAD)
        .map(|p| u64::from(p.vaddr) + u64::from(p.memsz))
        .max()
        .ok_or(EmitError::NoLoadSegment)?;
    let too_big = |what: &str| EmitError::AddressSpace(what.to_string());
    let segment_vaddr = wiper_residual::data_address(binary)
        .map(u64::from)
        .ok_or_else(|| too_big(&format!("the loadable segments end at {end:#x}")))?;
    let segment_offset = align_up(data.len() as u64, u64::from(PAGE_SIZE));
    let thunk_vaddr = align_up(segment_vaddr + u64::from(data_len), u64::from(CODE_ALIGN));
    let pie = binary.file_type == FileType::PositionIndependent;
    let code_vaddr = thunk_vaddr + if pie { u64::from(THUNK_AREA) } else { 0 };
    // Leave at least a page of address space for the code itself.
    if code_vaddr + u64::from(PAGE_SIZE) > u64::from(u32::MAX) {
        return Err(too_big(&format!(
            "it would start at {segment_vaddr:#x} and its code at {code_vaddr:#x}"
        )));
    }
    Ok(Plan {
        pie,
        segment_vaddr: segment_vaddr as u32,
        segment_offset,
        data_vaddr: segment_vaddr as u32,
        thunk_vaddr: thunk_vaddr as u32,
        code_vaddr: code_vaddr as u32,
    })
}

/// `value` rounded up to a multiple of `align` (a power of two).
pub(crate) fn align_up(value: u64, align: u64) -> u64 {
    (value + align - 1) & !(align - 1)
}
