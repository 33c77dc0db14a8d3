//! Reading 32-bit little-endian i386 ELF executables: the *load* stage of wiper.
//!
//! [`Binary::open`] checks the file by hand before handing it to goblin, so every
//! malformed input (not ELF, 64-bit, another machine, truncated, program headers
//! outside the file) becomes a one-line [`ElfError`] instead of a panic. The result
//! is an owned, goblin-free description of the image that later stages use:
//! segments with permissions, sections, symbols (symtab and dynsym), PLT entries
//! named after the functions they import, and byte access by virtual address.

mod eh_frame;
mod plt;

use std::collections::BTreeMap;
use std::path::Path;

use goblin::elf::{header, program_header, section_header, sym, Elf};

pub use eh_frame::FdeRange;

/// Why a file could not be loaded. Each message is one line and names the cause.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be read at all (missing, permissions, a directory).
    #[error("cannot read {path}: {message}")]
    Io {
        /// The path as the user gave it.
        path: String,
        /// The operating system's reason.
        message: String,
    },
    /// The file does not start with the ELF magic bytes.
    #[error("not an ELF file (bad magic number)")]
    NotElf,
    /// A 64-bit ELF: wiper reads IA-32 code only.
    #[error("64-bit ELF is not supported: wiper reads 32-bit i386 executables")]
    Elf64,
    /// A big-endian ELF.
    #[error("big-endian ELF is not supported: wiper reads little-endian i386 executables")]
    BigEndian,
    /// An ELF for another processor.
    #[error("unsupported machine {0}: wiper reads i386 (EM_386) executables only")]
    Machine(String),
    /// Not an executable (a relocatable object or a core dump).
    #[error("unsupported ELF type {0}: wiper reads executables (ET_EXEC, or ET_DYN for PIE)")]
    FileType(String),
    /// The file ends before the data its headers describe.
    #[error("truncated ELF file: {0}")]
    Truncated(String),
    /// Headers that contradict each other or the file.
    #[error("malformed ELF: {0}")]
    Malformed(String),
}

/// Result of loading.
pub type Result<T> = std::result::Result<T, ElfError>;

/// Access permissions of a loaded segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

impl std::fmt::Display for Perms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flag = |on: bool, c: char| if on { c } else { '-' };
        write!(
            f,
            "{}{}{}",
            flag(self.read, 'r'),
            flag(self.write, 'w'),
            flag(self.execute, 'x')
        )
    }
}

/// A `PT_LOAD` segment: what the kernel maps, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of the first byte (link-time address; PIE images start near 0).
    pub vaddr: u32,
    /// Size in memory; bytes past `file_size` are zero (`.bss`).
    pub mem_size: u32,
    /// Offset of the first byte in the file.
    pub offset: u32,
    /// Number of bytes backed by the file.
    pub file_size: u32,
    /// Permissions.
    pub perms: Perms,
}

impl Segment {
    /// Whether `addr` lies inside the segment's memory image.
    pub fn contains(&self, addr: u32) -> bool {
        addr >= self.vaddr && (addr - self.vaddr) < self.mem_size
    }
}

/// A section header, kept for naming (`.text`, `.rodata`, `.plt`) and for `info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Name from the section header string table (empty if absent).
    pub name: String,
    /// Address when loaded (0 for sections that are not loaded).
    pub addr: u32,
    /// Size in bytes.
    pub size: u32,
    /// Offset in the file.
    pub offset: u32,
    /// `sh_type` (SHT_PROGBITS, SHT_NOBITS, ...).
    pub kind: u32,
    /// `sh_flags` (SHF_ALLOC, SHF_EXECINSTR, ...).
    pub flags: u32,
}

/// What a symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    /// `STT_FUNC`: code.
    Function,
    /// `STT_GNU_IFUNC`: a resolver whose result is the real function (called through the PLT).
    IndirectFunction,
    /// `STT_OBJECT`: data.
    Object,
    /// Anything else (sections, files, TLS, untyped).
    Other,
}

/// Which table a symbol came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolTable {
    /// `.symtab` (absent in stripped binaries).
    Static,
    /// `.dynsym` (imports and exports of dynamic binaries).
    Dynamic,
}

/// A defined symbol with a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Symbol name.
    pub name: String,
    /// Address (link-time).
    pub addr: u32,
    /// Size in bytes (0 when unknown).
    pub size: u32,
    /// Kind.
    pub kind: SymbolKind,
    /// Whether it is `STB_GLOBAL` or `STB_WEAK` rather than local.
    pub global: bool,
    /// Table it came from.
    pub table: SymbolTable,
}

