//! The simplifier. It runs **at construction**: [`ExprPool::mk`] and every
//! builder method first put commutative operands in canonical order
//! (constant right, otherwise ascending id), then try the rules below once;
//! a rule that fires builds its result through the same simplifying
//! constructors, so results are simplified too. Running at construction means
//! every id in the pool is already simplified (except [`ExprPool::mk_raw`]
//! nodes), substitution re-simplifies exactly what changed, and no separate
//! pass or fixpoint is needed. [`ExprPool::simplify`] re-runs the rules over a
//! raw expression.
//!
//! Each rule is cheap (looks at most two levels down) and exact under SMT-LIB
//! semantics, including division by zero and over-wide shifts. `c`, `c1`, `c2`
//! are constants, `w` the width, `ones` all ones, `smin`/`smax` the extreme
//! signed values.
//!
//! * **Folding**: any operator whose operands are all constants.
//! * **add**: `x+0→x`; `(x+c1)+c2→x+(c1+c2)`; `(x+c)+y→(x+y)+c` and
//!   `x+(y+c)→(x+y)+c` (constants float up); `-u+y→y-u`; `x+-v→x-v`;
//!   `(u-v)+v→u`.
//! * **sub**: `x-0→x`; `x-x→0`; `0-y→-y`; `x-c→x+(-c)`; `x-(-v)→x+v`;
//!   `(u+v)-u→v`, `(u+v)-v→u`; `(u+c)-y→(u-y)+c`; `x-(v+c)→(x-v)+(-c)`.
//! * **neg**: `--u→u`; `-(u-v)→v-u`; `-(u+c)→(-c)-u`.
//! * **mul**: `x*0→0`; `x*1→x`; `x*ones→-x`; `(x*c1)*c2→x*(c1*c2)`.
//! * **udiv/urem/sdiv/srem**: `x/1→x`; `x/0→ones` (unsigned); `x/2^k→x>>k`;
//!   `x%1→0`; `x%0→x`; `x%2^k→x&(2^k-1)`; `x%x→0`; `x/s ones→-x`;
//!   `x rem_s 1→0`, `x rem_s ones→0`, `x rem_s 0→x`, `x rem_s x→0`.
//! * **and**: `x&0→0`; `x&ones→x`; `x&x→x`; `x&~x→0`; `(x&c1)&c2→x&(c1&c2)`;
//!   `(u&v)&u→u&v`; `(u|v)&u→u`; `zext(u)&c→zext(u&c')`; `x&(2^k-1)→zext(x[k-1:0])`.
//! * **or**: `x|0→x`; `x|ones→ones`; `x|x→x`; `x|~x→ones`; `(x|c1)|c2→x|(c1|c2)`;
//!   `(u|v)|u→u|v`; `(u&v)|u→u`.
//! * **xor**: `x^0→x`; `x^x→0`; `x^ones→~x`; `x^~x→ones`; `(x^c1)^c2→x^(c1^c2)`;
//!   `(u^v)^u→v`; `~u^~v→u^v`; `~u^c→u^~c`.
//! * **not**: `~~u→u`; `~(u^c)→u^~c`; on comparisons `~(a<b)→b<=a`,
//!   `~(a<=b)→b<a` (signed and unsigned).
//! * **shl/lshr/ashr**: shift by 0 → `x`; `shl/lshr` by `c>=w` → 0; `ashr` by
//!   `c>=w` → `ashr` by `w-1`; shifting 0 (or ones, for `ashr`) → itself;
//!   `(x<<c1)<<c2→x<<(c1+c2)` and likewise for `lshr`.
//! * **rotl/rotr**: rotating 0 or ones → itself; by `c mod w == 0` → `x`; by
//!   `c>=w` → by `c mod w`.
//! * **extract**: whole width → `x`; of extract → one extract; of concat →
//!   the part it hits (or a concat of two narrower extracts); of zext/sext →
//!   the original bits, zeros, or a narrower extension; byte-aligned of a load
//!   → a narrower load at an offset; of `and/or/xor` with a constant and of
//!   `not` → pushed inside; low bits (`lo == 0`) of `add/sub/mul/neg` with a
//!   constant operand → pushed inside; of `lshr/shl` by a constant → shifted
//!   extract (or 0); of `ite` with constant branches → pushed into the branches.
//! * **concat**: `0 ++ x → zext(x)`; adjacent extracts `x[h:m+1] ++ x[m:l] →
//!   x[h:l]`; adjacent loads of one memory → one wider load; re-association
//!   `a ++ (b ++ c) → (a ++ b) ++ c` and merging at the seam.
//! * **zext/sext**: to the same width → `x`; nested extensions collapse;
//!   `sext(zext(u))` widening → `zext(u)`.
//! * **ite**: constant condition; equal branches; `ite(~c,a,b)→ite(c,b,a)`;
//!   nested ite on the same condition; 1-bit branches become `c`, `~c`, `c|e`,
//!   `~c&e`, `c&t`, `~c|t`.
//! * **eq**: `x==x→1`; 1-bit `x==1→x`, `x==0→~x`; against a constant:
//!   `(u+c1)==c→u==c-c1`, `(u^c1)==c→u==c^c1`, `~u==c→u==~c`, `-u==c→u==-c`,
//!   `zext(u)==c`/`sext(u)==c` → narrow compare or 0, `(h++l)==c` → two
//!   compares; `(u-v)==0→u==v`, `(u^v)==0→u==v`.
//! * **ult/ule/slt/sle**: equal operands; against 0, 1, `ones`, `smin`, `smax`;
//!   `x <s 0 → x[w-1]`; `zext(u) <u zext(v) → u <u v`.
//! * **load/store**: `load(store(m,a,v),b)` where `a` and `b` have the same
//!   base and constant offsets: the load inside the stored bytes → `v` or an
//!   extract of it; disjoint → `load(m,b)` (repeatedly, so it skips every
//!   non-aliasing store); `store(store(m,a,v1),a',v2)` where the second store
//!   covers the first → `store(m,a',v2)`; `store(m,a,load(m,a))→m`.

