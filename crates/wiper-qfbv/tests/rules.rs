//! One test per simplifier rule (see the list in `wiper_qfbv::simplify`).
//! Rules run at construction, so each test builds the redex with the builder
//! API and compares ids with the expected result.

mod common;

use wiper_qfbv::{bv, ExprId, ExprPool, Op};

/// A pool with 32-bit variables `x`, `y`, `z`, a 1-bit `b`, 8-bit `al`,
/// a memory `m` and an address base `a`.
struct T {
    p: ExprPool,
    x: ExprId,
    y: ExprId,
    z: ExprId,
    b: ExprId,
    al: ExprId,
    m: ExprId,
    a: ExprId,
}

fn setup() -> T {
    let mut p = ExprPool::new();
    let x = p.var("x", 32);
    let y = p.var("y", 32);
    let z = p.var("z", 32);
    let b = p.var("b", 1);
    let al = p.var("al", 8);
    let m = p.mem_var("m");
    let a = p.var("a", 32);
    T {
        p,
        x,
        y,
        z,
        b,
        al,
        m,
        a,
    }
}

impl T {
    fn c(&mut self, v: u64) -> ExprId {
        self.p.bv(v, 32)
    }
    /// `a + off` for the address tests.
    fn at(&mut self, off: u64) -> ExprId {
        let c = self.c(off);
        self.p.add(self.a, c)
    }
    fn show(&self, e: ExprId) -> String {
        self.p.display(e).to_string()
    }
}

// ----- folding and canonical form ----------------------------------------------

#[test]
fn folds_every_operator() {
    let mut p = ExprPool::new();
    let ops = common::BINARY_OPS;
    for (a, b) in [(0xf3u64, 0x05u64), (0x80, 0xff), (0x7, 0x0), (0x10, 0x9)] {
        let (ca, cb) = (p.bv(a, 8), p.bv(b, 8));
        for op in ops {
            let e = p.mk(op, &[ca, cb]).unwrap();
            let want = bv::apply(op, &[(a, 8), (b, 8)]).unwrap();
            assert_eq!(p.as_const(e), Some(want), "{op:?} {a:#x} {b:#x}");
        }
        for op in [
            Op::Not,
            Op::Neg,
            Op::Extract { hi: 6, lo: 2 },
            Op::ZeroExt(12),
            Op::SignExt(12),
        ] {
            let e = p.mk(op, &[ca]).unwrap();
            assert_eq!(p.as_const(e), bv::apply(op, &[(a, 8)]), "{op:?} {a:#x}");
        }
    }
    let (t, f, c1) = (p.bv(1, 1), p.bv(0, 1), p.bv(3, 8));
    let c2 = p.bv(4, 8);
    assert_eq!(p.ite(t, c1, c2), c1);
    assert_eq!(p.ite(f, c1, c2), c2);
}

#[test]
fn constants_are_masked_and_hash_consed() {
    let mut p = ExprPool::new();
    assert_eq!(p.bv(0x1ff, 8), p.bv(0xff, 8));
    assert_ne!(p.bv(1, 8), p.bv(1, 16));
    let x = p.var("x", 32);
    let y = p.var("y", 32);
    assert_eq!(p.add(x, y), p.add(y, x), "commutative operands are ordered");
    let one = p.bv(1, 32);
    let s = p.add(one, x);
    assert_eq!(p.args(s), &[x, one], "constants go right");
    let before = p.len();
    let again = p.xor(x, y);
    assert_eq!(p.xor(y, x), again);
    assert_eq!(p.len(), before + 1);
}

// ----- add / sub / neg / mul ------------------------------------------------------

#[test]
fn add_zero() {
    let mut t = setup();
    let z = t.c(0);
    assert_eq!(t.p.add(t.x, z), t.x);
}

#[test]
fn add_constants_reassociate() {
    let mut t = setup();
    let (c1, c2, c3) = (t.c(1), t.c(2), t.c(3));
    let e = t.p.add(t.x, c1);
    assert_eq!(t.p.add(e, c2), t.p.add(t.x, c3));
    let m1 = t.c(0xffff_ffff);
    assert_eq!(t.p.add(e, m1), t.x);
}

#[test]
fn add_constants_float_up() {
    let mut t = setup();
    let (c1, c2) = (t.c(4), t.c(8));
    let xc = t.p.add(t.x, c1);
    let yc = t.p.add(t.y, c2);
    let e = t.p.add(xc, yc);
    let xy = t.p.add(t.x, t.y);
    let c12 = t.c(12);
    assert_eq!(e, t.p.add(xy, c12));
}

#[test]
fn add_of_negation_is_sub() {
    let mut t = setup();
    let ny = t.p.neg(t.y);
    assert_eq!(t.p.add(t.x, ny), t.p.sub(t.x, t.y));
    assert_eq!(t.p.add(ny, t.x), t.p.sub(t.x, t.y));
}

