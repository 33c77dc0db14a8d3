//! Writing the output ELF by patching bytes.
//!
//! The output is the input file, unchanged except for:
//! - the program header table: a `PT_LOAD` (RWX) for the new segment, in
//!   place of the input's `PT_NOTE` when it has one, else in a grown copy of
//!   the table at the end of the file (`e_phoff` and `e_phnum` then point
//!   to it; see `phdrs.rs` for both ways and why the copy is where
//!   `AT_PHDR` finds it);
//! - a `jmp rel32` over the first 5 bytes of the specialized function;
//! - the ELF header's `e_shoff` and `e_shnum`;
//! - the section headers of `.shstrtab`, `.symtab` and `.strtab`, which point
//!   to grown copies of those tables appended after the new segment.
//!
//! Appended to the file: zero padding to a page boundary, the new segment
//! (data, thunks, code), the grown string and symbol tables, a new section
//! header table with `.wiper` (thunks and code), `.wiper.data` (when there is
//! data) and, for a binary without `.symtab` (stripped), a new `.symtab` and
//! `.strtab`; then, without a `PT_NOTE`, zero padding to a page boundary and
//! the moved program header table. Nothing in the input moves, so nothing
//! that points into it (dynamic section, relocations, GOT, jump tables)
//! needs fixing; the old copies of the tables stay behind as unused bytes.

use wiper_elf::Binary;

use crate::elf::{
    malformed, put_u16, put_u32, ElfHeader, Phdr, Shdr, PF_R, PF_W, PF_X, SHDR_SIZE, SHF_ALLOC,
    SHF_EXECINSTR, SHF_WRITE, SHN_LORESERVE, SHT_PROGBITS, SHT_STRTAB, SHT_SYMTAB, STB_GLOBAL,
    STT_FUNC, STT_OBJECT, SYM_SIZE,
};
use crate::{EmitError, Encoded, Plan};
use wiper_residual::Residual;
use wiper_residual::PAGE_SIZE;

/// The output ELF: the input with the residual's segment mapped by a new
/// `PT_LOAD` (flags RWX, align 0x1000; a reused `PT_NOTE` entry, else an
/// entry of the table moved to the end of the file), `function_entry`
/// patched with a `jmp rel32` to `encoded.entry_vaddr` (or, for a function
/// shorter than that, its direct calls pointed there: `redirect_calls`),
/// and sections `.wiper`
/// (thunks and code) and `.wiper.data` (data, if any) plus the symbols
/// `symbol_name` (a global function at the entry, as big as the residual code),
/// `symbol_name.pc_thunk.REG` per PC thunk and `symbol_name.data` (if there is
/// data), so `objdump` and `gdb` name the new code. All existing symbols are kept.
/// A stripped input gets a new `.symtab` holding just these symbols; an input
/// without section headers gets no sections and no symbols (it still runs).
///
/// Works for every input [`wiper_elf::Binary`] accepts, including an output
/// of `write_elf`. Fails when `input` is not the file `binary` was parsed
/// from, when `plan` and `encoded` do not match, when `symbol_name` is empty
/// or holds a NUL, when the function is not in a file-backed executable
/// segment or is shorter than 5 bytes with no direct call to redirect, or
/// (without a `PT_NOTE`) when the
/// program header table cannot grow by two entries or be placed below 4 GiB.
pub fn write_elf(
    input: &[u8],
    binary: &Binary,
    plan: &Plan,
    residual: &Residual,
    encoded: &Encoded,
    function_entry: u32,
    symbol_name: &str,
) -> Result<Vec<u8>, EmitError> {
    if input != binary.file_bytes() {
        return Err(EmitError::Mismatch(
            "the input bytes are not the file the binary was parsed from".to_string(),
        ));
    }
    if symbol_name.is_empty() || symbol_name.contains('\0') {
        return Err(EmitError::SymbolName(symbol_name.to_string()));
    }
    check_plan(input, binary, plan, residual, encoded)?;
    let header = ElfHeader::read(input)?;

    // The new segment: data, zeros up to the thunks, thunks and code.
    let mut segment = vec![0u8; (plan.thunk_vaddr - plan.segment_vaddr) as usize];
    let data_at = (plan.data_vaddr - plan.segment_vaddr) as usize;
    segment[data_at..data_at + residual.data.len()].copy_from_slice(&residual.data);
    segment.extend_from_slice(&encoded.code);
    let segment_size = u32::try_from(segment.len())
        .map_err(|_| EmitError::AddressSpace("the new segment is over 4 GiB".to_string()))?;
    if u64::from(plan.segment_vaddr) + u64::from(segment_size) > u64::from(u32::MAX) {
        return Err(EmitError::AddressSpace(format!(
            "{segment_size:#x} bytes at {:#x}",
            plan.segment_vaddr
        )));
    }
    let segment_offset = u32::try_from(plan.segment_offset)
        .map_err(|_| EmitError::AddressSpace("the output file would be over 4 GiB".to_string()))?;

    let mut out = input.to_vec();
    patch_entry(&mut out, binary, function_entry, encoded.entry_vaddr)?;
    out.resize(plan.segment_offset as usize, 0);
    out.extend_from_slice(&segment);

    if header.has_sections() {
        add_sections(
            &mut out,
            input,
            &header,
            plan,
            residual,
            encoded,
            symbol_name,
        )?;
    }
    let load = Phdr::load(
        segment_offset,
        plan.segment_vaddr,
        segment_size,
        PF_R | PF_W | PF_X,
    );
    crate::phdrs::add_load(&mut out, &header, load)?;
    Ok(out)
}

