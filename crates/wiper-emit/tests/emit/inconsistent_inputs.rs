//! `write_elf` given a plan, code or symbol name that do not belong with the
//! binary (each refused with its own one-line error), and given input files
//! that are unusual but valid (each written, and run).

use super::written_elf::{read, section_names};
use super::*;

/// Entry of power-O2's `power`.
const POWER: u32 = 0x80490a0;

/// A good emission of power-O2's `power` = x * x, to take apart.
struct Parts {
    bytes: Vec<u8>,
    binary: Binary,
    plan: Plan,
    residual: Residual,
    encoded: Encoded,
}

impl Parts {
    fn new() -> Parts {
        let (bytes, binary) = load("power-O2");
        let plan = plan(&binary, 0).unwrap();
        let residual = square_first(0, &binary);
        let encoded = encode(&plan, &residual).unwrap();
        Parts {
            bytes,
            binary,
            plan,
            residual,
            encoded,
        }
    }

    /// `write_elf` with this plan and code, patching `entry`, naming the code `name`.
    fn write_at(
        &self,
        plan: &Plan,
        encoded: &Encoded,
        entry: u32,
        name: &str,
    ) -> Result<Vec<u8>, EmitError> {
        write_elf(
            &self.bytes,
            &self.binary,
            plan,
            &self.residual,
            encoded,
            entry,
            name,
        )
    }

    /// `write_elf` with this plan and code.
    fn write(&self, plan: &Plan, encoded: &Encoded) -> Result<Vec<u8>, EmitError> {
        self.write_at(plan, encoded, POWER, "f")
    }
}

/// The error, checked to be on one line.
fn refusal(result: Result<Vec<u8>, EmitError>) -> EmitError {
    let err = result.unwrap_err();
    one_line(&err);
    err
}

fn mismatch(message: &str) -> EmitError {
    EmitError::Mismatch(message.to_string())
}

#[test]
fn symbol_names_a_string_table_cannot_hold_are_refused() {
    let p = Parts::new();
    for name in ["", "f\0g"] {
        let err = refusal(p.write_at(&p.plan, &p.encoded, POWER, name));
        assert_eq!(err, EmitError::SymbolName(name.to_string()));
    }
}

#[test]
fn plans_that_do_not_fit_the_file_or_the_binary_are_refused() {
    let p = Parts::new();
    let good = p.plan;
    let page = 0x1000;
    let offset = "the plan's file offset is not the first page boundary past the file's end";
    let overlap = "the plan's segment overlaps an existing segment";
    let order = "the plan's data, thunk and code addresses are out of order";
    let shifted = |by: u32, down: bool| {
        let move_by = |a: u32| if down { a - by } else { a + by };
        Plan {
            segment_vaddr: move_by(good.segment_vaddr),
            data_vaddr: move_by(good.data_vaddr),
            thunk_vaddr: move_by(good.thunk_vaddr),
            code_vaddr: move_by(good.code_vaddr),
            ..good
        }
    };
    let cases = [
        // Congruent to the address, but a page past the file's end.
        (
            Plan {
                segment_offset: good.segment_offset + u64::from(page),
                ..good
            },
            offset,
        ),
        // At the file's end, but not congruent to the address.
        (shifted(16, false), offset),
        // A page lower: over power-O2's .rodata.
        (shifted(page, true), overlap),
        (
            Plan {
                data_vaddr: good.segment_vaddr - 16,
                ..good
            },
            order,
        ),
        (
            Plan {
                data_vaddr: good.thunk_vaddr + 16,
                ..good
            },
            order,
        ),
        (
            Plan {
                thunk_vaddr: good.code_vaddr + 16,
                ..good
            },
            order,
        ),
    ];
    for (plan, message) in cases {
        assert_eq!(
            refusal(p.write(&plan, &p.encoded)),
            mismatch(message),
            "{plan:?}"
        );
    }
}

/// The new segment may start right where the highest segment ends.
#[test]
fn a_segment_right_after_the_highest_one_is_accepted() {
    let (bytes, _) = load("power-O2");
    let bytes = with_load_end(&bytes, 0x0810_0000);
    let binary = Binary::parse(bytes.clone()).unwrap();
    let e = emit_at("power-end-on-page", bytes, binary, POWER, square_first);
    assert_eq!(e.plan.segment_vaddr, 0x0810_0000);
    assert_eq!(e.run(&["5", "0", "0"]).stdout_str(), "25\n");
}