use crate::bv::mask;
use crate::{ExprId, ExprPool, Op, Sort};

/// Tries every rule for `op(a)` (operands already canonically ordered, sorts
/// checked, result sort `sort`). `None` means: intern the node as it is.
pub(crate) fn rewrite(p: &mut ExprPool, op: Op, a: &[ExprId], sort: Sort) -> Option<ExprId> {
    if let Some(e) = fold(p, op, a, sort) {
        return Some(e);
    }
    match op {
        Op::Add => add(p, a[0], a[1]),
        Op::Sub => sub(p, a[0], a[1]),
        Op::Neg => neg(p, a[0]),
        Op::Mul => mul(p, a[0], a[1]),
        Op::Udiv | Op::Urem | Op::Sdiv | Op::Srem => div(p, op, a[0], a[1]),
        Op::And => and(p, a[0], a[1]),
        Op::Or => or(p, a[0], a[1]),
        Op::Xor => xor(p, a[0], a[1]),
        Op::Not => not(p, a[0]),
        Op::Shl | Op::Lshr | Op::Ashr => shift(p, op, a[0], a[1]),
        Op::Rotl | Op::Rotr => rotate(p, op, a[0], a[1]),
        Op::Extract { hi, lo } => extract(p, a[0], hi, lo),
        Op::Concat => concat(p, a[0], a[1]),
        Op::ZeroExt(to) | Op::SignExt(to) => extend(p, op, a[0], to),
        Op::Ite => ite(p, a[0], a[1], a[2], sort),
        Op::Eq => eq(p, a[0], a[1]),
        Op::Ult | Op::Ule | Op::Slt | Op::Sle => compare(p, op, a[0], a[1]),
        Op::Load(n) => load(p, a[0], a[1], n),
        Op::Store => store(p, a[0], a[1], a[2]),
        Op::Const { .. } | Op::Var(_) => None,
    }
}

// ----- pattern helpers -------------------------------------------------------

/// The operand of `e` if `e` is the unary `op`.
fn un(p: &ExprPool, e: ExprId, op: Op) -> Option<ExprId> {
    (p.op(e) == op).then(|| p.args(e)[0])
}

/// The operands of `e` if `e` is the binary `op`.
fn bin(p: &ExprPool, e: ExprId, op: Op) -> Option<(ExprId, ExprId)> {
    (p.op(e) == op).then(|| (p.args(e)[0], p.args(e)[1]))
}

