//! Recursion with a static argument that progresses: the calls are inlined
//! (the recursion unfolds at specialization time), not kept as calls to
//! specialized clones.

use wiper_residual::Item;
use wiper_specialize::{specialize, Specialization};
use wiper_testkit::testdata_bin;

fn specialize_fn(binary: &str, function: &str, spec: &str) -> Specialization {
    let binary = wiper_elf::Binary::open(&testdata_bin(binary)).expect("binary");
    let entry = wiper_x86::resolve_function(&binary, function).expect("function");
    let spec: wiper_bta::StaticSpec = spec.parse().expect("spec");
    specialize(&binary, entry, &spec, &Default::default()).expect("specialized")
}

/// The residual's call instructions (to clones or to original code).
fn calls(s: &Specialization) -> usize {
    s.residual
        .blocks
        .iter()
        .flat_map(|b| &b.items)
        .filter(|i| match i {
            Item::CallLabel(..) => true,
            Item::Instr(ins, _) => ins.flow_control() == iced_x86::FlowControl::Call,
            Item::Address { .. } => false,
        })
        .count()
}

#[test]
fn a_static_recursion_depth_is_unfolded_at_every_level() {
    // pow_rec(x, 6) = x * pow_rec(x, 5) = ...: n is static and shrinks, x
    // is dynamic.
    for level in ["O0", "O1", "O2"] {
        let s = specialize_fn(&format!("recursion-{level}"), "pow_rec", "arg1=6");
        assert_eq!(calls(&s), 0, "pow_rec-{level}: {:?}", s.stats);
    }
}

#[test]
fn a_repeated_static_context_still_becomes_a_clone() {
    // ackermann(2, n) calls ackermann(2, n - 1): the same known argument,
    // so unfolding would never end; it calls a clone instead.
    let s = specialize_fn("recursion-O0", "ackermann", "arg0=2");
    assert!(calls(&s) > 0, "{:?}", s.stats);
}

#[test]
fn a_recursion_whose_state_progresses_in_a_callers_frame_is_unfolded() {
    // eval_expr's parser passes the same pointer to its state (`ps`, in
    // eval_expr's frame) at every level: parse_sum -> parse_term ->
    // parse_factor -> parse_sum on "(". The arguments repeat, but the
    // position `ps->p` they point to has moved on, so the recursion
    // progresses and unfolds; the expression is gone from the residual.
    // (ackermann above is the near miss: nothing above its frame changes.)
    let expr = "arg0=@str:(x+3)*(y-x)+2*x*x-7*y+100";
    for level in ["O0", "O1", "O2"] {
        let s = specialize_fn(&format!("expr-{level}"), "eval_expr", expr);
        assert_eq!(calls(&s), 0, "expr-{level}: {:?}", s.stats);
    }
}
