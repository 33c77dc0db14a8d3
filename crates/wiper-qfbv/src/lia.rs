//! A second way to prove two bit-vector formulas equal: translate them
//! exactly into linear integer arithmetic (each bit-vector is its unsigned
//! value, wrap-around is `mod 2^w`) and ask Z3's integer solver.
//!
//! Bit-blasting cannot prove identities that hide a multiplication, such
//! as `x / 7 == (((x - t) >> 1) + t) >> 2` with `t` the high half of
//! `x * 0x24924925` (Granlund and Montgomery's division by a constant):
//! the multiplier circuit defeats the SAT solver. In integer arithmetic the
//! same identity is linear (multiplication, division and remainder by
//! constants only), and Z3 decides it in milliseconds. The translation is
//! exact, not an approximation, so a proof here is a proof of the
//! bit-vector formulas. Only the fragment that stays linear is translated:
//! variables, constants, `+ - neg not`, multiplication, division and
//! remainder by a constant, shifts by a constant, `and` with a low or high
//! mask, extraction, concatenation, extensions, comparisons and `ite`;
//! anything else (a product of two variables, rotations, `or`/`xor`,
//! memory) makes the translation fail.

use std::collections::HashMap;

use z3::ast::{Bool, Int};

use crate::op::{Op, Sort, VarId};
use crate::pool::{ExprId, ExprPool};

/// `2^k` as an integer term.
fn pow2(k: u32) -> Int {
    Int::from_u128(1u128 << k)
}

/// An integer term with bounds on its value (`lo..=hi`), so that the
/// translation wraps (`mod 2^w`) only where a value may leave its width:
/// every needless `mod` makes the integer problem harder.
#[derive(Clone)]
struct Term {
    int: Int,
    lo: i128,
    hi: i128,
}

impl Term {
    /// A term known to lie in `lo..=hi`.
    fn new(int: Int, lo: i128, hi: i128) -> Term {
        Term { int, lo, hi }
    }

    /// A constant.
    fn constant(c: i128) -> Term {
        Term::new(Int::from_i128(c), c, c)
    }

    /// The term reduced modulo `2^w` (its unsigned `w`-bit value). A term
    /// at most one `2^w` outside the range is corrected by a case split,
    /// which Z3 handles far better than `mod`.
    fn wrap(self, w: u32) -> Term {
        let top = 1i128 << w;
        if self.lo >= 0 && self.hi < top {
            return self;
        }
        if self.lo >= -top && self.hi < 2 * top {
            let t = Int::from_i128(top);
            let below = self.int.lt(Int::from_u64(0));
            let above = self.int.ge(&t);
            let fixed = above.ite(&(&self.int - &t), &self.int);
            return Term::new(below.ite(&(&self.int + &t), &fixed), 0, top - 1);
        }
        Term::new(self.int.modulo(pow2(w)), 0, top - 1)
    }

    /// Floor division by the positive constant `c`.
    fn div(self, c: i128) -> Term {
        if c == 1 {
            return self;
        }
        Term::new(
            self.int.div(Int::from_i128(c)),
            self.lo.div_euclid(c),
            self.hi.div_euclid(c),
        )
    }

    /// The remainder of floor division by the positive constant `c`.
    fn rem(self, c: i128) -> Term {
        if self.lo >= 0 && self.hi < c {
            return self;
        }
        Term::new(self.int.modulo(Int::from_i128(c)), 0, c - 1)
    }

    /// `self * c` (`None` when the bounds overflow).
    fn scale(self, c: i128) -> Option<Term> {
        let (a, b) = (self.lo.checked_mul(c)?, self.hi.checked_mul(c)?);
        Some(Term::new(
            &self.int * &Int::from_i128(c),
            a.min(b),
            a.max(b),
        ))
    }

    /// `self + other`.
    fn plus(self, other: &Term) -> Option<Term> {
        Some(Term::new(
            &self.int + &other.int,
            self.lo.checked_add(other.lo)?,
            self.hi.checked_add(other.hi)?,
        ))
    }

