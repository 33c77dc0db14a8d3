//! The compact output of an extraction: a new ELF file that holds only
//! what can still run.
//!
//! [`compact_elf`] takes the output [`crate::write_elf`] made (the input
//! with the residual's segment, sections and symbols) and leaves out the
//! ranges the caller found unused: original code nothing can reach, and
//! read-only data nothing reads. Nothing moves in memory: every byte kept is mapped at its
//! old address, so no code or data needs fixing. What changes is the
//! file:
//!
//! - each executable `PT_LOAD` of the original program becomes one
//!   `PT_LOAD` per run of kept code (runs closer than [`JOIN_GAP`] bytes, or
//!   on one page, are joined, the bytes between them filled with `int3`);
//!   other segments are kept whole, minus the dropped read-only ranges at
//!   their ends;
//! - the runs are packed into the file: each needs its file offset
//!   congruent to its address modulo the page size, so two runs may share
//!   a page of the file when their offsets within a page do not overlap;
//! - a new program header table follows the first segment's bytes (which
//!   hold the ELF header and the old table, kept for code that reads it
//!   through a static `AT_PHDR`) on its last page, and `PT_PHDR` points
//!   to it; a `PT_LOAD` that only mapped the old output's table is dropped,
//!   and so are `PT_NOTE` and `PT_GNU_EH_FRAME` when their bytes are;
//! - the sections are the kept pieces of the old ones (a code section
//!   split into one section per run, all with its name), then `.symtab`
//!   with the symbols of what is kept, `.strtab` and `.shstrtab`, rebuilt;
//!   other sections that are not loaded (`.comment`) are dropped.

use std::collections::BTreeMap;

use crate::elf::{
    malformed, put_u16, put_u32, ElfHeader, Phdr, Shdr, PF_X, PHDR_SIZE, PT_LOAD, PT_NOTE, PT_PHDR,
    SHDR_SIZE, SHF_ALLOC, SHN_LORESERVE, SHT_NOBITS, SHT_REL, SHT_RELA, SHT_STRTAB, SHT_SYMTAB,
    SYM_SIZE,
};
use crate::EmitError;
use wiper_residual::PAGE_SIZE;

/// `PT_GNU_EH_FRAME`: the unwinder's index of `.eh_frame`.
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
/// `SHN_ABS`: an absolute symbol.
const SHN_ABS: u16 = 0xfff1;
/// `STT_SECTION`: a section's own symbol.
const STT_SECTION: u8 = 3;
/// Kept code runs closer than this are joined into one segment.
pub const JOIN_GAP: u32 = 64;
/// Size of the ELF32 file header.
const ELF_HEADER_SIZE: u32 = 52;
/// `int3`: what fills the dropped code between two joined runs.
const INT3: u8 = 0xcc;

/// A half-open range of link-time addresses.
pub type Range = (u32, u32);

/// What [`compact_elf`] leaves out of the original program.
#[derive(Clone, Debug, Default)]
pub struct Dropped {
    /// Address ranges of code that cannot run (dropped functions, a
    /// replaced function's body after the jump at its entry) and of
    /// read-only data nothing uses (`.eh_frame` without an unwinder).
    pub ranges: Vec<Range>,
}

/// One piece of the output: bytes mapped at `vaddr` with `flags`.
struct Piece {
    vaddr: u32,
    bytes: Vec<u8>,
    memsz: u32,
    flags: u32,
    /// The file offset chosen for it.
    offset: u32,
}

impl Piece {
    fn end(&self) -> u32 {
        self.vaddr + self.bytes.len() as u32
    }

    fn contains(&self, addr: u32) -> bool {
        (self.vaddr..self.vaddr + self.memsz.max(1)).contains(&addr)
    }
}

