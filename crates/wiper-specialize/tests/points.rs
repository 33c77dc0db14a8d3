//! The specialization points the specializer exports on request
//! (`Options::record_points`): one per memo entry, each naming its residual
//! block, its original address and its static store.

use std::collections::{BTreeMap, HashSet};

use wiper_specialize::{specialize, Options, Specialization};
use wiper_testkit::testdata_bin;

/// The VM program computing x! (interp.c's `vm_factorial`).
const FACTORIAL: &str = "arg0=@i32:1,1,2,6,10,13,7,8,5,7,12,11,3,9,0";

/// `run_vm` in `interp-O2` specialized to the factorial program.
fn run_vm(record_points: bool) -> Specialization {
    let binary = wiper_elf::Binary::open(&testdata_bin("interp-O2")).expect("interp-O2");
    let entry = wiper_x86::resolve_function(&binary, "run_vm").expect("run_vm");
    let spec: wiper_bta::StaticSpec = FACTORIAL.parse().expect("spec");
    let options = Options {
        record_points,
        ..Default::default()
    };
    specialize(&binary, entry, &spec, &options).expect("specialized")
}

#[test]
fn every_memo_entry_is_a_point_with_its_own_block_and_store() {
    let s = run_vm(true);
    assert_eq!(s.points.len(), s.stats.points);
    let labels: HashSet<_> = s.residual.blocks.iter().map(|b| b.label).collect();
    let mut seen = HashSet::new();
    // The printed stores of each program point (function, address,
    // inlined callees).
    type Stores<'a> = BTreeMap<(u32, u32, Vec<u32>), Vec<&'a Vec<(String, String)>>>;
    let mut stores: Stores = BTreeMap::new();
    for p in &s.points {
        assert!(labels.contains(&p.label), "{p:?} has no residual block");
        assert!(seen.insert(p.label), "{p:?}: label used twice");
        // Every store has the entry-relative stack pointer.
        assert!(
            p.statics
                .iter()
                .any(|(l, v)| l == "esp" && v.starts_with("esp0")),
            "{p:?}"
        );
        stores
            .entry((p.function, p.address, p.inlined.clone()))
            .or_default()
            .push(&p.statics);
    }
    // The copies of one program point differ in their static stores (that
    // is what makes them copies), and the printed stores show it.
    for (point, copies) in &stores {
        let distinct: HashSet<_> = copies.iter().collect();
        assert_eq!(distinct.len(), copies.len(), "{point:x?}");
    }
    // The interpreter's loop is specialized once per VM instruction
    // reached: some point has several copies.
    let most = stores.values().map(Vec::len).max().unwrap_or(0);
    assert!(most > 1, "no polyvariance: {stores:?}");
    assert!(s.entry_times.is_some());
}

#[test]
fn points_are_recorded_only_on_request_and_change_nothing_else() {
    let with = run_vm(true);
    let without = run_vm(false);
    assert!(without.points.is_empty());
    assert_eq!(with.residual, without.residual);
    assert_eq!(with.stats.points, without.stats.points);
}
