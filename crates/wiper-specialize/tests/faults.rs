//! Faults the static inputs make certain happen in the residual too.

use iced_x86::Mnemonic;
use wiper_residual::Item;
use wiper_specialize::specialize;
use wiper_testkit::testdata_bin;

#[test]
fn a_division_by_a_static_zero_stays_a_division() {
    // modpow(b, e, m) starts with `1 % m`. With m = 0 the original raises
    // #DE (SIGFPE) there; evaluating the remainder at specialization time
    // (QFBV defines x % 0 = x) would give a residual that runs on instead.
    // The division stays, so the residual faults where the original does.
    for level in ["O0", "O1", "O2"] {
        let binary =
            wiper_elf::Binary::open(&testdata_bin(&format!("modpow-{level}"))).expect("modpow");
        let entry = wiper_x86::resolve_function(&binary, "modpow").expect("modpow");
        let spec: wiper_bta::StaticSpec = "arg2=0".parse().expect("spec");
        let s = specialize(&binary, entry, &spec, &Default::default()).expect("specialized");
        let divisions = s
            .residual
            .blocks
            .iter()
            .flat_map(|b| &b.items)
            .filter(|i| matches!(i, Item::Instr(ins, _) if ins.mnemonic() == Mnemonic::Div))
            .count();
        assert!(divisions > 0, "modpow-{level}: no div left: {:?}", s.stats);
    }
}