/// The compact ELF for `full`, the output of [`crate::write_elf`],
/// without the bytes `dropped` names (see the module documentation).
/// Fails when `full` has no section headers, when the ELF header is not in
/// its first segment, when the entry point or a segment that must stay
/// (`PT_TLS`, `PT_DYNAMIC`, ...) lies in dropped bytes, or when the new
/// program header table finds no room after the first segment.
pub fn compact_elf(full: &[u8], dropped: &Dropped) -> Result<Vec<u8>, EmitError> {
    let header = ElfHeader::read(full)?;
    if !header.has_sections() {
        return Err(EmitError::Compact(
            "the output has no section headers".into(),
        ));
    }
    let phdrs = header.program_headers(full)?;
    let sections: Vec<Shdr> = (0..header.shnum)
        .map(|i| Shdr::read(full, header.shoff + i * SHDR_SIZE))
        .collect::<Option<_>>()
        .ok_or_else(|| malformed("section header table outside the file"))?;
    let holes = merge(dropped.ranges.clone());
    let first = phdrs
        .iter()
        .position(|p| p.kind == PT_LOAD && p.offset == 0 && p.filesz >= ELF_HEADER_SIZE)
        .ok_or_else(|| EmitError::Compact("the ELF header is in no segment".into()))?;
    let table_load = phdrs.iter().position(|p| {
        p.kind == PT_LOAD
            && p.offset as usize <= header.phoff
            && header.phoff < (p.offset + p.filesz) as usize
    });
    let mut pieces = Vec::new();
    let mut loads = Vec::new(); // (index in `phdrs`, pieces of it)
    for (i, p) in phdrs.iter().enumerate() {
        if p.kind != PT_LOAD || (Some(i) == table_load && i != first) {
            continue;
        }
        let no_holes = [];
        let made = segment_pieces(full, p, if i == first { &no_holes } else { &holes })?;
        loads.push((i, pieces.len()..pieces.len() + made.len()));
        pieces.extend(made);
    }
    let others: Vec<Phdr> = phdrs
        .iter()
        .enumerate()
        .filter(|(i, p)| p.kind != PT_LOAD && !(Some(*i) == table_load && *i != first))
        .map(|(_, p)| *p)
        .filter(|p| !dropped_entirely(p, &holes))
        .collect();
    let count = pieces.len() + others.len();
    let first_piece = loads
        .iter()
        .find(|(i, _)| *i == first)
        .expect("the first segment")
        .1
        .start;
    let table_at = place_table(&mut pieces, first_piece, count)?;
    pack(&mut pieces, first_piece);
    let table = program_headers(&phdrs, &loads, &pieces, &others, table_at, count)?;
    let entry = u32::from_le_bytes(full[24..28].try_into().expect("4 bytes"));
    if !pieces.iter().any(|p| p.contains(entry)) {
        return Err(EmitError::Compact(format!(
            "the entry point {entry:#x} is dropped"
        )));
    }
    let mut out = Vec::new();
    for p in &pieces {
        let at = p.offset as usize;
        if out.len() < at + p.bytes.len() {
            out.resize(at + p.bytes.len(), 0);
        }
        out[at..at + p.bytes.len()].copy_from_slice(&p.bytes);
    }
    let table_offset = file_offset(&pieces, table_at.0).expect("the table is in a piece");
    for (k, ph) in table.iter().enumerate() {
        let at = table_offset as usize + k * PHDR_SIZE;
        out[at..at + PHDR_SIZE].copy_from_slice(&ph.bytes());
    }
    let (shoff, shnum, shstrndx) =
        write_sections(&mut out, full, &header, &sections, &pieces, &holes)?;
    put_u32(&mut out, 28, table_offset);
    put_u16(&mut out, 44, count as u16);
    put_u32(&mut out, 32, shoff);
    put_u16(&mut out, 48, shnum);
    put_u16(&mut out, 50, shstrndx);
    Ok(out)
}

