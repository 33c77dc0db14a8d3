//! Addresses as linear sums: `stack + 0x10 + 4·eax`, the terms (a
//! variable times a small scale) and the constant of a residual formula.

use wiper_qfbv::{ExprId, ExprPool, Op, VarId};

/// The terms (variable, scale) and the constant of `e` when it is a sum of
/// variables times small constants and constants.
pub(crate) fn terms(pool: &ExprPool, e: ExprId) -> Option<(Vec<(VarId, u32)>, u32)> {
    let mut terms = Vec::new();
    let mut constant = 0u32;
    collect_terms(pool, e, 1, &mut terms, &mut constant)?;
    Some((terms, constant))
}

/// Adds `scale` times the terms of `e` (a sum of variables times
/// constants and constants) to `terms` and `constant`; `None` for any
/// other shape.
pub(crate) fn collect_terms(
    pool: &ExprPool,
    e: ExprId,
    scale: u32,
    terms: &mut Vec<(VarId, u32)>,
    constant: &mut u32,
) -> Option<()> {
    if pool.width(e) != 32 {
        return None;
    }
    if let Some(c) = pool.as_const(e) {
        *constant = constant.wrapping_add((c as u32).wrapping_mul(scale));
        return Some(());
    }
    if let Some(v) = pool.as_var(e) {
        terms.push((v, scale));
        return Some(());
    }
    let args = pool.args(e);
    match pool.op(e) {
        Op::Add => {
            collect_terms(pool, args[0], scale, terms, constant)?;
            collect_terms(pool, args[1], scale, terms, constant)
        }
        Op::Mul | Op::Shl => {
            let (c, x) = match (pool.as_const(args[0]), pool.as_const(args[1])) {
                (Some(c), None) if pool.op(e) == Op::Mul => (c as u32, args[1]),
                (None, Some(c)) if pool.op(e) == Op::Mul => (c as u32, args[0]),
                (None, Some(c)) if c < 8 => (1u32 << c, args[0]),
                _ => return None,
            };
            // Only small non-negative scales: an index, not a negation.
            (c <= 8).then_some(())?;
            collect_terms(pool, x, scale.checked_mul(c)?, terms, constant)
        }
        _ => None,
    }
}