/// Checks that the plan's segment lies past every segment and the file's end,
/// and that the encoded code and the data fit the plan.
fn check_plan(
    input: &[u8],
    binary: &Binary,
    plan: &Plan,
    residual: &Residual,
    encoded: &Encoded,
) -> Result<(), EmitError> {
    let mismatch = |m: &str| Err(EmitError::Mismatch(m.to_string()));
    let page = u64::from(PAGE_SIZE);
    if plan.segment_offset != crate::align_up(input.len() as u64, page)
        || plan.segment_offset % page != u64::from(plan.segment_vaddr) % page
    {
        return mismatch(
            "the plan's file offset is not the first page boundary past the file's end",
        );
    }
    let end = binary
        .segments
        .iter()
        .map(|s| u64::from(s.vaddr) + u64::from(s.mem_size))
        .max()
        .unwrap_or(0);
    if u64::from(plan.segment_vaddr) < end {
        return mismatch("the plan's segment overlaps an existing segment");
    }
    if !(plan.segment_vaddr <= plan.data_vaddr
        && plan.data_vaddr <= plan.thunk_vaddr
        && plan.thunk_vaddr <= plan.code_vaddr)
    {
        return mismatch("the plan's data, thunk and code addresses are out of order");
    }
    if residual.data.len() as u64 > u64::from(plan.data_room()) {
        return Err(EmitError::DataTooLarge {
            len: residual.data.len(),
            room: plan.data_room(),
        });
    }
    if encoded.load_vaddr != plan.thunk_vaddr
        || encoded.code_vaddr != plan.code_vaddr
        || (encoded.code.len() as u64) < u64::from(plan.code_vaddr - plan.thunk_vaddr)
    {
        return mismatch("the encoded code was not made for this plan");
    }
    Ok(())
}

