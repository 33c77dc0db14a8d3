//! Saves around a few instructions: the specializer, which does not know
//! which registers are free where it writes a value into memory, saves the
//! ones it borrows (`push eax; push ecx; lea ecx,[esp+0x48]; mov
//! [esp+0x28],ecx; pop ecx; pop eax`).
//!
//! A `push r` whose matching `pop r` is the next item of its block that
//! moves the stack pointer goes with that `pop` when the items between
//! neither read the pushed word (an `[esp+d]` operand with `d < 4`) nor
//! read `esp` otherwise than as the base of a memory operand (those
//! operands lose the 4 bytes the push had added):
//! - when nothing between writes `r`, as it is;
//! - else when a register `f` is free there (not used between, dead after
//!   the `pop`) and the first item between that writes `r` writes it
//!   whole without reading it: from that item on, `r` is renamed to `f`.
//!
//! The word below the stack pointer that the `push` wrote is then not
//! written; nothing reads memory below the stack pointer (docs: the
//! residual optimizer).

use iced_x86::{Code, FlowControl, Mnemonic, OpKind, Register};
use wiper_residual::{Item, Residual};

use crate::effects::{reg_bit, EffectsOf, Locs, ALL_REGS};
use crate::liveness::liveness;
use crate::scratch::renamed;

/// The register `item` pushes (`push r32`, not `esp`).
fn pushed(item: &Item) -> Option<Register> {
    match item {
        Item::Instr(ins, _)
            if ins.code() == Code::Push_r32 && ins.op0_register() != Register::ESP =>
        {
            Some(ins.op0_register())
        }
        _ => None,
    }
}

/// Whether `item` moves the stack pointer or transfers control.
fn moves_esp(item: &Item) -> bool {
    match item {
        Item::Instr(ins, _) => {
            let writes_esp = ins.op_count() > 0
                && ins.op0_kind() == OpKind::Register
                && ins.op0_register() == Register::ESP
                && !matches!(ins.mnemonic(), Mnemonic::Cmp | Mnemonic::Test);
            ins.stack_pointer_increment() != 0
                || ins.flow_control() != FlowControl::Next
                || writes_esp
        }
        Item::Address { .. } => false,
        Item::CallLabel(..) => true,
    }
}

/// `item` with its `[esp+d]` operand 4 bytes lower, when it reads `esp`
/// only as such a base with `d >= 4` (or not at all); `None` otherwise.
fn without_push(item: &Item) -> Option<Item> {
    let Item::Instr(ins, origin) = item else {
        return Some(item.clone());
    };
    let esp_register = (0..ins.op_count())
        .any(|k| ins.op_kind(k) == OpKind::Register && ins.op_register(k) == Register::ESP);
    if esp_register || ins.memory_index() == Register::ESP {
        return None;
    }
    if ins.memory_base() != Register::ESP {
        return Some(item.clone());
    }
    let d = ins.memory_displacement32() as i32;
    if d < 4 {
        return None;
    }
    let mut new = *ins;
    new.set_memory_displacement32((d - 4) as u32);
    Some(Item::Instr(new, *origin))
}

/// The items between a `push r` and its `pop r` rewritten without them,
/// renaming `r` to a free register if something between writes it; `None`
/// when that cannot be done (see the module docs).
fn rewritten(
    between: &[Item],
    r: Register,
    free_after: Locs,
    calc: &mut EffectsOf,
) -> Option<Vec<Item>> {
    let bit = reg_bit(r)?;
    let fx: Vec<_> = between.iter().map(|i| calc.item(i, None)).collect();
    let touched = fx.iter().fold(0, |acc, e| acc | e.uses | e.defs);
    let shifted: Option<Vec<Item>> = between.iter().map(without_push).collect();
    let shifted = shifted?;
    let Some(first) = fx.iter().position(|e| e.defs & bit != 0) else {
        return Some(shifted);
    };
    if fx[first].kills & bit == 0 || fx[first].uses & bit != 0 {
        return None;
    }
    let f = [
        Register::EAX,
        Register::ECX,
        Register::EDX,
        Register::EBX,
        Register::ESI,
        Register::EDI,
        Register::EBP,
    ]
    .into_iter()
    .find(|&f| f != r && reg_bit(f).is_some_and(|b| b & (touched | !free_after) == 0))?;
    let mut out = shifted[..first].to_vec();
    for item in &shifted[first..] {
        out.push(renamed(item, r, f)?);
    }
    Some(out)
}