/// `(x, c)` if `e` is `op(x, c)` with a constant right operand.
fn bin_c(p: &ExprPool, e: ExprId, op: Op) -> Option<(ExprId, u64)> {
    let (x, c) = bin(p, e, op)?;
    Some((x, p.as_const(c)?))
}

/// Whether `e` is the constant `v`.
fn is(p: &ExprPool, e: ExprId, v: u64) -> bool {
    p.as_const(e) == Some(v)
}

/// Whether `a` is `~b` or `b` is `~a`.
fn complementary(p: &ExprPool, a: ExprId, b: ExprId) -> bool {
    un(p, a, Op::Not) == Some(b) || un(p, b, Op::Not) == Some(a)
}

/// Constant folding.
fn fold(p: &mut ExprPool, op: Op, a: &[ExprId], sort: Sort) -> Option<ExprId> {
    if a.is_empty() {
        return None;
    }
    let vals: Option<Vec<(u64, u32)>> = a
        .iter()
        .map(|&x| Some((p.as_const(x)?, p.width(x))))
        .collect();
    let v = crate::bv::apply(op, &vals?)?;
    Some(p.bv(v, sort.width()?))
}

// ----- arithmetic ------------------------------------------------------------

fn add(p: &mut ExprPool, x: ExprId, y: ExprId) -> Option<ExprId> {
    let w = p.width(x);
    if is(p, y, 0) {
        return Some(x);
    }
    if let Some((u, c1)) = bin_c(p, x, Op::Add) {
        let c = match p.as_const(y) {
            Some(c2) => p.bv(c1.wrapping_add(c2), w),
            None => {
                let s = p.add(u, y);
                let c = p.bv(c1, w);
                return Some(p.add(s, c));
            }
        };
        return Some(p.add(u, c));
    }
    if let Some((v, c)) = bin_c(p, y, Op::Add) {
        let s = p.add(x, v);
        let c = p.bv(c, w);
        return Some(p.add(s, c));
    }
    if let Some(u) = un(p, x, Op::Neg) {
        return Some(p.sub(y, u));
    }
    if let Some(v) = un(p, y, Op::Neg) {
        return Some(p.sub(x, v));
    }
    for (s, o) in [(x, y), (y, x)] {
        if let Some((u, v)) = bin(p, s, Op::Sub) {
            if v == o {
                return Some(u);
            }
        }
    }
    None
}

fn sub(p: &mut ExprPool, x: ExprId, y: ExprId) -> Option<ExprId> {
    let w = p.width(x);
    if is(p, y, 0) {
        return Some(x);
    }
    if x == y {
        return Some(p.zero(w));
    }
    if is(p, x, 0) {
        return Some(p.neg(y));
    }
    if let Some(c) = p.as_const(y) {
        let m = p.bv(c.wrapping_neg(), w);
        return Some(p.add(x, m));
    }
    if let Some(v) = un(p, y, Op::Neg) {
        return Some(p.add(x, v));
    }
    if let Some((u, v)) = bin(p, x, Op::Add) {
        if y == u {
            return Some(v);
        }
        if y == v {
            return Some(u);
        }
    }
    if let Some((u, c)) = bin_c(p, x, Op::Add) {
        let d = p.sub(u, y);
        let c = p.bv(c, w);
        return Some(p.add(d, c));
    }
    if let Some((v, c)) = bin_c(p, y, Op::Add) {
        let d = p.sub(x, v);
        let c = p.bv(c.wrapping_neg(), w);
        return Some(p.add(d, c));
    }
    None
}

fn neg(p: &mut ExprPool, x: ExprId) -> Option<ExprId> {
    if let Some(u) = un(p, x, Op::Neg) {
        return Some(u);
    }
    if let Some((u, v)) = bin(p, x, Op::Sub) {
        return Some(p.sub(v, u));
    }
    if let Some((u, c)) = bin_c(p, x, Op::Add) {
        let m = p.bv(c.wrapping_neg(), p.width(x));
        return Some(p.sub(m, u));
    }
    None
}

