//! Copying expressions from the caller's pool into the synthesizer's own.
//!
//! The synthesizer builds thousands of candidate formulas; keeping them in a
//! private [`ExprPool`] leaves the caller's pool untouched, binds the
//! [`wiper_qfbv::Prover`] to one pool for good, and makes the goal cache
//! independent of the caller's ids (structurally equal goals import to the
//! same ids). Variables are matched by name and sort.

use std::collections::HashMap;

use wiper_qfbv::{ExprId, ExprPool, Op};

/// The copies of `roots` (from `src`) in `dst`, re-simplified there; `None`
/// if a variable name clashes with a variable of another sort in `dst`.
pub(crate) fn import(src: &ExprPool, dst: &mut ExprPool, roots: &[ExprId]) -> Option<Vec<ExprId>> {
    let mut map: HashMap<ExprId, ExprId> = HashMap::new();
    for s in src.subterms(roots) {
        let new = match src.op(s) {
            Op::Var(v) => dst.try_var(src.var_name(v), src.var_sort(v)).ok()?,
            op => {
                let args: Vec<ExprId> = src.args(s).iter().map(|a| map[a]).collect();
                dst.mk(op, &args).ok()?
            }
        };
        map.insert(s, new);
    }
    Some(roots.iter().map(|r| map[r]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_and_sharing_survive() {
        let mut a = ExprPool::new();
        let eax = a.var("eax", 32);
        let one = a.bv(1, 32);
        let s = a.add(eax, one);
        let m = a.mem_var("mem");
        let l = a.load(m, s, 4);
        let mut b = ExprPool::new();
        let out = import(&a, &mut b, &[s, l]).unwrap();
        let beax = b.var("eax", 32);
        let bone = b.bv(1, 32);
        assert_eq!(out[0], b.add(beax, bone));
        let bm = b.mem_var("mem");
        assert_eq!(out[1], b.load(bm, out[0], 4));
        // A clash of sorts is refused.
        let mut c = ExprPool::new();
        c.var("mem", 32);
        assert!(import(&a, &mut c, &[l]).is_none());
    }
}