#[test]
fn add_cancels_sub() {
    let mut t = setup();
    let d = t.p.sub(t.x, t.y);
    assert_eq!(t.p.add(d, t.y), t.x);
    assert_eq!(t.p.add(t.y, d), t.x);
}

#[test]
fn sub_self_zero_and_from_zero() {
    let mut t = setup();
    let zero = t.c(0);
    assert_eq!(t.p.sub(t.x, t.x), zero);
    assert_eq!(t.p.sub(t.x, zero), t.x);
    assert_eq!(t.p.sub(zero, t.x), t.p.neg(t.x));
}

#[test]
fn sub_constant_becomes_add() {
    let mut t = setup();
    let four = t.c(4);
    let e = t.p.sub(t.x, four);
    let m4 = t.c(4u64.wrapping_neg());
    assert_eq!(e, t.p.add(t.x, m4));
    assert_eq!(t.show(e), "x - 0x4");
}

#[test]
fn sub_of_negation_is_add() {
    let mut t = setup();
    let ny = t.p.neg(t.y);
    assert_eq!(t.p.sub(t.x, ny), t.p.add(t.x, t.y));
}

#[test]
fn sub_cancels_add() {
    let mut t = setup();
    let s = t.p.add(t.x, t.y);
    assert_eq!(t.p.sub(s, t.x), t.y);
    assert_eq!(t.p.sub(s, t.y), t.x);
}

#[test]
fn sub_reassociates_constants() {
    // (esp - 4) - (esp - 8) == 4, the stack-slot distance.
    let mut t = setup();
    let (m4, m8) = (t.c(4u64.wrapping_neg()), t.c(8u64.wrapping_neg()));
    let a = t.p.add(t.x, m4);
    let b = t.p.add(t.x, m8);
    assert_eq!(t.p.sub(a, b), t.c(4));
    let e = t.p.sub(a, t.y);
    let xy = t.p.sub(t.x, t.y);
    assert_eq!(e, t.p.add(xy, m4));
}

#[test]
fn neg_rules() {
    let mut t = setup();
    let n = t.p.neg(t.x);
    assert_eq!(t.p.neg(n), t.x);
    let d = t.p.sub(t.x, t.y);
    assert_eq!(t.p.neg(d), t.p.sub(t.y, t.x));
    let c5 = t.c(5);
    let xc = t.p.add(t.x, c5);
    let m5 = t.c(5u64.wrapping_neg());
    assert_eq!(t.p.neg(xc), t.p.sub(m5, t.x));
}

#[test]
fn mul_identities() {
    let mut t = setup();
    let (zero, one, ones) = (t.c(0), t.c(1), t.c(0xffff_ffff));
    assert_eq!(t.p.mul(t.x, zero), zero);
    assert_eq!(t.p.mul(t.x, one), t.x);
    assert_eq!(t.p.mul(t.x, ones), t.p.neg(t.x));
}

#[test]
fn mul_constants_reassociate() {
    let mut t = setup();
    let (c3, c5, c15) = (t.c(3), t.c(5), t.c(15));
    let e = t.p.mul(t.x, c3);
    assert_eq!(t.p.mul(e, c5), t.p.mul(t.x, c15));
}

// ----- division ---------------------------------------------------------------------

#[test]
fn unsigned_division_rules() {
    let mut t = setup();
    let (zero, one, eight, ones) = (t.c(0), t.c(1), t.c(8), t.c(0xffff_ffff));
    assert_eq!(t.p.udiv(t.x, one), t.x);
    assert_eq!(t.p.udiv(t.x, zero), ones);
    let three = t.c(3);
    assert_eq!(t.p.udiv(t.x, eight), t.p.lshr(t.x, three));
    assert_eq!(t.p.urem(t.x, one), zero);
    assert_eq!(t.p.urem(t.x, zero), t.x);
    assert_eq!(t.p.urem(t.x, t.x), zero);
    let seven = t.c(7);
    assert_eq!(t.p.urem(t.x, eight), t.p.and(t.x, seven));
    let ten = t.c(10);
    let d = t.p.udiv(t.x, ten);
    assert_eq!(t.p.op(d), Op::Udiv, "no rule for non-powers of two");
}

#[test]
fn signed_division_rules() {
    let mut t = setup();
    let (zero, one, ones) = (t.c(0), t.c(1), t.c(0xffff_ffff));
    assert_eq!(t.p.sdiv(t.x, one), t.x);
    assert_eq!(t.p.sdiv(t.x, ones), t.p.neg(t.x));
    assert_eq!(t.p.srem(t.x, one), zero);
    assert_eq!(t.p.srem(t.x, ones), zero);
    assert_eq!(t.p.srem(t.x, zero), t.x);
    assert_eq!(t.p.srem(t.x, t.x), zero);
    let d = t.p.sdiv(t.x, zero);
    assert_eq!(t.p.op(d), Op::Sdiv, "x /s 0 depends on the sign of x");
}

