//! The written file as goblin, an ELF reader independent of the writer, sees
//! it: every appended section header and symbol field, the program headers,
//! and the input's sections and symbols, which must not change.

use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_GNU_STACK, PT_LOAD, PT_NOTE};
use goblin::elf::section_header::{
    SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_NOBITS, SHT_PROGBITS, SHT_STRTAB, SHT_SYMTAB,
};
use goblin::elf::sym::{STB_GLOBAL, STT_FUNC, STT_OBJECT};
use goblin::elf::{Elf, ProgramHeader, SectionHeader};

use super::*;

/// The file as goblin parses it.
pub(crate) fn read(bytes: &[u8]) -> Elf<'_> {
    Elf::parse(bytes).expect("goblin reads the file")
}

/// A section header's fields but its name: type, flags, address, offset,
/// size, link, info, alignment, entry size.
type Fields = (u32, u64, u64, u64, u64, u32, u32, u64, u64);

fn fields(s: &SectionHeader) -> Fields {
    (
        s.sh_type,
        s.sh_flags,
        s.sh_addr,
        s.sh_offset,
        s.sh_size,
        s.sh_link,
        s.sh_info,
        s.sh_addralign,
        s.sh_entsize,
    )
}

/// The fields of a new `SHT_PROGBITS` section of the segment, 16-aligned.
fn progbits(flags: u32, addr: u32, offset: u64, size: usize) -> Fields {
    let (flags, addr, size) = (u64::from(flags), u64::from(addr), size as u64);
    (SHT_PROGBITS, flags, addr, offset, size, 0, 0, 16, 0)
}

/// The section names, in index order.
pub(crate) fn section_names(elf: &Elf) -> Vec<String> {
    elf.section_headers
        .iter()
        .map(|s| elf.shdr_strtab.get_at(s.sh_name).unwrap().to_string())
        .collect()
}

/// A section's bytes in the file.
fn contents<'a>(file: &'a [u8], s: &SectionHeader) -> &'a [u8] {
    &file[s.sh_offset as usize..][..s.sh_size as usize]
}

/// A `.symtab` entry: name, value, size, type, binding, section index.
type Sym = (String, u64, u64, u8, u8, usize);

fn symbols(elf: &Elf) -> Vec<Sym> {
    elf.syms
        .iter()
        .map(|s| {
            let name = elf.strtab.get_at(s.st_name).unwrap().to_string();
            let (kind, bind) = (s.st_type(), s.st_bind());
            (name, s.st_value, s.st_size, kind, bind, s.st_shndx)
        })
        .collect()
}

/// A new global symbol.
fn global(name: &str, value: u32, size: usize, kind: u8, section: usize) -> Sym {
    let (value, size) = (u64::from(value), size as u64);
    (name.to_string(), value, size, kind, STB_GLOBAL, section)
}

/// Checks what the output keeps of the input: its section headers (the
/// section name, symbol and symbol string tables moved to grown copies that
/// start with the old contents) and symbols, each section aligned in the file.
fn check_kept(e: &Emitted) {
    let (before, after) = (read(&e.input), read(&e.output));
    let symtab = before
        .section_headers
        .iter()
        .position(|s| s.sh_type == SHT_SYMTAB);
    let mut moved = vec![before.header.e_shstrndx as usize];
    if let Some(i) = symtab {
        moved.extend([i, before.section_headers[i].sh_link as usize]);
    }
    let n = before.section_headers.len();
    assert_eq!(section_names(&after)[..n], section_names(&before));
    for (i, (old, new)) in before
        .section_headers
        .iter()
        .zip(&after.section_headers)
        .enumerate()
    {
        if !moved.contains(&i) {
            assert_eq!(old, new, "section {i}");
            continue;
        }
        assert!(contents(&e.output, new).starts_with(contents(&e.input, old)));
        let without_place = |s: &SectionHeader| {
            let mut f = fields(s);
            (f.3, f.4) = (0, 0);
            f
        };
        assert_eq!(without_place(old), without_place(new), "section {i}");
    }
    assert_eq!(symbols(&after)[..before.syms.len()], symbols(&before));
    for (i, s) in after.section_headers.iter().enumerate() {
        if s.sh_type != SHT_NOBITS && s.sh_addralign > 1 {
            assert_eq!(s.sh_offset % s.sh_addralign, 0, "section {i} is misaligned");
        }
    }
    assert_eq!(after.header.e_shoff % 4, 0);
}

