//! The frame bytes a store through a dynamic address may reach, when the
//! address is the frame plus a constant plus registers whose range the
//! residual code before the store bounds (an interpreter's tape indexed by
//! a byte-sized head: `movzx eax, BYTE PTR [ebp-1]` then `mov BYTE PTR
//! [ebp+eax-0x118], dl` reaches 256 bytes of the frame, not all of it).

use iced_x86::{Code, FlowControl, InstructionInfoFactory, OpAccess, OpKind};
use wiper_qfbv::{ExprId, ExprPool, Op, VarId};
use wiper_residual::Item;
use wiper_sem::{Loc, Reg};

/// Stack offsets `lo..hi` (relative to the stack base `stack`) that a
/// store of `width` bytes at address `a` may write, when `a` is `stack +
/// k + Σ scale·r` over registers `r` that the residual block `before` (the
/// items emitted before the store) bounds; `None` otherwise.
pub(super) fn frame_reach(
    pool: &ExprPool,
    a: ExprId,
    stack: VarId,
    before: &[Item],
    width: u32,
) -> Option<(i64, i64)> {
    let mut terms = Vec::new();
    let mut constant = 0u32;
    let mut stack_seen = false;
    collect_terms(pool, a, 1, &mut terms, &mut constant)?;
    let mut spread: i64 = 0;
    for (v, scale) in terms {
        if v == stack {
            if scale != 1 || stack_seen {
                return None;
            }
            stack_seen = true;
            continue;
        }
        let Some(Loc::Reg(r)) = Loc::of_var(pool, v) else {
            return None;
        };
        let max = register_bound(before, r)?;
        spread = spread.checked_add(i64::from(scale).checked_mul(i64::from(max))?)?;
    }
    let lo = i64::from(constant as i32);
    (stack_seen && spread < 1 << 31).then_some((lo, lo + spread + i64::from(width)))
}

/// The terms (variable, scale) and the constant of `e` when it is a sum of
/// variables times small constants and constants.
pub(super) fn terms(pool: &ExprPool, e: ExprId) -> Option<(Vec<(VarId, u32)>, u32)> {
    let mut terms = Vec::new();
    let mut constant = 0u32;
    collect_terms(pool, e, 1, &mut terms, &mut constant)?;
    Some((terms, constant))
}

/// Adds `scale` times the terms of `e` (a sum of variables times
/// constants and constants) to `terms` and `constant`; `None` for any
/// other shape.
fn collect_terms(
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

/// The largest value register `r` can hold after the residual block
/// `before`, from the last instruction in it that writes `r`: a zero
/// extension of a byte or word, or an `and` with a non-negative constant.
/// `None` when no such instruction bounds it (or anything but a plain
/// instruction comes after it).
fn register_bound(before: &[Item], r: Reg) -> Option<u32> {
    let mut factory = InstructionInfoFactory::new();
    for item in before.iter().rev() {
        let Item::Instr(ins, _) = item else {
            return None;
        };
        if ins.flow_control() != FlowControl::Next {
            return None;
        }
        let writes_r = factory.info(ins).used_registers().iter().any(|u| {
            Reg::from_iced(u.register()) == Some(r)
                && !matches!(
                    u.access(),
                    OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess
                )
        });
        if !writes_r {
            continue;
        }
        let full = |i: u32| {
            ins.op_kind(i) == OpKind::Register && Reg::from_iced(ins.op_register(i)) == Some(r)
        };
        return match ins.code() {
            Code::Movzx_r32_rm8 if full(0) && ins.op0_register().size() == 4 => Some(0xff),
            Code::Movzx_r32_rm16 if full(0) && ins.op0_register().size() == 4 => Some(0xffff),
            Code::And_rm32_imm8 | Code::And_rm32_imm32 | Code::And_EAX_imm32
                if full(0) && ins.op0_register().size() == 4 =>
            {
                let imm = ins.immediate(1) as u32;
                (imm as i32 >= 0).then_some(imm)
            }
            _ => None,
        };
    }
    None
}