/// `e_type` of the executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// `ET_EXEC`: loaded at its link-time addresses.
    Executable,
    /// `ET_DYN`: a position-independent executable, loaded at a base chosen at run time.
    PositionIndependent,
}

/// A loaded i386 ELF executable: the input of every later stage.
#[derive(Debug, Clone)]
pub struct Binary {
    data: Vec<u8>,
    /// Executable or PIE.
    pub file_type: FileType,
    /// Entry point (`e_entry`).
    pub entry: u32,
    /// `PT_LOAD` segments in file order.
    pub segments: Vec<Segment>,
    /// Section headers (empty when the section table is absent).
    pub sections: Vec<Section>,
    /// Defined, named symbols from `.symtab` and `.dynsym`, sorted by address, without duplicates.
    pub symbols: Vec<Symbol>,
    /// PLT stub address -> name of the imported (or IFUNC) function it jumps to.
    pub plt: BTreeMap<u32, String>,
    /// Program interpreter (`PT_INTERP`) of dynamically linked binaries.
    pub interpreter: Option<String>,
    /// Address of the GOT (`.got.plt`, what `_GLOBAL_OFFSET_TABLE_` names), base of PIC addressing.
    pub got: Option<u32>,
    /// Writable byte ranges `[start, end)` that no code writes (sorted; set
    /// by [`Binary::with_unwritten`] from a scan of the code, empty as
    /// loaded): their initial contents hold in every run.
    pub unwritten: Vec<(u32, u32)>,
}

const EHDR_SIZE: usize = 52;

impl Binary {
    /// Reads and parses the file at `path`.
    pub fn open(path: &Path) -> Result<Binary> {
        let data = std::fs::read(path).map_err(|e| ElfError::Io {
            path: path.display().to_string(),
            message: io_reason(&e),
        })?;
        Binary::parse(data)
    }

    /// Parses an image already in memory.
    pub fn parse(data: Vec<u8>) -> Result<Binary> {
        check_headers(&data)?;
        let elf = Elf::parse(&data).map_err(|e| ElfError::Malformed(one_line(&e.to_string())))?;
        let file_type = match elf.header.e_type {
            header::ET_EXEC => FileType::Executable,
            header::ET_DYN => FileType::PositionIndependent,
            t => return Err(ElfError::FileType(header::et_to_str(t).to_string())),
        };
        let segments = load_segments(&elf, data.len())?;
        let sections = load_sections(&elf);
        let symbols = load_symbols(&elf);
        let got = sections
            .iter()
            .find(|s| s.name == ".got.plt")
            .or_else(|| sections.iter().find(|s| s.name == ".got"))
            .map(|s| s.addr);
        let interpreter = elf.interpreter.map(str::to_string);
        let slot_relocs = plt::slot_relocations(&elf);
        let mut binary = Binary {
            file_type,
            entry: elf.entry as u32,
            segments,
            sections,
            symbols,
            plt: BTreeMap::new(),
            interpreter,
            got,
            unwritten: Vec::new(),
            data,
        };
        binary.plt = plt::name_plt_entries(&binary, &slot_relocs);
        Ok(binary)
    }

    /// The raw file contents.
    pub fn file_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The segment whose memory image holds `addr`.
    pub fn segment_at(&self, addr: u32) -> Option<&Segment> {
        self.segments.iter().find(|s| s.contains(addr))
    }

    /// Whether `addr` lies in an executable segment.
    pub fn is_executable(&self, addr: u32) -> bool {
        self.segment_at(addr).is_some_and(|s| s.perms.execute)
    }

    /// Whether `addr` lies in read-only data: a loaded, non-writable segment.
    ///
    /// Such bytes are the same in every run (string literals, `.rodata` tables, jump
    /// tables), which is why the specializer may treat loads from them as static.
    pub fn is_read_only(&self, addr: u32) -> bool {
        self.segment_at(addr).is_some_and(|s| !s.perms.write)
    }

    /// Whether the byte at `addr` holds its initial contents in every run:
    /// read-only data, or writable data that no code writes
    /// ([`Binary::unwritten`]).
    pub fn is_constant(&self, addr: u32) -> bool {
        self.is_read_only(addr) || self.is_unwritten(addr)
    }

    /// Whether `addr` lies in one of the [`Binary::unwritten`] ranges.
    pub fn is_unwritten(&self, addr: u32) -> bool {
        let i = self.unwritten.partition_point(|&(start, _)| start <= addr);
        i > 0 && addr < self.unwritten[i - 1].1
    }

