//! The output's program header table: a `PT_LOAD` for the new segment.
//!
//! Two ways, chosen by the input:
//!
//! - **Reuse a `PT_NOTE`.** The first `PT_NOTE` entry becomes the new
//!   `PT_LOAD`, moved after the last `PT_LOAD` when it came before one (the
//!   kernel and ld.so expect `PT_LOAD`s in ascending address order). The
//!   table keeps its place and size, so nothing that finds it changes; the
//!   notes (build id, ABI tag) lose their header, which the loaders of an
//!   executable never read.
//! - **Move the table** (an input without `PT_NOTE`, such as a static musl
//!   binary: `PT_LOAD`s, `PT_GNU_STACK`, `PT_GNU_RELRO`). No other entry is
//!   free: `PT_GNU_STACK` says whether the stack is executable, the others
//!   describe the program. The table grows by two entries, the new segment's
//!   `PT_LOAD` and a read-only `PT_LOAD` that maps the table itself, and is
//!   written, page-aligned, at the end of the file; `e_phoff` and `e_phnum`
//!   point to it and a `PT_PHDR` entry (which stays first) describes it: ld.so
//!   takes a PIE's load bias to be `AT_PHDR - PT_PHDR.p_vaddr`.
//!
//! The moved table must be mapped where the auxiliary vector's `AT_PHDR`
//! says, since that is where the C library reads it at startup (static
//! glibc and musl find `PT_TLS` there, glibc also `PT_GNU_STACK` and
//! `PT_GNU_RELRO`; ld.so finds everything there). Linux computes `AT_PHDR`
//! (fs/binfmt_elf.c) as the address where the `PT_LOAD` whose file bytes
//! hold `e_phoff` maps it (since 5.18), and before as the first `PT_LOAD`'s
//! `p_vaddr - p_offset` plus `e_phoff`, which is the table's address only
//! when its segment has the same `p_vaddr - p_offset` as the first one. The
//! table's segment is placed so that both give its address:
//! - in an executable at fixed addresses with room below its lowest
//!   `PT_LOAD` (above the usual `vm.mmap_min_addr`), right below it, as the
//!   first `PT_LOAD`;
//! - otherwise (a PIE starts at address 0) after the new segment, at the
//!   address whose distance to its file offset is the first `PT_LOAD`'s,
//!   which pads the file with zeros up to that offset (about the size of the
//!   program's `.bss`).

use crate::elf::{
    malformed, put_u16, put_u32, ElfHeader, Phdr, ET_EXEC, PF_R, PHDR_SIZE, PT_LOAD, PT_NOTE,
    PT_PHDR,
};
use crate::{align_up, EmitError};
use wiper_residual::PAGE_SIZE;

/// The lowest address the table's segment may go below an executable:
/// 64 KiB, Linux's default `vm.mmap_min_addr` (4096 on the machine the tests
/// were written on).
const MIN_VADDR: u64 = 0x1_0000;

/// The most program headers Linux loads: 64 KiB of them.
const MAX_PHNUM: usize = 0x1_0000 / PHDR_SIZE;

/// Gives `load`, the new segment (already in `out`), a program header in
/// `out`, the output so far: the input's table edited in place when it has
/// a `PT_NOTE`, else a grown table appended (see the module documentation).
pub(crate) fn add_load(out: &mut Vec<u8>, header: &ElfHeader, load: Phdr) -> Result<(), EmitError> {
    let mut table = header.program_headers(out)?;
    let Some(note) = table.iter().position(|p| p.kind == PT_NOTE) else {
        return move_table(out, header, table, load);
    };
    table.remove(note);
    let after_loads = table
        .iter()
        .rposition(|p| p.kind == PT_LOAD)
        .map_or(0, |last| last + 1);
    table.insert(note.max(after_loads), load);
    for (i, p) in table.iter().enumerate() {
        let at = header.phoff + i * PHDR_SIZE;
        out[at..at + PHDR_SIZE].copy_from_slice(&p.bytes());
    }
    Ok(())
}

