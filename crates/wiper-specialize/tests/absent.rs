//! A call to an absent function (`call 0`, glibc's call of an undefined weak
//! function, guarded at run time) is decoded, but the specializer refuses to
//! go through it: the original faults there.

use wiper_specialize::specialize;
use wiper_testkit::testdata_bin;

#[test]
fn specializing_through_a_call_to_address_zero_is_an_error() {
    let original = wiper_elf::Binary::open(&testdata_bin("power-O2")).expect("binary");
    let entry = original.functions_named("power")[0].addr;
    // `call 0; ret` over power's first bytes.
    let mut code = vec![0xe8];
    code.extend(0u32.wrapping_sub(entry + 5).to_le_bytes());
    code.push(0xc3);
    let binary = original.with_bytes_at(entry, &code).expect("patched");
    let spec = wiper_bta::StaticSpec::default();
    let error = specialize(&binary, entry, &spec, &Default::default())
        .err()
        .expect("no residual");
    let text = error.to_string();
    assert!(text.contains("undefined weak"), "{text}");
    assert!(text.contains(&format!("{entry:#x}")), "{text}");
}
