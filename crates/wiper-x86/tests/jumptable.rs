//! Jump tables resolved by value ranges, on small pieces of code written over
//! `bf` in `interp-O2` (its tables live in the read-only code segment too).

use wiper_elf::{Binary, Symbol, SymbolKind, SymbolTable};
use wiper_testkit::{real_bin, testdata_bin};
use wiper_x86::{Disassembler, Function, Successor};

/// `interp-O2` with the code `code(base)` written at `bf`, and `bf`'s address.
fn with_code(code: impl Fn(u32) -> Vec<u8>) -> (Binary, u32) {
    let original = Binary::open(&testdata_bin("interp-O2")).unwrap();
    let base = original.functions_named("bf")[0].addr;
    (original.with_bytes_at(base, &code(base)).unwrap(), base)
}

/// Little-endian bytes of the words `words`.
fn words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The targets of the table jump ending the block at `block`, or `None`.
fn cases(f: &Function, block: u32) -> Option<Vec<u32>> {
    let b = &f.blocks[&block];
    let targets: Vec<u32> = b
        .successors
        .iter()
        .filter_map(|s| match s {
            Successor::Case { target, .. } => Some(*target),
            _ => None,
        })
        .collect();
    assert_eq!(b.jump_table.is_some(), !targets.is_empty());
    if targets.is_empty() {
        assert_eq!(b.successors, vec![Successor::IndirectJump]);
        return None;
    }
    Some(targets)
}

#[test]
fn a_bound_on_the_taken_edge_bounds_the_index() {
    // cmp eax,2; jbe +1; ret; jmp [eax*4+T]; ret; ret; ret; T: three entries
    let (binary, b) = with_code(|b| {
        let mut code = vec![0x83, 0xf8, 0x02, 0x76, 0x01, 0xc3, 0xff, 0x24, 0x85];
        code.extend((b + 16).to_le_bytes());
        code.extend([0xc3, 0xc3, 0xc3]);
        code.extend(words(&[b + 13, b + 14, b + 15]));
        code
    });
    let f = Disassembler::new(&binary).function(b).unwrap();
    assert_eq!(cases(&f, b + 6), Some(vec![b + 13, b + 14, b + 15]));
}

#[test]
fn a_byte_table_in_front_bounds_the_index_by_its_bytes() {
    // cmp eax,3; ja default; movzx eax,BYTE PTR [eax+T1]; jmp [eax*4+T2];
    // ret; default: ret; T1: 0 1 1 0; T2: two entries
    let (binary, b) = with_code(|b| {
        let mut code = vec![0x83, 0xf8, 0x03, 0x77, 0x0f, 0x0f, 0xb6, 0x80];
        code.extend((b + 21).to_le_bytes());
        code.extend([0xff, 0x24, 0x85]);
        code.extend((b + 25).to_le_bytes());
        code.extend([0xc3, 0xc3, 0, 1, 1, 0]);
        code.extend(words(&[b + 19, b + 20]));
        code
    });
    let f = Disassembler::new(&binary).function(b).unwrap();
    assert_eq!(cases(&f, b + 5), Some(vec![b + 19, b + 20]));
}

#[test]
fn a_zero_extended_byte_alone_is_too_loose_for_a_short_table() {
    // movzx eax,al; jmp [eax*4+T]; ret; T: two entries, then other code
    let (binary, b) = with_code(|b| {
        let mut code = vec![0x0f, 0xb6, 0xc0, 0xff, 0x24, 0x85];
        code.extend((b + 11).to_le_bytes());
        code.push(0xc3);
        code.extend(words(&[b + 10, b + 10]));
        code
    });
    let f = Disassembler::new(&binary).function(b).unwrap();
    assert_eq!(cases(&f, b), None);
}

/// `test ebx,ebx; je +skip; cmp eax,1; ja out; jmp [eax*4+T]; ret; ret;
/// ret; out: ret; T: two entries`, and the jump's block.
fn guarded_by_one_path(skip: u8) -> (Binary, u32) {
    with_code(|b| {
        let mut code = vec![0x85, 0xdb, 0x74, skip, 0x83, 0xf8, 0x01, 0x77, 0x0a];
        code.extend([0xff, 0x24, 0x85]);
        code.extend((b + 20).to_le_bytes());
        code.extend([0xc3, 0xc3, 0xc3, 0xc3]);
        code.extend(words(&[b + 16, b + 17]));
        code
    })
}

#[test]
fn every_path_into_the_jump_must_bound_the_index() {
    // `je` to the jump: that path has no bound.
    let (binary, b) = guarded_by_one_path(5);
    let f = Disassembler::new(&binary).function(b).unwrap();
    assert_eq!(cases(&f, b + 9), None);
    // `je` to the bound (the next instruction): both paths have it.
    let (binary, b) = guarded_by_one_path(0);
    let f = Disassembler::new(&binary).function(b).unwrap();
    assert_eq!(cases(&f, b + 9), Some(vec![b + 16, b + 17]));
}