    /// The binary with `ranges` recorded as writable data that no code
    /// writes (sorted and merged); the caller vouches for them (wiper-x86's
    /// `unwritten_objects` finds them).
    pub fn with_unwritten(mut self, mut ranges: Vec<(u32, u32)>) -> Binary {
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        self.unwritten = merged;
        self
    }

    /// The offset in the file of the byte at `addr`, when the file backs it.
    pub fn file_offset(&self, addr: u32) -> Option<usize> {
        let seg = self.segment_at(addr)?;
        let rel = addr - seg.vaddr;
        (rel < seg.file_size).then_some((seg.offset + rel) as usize)
    }

    /// The binary with `code` written over the file-backed bytes at `addr` (as
    /// a patched executable would hold them); `None` when some of those bytes
    /// are not backed by the file.
    pub fn with_bytes_at(&self, addr: u32, code: &[u8]) -> Option<Binary> {
        let end = addr.checked_add(u32::try_from(code.len()).ok()?)?;
        let at = self.file_offset(addr)?;
        if code.is_empty() || self.file_offset(end - 1)? != at + code.len() - 1 {
            return None;
        }
        let mut data = self.data.clone();
        data[at..at + code.len()].copy_from_slice(code);
        Binary::parse(data).ok()
    }

    /// The file-backed bytes from `addr` to the end of its segment's file image.
    ///
    /// This is what a decoder reads; `None` when `addr` is not backed by the file.
    pub fn bytes_from(&self, addr: u32) -> Option<&[u8]> {
        let seg = self.segment_at(addr)?;
        let rel = addr - seg.vaddr;
        if rel >= seg.file_size {
            return None;
        }
        let start = (seg.offset + rel) as usize;
        let end = (seg.offset + seg.file_size) as usize;
        self.data.get(start..end)
    }

    /// Reads `len` bytes of the memory image at `addr` (zeros past the file-backed part).
    ///
    /// `None` when any byte lies outside every segment. Nothing is allocated
    /// before the whole range is known to be mapped, so a damaged size costs
    /// no memory.
    pub fn read(&self, addr: u32, len: u32) -> Option<Vec<u8>> {
        let end = u64::from(addr) + u64::from(len);
        // The pieces of the range, segment by segment: (offset in the file, file bytes, zeros).
        let mut pieces = Vec::new();
        let mut at = u64::from(addr);
        while at < end {
            let seg = self.segment_at(at as u32)?;
            let rel = at as u32 - seg.vaddr;
            let n = (end - at).min(u64::from(seg.mem_size - rel)) as u32;
            let from_file = n.min(seg.file_size.saturating_sub(rel));
            pieces.push((seg.offset as usize + rel as usize, from_file, n - from_file));
            at += u64::from(n);
        }
        let mut out = Vec::with_capacity(len as usize);
        for (offset, from_file, zeros) in pieces {
            out.extend_from_slice(self.data.get(offset..offset + from_file as usize)?);
            out.resize(out.len() + zeros as usize, 0);
        }
        Some(out)
    }

    /// The file bytes of `section` as loaded at its address; `None` for a
    /// section without file bytes (`SHT_NOBITS` or `SHT_NULL`, whatever its
    /// size says), for one whose size runs past the end of the file, and for
    /// one that is not wholly mapped. So no section costs more memory than
    /// the file.
    pub fn section_bytes(&self, section: &Section) -> Option<Vec<u8>> {
        let without_bytes = [section_header::SHT_NOBITS, section_header::SHT_NULL];
        let end = u64::from(section.offset) + u64::from(section.size);
        if without_bytes.contains(&section.kind) || end > self.data.len() as u64 {
            return None;
        }
        self.read(section.addr, section.size)
    }