/// The new segment's `PT_LOAD`: read, write, execute; page-aligned; data,
/// zeros up to the thunks, then the code.
pub(crate) fn new_segment_header(e: &Emitted) -> ProgramHeader {
    let p = &e.plan;
    let size = u64::from(p.thunk_vaddr - p.segment_vaddr) + e.encoded.code.len() as u64;
    ProgramHeader {
        p_type: PT_LOAD,
        p_flags: PF_R | PF_W | PF_X,
        p_offset: p.segment_offset,
        p_vaddr: u64::from(p.segment_vaddr),
        p_paddr: u64::from(p.segment_vaddr),
        p_filesz: size,
        p_memsz: size,
        p_align: 0x1000,
    }
}

/// Checks the program headers: the input's, with `PT_NOTE` replaced by the
/// new `PT_LOAD` (read, write, execute; page-aligned; data, zeros up to the
/// thunks, then the code), which moves right after the last `PT_LOAD` when the
/// note came before it, so the loads stay sorted.
fn check_program_headers(e: &Emitted) {
    let p = &e.plan;
    let new = new_segment_header(e);
    let size = new.p_filesz;
    let mut expected = read(&e.input).program_headers;
    let note = expected.iter().position(|h| h.p_type == PT_NOTE).unwrap();
    let last_load = expected.iter().rposition(|h| h.p_type == PT_LOAD).unwrap();
    expected.remove(note);
    expected.insert(note.max(last_load), new);
    assert_eq!(read(&e.output).program_headers, expected);
    let segment = &e.output[p.segment_offset as usize..][..size as usize];
    let data_at = (p.data_vaddr - p.segment_vaddr) as usize;
    let code_at = (p.thunk_vaddr - p.segment_vaddr) as usize;
    assert_eq!(
        &segment[data_at..][..e.residual.data.len()],
        e.residual.data
    );
    assert!(segment[data_at + e.residual.data.len()..code_at]
        .iter()
        .all(|b| *b == 0));
    assert_eq!(&segment[code_at..], e.encoded.code);
}

/// A PIE with data and two thunks: `.wiper.data`, `.wiper` and a symbol for
/// the function, each thunk and the data, as the plan and the code place them.
#[test]
fn appended_sections_and_symbols_are_where_the_plan_puts_the_code() {
    let e = emit("pie_switch-O2", "step", table_and_calls);
    assert_eq!(e.run(&["2", "0", "0"]).stdout_str(), "24\n24\n");
    check_kept(&e);
    check_program_headers(&e);
    let (before, after) = (read(&e.input), read(&e.output));
    let n = before.section_headers.len();
    assert_eq!(section_names(&after)[n..], [".wiper.data", ".wiper"]);
    let p = &e.plan;
    let offset = |vaddr: u32| p.segment_offset + u64::from(vaddr - p.segment_vaddr);
    let (data, code) = (&after.section_headers[n], &after.section_headers[n + 1]);
    let data_len = e.residual.data.len();
    let data_fields = progbits(
        SHF_ALLOC | SHF_WRITE,
        p.data_vaddr,
        offset(p.data_vaddr),
        data_len,
    );
    assert_eq!(fields(data), data_fields);
    assert_eq!(contents(&e.output, data), e.residual.data);
    let code_len = e.encoded.code.len();
    let code_offset = offset(p.thunk_vaddr);
    let code_fields = progbits(
        SHF_ALLOC | SHF_EXECINSTR,
        p.thunk_vaddr,
        code_offset,
        code_len,
    );
    assert_eq!(fields(code), code_fields);
    assert_eq!(contents(&e.output, code), e.encoded.code);
    // ecx's thunk, then edx's, packed from the start of the thunk area.
    let (ecx_thunk, edx_thunk) = (p.thunk_vaddr, p.thunk_vaddr + 8);
    let thunks = vec![(Register::ECX, ecx_thunk), (Register::EDX, edx_thunk)];
    assert_eq!(e.encoded.thunks, thunks);
    let code_size = code_len - (p.code_vaddr - p.thunk_vaddr) as usize;
    let entry = e.encoded.labels[&Label(0)];
    assert_eq!(
        symbols(&after)[before.syms.len()..],
        [
            global("f.specialized", entry, code_size, STT_FUNC, n + 1),
            global("f.specialized.pc_thunk.ecx", ecx_thunk, 7, STT_FUNC, n + 1),
            global("f.specialized.pc_thunk.edx", edx_thunk, 7, STT_FUNC, n + 1),
            global("f.specialized.data", p.data_vaddr, data_len, STT_OBJECT, n),
        ]
    );
}

