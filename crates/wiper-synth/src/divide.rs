//! Division by a constant without `div`: a goal whose quotient and
//! remainder registers are the 32-bit quotient and remainder of `eax`
//! (zero- or sign-extended into `edx:eax`, as after `xor edx,edx` or `cdq`)
//! by a constant becomes a multiplication by a magic number and shifts
//! (Granlund and Montgomery, "Division by invariant integers using
//! multiplication", PLDI 1994; the numbers are the ones gcc uses), or
//! shifts and masks for a power of two. Like every candidate, the sequence
//! is only a guess until the verifier proves it (in linear integer
//! arithmetic, where bit-blasting the multiplier would give up).

use iced_x86::Instruction;
use wiper_qfbv::{ExprId, ExprPool, Op};
use wiper_sem::Reg;

use crate::asm::{build, Opnd};
use crate::cands::var_reg;
use crate::spec::Spec;

/// A division the goal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Division {
    /// The register holding the dividend.
    x: Reg,
    /// Signed (`idiv`) or unsigned (`div`).
    signed: bool,
    /// The divisor (for a signed division, its two's complement).
    d: u32,
}

/// What one register's goal formula computes, if it is a 32-bit quotient
/// (`false`) or remainder (`true`) of a register by a constant.
fn division_of(pool: &ExprPool, e: ExprId) -> Option<(Division, bool)> {
    // The 64-bit forms of `div`/`idiv` are truncated to 32 bits.
    let (op, args) = match pool.op(e) {
        Op::Extract { hi: 31, lo: 0 } => {
            let inner = pool.args(e)[0];
            (pool.op(inner), pool.args(inner))
        }
        op => (op, pool.args(e)),
    };
    let (signed, remainder) = match op {
        Op::Udiv => (false, false),
        Op::Urem => (false, true),
        Op::Sdiv => (true, false),
        Op::Srem => (true, true),
        _ => return None,
    };
    let (dividend, divisor) = (args[0], args[1]);
    let c = pool.as_const(divisor)?;
    let (x, d) = match pool.width(dividend) {
        32 => (var_reg(pool, dividend)?, c as u32),
        64 => (extended(pool, dividend, signed)?, narrow(c, signed)?),
        _ => return None,
    };
    Some((Division { x, signed, d }, remainder))
}

/// The register whose 64-bit zero extension (`signed`: sign extension)
/// `e` is.
fn extended(pool: &ExprPool, e: ExprId, signed: bool) -> Option<Reg> {
    let args = pool.args(e);
    match pool.op(e) {
        Op::ZeroExt(64) if !signed => var_reg(pool, args[0]),
        Op::SignExt(64) if signed => var_reg(pool, args[0]),
        Op::Concat => {
            let (high, low) = (args[0], args[1]);
            let x = var_reg(pool, low)?;
            let ok = if signed {
                pool.op(high) == Op::Ashr
                    && pool.args(high)[0] == low
                    && pool.as_const(pool.args(high)[1]) == Some(31)
            } else {
                pool.as_const(high) == Some(0)
            };
            ok.then_some(x)
        }
        _ => None,
    }
}

/// The 32-bit divisor of a 64-bit constant that extends one.
fn narrow(c: u64, signed: bool) -> Option<u32> {
    let low = c as u32;
    let back = if signed {
        low as i32 as i64 as u64
    } else {
        u64::from(low)
    };
    (back == c).then_some(low)
}

/// The division the goal's changed registers ask for: a quotient in
/// `eax`, a remainder in `edx` (either may be missing), of one dividend by
/// one divisor; nothing else may change.
fn division_goal(pool: &ExprPool, spec: &Spec) -> Option<(Division, bool, bool)> {
    let mut found: Option<Division> = None;
    let (mut quotient, mut remainder) = (false, false);
    for r in Reg::ALL {
        if spec.changed_regs & 1 << r.index() == 0 {
            continue;
        }
        let (div, is_rem) = division_of(pool, spec.reg_goal[r.index()]?)?;
        if found.is_some_and(|f| f != div) {
            return None;
        }
        found = Some(div);
        match (r, is_rem) {
            (Reg::Eax, false) => quotient = true,
            (Reg::Edx, true) => remainder = true,
            _ => return None,
        }
    }
    let div = found?;
    let stale = spec.stale & 1 << div.x.index() != 0;
    (!stale && !spec.mem_changed).then_some((div, quotient, remainder))
}