// ----- bitwise ----------------------------------------------------------------------

#[test]
fn and_identities() {
    let mut t = setup();
    let (zero, ones) = (t.c(0), t.c(0xffff_ffff));
    assert_eq!(t.p.and(t.x, zero), zero);
    assert_eq!(t.p.and(t.x, ones), t.x);
    assert_eq!(t.p.and(t.x, t.x), t.x);
    let nx = t.p.not(t.x);
    assert_eq!(t.p.and(t.x, nx), zero);
    assert_eq!(t.p.and(nx, t.x), zero);
}

#[test]
fn and_constants_reassociate() {
    let mut t = setup();
    let (c1, c2, c3) = (t.c(0xf0f0), t.c(0xff00), t.c(0xf000));
    let e = t.p.and(t.x, c1);
    assert_eq!(t.p.and(e, c2), t.p.and(t.x, c3));
}

#[test]
fn and_absorption() {
    let mut t = setup();
    let xy = t.p.and(t.x, t.y);
    assert_eq!(t.p.and(xy, t.x), xy);
    let oxy = t.p.or(t.x, t.y);
    assert_eq!(t.p.and(oxy, t.y), t.y);
}

#[test]
fn and_low_mask_is_zero_extension() {
    let mut t = setup();
    let ff = t.c(0xff);
    let e = t.p.and(t.x, ff);
    let low = t.p.extract(t.x, 7, 0);
    assert_eq!(e, t.p.zext(low, 32));
    let z = t.p.zext(t.al, 32);
    assert_eq!(t.p.and(z, ff), z);
}

#[test]
fn and_pushes_into_zero_extension() {
    let mut t = setup();
    let z = t.p.zext(t.al, 32);
    let c = t.c(0x1234_5670);
    let inner_c = t.p.bv(0x70, 8);
    let inner = t.p.and(t.al, inner_c);
    assert_eq!(t.p.and(z, c), t.p.zext(inner, 32));
}

#[test]
fn or_identities() {
    let mut t = setup();
    let (zero, ones) = (t.c(0), t.c(0xffff_ffff));
    assert_eq!(t.p.or(t.x, zero), t.x);
    assert_eq!(t.p.or(t.x, ones), ones);
    assert_eq!(t.p.or(t.x, t.x), t.x);
    let nx = t.p.not(t.x);
    assert_eq!(t.p.or(nx, t.x), ones);
}

#[test]
fn or_constants_reassociate_and_absorb() {
    let mut t = setup();
    let (c1, c2, c3) = (t.c(0x1), t.c(0x2), t.c(0x3));
    let e = t.p.or(t.x, c1);
    assert_eq!(t.p.or(e, c2), t.p.or(t.x, c3));
    let oxy = t.p.or(t.x, t.y);
    assert_eq!(t.p.or(oxy, t.x), oxy);
    let axy = t.p.and(t.x, t.y);
    assert_eq!(t.p.or(axy, t.x), t.x);
}

#[test]
fn xor_identities() {
    let mut t = setup();
    let (zero, ones) = (t.c(0), t.c(0xffff_ffff));
    assert_eq!(t.p.xor(t.x, zero), t.x);
    assert_eq!(t.p.xor(t.x, t.x), zero);
    assert_eq!(t.p.xor(t.x, ones), t.p.not(t.x));
    let nx = t.p.not(t.x);
    assert_eq!(t.p.xor(t.x, nx), ones);
}

#[test]
fn xor_reassociates_and_cancels() {
    let mut t = setup();
    let (c1, c2, c3) = (t.c(0x5), t.c(0x6), t.c(0x3));
    let e = t.p.xor(t.x, c1);
    assert_eq!(t.p.xor(e, c2), t.p.xor(t.x, c3));
    let xy = t.p.xor(t.x, t.y);
    assert_eq!(t.p.xor(xy, t.x), t.y);
    assert_eq!(t.p.xor(t.y, xy), t.x);
}

#[test]
fn xor_of_nots() {
    let mut t = setup();
    let (nx, ny) = (t.p.not(t.x), t.p.not(t.y));
    assert_eq!(t.p.xor(nx, ny), t.p.xor(t.x, t.y));
    let c = t.c(0xf);
    let nc = t.c(!0xfu64);
    assert_eq!(t.p.xor(nx, c), t.p.xor(t.x, nc));
}

#[test]
fn not_rules() {
    let mut t = setup();
    let nx = t.p.not(t.x);
    assert_eq!(t.p.not(nx), t.x);
    let c = t.c(0xf);
    let xc = t.p.xor(t.x, c);
    let nc = t.c(!0xfu64);
    assert_eq!(t.p.not(xc), t.p.xor(t.x, nc));
}

