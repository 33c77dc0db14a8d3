//! `wiper lift`: decoupled instructions with their formulas, and unsupported
//! instructions as one error line with exit status 2.

mod common;

use common::{assert_fails, stdout_of};
use wiper_testkit::testdata_bin;

#[test]
fn lift_prod_o0() {
    let bin = testdata_bin("prod-O0");
    let out = stdout_of(&["lift", bin.to_str().unwrap(), "--function", "prod"]);
    insta::assert_snapshot!("lift_prod_O0", out);
}

#[test]
fn lift_shows_decoupled_parts_and_accepts_addresses() {
    let bin = testdata_bin("recursion-O0");
    let binary = wiper_elf::Binary::open(&bin).unwrap();
    let fact = binary.functions_named("fact")[0].addr;
    let by_name = stdout_of(&["lift", bin.to_str().unwrap(), "--function", "fact"]);
    let by_addr = stdout_of(&[
        "lift",
        bin.to_str().unwrap(),
        "--function",
        &format!("{fact:#x}"),
    ]);
    assert_eq!(by_name, by_addr);
    // The recursive call is decoupled into push of the return address and jump.
    assert!(by_name.contains("call   "), "{by_name}");
    assert!(by_name.contains("    lea    esp,[esp-0x4]"), "{by_name}");
    assert!(
        by_name.contains("eip := t0"),
        "ret jumps through a temporary"
    );
}

#[test]
fn unsupported_instruction_is_one_error_line() {
    let bin = testdata_bin("prod-O0");
    let binary = wiper_elf::Binary::open(&bin).unwrap();
    let prod = binary.functions_named("prod")[0].addr;
    let offset = common::file_offset("prod-O0", prod + 1);
    // `mov ebp,esp` (89 e5) after `push ebp` becomes `rcl eax,1` (d1 d0).
    let patched = common::patched("prod-O0", "prod-rcl", |bytes| {
        assert_eq!(bytes[offset..offset + 2], [0x89, 0xe5]);
        bytes[offset..offset + 2].copy_from_slice(&[0xd1, 0xd0]);
    });
    assert_fails(
        &["lift", patched.to_str().unwrap(), "--function", "prod"],
        &format!("unsupported instruction rcl at {:#x}", prod + 1),
    );
}