/// Drops every `push`/`pop` pair around a few instructions that can go
/// (see the module documentation); returns how many.
pub fn drop_local_saves(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let live = liveness(residual, &calc.residual(residual));
    let mut dropped = 0;
    for (b, block) in residual.blocks.iter_mut().enumerate() {
        let mut i = 0;
        while i < block.items.len() {
            let Some(r) = pushed(&block.items[i]) else {
                i += 1;
                continue;
            };
            let Some(j) = (i + 1..block.items.len()).find(|&j| moves_esp(&block.items[j])) else {
                break;
            };
            let pops_r = matches!(&block.items[j], Item::Instr(ins, _)
                if ins.code() == Code::Pop_r32 && ins.op0_register() == r);
            let free_after = ALL_REGS & !live.live_out[b][j];
            let new = pops_r
                .then(|| rewritten(&block.items[i + 1..j], r, free_after, calc))
                .flatten();
            let Some(new) = new else {
                i += 1;
                continue;
            };
            block.items.splice(i..=j, new);
            dropped += 1;
            // (The liveness no longer matches the block's indices: the
            // next pair waits for the next run.)
            break;
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{function, listing};

    /// The specializer's store of a frame address, `eax` and `ecx` saved
    /// around it: the inner save of `ecx` goes first, `ecx` renamed to
    /// `eax` (restored by the outer `pop`, so free), then the save of
    /// `eax`, renamed to `ecx` (dead after); the operands lose the 4 bytes
    /// of each push. A save whose word is read (`mov esi, [esp]`) stays.
    #[test]
    fn saves_around_a_few_instructions_go() {
        let f = function(|a| {
            a.push(eax)?;
            a.push(ecx)?;
            a.lea(ecx, ptr(esp + 0x48))?;
            a.mov(dword_ptr(esp + 0x28), ecx)?;
            a.pop(ecx)?;
            a.pop(eax)?;
            a.mov(edx, 0)?;
            a.push(ebx)?;
            a.mov(esi, dword_ptr(esp))?;
            a.pop(ebx)?;
            a.mov(dword_ptr(esp + 4), esi)?;
            a.mov(esi, 0)?;
            a.ret()
        });
        let mut r = f;
        let mut calc = crate::effects::EffectsOf::for_residual(&r);
        while super::drop_local_saves(&mut r, &mut calc) > 0 {}
        insta::assert_snapshot!(listing(&r), @"
        L0:
          lea ecx,[esp+40h]
          mov [esp+20h],ecx
          mov edx,0
          push ebx
          mov esi,[esp]
          pop ebx
          mov [esp+4],esi
          mov esi,0
          ret
          exit
        ");
    }

    /// Near miss: `mov ecx,esp` copies the stack pointer, which the push
    /// had lowered by 4: the save stays.
    #[test]
    fn a_save_around_a_copy_of_the_stack_pointer_stays() {
        let f = function(|a| {
            a.push(eax)?;
            a.mov(ecx, esp)?;
            a.mov(dword_ptr(esi), ecx)?;
            a.pop(eax)?;
            a.mov(edx, 0)?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::drop_local_saves);
    }

    /// Near misses: the first write of the saved register between the
    /// pair reads the value saved (`lea ecx,[ecx+1]`), or writes only its
    /// low byte: a renamed register (`edx`, free after the `pop`) would
    /// not hold that value.
    #[test]
    fn a_save_whose_value_is_used_between_stays() {
        for f in [
            function(|a| {
                a.push(ecx)?;
                a.lea(ecx, ptr(ecx + 1))?;
                a.mov(dword_ptr(esi), ecx)?;
                a.pop(ecx)?;
                a.mov(edx, 0)?;
                a.ret()
            }),
            function(|a| {
                a.push(ecx)?;
                a.mov(cl, 1)?;
                a.mov(dword_ptr(esi), ecx)?;
                a.pop(ecx)?;
                a.mov(edx, 0)?;
                a.ret()
            }),
        ] {
            crate::testutil::assert_unchanged(f, super::drop_local_saves);
        }
    }

    /// Near miss: `ecx` is written between the pair, and the only register
    /// dead after the `pop` (`edx`, with `edx_dead_at_return`) is read and
    /// written between it (`add edx,ecx`, whose carry `adc` reads): renamed
    /// `edx`, `ecx` would clobber the addend.
    #[test]
    fn a_save_whose_only_free_register_is_updated_between_stays() {
        let mut f = function(|a| {
            a.push(ecx)?;
            a.mov(ecx, dword_ptr(esp + 8))?;
            a.add(edx, ecx)?;
            a.pop(ecx)?;
            a.adc(eax, 0)?;
            a.ret()
        });
        f.edx_dead_at_return = true;
        crate::testutil::assert_unchanged(f, super::drop_local_saves);
    }
}
