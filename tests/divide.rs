//! Division by a static divisor leaves no `div` in the residual: `dispatch`
//! (switch.c, case 3: `a / b` unsigned) and the functions of divide.c
//! (signed and unsigned quotients and remainders, `cdq; idiv`, a division
//! in a loop) specialized to a static divisor at every optimization level
//! multiply by a magic number instead, and every reduction is proved. That these residuals compute what the original does
//! is the differential test's job (the "unsigned division by a static
//! divisor" cases of tests/specialize_diff.rs run both on the same inputs).

use wiper_testkit::testdata_bin;

/// Specializes `function` of `binary` for `statics` and checks the listing
/// and the figures: no division, a multiplication if `mul` (not for a
/// power of two), every reduction proved, no fallback.
fn assert_divides_without_div(binary: &str, function: &str, statics: &[String], mul: bool) {
    let what = format!("{binary} {function} {statics:?}");
    let bin = wiper::Binary::open(testdata_bin(binary)).unwrap();
    let function = bin.function(function).unwrap();
    let spec = wiper::Spec::parse(statics).unwrap();
    let residual = wiper::specialize(&bin, &function, &spec).unwrap();
    let listing = residual.listing();
    let summary = residual.summary();
    assert!(!listing.contains("div "), "{what}:\n{listing}");
    assert!(!mul || listing.contains("mul "), "{what}:\n{listing}");
    assert_eq!(summary.reduced, summary.proved, "{what}");
    assert_eq!(summary.fallbacks, 0, "{what}:\n{listing}");
}

#[test]
fn no_div_remains_where_the_divisor_is_static() {
    for level in ["O0", "O1", "O2"] {
        for divisor in [3u32, 7, 10, 641, 1000, 0x7fff_ffff, 0xffff_fffe] {
            let statics = ["arg0=3".to_owned(), format!("arg2={divisor}")];
            assert_divides_without_div(&format!("switch-{level}"), "dispatch", &statics, true);
        }
    }
}

/// Signed division follows `cdq` (the residual keeps it: `edx` is then
/// known to be the sign of `eax`); remainders are `x - q * d`.
#[test]
fn no_idiv_remains_where_the_divisor_is_static() {
    for level in ["O0", "O1", "O2"] {
        let binary = format!("divide-{level}");
        for function in ["sdiv", "srem", "sdivrem", "udivrem", "smod_sum"] {
            for divisor in [3i32, 7, -10, 1000, 86400, 16] {
                let statics = [format!("arg1={divisor}")];
                let mul = divisor != 16;
                assert_divides_without_div(&binary, function, &statics, mul);
            }
        }
    }
}
