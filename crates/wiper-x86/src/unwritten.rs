//! Writable data that nothing writes: named objects of writable segments
//! (`STT_OBJECT` symbols with a size) that no instruction of the binary
//! stores to and whose address never escapes, so that every run sees their
//! initial contents from the file, like read-only data.
//!
//! The scan is a linear sweep over every executable section (or segment)
//! plus every byte of the file-backed data:
//! - a memory operand whose displacement lies in an object and which the
//!   instruction writes (a store, a read-modify-write, a string store)
//!   marks the object written; with a base or index register, so does
//!   every object within [`INDEXED_STORE_REACH`] of the displacement (gcc
//!   folds constant index offsets into it);
//! - the address of an object as an immediate or as the operand of `lea`
//!   (inside it, or within [`ADDRESS_CONSTANT_REACH`] of it when inside
//!   no object; within [`INDEXED_STORE_REACH`] for an indexed `lea`), or
//!   as a 32-bit word anywhere in the data (a pointer in a table), lets it
//!   escape: code could then store through a register, so it counts as
//!   written too.
//!
//! Only statically linked, position-dependent executables without
//! position-independent code are scanned: PIC (a PIE, or PIC code such as
//! static glibc and musl linked into an `ET_EXEC`, recognized by its
//! `get_pc_thunk` helpers) addresses every global relative to the GOT, and
//! in a dynamically linked program the dynamic linker and shared libraries
//! write data this sweep does not see. Stripped binaries have no object symbols,
//! so nothing is found. The rule assumes what a sequential C program
//! allows: no other thread, signal handler or debugger writes an object
//! the code never names for writing, and no store overflows from another
//! object into it.

use iced_x86::{
    Decoder, DecoderOptions, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register,
};
use wiper_elf::{Binary, FileType, SymbolKind};

/// SHF_EXECINSTR.
const EXECUTABLE_SECTION: u32 = 0x4;
/// SHF_ALLOC.
const ALLOCATED_SECTION: u32 = 0x2;
/// SHT_NOBITS (`.bss`: no file bytes).
const NOBITS: u32 = 8;

/// The byte ranges `[start, end)` of named writable objects that no code
/// writes and whose address does not escape, sorted.
pub fn unwritten_objects(binary: &Binary) -> Vec<(u32, u32)> {
    if binary.file_type != FileType::Executable
        || binary.interpreter.is_some()
        || has_pc_thunks(binary)
    {
        return Vec::new();
    }
    let mut objects: Vec<(u32, u32)> = binary
        .symbols
        .iter()
        .filter(|s| s.kind == SymbolKind::Object && s.size > 0)
        .filter(|s| {
            binary
                .segment_at(s.addr)
                .is_some_and(|seg| seg.perms.write && seg.contains(s.addr + s.size - 1))
        })
        .map(|s| (s.addr, s.addr + s.size))
        .collect();
    objects.sort_unstable();
    objects.dedup();
    if objects.is_empty() {
        return objects;
    }
    let mut written = vec![false; objects.len()];
    let mut mark = |addr: u32, reach: Reach| {
        // Every object within the reach of `addr` (aliases and overlaps
        // included).
        let inside = objects
            .iter()
            .any(|&(start, end)| start <= addr && addr < end);
        let margin = match reach {
            Reach::Exact => 0,
            Reach::Near if inside => 0,
            Reach::Near => ADDRESS_CONSTANT_REACH,
            Reach::Indexed => INDEXED_STORE_REACH,
        };
        let (lo, hi) = (addr.saturating_sub(margin), addr.saturating_add(margin));
        for (i, &(start, end)) in objects.iter().enumerate() {
            if start <= hi && lo < end {
                written[i] = true;
            }
        }
    };
    for (addr, bytes) in code_ranges(binary) {
        scan_code(addr, bytes, &mut mark);
    }
    for (_, bytes) in data_ranges(binary) {
        for w in bytes.windows(4) {
            mark(u32::from_le_bytes([w[0], w[1], w[2], w[3]]), Reach::Exact);
        }
    }
    objects
        .into_iter()
        .zip(written)
        .filter(|(_, w)| !w)
        .map(|(o, _)| o)
        .collect()
}

/// Whether the binary holds position-independent code (gcc's
/// `__x86.get_pc_thunk.*`, or the older `__i686.get_pc_thunk.*`): such code
/// reaches its globals relative to the GOT (`[ebx+crc@GOTOFF]`), so their
/// addresses never appear and the sweep would miss its stores, even in a
/// position-dependent executable (Debian's gcc compiles as PIE by default;
/// static glibc and musl are PIC).
fn has_pc_thunks(binary: &Binary) -> bool {
    binary
        .symbols
        .iter()
        .any(|s| s.name.contains(".get_pc_thunk."))
}

/// The executable sections (the executable segments when there are no
/// section headers) with their bytes.
fn code_ranges(binary: &Binary) -> Vec<(u32, &[u8])> {
    loaded_ranges(binary, true)
}

/// The loaded, file-backed sections that are not code (the other segments
/// when there are no section headers; those include the ELF and program
/// headers, whose addresses then count as escaped pointers).
fn data_ranges(binary: &Binary) -> Vec<(u32, &[u8])> {
    loaded_ranges(binary, false)
}