/// Writes `jmp target` over the first 5 bytes of the function at `entry`,
/// which must be the function's own code: its symbol is at least 5 bytes long
/// (when it has a size) and its decoded instructions cover them without a gap
/// (a stripped binary's 4-byte `__x86.get_pc_thunk` is followed by padding or
/// by the next function).
fn patch_entry(out: &mut [u8], binary: &Binary, entry: u32, target: u32) -> Result<(), EmitError> {
    let seg = binary
        .segments
        .iter()
        .find(|s| {
            s.perms.execute
                && entry >= s.vaddr
                && u64::from(entry) + 5 <= u64::from(s.vaddr) + u64::from(s.file_size)
        })
        .ok_or(EmitError::EntryNotMapped(entry))?;
    let symbol_size =
        binary
            .function_at(entry)
            .map_or(u32::MAX, |s| if s.size == 0 { u32::MAX } else { s.size });
    let decoded = wiper_x86::Disassembler::new(binary)
        .function(entry)
        .map_or(0, |f| f.entry_run());
    let size = symbol_size.min(decoded);
    if size < 5 {
        return redirect_calls(out, binary, entry, target, size);
    }
    let at = (seg.offset + (entry - seg.vaddr)) as usize;
    let rel = target.wrapping_sub(entry.wrapping_add(5));
    let patch = out
        .get_mut(at..at + 5)
        .ok_or(EmitError::EntryNotMapped(entry))?;
    patch[0] = 0xe9;
    patch[1..].copy_from_slice(&rel.to_le_bytes());
    Ok(())
}

/// Reaches the residual code at `target` from a function too short (`size`
/// bytes) for the 5-byte `jmp` over its entry: every direct `call rel32` of
/// it that the decoded code of the binary's function symbols holds is
/// pointed at `target` instead. Calls through pointers, jumps to it, and
/// calls in code no symbol covers still reach the original function, which
/// behaves like the residual for the inputs the residual was made for, and
/// correctly for any other. With no call to redirect, the function cannot be
/// reached: [`EmitError::FunctionTooShort`].
fn redirect_calls(
    out: &mut [u8],
    binary: &Binary,
    entry: u32,
    target: u32,
    size: u32,
) -> Result<(), EmitError> {
    let mut dis = wiper_x86::Disassembler::new(binary);
    let mut redirected = 0;
    for call in wiper_x86::callsites::direct_calls(&mut dis, entry) {
        let Some(at) = binary.file_offset(call.site) else {
            continue;
        };
        // `e8 rel32` only (not a `call rel16`).
        let Some([0xe8, rel @ ..]) = out.get_mut(at..at + 5) else {
            continue;
        };
        let to = target.wrapping_sub(call.site.wrapping_add(5));
        rel.copy_from_slice(&to.to_le_bytes());
        redirected += 1;
    }
    if redirected == 0 {
        return Err(EmitError::FunctionTooShort { addr: entry, size });
    }
    Ok(())
}

/// Appends `name` and a NUL to a string table; returns its offset.
fn add_string(table: &mut Vec<u8>, name: &str) -> u32 {
    let at = table.len() as u32;
    table.extend_from_slice(name.as_bytes());
    table.push(0);
    at
}

/// Pads `out` with zeros to a multiple of `align`.
fn pad_to(out: &mut Vec<u8>, align: usize) {
    while out.len() % align != 0 {
        out.push(0);
    }
}

/// A symbol to add: name, value, size, type, section index.
struct NewSymbol {
    name: String,
    value: u32,
    size: u32,
    kind: u8,
    shndx: u16,
}

/// Appends the grown string and symbol tables and a new section header table
/// (see the module documentation).
fn add_sections(
    out: &mut Vec<u8>,
    input: &[u8],
    header: &ElfHeader,
    plan: &Plan,
    residual: &Residual,
    encoded: &Encoded,
    symbol_name: &str,
) -> Result<(), EmitError> {
    let mut tables = Tables::read(input, header)?;
    // New sections, in address order: .wiper.data, .wiper, then (stripped
    // input) .symtab, .strtab.
    let (added, data_index, code_index) = tables.new_sections(plan, residual, encoded);
    let total = tables.shdrs.len() + added.len();
    if total >= SHN_LORESERVE {
        return Err(malformed("too many sections to add the .wiper sections"));
    }
    let symbols = new_symbols(plan, residual, encoded, symbol_name, code_index, data_index);
    tables.add_symbols(&symbols);
    tables.write(out, added, total);
    Ok(())
}