/// A stripped binary gets `.wiper` and a new `.symtab` (linked to the new
/// `.strtab`, one local symbol: the null one) with the function's symbol.
#[test]
fn a_stripped_binary_gets_a_symbol_table_of_its_own() {
    let (_, o2) = load("libc_demo-O2");
    let (bytes, binary) = load("libc_demo-stripped");
    let e = emit_at(
        "libc_demo-stripped",
        bytes,
        binary,
        symbol(&o2, "power"),
        thousand,
    );
    check_kept(&e);
    check_program_headers(&e);
    let (before, after) = (read(&e.input), read(&e.output));
    assert!(before.syms.is_empty());
    let n = before.section_headers.len();
    assert_eq!(section_names(&after)[n..], [".wiper", ".symtab", ".strtab"]);
    let (symtab, strtab) = (&after.section_headers[n + 1], &after.section_headers[n + 2]);
    let link = (n + 2) as u32;
    assert_eq!(
        fields(symtab),
        (SHT_SYMTAB, 0, 0, symtab.sh_offset, 32, link, 1, 4, 16)
    );
    assert_eq!(
        fields(strtab),
        (SHT_STRTAB, 0, 0, strtab.sh_offset, 15, 0, 0, 1, 0)
    );
    assert_eq!(contents(&e.output, strtab), b"\0f.specialized\0");
    let size = e.encoded.code.len();
    assert_eq!(
        symbols(&after),
        [
            (String::new(), 0, 0, 0, 0, 0),
            global("f.specialized", e.plan.code_vaddr, size, STT_FUNC, n),
        ]
    );
}

/// A `PT_NOTE` between the `PT_LOAD`s: the new load goes after the last one,
/// the loads in between move up.
#[test]
fn a_note_between_the_loads_becomes_a_load_after_the_last_one() {
    // power-O2's LOAD, LOAD, LOAD, NOTE, GNU_STACK -> LOAD, NOTE, LOAD, LOAD, GNU_STACK.
    let (mut bytes, _) = load("power-O2");
    assert_eq!(bytes[52 + 3 * 32..][..4], PT_NOTE.to_le_bytes());
    bytes[52 + 32..52 + 4 * 32].rotate_right(32);
    let binary = Binary::parse(bytes.clone()).unwrap();
    let power = symbol(&binary, "power");
    let e = emit_at("power-note-second", bytes, binary, power, square_first);
    assert_eq!(e.run(&["6", "0", "0"]).stdout_str(), "36\n");
    check_program_headers(&e);
    check_kept(&e);
}

/// power-O2 as it is: the note comes after the loads and is replaced in place.
#[test]
fn a_note_after_the_loads_is_replaced_in_place() {
    let e = emit("power-O2", "power", square_first);
    check_program_headers(&e);
    check_kept(&e);
    let types: Vec<u32> = read(&e.output)
        .program_headers
        .iter()
        .map(|h| h.p_type)
        .collect();
    assert_eq!(types, [PT_LOAD, PT_LOAD, PT_LOAD, PT_LOAD, PT_GNU_STACK]);
}