#[test]
fn not_flips_comparisons() {
    let mut t = setup();
    let lt = t.p.ult(t.x, t.y);
    assert_eq!(t.p.not(lt), t.p.ule(t.y, t.x));
    let le = t.p.sle(t.x, t.y);
    assert_eq!(t.p.not(le), t.p.slt(t.y, t.x));
    assert_eq!(t.p.ugt(t.y, t.x), lt, "ugt is ult with swapped operands");
    let ne = t.p.ne(t.x, t.y);
    let eq = t.p.eq(t.x, t.y);
    assert_eq!(ne, t.p.not(eq));
}

// ----- shifts and rotates -----------------------------------------------------------

#[test]
fn shift_by_zero_and_by_width() {
    let mut t = setup();
    let (zero, w, big) = (t.c(0), t.c(32), t.c(1000));
    for f in [ExprPool::shl, ExprPool::lshr, ExprPool::ashr] {
        assert_eq!(f(&mut t.p, t.x, zero), t.x);
    }
    assert_eq!(t.p.shl(t.x, w), zero);
    assert_eq!(t.p.lshr(t.x, big), zero);
    let c31 = t.c(31);
    assert_eq!(t.p.ashr(t.x, big), t.p.ashr(t.x, c31));
}

#[test]
fn shifting_constants_zero_or_ones() {
    let mut t = setup();
    let (zero, ones) = (t.c(0), t.c(0xffff_ffff));
    assert_eq!(t.p.shl(zero, t.y), zero);
    assert_eq!(t.p.lshr(zero, t.y), zero);
    assert_eq!(t.p.ashr(ones, t.y), ones);
}

#[test]
fn shifts_combine() {
    let mut t = setup();
    let (c3, c4, c7, c20) = (t.c(3), t.c(4), t.c(7), t.c(20));
    let e = t.p.shl(t.x, c3);
    assert_eq!(t.p.shl(e, c4), t.p.shl(t.x, c7));
    let e = t.p.lshr(t.x, c20);
    assert_eq!(t.p.lshr(e, c20), t.c(0));
}

#[test]
fn rotate_rules() {
    let mut t = setup();
    let (zero, ones, c32, c33, c1) = (t.c(0), t.c(0xffff_ffff), t.c(32), t.c(33), t.c(1));
    assert_eq!(t.p.rotl(zero, t.y), zero);
    assert_eq!(t.p.rotr(ones, t.y), ones);
    assert_eq!(t.p.rotl(t.x, c32), t.x);
    assert_eq!(t.p.rotr(t.x, zero), t.x);
    assert_eq!(t.p.rotl(t.x, c33), t.p.rotl(t.x, c1));
}

// ----- extract ------------------------------------------------------------------------

#[test]
fn extract_whole_and_nested() {
    let mut t = setup();
    assert_eq!(t.p.extract(t.x, 31, 0), t.x);
    let e = t.p.extract(t.x, 23, 8);
    assert_eq!(t.p.extract(e, 7, 4), t.p.extract(t.x, 15, 12));
}

#[test]
fn extract_of_concat() {
    let mut t = setup();
    let c = t.p.concat(t.x, t.y); // 64 bits, y low
    assert_eq!(t.p.extract(c, 31, 0), t.y);
    assert_eq!(t.p.extract(c, 63, 32), t.x);
    assert_eq!(t.p.extract(c, 15, 8), t.p.extract(t.y, 15, 8));
    let straddle = t.p.extract(c, 39, 24);
    let (h, l) = (t.p.extract(t.x, 7, 0), t.p.extract(t.y, 31, 24));
    assert_eq!(straddle, t.p.concat(h, l));
}

#[test]
fn extract_of_zero_extension() {
    let mut t = setup();
    let z = t.p.zext(t.al, 32);
    assert_eq!(t.p.extract(z, 7, 0), t.al);
    assert_eq!(t.p.extract(z, 31, 8), t.p.bv(0, 24));
    let e = t.p.extract(z, 11, 4);
    let hi = t.p.extract(t.al, 7, 4);
    assert_eq!(e, t.p.zext(hi, 8));
}

#[test]
fn extract_of_sign_extension() {
    let mut t = setup();
    let s = t.p.sext(t.al, 32);
    assert_eq!(t.p.extract(s, 6, 1), t.p.extract(t.al, 6, 1));
    let e = t.p.extract(s, 15, 4);
    let hi = t.p.extract(t.al, 7, 4);
    assert_eq!(e, t.p.sext(hi, 12));
    let sign = t.p.extract(t.al, 7, 7);
    assert_eq!(t.p.extract(s, 31, 16), t.p.sext(sign, 16));
}

#[test]
fn extract_of_load_is_narrower_load() {
    let mut t = setup();
    let l = t.p.load(t.m, t.a, 4);
    assert_eq!(t.p.extract(l, 7, 0), t.p.load(t.m, t.a, 1));
    let a2 = t.at(2);
    assert_eq!(t.p.extract(l, 31, 16), t.p.load(t.m, a2, 2));
    let e = t.p.extract(l, 11, 4);
    assert_eq!(t.p.op(e), Op::Extract { hi: 11, lo: 4 });
}