#[test]
fn code_encoded_for_another_plan_is_refused() {
    let p = Parts::new();
    let wrong = mismatch("the encoded code was not made for this plan");
    let e = &p.encoded;
    let elsewhere = [
        Encoded {
            load_vaddr: e.load_vaddr + 16,
            ..e.clone()
        },
        Encoded {
            code_vaddr: e.code_vaddr + 16,
            ..e.clone()
        },
    ];
    for bad in elsewhere {
        assert_eq!(refusal(p.write(&p.plan, &bad)), wrong);
    }
    // A PIE's code must at least fill its thunk area.
    let (bytes, pie) = load("pie_switch-O2");
    let plan = plan(&pie, 0).unwrap();
    let r = usage_and_calls(&pie);
    let mut short = encode(&plan, &r).unwrap();
    short.code.truncate(16);
    let step = symbol(&pie, "step");
    let err = refusal(write_elf(&bytes, &pie, &plan, &r, &short, step, "f"));
    assert_eq!(err, wrong);
}

/// The segment's end address (start + size) must fit in 32 bits.
#[test]
fn the_new_segment_must_end_below_4_gib() {
    let p = Parts::new();
    let top = 0xffff_f000;
    let plan = Plan {
        segment_vaddr: top,
        data_vaddr: top,
        thunk_vaddr: top,
        code_vaddr: top,
        ..p.plan
    };
    let encoded = encode(&plan, &p.residual).unwrap();
    let padded = |len: usize| {
        let mut code = encoded.code.clone();
        code.resize(len, 0xcc);
        Encoded {
            code,
            ..encoded.clone()
        }
    };
    let output = p.write(&plan, &padded(0xfff)).unwrap();
    let load = read(&output)
        .program_headers
        .into_iter()
        .find(|h| h.p_vaddr == u64::from(top))
        .unwrap();
    assert_eq!(load.p_vaddr + load.p_memsz, 0xffff_ffff);
    let err = refusal(p.write(&plan, &padded(0x1000)));
    assert_eq!(
        err,
        EmitError::AddressSpace("0x1000 bytes at 0xfffff000".to_string())
    );
}

#[test]
fn a_symbol_table_not_linked_to_a_string_table_is_refused() {
    let (mut bytes, binary) = load("power-O2");
    let index = |name: &str| binary.sections.iter().position(|s| s.name == name).unwrap();
    let shoff = u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as usize;
    let link = shoff + 40 * index(".symtab") + 24;
    // .comment holds text, but it is not a string table.
    bytes[link..link + 4].copy_from_slice(&(index(".comment") as u32).to_le_bytes());
    let damaged = Binary::parse(bytes.clone()).unwrap();
    let plan = plan(&damaged, 0).unwrap();
    let r = square_first(0, &damaged);
    let encoded = encode(&plan, &r).unwrap();
    let err = refusal(write_elf(&bytes, &damaged, &plan, &r, &encoded, POWER, "f"));
    let message = ".symtab is not linked to a string table";
    assert_eq!(err, EmitError::Malformed(message.to_string()));
}

/// The `jmp` needs 5 bytes of the function: a 5-byte function is enough.
#[test]
fn a_function_of_exactly_five_bytes_gets_the_jmp() {
    let (bytes, binary) = load("power-O2");
    let bytes = with_symbol_size(&bytes, &binary, "power", 5);
    let binary = Binary::parse(bytes.clone()).unwrap();
    assert_eq!(binary.function_at(POWER).unwrap().size, 5);
    let e = emit_at("power-5-bytes", bytes, binary, POWER, square_first);
    assert_eq!(e.run(&["7", "0", "0"]).stdout_str(), "49\n");
}

/// The `jmp` needs 5 bytes of the executable segment's file image.
#[test]
fn an_entry_less_than_five_bytes_before_the_code_ends_is_refused() {
    let p = Parts::new();
    let text = p.binary.segments.iter().find(|s| s.perms.execute).unwrap();
    let end = text.vaddr + text.file_size;
    let err = refusal(p.write_at(&p.plan, &p.encoded, end - 4, "f"));
    assert_eq!(err, EmitError::EntryNotMapped(end - 4));
    assert!(p.write_at(&p.plan, &p.encoded, end - 5, "f").is_ok());
}

/// power-O2 with its program header table moved to the end of the file (as
/// patchelf does): the table to rewrite ends the file, and the section header
/// table no longer does.
#[test]
fn program_headers_at_the_end_of_the_file_are_rewritten_there() {
    let (mut bytes, _) = load("power-O2");
    let phoff = bytes.len() as u32;
    let table = bytes[52..52 + 5 * 32].to_vec();
    bytes.extend(table);
    bytes[28..32].copy_from_slice(&phoff.to_le_bytes());
    let binary = Binary::parse(bytes.clone()).unwrap();
    let e = emit_at("power-phdrs-last", bytes, binary, POWER, square_first);
    assert_eq!(e.run(&["3", "0", "0"]).stdout_str(), "9\n");
    let elf = read(&e.output);
    assert_eq!(elf.header.e_phoff, u64::from(phoff));
    assert!(elf
        .program_headers
        .iter()
        .any(|h| h.p_vaddr == u64::from(e.plan.segment_vaddr)));
    assert_eq!(section_names(&elf).last().unwrap(), ".wiper");
}

