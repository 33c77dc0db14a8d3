//! `add`, `adc`, `sub`, `sbb`, `cmp`; `and`, `or`, `xor`, `test`; `inc`, `dec`,
//! `neg`, `not`. Each is one part: the result together with its flags.

use iced_x86::Mnemonic;

use super::flags;
use crate::decouple::Seq;
use crate::loc::Flag;

/// The second operand, extended to the first operand's width (sign-extended
/// immediates such as `add eax, -1` are already extended by iced).
fn operands(seq: &mut Seq) -> (wiper_qfbv::ExprId, wiper_qfbv::ExprId) {
    let a = seq.read(0);
    let b = seq.read(1);
    let w = seq.pool.width(a);
    let b = if seq.pool.width(b) < w {
        seq.pool.sext(b, w)
    } else {
        b
    };
    (a, b)
}

/// `add`, `adc`, `sub`, `sbb`, `cmp`.
pub(super) fn add_sub(seq: &mut Seq) {
    let (a, b) = operands(seq);
    let m = seq.ins.mnemonic();
    let carry = matches!(m, Mnemonic::Adc | Mnemonic::Sbb).then(|| seq.flag(Flag::Cf));
    let (r, mut fx) = match m {
        Mnemonic::Add | Mnemonic::Adc => flags::add(seq.pool, a, b, carry),
        _ => flags::sub(seq.pool, a, b, carry),
    };
    if m != Mnemonic::Cmp {
        fx.insert(0, seq.write(0, r));
    }
    seq.whole(fx);
}

/// `and`, `or`, `xor`, `test`.
pub(super) fn logic(seq: &mut Seq) {
    let (a, b) = operands(seq);
    let p = &mut *seq.pool;
    let r = match seq.ins.mnemonic() {
        Mnemonic::And | Mnemonic::Test => p.and(a, b),
        Mnemonic::Or => p.or(a, b),
        _ => p.xor(a, b),
    };
    let mut fx = flags::logic(seq.pool, r);
    if seq.ins.mnemonic() != Mnemonic::Test {
        fx.insert(0, seq.write(0, r));
    }
    seq.whole(fx);
}

/// `inc`, `dec` (CF unchanged), `neg`, `not` (no flags).
pub(super) fn unary(seq: &mut Seq) {
    let a = seq.read(0);
    let w = seq.pool.width(a);
    let one = seq.pool.bv(1, w);
    let zero = seq.pool.zero(w);
    let (r, fx) = match seq.ins.mnemonic() {
        Mnemonic::Inc => {
            let (r, fx) = flags::add(seq.pool, a, one, None);
            (r, flags::without(fx, Flag::Cf))
        }
        Mnemonic::Dec => {
            let (r, fx) = flags::sub(seq.pool, a, one, None);
            (r, flags::without(fx, Flag::Cf))
        }
        Mnemonic::Neg => flags::sub(seq.pool, zero, a, None),
        _ => (seq.pool.not(a), Vec::new()),
    };
    let mut effects = vec![seq.write(0, r)];
    effects.extend(fx);
    seq.whole(effects);
}