fn mul(p: &mut ExprPool, x: ExprId, y: ExprId) -> Option<ExprId> {
    let w = p.width(x);
    let c = p.as_const(y)?;
    if c == 0 {
        return Some(y);
    }
    if c == 1 {
        return Some(x);
    }
    if c == mask(w) {
        return Some(p.neg(x));
    }
    if let Some((u, c1)) = bin_c(p, x, Op::Mul) {
        let k = p.bv(c1.wrapping_mul(c), w);
        return Some(p.mul(u, k));
    }
    None
}

fn div(p: &mut ExprPool, op: Op, x: ExprId, y: ExprId) -> Option<ExprId> {
    let w = p.width(x);
    let signed_rem = op == Op::Srem;
    if x == y && (op == Op::Urem || signed_rem) {
        return Some(p.zero(w));
    }
    let c = p.as_const(y)?;
    let pow2 = c.is_power_of_two().then(|| u64::from(c.trailing_zeros()));
    Some(match op {
        Op::Udiv | Op::Sdiv if c == 1 => x,
        Op::Udiv if c == 0 => p.ones(w),
        Op::Sdiv if c == mask(w) => p.neg(x),
        Op::Urem | Op::Srem if c == 0 => x,
        Op::Urem | Op::Srem if c == 1 => p.zero(w),
        Op::Srem if c == mask(w) => p.zero(w),
        Op::Udiv => {
            let k = p.bv(pow2?, w);
            p.lshr(x, k)
        }
        Op::Urem => {
            pow2?;
            let m = p.bv(c - 1, w);
            p.and(x, m)
        }
        _ => return None,
    })
}

// ----- bitwise ---------------------------------------------------------------

/// Shared shape of `and`/`or`: `x op identity → x`, `x op absorbing → absorbing`,
/// idempotence, complements, constant re-association, and absorption laws.
fn and_or(p: &mut ExprPool, op: Op, x: ExprId, y: ExprId) -> Option<ExprId> {
    let w = p.width(x);
    let (identity, absorbing, dual) = match op {
        Op::And => (mask(w), 0, Op::Or),
        _ => (0, mask(w), Op::And),
    };
    if is(p, y, identity) || x == y {
        return Some(x);
    }
    if is(p, y, absorbing) {
        return Some(y);
    }
    if complementary(p, x, y) {
        return Some(p.bv(absorbing, w));
    }
    if let (Some((u, c1)), Some(c2)) = (bin_c(p, x, op), p.as_const(y)) {
        let c = p.bv(if op == Op::And { c1 & c2 } else { c1 | c2 }, w);
        return Some(p.mk(op, &[u, c]).expect("well sorted"));
    }
    for (s, o) in [(x, y), (y, x)] {
        if let Some((u, v)) = bin(p, s, op) {
            if o == u || o == v {
                return Some(s);
            }
        }
        if let Some((u, v)) = bin(p, s, dual) {
            if o == u || o == v {
                return Some(o);
            }
        }
    }
    None
}

fn and(p: &mut ExprPool, x: ExprId, y: ExprId) -> Option<ExprId> {
    if let Some(e) = and_or(p, Op::And, x, y) {
        return Some(e);
    }
    let w = p.width(x);
    let c = p.as_const(y)?;
    if let Some(u) = un(p, x, Op::ZeroExt(w)) {
        let k = p.width(u);
        let c = p.bv(c & mask(k), k);
        let a = p.and(u, c);
        return Some(p.zext(a, w));
    }
    if (c + 1).is_power_of_two() {
        let k = c.trailing_ones();
        let low = p.extract(x, k - 1, 0);
        return Some(p.zext(low, w));
    }
    None
}

fn or(p: &mut ExprPool, x: ExprId, y: ExprId) -> Option<ExprId> {
    and_or(p, Op::Or, x, y)
}