#[test]
fn extract_pushes_into_bitwise_with_constant() {
    let mut t = setup();
    let c = t.c(0x1234_ff00);
    let e = t.p.or(t.x, c);
    let got = t.p.extract(e, 15, 8);
    assert_eq!(got, t.p.bv(0xff, 8));
    let nx = t.p.not(t.x);
    let got = t.p.extract(nx, 7, 0);
    let low = t.p.extract(t.x, 7, 0);
    assert_eq!(got, t.p.not(low));
}

#[test]
fn extract_low_bits_of_arithmetic() {
    let mut t = setup();
    let z = t.p.zext(t.al, 32);
    let c = t.c(0x105);
    let s = t.p.add(z, c);
    let five = t.p.bv(5, 8);
    assert_eq!(t.p.extract(s, 7, 0), t.p.add(t.al, five));
    let ns = t.p.neg(z);
    assert_eq!(t.p.extract(ns, 7, 0), t.p.neg(t.al));
    let xy = t.p.add(t.x, t.y);
    let e = t.p.extract(xy, 7, 0);
    assert!(matches!(t.p.op(e), Op::Extract { .. }), "no constant: kept");
}

#[test]
fn extract_of_constant_shift() {
    let mut t = setup();
    let c8 = t.c(8);
    let r = t.p.lshr(t.x, c8);
    assert_eq!(t.p.extract(r, 7, 0), t.p.extract(t.x, 15, 8));
    let l = t.p.shl(t.x, c8);
    assert_eq!(t.p.extract(l, 15, 8), t.p.extract(t.x, 7, 0));
    assert_eq!(t.p.extract(l, 7, 0), t.p.bv(0, 8));
}

#[test]
fn extract_of_ite_with_constant_branches() {
    let mut t = setup();
    let (c1, c2) = (t.c(0x1122), t.c(0x3344));
    let i = t.p.ite(t.b, c1, c2);
    let (k1, k2) = (t.p.bv(0x22, 8), t.p.bv(0x44, 8));
    assert_eq!(t.p.extract(i, 7, 0), t.p.ite(t.b, k1, k2));
}

// ----- concat and extensions ---------------------------------------------------------

#[test]
fn concat_with_zero_is_zero_extension() {
    let mut t = setup();
    let z = t.p.bv(0, 24);
    assert_eq!(t.p.concat(z, t.al), t.p.zext(t.al, 32));
}

#[test]
fn concat_of_adjacent_extracts() {
    let mut t = setup();
    let h = t.p.extract(t.x, 31, 16);
    let l = t.p.extract(t.x, 15, 4);
    assert_eq!(t.p.concat(h, l), t.p.extract(t.x, 31, 4));
    let all_l = t.p.extract(t.x, 15, 0);
    assert_eq!(t.p.concat(h, all_l), t.x);
}

#[test]
fn concat_of_adjacent_loads() {
    let mut t = setup();
    let a1 = t.at(1);
    let (b1, b0) = (t.p.load(t.m, a1, 1), t.p.load(t.m, t.a, 1));
    assert_eq!(t.p.concat(b1, b0), t.p.load(t.m, t.a, 2));
    let a2 = t.at(2);
    let w1 = t.p.load(t.m, a2, 2);
    let w0 = t.p.load(t.m, t.a, 2);
    assert_eq!(t.p.concat(w1, w0), t.p.load(t.m, t.a, 4));
}

#[test]
fn concat_reassociates_and_merges_at_the_seam() {
    let mut t = setup();
    let (b3, b2, b1) = (
        t.p.extract(t.x, 31, 24),
        t.p.extract(t.x, 23, 16),
        t.p.extract(t.x, 15, 0),
    );
    let tail = t.p.concat(b2, b1);
    assert_eq!(t.p.concat(b3, tail), t.x);
    let (h, mid) = (t.p.extract(t.y, 7, 0), t.p.extract(t.x, 31, 24));
    let left = t.p.concat(h, mid);
    let low = t.p.extract(t.x, 23, 0);
    let e = t.p.concat(left, low);
    assert_eq!(e, t.p.concat(h, t.x));
}

#[test]
fn extension_rules() {
    let mut t = setup();
    assert_eq!(t.p.zext(t.x, 32), t.x);
    assert_eq!(t.p.sext(t.x, 32), t.x);
    let z16 = t.p.zext(t.al, 16);
    assert_eq!(t.p.zext(z16, 32), t.p.zext(t.al, 32));
    let s16 = t.p.sext(t.al, 16);
    assert_eq!(t.p.sext(s16, 32), t.p.sext(t.al, 32));
    assert_eq!(t.p.sext(z16, 32), t.p.zext(t.al, 32));
}

// ----- ite -----------------------------------------------------------------------------

#[test]
fn ite_equal_branches_and_negated_condition() {
    let mut t = setup();
    assert_eq!(t.p.ite(t.b, t.x, t.x), t.x);
    let nb = t.p.not(t.b);
    assert_eq!(t.p.ite(nb, t.x, t.y), t.p.ite(t.b, t.y, t.x));
}

