//! Pointer increments folded into displacements: within a block, `add
//! r,imm` (or `sub`, `inc`, `dec`, `lea r,[r+d]`) with dead flags is held
//! back as a pending offset of `r`; memory operands based on `r` take the
//! offset into their displacement, and `r` itself gets it (by `lea`, which
//! keeps the flags) only before something else reads it, at the block's
//! end if it is live there, or never if it is overwritten. An unrolled
//! walk over an array (`add edx,[eax]; add eax,4` n times) becomes loads
//! at fixed displacements.

use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};
use wiper_residual::{Item, Origin, Residual};
use wiper_x86::Reg;

use crate::effects::{
    constant_step, displacement_size, reg_of_bit, Effects, EffectsOf, ALL_FLAGS, ARITHMETIC,
};
use crate::liveness::liveness;

/// The 32-bit register an instruction adds a constant to, and the
/// constant: `add`/`sub r,imm`, `inc`, `dec`, `lea r,[r+d]`.
fn increment(ins: &Instruction) -> Option<(Register, u32)> {
    constant_step(ins).filter(|(r, _)| r.is_gpr32())
}

/// `lea r, [r + k]`.
fn lea(r: Register, k: u32) -> Instruction {
    let m = iced_x86::MemoryOperand::with_base_displ(r, k as i32 as i64);
    Instruction::with2(Code::Lea_r32_m, r, m).expect("lea r32, [r32+disp] is encodable")
}

/// Whether `ins` reads `r` only to form its memory operand's address.
fn only_addresses(ins: &Instruction, r: Register) -> bool {
    // Two or more operands: the arithmetic's forms without implicit ones.
    let m = ins.mnemonic();
    (ARITHMETIC.contains(&m) || matches!(m, Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Lea))
        && ins.op_count() >= 2
        && (ins.memory_base() == r || ins.memory_index() == r)
        && (0..ins.op_count()).all(|k| {
            ins.op_kind(k) != OpKind::Register || ins.op_register(k).full_register32() != r
        })
}

/// What to do with a pending offset of register `r` (bit `bit`) at an
/// item with effects `e`.
enum Settle {
    /// The item does not touch `r`.
    Keep,
    /// The item overwrites `r` without reading it.
    Drop,
    /// The item reads `r` only in its address: shift the displacement (and
    /// drop the offset if it also overwrites `r`).
    Shift { then_drop: bool },
    /// `r` must get its offset first.
    Materialize,
}

/// How an item settles a pending offset of `r`.
fn settle(item: &Item, e: &Effects, r: Register, bit: u128) -> Settle {
    let (uses, kills) = (e.uses & bit != 0, e.kills & bit != 0);
    if e.leaves || e.uses == !0 {
        return Settle::Materialize;
    }
    if !uses && e.defs & bit == 0 {
        return Settle::Keep;
    }
    if kills && !uses {
        return Settle::Drop;
    }
    match item {
        Item::Instr(ins, _) if only_addresses(ins, r) && (kills || e.defs & bit == 0) => {
            Settle::Shift { then_drop: kills }
        }
        _ => Settle::Materialize,
    }
}

