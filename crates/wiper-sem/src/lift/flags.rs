//! The one home of flag computations: parity, sign and zero of a result,
//! carries and overflow of additions and subtractions, the flags of logic
//! results, and condition codes.

use iced_x86::ConditionCode;
use wiper_qfbv::{ExprId, ExprPool};

use crate::decouple::{set_flag, undef};
use crate::loc::{loc_var, Flag, Loc};
use crate::part::Effect;

/// PF: 1 when the low byte of `r` has an even number of set bits.
pub(crate) fn parity(p: &mut ExprPool, r: ExprId) -> ExprId {
    let mut x = p.extract(r, 7, 0);
    for sh in [4, 2, 1] {
        let k = p.bv(sh, 8);
        let s = p.lshr(x, k);
        x = p.xor(x, s);
    }
    let odd = p.extract(x, 0, 0);
    p.not(odd)
}

/// The most significant bit of `x`.
pub(crate) fn msb(p: &mut ExprPool, x: ExprId) -> ExprId {
    let w = p.width(x);
    p.extract(x, w - 1, w - 1)
}

/// SF, ZF and PF of result `r`.
pub(crate) fn result_flags(p: &mut ExprPool, r: ExprId) -> [Effect; 3] {
    let w = p.width(r);
    let zero = p.zero(w);
    let sf = msb(p, r);
    let zf = p.eq(r, zero);
    let pf = parity(p, r);
    [
        set_flag(Flag::Sf, sf),
        set_flag(Flag::Zf, zf),
        set_flag(Flag::Pf, pf),
    ]
}

/// AF: the carry (or borrow) out of bit 3 of `a ± b = r`.
fn aux(p: &mut ExprPool, a: ExprId, b: ExprId, r: ExprId) -> ExprId {
    let x = p.xor(a, b);
    let x = p.xor(x, r);
    p.extract(x, 4, 4)
}

/// `a + b (+ carry)` and its six flags.
pub(crate) fn add(
    p: &mut ExprPool,
    a: ExprId,
    b: ExprId,
    carry: Option<ExprId>,
) -> (ExprId, Vec<Effect>) {
    let w = p.width(a);
    let mut r = p.add(a, b);
    let cf = match carry {
        None => p.ult(r, a),
        Some(c) => {
            let cw = p.zext(c, w);
            r = p.add(r, cw);
            let (a1, b1, c1) = (p.zext(a, w + 1), p.zext(b, w + 1), p.zext(c, w + 1));
            let s = p.add(a1, b1);
            let s = p.add(s, c1);
            p.extract(s, w, w)
        }
    };
    let ar = p.xor(a, r);
    let br = p.xor(b, r);
    let both = p.and(ar, br);
    let of = msb(p, both);
    let af = aux(p, a, b, r);
    (r, six(p, r, cf, of, af))
}

/// `a - b (- borrow)` and its six flags.
pub(crate) fn sub(
    p: &mut ExprPool,
    a: ExprId,
    b: ExprId,
    borrow: Option<ExprId>,
) -> (ExprId, Vec<Effect>) {
    let w = p.width(a);
    let mut r = p.sub(a, b);
    let cf = match borrow {
        None => p.ult(a, b),
        Some(c) => {
            let cw = p.zext(c, w);
            r = p.sub(r, cw);
            let (a1, b1, c1) = (p.zext(a, w + 1), p.zext(b, w + 1), p.zext(c, w + 1));
            let s = p.add(b1, c1);
            p.ult(a1, s)
        }
    };
    let ab = p.xor(a, b);
    let ar = p.xor(a, r);
    let both = p.and(ab, ar);
    let of = msb(p, both);
    let af = aux(p, a, b, r);
    (r, six(p, r, cf, of, af))
}

/// CF, OF, AF as given, SF, ZF, PF from `r`.
fn six(p: &mut ExprPool, r: ExprId, cf: ExprId, of: ExprId, af: ExprId) -> Vec<Effect> {
    let mut v = vec![
        set_flag(Flag::Cf, cf),
        set_flag(Flag::Of, of),
        set_flag(Flag::Af, af),
    ];
    v.extend(result_flags(p, r));
    v
}