    /// Reads a little-endian 32-bit word of the memory image.
    pub fn read_u32(&self, addr: u32) -> Option<u32> {
        let b = self.read(addr, 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The section (by name), if there is one.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Function symbols (`STT_FUNC`, `STT_GNU_IFUNC`) named `name`, globals first.
    pub fn functions_named(&self, name: &str) -> Vec<&Symbol> {
        let mut found: Vec<&Symbol> = self
            .symbols
            .iter()
            .filter(|s| s.name == name && s.is_code())
            .collect();
        found.sort_by_key(|s| !s.global);
        found
    }

    /// The function symbol that starts exactly at `addr` (globals preferred).
    pub fn function_at(&self, addr: u32) -> Option<&Symbol> {
        self.symbols
            .iter()
            .filter(|s| s.addr == addr && s.is_code())
            .min_by_key(|s| !s.global)
    }

    /// The function symbol whose `[addr, addr+size)` range holds `addr`.
    pub fn function_containing(&self, addr: u32) -> Option<&Symbol> {
        self.symbols
            .iter()
            .filter(|s| s.is_code() && s.size > 0)
            .find(|s| addr >= s.addr && addr - s.addr < s.size)
    }

    /// The name to show for `addr`: a PLT import (`puts@plt`) or a function symbol.
    pub fn name_of(&self, addr: u32) -> Option<String> {
        if let Some(n) = self.plt.get(&addr) {
            return Some(format!("{n}@plt"));
        }
        self.function_at(addr).map(|s| s.name.clone())
    }

    /// Addresses of all function symbols in executable segments, sorted and unique.
    pub fn function_symbol_addrs(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .symbols
            .iter()
            .filter(|s| s.kind == SymbolKind::Function && self.is_executable(s.addr))
            .map(|s| s.addr)
            .collect();
        v.dedup();
        v
    }
}

impl Symbol {
    /// Whether the symbol names code (a function or an IFUNC resolver).
    pub fn is_code(&self) -> bool {
        matches!(
            self.kind,
            SymbolKind::Function | SymbolKind::IndirectFunction
        )
    }
}

/// `e_machine` values worth naming in an error message.
fn machine_name(machine: u16) -> String {
    let name = match machine {
        header::EM_X86_64 => "x86-64",
        header::EM_ARM => "ARM",
        header::EM_AARCH64 => "AArch64",
        header::EM_RISCV => "RISC-V",
        header::EM_MIPS => "MIPS",
        header::EM_PPC => "PowerPC",
        header::EM_PPC64 => "PowerPC64",
        header::EM_SPARC => "SPARC",
        header::EM_S390 => "S/390",
        _ => return format!("{machine} (e_machine)"),
    };
    format!("{name} (e_machine {machine})")
}

fn u16_at(d: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([d[off], d[off + 1]])
}

fn u32_at(d: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([d[off], d[off + 1], d[off + 2], d[off + 3]])
}

/// Checks, before goblin sees the file, everything that would otherwise make
/// parsing fail obscurely or read out of bounds.
fn check_headers(d: &[u8]) -> Result<()> {
    if d.len() < 4 || &d[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    if d.len() < 6 {
        return Err(ElfError::Truncated(format!(
            "{} bytes, shorter than the ELF identification",
            d.len()
        )));
    }
    match d[4] {
        1 => {}
        2 => return Err(ElfError::Elf64),
        c => return Err(ElfError::Malformed(format!("invalid ELF class {c}"))),
    }
    match d[5] {
        1 => {}
        2 => return Err(ElfError::BigEndian),
        e => return Err(ElfError::Malformed(format!("invalid data encoding {e}"))),
    }
    if d.len() < EHDR_SIZE {
        return Err(ElfError::Truncated(format!(
            "{} bytes, shorter than the 52-byte ELF header",
            d.len()
        )));
    }
    let machine = u16_at(d, 18);
    if machine != header::EM_386 {
        return Err(ElfError::Machine(machine_name(machine)));
    }
    let e_type = u16_at(d, 16);
    if e_type != header::ET_EXEC && e_type != header::ET_DYN {
        return Err(ElfError::FileType(header::et_to_str(e_type).to_string()));
    }
    let phoff = u32_at(d, 28) as u64;
    let phentsize = u16_at(d, 42) as u64;
    let phnum = u16_at(d, 44) as u64;
    let shoff = u32_at(d, 32) as u64;
    let shentsize = u16_at(d, 46) as u64;
    let shnum = u16_at(d, 48) as u64;
    let len = d.len() as u64;
    if phnum == 0 {
        return Err(ElfError::Malformed("no program headers".into()));
    }
    if phentsize != 32 {
        return Err(ElfError::Malformed(format!(
            "program header entry size {phentsize}, expected 32"
        )));
    }
    if phoff + phnum * phentsize > len {
        return Err(ElfError::Truncated(format!(
            "program header table at offset {phoff:#x} ({phnum} entries) ends past the end of the file ({len} bytes)"
        )));
    }
    if shnum > 0 {
        if shentsize != 40 {
            return Err(ElfError::Malformed(format!(
                "section header entry size {shentsize}, expected 40"
            )));
        }
        if shoff + shnum * shentsize > len {
            return Err(ElfError::Truncated(format!(
                "section header table at offset {shoff:#x} ({shnum} entries) ends past the end of the file ({len} bytes)"
            )));
        }
        let shstrndx = u16_at(d, 50) as u64;
        if shstrndx >= shnum && shstrndx != 0 {
            return Err(ElfError::Malformed(format!(
                "section name table index {shstrndx} out of range"
            )));
        }
        for i in 0..shnum {
            let at = (shoff + i * shentsize) as usize;
            let kind = u32_at(d, at + 4);
            let offset = u32_at(d, at + 16) as u64;
            let size = u32_at(d, at + 20) as u64;
            if kind != section_header::SHT_NOBITS && kind != 0 && offset + size > len {
                return Err(ElfError::Truncated(format!(
                    "section {i} (offset {offset:#x}, size {size:#x}) ends past the end of the file ({len} bytes)"
                )));
            }
        }
    }
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        let kind = u32_at(d, at);
        let offset = u32_at(d, at + 4) as u64;
        let filesz = u32_at(d, at + 16) as u64;
        let memsz = u32_at(d, at + 20) as u64;
        let vaddr = u32_at(d, at + 8) as u64;
        if kind == program_header::PT_LOAD || kind == program_header::PT_INTERP {
            if offset + filesz > len {
                return Err(ElfError::Truncated(format!(
                    "program header {i} points outside the file: offset {offset:#x} + size {filesz:#x} > file size {len:#x}"
                )));
            }
            if kind == program_header::PT_LOAD && (filesz > memsz || vaddr + memsz > 1 << 32) {
                return Err(ElfError::Malformed(format!(
                    "program header {i}: file size {filesz:#x}, memory size {memsz:#x} at {vaddr:#x} do not fit"
                )));
            }
        }
    }
    Ok(())
}

fn load_segments(elf: &Elf, file_len: usize) -> Result<Vec<Segment>> {
    let segments: Vec<Segment> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD)
        .map(|p| Segment {
            vaddr: p.p_vaddr as u32,
            mem_size: p.p_memsz as u32,
            offset: p.p_offset as u32,
            file_size: p.p_filesz as u32,
            perms: Perms {
                read: p.is_read(),
                write: p.is_write(),
                execute: p.is_executable(),
            },
        })
        .collect();
    if segments.is_empty() {
        return Err(ElfError::Malformed("no loadable (PT_LOAD) segments".into()));
    }
    debug_assert!(segments
        .iter()
        .all(|s| (s.offset + s.file_size) as usize <= file_len));
    Ok(segments)
}

fn load_sections(elf: &Elf) -> Vec<Section> {
    elf.section_headers
        .iter()
        .map(|s| Section {
            name: elf.shdr_strtab.get_at(s.sh_name).unwrap_or("").to_string(),
            addr: s.sh_addr as u32,
            size: s.sh_size as u32,
            offset: s.sh_offset as u32,
            kind: s.sh_type,
            flags: s.sh_flags as u32,
        })
        .collect()
}

fn load_symbols(elf: &Elf) -> Vec<Symbol> {
    let tables = [
        (&elf.syms, &elf.strtab, SymbolTable::Static),
        (&elf.dynsyms, &elf.dynstrtab, SymbolTable::Dynamic),
    ];
    let mut out = Vec::new();
    for (syms, strtab, table) in tables {
        for s in syms.iter() {
            if s.st_shndx == section_header::SHN_UNDEF as usize || s.st_value == 0 {
                continue;
            }
            let Some(name) = strtab.get_at(s.st_name).filter(|n| !n.is_empty()) else {
                continue;
            };
            let kind = match s.st_type() {
                sym::STT_FUNC => SymbolKind::Function,
                sym::STT_GNU_IFUNC => SymbolKind::IndirectFunction,
                sym::STT_OBJECT => SymbolKind::Object,
                _ => SymbolKind::Other,
            };
            out.push(Symbol {
                name: name.to_string(),
                addr: s.st_value as u32,
                size: s.st_size as u32,
                kind,
                global: matches!(s.st_bind(), sym::STB_GLOBAL | sym::STB_WEAK),
                table,
            });
        }
    }
    out.sort_by(|a, b| (a.addr, &a.name, a.table as u8).cmp(&(b.addr, &b.name, b.table as u8)));
    // A symbol exported by a dynamic binary appears in both tables: keep the .symtab copy.
    out.dedup_by(|later, earlier| later.addr == earlier.addr && later.name == earlier.name);
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The OS reason without Rust's "(os error N)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_string()
        }
    }
}