/// The candidate sequence for a division goal, if the goal is one and the
/// registers it needs may be written.
pub(crate) fn candidate(pool: &ExprPool, spec: &Spec) -> Option<Vec<Instruction>> {
    let (div, _quotient, remainder) = division_goal(pool, spec)?;

    let writable = spec.writable();
    let (eax, edx) = (1u8 << Reg::Eax.index(), 1u8 << Reg::Edx.index());
    if writable & (eax | edx) != eax | edx {
        return None;
    }
    if div.d == 0 || (div.signed && (div.d == u32::MAX || div.d == 1 << 31)) {
        return None; // #DE, overflow, or INT_MIN: leave these to `idiv`
    }
    let mut seq = Seq::default();
    // `keep` holds the dividend while eax and edx are rewritten.
    let keep = if matches!(div.x, Reg::Eax | Reg::Edx) {
        let spare = Reg::ALL.into_iter().find(|r| {
            !matches!(r, Reg::Eax | Reg::Edx | Reg::Esp) && writable & 1 << r.index() != 0
        })?;
        seq.op("Mov", &[reg(spare), reg(div.x)])?;
        spare
    } else {
        div.x
    };
    if div.x != Reg::Eax {
        seq.op("Mov", &[reg(Reg::Eax), reg(div.x)])?;
    }
    if div.signed {
        signed_quotient(&mut seq, keep, div.d as i32)?;
    } else {
        unsigned_quotient(&mut seq, keep, div.d)?;
    }
    if remainder {
        // edx = x - q * d
        seq.op("Imul", &[reg(Reg::Edx), reg(Reg::Eax), Opnd::I(div.d)])?;
        seq.op("Neg", &[reg(Reg::Edx)])?;
        seq.op("Add", &[reg(Reg::Edx), reg(keep)])?;
    }
    Some(seq.0)
}

/// `eax := x / d` (unsigned) with `eax = x` and `keep = x`.
fn unsigned_quotient(seq: &mut Seq, keep: Reg, d: u32) -> Option<()> {
    if d.is_power_of_two() {
        return seq.shift("Shr", Reg::Eax, d.trailing_zeros());
    }
    let (magic, shift, long) = unsigned_magic(d);
    seq.op("Mov", &[reg(Reg::Edx), Opnd::I(magic)])?;
    seq.op("Mul", &[reg(Reg::Edx)])?;
    if long {
        // q = (t + ((x - t) >> 1)) >> (shift - 1), t = mulhi(x, magic)
        seq.op("Mov", &[reg(Reg::Eax), reg(keep)])?;
        seq.op("Sub", &[reg(Reg::Eax), reg(Reg::Edx)])?;
        seq.shift("Shr", Reg::Eax, 1)?;
        seq.op("Add", &[reg(Reg::Eax), reg(Reg::Edx)])?;
        seq.shift("Shr", Reg::Eax, shift - 1)
    } else {
        seq.op("Mov", &[reg(Reg::Eax), reg(Reg::Edx)])?;
        seq.shift("Shr", Reg::Eax, shift)
    }
}

/// `eax := x / d` (signed, truncating) with `eax = x` and `keep = x`.
fn signed_quotient(seq: &mut Seq, keep: Reg, d: i32) -> Option<()> {
    let magnitude = d.unsigned_abs();
    if magnitude.is_power_of_two() {
        // q = (x + (x < 0 ? |d| - 1 : 0)) >> k, arithmetic
        let k = magnitude.trailing_zeros();
        seq.op("Mov", &[reg(Reg::Edx), reg(keep)])?;
        seq.shift("Sar", Reg::Edx, 31)?;
        seq.shift("Shr", Reg::Edx, 32 - k)?;
        seq.op("Add", &[reg(Reg::Eax), reg(Reg::Edx)])?;
        seq.shift("Sar", Reg::Eax, k)?;
    } else {
        // q = (smulhi(x, magic) [+ x]) >> shift, plus 1 when x < 0
        let (magic, shift) = signed_magic(magnitude);
        seq.op("Mov", &[reg(Reg::Edx), Opnd::I(magic)])?;
        seq.op("Imul", &[reg(Reg::Edx)])?;
        if magic >= 1 << 31 {
            seq.op("Add", &[reg(Reg::Edx), reg(keep)])?;
        }
        seq.shift("Sar", Reg::Edx, shift)?;
        seq.op("Mov", &[reg(Reg::Eax), reg(keep)])?;
        seq.shift("Shr", Reg::Eax, 31)?;
        seq.op("Add", &[reg(Reg::Eax), reg(Reg::Edx)])?;
    }
    if d < 0 {
        seq.op("Neg", &[reg(Reg::Eax)])?;
    }
    Some(())
}

