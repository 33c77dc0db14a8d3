//! The ELF32 little-endian structures the writer reads and writes by hand:
//! the file header's fields it needs and whole program headers, with the
//! byte helpers both use.

use crate::EmitError;

/// `PT_LOAD`: a segment the loader maps.
pub(crate) const PT_LOAD: u32 = 1;
/// `PT_NOTE`: notes (build id, ABI tag), ignored by the loaders of an executable.
pub(crate) const PT_NOTE: u32 = 4;
/// `PT_PHDR`: where the program header table itself is.
pub(crate) const PT_PHDR: u32 = 6;
/// `PF_X`: executable segment.
pub(crate) const PF_X: u32 = 1;
/// `PF_W`: writable segment.
pub(crate) const PF_W: u32 = 2;
/// `PF_R`: readable segment.
pub(crate) const PF_R: u32 = 4;
/// `ET_EXEC`: an executable at fixed addresses (not position-independent).
pub(crate) const ET_EXEC: u16 = 2;
/// Size of one ELF32 program header.
pub(crate) const PHDR_SIZE: usize = 32;
/// Size of one ELF32 section header.
pub(crate) const SHDR_SIZE: usize = 40;

/// The little-endian `u16` at `off`, if the bytes are there.
pub(crate) fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(off..off + 2)?.try_into().ok()?))
}

