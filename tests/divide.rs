//! Division by a static divisor leaves no `div` in the residual: `dispatch`
//! (switch.c, case 3: `a / b` unsigned) specialized to a static divisor at
//! every optimization level multiplies by a magic number instead, and every
//! reduction is proved. That these residuals compute what the original does
//! is the differential test's job (the "unsigned division by a static
//! divisor" cases of tests/specialize_diff.rs run both on the same inputs).

use wiper_testkit::testdata_bin;

#[test]
fn no_div_remains_where_the_divisor_is_static() {
    for level in ["O0", "O1", "O2"] {
        let binary = wiper::Binary::open(testdata_bin(&format!("switch-{level}"))).unwrap();
        let function = binary.function("dispatch").unwrap();
        for divisor in [3u32, 7, 10, 641, 1000, 0x7fff_ffff, 0xffff_fffe] {
            let statics = ["arg0=3".to_owned(), format!("arg2={divisor}")];
            let spec = wiper::Spec::parse(&statics).unwrap();
            let residual = wiper::specialize(&binary, &function, &spec).unwrap();
            let listing = residual.listing();
            let summary = residual.summary();
            assert!(
                !listing.contains("div "),
                "switch-{level} / {divisor}:\n{listing}"
            );
            assert!(
                listing.contains("mul "),
                "switch-{level} / {divisor}: no multiplication:\n{listing}"
            );
            assert_eq!(
                summary.reduced, summary.proved,
                "switch-{level} / {divisor}"
            );
            assert_eq!(
                summary.fallbacks, 0,
                "switch-{level} / {divisor}:\n{listing}"
            );
        }
    }
}