fn xor(p: &mut ExprPool, x: ExprId, y: ExprId) -> Option<ExprId> {
    let w = p.width(x);
    if is(p, y, 0) {
        return Some(x);
    }
    if x == y {
        return Some(p.zero(w));
    }
    if is(p, y, mask(w)) {
        return Some(p.not(x));
    }
    if complementary(p, x, y) {
        return Some(p.ones(w));
    }
    if let (Some((u, c1)), Some(c2)) = (bin_c(p, x, Op::Xor), p.as_const(y)) {
        let c = p.bv(c1 ^ c2, w);
        return Some(p.xor(u, c));
    }
    for (s, o) in [(x, y), (y, x)] {
        if let Some((u, v)) = bin(p, s, Op::Xor) {
            if o == u {
                return Some(v);
            }
            if o == v {
                return Some(u);
            }
        }
    }
    if let Some(u) = un(p, x, Op::Not) {
        if let Some(v) = un(p, y, Op::Not) {
            return Some(p.xor(u, v));
        }
        if let Some(c) = p.as_const(y) {
            let c = p.bv(!c, w);
            return Some(p.xor(u, c));
        }
    }
    None
}

fn not(p: &mut ExprPool, x: ExprId) -> Option<ExprId> {
    if let Some(u) = un(p, x, Op::Not) {
        return Some(u);
    }
    if let Some((u, c)) = bin_c(p, x, Op::Xor) {
        let c = p.bv(!c, p.width(u));
        return Some(p.xor(u, c));
    }
    let flipped = match p.op(x) {
        Op::Ult => Op::Ule,
        Op::Ule => Op::Ult,
        Op::Slt => Op::Sle,
        Op::Sle => Op::Slt,
        _ => return None,
    };
    let (a, b) = (p.args(x)[0], p.args(x)[1]);
    Some(p.mk(flipped, &[b, a]).expect("well sorted"))
}

fn shift(p: &mut ExprPool, op: Op, x: ExprId, y: ExprId) -> Option<ExprId> {
    let w = p.width(x);
    if is(p, x, 0) || (op == Op::Ashr && is(p, x, mask(w))) {
        return Some(x);
    }
    let k = p.as_const(y)?;
    if k == 0 {
        return Some(x);
    }
    if k >= u64::from(w) {
        return Some(match op {
            Op::Ashr => {
                let m = p.bv(u64::from(w - 1), w);
                p.ashr(x, m)
            }
            _ => p.zero(w),
        });
    }
    if op != Op::Ashr {
        if let Some((u, k1)) = bin_c(p, x, op) {
            let s = p.bv(k1 + k, w);
            return Some(p.mk(op, &[u, s]).expect("well sorted"));
        }
    }
    None
}

fn rotate(p: &mut ExprPool, op: Op, x: ExprId, y: ExprId) -> Option<ExprId> {
    let w = p.width(x);
    if is(p, x, 0) || is(p, x, mask(w)) {
        return Some(x);
    }
    let k = p.as_const(y)?;
    let r = k % u64::from(w);
    if r == 0 {
        return Some(x);
    }
    if k >= u64::from(w) {
        let r = p.bv(r, w);
        return Some(p.mk(op, &[x, r]).expect("well sorted"));
    }
    None
}

// ----- width changes -----------------------------------------------------------