    /// `self - other`.
    fn minus(self, other: &Term) -> Option<Term> {
        Some(Term::new(
            &self.int - &other.int,
            self.lo.checked_sub(other.hi)?,
            self.hi.checked_sub(other.lo)?,
        ))
    }

    /// `-self`.
    fn negated(self) -> Term {
        Term::new(self.int.unary_minus(), -self.hi, -self.lo)
    }

    /// `if cond { a } else { b }`.
    fn choose(cond: &Bool, a: &Term, b: &Term) -> Term {
        Term::new(cond.ite(&a.int, &b.int), a.lo.min(b.lo), a.hi.max(b.hi))
    }
}

/// Translates formulas of one pool into integer terms, declaring each
/// variable once with its range.
pub(crate) struct LiaTranslator<'p> {
    pool: &'p ExprPool,
    memo: HashMap<ExprId, Term>,
    /// `0 <= v < 2^w` for every variable met.
    pub(crate) ranges: Vec<Bool>,
    /// Every variable met, with its integer constant.
    pub(crate) vars: Vec<(VarId, Int)>,
}

impl<'p> LiaTranslator<'p> {
    /// A translator over `pool`.
    pub(crate) fn new(pool: &'p ExprPool) -> Self {
        LiaTranslator {
            pool,
            memo: HashMap::new(),
            ranges: Vec::new(),
            vars: Vec::new(),
        }
    }

    /// The unsigned value of bit-vector `e` as an integer term, or `None`
    /// outside the linear fragment.
    pub(crate) fn unsigned(&mut self, e: ExprId) -> Option<Int> {
        self.exact(e).map(|t| t.int)
    }

    /// The unsigned value of `e` (in `0..2^w`), with its bounds.
    fn exact(&mut self, e: ExprId) -> Option<Term> {
        let w = self.pool.width(e);
        Some(self.term(e)?.wrap(w))
    }

    /// A term congruent to the value of `e` modulo `2^w`, with its bounds:
    /// sums, differences and products need no reduction until a division,
    /// shift, comparison or extraction asks for the exact value.
    fn term(&mut self, e: ExprId) -> Option<Term> {
        if let Some(t) = self.memo.get(&e) {
            return Some(t.clone());
        }
        let Sort::Bv(w) = self.pool.sort(e) else {
            return None;
        };
        let t = self.node(e, w)?;
        self.memo.insert(e, t.clone());
        Some(t)
    }

    /// The signed value of `e` (width `w`).
    fn signed(&mut self, e: ExprId, w: u32) -> Option<Term> {
        // A sign extension's signed value is its operand's: `sext(y)`, or
        // `(y >>s (k-1)) ++ y` as `cdq` leaves `edx:eax`.
        let args = self.pool.args(e);
        match self.pool.op(e) {
            Op::SignExt(_) => return self.signed(args[0], self.pool.width(args[0])),
            Op::Concat if self.is_sign_of(args[0], args[1]) => {
                return self.signed(args[1], self.pool.width(args[1]));
            }
            _ => {}
        }
        let u = self.exact(e)?;
        let half = 1i128 << (w - 1);
        if u.hi < half {
            return Some(u);
        }
        let negative = u.int.ge(Int::from_i128(half));
        let shifted = u.clone().minus(&Term::constant(1i128 << w))?;
        Some(Term::choose(&negative, &shifted, &u))
    }

    /// Whether `high` is `low >>s (k-1)` with `k` the width of both: every
    /// bit of `high` is `low`'s sign.
    fn is_sign_of(&self, high: ExprId, low: ExprId) -> bool {
        let k = self.pool.width(low);
        self.pool.op(high) == Op::Ashr
            && self.pool.width(high) == k
            && self.pool.args(high)[0] == low
            && self.pool.as_const(self.pool.args(high)[1]) == Some(u64::from(k - 1))
    }

