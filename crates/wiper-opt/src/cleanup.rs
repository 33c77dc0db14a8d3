//! Register copy propagation and dead-code elimination.
//!
//! Copy propagation is local to a block: after `mov a, b` a read of `a`
//! (as a 32-bit register operand or an address register, but not one fixed
//! by the instruction's encoding) becomes a read of `b` until either is
//! written, and a move that becomes `mov b, b` goes. Dead-code elimination
//! removes items whose every written location is dead and that have no
//! other effect.

use iced_x86::{Code, Instruction, OpAccess, OpKind, Register};
use wiper_residual::{Item, Residual};

use crate::effects::{
    info32, is_fixed_register, is_pure, reg_bit, reg_of_bit, Effects, EffectsOf, ALL_FLAGS,
    ALL_REGS,
};
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

/// Removes dead items; returns whether anything changed. An item is dead
/// when nothing it writes is live after it with every item in place, so a
/// chain of items that only feed each other (`mov eax,edx; add eax,edx`
/// before `eax` is overwritten) goes one link per call: callers repeat it
/// until nothing changes, as the optimizer's clean-up rounds do. With
/// `slots`
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

/// The register part an instruction wholly writes as its only register
/// effect (`mov cl, 0` writes `cl`).
fn written_part(item: &Item, fx: &Effects) -> Option<Register> {
    let Item::Instr(ins, _) = item else {
        return None;
    };
    if ins.op_count() == 0 || ins.op0_kind() != OpKind::Register {
        return None;
    }
    let r = ins.op0_register();
    (reg_bit(r)? == fx.defs & ALL_REGS).then_some(r)
}

/// Whether `item` is a `mov` or `setcc` into `part` that reads nothing
/// else of `part`'s register (iced reports a byte write as a use of the
/// whole register, which it is for the other bytes).
fn moves_into_without_reading(item: &Item, part: Register) -> bool {
    let Item::Instr(ins, _) = item else {
        return false;
    };
    let full = part.full_register32();
    let other_reads = (1..ins.op_count()).any(|k| match ins.op_kind(k) {
        OpKind::Register => ins.op_register(k).full_register32() == full,
        OpKind::Memory => {
            ins.memory_base().full_register32() == full
                || ins.memory_index().full_register32() == full
        }
        _ => false,
    });
    (ins.mnemonic() == iced_x86::Mnemonic::Mov || crate::effects::is_setcc(ins)) && !other_reads
}