fn extract(p: &mut ExprPool, x: ExprId, hi: u32, lo: u32) -> Option<ExprId> {
    let w = p.width(x);
    let n = hi - lo + 1;
    if lo == 0 && hi == w - 1 {
        return Some(x);
    }
    let op = p.op(x);
    let args: Vec<ExprId> = p.args(x).to_vec();
    let konst = |p: &ExprPool, i: usize| args.get(i).and_then(|&e| p.as_const(e));
    Some(match op {
        Op::Extract { lo: lo2, .. } => p.extract(args[0], hi + lo2, lo + lo2),
        Op::Concat => {
            let wl = p.width(args[1]);
            if hi < wl {
                p.extract(args[1], hi, lo)
            } else if lo >= wl {
                p.extract(args[0], hi - wl, lo - wl)
            } else {
                let h = p.extract(args[0], hi - wl, 0);
                let l = p.extract(args[1], wl - 1, lo);
                p.concat(h, l)
            }
        }
        Op::ZeroExt(_) | Op::SignExt(_) => {
            let u = args[0];
            let k = p.width(u);
            if hi < k {
                p.extract(u, hi, lo)
            } else if matches!(op, Op::ZeroExt(_)) && lo >= k {
                p.zero(n)
            } else {
                let part = p.extract(u, k - 1, lo.min(k - 1));
                let ext = if matches!(op, Op::ZeroExt(_)) {
                    Op::ZeroExt(n)
                } else {
                    Op::SignExt(n)
                };
                p.mk(ext, &[part]).expect("well sorted")
            }
        }
        Op::Load(_) if lo % 8 == 0 && n % 8 == 0 => {
            let off = p.bv(u64::from(lo / 8), 32);
            let a = p.add(args[1], off);
            p.load(args[0], a, (n / 8) as u8)
        }
        Op::And | Op::Or | Op::Xor if konst(p, 1).is_some() => {
            let l = p.extract(args[0], hi, lo);
            let r = p.extract(args[1], hi, lo);
            p.mk(op, &[l, r]).expect("well sorted")
        }
        Op::Not => {
            let e = p.extract(args[0], hi, lo);
            p.not(e)
        }
        Op::Add | Op::Mul | Op::Sub
            if lo == 0 && (konst(p, 0).is_some() || konst(p, 1).is_some()) =>
        {
            let l = p.extract(args[0], hi, 0);
            let r = p.extract(args[1], hi, 0);
            p.mk(op, &[l, r]).expect("well sorted")
        }
        Op::Neg if lo == 0 => {
            let e = p.extract(args[0], hi, 0);
            p.neg(e)
        }
        Op::Lshr => {
            let k = konst(p, 1)?;
            if u64::from(hi) + k >= u64::from(w) {
                return None;
            }
            let k = k as u32;
            p.extract(args[0], hi + k, lo + k)
        }
        Op::Shl => {
            let k = konst(p, 1)?;
            if u64::from(hi) < k {
                p.zero(n)
            } else if u64::from(lo) >= k {
                let k = k as u32;
                p.extract(args[0], hi - k, lo - k)
            } else {
                return None;
            }
        }
        Op::Ite if konst(p, 1).is_some() && konst(p, 2).is_some() => {
            let t = p.extract(args[1], hi, lo);
            let e = p.extract(args[2], hi, lo);
            p.ite(args[0], t, e)
        }
        _ => return None,
    })
}

/// Merges `hi ++ lo` into one node when the two halves are adjacent pieces of
/// the same thing: extracts of one term, or loads of one memory.
fn merge_adjacent(p: &mut ExprPool, hi: ExprId, lo: ExprId) -> Option<ExprId> {
    match (p.op(hi), p.op(lo)) {
        (Op::Extract { hi: h, lo: m1 }, Op::Extract { hi: m, lo: l })
            if m1 == m + 1 && p.args(hi)[0] == p.args(lo)[0] =>
        {
            Some(p.extract(p.args(lo)[0], h, l))
        }
        (Op::Load(nh), Op::Load(nl)) if p.args(hi)[0] == p.args(lo)[0] && nh + nl <= 8 => {
            let (mem, ah, al) = (p.args(hi)[0], p.args(hi)[1], p.args(lo)[1]);
            let (bh, oh) = base_offset(p, ah);
            let (bl, ol) = base_offset(p, al);
            (bh == bl && oh.wrapping_sub(ol) == u32::from(nl)).then(|| p.load(mem, al, nh + nl))
        }
        _ => None,
    }
}

fn concat(p: &mut ExprPool, h: ExprId, l: ExprId) -> Option<ExprId> {
    let w = p.width(h) + p.width(l);
    if is(p, h, 0) {
        return Some(p.zext(l, w));
    }
    if let Some(m) = merge_adjacent(p, h, l) {
        return Some(m);
    }
    if let Some((l1, l2)) = bin(p, l, Op::Concat) {
        let left = p.concat(h, l1);
        return Some(p.concat(left, l2));
    }
    if let Some((h1, h2)) = bin(p, h, Op::Concat) {
        let m = merge_adjacent(p, h2, l)?;
        return Some(p.concat(h1, m));
    }
    None
}

fn extend(p: &mut ExprPool, op: Op, x: ExprId, to: u32) -> Option<ExprId> {
    if p.width(x) == to {
        return Some(x);
    }
    let inner = p.op(x);
    match (op, inner) {
        (Op::ZeroExt(_), Op::ZeroExt(_)) | (Op::SignExt(_), Op::SignExt(_)) => {
            Some(p.mk(op, &[p.args(x)[0]]).expect("well sorted"))
        }
        (Op::SignExt(_), Op::ZeroExt(_)) if p.width(p.args(x)[0]) < p.width(x) => {
            Some(p.zext(p.args(x)[0], to))
        }
        _ => None,
    }
}

