//! Shifts and rotates (`shl`, `shr`, `sar`, `rol`, `ror`) and the double
//! shifts `shld`/`shrd` (32-bit forms). One part each.
//!
//! The count is masked to 5 bits. With a masked count of 0 no flag changes;
//! OF is defined for a count of 1 only; AF is undefined after a non-zero
//! shift; CF is undefined after `shl`/`shr` of a byte or word by at least its
//! width; rotates change CF and OF only. Conditions on a count in `cl` are
//! expressed with `ite` and the undefined-value variables.

use iced_x86::Mnemonic;
use wiper_qfbv::ExprId;

use super::flags;
use crate::decouple::{set_flag, Seq};
use crate::loc::{undefined_var, Flag, Loc};
use crate::part::Effect;

/// The masked count of operand `op`, as a 32-bit value.
fn count(seq: &mut Seq, op: u32) -> ExprId {
    let c = seq.read(op);
    let c = seq.pool.trunc(c, 8);
    let mask = seq.pool.bv(0x1f, 8);
    let c = seq.pool.and(c, mask);
    seq.pool.zext(c, 32)
}

/// What a shift computes when its count is not 0.
struct Shifted {
    /// The result (the operand's width).
    result: ExprId,
    /// CF for a non-zero count.
    cf: ExprId,
    /// When CF is undefined instead (if ever).
    cf_undefined: Option<ExprId>,
    /// OF for a count of 1.
    of: ExprId,
    /// Whether SF, ZF, PF follow the result and AF becomes undefined
    /// (shifts), or they are unaffected (rotates).
    arithmetic: bool,
}

/// The effects of a shift with masked 32-bit count `c` and old value `old`
/// of the destination (operand 0).
fn effects(seq: &mut Seq, c: ExprId, s: Shifted) -> Vec<Effect> {
    let zero = seq.pool.zero(32);
    let one = seq.pool.bv(1, 32);
    let is0 = seq.pool.eq(c, zero);
    let is1 = seq.pool.eq(c, one);
    let mut fx = vec![seq.write(0, s.result)];
    // flag := ite(count == 0, flag, new)
    let keep_if_zero = |seq: &mut Seq, flag: Flag, new: ExprId| {
        let old = seq.flag(flag);
        set_flag(flag, seq.pool.ite(is0, old, new))
    };
    let cf = match s.cf_undefined {
        Some(u) => {
            let q = undefined_var(seq.pool, Flag::Cf);
            seq.pool.ite(u, q, s.cf)
        }
        None => s.cf,
    };
    fx.push(keep_if_zero(seq, Flag::Cf, cf));
    let q = undefined_var(seq.pool, Flag::Of);
    let of = seq.pool.ite(is1, s.of, q);
    fx.push(keep_if_zero(seq, Flag::Of, of));
    if s.arithmetic {
        for e in flags::result_flags(seq.pool, s.result) {
            let crate::Value::Expr(v) = e.value else {
                unreachable!("result flags are defined")
            };
            let Loc::Flag(f) = e.dst else { unreachable!() };
            fx.push(keep_if_zero(seq, f, v));
        }
        let q = undefined_var(seq.pool, Flag::Af);
        fx.push(keep_if_zero(seq, Flag::Af, q));
    }
    fx
}

/// `shl`, `shr`, `sar`, `rol`, `ror`.
pub(super) fn shift(seq: &mut Seq) {
    let w = seq.width(0);
    let x = seq.read(0);
    let c = count(seq, 1);
    let one = seq.pool.bv(1, 32);
    let c1 = seq.pool.sub(c, one);
    let p = &mut *seq.pool;
    let wide = p.bv(u64::from(w), 32);
    let s = match seq.ins.mnemonic() {
        Mnemonic::Shl | Mnemonic::Shr => {
            let xz = p.zext(x, 32);
            let (result, cf) = if seq.ins.mnemonic() == Mnemonic::Shl {
                let r = p.shl(xz, c);
                let before = p.shl(xz, c1);
                (p.trunc(r, w), p.extract(before, w - 1, w - 1))
            } else {
                let r = p.lshr(xz, c);
                let before = p.lshr(xz, c1);
                (p.trunc(r, w), p.extract(before, 0, 0))
            };
            let of = if seq.ins.mnemonic() == Mnemonic::Shl {
                let m = flags::msb(p, result);
                p.xor(m, cf)
            } else {
                flags::msb(p, x)
            };
            let cf_undefined = (w < 32).then(|| p.ule(wide, c));
            Shifted {
                result,
                cf,
                cf_undefined,
                of,
                arithmetic: true,
            }
        }
        Mnemonic::Sar => {
            let xs = p.sext(x, 32);
            let r = p.ashr(xs, c);
            let before = p.ashr(xs, c1);
            Shifted {
                result: p.trunc(r, w),
                cf: p.extract(before, 0, 0),
                cf_undefined: None,
                of: p.bit(false),
                arithmetic: true,
            }
        }
        m => {
            let amount = if w == 32 {
                c
            } else {
                let a = p.trunc(c, 8);
                p.zext(a, w)
            };
            let (result, cf, other) = if m == Mnemonic::Rol {
                let r = p.rotl(x, amount);
                (r, p.extract(r, 0, 0), p.extract(r, w - 1, w - 1))
            } else {
                let r = p.rotr(x, amount);
                (r, p.extract(r, w - 1, w - 1), p.extract(r, w - 2, w - 2))
            };
            Shifted {
                result,
                cf,
                cf_undefined: None,
                of: p.xor(cf, other),
                arithmetic: false,
            }
        }
    };
    let fx = effects(seq, c, s);
    seq.whole(fx);
}

/// `shld`/`shrd r/m32, r32, imm8|cl`.
pub(super) fn double(seq: &mut Seq) {
    let x = seq.read(0);
    let y = seq.read(1);
    let c = count(seq, 2);
    let p = &mut *seq.pool;
    let one = p.bv(1, 32);
    let c1 = p.sub(c, one);
    let thirty_two = p.bv(32, 32);
    let rest = p.sub(thirty_two, c);
    let (result, cf) = if seq.ins.mnemonic() == Mnemonic::Shld {
        let a = p.shl(x, c);
        let b = p.lshr(y, rest);
        let before = p.shl(x, c1);
        (p.or(a, b), p.extract(before, 31, 31))
    } else {
        let a = p.lshr(x, c);
        let b = p.shl(y, rest);
        let before = p.lshr(x, c1);
        (p.or(a, b), p.extract(before, 0, 0))
    };
    let (mr, mx) = (flags::msb(p, result), flags::msb(p, x));
    let of = p.xor(mr, mx);
    let s = Shifted {
        result,
        cf,
        cf_undefined: None,
        of,
        arithmetic: true,
    };
    let fx = effects(seq, c, s);
    seq.whole(fx);
}
