//! Concrete bit-vector semantics (SMT-LIB `QF_BV`) on `u64` values masked to a
//! width. One implementation serves both constant folding in the simplifier and
//! the concrete evaluator, so the two can never disagree.

use crate::Op;

/// All-ones mask of `width` bits (`width` in 1..=64).
pub fn mask(width: u32) -> u64 {
    debug_assert!((1..=64).contains(&width), "width {width}");
    u64::MAX >> (64 - width)
}

/// The most significant bit of `v` as a `width`-bit vector.
pub fn msb(v: u64, width: u32) -> bool {
    (v >> (width - 1)) & 1 == 1
}

/// `v` (a `width`-bit vector) read as a two's-complement signed number.
pub fn to_signed(v: u64, width: u32) -> i64 {
    let sh = 64 - width;
    ((v << sh) as i64) >> sh
}

/// Sign-extends the `from`-bit vector `v` to `to` bits.
pub fn sign_extend(v: u64, from: u32, to: u32) -> u64 {
    to_signed(v, from) as u64 & mask(to)
}

/// The multiplicative inverse of `c` modulo 2^32, if `c` is odd (an even
/// number has none): `c * inverse32(c) == 1` in wrapping arithmetic.
pub fn inverse32(c: u32) -> Option<u32> {
    if c % 2 == 0 {
        return None;
    }
    // Newton's iteration doubles the correct low bits: c is its own
    // inverse modulo 8.
    let mut x = c;
    for _ in 0..4 {
        x = x.wrapping_mul(2u32.wrapping_sub(c.wrapping_mul(x)));
    }
    Some(x)
}

/// Two's-complement negation modulo `2^width`.
fn neg(v: u64, w: u32) -> u64 {
    v.wrapping_neg() & mask(w)
}

/// `bvudiv`: division by zero gives all ones.
fn udiv(a: u64, b: u64, w: u32) -> u64 {
    a.checked_div(b).unwrap_or(mask(w))
}

/// `bvurem`: remainder by zero gives the dividend.
fn urem(a: u64, b: u64) -> u64 {
    a.checked_rem(b).unwrap_or(a)
}

/// `bvsdiv`, defined through `bvudiv` on magnitudes exactly as SMT-LIB does
/// (so `x / 0` is `-1` or `1`, and `MIN / -1` wraps to `MIN`).
fn sdiv(a: u64, b: u64, w: u32) -> u64 {
    let abs = |v| if msb(v, w) { neg(v, w) } else { v };
    let q = udiv(abs(a), abs(b), w);
    if msb(a, w) != msb(b, w) {
        neg(q, w)
    } else {
        q
    }
}

/// `bvsrem`: the sign follows the dividend; `x rem 0` is `x`.
fn srem(a: u64, b: u64, w: u32) -> u64 {
    let abs = |v| if msb(v, w) { neg(v, w) } else { v };
    let r = urem(abs(a), abs(b));
    if msb(a, w) {
        neg(r, w)
    } else {
        r
    }
}

/// Rotates the `w`-bit vector `a` left by `r mod w`.
fn rotl(a: u64, r: u64, w: u32) -> u64 {
    let r = (r % u64::from(w)) as u32;
    if r == 0 {
        a
    } else {
        ((a << r) | (a >> (w - r))) & mask(w)
    }
}