/// power-O2 with its section header table moved from the end of the file
/// into the zero padding after the headers, at 0x100: it starts before its
/// own size (8 entries, 320 bytes) into the file.
#[test]
fn section_headers_early_in_the_file_are_kept() {
    let (mut bytes, _) = load("power-O2");
    let shoff = u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as usize;
    let table = bytes.split_off(shoff);
    assert_eq!(table.len(), 8 * 40);
    assert!(bytes[0x100..0x100 + table.len()].iter().all(|b| *b == 0));
    bytes[0x100..0x100 + table.len()].copy_from_slice(&table);
    bytes[32..36].copy_from_slice(&0x100u32.to_le_bytes());
    let binary = Binary::parse(bytes.clone()).unwrap();
    let e = emit_at("power-shdrs-early", bytes, binary, POWER, square_first);
    assert_eq!(e.run(&["8", "0", "0"]).stdout_str(), "64\n");
    let names = section_names(&read(&e.output));
    assert_eq!(names[1..3], [".note.gnu.build-id", ".text"]);
    assert_eq!(names[8..], [".wiper"]);
}

/// Without a section header table (`e_shoff`, `e_shnum`, `e_shstrndx` all 0)
/// the output has none either: just the new segment is appended.
#[test]
fn a_binary_without_section_headers_gets_none() {
    let (mut bytes, _) = load("power-O2");
    bytes[32..36].fill(0);
    bytes[48..52].fill(0);
    let binary = Binary::parse(bytes.clone()).unwrap();
    let e = emit_at("power-no-sections", bytes, binary, POWER, square_first);
    assert_eq!(e.run(&["4", "0", "0"]).stdout_str(), "16\n");
    let elf = read(&e.output);
    assert!(elf.section_headers.is_empty());
    assert_eq!((elf.header.e_shoff, elf.header.e_shnum), (0, 0));
    let end = e.plan.segment_offset as usize + e.encoded.code.len();
    assert_eq!(e.output.len(), end);
}

/// `e_shoff` = 0 means there is no section header table, whatever `e_shnum`
/// says (goblin agrees): nothing is added.
#[test]
fn a_zero_section_header_offset_means_no_section_headers() {
    let (mut bytes, o2) = load("libc_demo-O2");
    bytes[32..36].fill(0);
    bytes[48..52].copy_from_slice(&[1, 0, 0, 0]);
    let binary = Binary::parse(bytes.clone()).unwrap();
    assert!(binary.sections.is_empty());
    let power = symbol(&o2, "power");
    let e = emit_at("libc-no-shoff", bytes, binary, power, thousand);
    let out = e.run(&["sub", "2", "3", "4", "9", "8"]);
    assert_eq!(out.stdout_lines(), vec!["2", "2003", "26", "8 9"]);
    assert!(read(&e.output).section_headers.is_empty());
    assert_eq!(&e.output[32..36], &[0; 4]);
}

/// `e_shstrndx` = 0 (`SHN_UNDEF`) means the sections have no name table:
/// the writer cannot name new sections, so it leaves the section header
/// table as it is (it used to write the names into section 0, the null
/// section, which readers ignore). The program still runs.
#[test]
fn a_section_table_without_names_is_left_alone() {
    let (mut bytes, _) = load("power-O2");
    bytes[50..52].fill(0);
    let binary = Binary::parse(bytes.clone()).unwrap();
    let input = bytes.clone();
    let before = read(&input);
    let e = emit_at("power-no-shstrtab", bytes, binary, POWER, square_first);
    assert_eq!(e.run(&["5", "0", "0"]).stdout_str(), "25\n");
    let after = read(&e.output);
    assert_eq!(after.header.e_shoff, before.header.e_shoff);
    assert_eq!(after.header.e_shnum, before.header.e_shnum);
    assert_eq!(after.header.e_shstrndx, 0);
    assert_eq!(after.section_headers.len(), before.section_headers.len());
    assert_eq!(after.section_headers[0].sh_type, 0, "section 0 stays null");
    assert_eq!(after.section_headers[0].sh_size, 0, "section 0 stays null");
}