/// The input's section headers and the string and symbol tables being grown.
struct Tables {
    /// The input's section headers.
    shdrs: Vec<Shdr>,
    /// Index of the section name string table.
    shstrndx: usize,
    /// The section name string table.
    shstrtab: Vec<u8>,
    /// The symbol table (only the null symbol if the input has none).
    symtab: Vec<u8>,
    /// Index of the input's `.symtab`, if any.
    symtab_index: Option<usize>,
    /// The symbol string table (empty when `shared`).
    strtab: Vec<u8>,
    /// Index of the input's symbol string table, if any.
    strtab_index: Option<usize>,
    /// Whether `.symtab`'s names live in `.shstrtab`, so both grow in one table.
    shared: bool,
}

impl Tables {
    /// Reads the section headers and the tables to grow from `input`.
    fn read(input: &[u8], header: &ElfHeader) -> Result<Tables, EmitError> {
        let shdrs: Vec<Shdr> = (0..header.shnum)
            .map(|i| Shdr::read(input, header.shoff + i * SHDR_SIZE))
            .collect::<Option<_>>()
            .ok_or_else(|| malformed("section header table outside the file"))?;
        let shstrndx = header.shstrndx;
        let shstrtab = shdrs[shstrndx].contents(input)?.to_vec();
        // The existing symbol table and its string table, if any.
        let symtab_index = shdrs.iter().position(|s| s.kind == SHT_SYMTAB);
        let (symtab, strtab_index) = match symtab_index {
            Some(i) => {
                let link = shdrs[i].link as usize;
                if link >= shdrs.len() || shdrs[link].kind != SHT_STRTAB {
                    return Err(malformed(".symtab is not linked to a string table"));
                }
                if shdrs[i].size as usize % SYM_SIZE != 0 {
                    return Err(malformed(".symtab size is not a multiple of 16"));
                }
                (shdrs[i].contents(input)?.to_vec(), Some(link))
            }
            None => (vec![0u8; SYM_SIZE], None),
        };
        // When .symtab's names live in .shstrtab, both grow in one table.
        let shared = strtab_index == Some(shstrndx);
        let strtab = match strtab_index {
            Some(i) if !shared => shdrs[i].contents(input)?.to_vec(),
            Some(_) => Vec::new(),
            None => vec![0u8],
        };
        Ok(Tables {
            shdrs,
            shstrndx,
            shstrtab,
            symtab,
            symtab_index,
            strtab,
            strtab_index,
            shared,
        })
    }

    /// The headers of the new sections, with the index of `.wiper.data` (if
    /// any) and of `.wiper`; their names go into `.shstrtab`.
    fn new_sections(
        &mut self,
        plan: &Plan,
        residual: &Residual,
        encoded: &Encoded,
    ) -> (Vec<Shdr>, Option<usize>, usize) {
        let file_offset = |vaddr: u32| (plan.segment_offset as u32) + (vaddr - plan.segment_vaddr);
        let shstrtab = &mut self.shstrtab;
        let mut added = Vec::new();
        let mut data_index = None;
        if !residual.data.is_empty() {
            data_index = Some(self.shdrs.len());
            added.push(Shdr {
                name: add_string(shstrtab, ".wiper.data"),
                kind: SHT_PROGBITS,
                flags: SHF_ALLOC | SHF_WRITE,
                addr: plan.data_vaddr,
                offset: file_offset(plan.data_vaddr),
                size: residual.data.len() as u32,
                align: 16,
                ..Shdr::default()
            });
        }
        let code_index = self.shdrs.len() + added.len();
        added.push(Shdr {
            name: add_string(shstrtab, ".wiper"),
            kind: SHT_PROGBITS,
            flags: SHF_ALLOC | SHF_EXECINSTR,
            addr: encoded.load_vaddr,
            offset: file_offset(encoded.load_vaddr),
            size: encoded.code.len() as u32,
            align: 16,
            ..Shdr::default()
        });
        if self.symtab_index.is_none() {
            let strtab_at = self.shdrs.len() + added.len() + 1;
            added.push(Shdr {
                name: add_string(shstrtab, ".symtab"),
                kind: SHT_SYMTAB,
                link: strtab_at as u32,
                info: 1,
                align: 4,
                entsize: SYM_SIZE as u32,
                ..Shdr::default()
            });
            added.push(Shdr {
                name: add_string(shstrtab, ".strtab"),
                kind: SHT_STRTAB,
                align: 1,
                ..Shdr::default()
            });
        }
        (added, data_index, code_index)
    }

