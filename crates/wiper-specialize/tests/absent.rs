//! A call or jump to an absent function (`call 0`, glibc's call of an
//! undefined weak function, guarded at run time; `jmp 0`, the same as a tail
//! call) is decoded, and the residual makes the same transfer, where the
//! original faults, and ends there. (tests/specialize_diff.rs runs
//! `testdata/src/weak.c`'s residuals against the originals: both fault.)

use iced_x86::{Code, Instruction};
use wiper_residual::{Item, Residual};
use wiper_specialize::specialize;
use wiper_testkit::testdata_bin;

/// The residual of `power` in power-O2 with `code` over its first bytes.
fn residual_of(code: impl Fn(u32) -> Vec<u8>) -> Residual {
    let original = wiper_elf::Binary::open(&testdata_bin("power-O2")).expect("binary");
    let entry = original.functions_named("power")[0].addr;
    let binary = original
        .with_bytes_at(entry, &code(entry))
        .expect("patched");
    let spec = wiper_bta::StaticSpec::default();
    specialize(&binary, entry, &spec, &Default::default())
        .expect("a residual")
        .residual
}

/// The residual's instructions.
fn instructions(r: &Residual) -> Vec<Instruction> {
    r.blocks
        .iter()
        .flat_map(|b| &b.items)
        .filter_map(|i| match i {
            Item::Instr(ins, _) => Some(*ins),
            _ => None,
        })
        .collect()
}

/// `OP rel32` to 0 from `entry` (`e8` call, `e9` jmp), then `ret`.
fn transfer_to_zero(opcode: u8, entry: u32) -> Vec<u8> {
    let mut code = vec![opcode];
    code.extend(0u32.wrapping_sub(entry + 5).to_le_bytes());
    code.push(0xc3);
    code
}

#[test]
fn a_call_to_address_zero_is_made_by_the_residual_and_ends_it() {
    let r = residual_of(|entry| transfer_to_zero(0xe8, entry));
    let code = instructions(&r);
    let last = code.last().expect("code");
    assert_eq!(last.code(), Code::Call_rel32_32, "{code:?}");
    assert_eq!(last.near_branch32(), 0);
    assert!(
        !code.iter().any(|i| i.code() == Code::Retnd),
        "nothing after the call: {code:?}"
    );
}

#[test]
fn a_jump_to_address_zero_is_made_by_the_residual_and_ends_it() {
    let r = residual_of(|entry| transfer_to_zero(0xe9, entry));
    let code = instructions(&r);
    let last = code.last().expect("code");
    assert_eq!(last.code(), Code::Jmp_rel32_32, "{code:?}");
    assert_eq!(last.near_branch32(), 0);
}
