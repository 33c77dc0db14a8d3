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

/// `prod-O0` with `mov ebp,esp` (89 e5, after `push ebp`) replaced by the
/// two bytes `replacement`, under the name `name`; and `prod`'s address.
fn prod_patched(name: &str, replacement: [u8; 2]) -> (std::path::PathBuf, u32) {
    let bin = testdata_bin("prod-O0");
    let binary = wiper_elf::Binary::open(&bin).unwrap();
    let prod = binary.functions_named("prod")[0].addr;
    let offset = common::file_offset("prod-O0", prod + 1);
    let patched = common::patched("prod-O0", name, |bytes| {
        assert_eq!(bytes[offset..offset + 2], [0x89, 0xe5]);
        bytes[offset..offset + 2].copy_from_slice(&replacement);
    });
    (patched, prod)
}

#[test]
fn unsupported_instruction_is_one_error_line() {
    // `mov ds,ax` (8e d8): a segment register write cannot be passed through.
    let (patched, prod) = prod_patched("prod-movds", [0x8e, 0xd8]);
    assert_fails(
        &["lift", patched.to_str().unwrap(), "--function", "prod"],
        &format!(
            "unsupported instruction mov at {:#x}: it writes the segment register ds",
            prod + 1
        ),
    );
}

#[test]
fn an_instruction_without_formulas_is_shown_opaque_with_its_footprint() {
    // `rcl eax,1` (d1 d0): no formulas, passed through.
    let (patched, _) = prod_patched("prod-rcl", [0xd1, 0xd0]);
    let out = stdout_of(&["lift", patched.to_str().unwrap(), "--function", "prod"]);
    assert!(
        out.contains("rcl    eax,0x1                      opaque, reads eax, cf, of, fpu"),
        "{out}"
    );
    assert!(out.contains("eax := eax'"), "{out}");
}