// ----- conditionals and comparisons -----------------------------------------------

fn ite(p: &mut ExprPool, c: ExprId, t: ExprId, e: ExprId, sort: Sort) -> Option<ExprId> {
    if let Some(b) = p.as_const(c) {
        return Some(if b == 1 { t } else { e });
    }
    if t == e {
        return Some(t);
    }
    if let Some(nc) = un(p, c, Op::Not) {
        return Some(p.ite(nc, e, t));
    }
    if let Some((c2, t2, _)) = ite_parts(p, t) {
        if c2 == c {
            return Some(p.ite(c, t2, e));
        }
    }
    if let Some((c2, _, e2)) = ite_parts(p, e) {
        if c2 == c {
            return Some(p.ite(c, t, e2));
        }
    }
    if sort != Sort::Bv(1) {
        return None;
    }
    let nc = |p: &mut ExprPool| p.not(c);
    Some(match (p.as_const(t), p.as_const(e)) {
        (Some(1), Some(0)) => c,
        (Some(0), Some(1)) => nc(p),
        (Some(1), _) => p.or(c, e),
        (Some(0), _) => {
            let n = nc(p);
            p.and(n, e)
        }
        (_, Some(0)) => p.and(c, t),
        (_, Some(1)) => {
            let n = nc(p);
            p.or(n, t)
        }
        _ => return None,
    })
}

fn ite_parts(p: &ExprPool, e: ExprId) -> Option<(ExprId, ExprId, ExprId)> {
    (p.op(e) == Op::Ite).then(|| (p.args(e)[0], p.args(e)[1], p.args(e)[2]))
}

fn eq(p: &mut ExprPool, x: ExprId, y: ExprId) -> Option<ExprId> {
    if x == y {
        return Some(p.bit(true));
    }
    let w = p.width(x);
    let c = p.as_const(y)?;
    if w == 1 {
        return Some(if c == 1 { x } else { p.not(x) });
    }
    let m = mask(w);
    let args: Vec<ExprId> = p.args(x).to_vec();
    let arg_c = |p: &ExprPool| args.get(1).and_then(|&a| p.as_const(a));
    let (u, k) = match (p.op(x), arg_c(p)) {
        (Op::Add, Some(c1)) => (args[0], c.wrapping_sub(c1) & m),
        (Op::Xor, Some(c1)) => (args[0], c ^ c1),
        (Op::Not, _) => (args[0], !c & m),
        (Op::Neg, _) => (args[0], c.wrapping_neg() & m),
        (Op::Sub | Op::Xor, _) if c == 0 => return Some(p.eq(args[0], args[1])),
        (Op::ZeroExt(_) | Op::SignExt(_), _) => {
            let k = p.width(args[0]);
            let low = c & mask(k);
            let back = if p.op(x) == Op::ZeroExt(w) {
                low
            } else {
                crate::bv::sign_extend(low, k, w)
            };
            if back != c {
                return Some(p.bit(false));
            }
            (args[0], low)
        }
        (Op::Concat, _) => {
            let wl = p.width(args[1]);
            let ch = p.bv(c >> wl, w - wl);
            let cl = p.bv(c, wl);
            let eh = p.eq(args[0], ch);
            let el = p.eq(args[1], cl);
            return Some(p.and(eh, el));
        }
        _ => return None,
    };
    let k = p.bv(k, p.width(u));
    Some(p.eq(u, k))
}

