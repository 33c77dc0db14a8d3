//! Byte moves widened where the rest of the register is dead: `mov bl, 0`
//! becomes `mov ebx, 0`, `mov cl, dl` becomes `movzx ecx, dl` and `mov al,
//! [m]` becomes `movzx eax, BYTE PTR [m]` when nothing reads bits 8 to 31 of
//! the register before they are written whole.
//!
//! Liveness ([`crate::liveness`]) works on whole registers, and a byte
//! write keeps the rest of the register alive: `mov bl, 0` in a function
//! that saves `ebx` makes the caller's `ebx` look read after the save, so
//! the save cannot go ([`crate::pushed`]), and `mov cl, 0` before `movzx
//! ecx, bl` on another path stays. Widened, the write kills the whole
//! register. Neither `mov` nor `movzx` touches the flags, and the low byte
//! is the same; only bits nobody reads change.
//!
//! The upper bits' liveness is the ordinary backward analysis over
//! "upper-bit" locations: an item reads the upper bits of a register when
//! it reads the register at 16 or 32 bits (addresses included) or its
//! high byte (`ah`); a 32-bit write kills them; a write of the low byte,
//! of the high byte or of the low word leaves them as they were. Items
//! that leave (`ret`, jumps into the original code) read the upper bits of
//! every register they read whole (the callee-saved ones and the return
//! registers at `ret`).

use iced_x86::{Code, InstructionInfoFactory, OpAccess, OpKind, Register};
use wiper_residual::{Item, Residual};

use crate::effects::{reg_bit, Effects, EffectsOf, ALL_REGS};
use crate::liveness::liveness;

/// Widens every byte move whose register's upper bits are dead after it;
/// returns how many.
pub fn widen_byte_moves(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let mut factory = InstructionInfoFactory::new();
    let fx: Vec<Vec<Effects>> = residual
        .blocks
        .iter()
        .map(|b| {
            b.items
                .iter()
                .map(|item| upper_effects(item, calc, &mut factory))
                .collect()
        })
        .collect();
    let live = liveness(residual, &fx);
    let mut widened = 0;
    for (b, block) in residual.blocks.iter_mut().enumerate() {
        for (k, item) in block.items.iter_mut().enumerate() {
            let Item::Instr(ins, _) = item else { continue };
            let Some(wide) = widened_move(ins) else {
                continue;
            };
            let r = wide.op0_register();
            if live.live_out[b][k] & reg_bit(r).unwrap_or(!0) == 0 {
                *ins = wide;
                widened += 1;
            }
        }
    }
    widened
}

/// What `item` does to the upper bits (8 to 31) of registers, as
/// [`Effects`] over register bits: `uses` the registers whose upper bits
/// it reads, `kills` those it writes whole (as [`EffectsOf`] says).
fn upper_effects(
    item: &Item,
    calc: &mut EffectsOf,
    factory: &mut InstructionInfoFactory,
) -> Effects {
    let whole = calc.item(item, None);
    let Item::Instr(ins, _) = item else {
        // An address load writes a register whole; a call reads everything.
        return Effects {
            uses: whole.uses & ALL_REGS,
            kills: whole.kills & ALL_REGS,
            leaves: whole.leaves,
            ..Effects::default()
        };
    };
    if whole.leaves || whole.uses == !0 {
        return Effects {
            uses: whole.uses & ALL_REGS,
            leaves: whole.leaves,
            ..Effects::default()
        };
    }
    // (The whole-register analysis knows which writes are whole.)
    let mut fx = Effects {
        kills: whole.kills & ALL_REGS,
        ..Effects::default()
    };
    for used in factory.info(ins).used_registers() {
        let reg = used.register();
        let Some(bit) = reg_bit(reg.full_register32()) else {
            continue;
        };
        let low_byte = matches!(
            reg,
            Register::AL | Register::CL | Register::DL | Register::BL
        );
        match used.access() {
            OpAccess::Write | OpAccess::CondWrite | OpAccess::None => {}
            _ if low_byte => {}
            _ => fx.uses |= bit,
        }
    }
    fx
}

/// The widened form of a move into a low byte register (`al`, `cl`, `dl`,
/// `bl`): `mov r32, imm` or `movzx r32, src`; `None` for anything else.
fn widened_move(ins: &iced_x86::Instruction) -> Option<iced_x86::Instruction> {
    if ins.op0_kind() != OpKind::Register
        || !matches!(
            ins.op0_register(),
            Register::AL | Register::CL | Register::DL | Register::BL
        )
    {
        return None;
    }
    let r32 = ins.op0_register().full_register32();
    match ins.code() {
        Code::Mov_r8_imm8 | Code::Mov_rm8_imm8 => {
            iced_x86::Instruction::with2(Code::Mov_r32_imm32, r32, u32::from(ins.immediate8())).ok()
        }
        Code::Mov_r8_rm8 | Code::Mov_rm8_r8 => {
            let mut wide = *ins;
            wide.set_code(Code::Movzx_r32_rm8);
            wide.set_op0_register(r32);
            if ins.op1_kind() == OpKind::Register {
                wide.set_op1_register(ins.op1_register());
            }
            Some(wide)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// `bl` is set and stored, then `ebx` is restored whole: its upper
    /// bits are dead, and the move kills `ebx`; `cl`'s are dead too (`ecx`
    /// is scratch at `ret`), `al`'s are the return value's.
    #[test]
    fn byte_moves_whose_upper_bits_are_dead_are_widened() {
        let f = function(|a| {
            a.push(ebx)?;
            a.mov(bl, 0)?;
            a.mov(cl, byte_ptr(esp + 8))?;
            a.add(bl, cl)?;
            a.mov(byte_ptr(esp + 12), bl)?;
            a.mov(al, 7)?;
            a.pop(ebx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::widen_byte_moves), @"
        L0:
          push ebx
          mov ebx,0
          movzx ecx,byte [esp+8]
          add bl,cl
          mov [esp+0Ch],bl
          mov al,7
          pop ebx
          ret
          exit
        ");
    }

    /// Near misses: the upper bits are read later (`add ecx, 1`, an
    /// address through `edx`), the high byte is written (`mov ah, 1`), or
    /// the register is `ah` itself.
    #[test]
    fn byte_moves_whose_upper_bits_are_read_stay() {
        let f = function(|a| {
            a.mov(cl, 1)?;
            a.add(ecx, 1)?;
            a.mov(byte_ptr(esp + 4), cl)?;
            a.mov(dl, 8)?;
            a.mov(byte_ptr(edx), 0)?;
            a.mov(ah, 1)?;
            a.mov(byte_ptr(esp + 8), ah)?;
            a.mov(eax, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::widen_byte_moves), @"
        L0:
          mov cl,1
          add ecx,1
          mov [esp+4],cl
          mov dl,8
          mov byte [edx],0
          mov ah,1
          mov [esp+8],ah
          mov eax,0
          ret
          exit
        ");
    }
}