#[test]
fn ite_nested_on_same_condition() {
    let mut t = setup();
    let inner = t.p.ite(t.b, t.x, t.y);
    assert_eq!(t.p.ite(t.b, inner, t.z), t.p.ite(t.b, t.x, t.z));
    assert_eq!(t.p.ite(t.b, t.z, inner), t.p.ite(t.b, t.z, t.y));
}

#[test]
fn ite_on_bits_is_boolean_logic() {
    let mut t = setup();
    let (one, zero) = (t.p.bit(true), t.p.bit(false));
    let e = t.p.var("e", 1);
    assert_eq!(t.p.ite(t.b, one, zero), t.b);
    assert_eq!(t.p.ite(t.b, zero, one), t.p.not(t.b));
    assert_eq!(t.p.ite(t.b, one, e), t.p.or(t.b, e));
    assert_eq!(t.p.ite(t.b, e, zero), t.p.and(t.b, e));
    let nb = t.p.not(t.b);
    assert_eq!(t.p.ite(t.b, zero, e), t.p.and(nb, e));
    assert_eq!(t.p.ite(t.b, e, one), t.p.or(nb, e));
}

#[test]
fn ite_on_memories() {
    let mut t = setup();
    let v = t.p.var("v", 8);
    let s = t.p.store(t.m, t.a, v);
    let one = t.p.bit(true);
    assert_eq!(t.p.ite(one, s, t.m), s);
    assert_eq!(t.p.ite(t.b, s, s), s);
}

// ----- comparisons -------------------------------------------------------------------------

#[test]
fn eq_of_equal_operands_and_bits() {
    let mut t = setup();
    assert_eq!(t.p.eq(t.x, t.x), t.p.bit(true));
    let one = t.p.bit(true);
    let zero = t.p.bit(false);
    assert_eq!(t.p.eq(t.b, one), t.b);
    assert_eq!(t.p.eq(zero, t.b), t.p.not(t.b));
}

#[test]
fn eq_moves_constants_across() {
    let mut t = setup();
    let (c3, c10, c7) = (t.c(3), t.c(10), t.c(7));
    let xa = t.p.add(t.x, c3);
    assert_eq!(t.p.eq(xa, c10), t.p.eq(t.x, c7));
    let xx = t.p.xor(t.x, c3);
    let c9 = t.c(9);
    assert_eq!(t.p.eq(xx, c10), t.p.eq(t.x, c9));
    let nx = t.p.not(t.x);
    let nc = t.c(!10u64 & 0xffff_ffff);
    assert_eq!(t.p.eq(nx, c10), t.p.eq(t.x, nc));
    let ngx = t.p.neg(t.x);
    let m10 = t.c(10u64.wrapping_neg());
    assert_eq!(t.p.eq(ngx, c10), t.p.eq(t.x, m10));
}

#[test]
fn eq_of_extensions_with_constant() {
    let mut t = setup();
    let z = t.p.zext(t.al, 32);
    let (c5, c300) = (t.c(5), t.c(300));
    let five = t.p.bv(5, 8);
    assert_eq!(t.p.eq(z, c5), t.p.eq(t.al, five));
    assert_eq!(t.p.eq(z, c300), t.p.bit(false));
    let s = t.p.sext(t.al, 32);
    let m1 = t.c(0xffff_ffff);
    let ff = t.p.bv(0xff, 8);
    assert_eq!(t.p.eq(s, m1), t.p.eq(t.al, ff));
    let c80 = t.c(0x80);
    assert_eq!(t.p.eq(s, c80), t.p.bit(false));
}

#[test]
fn eq_of_concat_splits() {
    let mut t = setup();
    let c = t.p.concat(t.x, t.y);
    let k = t.p.bv(0x1_0000_0002, 64);
    let e = t.p.eq(c, k);
    let (one, two) = (t.c(1), t.c(2));
    let (ex, ey) = (t.p.eq(t.x, one), t.p.eq(t.y, two));
    assert_eq!(e, t.p.and(ex, ey));
}

#[test]
fn eq_zero_of_difference() {
    let mut t = setup();
    let zero = t.c(0);
    let d = t.p.sub(t.x, t.y);
    assert_eq!(t.p.eq(d, zero), t.p.eq(t.x, t.y));
    let x = t.p.xor(t.x, t.y);
    assert_eq!(t.p.eq(x, zero), t.p.eq(t.x, t.y));
}

#[test]
fn comparisons_of_equal_operands() {
    let mut t = setup();
    let (tt, ff) = (t.p.bit(true), t.p.bit(false));
    assert_eq!(t.p.ult(t.x, t.x), ff);
    assert_eq!(t.p.slt(t.x, t.x), ff);
    assert_eq!(t.p.ule(t.x, t.x), tt);
    assert_eq!(t.p.sle(t.x, t.x), tt);
}