/// The flags of a logic result (`and`, `or`, `xor`, `test`): CF and OF
/// cleared, AF undefined, SF ZF PF from `r`.
pub(crate) fn logic(p: &mut ExprPool, r: ExprId) -> Vec<Effect> {
    let zero = p.bit(false);
    let mut v = vec![
        set_flag(Flag::Cf, zero),
        set_flag(Flag::Of, zero),
        undef(Flag::Af),
    ];
    v.extend(result_flags(p, r));
    v
}

/// Drops the effect on `flag` (e.g. CF for `inc`/`dec`).
pub(crate) fn without(mut effects: Vec<Effect>, flag: Flag) -> Vec<Effect> {
    effects.retain(|e| e.dst != Loc::Flag(flag));
    effects
}

/// The 1-bit condition `cc` over the flags.
pub(crate) fn condition(p: &mut ExprPool, cc: ConditionCode) -> ExprId {
    let mut f = |fl: Flag| loc_var(p, Loc::Flag(fl));
    let (cf, zf, sf, of, pf) = (
        f(Flag::Cf),
        f(Flag::Zf),
        f(Flag::Sf),
        f(Flag::Of),
        f(Flag::Pf),
    );
    use ConditionCode as C;
    match cc {
        C::o => of,
        C::no => p.not(of),
        C::b => cf,
        C::ae => p.not(cf),
        C::e => zf,
        C::ne => p.not(zf),
        C::be => p.or(cf, zf),
        C::a => {
            let x = p.or(cf, zf);
            p.not(x)
        }
        C::s => sf,
        C::ns => p.not(sf),
        C::p => pf,
        C::np => p.not(pf),
        C::l => p.xor(sf, of),
        C::ge => {
            let x = p.xor(sf, of);
            p.not(x)
        }
        C::le => {
            let x = p.xor(sf, of);
            p.or(zf, x)
        }
        C::g => {
            let x = p.xor(sf, of);
            let x = p.or(zf, x);
            p.not(x)
        }
        C::None => unreachable!("no condition"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiper_qfbv::Assignment;

    fn eval(p: &ExprPool, e: ExprId) -> u64 {
        p.eval(e, &Assignment::new()).unwrap().as_u64().unwrap()
    }

    /// A wrong parity rule: PF of a value.
    type WrongParity = fn(u64) -> bool;

    /// A wrong carry rule: result, CF and OF of `a`, `b` and a carry-in.
    type WrongRule = fn(u32, u32, bool) -> (u32, bool, bool);

    /// Parity cases; each wrong rule below gets one of them wrong.
    const PARITY_CASES: [u64; 7] = [0, 1, 3, 0x7f, 0xff, 0x100, 0x1234_5601];

    #[test]
    fn parity_of_constants() {
        let even_low_byte = |v: u64| (v as u8).count_ones() % 2 == 0;
        let wrong_rules: [(&str, WrongParity); 3] = [
            ("whole word", |v| v.count_ones() % 2 == 0),
            ("odd parity", |v| (v as u8).count_ones() % 2 == 1),
            ("low 7 bits", |v| (v & 0x7f).count_ones() % 2 == 0),
        ];
        for (name, wrong) in wrong_rules {
            assert!(
                PARITY_CASES.iter().any(|&v| wrong(v) != even_low_byte(v)),
                "no case catches the wrong parity rule {name}"
            );
        }
        let mut p = ExprPool::new();
        for v in PARITY_CASES {
            let c = p.bv(v, 32);
            let pf = parity(&mut p, c);
            assert_eq!(
                eval(&p, pf),
                u64::from((v as u8).count_ones() % 2 == 0),
                "{v:#x}"
            );
        }
    }

    /// Result, CF and OF of `add` (`sub` if `subtract`) with carry or
    /// borrow `c` (`None`: `add`/`sub`) on 32-bit constants.
    fn run(subtract: bool, a: u32, b: u32, c: Option<bool>) -> (u32, bool, bool) {
        let mut p = ExprPool::new();
        let (a, b) = (p.bv(a.into(), 32), p.bv(b.into(), 32));
        let c = c.map(|c| p.bit(c));
        let (r, fx) = if subtract {
            sub(&mut p, a, b, c)
        } else {
            add(&mut p, a, b, c)
        };
        let flag = |f: Flag| {
            let e = fx.iter().find(|e| e.dst == Loc::Flag(f)).unwrap();
            let crate::Value::Expr(v) = e.value else {
                panic!("{f:?} undefined")
            };
            eval(&p, v) == 1
        };
        (eval(&p, r) as u32, flag(Flag::Cf), flag(Flag::Of))
    }

    /// The reference: result, CF (carry out, or borrow) and OF (signed
    /// overflow) in 64-bit arithmetic.
    fn reference(subtract: bool, a: u32, b: u32, c: bool) -> (u32, bool, bool) {
        let (ua, ub, uc) = (i64::from(a), i64::from(b), i64::from(c));
        let (sa, sb) = (i64::from(a as i32), i64::from(b as i32));
        let (u, s) = if subtract {
            (ua - ub - uc, sa - sb - uc)
        } else {
            (ua + ub + uc, sa + sb + uc)
        };
        let cf = !(0..=i64::from(u32::MAX)).contains(&u);
        let of = !(i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&s);
        (u as u32, cf, of)
    }

    /// Cases for `adc`/`sbb` where the carry-in decides the result, CF or
    /// OF, each paired with a wrong rule that it catches.
    const CARRY_CASES: [(u32, u32, bool); 6] = [
        (0xffff_ffff, 0, true), // carry out only through the carry-in
        (5, 0xffff_ffff, true), // r == a: "CF = r < a" misses the carry
        (0x7fff_ffff, 0, true), // signed overflow only through the carry-in
        (0, 0, true),           // borrow only through the borrow-in
        (5, 5, true),           // a == b: borrow only through the borrow-in
        (0x8000_0000, 0, true), // signed overflow only through the borrow-in
    ];

    #[test]
    fn adc_carry() {
        for (a, b, c) in CARRY_CASES {
            for c in [c, !c] {
                assert_eq!(
                    run(false, a, b, Some(c)),
                    reference(false, a, b, c),
                    "adc {a:#x}, {b:#x}, carry-in {c}"
                );
            }
        }
        // The cases judge: each wrong rule gets one of them wrong.
        let wrong_rules: [(&str, WrongRule); 3] = [
            ("carry-in ignored", |a, b, _| {
                let r = a.wrapping_add(b);
                (r, r < a, reference(false, a, b, false).2)
            }),
            ("CF = r < a", |a, b, c| {
                let r = a.wrapping_add(b).wrapping_add(c.into());
                (r, r < a, reference(false, a, b, c).2)
            }),
            ("CF of a + b only", |a, b, c| {
                let (r, _, of) = reference(false, a, b, c);
                (r, a.checked_add(b).is_none(), of)
            }),
        ];
        for (name, wrong) in wrong_rules {
            assert!(
                CARRY_CASES
                    .iter()
                    .any(|&(a, b, c)| wrong(a, b, c) != reference(false, a, b, c)),
                "no case catches the wrong rule {name}"
            );
        }
    }

    #[test]
    fn sbb_borrow_and_sub_carry() {
        for (a, b, c) in CARRY_CASES {
            for c in [c, !c] {
                assert_eq!(
                    run(true, a, b, Some(c)),
                    reference(true, a, b, c),
                    "sbb {a:#x}, {b:#x}, borrow-in {c}"
                );
            }
            assert_eq!(
                run(true, a, b, None),
                reference(true, a, b, false),
                "sub {a:#x}, {b:#x}"
            );
        }
        let wrong_rules: [(&str, WrongRule); 3] = [
            ("borrow-in ignored", |a, b, _| {
                (a.wrapping_sub(b), a < b, reference(true, a, b, false).2)
            }),
            ("CF of a - b only", |a, b, c| {
                let (r, _, of) = reference(true, a, b, c);
                (r, a < b, of)
            }),
            ("CF = a <= b without a borrow-in", |a, b, c| {
                let (r, cf, of) = reference(true, a, b, c);
                (r, if c { cf } else { a <= b }, of)
            }),
        ];
        for (name, wrong) in wrong_rules {
            let mut cases = CARRY_CASES
                .iter()
                .flat_map(|&(a, b, c)| [(a, b, c), (a, b, !c)]);
            assert!(
                cases.any(|(a, b, c)| wrong(a, b, c) != reference(true, a, b, c)),
                "no case catches the wrong rule {name}"
            );
        }
    }
}
