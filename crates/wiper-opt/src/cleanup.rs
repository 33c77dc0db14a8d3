//! Register copy propagation and dead-code elimination.
//!
//! Copy propagation is local to a block: after `mov a, b` a read of `a`
//! (as a 32-bit register operand or an address register) becomes a read of
//! `b` until either is written. Dead-code elimination removes items whose
//! every written location is dead and that have no other effect.

use iced_x86::{Code, Instruction, OpAccess, OpKind, Register};
use wiper_emit::{Item, Residual};

use crate::effects::{info32, is_fixed_register, is_pure, reg_bit, reg_of_bit, Effects, EffectsOf};
use crate::liveness::liveness;

/// Propagates register copies in every block; returns whether anything
/// changed.
pub fn propagate_copies(residual: &mut Residual, calc: &mut EffectsOf) -> bool {
    let mut changed = false;
    let mut info = iced_x86::InstructionInfoFactory::new();
    for block in &mut residual.blocks {
        // copy_of[r] = s: register r holds the same value as register s.
        let mut copy_of: [Option<u32>; 8] = [None; 8];
        let mut keep = Vec::with_capacity(block.items.len());
        for mut item in std::mem::take(&mut block.items) {
            if let Item::Instr(ins, _) = &mut item {
                if is_pure(ins) {
                    changed |= substitute(ins, &copy_of, &mut info);
                }
                if is_self_move(ins) {
                    changed = true;
                    continue;
                }
            }
            let fx = calc.item(&item, None);
            forget(&mut copy_of, &fx);
            if let Some((d, s)) = fx.copy {
                if d != s {
                    copy_of[d as usize] = Some(s);
                }
            }
            keep.push(item);
        }
        block.items = keep;
    }
    changed
}

/// Drops the copy facts that the item with effects `fx` invalidates.
fn forget(copy_of: &mut [Option<u32>; 8], fx: &Effects) {
    if fx.leaves || fx.uses == !0 {
        *copy_of = [None; 8];
        return;
    }
    for r in 0..8u32 {
        let written = fx.defs & (1 << r) != 0;
        let source_written = copy_of[r as usize].is_some_and(|s| fx.defs & (1 << s) != 0);
        if written || source_written {
            copy_of[r as usize] = None;
        }
    }
}

/// Rewrites the reads of copied registers in `ins`; returns whether it did.
fn substitute(
    ins: &mut Instruction,
    copy_of: &[Option<u32>; 8],
    info: &mut iced_x86::InstructionInfoFactory,
) -> bool {
    let source = |reg: Register| -> Option<Register> {
        if !reg.is_gpr32() {
            return None;
        }
        let bit = reg_bit(reg)?.trailing_zeros();
        copy_of[bit as usize].map(reg_of_bit)
    };
    let mut changed = false;
    let accesses: Vec<OpAccess> = {
        let i = info32(info, ins);
        (0..ins.op_count()).map(|k| i.op_access(k)).collect()
    };
    for (k, access) in accesses.into_iter().enumerate() {
        let k = k as u32;
        match ins.op_kind(k) {
            OpKind::Register if access == OpAccess::Read && !is_fixed_register(ins, k) => {
                if let Some(s) = source(ins.op_register(k)) {
                    ins.set_op_register(k, s);
                    changed = true;
                }
            }
            OpKind::Memory => {
                if let Some(s) = source(ins.memory_base()) {
                    ins.set_memory_base(s);
                    changed = true;
                }
                if let Some(s) = source(ins.memory_index()) {
                    ins.set_memory_index(s);
                    changed = true;
                }
            }
            _ => {}
        }
    }
    changed
}

/// `mov r, r` with a 32-bit or 8-bit register: no effect at all.
fn is_self_move(ins: &Instruction) -> bool {
    matches!(
        ins.code(),
        Code::Mov_r32_rm32 | Code::Mov_rm32_r32 | Code::Mov_r8_rm8 | Code::Mov_rm8_r8
    ) && ins.op0_kind() == OpKind::Register
        && ins.op1_kind() == OpKind::Register
        && ins.op0_register() == ins.op1_register()
}

/// Removes dead items; returns whether anything changed. With `slots`
/// (per block and item, the promotable slot an item's memory operand
/// accesses, as in [`crate::frame::Frame::slot_of`]) stores to dead slots go
/// too.
pub fn eliminate_dead(
    residual: &mut Residual,
    calc: &mut EffectsOf,
    slots: Option<&[Vec<Option<usize>>]>,
) -> bool {
    let fx: Vec<Vec<Effects>> = residual
        .blocks
        .iter()
        .enumerate()
        .map(|(b, block)| {
            block
                .items
                .iter()
                .enumerate()
                .map(|(k, item)| calc.item(item, slots.and_then(|s| s[b][k])))
                .collect()
        })
        .collect();
    let live = liveness(residual, &fx);
    let mut changed = false;
    for (b, block) in residual.blocks.iter_mut().enumerate() {
        let mut keep = Vec::with_capacity(block.items.len());
        for (k, item) in std::mem::take(&mut block.items).into_iter().enumerate() {
            let e = &fx[b][k];
            let out = live.live_out[b][k];
            if !e.side_effect && e.defs & out == 0 {
                changed = true;
                continue;
            }
            keep.push(item);
        }
        block.items = keep;
    }
    changed
}