/// Folds pending increments (see the module docs); returns whether
/// anything changed. A block changes only when it gets shorter.
pub fn fold_offsets(residual: &mut Residual, calc: &mut EffectsOf) -> bool {
    let fx = calc.residual(residual);
    let live = liveness(residual, &fx);
    let mut changed = false;
    for (b, block) in residual.blocks.iter_mut().enumerate() {
        let mut keep: Vec<Item> = Vec::with_capacity(block.items.len());
        // Pending offsets by register index, with the origin of the first
        // increment held back.
        let mut pending: [Option<(u32, Origin)>; 8] = [None; 8];
        for (k, item) in block.items.iter().enumerate() {
            let e = fx[b][k];
            if let Item::Instr(ins, origin) = item {
                let flags_dead = e.defs & ALL_FLAGS & live.live_out[b][k] == 0;
                if let Some((r, add)) = increment(ins).filter(|_| flags_dead && !e.side_effect) {
                    let i = Reg::from_iced(r).expect("a 32-bit register").index();
                    let (old, o) = pending[i].unwrap_or((0, *origin));
                    pending[i] = Some((old.wrapping_add(add), o));
                    continue;
                }
            }
            let mut item = item.clone();
            for (i, slot) in pending.iter_mut().enumerate() {
                let Some((off, o)) = *slot else { continue };
                let r = reg_of_bit(i as u32);
                match settle(&item, &e, r, 1 << i) {
                    Settle::Keep => {}
                    Settle::Drop => *slot = None,
                    Settle::Shift { then_drop } => {
                        if let Item::Instr(ins, _) = &mut item {
                            let times = u32::from(ins.memory_base() == r)
                                + if ins.memory_index() == r {
                                    ins.memory_index_scale()
                                } else {
                                    0
                                };
                            let d = ins
                                .memory_displacement32()
                                .wrapping_add(off.wrapping_mul(times));
                            ins.set_memory_displacement32(d);
                            ins.set_memory_displ_size(displacement_size(d as i32));
                        }
                        if then_drop {
                            *slot = None;
                        }
                    }
                    Settle::Materialize => {
                        if off != 0 {
                            keep.push(Item::Instr(lea(r, off), o));
                        }
                        *slot = None;
                    }
                }
            }
            keep.push(item);
        }
        let live_at_end = live.live_out[b].last().copied().unwrap_or(!0);
        for (i, slot) in pending.iter().enumerate() {
            if let Some((off, o)) = *slot {
                if live_at_end & (1 << i) != 0 && off != 0 {
                    keep.push(Item::Instr(lea(reg_of_bit(i as u32), off), o));
                }
            }
        }
        if keep.len() < block.items.len() {
            block.items = keep;
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, function, jump, residual};

    /// Increments of `eax` move into the displacements; `eax`, live at
    /// `ret`, gets their sum once at the end.
    #[test]
    fn increments_fold_into_displacements() {
        let f = function(|a| {
            a.mov(edx, dword_ptr(eax))?;
            a.add(eax, 4)?;
            a.add(edx, dword_ptr(eax))?;
            a.add(eax, 4)?;
            a.add(edx, dword_ptr(eax))?;
            a.add(eax, 4)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_offsets), @"
        L0:
          mov edx,[eax]
          add edx,[eax+4]
          add edx,[eax+8]
          lea eax,[eax+0Ch]
          ret
          exit
        ");
    }

    /// Near misses: `adc` reads the carry of an increment, and `mov
    /// ecx,esi` reads the incremented `esi` itself.
    #[test]
    fn increments_whose_flags_or_value_are_read_stay() {
        let f = function(|a| {
            a.add(eax, 4)?;
            a.adc(edx, dword_ptr(eax))?;
            a.inc(esi)?;
            a.mov(ecx, esi)?;
            a.add(edx, dword_ptr(esi))?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_offsets), @"
        L0:
          add eax,4
          adc edx,[eax]
          inc esi
          mov ecx,esi
          add edx,[esi]
          ret
          exit
        ");
    }

    /// `ecx` is dead where the block ends (the next one overwrites it):
    /// its increments only move into the displacements, and no `lea` adds
    /// their sum.
    #[test]
    fn increments_of_a_register_dead_at_the_end_vanish() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.mov(edx, dword_ptr(ecx))?;
                    a.add(ecx, 4)?;
                    a.add(edx, dword_ptr(ecx))?;
                    a.add(ecx, 4)
                }),
                jump(1),
            ),
            block(
                1,
                asm(|a| {
                    a.mov(ecx, 0)?;
                    a.mov(eax, edx)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ]);
        insta::assert_snapshot!(after(r, super::fold_offsets), @"
        L0:
          mov edx,[ecx]
          add edx,[ecx+4]
          jmp L1
        L1:
          mov ecx,0
          mov eax,edx
          ret
          exit
        ");
    }

    /// `eax` is overwritten after the load: its increment only moves into
    /// the displacement.
    #[test]
    fn an_increment_of_an_overwritten_register_only_moves() {
        let f = function(|a| {
            a.add(eax, 4)?;
            a.mov(edx, dword_ptr(eax))?;
            a.mov(eax, ebx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_offsets), @"
        L0:
          mov edx,[eax+4]
          mov eax,ebx
          ret
          exit
        ");
    }

    /// Near misses: `cdq` and `xlatb` read `eax` and `ebx` without naming
    /// them: the offsets folded into the loads before them are added
    /// before them, not moved past them.
    #[test]
    fn a_pending_offset_is_added_before_an_implicit_read() {
        let f = function(|a| {
            a.add(eax, 4)?;
            a.mov(edx, dword_ptr(eax))?;
            a.add(eax, 4)?;
            a.mov(ecx, dword_ptr(eax))?;
            a.cdq()?;
            a.add(ebx, 1)?;
            a.mov(ecx, dword_ptr(ebx))?;
            a.add(ebx, 1)?;
            a.mov(edi, dword_ptr(ebx))?;
            a.xlatb()?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_offsets), @"
        L0:
          mov edx,[eax+4]
          mov ecx,[eax+8]
          lea eax,[eax+8]
          cdq
          mov ecx,[ebx+1]
          mov edi,[ebx+2]
          lea ebx,[ebx+2]
          xlatb
          ret
          exit
        ");
    }

    /// Near miss: `mov [eax],eax` addresses through `eax` but also stores
    /// its value, which must hold the pending offset: `eax` gets it first.
    #[test]
    fn a_register_stored_through_itself_gets_its_offset_first() {
        let f = function(|a| {
            a.add(eax, 4)?;
            a.mov(edx, dword_ptr(eax))?;
            a.add(eax, 4)?;
            a.mov(dword_ptr(eax), eax)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_offsets), @"
        L0:
          mov edx,[eax+4]
          lea eax,[eax+8]
          mov [eax],eax
          ret
          exit
        ");
    }

    /// `mov ecx,esi` reads `esi`: it gets the pending offset by one `lea`
    /// just before.
    #[test]
    fn a_pending_offset_is_added_before_a_read() {
        let f = function(|a| {
            a.add(esi, 4)?;
            a.add(edx, dword_ptr(esi))?;
            a.add(esi, 4)?;
            a.add(edx, dword_ptr(esi))?;
            a.mov(ecx, esi)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_offsets), @"
        L0:
          add edx,[esi+4]
          add edx,[esi+8]
          lea esi,[esi+8]
          mov ecx,esi
          ret
          exit
        ");
    }
}