/// Appends the input's `table` grown by `load` and the table's own
/// `PT_LOAD` to `out`, and points the file header and `PT_PHDR` to it.
fn move_table(
    out: &mut Vec<u8>,
    header: &ElfHeader,
    mut table: Vec<Phdr>,
    load: Phdr,
) -> Result<(), EmitError> {
    let count = table.len() + 2;
    if count > MAX_PHNUM {
        return Err(EmitError::TooManyProgramHeaders(count));
    }
    let size = (count * PHDR_SIZE) as u32;
    let is_load = |p: &Phdr| p.kind == PT_LOAD;
    let first = table
        .iter()
        .position(is_load)
        .ok_or(EmitError::NoLoadSegment)?;
    let last = table
        .iter()
        .rposition(is_load)
        .ok_or(EmitError::NoLoadSegment)?;
    let load_end = u64::from(load.vaddr) + u64::from(load.memsz);
    let place = place_table(
        &table,
        header.kind == ET_EXEC,
        out.len() as u64,
        size,
        load_end,
    )?;
    let own = Phdr::load(place.offset, place.vaddr, size, PF_R);
    table.insert(last + 1, load);
    table.insert(if place.below { first } else { last + 2 }, own);
    for p in table.iter_mut().filter(|p| p.kind == PT_PHDR) {
        *p = Phdr {
            kind: PT_PHDR,
            flags: p.flags,
            align: p.align,
            ..own
        };
    }
    out.resize(place.offset as usize, 0);
    for p in &table {
        out.extend_from_slice(&p.bytes());
    }
    put_u32(out, 28, place.offset);
    put_u16(out, 44, count as u16);
    Ok(())
}

/// Where the moved table goes.
#[derive(Debug, PartialEq, Eq)]
struct Place {
    /// File offset (page-aligned, at or past the end of the file).
    offset: u32,
    /// Address (congruent with `offset` modulo the page size).
    vaddr: u32,
    /// Whether it is below every `PT_LOAD` (else above them all).
    below: bool,
}