    /// `c` as a constant operand, if it is one.
    fn constant(&self, e: ExprId) -> Option<u64> {
        self.pool.as_const(e)
    }

    /// One node, its operands translated (the result congruent to its
    /// value modulo `2^w`).
    fn node(&mut self, e: ExprId, w: u32) -> Option<Term> {
        let args = self.pool.args(e).to_vec();
        let top = 1i128 << w;
        Some(match self.pool.op(e) {
            Op::Const { val, .. } => Term::constant(i128::from(val)),
            Op::Var(v) => {
                let x = Int::new_const(format!("lia!{}", self.pool.var_name(v)));
                self.ranges
                    .push(Bool::and(&[&x.ge(Int::from_u64(0)), &x.lt(pow2(w))]));
                self.vars.push((v, x.clone()));
                Term::new(x, 0, top - 1)
            }
            Op::Not => Term::constant(top - 1).minus(&self.term(args[0])?)?,
            Op::Neg => self.term(args[0])?.negated(),
            Op::Add => {
                let mut sum = self.term(args[0])?;
                for &a in &args[1..] {
                    sum = sum.plus(&self.term(a)?)?;
                }
                sum
            }
            Op::Sub => self.term(args[0])?.minus(&self.term(args[1])?)?,
            Op::Mul => self.product(&args, w)?,
            Op::Udiv | Op::Urem => self.unsigned_division(e, &args)?,
            Op::Sdiv | Op::Srem => self.signed_division(e, &args, w)?,
            Op::And => self.masked(&args, w)?,
            Op::Shl => match self.constant(args[1])? {
                k if k >= u64::from(w) => Term::constant(0),
                k => self.term(args[0])?.scale(1 << k)?,
            },
            Op::Lshr => match self.constant(args[1])? {
                k if k >= u64::from(w) => Term::constant(0),
                k => self.exact(args[0])?.div(1 << k),
            },
            Op::Ashr => {
                let k = self.constant(args[1])?.min(u64::from(w - 1));
                self.signed(args[0], w)?.div(1 << k)
            }
            Op::Concat => {
                let low = self.pool.width(args[1]);
                let high = self.exact(args[0])?.scale(1 << low)?;
                high.plus(&self.exact(args[1])?)?
            }
            // The low bits of a value only need a term congruent to it.
            Op::Extract { hi, lo: 0 } => self.term(args[0])?.wrap(hi + 1),
            Op::Extract { hi, lo } => self.exact(args[0])?.div(1 << lo).wrap(hi - lo + 1),
            Op::ZeroExt(_) => self.exact(args[0])?,
            Op::SignExt(_) => {
                let from = self.pool.width(args[0]);
                self.signed(args[0], from)?
            }
            Op::Ite => {
                let c = self.exact(args[0])?;
                let (a, b) = (self.term(args[1])?, self.term(args[2])?);
                Term::choose(&c.int.eq(Int::from_u64(1)), &a, &b)
            }
            Op::Eq | Op::Ult | Op::Ule | Op::Slt | Op::Sle => self.relation(e, &args)?,
            _ => return None,
        })
    }

    /// A product with at most one factor that is not a constant.
    /// The constant factor is taken as its signed representative (a
    /// 64-bit `-3` is `-3`, not `2^64 - 3`): congruent, and it keeps the
    /// product's bounds small.
    fn product(&mut self, args: &[ExprId], w: u32) -> Option<Term> {
        let mut factor = 1i128;
        let mut variable: Option<Term> = None;
        for &a in args {
            match self.constant(a) {
                Some(c) => factor = factor.checked_mul(i128::from(c))? % (1i128 << w),
                None if variable.is_none() => variable = Some(self.term(a)?),
                None => return None,
            }
        }
        if factor >= 1i128 << (w - 1) {
            factor -= 1i128 << w;
        }
        Some(match variable {
            Some(v) => v.scale(factor)?,
            None => Term::constant(factor),
        })
    }