/// The little-endian `u32` at `off`, if the bytes are there.
pub(crate) fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?))
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u16(d: &mut [u8], off: usize, v: u16) {
    d[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u32(d: &mut [u8], off: usize, v: u32) {
    d[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// The `N` little-endian words at `at`, if the bytes are there.
pub(crate) fn words<const N: usize>(d: &[u8], at: usize) -> Option<[u32; N]> {
    let mut out = [0u32; N];
    for (i, w) in out.iter_mut().enumerate() {
        *w = u32_at(d, at + 4 * i)?;
    }
    Some(out)
}

/// Writes `words` little-endian from the start of `out`.
pub(crate) fn put_words(out: &mut [u8], words: &[u32]) {
    for (i, v) in words.iter().enumerate() {
        put_u32(out, 4 * i, *v);
    }
}

/// [`EmitError::Malformed`] with `what`.
pub(crate) fn malformed(what: &str) -> EmitError {
    EmitError::Malformed(what.to_string())
}

/// The fields of the ELF32 header the writer needs.
pub(crate) struct ElfHeader {
    /// `e_type`.
    pub kind: u16,
    /// `e_phoff`.
    pub phoff: usize,
    /// `e_phnum`.
    pub phnum: usize,
    /// `e_shoff`.
    pub shoff: usize,
    /// `e_shnum`.
    pub shnum: usize,
    /// `e_shstrndx`.
    pub shstrndx: usize,
}

impl ElfHeader {
    /// Reads and bounds-checks the header of an ELF32 little-endian file.
    pub fn read(d: &[u8]) -> Result<ElfHeader, EmitError> {
        if d.len() < 52 || &d[..4] != b"\x7fELF" || d[4] != 1 || d[5] != 1 {
            return Err(malformed("not a 32-bit little-endian ELF file"));
        }
        let get16 = |o| u16_at(d, o).map(usize::from).unwrap_or(0);
        let get32 = |o| u32_at(d, o).unwrap_or(0) as usize;
        let h = ElfHeader {
            kind: get16(16) as u16,
            phoff: get32(28),
            phnum: get16(44),
            shoff: get32(32),
            shnum: get16(48),
            shstrndx: get16(50),
        };
        if h.phnum > 0 && (get16(42) != PHDR_SIZE || h.phoff + h.phnum * PHDR_SIZE > d.len()) {
            return Err(malformed("program header table outside the file"));
        }
        if h.has_sections() && (get16(46) != SHDR_SIZE || h.shoff + h.shnum * SHDR_SIZE > d.len()) {
            return Err(malformed("section header table outside the file"));
        }
        Ok(h)
    }

    /// Whether there is a section header table the writer can extend (not
    /// absent, not using extended numbering, with a section-name table:
    /// `e_shstrndx` 0 is `SHN_UNDEF`, no names).
    pub fn has_sections(&self) -> bool {
        self.shoff != 0 && self.shnum != 0 && self.shstrndx != 0 && self.shstrndx < self.shnum
    }

    /// The program headers, in table order.
    pub fn program_headers(&self, d: &[u8]) -> Result<Vec<Phdr>, EmitError> {
        (0..self.phnum)
            .map(|i| Phdr::read(d, self.phoff + i * PHDR_SIZE))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("program header table outside the file"))
    }
}

/// One program header, field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Phdr {
    /// `p_type`.
    pub kind: u32,
    /// `p_offset`.
    pub offset: u32,
    /// `p_vaddr`.
    pub vaddr: u32,
    /// `p_paddr`.
    pub paddr: u32,
    /// `p_filesz`.
    pub filesz: u32,
    /// `p_memsz`.
    pub memsz: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_align`.
    pub align: u32,
}

impl Phdr {
    /// A page-aligned `PT_LOAD` of `size` bytes of the file at `offset`,
    /// mapped at `vaddr` with `flags`.
    pub fn load(offset: u32, vaddr: u32, size: u32, flags: u32) -> Phdr {
        Phdr {
            kind: PT_LOAD,
            offset,
            vaddr,
            paddr: vaddr,
            filesz: size,
            memsz: size,
            flags,
            align: wiper_residual::PAGE_SIZE,
        }
    }

    /// The program header at `at` in `d`.
    fn read(d: &[u8], at: usize) -> Option<Phdr> {
        let [kind, offset, vaddr, paddr, filesz, memsz, flags, align] = words(d, at)?;
        Some(Phdr {
            kind,
            offset,
            vaddr,
            paddr,
            filesz,
            memsz,
            flags,
            align,
        })
    }

    /// The header as it is stored.
    pub fn bytes(&self) -> [u8; PHDR_SIZE] {
        let mut out = [0u8; PHDR_SIZE];
        let p = self;
        let fields = [
            p.kind, p.offset, p.vaddr, p.paddr, p.filesz, p.memsz, p.flags, p.align,
        ];
        put_words(&mut out, &fields);
        out
    }
}

/// `SHT_PROGBITS`: a section with file contents.
pub(crate) const SHT_PROGBITS: u32 = 1;
/// `SHT_SYMTAB`: the symbol table.
pub(crate) const SHT_SYMTAB: u32 = 2;
/// `SHT_STRTAB`: a string table.
pub(crate) const SHT_STRTAB: u32 = 3;
/// `SHT_RELA`: relocations with explicit addends.
pub(crate) const SHT_RELA: u32 = 4;
/// `SHT_NOBITS`: a section without file contents (`.bss`).
pub(crate) const SHT_NOBITS: u32 = 8;
/// `SHT_REL`: relocations without addends.
pub(crate) const SHT_REL: u32 = 9;
/// `SHF_WRITE`: writable at run time.
pub(crate) const SHF_WRITE: u32 = 1;
/// `SHF_ALLOC`: in memory at run time.
pub(crate) const SHF_ALLOC: u32 = 2;
/// `SHF_EXECINSTR`: code.
pub(crate) const SHF_EXECINSTR: u32 = 4;
/// `STB_GLOBAL`: a global symbol.
pub(crate) const STB_GLOBAL: u8 = 1;
/// `STT_OBJECT`: a data symbol.
pub(crate) const STT_OBJECT: u8 = 1;
/// `STT_FUNC`: a function symbol.
pub(crate) const STT_FUNC: u8 = 2;
/// The first reserved section index.
pub(crate) const SHN_LORESERVE: usize = 0xff00;
/// Size of one ELF32 symbol.
pub(crate) const SYM_SIZE: usize = 16;

/// One section header, as raw fields.
#[derive(Clone, Copy, Default)]
pub(crate) struct Shdr {
    pub name: u32,
    pub kind: u32,
    pub flags: u32,
    pub addr: u32,
    pub offset: u32,
    pub size: u32,
    pub link: u32,
    pub info: u32,
    pub align: u32,
    pub entsize: u32,
}

impl Shdr {
    /// The section header at `at` in `d`.
    pub fn read(d: &[u8], at: usize) -> Option<Shdr> {
        let [name, kind, flags, addr, offset, size, link, info, align, entsize] = words(d, at)?;
        Some(Shdr {
            name,
            kind,
            flags,
            addr,
            offset,
            size,
            link,
            info,
            align,
            entsize,
        })
    }

    /// The header as it is stored.
    pub fn bytes(&self) -> [u8; SHDR_SIZE] {
        let mut out = [0u8; SHDR_SIZE];
        let fields = [
            self.name,
            self.kind,
            self.flags,
            self.addr,
            self.offset,
            self.size,
            self.link,
            self.info,
            self.align,
            self.entsize,
        ];
        put_words(&mut out, &fields);
        out
    }

    /// The section's bytes in the file.
    pub fn contents<'a>(&self, d: &'a [u8]) -> Result<&'a [u8], EmitError> {
        let start = self.offset as usize;
        start
            .checked_add(self.size as usize)
            .and_then(|end| d.get(start..end))
            .ok_or_else(|| malformed("a symbol or string table lies outside the file"))
    }
}
