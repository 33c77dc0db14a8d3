//! Printer output: both notations, let-bound sharing, and the size cap.

use wiper_qfbv::{ExprPool, Printer};

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
