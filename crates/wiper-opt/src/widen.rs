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
//! Byte arithmetic between low byte registers and immediates (`add dl,
//! cl`, `sub al, 3`, `neg bl`, `shl cl, 2`, with `and`, `or`, `xor`,
//! `inc`, `dec`, `not`) is widened the same way when the flags it sets are
//! dead too: the low byte of `add edx, ecx` is `dl + cl` whatever bits 8
//! to 31 held, so the upper bits it reads only reach upper bits nobody
//! reads. Widened, `mov edx, 0; add dl, cl; add dl, cl` is affine
//! arithmetic on whole registers ([`crate::affine`]).
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

use crate::effects::{reg_bit, Effects, EffectsOf, ALL_FLAGS, ALL_REGS};
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
    let whole_fx = calc.residual(residual);
    let whole = liveness(residual, &whole_fx);
    let mut widened = 0;
    for (b, block) in residual.blocks.iter_mut().enumerate() {
        for (k, item) in block.items.iter_mut().enumerate() {
            let Item::Instr(ins, _) = item else { continue };
            let flags_dead = whole.live_out[b][k] & ALL_FLAGS == 0;
            let Some(wide) =
                widened_move(ins).or_else(|| flags_dead.then(|| widened_arithmetic(ins)).flatten())
            else {
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

/// Whether `r` is a low byte register (`al`, `cl`, `dl`, `bl`).
fn is_low_byte(r: Register) -> bool {
    matches!(r, Register::AL | Register::CL | Register::DL | Register::BL)
}

/// The 32-bit form of byte arithmetic on a low byte register whose low
/// byte is the same whatever the upper bits of its operands hold: `add`,
/// `sub`, `and`, `or`, `xor` with a low byte register or an immediate,
/// `inc`, `dec`, `neg`, `not`, and `shl` by an immediate or 1; `None` for
/// anything else (a memory operand, `ah`, a right shift).
fn widened_arithmetic(ins: &iced_x86::Instruction) -> Option<iced_x86::Instruction> {
    use iced_x86::Instruction as I;
    if ins.op0_kind() != OpKind::Register || !is_low_byte(ins.op0_register()) {
        return None;
    }
    let r32 = ins.op0_register().full_register32();
    let binary = |reg: Code, imm: Code| -> Option<I> {
        match ins.op1_kind() {
            OpKind::Register if is_low_byte(ins.op1_register()) => {
                I::with2(reg, r32, ins.op1_register().full_register32()).ok()
            }
            OpKind::Immediate8 => I::with2(imm, r32, i32::from(ins.immediate8() as i8)).ok(),
            _ => None,
        }
    };
    match ins.code() {
        Code::Add_r8_rm8 | Code::Add_rm8_r8 | Code::Add_rm8_imm8 | Code::Add_AL_imm8 => {
            binary(Code::Add_r32_rm32, Code::Add_rm32_imm8)
        }
        Code::Sub_r8_rm8 | Code::Sub_rm8_r8 | Code::Sub_rm8_imm8 | Code::Sub_AL_imm8 => {
            binary(Code::Sub_r32_rm32, Code::Sub_rm32_imm8)
        }
        Code::And_r8_rm8 | Code::And_rm8_r8 | Code::And_rm8_imm8 | Code::And_AL_imm8 => {
            binary(Code::And_r32_rm32, Code::And_rm32_imm8)
        }
        Code::Or_r8_rm8 | Code::Or_rm8_r8 | Code::Or_rm8_imm8 | Code::Or_AL_imm8 => {
            binary(Code::Or_r32_rm32, Code::Or_rm32_imm8)
        }
        Code::Xor_r8_rm8 | Code::Xor_rm8_r8 | Code::Xor_rm8_imm8 | Code::Xor_AL_imm8 => {
            binary(Code::Xor_r32_rm32, Code::Xor_rm32_imm8)
        }
        Code::Shl_rm8_imm8 => I::with2(Code::Shl_rm32_imm8, r32, u32::from(ins.immediate8())).ok(),
        Code::Shl_rm8_1 => I::with2(Code::Shl_rm32_1, r32, 1u32).ok(),
        Code::Inc_rm8 => I::with1(Code::Inc_rm32, r32).ok(),
        Code::Dec_rm8 => I::with1(Code::Dec_rm32, r32).ok(),
        Code::Neg_rm8 => I::with1(Code::Neg_rm32, r32).ok(),
        Code::Not_rm8 => I::with1(Code::Not_rm32, r32).ok(),
        _ => None,
    }
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
        let low_byte = is_low_byte(reg);
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
    if ins.op0_kind() != OpKind::Register || !is_low_byte(ins.op0_register()) {
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

    /// `bl` is set, added to and stored, then `ebx` is restored whole:
    /// its upper bits are dead, and the move kills `ebx` (the `add`, whose
    /// flags are dead, writes it whole too); `cl`'s are dead too (`ecx`
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
          add ebx,ecx
          mov [esp+0Ch],bl
          mov al,7
          pop ebx
          ret
          exit
        ");
    }

    /// Each widened instruction is counted: `mov bl,0`, `mov cl,[esp+8]`
    /// and `add bl,cl` of the function above (not `mov al,7`).
    #[test]
    fn widened_byte_moves_are_counted() {
        let mut f = function(|a| {
            a.push(ebx)?;
            a.mov(bl, 0)?;
            a.mov(cl, byte_ptr(esp + 8))?;
            a.add(bl, cl)?;
            a.mov(byte_ptr(esp + 12), bl)?;
            a.mov(al, 7)?;
            a.pop(ebx)?;
            a.ret()
        });
        let mut calc = crate::effects::EffectsOf::for_residual(&f);
        assert_eq!(super::widen_byte_moves(&mut f, &mut calc), 3);
    }

    /// An address load (`Item::Address`) writes `ecx` whole, so the upper
    /// bits of `cl` are dead before it, though `mov eax, ecx` reads `ecx`
    /// whole after it.
    #[test]
    fn an_address_load_kills_the_upper_bits() {
        use wiper_residual::{Item, Origin};
        let mut f = function(|a| {
            a.mov(cl, 1)?;
            a.mov(byte_ptr(esi), cl)?;
            a.mov(eax, ecx)?;
            a.ret()
        });
        let address = Item::Address {
            reg: iced_x86::Register::ECX,
            addr: 0x0804_a000,
            origin: Origin::Original(0),
        };
        f.blocks[0].items.insert(2, address);
        let out = after(f, super::widen_byte_moves);
        assert!(out.starts_with("L0:\n  mov ecx,1\n"), "{out}");
    }

    /// Near miss: a call of a clone (`CallLabel`) may read every register
    /// whole, so `cl`'s upper bits are live at it.
    #[test]
    fn a_byte_move_before_a_clone_call_stays() {
        use crate::testutil::{asm, block, residual};
        use wiper_residual::{Item, Label, Origin, Terminator};
        let mut entry = block(
            0,
            asm(|a| {
                a.mov(cl, 1)?;
                a.ret()
            }),
            Terminator::Exit,
        );
        entry
            .items
            .insert(1, Item::CallLabel(Label(1), Origin::Original(0)));
        let clone = block(1, asm(|a| a.ret()), Terminator::Exit);
        crate::testutil::assert_unchanged(residual(vec![entry, clone]), super::widen_byte_moves);
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

    /// Byte arithmetic whose result's upper bits are dead is widened
    /// unless it reads memory (`add cl, [esp+4]`), a high byte (`sub dl,
    /// ah`), shifts right (`shr bl, 1`) or its flags are read (`add al,
    /// 1` before `setc`); `xor bl, dl` stays because `ret` reads `ebx`
    /// whole.
    #[test]
    fn byte_arithmetic_widens_only_where_the_low_byte_is_all_that_counts() {
        let f = function(|a| {
            a.mov(ecx, 0)?;
            a.add(cl, byte_ptr(esp + 4))?;
            a.sub(dl, ah)?;
            a.neg(dl)?;
            a.shl(dl, 2)?;
            a.shr(bl, 1)?;
            a.xor(bl, dl)?;
            a.mov(byte_ptr(esp + 8), cl)?;
            a.mov(byte_ptr(esp + 12), dl)?;
            a.mov(byte_ptr(esp + 16), bl)?;
            a.add(al, 1)?;
            a.setc(byte_ptr(esp + 20))?;
            a.mov(eax, 0)?;
            a.mov(edx, 0)?;
            a.mov(ecx, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::widen_byte_moves), @"
        L0:
          mov ecx,0
          add cl,[esp+4]
          sub dl,ah
          neg edx
          shl edx,2
          shr bl,1
          xor bl,dl
          mov [esp+8],cl
          mov [esp+0Ch],dl
          mov [esp+10h],bl
          add al,1
          setb [esp+14h]
          mov eax,0
          mov edx,0
          mov ecx,0
          ret
          exit
        ");
    }

    /// Every byte operation the pass knows widens on a register whose
    /// upper bits and flags are dead.
    #[test]
    fn each_widened_operation_keeps_its_operator() {
        let f = function(|a| {
            a.mov(dl, byte_ptr(esp + 4))?;
            a.inc(dl)?;
            a.dec(dl)?;
            a.not(dl)?;
            a.shl(dl, 1)?;
            a.and(dl, 0x7e)?;
            a.or(dl, cl)?;
            a.xor(dl, 0x11)?;
            a.sub(dl, cl)?;
            a.mov(byte_ptr(esp + 8), dl)?;
            a.mov(edx, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::widen_byte_moves), @"
        L0:
          movzx edx,byte [esp+4]
          inc edx
          dec edx
          not edx
          shl edx,1
          and edx,7Eh
          or edx,ecx
          xor edx,11h
          sub edx,ecx
          mov [esp+8],dl
          mov edx,0
          ret
          exit
        ");
    }

    /// Near miss: an address load (`Item::Address`) writes only its own
    /// register whole; the upper bits of `eax` it leaves alone are read at
    /// `ret`, so `mov al,bl` before it stays a byte move.
    #[test]
    fn an_address_load_keeps_the_upper_bits_of_other_registers() {
        use wiper_residual::{Item, Origin};
        let mut f = function(|a| {
            a.mov(al, bl)?;
            a.ret()
        });
        let address = Item::Address {
            reg: iced_x86::Register::ECX,
            addr: 0x0804_a000,
            origin: Origin::Original(0),
        };
        f.blocks[0].items.insert(1, address);
        let out = after(f, super::widen_byte_moves);
        assert!(out.starts_with("L0:\n  mov al,bl\n"), "{out}");
    }
}