    /// Appends `symbols` to the symbol table, their names to its string table.
    fn add_symbols(&mut self, symbols: &[NewSymbol]) {
        for s in symbols {
            let names = if self.shared {
                &mut self.shstrtab
            } else {
                &mut self.strtab
            };
            let name = add_string(names, &s.name);
            let mut entry = [0u8; SYM_SIZE];
            put_u32(&mut entry, 0, name);
            put_u32(&mut entry, 4, s.value);
            put_u32(&mut entry, 8, s.size);
            entry[12] = (STB_GLOBAL << 4) | s.kind;
            put_u16(&mut entry, 14, s.shndx);
            self.symtab.extend_from_slice(&entry);
        }
    }

    /// Appends the tables and the section header table (the input's headers,
    /// the tables' repointed, then `added`; `total` in all) to `out`.
    fn write(self, out: &mut Vec<u8>, added: Vec<Shdr>, total: usize) {
        let Tables {
            mut shdrs,
            shstrndx,
            shstrtab,
            symtab,
            symtab_index,
            strtab,
            strtab_index,
            shared,
        } = self;
        let place = |out: &mut Vec<u8>, bytes: &[u8], align: usize| -> u32 {
            pad_to(out, align);
            let at = out.len() as u32;
            out.extend_from_slice(bytes);
            at
        };
        let shstr_at = place(out, &shstrtab, 1);
        let sym_at = place(out, &symtab, 4);
        let str_at = if shared {
            shstr_at
        } else {
            place(out, &strtab, 1)
        };
        let (sym_index, str_index) = match (symtab_index, strtab_index) {
            (Some(s), Some(t)) => (s, t),
            _ => (total - 2, total - 1),
        };
        shdrs.extend(added);
        shdrs[shstrndx].offset = shstr_at;
        shdrs[shstrndx].size = shstrtab.len() as u32;
        shdrs[sym_index].offset = sym_at;
        shdrs[sym_index].size = symtab.len() as u32;
        if !shared {
            shdrs[str_index].offset = str_at;
            shdrs[str_index].size = strtab.len() as u32;
        }
        pad_to(out, 4);
        let shoff = out.len() as u32;
        for s in &shdrs {
            out.extend_from_slice(&s.bytes());
        }
        put_u32(out, 32, shoff);
        put_u16(out, 48, shdrs.len() as u16);
    }
}

/// The symbols to add: the specialized function, its PC thunks and its data.
fn new_symbols(
    plan: &Plan,
    residual: &Residual,
    encoded: &Encoded,
    symbol_name: &str,
    code_index: usize,
    data_index: Option<usize>,
) -> Vec<NewSymbol> {
    let mut symbols = vec![NewSymbol {
        name: symbol_name.to_string(),
        value: encoded.entry_vaddr,
        size: encoded.code_size(),
        kind: STT_FUNC,
        shndx: code_index as u16,
    }];
    for &(reg, addr) in &encoded.thunks {
        symbols.push(NewSymbol {
            name: format!(
                "{symbol_name}.pc_thunk.{}",
                format!("{reg:?}").to_lowercase()
            ),
            value: addr,
            size: 7,
            kind: STT_FUNC,
            shndx: code_index as u16,
        });
    }
    if let Some(i) = data_index {
        symbols.push(NewSymbol {
            name: format!("{symbol_name}.data"),
            value: plan.data_vaddr,
            size: residual.data.len() as u32,
            kind: STT_OBJECT,
            shndx: i as u16,
        });
    }
    symbols
}