/// `and eax,3; jmp [eax*4+T]; ret; ret; T: two entries, then two words that
/// are no code`, with an object symbol of `object_size` bytes at `T` when
/// given, and the function's address.
fn masked_index(object_size: Option<u32>) -> (Binary, u32) {
    let (mut binary, b) = with_code(|b| {
        let mut code = vec![0x83, 0xe0, 0x03, 0xff, 0x24, 0x85];
        code.extend((b + 12).to_le_bytes());
        code.extend([0xc3, 0xc3]);
        code.extend(words(&[b + 10, b + 11, 0xdead_beef, 0]));
        code
    });
    if let Some(size) = object_size {
        binary.symbols.push(Symbol {
            name: "table".into(),
            addr: b + 12,
            size,
            kind: SymbolKind::Object,
            global: false,
            table: SymbolTable::Static,
        });
    }
    (binary, b)
}

#[test]
fn a_table_that_is_an_object_ends_with_its_symbol() {
    // The mask allows four entries; the object holds two.
    let (binary, b) = masked_index(Some(8));
    let f = Disassembler::new(&binary).function(b).unwrap();
    assert_eq!(cases(&f, b), Some(vec![b + 10, b + 11]));
    // Without the symbol, or with one that holds the words after the two
    // entries, the table reads words that are no code.
    for size in [None, Some(16)] {
        let (binary, b) = masked_index(size);
        let f = Disassembler::new(&binary).function(b).unwrap();
        assert_eq!(cases(&f, b), None, "object of {size:?} bytes");
    }
}

#[test]
fn vfprintf_step_tables_end_with_their_objects() {
    // `jmp [eax+edx*4-0x1f74]` indexed by a byte of `jump_table` read at an
    // index the path does not bound: the step table (`step0_jumps`, 124
    // bytes) bounds it to its 31 entries.
    let binary = Binary::open(&real_bin("gzip-glibc")).unwrap();
    let entry = binary.functions_named("__vfprintf_internal")[0].addr;
    let f = Disassembler::new(&binary).function(entry).unwrap();
    let block = f
        .blocks
        .values()
        .find(|b| b.instructions.last().is_some_and(|i| i.ip32() == 0x8099ff6))
        .unwrap();
    assert_eq!(cases(&f, block.start).map(|t| t.len()), Some(31));
}

#[test]
fn ebp_as_an_ordinary_register_keeps_the_frame_slots() {
    // mov eax,T; sub esp,0x10; mov [esp+4],eax; lea ebp,[ecx*4-0xc];
    // lea eax,[ebp+edi]; call rt_strlen; cmp edx,1; ja out;
    // mov ecx,[esp+4]; jmp [ecx+edx*4]; ret; ret; out: ret; ret; T: two
    // entries. The table's address is known only from its frame slot (the
    // call forgets what the path stored), and `ebp` holds no frame address.
    let callee = Binary::open(&testdata_bin("interp-O2")).unwrap();
    let callee = callee.functions_named("rt_strlen")[0].addr;
    let (binary, b) = with_code(|b| {
        let mut code = vec![0xb8];
        code.extend((b + 44).to_le_bytes());
        code.extend([0x83, 0xec, 0x10, 0x89, 0x44, 0x24, 0x04]);
        code.extend([0x8d, 0x2c, 0x8d, 0xf4, 0xff, 0xff, 0xff]);
        code.extend([0x8d, 0x44, 0x3d, 0x00, 0xe8]);
        code.extend(callee.wrapping_sub(b + 28).to_le_bytes());
        code.extend([0x83, 0xfa, 0x01, 0x77, 0x09, 0x8b, 0x4c, 0x24, 0x04]);
        code.extend([0xff, 0x24, 0x91, 0xc3, 0xc3, 0xc3, 0xc3]);
        code.extend(words(&[b + 40, b + 41]));
        code
    });
    let f = Disassembler::new(&binary).function(b).unwrap();
    assert_eq!(cases(&f, b + 33), Some(vec![b + 40, b + 41]));
}

#[test]
fn a_dynamic_allocation_keeps_the_frame_slots_above_it() {
    // push ebp; mov ebp,esp; mov eax,T; sub esp,0x10; mov [ebp-8],eax;
    // sub esp,ecx; lea esi,[esp+0xf]; push esi; call rt_strlen; cmp edx,1;
    // ja out; mov ecx,[ebp-8]; jmp [ecx+edx*4]; ret; ret; ret; out: leave;
    // ret; T: two entries. The `alloca` block and the argument pushed
    // below it lie under the slot holding the table's address.
    let callee = Binary::open(&testdata_bin("interp-O2")).unwrap();
    let callee = callee.functions_named("rt_strlen")[0].addr;
    let (binary, b) = with_code(|b| {
        let mut code = vec![0x55, 0x89, 0xe5, 0xb8];
        code.extend((b + 44).to_le_bytes());
        code.extend([0x83, 0xec, 0x10, 0x89, 0x45, 0xf8]);
        code.extend([0x29, 0xcc, 0x8d, 0x74, 0x24, 0x0f, 0x56, 0xe8]);
        code.extend(callee.wrapping_sub(b + 26).to_le_bytes());
        code.extend([0x83, 0xfa, 0x01, 0x77, 0x09, 0x8b, 0x4d, 0xf8]);
        code.extend([0xff, 0x24, 0x91, 0xc3, 0xc3, 0xc3, 0xc9, 0xc3, 0xc3, 0xc3]);
        code.extend(words(&[b + 37, b + 38]));
        code
    });
    let f = Disassembler::new(&binary).function(b).unwrap();
    assert_eq!(cases(&f, b + 31), Some(vec![b + 37, b + 38]));
}