fn compare(p: &mut ExprPool, op: Op, x: ExprId, y: ExprId) -> Option<ExprId> {
    let strict = matches!(op, Op::Ult | Op::Slt);
    if x == y {
        return Some(p.bit(!strict));
    }
    let w = p.width(x);
    let (min, max) = match op {
        Op::Ult | Op::Ule => (0, mask(w)),
        _ => (1 << (w - 1), mask(w) >> 1),
    };
    let (cx, cy) = (p.as_const(x), p.as_const(y));
    // Trivial bounds: x < min, max < y are false; min <= y, x <= max are true.
    if strict && (cy == Some(min) || cx == Some(max)) {
        return Some(p.bit(false));
    }
    if !strict && (cx == Some(min) || cy == Some(max)) {
        return Some(p.bit(true));
    }
    let unsigned = matches!(op, Op::Ult | Op::Ule);
    if unsigned {
        match (strict, cx, cy) {
            // 0 < y  <=>  y != 0
            (true, Some(0), _) => return Some(p.ne(y, x)),
            // x < 1  <=>  x == 0;  x <= 0  <=>  x == 0
            (true, _, Some(1)) | (false, _, Some(0)) => {
                let z = p.zero(w);
                return Some(p.eq(x, z));
            }
            // ones <= y  <=>  y == ones
            (false, Some(_), _) if cx == Some(max) => return Some(p.eq(y, x)),
            _ => {}
        }
        let (ux, uy) = (p.op(x), p.op(y));
        if let (Op::ZeroExt(_), Op::ZeroExt(_)) = (ux, uy) {
            let (u, v) = (p.args(x)[0], p.args(y)[0]);
            if p.width(u) == p.width(v) {
                return Some(p.mk(op, &[u, v]).expect("well sorted"));
            }
        }
    } else if strict && cy == Some(0) {
        return Some(p.extract(x, w - 1, w - 1));
    }
    None
}

// ----- memory ---------------------------------------------------------------

/// Splits a 32-bit address into `(base, constant offset)`: `b + c` gives
/// `(Some(b), c)`, a constant `(None, c)`, anything else `(Some(addr), 0)`.
fn base_offset(p: &ExprPool, addr: ExprId) -> (Option<ExprId>, u32) {
    if let Some(c) = p.as_const(addr) {
        return (None, c as u32);
    }
    match bin_c(p, addr, Op::Add) {
        Some((b, c)) => (Some(b), c as u32),
        None => (Some(addr), 0),
    }
}

/// How a read of `nr` bytes at `r` relates to a write of `nw` bytes at `wa`.
enum Overlap {
    /// The read lies inside the write, starting `d` bytes into it.
    Inside(u32),
    /// No byte in common (addresses wrap modulo 2^32).
    Disjoint,
    /// Unknown or partial overlap.
    Unknown,
}

fn overlap(p: &ExprPool, wa: ExprId, nw: u32, r: ExprId, nr: u32) -> Overlap {
    let (bw, ow) = base_offset(p, wa);
    let (br, or) = base_offset(p, r);
    if bw != br {
        return Overlap::Unknown;
    }
    let d = or.wrapping_sub(ow);
    let back = ow.wrapping_sub(or);
    if u64::from(d) + u64::from(nr) <= u64::from(nw) {
        Overlap::Inside(d)
    } else if d >= nw && back >= nr {
        Overlap::Disjoint
    } else {
        Overlap::Unknown
    }
}

fn load(p: &mut ExprPool, m: ExprId, addr: ExprId, n: u8) -> Option<ExprId> {
    if p.op(m) != Op::Store {
        return None;
    }
    let (inner, wa, v) = (p.args(m)[0], p.args(m)[1], p.args(m)[2]);
    let nw = p.width(v) / 8;
    Some(match overlap(p, wa, nw, addr, u32::from(n)) {
        Overlap::Inside(d) => p.extract(v, 8 * (d + u32::from(n)) - 1, 8 * d),
        Overlap::Disjoint => p.load(inner, addr, n),
        Overlap::Unknown => return None,
    })
}

fn store(p: &mut ExprPool, m: ExprId, addr: ExprId, v: ExprId) -> Option<ExprId> {
    let n = p.width(v) / 8;
    if p.op(v) == Op::Load(n as u8) && p.args(v) == [m, addr] {
        return Some(m);
    }
    if p.op(m) == Op::Store {
        let (inner, wa, v2) = (p.args(m)[0], p.args(m)[1], p.args(m)[2]);
        if let Overlap::Inside(_) = overlap(p, addr, n, wa, p.width(v2) / 8) {
            return Some(p.store(inner, addr, v));
        }
    }
    None
}