#[test]
fn comparisons_against_bounds() {
    let mut t = setup();
    let (tt, ff) = (t.p.bit(true), t.p.bit(false));
    let (zero, one, ones, smin, smax) = (
        t.c(0),
        t.c(1),
        t.c(0xffff_ffff),
        t.c(0x8000_0000),
        t.c(0x7fff_ffff),
    );
    assert_eq!(t.p.ult(t.x, zero), ff);
    assert_eq!(t.p.ult(ones, t.x), ff);
    assert_eq!(t.p.ule(zero, t.x), tt);
    assert_eq!(t.p.ule(t.x, ones), tt);
    assert_eq!(t.p.slt(t.x, smin), ff);
    assert_eq!(t.p.slt(smax, t.x), ff);
    assert_eq!(t.p.sle(smin, t.x), tt);
    assert_eq!(t.p.sle(t.x, smax), tt);
    let is_zero = t.p.eq(t.x, zero);
    assert_eq!(t.p.ult(t.x, one), is_zero);
    assert_eq!(t.p.ule(t.x, zero), is_zero);
    assert_eq!(t.p.ult(zero, t.x), t.p.not(is_zero));
    assert_eq!(t.p.ule(ones, t.x), t.p.eq(t.x, ones));
}

#[test]
fn signed_less_than_zero_is_sign_bit() {
    let mut t = setup();
    let zero = t.c(0);
    assert_eq!(t.p.slt(t.x, zero), t.p.extract(t.x, 31, 31));
}

#[test]
fn unsigned_compare_of_zero_extensions() {
    let mut t = setup();
    let bl = t.p.var("bl", 8);
    let (za, zb) = (t.p.zext(t.al, 32), t.p.zext(bl, 32));
    assert_eq!(t.p.ult(za, zb), t.p.ult(t.al, bl));
}

// ----- memory -----------------------------------------------------------------------------

#[test]
fn load_of_store_same_address_and_size() {
    let mut t = setup();
    let s = t.p.store(t.m, t.a, t.x);
    assert_eq!(t.p.load(s, t.a, 4), t.x);
}

#[test]
fn load_skips_store_at_disjoint_offset() {
    // load(store(m, b+4, v), b+8) -> load(m, b+8)
    let mut t = setup();
    let (a4, a8) = (t.at(4), t.at(8));
    let s = t.p.store(t.m, a4, t.x);
    assert_eq!(t.p.load(s, a8, 4), t.p.load(t.m, a8, 4));
    let a0 = t.at(0);
    assert_eq!(t.p.load(s, a0, 4), t.p.load(t.m, t.a, 4));
    // Several stores are skipped in one go.
    let a12 = t.at(12);
    let s2 = t.p.store(s, a12, t.y);
    assert_eq!(t.p.load(s2, a8, 4), t.p.load(t.m, a8, 4));
}

#[test]
fn load_inside_store_is_extract() {
    let mut t = setup();
    let s = t.p.store(t.m, t.a, t.x);
    let a1 = t.at(1);
    assert_eq!(t.p.load(s, a1, 2), t.p.extract(t.x, 23, 8));
    let c = t.c(0x1000);
    let s = t.p.store(t.m, c, t.x);
    let c3 = t.c(0x1003);
    assert_eq!(t.p.load(s, c3, 1), t.p.extract(t.x, 31, 24));
}

#[test]
fn load_of_store_that_may_alias_is_kept() {
    let mut t = setup();
    let s = t.p.store(t.m, t.a, t.x);
    let l = t.p.load(s, t.y, 4);
    assert_eq!(t.p.op(l), Op::Load(4));
    assert_eq!(t.p.args(l)[0], s);
    let a2 = t.at(2);
    let partial = t.p.load(s, a2, 4);
    assert_eq!(t.p.args(partial)[0], s, "partial overlap is kept");
}

#[test]
fn load_store_offsets_wrap_around() {
    let mut t = setup();
    // Store at 0xfffffffe covers 0xfffffffe..=0x1; a load at 2 is disjoint,
    // a load at 0 is inside.
    let (hi, two, zero) = (t.c(0xffff_fffe), t.c(2), t.c(0));
    let s = t.p.store(t.m, hi, t.x);
    assert_eq!(t.p.load(s, two, 4), t.p.load(t.m, two, 4));
    assert_eq!(t.p.load(s, zero, 2), t.p.extract(t.x, 31, 16));
}

#[test]
fn store_over_store_drops_the_covered_one() {
    let mut t = setup();
    let a1 = t.at(1);
    let v = t.p.var("v", 16);
    let inner = t.p.store(t.m, a1, v);
    assert_eq!(t.p.store(inner, t.a, t.x), t.p.store(t.m, t.a, t.x));
    let a4 = t.at(4);
    let inner = t.p.store(t.m, a4, v);
    let outer = t.p.store(inner, t.a, t.x);
    assert_eq!(t.p.args(outer)[0], inner, "disjoint stores are both kept");
}