/// Sorted, overlapping or touching ranges joined.
fn merge(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort_unstable();
    let mut out: Vec<Range> = Vec::new();
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The pieces of the segment `p`: its file bytes minus `holes`, runs
/// closer than [`JOIN_GAP`] or on one page joined (the gap filled with
/// `int3` in code, zeros elsewhere). The last piece carries the segment's
/// memory beyond its file bytes.
fn segment_pieces(full: &[u8], p: &Phdr, holes: &[Range]) -> Result<Vec<Piece>, EmitError> {
    let (start, end) = (p.vaddr, p.vaddr + p.filesz);
    let mut runs = kept_parts((start, end), holes);
    if runs.is_empty() && p.memsz > p.filesz {
        // Nothing of the file is kept, but the memory past it is.
        runs.push((end, end));
    }
    let page = |a: u32| a / PAGE_SIZE;
    let mut joined: Vec<Range> = Vec::new();
    for (a, b) in runs {
        match joined.last_mut() {
            Some(last) if a - last.1 < JOIN_GAP || page(a) == page(last.1.saturating_sub(1)) => {
                last.1 = b
            }
            _ => joined.push((a, b)),
        }
    }
    let fill = if p.flags & PF_X != 0 { INT3 } else { 0 };
    let bytes_of = |a: u32, b: u32| -> Result<Vec<u8>, EmitError> {
        let from = (p.offset + (a - p.vaddr)) as usize;
        let mut v = full
            .get(from..from + (b - a) as usize)
            .ok_or_else(|| malformed("a segment lies outside the file"))?
            .to_vec();
        // Dropped bytes inside a joined run.
        for &(h0, h1) in holes {
            let (h0, h1) = (h0.max(a), h1.min(b));
            if h0 < h1 {
                v[(h0 - a) as usize..(h1 - a) as usize].fill(fill);
            }
        }
        Ok(v)
    };
    let n = joined.len();
    joined
        .into_iter()
        .enumerate()
        .map(|(k, (a, b))| {
            let bytes = bytes_of(a, b)?;
            let memsz = if k + 1 == n {
                p.vaddr + p.memsz - a
            } else {
                b - a
            };
            Ok(Piece {
                vaddr: a,
                bytes,
                memsz,
                flags: p.flags,
                offset: 0,
            })
        })
        .collect()
}

/// Whether the bytes a program header describes were all dropped (it is
/// then left out: a `PT_NOTE` or `PT_GNU_EH_FRAME` whose section went).
fn dropped_entirely(p: &Phdr, holes: &[Range]) -> bool {
    let droppable = p.kind == PT_NOTE || p.kind == PT_GNU_EH_FRAME;
    droppable
        && p.filesz > 0
        && holes
            .iter()
            .any(|&(a, b)| a <= p.vaddr && p.vaddr + p.filesz <= b)
}

/// Grows the piece `first` (the one holding the ELF header) by a program
/// header table of `count` entries after its bytes, 4-aligned; returns the
/// table's address and size. It must end on a page no other piece uses.
fn place_table(pieces: &mut [Piece], first: usize, count: usize) -> Result<(u32, u32), EmitError> {
    let size = (count * PHDR_SIZE) as u32;
    let at = (pieces[first].end() + 3) & !3;
    let end = at + size;
    let clash = pieces.iter().enumerate().any(|(k, p)| {
        k != first && p.vaddr < end.next_multiple_of(PAGE_SIZE) && p.end() > pieces[first].vaddr
    });
    if clash || pieces[first].memsz != pieces[first].bytes.len() as u32 {
        return Err(EmitError::Compact(format!(
            "no room for {count} program headers after the first segment"
        )));
    }
    let p = &mut pieces[first];
    p.bytes.resize((end - p.vaddr) as usize, 0);
    p.memsz = end - p.vaddr;
    Ok((at, size))
}

/// Chooses file offsets: the first piece at 0 (it holds the ELF header),
/// each other at the lowest offset congruent to its address modulo the
/// page size where it overlaps no piece placed before.
fn pack(pieces: &mut [Piece], first: usize) {
    let mut used: Vec<Range> = Vec::new();
    let order: Vec<usize> = std::iter::once(first)
        .chain((0..pieces.len()).filter(|&k| k != first))
        .collect();
    for k in order {
        let len = pieces[k].bytes.len() as u32;
        let mut at = if k == first {
            0
        } else {
            pieces[k].vaddr % PAGE_SIZE
        };
        while used.iter().any(|&(a, b)| at < b && a < at + len.max(1)) {
            at += PAGE_SIZE;
        }
        pieces[k].offset = at;
        used.push((at, at + len.max(1)));
    }
}

/// The file offset of the byte at `addr`, if a piece holds it in the file.
fn file_offset(pieces: &[Piece], addr: u32) -> Option<u32> {
    pieces
        .iter()
        .find(|p| p.vaddr <= addr && addr <= p.end())
        .map(|p| p.offset + (addr - p.vaddr))
}

/// The new program header table: the old one in its order, each `PT_LOAD`
/// replaced by its pieces, `PT_PHDR` pointing at the table, and the other
/// entries at their bytes' new offsets.
fn program_headers(
    phdrs: &[Phdr],
    loads: &[(usize, std::ops::Range<usize>)],
    pieces: &[Piece],
    others: &[Phdr],
    table: (u32, u32),
    count: usize,
) -> Result<Vec<Phdr>, EmitError> {
    let mut out = Vec::with_capacity(count);
    let mut rest = others.iter();
    for (i, p) in phdrs.iter().enumerate() {
        if let Some((_, range)) = loads.iter().find(|(j, _)| *j == i) {
            for piece in &pieces[range.clone()] {
                let mut load = Phdr::load(
                    piece.offset,
                    piece.vaddr,
                    piece.bytes.len() as u32,
                    piece.flags,
                );
                load.memsz = piece.memsz;
                load.align = p.align;
                out.push(load);
            }
            continue;
        }
        if p.kind == PT_LOAD || !others.contains(p) {
            continue;
        }
        let mut q = *rest.next().expect("another header");
        if q.kind == PT_PHDR {
            (q.vaddr, q.paddr, q.filesz, q.memsz) = (table.0, table.0, table.1, table.1);
        }
        if q.filesz > 0 || q.kind == PT_PHDR {
            q.offset = file_offset(pieces, q.vaddr)
                .filter(|_| file_offset(pieces, q.vaddr + q.filesz).is_some())
                .ok_or_else(|| {
                    EmitError::Compact(format!(
                        "segment type {:#x} at {:#x} lies in dropped bytes",
                        q.kind, q.vaddr
                    ))
                })?;
        }
        out.push(q);
    }
    debug_assert_eq!(out.len(), count);
    Ok(out)
}

/// Where the kept parts of the old sections went.
struct SectionMap {
    /// For each old section index: the new sections made from it, with the
    /// address range each covers.
    made: BTreeMap<usize, Vec<(u16, Range)>>,
}

impl SectionMap {
    /// The new section made from old section `old` (which ends at
    /// `old_end`) that holds the `size` bytes at `addr`, if a kept part of
    /// `old` does; a symbol without size may also sit at the end of the
    /// old section's last kept part (`_etext`).
    fn index(&self, old: usize, old_end: u32, addr: u32, size: u32) -> Option<u16> {
        let made = self.made.get(&old)?;
        let holds = |&(a, b): &Range| {
            a <= addr && addr.saturating_add(size.max(1)) <= b
                || size == 0 && addr == b && b == old_end
        };
        made.iter().find(|(_, r)| holds(r)).map(|(i, _)| *i)
    }
}

/// Appends the sections, `.symtab`, `.strtab`, `.shstrtab` and the
/// section header table to `out`; returns `e_shoff`, `e_shnum` and
/// `e_shstrndx`.
fn write_sections(
    out: &mut Vec<u8>,
    full: &[u8],
    header: &ElfHeader,
    sections: &[Shdr],
    pieces: &[Piece],
    holes: &[Range],
) -> Result<(u32, u16, u16), EmitError> {
    let names = sections[header.shstrndx].contents(full)?;
    let name_of = |s: &Shdr| -> &[u8] {
        let rest = names.get(s.name as usize..).unwrap_or(&[]);
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    };
    let mut shstrtab = vec![0u8];
    let mut add_name = |n: &[u8]| {
        let at = shstrtab.len() as u32;
        shstrtab.extend_from_slice(n);
        shstrtab.push(0);
        at
    };
    let mut new: Vec<Shdr> = vec![Shdr::default()];
    let mut map = SectionMap {
        made: BTreeMap::new(),
    };
    for (i, s) in sections.iter().enumerate() {
        if s.flags & SHF_ALLOC == 0 {
            continue;
        }
        let name = add_name(name_of(s));
        let ranges: Vec<Range> = if s.kind == SHT_NOBITS || s.size == 0 {
            vec![(s.addr, s.addr + s.size)]
        } else {
            kept_parts((s.addr, s.addr + s.size), holes)
        };
        for (a, b) in ranges {
            let offset = if s.kind == SHT_NOBITS {
                file_offset(pieces, a).unwrap_or(0)
            } else {
                file_offset(pieces, a)
                    .ok_or_else(|| malformed("a kept section is in no segment"))?
            };
            map.made
                .entry(i)
                .or_default()
                .push((new.len() as u16, (a, b)));
            new.push(Shdr {
                name,
                addr: a,
                offset,
                size: b - a,
                ..*s
            });
        }
    }
    // Links between loaded sections (`.rel.dyn` to `.dynsym`, ...).
    for s in new.iter_mut().skip(1) {
        let remap = |old: u32| {
            map.made
                .get(&(old as usize))
                .and_then(|m| m.first())
                .map_or(0, |m| u32::from(m.0))
        };
        s.link = remap(s.link);
        if s.kind == SHT_RELA || s.kind == SHT_REL {
            // The section the relocations apply to.
            s.info = remap(s.info);
        }
    }
    let (symtab, strtab, locals) = symbols(full, sections, &map)?;
    let add_table = |out: &mut Vec<u8>, new: &mut Vec<Shdr>, name: u32, kind: u32, bytes: &[u8]| {
        while out.len() % 4 != 0 {
            out.push(0);
        }
        new.push(Shdr {
            name,
            kind,
            offset: out.len() as u32,
            size: bytes.len() as u32,
            align: 1,
            ..Shdr::default()
        });
        out.extend_from_slice(bytes);
        new.len() - 1
    };
    let symtab_name = add_name(b".symtab");
    let strtab_name = add_name(b".strtab");
    let shstrtab_name = add_name(b".shstrtab");
    let sym = add_table(out, &mut new, symtab_name, SHT_SYMTAB, &symtab);
    let str_index = add_table(out, &mut new, strtab_name, SHT_STRTAB, &strtab);
    (
        new[sym].link,
        new[sym].info,
        new[sym].entsize,
        new[sym].align,
    ) = (str_index as u32, locals, SYM_SIZE as u32, 4);
    let shstr_index = new.len();
    add_table(out, &mut new, shstrtab_name, SHT_STRTAB, &shstrtab.clone());
    if new.len() >= SHN_LORESERVE {
        return Err(EmitError::Compact("too many sections".into()));
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    let shoff = out.len() as u32;
    for s in &new {
        out.extend_from_slice(&s.bytes());
    }
    Ok((shoff, new.len() as u16, shstr_index as u16))
}

/// The parts of `range` outside `holes`.
fn kept_parts(range: Range, holes: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    let mut at = range.0;
    for &(a, b) in holes {
        if b <= at || a >= range.1 {
            continue;
        }
        if a > at {
            out.push((at, a));
        }
        at = at.max(b);
    }
    if at < range.1 {
        out.push((at, range.1));
    }
    out
}

/// The kept symbols of the old `.symtab` (locals first, as they were):
/// undefined and absolute ones, file names, and those of loaded sections
/// whose address a kept part of their section holds; section symbols are
/// dropped. Returns the table, its string table and the number of locals
/// (the null symbol included).
fn symbols(
    full: &[u8],
    sections: &[Shdr],
    map: &SectionMap,
) -> Result<(Vec<u8>, Vec<u8>, u32), EmitError> {
    let mut table = vec![0u8; SYM_SIZE];
    let mut strings = vec![0u8];
    let mut locals = 1;
    let Some(symtab) = sections.iter().find(|s| s.kind == SHT_SYMTAB) else {
        return Ok((table, strings, locals));
    };
    let names = sections
        .get(symtab.link as usize)
        .ok_or_else(|| malformed(".symtab is not linked to a string table"))?
        .contents(full)?;
    for entry in symtab.contents(full)?.chunks_exact(SYM_SIZE).skip(1) {
        let value = u32::from_le_bytes(entry[4..8].try_into().expect("4 bytes"));
        let size = u32::from_le_bytes(entry[8..12].try_into().expect("4 bytes"));
        let (info, shndx) = (entry[12], u16::from_le_bytes([entry[14], entry[15]]));
        if info & 0xf == STT_SECTION {
            continue;
        }
        let new_index = match shndx {
            0 => Some(0),
            i if i >= SHN_LORESERVE as u16 => Some(i),
            i if sections
                .get(i as usize)
                .is_some_and(|s| s.flags & SHF_ALLOC != 0) =>
            {
                let s = &sections[i as usize];
                map.index(i as usize, s.addr + s.size, value, size)
            }
            _ => None,
        };
        let Some(new_index) = new_index else {
            continue;
        };
        let name_at = u32::from_le_bytes(entry[0..4].try_into().expect("4 bytes")) as usize;
        let rest = names.get(name_at..).unwrap_or(&[]);
        let name = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
        let mut e = entry.to_vec();
        put_u32(
            &mut e,
            0,
            if name.is_empty() {
                0
            } else {
                strings.len() as u32
            },
        );
        if !name.is_empty() {
            strings.extend_from_slice(name);
            strings.push(0);
        }
        put_u16(
            &mut e,
            14,
            if shndx == SHN_ABS { SHN_ABS } else { new_index },
        );
        if info >> 4 == 0 {
            locals += 1;
        }
        table.extend_from_slice(&e);
    }
    Ok((table, strings, locals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(vaddr: u32, len: usize) -> Piece {
        Piece {
            vaddr,
            bytes: vec![1; len],
            memsz: len as u32,
            flags: PF_X,
            offset: 0,
        }
    }

    #[test]
    fn pieces_share_file_pages_only_where_they_do_not_overlap() {
        let mut pieces = vec![
            piece(0x8048000, 0x100),
            piece(0x8049010, 0x300),
            piece(0x804a400, 0x200),
            piece(0x804b100, 0x100),
            piece(0x804c000, 0x1800),
        ];
        pack(&mut pieces, 0);
        assert_eq!(pieces[0].offset, 0);
        for (k, p) in pieces.iter().enumerate() {
            assert_eq!(p.offset % PAGE_SIZE, p.vaddr % PAGE_SIZE, "piece {k}");
            for q in &pieces[k + 1..] {
                let (a, b) = (p.offset, p.offset + p.bytes.len() as u32);
                let (c, d) = (q.offset, q.offset + q.bytes.len() as u32);
                assert!(b <= c || d <= a, "{a:#x}..{b:#x} overlaps {c:#x}..{d:#x}");
            }
        }
        // The second would overlap the first (0x10 < 0x100): one page on.
        // The third and fourth fit beside the first on its file page.
        assert_eq!(pieces[1].offset, 0x1010);
        assert_eq!(pieces[2].offset, 0x400);
        assert_eq!(pieces[3].offset, 0x100);
    }

    #[test]
    fn near_runs_join_with_int3_between_and_far_ones_split() {
        let full: Vec<u8> = (0..0x3000u32).map(|i| (i % 251) as u8).collect();
        let p = Phdr::load(0, 0x10000, 0x3000, PF_X | crate::elf::PF_R);
        // Dropped: 0x10100..0x10120 (a near gap: joined, filled) and
        // 0x10200..0x12800 (a far one: split).
        let pieces = segment_pieces(&full, &p, &[(0x10100, 0x10120), (0x10200, 0x12800)]).unwrap();
        assert_eq!(pieces.len(), 2);
        assert_eq!((pieces[0].vaddr, pieces[0].end()), (0x10000, 0x10200));
        assert!(pieces[0].bytes[0x100..0x120].iter().all(|&b| b == INT3));
        assert_eq!(pieces[0].bytes[0xff], full[0xff]);
        assert_eq!(pieces[0].bytes[0x120], full[0x120]);
        assert_eq!((pieces[1].vaddr, pieces[1].end()), (0x12800, 0x13000));
        assert_eq!(pieces[1].bytes[..], full[0x2800..]);
    }
}