    /// `udiv`/`urem` by a constant (SMT-LIB: `x / 0` is all ones, `x % 0`
    /// is `x`).
    fn unsigned_division(&mut self, e: ExprId, args: &[ExprId]) -> Option<Term> {
        let x = self.exact(args[0])?;
        let c = i128::from(self.constant(args[1])?);
        let w = self.pool.width(e);
        Some(match (self.pool.op(e), c) {
            (Op::Udiv, 0) => Term::constant((1i128 << w) - 1),
            (Op::Udiv, c) => x.div(c),
            (_, 0) => x,
            (_, c) => x.rem(c),
        })
    }

    /// `sdiv`/`srem` by a non-zero constant: truncating division, the
    /// remainder with the dividend's sign (before wrapping to `w` bits).
    fn signed_division(&mut self, e: ExprId, args: &[ExprId], w: u32) -> Option<Term> {
        let c = i128::from(self.constant(args[1])?);
        let sc = if c >= 1 << (w - 1) {
            c - (1i128 << w)
        } else {
            c
        };
        if sc == 0 {
            return None;
        }
        let x = self.signed(args[0], w)?;
        let magnitude = sc.abs();
        let nonneg = x.int.ge(Int::from_u64(0));
        if self.pool.op(e) == Op::Srem {
            // The remainder has the dividend's sign and the divisor's
            // magnitude does not matter: `|x| mod |c|` with `x`'s sign.
            if x.lo >= 0 {
                return Some(x.rem(magnitude));
            }
            let down = x.clone().rem(magnitude);
            let up = x.negated().rem(magnitude).negated();
            return Some(Term::choose(&nonneg, &down, &up));
        }
        let toward_zero = if x.lo >= 0 {
            x.div(magnitude)
        } else {
            let down = x.clone().div(magnitude);
            let up = x.negated().div(magnitude).negated();
            Term::choose(&nonneg, &down, &up)
        };
        Some(if sc < 0 {
            toward_zero.negated()
        } else {
            toward_zero
        })
    }

    /// `x & mask` for a mask of low ones (`x mod 2^k`) or of high ones
    /// (`x - x mod 2^k`).
    fn masked(&mut self, args: &[ExprId], w: u32) -> Option<Term> {
        let (x, m) = match (self.constant(args[0]), self.constant(args[1])) {
            (_, Some(m)) => (args[0], m),
            (Some(m), _) => (args[1], m),
            _ => return None,
        };
        let all = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
        let x = self.exact(x)?;
        if m.wrapping_add(1) & m == 0 {
            let k = m.wrapping_add(1).trailing_zeros().min(w);
            return Some(if k >= w { x } else { x.rem(1 << k) });
        }
        let low = !m & all;
        if low.wrapping_add(1) & low == 0 {
            let k = low.wrapping_add(1).trailing_zeros();
            let (part, hi) = (x.clone().rem(1 << k), x.hi);
            return x.minus(&part).map(|t| Term::new(t.int, 0, hi));
        }
        None
    }

    /// A comparison as 1 or 0.
    fn relation(&mut self, e: ExprId, args: &[ExprId]) -> Option<Term> {
        let w = self.pool.width(args[0]);
        let holds = match self.pool.op(e) {
            Op::Eq => self.exact(args[0])?.int.eq(&self.exact(args[1])?.int),
            Op::Ult => self.exact(args[0])?.int.lt(&self.exact(args[1])?.int),
            Op::Ule => self.exact(args[0])?.int.le(&self.exact(args[1])?.int),
            Op::Slt => self
                .signed(args[0], w)?
                .int
                .lt(&self.signed(args[1], w)?.int),
            _ => self
                .signed(args[0], w)?
                .int
                .le(&self.signed(args[1], w)?.int),
        };
        Some(Term::choose(&holds, &Term::constant(1), &Term::constant(0)))
    }
}
