//! The frame bytes a store through a dynamic address may reach, when the
//! address is the frame plus a constant plus registers whose range the
//! residual code before the store bounds (an interpreter's tape indexed by
//! a byte-sized head: `movzx eax, BYTE PTR [ebp-1]` then `mov BYTE PTR
//! [ebp+eax-0x118], dl` reaches 256 bytes of the frame, not all of it).

use iced_x86::{Code, FlowControl, InstructionInfoFactory, OpAccess, OpKind};
use wiper_qfbv::{ExprId, ExprPool, VarId};
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
    crate::linear::collect_terms(pool, a, 1, &mut terms, &mut constant)?;
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