/// Applies a bit-vector operator to constant arguments given as
/// `(value, width)` pairs; returns the masked result, or `None` for operators
/// that are not pure bit-vector functions (`Var`, `Load`, `Store`) or an
/// `Ite` over memories.
///
/// Arguments must be well sorted (as checked by [`crate::ExprPool::mk`]).
pub fn apply(op: Op, args: &[(u64, u32)]) -> Option<u64> {
    let (a, w) = args.first().copied().unwrap_or((0, 1));
    let b = args.get(1).map_or(0, |x| x.0);
    let m = mask(w);
    let bit = |c: bool| u64::from(c);
    Some(match op {
        Op::Const { val, .. } => val,
        Op::Var(_) | Op::Load(_) | Op::Store => return None,
        Op::Not => !a & m,
        Op::Neg => neg(a, w),
        Op::Add => a.wrapping_add(b) & m,
        Op::Sub => a.wrapping_sub(b) & m,
        Op::Mul => a.wrapping_mul(b) & m,
        Op::Udiv => udiv(a, b, w),
        Op::Urem => urem(a, b),
        Op::Sdiv => sdiv(a, b, w),
        Op::Srem => srem(a, b, w),
        Op::And => a & b,
        Op::Or => a | b,
        Op::Xor => a ^ b,
        Op::Shl if b >= u64::from(w) => 0,
        Op::Shl => (a << b) & m,
        Op::Lshr if b >= u64::from(w) => 0,
        Op::Lshr => a >> b,
        Op::Ashr => {
            let sh = b.min(u64::from(w) - 1) as u32;
            (to_signed(a, w) >> sh) as u64 & m
        }
        Op::Rotl => rotl(a, b, w),
        Op::Rotr => rotl(a, u64::from(w) - b % u64::from(w), w),
        Op::Concat => (a << args[1].1) | b,
        Op::Eq => bit(a == b),
        Op::Ult => bit(a < b),
        Op::Ule => bit(a <= b),
        Op::Slt => bit(to_signed(a, w) < to_signed(b, w)),
        Op::Sle => bit(to_signed(a, w) <= to_signed(b, w)),
        Op::Extract { hi, lo } => (a >> lo) & mask(hi - lo + 1),
        Op::ZeroExt(_) => a,
        Op::SignExt(to) => sign_extend(a, w, to),
        Op::Ite if args.len() == 3 => {
            if a == 1 {
                b
            } else {
                args[2].0
            }
        }
        Op::Ite => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverses_are_inverses() {
        for c in [1u32, 3, 5, 7, 9, 0x8001, u32::MAX, 0xdead_beef] {
            assert_eq!(c.wrapping_mul(inverse32(c).unwrap()), 1, "{c:#x}");
        }
        assert_eq!(inverse32(2), None);
        assert_eq!(inverse32(0), None);
    }

    #[test]
    fn ite_of_constants_picks_its_branch() {
        assert_eq!(apply(Op::Ite, &[(1, 1), (5, 32), (7, 32)]), Some(5));
        assert_eq!(apply(Op::Ite, &[(0, 1), (5, 32), (7, 32)]), Some(7));
    }

    #[test]
    fn division_by_zero_follows_smtlib() {
        assert_eq!(apply(Op::Udiv, &[(7, 8), (0, 8)]), Some(0xff));
        assert_eq!(apply(Op::Urem, &[(7, 8), (0, 8)]), Some(7));
        assert_eq!(apply(Op::Sdiv, &[(7, 8), (0, 8)]), Some(0xff));
        assert_eq!(apply(Op::Sdiv, &[(0xf9, 8), (0, 8)]), Some(1));
        assert_eq!(apply(Op::Srem, &[(0xf9, 8), (0, 8)]), Some(0xf9));
    }

    #[test]
    fn signed_division_overflow_wraps() {
        assert_eq!(apply(Op::Sdiv, &[(0x80, 8), (0xff, 8)]), Some(0x80));
        assert_eq!(apply(Op::Srem, &[(0x80, 8), (0xff, 8)]), Some(0));
        assert_eq!(apply(Op::Srem, &[(0xf9, 8), (2, 8)]), Some(0xff)); // -7 rem 2 = -1
        let min = 1u64 << 63;
        assert_eq!(apply(Op::Sdiv, &[(min, 64), (u64::MAX, 64)]), Some(min));
    }

    #[test]
    fn wide_shifts_and_rotates() {
        assert_eq!(apply(Op::Shl, &[(1, 8), (8, 8)]), Some(0));
        assert_eq!(apply(Op::Lshr, &[(0x80, 8), (200, 8)]), Some(0));
        assert_eq!(apply(Op::Ashr, &[(0x80, 8), (9, 8)]), Some(0xff));
        assert_eq!(apply(Op::Ashr, &[(0x40, 8), (9, 8)]), Some(0));
        assert_eq!(apply(Op::Rotl, &[(0x81, 8), (9, 8)]), Some(0x03));
        assert_eq!(apply(Op::Rotr, &[(0x81, 8), (9, 8)]), Some(0xc0));
        assert_eq!(apply(Op::Rotr, &[(0x81, 8), (8, 8)]), Some(0x81));
        assert_eq!(apply(Op::Shl, &[(1, 64), (63, 64)]), Some(1 << 63));
    }

    #[test]
    fn extension_and_concat() {
        assert_eq!(apply(Op::SignExt(16), &[(0x80, 8)]), Some(0xff80));
        assert_eq!(apply(Op::ZeroExt(16), &[(0x80, 8)]), Some(0x80));
        assert_eq!(apply(Op::Concat, &[(0xab, 8), (0xcd, 8)]), Some(0xabcd));
        assert_eq!(
            apply(Op::Extract { hi: 11, lo: 4 }, &[(0xabcd, 16)]),
            Some(0xbc)
        );
        assert_eq!(apply(Op::Slt, &[(0xff, 8), (0, 8)]), Some(1));
    }
}
