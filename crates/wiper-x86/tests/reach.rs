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
    let kept = kept_functions(&mut dis, &[at(entry)], &[]).fates;
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
        let kept = kept_functions(&mut dis, &[sort], &[sort]).fates;
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
        let kept = kept_functions(&mut dis, &[inside], &[sort]).fates;
        assert_eq!(kept[&sort], Some(Kept::Entered), "{level}");
        assert_eq!(kept[&at("cmp_int")], Some(Kept::AddressIn(sort)), "{level}");
    }
}

/// gzip-musl (static, position-independent code): `_start_c` passes
/// `main` to `__libc_start_main` as a word loaded from a GOT slot. Entered
/// at `_start_c`, the slot is read and `main` may run; entered only at
/// `treat_stdin` (what an extracted `gzip -d` calls), nothing refers to
/// the slot and `main` cannot run, while the stdio callbacks that data
/// words hold still can.
#[test]
fn a_got_slot_counts_only_when_something_refers_to_it() {
    let binary = wiper_elf::Binary::open(&wiper_testkit::real_bin("gzip-musl")).unwrap();
    let at = |name: &str| wiper_x86::resolve_function(&binary, name).unwrap();
    let got = binary.section(".got").unwrap();
    let slot = (got.addr..got.addr + got.size)
        .step_by(4)
        .find(|&a| binary.read_u32(a) == Some(at("main")))
        .expect("main's address is in the GOT");
    let mut dis = Disassembler::new(&binary);
    let from_start = kept_functions(&mut dis, &[at("_start_c")], &[]).fates;
    assert_eq!(from_start[&at("main")], Some(Kept::AddressInData(slot)));
    let from_stdin = kept_functions(&mut dis, &[at("treat_stdin")], &[]).fates;
    assert_eq!(from_stdin[&at("main")], None);
    assert!(from_stdin[&at("__stdio_write")].is_some());
    // The residual may refer to the slot itself.
    let both = kept_functions(&mut dis, &[at("treat_stdin"), slot], &[]).fates;
    assert_eq!(both[&at("main")], Some(Kept::AddressInData(slot)));
}
