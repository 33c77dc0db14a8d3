//! `mul`, `imul` (one, two and three operands), `div`, `idiv`.
//!
//! Byte forms write only `ax` and are one part. Word and doubleword
//! one-operand forms write `dx:ax`/`edx:eax` and are decoupled as
//! `umulhi t0,eax,s; mullo eax,s; mov edx,t0` (signed: `smulhi`) and
//! `udivr t0,edx:eax,s; udivq eax,edx:eax,s; mov edx,t0` (signed: `sdivr`,
//! `sdivq`). The first part carries the flags and, for division, the
//! divide-error condition (divisor 0 or a quotient that does not fit).

use iced_x86::{Mnemonic, Register};
use wiper_qfbv::ExprId;

use crate::decouple::{set_flag, undef, Seq};
use crate::loc::Flag;
use crate::part::Effect;

/// Entry point for the family.
pub(super) fn lift(seq: &mut Seq) {
    match (seq.ins.mnemonic(), seq.ins.op_count()) {
        (Mnemonic::Imul, 2 | 3) => imul_n(seq),
        (Mnemonic::Mul | Mnemonic::Imul, _) => mul1(seq),
        _ => div(seq),
    }
}

/// The accumulator pair of width `w`: (low half, high half).
fn pair(w: u32) -> (Register, Register) {
    match w {
        8 => (Register::AL, Register::AH),
        16 => (Register::AX, Register::DX),
        _ => (Register::EAX, Register::EDX),
    }
}

/// `a` extended to `w` bits, signed or not.
fn ext(seq: &mut Seq, a: ExprId, w: u32, signed: bool) -> ExprId {
    if signed {
        seq.pool.sext(a, w)
    } else {
        seq.pool.zext(a, w)
    }
}

/// CF and OF set to `over`, SF ZF AF PF undefined: the flags of every
/// multiplication.
fn mul_flags(over: ExprId) -> Vec<Effect> {
    vec![
        set_flag(Flag::Cf, over),
        set_flag(Flag::Of, over),
        undef(Flag::Sf),
        undef(Flag::Zf),
        undef(Flag::Af),
        undef(Flag::Pf),
    ]
}

/// Whether the `2w`-bit product `full` does not fit its low `w` bits
/// (unsigned: the high half is not 0; signed: it is not the sign extension).
fn overflows(seq: &mut Seq, full: ExprId, w: u32, signed: bool) -> ExprId {
    let low = seq.pool.trunc(full, w);
    let back = ext(seq, low, 2 * w, signed);
    seq.pool.ne(full, back)
}

/// One-operand `mul`/`imul`.
fn mul1(seq: &mut Seq) {
    let signed = seq.ins.mnemonic() == Mnemonic::Imul;
    let w = seq.width(0);
    let (lo_reg, hi_reg) = pair(w);
    let a = seq.get_reg(lo_reg);
    let s = seq.read(0);
    let (a2, s2) = (ext(seq, a, 2 * w, signed), ext(seq, s, 2 * w, signed));
    let full = seq.pool.mul(a2, s2);
    let over = overflows(seq, full, w, signed);
    if w == 8 {
        let mut fx = vec![seq.set_reg(Register::AX, full)];
        fx.extend(mul_flags(over));
        seq.whole(fx);
        return;
    }
    let src = seq.op_text(0);
    let (lo, hi) = (crate::text::register(lo_reg), crate::text::register(hi_reg));
    let t = seq.temp();
    let high = seq.pool.extract(full, 2 * w - 1, w);
    let mut fx = vec![seq.set_temp(t, high)];
    fx.extend(mul_flags(over));
    let name = if signed { "smulhi" } else { "umulhi" };
    seq.pseudo(name, &[&t.to_string(), &lo, &src], fx);
    let low = seq.pool.trunc(full, w);
    let e = seq.set_reg(lo_reg, low);
    seq.pseudo("mullo", &[&lo, &src], vec![e]);
    let v = seq.temp_value(t, w);
    let e = seq.set_reg(hi_reg, v);
    seq.pseudo("mov", &[&hi, &t.to_string()], vec![e]);
}

/// Two- and three-operand `imul`: one part.
fn imul_n(seq: &mut Seq) {
    let w = seq.width(0);
    let (a, b) = if seq.ins.op_count() == 2 {
        (seq.read(0), seq.read(1))
    } else {
        let b = seq.read(2);
        let b = if seq.pool.width(b) < w {
            seq.pool.sext(b, w)
        } else {
            b
        };
        (seq.read(1), b)
    };
    let (a2, b2) = (seq.pool.sext(a, 2 * w), seq.pool.sext(b, 2 * w));
    let full = seq.pool.mul(a2, b2);
    let over = overflows(seq, full, w, true);
    let low = seq.pool.trunc(full, w);
    let mut fx = vec![seq.write(0, low)];
    fx.extend(mul_flags(over));
    seq.whole(fx);
}

/// `div`/`idiv`.
fn div(seq: &mut Seq) {
    let signed = seq.ins.mnemonic() == Mnemonic::Idiv;
    let w = seq.width(0);
    let dividend = if w == 8 {
        seq.get_reg(Register::AX)
    } else {
        let (lo, hi) = pair(w);
        let (l, h) = (seq.get_reg(lo), seq.get_reg(hi));
        seq.pool.concat(h, l)
    };
    let s = seq.read(0);
    let d = ext(seq, s, 2 * w, signed);
    let p = &mut *seq.pool;
    let (q, r) = if signed {
        (p.sdiv(dividend, d), p.srem(dividend, d))
    } else {
        (p.udiv(dividend, d), p.urem(dividend, d))
    };
    let zero = p.zero(2 * w);
    let by_zero = p.eq(d, zero);
    let too_big = overflows(seq, q, w, signed);
    let fault = seq.pool.or(by_zero, too_big);
    let flags: Vec<Effect> = [Flag::Cf, Flag::Of, Flag::Sf, Flag::Zf, Flag::Af, Flag::Pf]
        .into_iter()
        .map(undef)
        .collect();
    let (q, r) = (seq.pool.trunc(q, w), seq.pool.trunc(r, w));
    if w == 8 {
        let v = seq.pool.concat(r, q);
        let mut fx = vec![seq.set_reg(Register::AX, v)];
        fx.extend(flags);
        seq.whole(fx);
        seq.set_fault(fault);
        return;
    }
    let (lo_reg, hi_reg) = pair(w);
    let src = seq.op_text(0);
    let (lo, hi) = (crate::text::register(lo_reg), crate::text::register(hi_reg));
    let dividend_text = format!("{hi}:{lo}");
    let t = seq.temp();
    let mut fx = vec![seq.set_temp(t, r)];
    fx.extend(flags);
    let (rem, quo) = if signed {
        ("sdivr", "sdivq")
    } else {
        ("udivr", "udivq")
    };
    seq.pseudo(rem, &[&t.to_string(), &dividend_text, &src], fx);
    seq.set_fault(fault);
    let e = seq.set_reg(lo_reg, q);
    seq.pseudo(quo, &[&lo, &dividend_text, &src], vec![e]);
    let v = seq.temp_value(t, w);
    let e = seq.set_reg(hi_reg, v);
    seq.pseudo("mov", &[&hi, &t.to_string()], vec![e]);
}