#[test]
fn store_of_loaded_value_is_noop() {
    let mut t = setup();
    let l = t.p.load(t.m, t.a, 4);
    assert_eq!(t.p.store(t.m, t.a, l), t.m);
}

// ----- near misses: shapes a rule must leave alone -------------------------------------
// Each rule above fires on its redex; these build the closest shapes where it
// must not (a guard that fired there would change the value), and check the
// result is still the value of the original expression.

#[test]
fn absorption_needs_a_shared_operand() {
    let mut t = setup();
    let xy = t.p.and(t.x, t.y);
    let with_z = t.p.and(xy, t.z);
    assert_ne!(with_z, xy, "(x & y) & z keeps z");
    let oxy = t.p.or(t.x, t.y);
    let or_z = t.p.and(oxy, t.z);
    assert_ne!(or_z, t.z);
    assert_ne!(or_z, oxy);
    assert!(t.p.subterms(&[with_z]).contains(&t.z));
    assert!(t.p.subterms(&[or_z]).contains(&t.x));
}

#[test]
fn not_flips_every_comparison() {
    let mut t = setup();
    for (op, flipped) in [
        (Op::Ult, Op::Ule),
        (Op::Ule, Op::Ult),
        (Op::Slt, Op::Sle),
        (Op::Sle, Op::Slt),
    ] {
        let c = t.p.mk(op, &[t.x, t.y]).unwrap();
        let expected = t.p.mk(flipped, &[t.y, t.x]).unwrap();
        assert_eq!(t.p.not(c), expected, "{op:?}");
    }
}

#[test]
fn extract_of_a_shift_keeps_the_bits_shifted_in_place() {
    // Bit 8 of `x << 8` is bit 0 of x, not a bit shifted in.
    let mut t = setup();
    let c8 = t.c(8);
    let l = t.p.shl(t.x, c8);
    assert_eq!(t.p.extract(l, 8, 8), t.p.extract(t.x, 0, 0));
    // Bits 8..0: bit 0 of x above eight zeros, whatever form it takes.
    let low = t.p.extract(l, 8, 0);
    let b = t.p.extract(t.x, 0, 0);
    let z = t.p.bv(0, 8);
    let expected = t.p.concat(b, z);
    let mut prover = wiper_qfbv::Prover::new(2_000);
    assert_eq!(
        prover.prove_equal(&t.p, low, expected),
        wiper_qfbv::ProofResult::Proved
    );
}

#[test]
fn concat_merges_only_pieces_of_one_thing() {
    let mut t = setup();
    // Adjacent bit ranges of different terms.
    let hx = t.p.extract(t.x, 15, 8);
    let ly = t.p.extract(t.y, 7, 0);
    let c = t.p.concat(hx, ly);
    assert_eq!(t.p.op(c), Op::Concat, "{}", t.show(c));
    // Adjacent bytes of different memories.
    let a1 = t.at(1);
    let other = t.p.mem_var("m2");
    let b1 = t.p.load(other, a1, 1);
    let b0 = t.p.load(t.m, t.a, 1);
    let c = t.p.concat(b1, b0);
    assert_eq!(t.p.op(c), Op::Concat, "{}", t.show(c));
    // Bytes of one memory that are not adjacent.
    let a2 = t.at(2);
    let g1 = t.p.load(t.m, a2, 1);
    let c = t.p.concat(g1, b0);
    assert_eq!(t.p.op(c), Op::Concat, "{}", t.show(c));
    // Two words: one 8-byte load.
    let a4 = t.at(4);
    let hi4 = t.p.load(t.m, a4, 4);
    let lo4 = t.p.load(t.m, t.a, 4);
    assert_eq!(t.p.concat(hi4, lo4), t.p.load(t.m, t.a, 8));
    // A narrower piece above a wider one: one load of both.
    let a2b = t.at(2);
    let top = t.p.load(t.m, a2b, 1);
    let low = t.p.load(t.m, t.a, 2);
    assert_eq!(t.p.concat(top, low), t.p.load(t.m, t.a, 3));
}

#[test]
fn the_prover_caches_validity_answers() {
    let mut t = setup();
    let mut prover = wiper_qfbv::Prover::new(2_000);
    let le = t.p.ult(t.x, t.y);
    let ge = t.p.ule(t.y, t.x);
    let either = t.p.or(le, ge);
    assert_eq!(
        prover.prove_valid(&t.p, either),
        wiper_qfbv::ProofResult::Proved
    );
    let calls = prover.stats().solver_calls;
    assert_eq!(
        prover.prove_valid(&t.p, either),
        wiper_qfbv::ProofResult::Proved
    );
    assert_eq!(
        prover.stats().solver_calls,
        calls,
        "answered from the cache"
    );
    assert_eq!(prover.stats().cache_hits, 1);
    assert_eq!(prover.stats().queries, 2);
}
