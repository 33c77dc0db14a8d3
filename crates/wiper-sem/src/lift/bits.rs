//! Bit tests (`bt`, `bts`, `btr`, `btc`) and bit scans (`bsf`, `bsr`). One
//! part each.

use iced_x86::{Mnemonic, OpKind};

use crate::decouple::{set_flag, undef, Seq};
use crate::loc::Flag;

/// `bt`/`bts`/`btr`/`btc r/m, r|imm8`.
///
/// An immediate bit offset, and a register offset into a register, are taken
/// modulo the operand width. A register offset into memory is signed and
/// selects the word or doubleword at `address + (width/8) * (offset >> log2(width))`
/// (arithmetic shift), which is the unit the processor accesses.
pub(super) fn bit_test(seq: &mut Seq) {
    let w = seq.width(0);
    let log = w.trailing_zeros();
    let off = seq.read(1);
    let off = if seq.pool.width(off) < w {
        seq.pool.zext(off, w)
    } else {
        off
    };
    let low = seq.pool.bv(u64::from(w - 1), w);
    let idx = seq.pool.and(off, low);
    let mem_addr = (seq.is_mem(0) && seq.ins.op1_kind() == OpKind::Register).then(|| {
        let p = &mut *seq.pool;
        let o = p.sext(off, 32);
        let k = p.bv(u64::from(log), 32);
        let units = p.ashr(o, k);
        let bytes = p.bv(u64::from(w / 8), 32);
        let delta = p.mul(units, bytes);
        let base = seq.mem_addr();
        seq.pool.add(base, delta)
    });
    let x = match mem_addr {
        Some(a) => seq.load(a, w),
        None => seq.read(0),
    };
    let p = &mut *seq.pool;
    let shifted = p.lshr(x, idx);
    let cf = p.extract(shifted, 0, 0);
    let one = p.bv(1, w);
    let mask = p.shl(one, idx);
    let new = match seq.ins.mnemonic() {
        Mnemonic::Bts => Some(p.or(x, mask)),
        Mnemonic::Btr => {
            let m = p.not(mask);
            Some(p.and(x, m))
        }
        Mnemonic::Btc => Some(p.xor(x, mask)),
        _ => None,
    };
    let mut fx = Vec::new();
    if let Some(v) = new {
        fx.push(match mem_addr {
            Some(a) => seq.store(a, v),
            None => seq.write(0, v),
        });
    }
    fx.push(set_flag(Flag::Cf, cf));
    fx.extend([Flag::Of, Flag::Sf, Flag::Af, Flag::Pf].map(undef));
    seq.whole(fx);
}

/// `bsf`/`bsr r, r/m`: ZF := source is 0; the destination gets the index of
/// the lowest (`bsf`) or highest (`bsr`) set bit, and keeps its value when
/// the source is 0 (the manual calls it undefined; Intel and AMD processors
/// leave it unchanged, AMD documents it, and wiper models that).
pub(super) fn bit_scan(seq: &mut Seq) {
    let w = seq.width(0);
    let x = seq.read(1);
    let old = seq.read(0);
    let forward = seq.ins.mnemonic() == Mnemonic::Bsf;
    let p = &mut *seq.pool;
    let order: Vec<u32> = if forward {
        (0..w).rev().collect()
    } else {
        (0..w).collect()
    };
    let mut acc = old;
    for i in order {
        let bit = p.extract(x, i, i);
        let k = p.bv(u64::from(i), w);
        acc = p.ite(bit, k, acc);
    }
    let zero = p.zero(w);
    let zf = p.eq(x, zero);
    let mut fx = vec![seq.write(0, acc), set_flag(Flag::Zf, zf)];
    fx.extend([Flag::Cf, Flag::Of, Flag::Sf, Flag::Af, Flag::Pf].map(undef));
    seq.whole(fx);
}
