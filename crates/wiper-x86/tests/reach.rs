//! Reachability for extraction (`wiper_x86::reach`), on libc_demo (static
//! glibc): entered at `sort_and_sum`, `qsort` runs (called) and so may
//! `cmp_int` (its address is computed in `sort_and_sum`), while `power`
//! and `classify`, which nothing reached calls, cannot; entered at `power`,
//! neither `sort_and_sum` nor `cmp_int` can (glibc's own function pointers
//! in data keep `qsort` itself).

use std::collections::BTreeMap;

use wiper_testkit::testdata_bin;
use wiper_x86::reach::{kept_functions, Kept};
use wiper_x86::Disassembler;

/// The fate of each named function when the code is entered at `entry`.
fn fates(binary: &wiper_elf::Binary, entry: &str) -> BTreeMap<String, Option<Kept>> {
    let at = |name: &str| wiper_x86::resolve_function(binary, name).unwrap();
    let mut dis = Disassembler::new(binary);
    let kept = kept_functions(&mut dis, &[at(entry)], &[]);
    ["sort_and_sum", "qsort", "cmp_int", "power", "classify"]
        .iter()
        .map(|n| (n.to_string(), kept[&at(n)]))
        .collect()
}

#[test]
fn what_runs_is_what_is_called_or_has_its_address_taken() {
    for level in ["O0", "O2"] {
        let binary = wiper_elf::Binary::open(&testdata_bin(&format!("libc_demo-{level}"))).unwrap();
        let sort = wiper_x86::resolve_function(&binary, "sort_and_sum").unwrap();
        let from_sort = fates(&binary, "sort_and_sum");
        assert_eq!(from_sort["sort_and_sum"], Some(Kept::Entered), "{level}");
        assert!(from_sort["qsort"].is_some(), "{level}: {from_sort:?}");
        assert_eq!(from_sort["cmp_int"], Some(Kept::AddressIn(sort)), "{level}");
        assert_eq!(from_sort["power"], None, "{level}");
        assert_eq!(from_sort["classify"], None, "{level}");
        let from_power = fates(&binary, "power");
        assert_eq!(from_power["power"], Some(Kept::Entered), "{level}");
        assert_eq!(from_power["sort_and_sum"], None, "{level}: {from_power:?}");
        assert_eq!(from_power["cmp_int"], None, "{level}");
        assert_eq!(from_power["classify"], None, "{level}");
    }
}

#[test]
fn a_replaced_function_keeps_only_its_entry_unless_entered_inside() {
    for level in ["O0", "O2"] {
        let binary = wiper_elf::Binary::open(&testdata_bin(&format!("libc_demo-{level}"))).unwrap();
        let at = |name: &str| wiper_x86::resolve_function(&binary, name).unwrap();
        let sort = at("sort_and_sum");
        let mut dis = Disassembler::new(&binary);
        let kept = kept_functions(&mut dis, &[sort], &[sort]);
        assert_eq!(kept[&sort], Some(Kept::Replaced), "{level}");
        // Only the body of `sort_and_sum` takes `cmp_int`'s address.
        assert_eq!(kept[&at("cmp_int")], None, "{level}");
        // Entered past its entry (a jump into the original code), its
        // body runs: everything it reaches is kept.
        let inside = dis
            .function(sort)
            .unwrap()
            .instructions()
            .nth(3)
            .unwrap()
            .ip32();
        let kept = kept_functions(&mut dis, &[inside], &[sort]);
        assert_eq!(kept[&sort], Some(Kept::Entered), "{level}");
        assert_eq!(kept[&at("cmp_int")], Some(Kept::AddressIn(sort)), "{level}");
    }
}