/// Where a table of `size` bytes goes, for a file of `file_len` bytes whose
/// program headers are `table` and whose new segment ends at `above`: below
/// the lowest `PT_LOAD` when the executable is `fixed` (`ET_EXEC`) and there
/// is room, else past `above` at the first `PT_LOAD`'s distance between
/// address and offset (see the module documentation).
fn place_table(
    table: &[Phdr],
    fixed: bool,
    file_len: u64,
    size: u32,
    above: u64,
) -> Result<Place, EmitError> {
    let page = u64::from(PAGE_SIZE);
    let end_of_file = align_up(file_len, page);
    let pages = align_up(u64::from(size), page);
    let loads = || table.iter().filter(|p| p.kind == PT_LOAD);
    let lowest = loads()
        .map(|p| u64::from(p.vaddr) & !(page - 1))
        .min()
        .ok_or(EmitError::NoLoadSegment)?;
    let too_big = |what: String| EmitError::AddressSpace(what);
    if fixed && lowest >= MIN_VADDR + pages {
        let offset = u32::try_from(end_of_file)
            .map_err(|_| too_big("the output file would be over 4 GiB".to_string()))?;
        let vaddr = (lowest - pages) as u32;
        return Ok(Place {
            offset,
            vaddr,
            below: true,
        });
    }
    let first = loads().next().ok_or(EmitError::NoLoadSegment)?;
    let delta = i64::from(first.vaddr) - i64::from(first.offset);
    if delta % i64::from(PAGE_SIZE) != 0 {
        return Err(malformed(
            "the first PT_LOAD's address and file offset differ modulo the page size",
        ));
    }
    let offset = (end_of_file as i64).max(align_up(above, page) as i64 - delta);
    let vaddr = offset + delta;
    let fits = |v: i64| u32::try_from(v).is_ok();
    if !fits(offset) || !fits(vaddr + i64::from(size)) {
        return Err(too_big(format!(
            "the program header table would be at file offset {offset:#x}, address {vaddr:#x}"
        )));
    }
    let padding = (offset - end_of_file as i64) as u64;
    if padding > crate::MAX_PADDING {
        return Err(EmitError::TooMuchPadding { padding });
    }
    Ok(Place {
        offset: offset as u32,
        vaddr: vaddr as u32,
        below: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `PT_LOAD` of `size` bytes at `offset`, mapped at `vaddr`.
    fn load(offset: u32, vaddr: u32, size: u32) -> Phdr {
        Phdr::load(offset, vaddr, size, PF_R)
    }

    /// Loads like a static executable's (at 0x8048000) or a PIE's (at 0).
    fn image(base: u32) -> Vec<Phdr> {
        vec![load(0, base, 0x1f8), load(0x1000, base + 0x1000, 0x8000)]
    }

    /// Where `place_table` puts the table, as a tuple.
    fn at(fixed: bool, base: u32, file_len: u64, above: u64) -> (u32, u32, bool) {
        let p = place_table(&image(base), fixed, file_len, 0x120, above).unwrap();
        (p.offset, p.vaddr, p.below)
    }

    #[test]
    fn a_fixed_executable_with_room_gets_the_table_below() {
        let below = (0xa000, 0x804_7000, true);
        assert_eq!(at(true, 0x804_8000, 0x9123, 0x805_3000), below);
        // Exactly the room needed, 64 KiB above address 0.
        let lowest = (0xa000, 0x1_0000, true);
        assert_eq!(at(true, 0x1_1000, 0x9123, 0x1_d000), lowest);
    }

    #[test]
    fn without_room_below_the_table_goes_congruent_above_the_new_segment() {
        // A PIE at 0: the table at the address equal to its offset, past the
        // new segment (which ends at 0x2_0010), the file padded to there.
        let above = (0x2_1000, 0x2_1000, false);
        assert_eq!(at(false, 0, 0x9123, 0x2_0010), above);
        // A fixed executable too low for room below: the same distance as
        // its first PT_LOAD; a file already longer needs no padding.
        let above = (0x4_0000, 0x5_0000, false);
        assert_eq!(at(true, 0x1_0000, 0x4_0000, 0x3_0000), above);
    }

    #[test]
    fn impossible_places_are_errors() {
        let mut skewed = image(0);
        skewed[0].vaddr = 0x10;
        let err = place_table(&skewed, false, 0x9000, 0x120, 0x2_0000).unwrap_err();
        assert!(matches!(err, EmitError::Malformed(_)), "{err}");
        // The last page still holds the table; past it, nothing does.
        assert_eq!(at(false, 0, 0xffff_0000, 0xffff_f000).1, 0xffff_f000);
        let err = place_table(&image(0), false, 0x9000, 0x120, 0xffff_f001).unwrap_err();
        assert!(matches!(err, EmitError::AddressSpace(_)), "{err}");
        // Found by fuzzing: a memory size of 1 GiB asked for 1 GiB of zeros.
        let err = place_table(&image(0), false, 0x9000, 0x120, 0x4000_0000).unwrap_err();
        assert_eq!(
            err,
            EmitError::TooMuchPadding {
                padding: 0x3fff_7000
            }
        );
        let most = 0x9000 + crate::MAX_PADDING;
        assert_eq!(at(false, 0, 0x9000, most).0 as u64, most);
        let err = place_table(&image(0), false, 0x9000, 0x120, most + 1).unwrap_err();
        assert!(matches!(err, EmitError::TooMuchPadding { .. }), "{err}");
        let err = place_table(&[], false, 0x9000, 0x120, 0x2_0000).unwrap_err();
        assert_eq!(err, EmitError::NoLoadSegment);
    }
}