/// Removes writes of part of a register (a byte register) that the same
/// block writes again, before anything reads the register. Liveness works
/// on whole registers, where a byte write keeps the rest alive; here the
/// part is what matters. Returns whether anything changed.
pub fn eliminate_overwritten_parts(residual: &mut Residual, calc: &mut EffectsOf) -> bool {
    let fx = calc.residual(residual);
    let live = liveness(residual, &fx);
    let mut changed = false;
    for (b, block) in residual.blocks.iter_mut().enumerate() {
        let items = &block.items;
        let fx = &fx[b];
        let dead: Vec<bool> = (0..items.len())
            .map(|k| {
                let Some(part) = written_part(&items[k], &fx[k]) else {
                    return false;
                };
                if fx[k].side_effect || fx[k].defs & ALL_FLAGS & live.live_out[b][k] != 0 {
                    return false;
                }
                let bit = reg_bit(part).unwrap_or(0);
                let next = (k + 1..items.len()).find(|&j| (fx[j].uses | fx[j].defs) & bit != 0);
                next.is_some_and(|j| {
                    fx[j].uses & bit == 0 && fx[j].kills & bit != 0
                        || written_part(&items[j], &fx[j]) == Some(part)
                            && moves_into_without_reading(&items[j], part)
                })
            })
            .collect();
        if dead.contains(&true) {
            changed = true;
            let mut k = 0;
            block.items.retain(|_| {
                k += 1;
                !dead[k - 1]
            });
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// Copy propagation only.
    fn copies(r: wiper_residual::Residual) -> String {
        after(r, super::propagate_copies)
    }

    /// Dead-code elimination only.
    fn dead(r: wiper_residual::Residual) -> String {
        after(r, |r, c| super::eliminate_dead(r, c, None))
    }

    #[test]
    fn a_copy_is_read_through_its_source() {
        let f = function(|a| {
            a.mov(ecx, ebx)?;
            a.add(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(copies(f), @"
        L0:
          mov ecx,ebx
          add eax,ebx
          ret
          exit
        ");
    }

    /// An instruction that reads no register and writes neither the copy
    /// nor its source (`mov edx,5`) keeps the copy: `add eax,ecx` after it
    /// still reads `ebx`.
    #[test]
    fn a_copy_survives_writes_of_other_registers() {
        let f = function(|a| {
            a.mov(ecx, ebx)?;
            a.mov(edx, 5)?;
            a.add(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(copies(f), @"
        L0:
          mov ecx,ebx
          mov edx,5
          add eax,ebx
          ret
          exit
        ");
    }

    /// The clean-up loop runs again only on what a pass reports: a read
    /// made through a copy's source is a change, a block with no copy to
    /// propagate is not.
    #[test]
    fn copy_propagation_reports_its_changes() {
        let report = |f: wiper_residual::Residual| {
            let mut r = f;
            let mut calc = crate::effects::EffectsOf::for_residual(&r);
            super::propagate_copies(&mut r, &mut calc)
        };
        let read_through = function(|a| {
            a.mov(ecx, ebx)?;
            a.add(eax, ecx)?;
            a.ret()
        });
        let nothing = function(|a| {
            a.mov(ecx, ebx)?;
            a.inc(ebx)?;
            a.add(eax, ecx)?;
            a.ret()
        });
        assert!(report(read_through));
        assert!(!report(nothing));
    }

    /// Near miss: the source changes (wholly, or one byte of it) before
    /// the copy is read.
    #[test]
    fn a_copy_whose_source_changed_is_read_itself() {
        let f = function(|a| {
            a.mov(ecx, ebx)?;
            a.inc(ebx)?;
            a.add(eax, ecx)?;
            a.mov(edx, ebx)?;
            a.mov(bl, 1)?;
            a.add(esi, edx)?;
            a.ret()
        });
        insta::assert_snapshot!(copies(f), @"
        L0:
          mov ecx,ebx
          inc ebx
          add eax,ecx
          mov edx,ebx
          mov bl,1
          add esi,edx
          ret
          exit
        ");
    }

    #[test]
    fn a_write_nothing_reads_goes() {
        let f = function(|a| {
            a.add(ecx, eax)?;
            a.mov(eax, 1)?;
            a.ret()
        });
        insta::assert_snapshot!(dead(f), @"
        L0:
          mov eax,1
          ret
          exit
        ");
    }

    /// Near misses: the dead `ecx` write's carry is read; a store to
    /// global memory is seen by the caller.
    #[test]
    fn a_write_whose_flags_are_read_and_a_store_stay() {
        let f = function(|a| {
            a.add(ecx, eax)?;
            a.adc(edx, 0)?;
            a.mov(dword_ptr(0x3000_0010u32), eax)?;
            a.ret()
        });
        insta::assert_snapshot!(dead(f), @"
        L0:
          add ecx,eax
          adc edx,0
          mov [30000010h],eax
          ret
          exit
        ");
    }

    #[test]
    fn a_byte_written_again_before_any_read_goes() {
        let f = function(|a| {
            a.mov(al, 1)?;
            a.mov(al, 2)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::eliminate_overwritten_parts), @"
        L0:
          mov al,2
          ret
          exit
        ");
    }

    /// Near misses: `ah` is another byte of `eax` (the pass keeps what
    /// comes before it), and `add cl,2` reads `cl` (it goes itself: `mov
    /// cl,5` overwrites what it wrote).
    #[test]
    fn a_byte_read_or_written_elsewhere_stays() {
        let f = function(|a| {
            a.mov(al, 1)?;
            a.mov(ah, 2)?;
            a.mov(al, 3)?;
            a.mov(cl, 4)?;
            a.add(cl, 2)?;
            a.mov(cl, 5)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::eliminate_overwritten_parts), @"
        L0:
          mov al,1
          mov ah,2
          mov al,3
          mov cl,4
          mov cl,5
          ret
          exit
        ");
    }

    /// Near miss: `mov al,al` reads the byte it writes, so the `mov al,1`
    /// before it is not overwritten unread.
    #[test]
    fn a_byte_moved_onto_itself_keeps_its_write() {
        let f = function(|a| {
            a.mov(al, 1)?;
            a.mov(al, al)?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::eliminate_overwritten_parts);
    }

    /// A copy read as an address register reads its source; a move back
    /// into the source becomes `mov ebx,ebx`, which goes.
    #[test]
    fn a_copy_is_read_through_its_source_in_addresses_and_moves() {
        let f = function(|a| {
            a.mov(ecx, ebx)?;
            a.mov(eax, dword_ptr(ecx + 4))?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(copies(f), @"
        L0:
          mov ecx,ebx
          mov eax,[ebx+4]
          ret
          exit
        ");
    }

    /// Near miss: `test eax,imm32` has a short form whose `eax` is fixed
    /// by its code, so it is not renamed.
    #[test]
    fn a_copy_in_a_fixed_register_operand_is_read_itself() {
        let f = function(|a| {
            a.mov(eax, ebx)?;
            a.test(eax, 0x100)?;
            a.ret()
        });
        insta::assert_snapshot!(copies(f), @"
        L0:
          mov eax,ebx
          test eax,100h
          ret
          exit
        ");
    }

    /// Dead-code elimination with the frame's slots: the store to a slot
    /// that nothing reads goes.
    #[test]
    fn a_store_to_a_dead_slot_goes() {
        let f = function(|a| {
            a.lea(esp, ptr(esp - 4))?;
            a.mov(dword_ptr(esp), eax)?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, |r, c| {
            let frame = crate::frame::analyze(r).expect("a frame");
            super::eliminate_dead(r, c, Some(&frame.slot_of))
        }), @"
        L0:
          lea esp,[esp-4]
          lea esp,[esp+4]
          ret
          exit
        ");
    }

    /// Near miss: without the slots the store is a store to memory, which
    /// stays.
    #[test]
    fn a_store_to_memory_stays() {
        let f = function(|a| {
            a.lea(esp, ptr(esp - 4))?;
            a.mov(dword_ptr(esp), eax)?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        insta::assert_snapshot!(dead(f), @"
        L0:
          lea esp,[esp-4]
          mov [esp],eax
          lea esp,[esp+4]
          ret
          exit
        ");
    }

    /// A chain of writes that only feed each other goes one link per
    /// call (first the last `xor`, which `mov ecx,0` overwrites), and all
    /// of it when the calls repeat until nothing changes.
    #[test]
    fn a_dead_chain_goes_one_link_per_call() {
        let f = function(|a| {
            a.mov(ecx, edx)?;
            for _ in 0..3 {
                a.xor(ecx, eax)?;
            }
            a.mov(ecx, 0)?;
            a.mov(esi, ecx)?;
            a.ret()
        });
        let all = after(f.clone(), |r, c| while super::eliminate_dead(r, c, None) {});
        insta::assert_snapshot!(dead(f) + &all, @"
        L0:
          mov ecx,edx
          xor ecx,eax
          xor ecx,eax
          mov ecx,0
          mov esi,ecx
          ret
          exit
        L0:
          mov ecx,0
          mov esi,ecx
          ret
          exit
        ");
    }

    /// Near miss: the chain's last value is read (by `mov esi,ecx`), so
    /// every link stays.
    #[test]
    fn a_chain_whose_end_is_read_stays() {
        let f = function(|a| {
            a.mov(ecx, edx)?;
            for _ in 0..3 {
                a.xor(ecx, eax)?;
            }
            a.mov(esi, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(dead(f), @"
        L0:
          mov ecx,edx
          xor ecx,eax
          xor ecx,eax
          xor ecx,eax
          mov esi,ecx
          ret
          exit
        ");
    }
}
