//! Frame elimination: once every local slot lives in a register, what is
//! left of the stack frame is bookkeeping: pushes that save callee-saved
//! registers the residual never changes, loads that restore them, and
//! stack-pointer adjustments. Then all of it goes, and the remaining
//! accesses to arguments are re-addressed from the unchanged stack pointer.
//!
//! It applies only when that is exactly what is left: every push saves a
//! register that nothing but its own restore writes, every `[esp+d]` access
//! is such a restore or reads or writes an argument, and there are no pops.

use std::collections::HashMap;

use iced_x86::{Code, Mnemonic, OpKind, Register};
use wiper_emit::{Item, Residual};

use crate::effects::{displacement_size, memory_operand, reg_bit, EffectsOf};
use crate::frame::Frame;

/// What to do with one item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Keep,
    Remove,
    /// Keep, with its `[esp+d]` operand re-addressed to this displacement.
    Readdress(i32),
}

/// Removes the frame of `residual` if it is only bookkeeping; returns
/// whether it did.
pub fn eliminate_frame(residual: &mut Residual, frame: &Frame, calc: &mut EffectsOf) -> bool {
    // The slot each saved register was pushed to.
    let mut saved: HashMap<i32, Register> = HashMap::new();
    let mut actions: Vec<Vec<Action>> = Vec::with_capacity(residual.blocks.len());
    for (b, block) in residual.blocks.iter().enumerate() {
        let mut row = Vec::with_capacity(block.items.len());
        for (k, item) in block.items.iter().enumerate() {
            let Some(&esp) = frame.esp[b].get(k) else {
                return false; // a block the entry does not reach
            };
            let Item::Instr(ins, _) = item else {
                row.push(Action::Keep);
                continue;
            };
            let action = match ins.mnemonic() {
                Mnemonic::Push => {
                    if ins.op0_kind() != OpKind::Register || !ins.op0_register().is_gpr32() {
                        return false;
                    }
                    saved.insert(esp - 4, ins.op0_register());
                    Action::Remove
                }
                Mnemonic::Pop | Mnemonic::Pushfd | Mnemonic::Popfd => return false,
                Mnemonic::Lea | Mnemonic::Add | Mnemonic::Sub
                    if ins.op0_kind() == OpKind::Register
                        && ins.op0_register() == Register::ESP =>
                {
                    Action::Remove
                }
                _ if memory_operand(ins).is_some() && ins.memory_base() == Register::ESP => {
                    let at = esp.wrapping_add(ins.memory_displacement32() as i32);
                    if ins.code() == Code::Mov_r32_rm32 && saved.contains_key(&at) {
                        Action::Remove // checked below: restores the register saved there
                    } else if at >= 4 {
                        Action::Readdress(at)
                    } else {
                        return false;
                    }
                }
                _ => Action::Keep,
            };
            row.push(action);
        }
        actions.push(row);
    }
    // Every removed load restores the register pushed to its slot, and no
    // saved register is written by anything else.
    let saved_regs: u128 = saved
        .values()
        .filter_map(|r| reg_bit(*r))
        .fold(0, |a, b| a | b);
    for (b, block) in residual.blocks.iter().enumerate() {
        for (k, item) in block.items.iter().enumerate() {
            let Item::Instr(ins, _) = item else {
                if calc.item(item, None).defs & saved_regs != 0 {
                    return false;
                }
                continue;
            };
            let restore = actions[b][k] == Action::Remove
                && ins.mnemonic() == Mnemonic::Mov
                && ins.memory_base() == Register::ESP;
            if restore {
                let at = frame.esp[b][k].wrapping_add(ins.memory_displacement32() as i32);
                if saved.get(&at) != Some(&ins.op0_register()) {
                    return false;
                }
            } else if actions[b][k] != Action::Remove
                && calc.item(item, None).defs & saved_regs != 0
            {
                return false;
            }
        }
    }
    for (block, row) in residual.blocks.iter_mut().zip(&actions) {
        let items = std::mem::take(&mut block.items);
        block.items = items
            .into_iter()
            .zip(row)
            .filter_map(|(mut item, action)| match action {
                Action::Keep => Some(item),
                Action::Remove => None,
                Action::Readdress(at) => {
                    if let Item::Instr(ins, _) = &mut item {
                        ins.set_memory_displacement32(*at as u32);
                        ins.set_memory_displ_size(displacement_size(*at));
                    }
                    Some(item)
                }
            })
            .collect();
    }
    true
}
