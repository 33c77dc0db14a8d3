//! Data movement: `mov`, `movzx`, `movsx`, `lea`, the sign extensions `cbw`,
//! `cwde`, `cwd`, `cdq`, `bswap`, `setcc`, `cmovcc`. Each is one part.

use iced_x86::Mnemonic;

use super::flags;
use crate::decouple::Seq;

/// `mov`, `movzx`, `movsx`, `lea`.
pub(super) fn mov(seq: &mut Seq) {
    let w = seq.width(0);
    let v = match seq.ins.mnemonic() {
        Mnemonic::Lea => {
            let a = seq.addr();
            seq.pool.trunc(a, w)
        }
        Mnemonic::Movzx => {
            let s = seq.read(1);
            seq.pool.zext(s, w)
        }
        Mnemonic::Movsx => {
            let s = seq.read(1);
            seq.pool.sext(s, w)
        }
        _ => seq.read(1),
    };
    let e = seq.write(0, v);
    seq.whole(vec![e]);
}

/// `cbw` (ax := sext al), `cwde` (eax := sext ax), `cwd` (dx := sign of ax),
/// `cdq` (edx := sign of eax). Each writes one register.
pub(super) fn convert(seq: &mut Seq) {
    use iced_x86::Register as R;
    let (src, dst, high) = match seq.ins.mnemonic() {
        Mnemonic::Cbw => (R::AL, R::AX, false),
        Mnemonic::Cwde => (R::AX, R::EAX, false),
        Mnemonic::Cwd => (R::AX, R::DX, true),
        _ => (R::EAX, R::EDX, true),
    };
    let s = seq.get_reg(src);
    let w = 8 * dst.size() as u32;
    let v = if high {
        let sign = flags::msb(seq.pool, s);
        seq.pool.sext(sign, w)
    } else {
        seq.pool.sext(s, w)
    };
    let e = seq.set_reg(dst, v);
    seq.whole(vec![e]);
}

/// `bswap r32`.
pub(super) fn bswap(seq: &mut Seq) {
    let x = seq.read(0);
    let p = &mut *seq.pool;
    let bytes: Vec<_> = (0..4).map(|i| p.extract(x, 8 * i + 7, 8 * i)).collect();
    let v = bytes[1..].iter().fold(bytes[0], |acc, &b| p.concat(acc, b));
    let e = seq.write(0, v);
    seq.whole(vec![e]);
}

/// `setcc r/m8`.
pub(super) fn setcc(seq: &mut Seq) {
    let c = flags::condition(seq.pool, seq.ins.condition_code());
    let v = seq.pool.zext(c, 8);
    let e = seq.write(0, v);
    seq.whole(vec![e]);
}

/// `cmovcc r, r/m`. The source is read only when the condition holds in the
/// formula (the processor reads a memory source either way).
pub(super) fn cmovcc(seq: &mut Seq) {
    let c = flags::condition(seq.pool, seq.ins.condition_code());
    let old = seq.read(0);
    let src = seq.read(1);
    let v = seq.pool.ite(c, src, old);
    let e = seq.write(0, v);
    seq.whole(vec![e]);
}