/// `(magic, shift, long)` for unsigned division by `d` (not a power of
/// two): short, `mulhi(x, magic) >> shift`, when a 32-bit magic number
/// satisfies Granlund and Montgomery's bound `2^(32+l) <= m*d <=
/// 2^(32+l) + 2^l`; else the long form with a 33-bit number less `2^32`.
fn unsigned_magic(d32: u32) -> (u32, u32, bool) {
    let d = u128::from(d32);
    for l in 0..=32u32 {
        let p = 1u128 << (32 + l);
        let m = p.div_ceil(d);
        if m < 1 << 32 && m * d - p <= 1 << l {
            return (m as u32, l, false);
        }
    }
    let l = 32 - (d32 - 1).leading_zeros(); // ceil(log2 d)
    let m = ((1u128 << 32) * ((1u128 << l) - d)) / d + 1;
    (m as u32, l, true)
}

/// `(magic, shift)` for signed division by `d` (at least 3, not a power of
/// two): the smallest `p >= 32` with `m = floor(2^p / d) + 1` and
/// `m*d - 2^p <= 2^(p-31)`; `shift = p - 32`. A magic number of `2^31` or
/// more is negative as a signed multiplier, and the sequence adds `x`.
fn signed_magic(d: u32) -> (u32, u32) {
    let d = u128::from(d);
    for p in 32..64u32 {
        let m = (1u128 << p) / d + 1;
        if m < 1 << 32 && m * d - (1u128 << p) <= 1u128 << (p - 31) {
            return (m as u32, p - 32);
        }
    }
    unreachable!("a magic number exists for every 32-bit divisor")
}

/// A 32-bit register operand.
fn reg(r: Reg) -> Opnd {
    Opnd::R(r.to_iced())
}

/// A sequence under construction.
#[derive(Default)]
struct Seq(Vec<Instruction>);

impl Seq {
    /// Appends `mn ops`.
    fn op(&mut self, mn: &str, ops: &[Opnd]) -> Option<()> {
        self.0.push(build(mn, ops)?);
        Some(())
    }

    /// Appends a shift of `r` by `k` (nothing for 0).
    fn shift(&mut self, mn: &str, r: Reg, k: u32) -> Option<()> {
        if k == 0 {
            return Some(());
        }
        self.op(mn, &[reg(r), Opnd::I(k)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gcc -O2's numbers for these divisors.
    #[test]
    fn magic_numbers_are_gccs() {
        assert_eq!(unsigned_magic(3), (0xAAAA_AAAB, 1, false));
        assert_eq!(unsigned_magic(10), (0xCCCC_CCCD, 3, false));
        assert_eq!(unsigned_magic(7), (0x2492_4925, 3, true));
        assert_eq!(signed_magic(7), (0x9249_2493, 2));
        assert_eq!(signed_magic(10), (0x6666_6667, 2));
        assert_eq!(signed_magic(3), (0x5555_5556, 0));
    }

    #[test]
    fn magic_numbers_divide() {
        let mut rng = wiper_x86::Rng::new(7);
        for _ in 0..2000 {
            let d = rng.next_u32() >> rng.below(32);
            if d < 3 || d.is_power_of_two() {
                continue;
            }
            let (m, l, long) = unsigned_magic(d);
            for x in [0, 1, d - 1, d, u32::MAX, u32::MAX - d, rng.next_u32()] {
                let t = ((u64::from(x) * u64::from(m)) >> 32) as u32;
                let q = if long {
                    (t + ((x - t) >> 1)) >> (l - 1)
                } else {
                    t >> l
                };
                assert_eq!(q, x / d, "{x} / {d}");
            }
            if d >= 1 << 31 {
                continue;
            }
            let (m, s) = signed_magic(d);
            let d = d as i32;
            for x in [
                0,
                1,
                -1,
                d - 1,
                -d,
                i32::MIN,
                i32::MAX,
                rng.next_u32() as i32,
            ] {
                let mut t = ((i64::from(x) * i64::from(m as i32)) >> 32) as i32;
                if m >= 1 << 31 {
                    t = t.wrapping_add(x);
                }
                let q = (t >> s) + i32::from(x < 0);
                assert_eq!(q, x / d, "{x} /s {d}");
            }
        }
    }
}
