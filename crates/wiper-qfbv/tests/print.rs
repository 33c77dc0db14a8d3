//! Printer output: both notations, let-bound sharing, and the size cap.

use wiper_qfbv::{ExprPool, Op, Printer};

#[test]
fn infix_reads_naturally() {
    let mut p = ExprPool::new();
    let eax = p.var("eax", 32);
    let esp = p.var("esp", 32);
    let mem = p.mem_var("mem");
    let one = p.bv(1, 32);
    let four = p.bv(4, 32);
    let e = p.add(eax, one);
    assert_eq!(p.display(e).to_string(), "eax + 0x1");
    let slot = p.sub(esp, four);
    assert_eq!(p.display(slot).to_string(), "esp - 0x4");
    let l = p.load(mem, slot, 4);
    let x = p.xor(l, eax);
    assert_eq!(p.display(x).to_string(), "eax ^ load32(mem, esp - 0x4)");
    let al = p.extract(eax, 7, 0);
    let z = p.zext(al, 32);
    let m = p.mul(z, x);
    assert_eq!(
        p.display(m).to_string(),
        "(eax ^ load32(mem, esp - 0x4)) * zext32(eax[7:0])"
    );
    let c = p.ult(eax, esp);
    let i = p.ite(c, eax, esp);
    assert_eq!(p.display(i).to_string(), "(eax <u esp) ? eax : esp");
    let s = p.store(mem, esp, al);
    assert_eq!(p.display(s).to_string(), "store8(mem, esp, eax[7:0])");
}

#[test]
fn smt_form() {
    let mut p = ExprPool::new();
    let eax = p.var("eax", 32);
    let mem = p.mem_var("mem");
    let one = p.bv(1, 32);
    let e = p.add(eax, one);
    assert_eq!(p.display_smt(e).to_string(), "(bvadd eax #x00000001)");
    let b = p.extract(eax, 4, 0);
    let s = p.sext(b, 32);
    assert_eq!(
        p.display_smt(s).to_string(),
        "((_ sign_extend 27) ((_ extract 4 0) eax))"
    );
    let k = p.bv(5, 5);
    let eq = p.eq(b, k);
    assert_eq!(
        p.display_smt(eq).to_string(),
        "(= ((_ extract 4 0) eax) #b00101)"
    );
    let l = p.load(mem, eax, 2);
    assert_eq!(p.display_smt(l).to_string(), "(load2 mem eax)");
}

#[test]
fn shared_subterms_are_let_bound_once() {
    let mut p = ExprPool::new();
    let x = p.var("x", 32);
    let y = p.var("y", 32);
    let s = p.add(x, y);
    let e = p.mul(s, s);
    assert_eq!(p.display(e).to_string(), "let %1 = x + y; %1 * %1");
    assert_eq!(
        p.display_smt(e).to_string(),
        "(let ((%1 (bvadd x y))) (bvmul %1 %1))"
    );
}

#[test]
fn exponential_trees_print_in_linear_space() {
    // e_{i+1} = e_i * e_i ^ e_i: a DAG of 3*n nodes, a tree of 2^n.
    let mut p = ExprPool::new();
    let mut e = p.var("x", 32);
    for _ in 0..60 {
        let sq = p.mul(e, e);
        e = p.xor(sq, e);
    }
    let unlimited = Printer::infix().with_max_len(usize::MAX);
    let text = unlimited.print(&p, e);
    // Observed 1686 characters on 2026-12-03 (the bound is 1/0.85 of that).
    assert!(text.len() < 2_000, "{} characters", text.len());
    assert!(text.starts_with("let %1 = x ^ (x * x); let %2 = %1 ^ (%1 * %1); "));
    let smt = Printer::smt().with_max_len(usize::MAX).print(&p, e);
    // Observed 2463 characters on 2026-12-03 (the bound is 1/0.85 of that).
    assert!(smt.len() < 2_900, "{} characters", smt.len());
}

#[test]
fn output_is_capped() {
    let mut p = ExprPool::new();
    let mut e = p.var("x", 32);
    for i in 0..2_000u64 {
        let c = p.var(&format!("v{i}"), 32);
        e = p.add(e, c);
    }
    let text = Printer::infix().with_max_len(100).print(&p, e);
    assert_eq!(text.len(), 100 + '…'.len_utf8());
    assert!(text.ends_with('…'));
    assert!(p.display(e).to_string().len() <= 4096 + 3);
}

#[test]
fn smt_lets_nest_one_per_shared_subterm() {
    let mut p = ExprPool::new();
    let x = p.var("x", 32);
    let y = p.var("y", 32);
    let s = p.add(x, y);
    let t = p.mul(s, s);
    let u = p.mul(t, t);
    assert_eq!(
        p.display(u).to_string(),
        "let %1 = x + y; let %2 = %1 * %1; %2 * %2"
    );
    assert_eq!(
        p.display_smt(u).to_string(),
        "(let ((%1 (bvadd x y))) (let ((%2 (bvmul %1 %1))) (bvmul %2 %2)))"
    );
}

#[test]
fn stores_and_rotations_name_their_width_and_direction() {
    let mut p = ExprPool::new();
    let mem = p.mem_var("mem");
    let eax = p.var("eax", 32);
    let al = p.extract(eax, 7, 0);
    let byte = p.store(mem, eax, al);
    assert_eq!(
        p.display_smt(byte).to_string(),
        "(store1 mem eax ((_ extract 7 0) eax))"
    );
    let word = p.store(mem, eax, eax);
    assert_eq!(p.display_smt(word).to_string(), "(store4 mem eax eax)");
    assert_eq!(p.display(word).to_string(), "store32(mem, eax, eax)");
    let cl = p.var("ecx", 32);
    let left = p.mk(Op::Rotl, &[eax, cl]).unwrap();
    let right = p.mk(Op::Rotr, &[eax, cl]).unwrap();
    assert_eq!(p.display(left).to_string(), "rotl(eax, ecx)");
    assert_eq!(p.display(right).to_string(), "rotr(eax, ecx)");
}

#[test]
fn the_cap_keeps_what_fits_and_cuts_between_characters() {
    let mut p = ExprPool::new();
    let x = p.var("x", 32);
    let y = p.var("y", 32);
    let e = p.add(x, y);
    let whole = p.display(e).to_string();
    assert_eq!(whole, "x + y");
    let exact = Printer::infix().with_max_len(whole.len()).print(&p, e);
    assert_eq!(exact, whole, "output of exactly the cap is not cut");
    let cut = Printer::infix().with_max_len(whole.len() - 1).print(&p, e);
    assert_eq!(cut, "x + …");
    // Two-byte characters: a cap of 3 bytes falls inside the second one.
    let wide = p.var("éé", 32);
    let text = Printer::infix().with_max_len(3).print(&p, wide);
    assert_eq!(text, "é…");
}