/// The file-backed bytes of the allocated sections that are (`code`) or
/// are not executable, or of such segments without section headers.
fn loaded_ranges(binary: &Binary, code: bool) -> Vec<(u32, &[u8])> {
    let sections: Vec<(u32, u32)> = binary
        .sections
        .iter()
        .filter(|s| s.flags & ALLOCATED_SECTION != 0 && s.kind != NOBITS)
        .filter(|s| (s.flags & EXECUTABLE_SECTION != 0) == code && s.addr != 0)
        .map(|s| (s.addr, s.size))
        .collect();
    let ranges = if binary.sections.is_empty() {
        binary
            .segments
            .iter()
            .filter(|s| s.perms.execute == code)
            .map(|s| (s.vaddr, s.file_size))
            .collect()
    } else {
        sections
    };
    ranges
        .into_iter()
        .filter_map(|(addr, size)| {
            let bytes = binary.bytes_from(addr)?;
            Some((addr, &bytes[..bytes.len().min(size as usize)]))
        })
        .collect()
}

/// How far from its displacement an indexed store may land in another
/// object: gcc folds constant index offsets into the displacement
/// (`a[i-1]` is `[eax*4 + a-4]`, `m[i-1][j]` one row before `m`), so the
/// displacement may lie in a neighbour of the object written.
pub const INDEXED_STORE_REACH: u32 = 64 * 1024;

/// How far from an address constant (an immediate, `lea` of an absolute
/// address) that lies in no object the object it lets escape may lie:
/// `mov edx,a-4` before `[edx+eax*4]` names `a` four bytes early. A
/// constant inside an object names that object.
pub const ADDRESS_CONSTANT_REACH: u32 = 256;

/// Which objects an address found in the code or data may stand for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// The object containing it (an absolute store, a pointer in data).
    Exact,
    /// The object containing it; if none, those within
    /// [`ADDRESS_CONSTANT_REACH`] (an address constant in code).
    Near,
    /// Those within [`INDEXED_STORE_REACH`] (an indexed store or `lea`).
    Indexed,
}

/// Calls `mark` with every address that `code` (at `addr`) writes through
/// a displacement or lets escape, and how far from it the write may land
/// (see [`Reach`]).
fn scan_code(addr: u32, code: &[u8], mark: &mut impl FnMut(u32, Reach)) {
    let mut decoder = Decoder::with_ip(32, code, u64::from(addr), DecoderOptions::NONE);
    let mut factory = InstructionInfoFactory::new();
    for ins in &mut decoder {
        if ins.is_invalid() {
            continue;
        }
        for i in 0..ins.op_count() {
            match ins.op_kind(i) {
                OpKind::Immediate32 | OpKind::Immediate8to32 => {
                    mark(ins.immediate32(), Reach::Near)
                }
                OpKind::Memory if ins.mnemonic() == Mnemonic::Lea => {
                    let indexed =
                        ins.memory_base() != Register::None || ins.memory_index() != Register::None;
                    let reach = if indexed { Reach::Indexed } else { Reach::Near };
                    mark(ins.memory_displacement32(), reach)
                }
                _ => {}
            }
        }
        let info = factory.info(&ins);
        for mem in info.used_memory() {
            let writes = !matches!(
                mem.access(),
                OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess
            );
            if writes && mem.segment() != Register::FS && mem.segment() != Register::GS {
                let indexed = mem.base() != Register::None || mem.index() != Register::None;
                let reach = if indexed {
                    Reach::Indexed
                } else {
                    Reach::Exact
                };
                mark(mem.displacement() as u32, reach);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(code: &[u8]) -> Vec<u32> {
        marked_with_reach(code)
            .into_iter()
            .map(|(a, _)| a)
            .collect()
    }

    fn marked_with_reach(code: &[u8]) -> Vec<(u32, Reach)> {
        let mut out = Vec::new();
        scan_code(0x1000, code, &mut |a, r| out.push((a, r)));
        out
    }

    #[test]
    fn stores_and_escapes_are_marked_and_loads_are_not() {
        // mov eax,[0x804c010]: a load.
        assert!(!marked(&[0xa1, 0x10, 0xc0, 0x04, 0x08]).contains(&0x804c010));
        // mov eax,[eax*4+0x804c010]: an indexed load.
        assert!(!marked(&[0x8b, 0x04, 0x85, 0x10, 0xc0, 0x04, 0x08]).contains(&0x804c010));
        // mov [0x804c010],eax: a store.
        assert!(marked(&[0xa3, 0x10, 0xc0, 0x04, 0x08]).contains(&0x804c010));
        // add [ecx*4+0x804c010],edx: read-modify-write through an index,
        // which may land in a neighbouring object.
        assert!(
            marked_with_reach(&[0x01, 0x14, 0x8d, 0x10, 0xc0, 0x04, 0x08])
                .contains(&(0x804c010, Reach::Indexed))
        );
        assert!(
            marked_with_reach(&[0xa3, 0x10, 0xc0, 0x04, 0x08]).contains(&(0x804c010, Reach::Exact))
        );
        // mov eax,0x804c010 and push 0x804c010: the address escapes.
        assert!(marked(&[0xb8, 0x10, 0xc0, 0x04, 0x08]).contains(&0x804c010));
        assert!(marked(&[0x68, 0x10, 0xc0, 0x04, 0x08]).contains(&0x804c010));
        // lea eax,[ebx+0x804c010]: the address escapes.
        assert!(marked(&[0x8d, 0x83, 0x10, 0xc0, 0x04, 0x08]).contains(&0x804c010));
    }
}
