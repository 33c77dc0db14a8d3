//! Borrowed callee-saved registers: when frame slots that loops access are
//! still in memory after promotion (every free caller-saved register was
//! taken), a callee-saved register the residual never mentions is saved on
//! entry (`push r`) and restored before every `ret` (`pop r`), so that the
//! promotion can give it to a slot.
//!
//! The push moves the stack pointer 4 bytes down for the whole function:
//! the function's own frame moves with it, but the return address and the
//! arguments do not, so an explicit `[esp+d]` operand that reaches them
//! gets `d + 4`; stack-pointer moves (`lea esp,[esp+k]`, `add`/`sub esp`,
//! `push`, `pop`) are relative and stay. The rewrite needs the frame analysis to have succeeded: then no
//! frame address escapes, no code outside the residual runs, and every exit
//! is a `ret`.

use iced_x86::{Code, Instruction, Mnemonic, Register};
use wiper_residual::{Item, Residual};
use wiper_x86::abi::CALLEE_SAVED;
use wiper_x86::Reg;

use crate::cfg::{entry_glue_origin, is_jumped_to, prepend_to_entry};
use crate::effects::EffectsOf;
use crate::frame::Frame;
use crate::liveness::{block_index, successor_indices};

/// Saves a callee-saved register for `frame`'s slots if some slot accessed
/// in a loop could use it (`ebx` for a byte slot, any unused one for a
/// dword slot); returns whether it did. `frame` must be the analysis of
/// `residual` as it is, after promotion.
pub fn borrow_saved_register(residual: &mut Residual, frame: &Frame, calc: &mut EffectsOf) -> bool {
    let on_cycle = blocks_on_cycles(residual);
    let mut in_loop = vec![false; frame.slots.len()];
    for (b, slots) in frame.slot_of.iter().enumerate() {
        for s in slots.iter().flatten() {
            in_loop[*s] |= on_cycle[b];
        }
    }
    let unused = unused_callee_saved(residual, calc);
    let wanted = frame
        .slots
        .iter()
        .zip(&in_loop)
        .filter(|&(_, &looped)| looped)
        .find_map(|(slot, _)| {
            unused
                .iter()
                .copied()
                .find(|r| slot.size == 4 || r.low_byte().is_some())
        });
    let Some(reg) = wanted else { return false };
    save_around(residual, frame, reg.to_iced());
    true
}

/// The callee-saved registers no item of `residual` reads or writes, in
/// [`CALLEE_SAVED`] order (`ret` uses only `esp`).
fn unused_callee_saved(residual: &Residual, calc: &mut EffectsOf) -> Vec<Reg> {
    let mut used = Vec::new();
    for item in residual.blocks.iter().flat_map(|b| &b.items) {
        match item {
            Item::Instr(ins, _) => {
                let info = calc.factory().info(ins);
                used.extend(info.used_registers().iter().map(|u| u.register()));
                used.extend(info.used_memory().iter().map(|m| m.base()));
                used.extend(info.used_memory().iter().map(|m| m.index()));
            }
            Item::Address { reg, .. } => used.push(*reg),
            _ => {}
        }
    }
    CALLEE_SAVED
        .iter()
        .copied()
        .filter(|r| !used.iter().any(|u| u.full_register32() == r.to_iced()))
        .collect()
}

/// Pushes `reg` on entry, pops it before every `ret`, and moves every
/// explicit `[esp+d]` operand that reaches at or above the entry stack
/// pointer (the return address, the arguments) 4 bytes up. The function's
/// own frame moves down with the stack pointer: its operands stay.
fn save_around(residual: &mut Residual, frame: &Frame, reg: Register) {
    for (block, esps) in residual.blocks.iter_mut().zip(&frame.esp) {
        let mut items = Vec::with_capacity(block.items.len() + 1);
        for (k, item) in block.items.drain(..).enumerate() {
            if let Item::Instr(mut ins, origin) = item {
                if ins.mnemonic() == Mnemonic::Ret {
                    let pop = Instruction::with1(Code::Pop_r32, reg).expect("pop r32");
                    items.push(Item::Instr(pop, origin));
                } else if addresses_the_frame(&ins)
                    && esps
                        .get(k)
                        .is_some_and(|e| e.wrapping_add(ins.memory_displacement32() as i32) >= 0)
                {
                    let d = ins.memory_displacement32().wrapping_add(4);
                    ins.set_memory_displacement32(d);
                    ins.set_memory_displ_size(if (d as i32) == (d as i8 as i32) { 1 } else { 4 });
                }
                items.push(Item::Instr(ins, origin));
            } else {
                items.push(item);
            }
        }
        block.items = items;
    }
    let push = Instruction::with1(Code::Push_r32, reg).expect("push r32");
    let save = Item::Instr(push, entry_glue_origin(residual));
    match residual.entry {
        // Saves stack up at the top of an entry block nothing jumps back
        // to (where the promotion loads incoming values after them).
        Some(entry) if !is_jumped_to(residual, entry) => {
            let b = block_index(residual)[&entry];
            residual.blocks[b].items.insert(0, save);
        }
        _ => prepend_to_entry(residual, vec![save]),
    }
}

/// Whether `ins` has an explicit memory operand based on `esp` that reads
/// or writes memory (not `lea`, which only moves the stack pointer in a
/// residual whose frame analysis succeeded).
fn addresses_the_frame(ins: &Instruction) -> bool {
    crate::effects::memory_operand(ins).is_some()
        && ins.mnemonic() != Mnemonic::Lea
        && ins.memory_base() == Register::ESP
}

/// Per block (by index): whether it lies on a cycle of the residual's
/// control flow (Kosaraju's strongly connected components: a block is on a
/// cycle when its component has two blocks or more, or it jumps to itself).
fn blocks_on_cycles(residual: &Residual) -> Vec<bool> {
    let succ = successor_indices(residual);
    let n = succ.len();
    let mut pred = vec![Vec::new(); n];
    for (b, ss) in succ.iter().enumerate() {
        for &s in ss {
            pred[s].push(b);
        }
    }
    // Finishing order of a depth-first search over the successors.
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some(&mut (b, ref mut next)) = stack.last_mut() {
            if let Some(&s) = succ[b].get(*next) {
                *next += 1;
                if !seen[s] {
                    seen[s] = true;
                    stack.push((s, 0));
                }
            } else {
                order.push(b);
                stack.pop();
            }
        }
    }
    // Components over the predecessors, in reverse finishing order.
    let mut component = vec![usize::MAX; n];
    let mut size = Vec::new();
    for &root in order.iter().rev() {
        if component[root] != usize::MAX {
            continue;
        }
        let c = size.len();
        size.push(0usize);
        component[root] = c;
        let mut stack = vec![root];
        while let Some(b) = stack.pop() {
            size[c] += 1;
            for &p in &pred[b] {
                if component[p] == usize::MAX {
                    component[p] = c;
                    stack.push(p);
                }
            }
        }
    }
    (0..n)
        .map(|b| size[component[b]] > 1 || succ[b].contains(&b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{asm, block, branch, jump, listing, residual};
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode;
    use wiper_residual::Terminator;

    /// A loop that increments the byte at `[esp+1]` while `cl` counts
    /// down, then returns it plus the first argument; `setup` runs first.
    fn counting(
        setup: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
    ) -> Residual {
        residual(vec![
            block(
                0,
                asm(|a| {
                    a.sub(esp, 8)?;
                    a.mov(byte_ptr(esp + 1), 0)?;
                    setup(a)
                }),
                jump(1),
            ),
            block(
                1,
                asm(|a| {
                    a.inc(byte_ptr(esp + 1))?;
                    a.dec(cl)
                }),
                branch(ConditionCode::ne, 1, 2),
            ),
            block(
                2,
                asm(|a| {
                    a.movzx(eax, byte_ptr(esp + 1))?;
                    a.add(eax, dword_ptr(esp + 12))?;
                    a.add(esp, 8)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ])
    }

    fn borrowed(mut r: Residual) -> Option<String> {
        let frame = crate::frame::analyze(&r)?;
        borrow_saved_register(&mut r, &frame, &mut EffectsOf::new()).then(|| listing(&r))
    }

    #[test]
    fn a_byte_slot_in_a_loop_borrows_ebx() {
        let r = counting(|_| Ok(()));
        insta::assert_snapshot!(borrowed(r).unwrap(), @"
        L0:
          push ebx
          sub esp,8
          mov byte [esp+1],0
          jmp L1
        L1:
          inc byte [esp+1]
          dec cl
          jne L1 else L2
        L2:
          movzx eax,byte [esp+1]
          add eax,[esp+10h]
          add esp,8
          pop ebx
          ret
          exit
        ");
    }

    /// The loop may span blocks: L1 increments the byte and jumps to L3,
    /// which counts down and branches back to L1.
    #[test]
    fn a_byte_slot_in_a_loop_of_two_blocks_borrows_ebx() {
        let mut r = counting(|_| Ok(()));
        r.blocks[1] = block(1, asm(|a| a.inc(byte_ptr(esp + 1))), jump(3));
        r.blocks.push(block(
            3,
            asm(|a| a.dec(cl)),
            branch(ConditionCode::ne, 1, 2),
        ));
        let listing = borrowed(r).unwrap_or_default();
        assert!(listing.contains("push ebx"), "{listing}");
    }

    #[test]
    fn no_loop_or_no_free_register_borrows_nothing() {
        let straight = residual(vec![block(
            0,
            asm(|a| {
                a.sub(esp, 8)?;
                a.mov(byte_ptr(esp + 1), 0)?;
                a.inc(byte_ptr(esp + 1))?;
                a.movzx(eax, byte_ptr(esp + 1))?;
                a.add(esp, 8)?;
                a.ret()
            }),
            Terminator::Exit,
        )]);
        assert_eq!(borrowed(straight), None);
        assert_eq!(borrowed(counting(|a| a.mov(ebx, 1))), None);
    }

    /// The entry block is the loop: the save goes in a new block before
    /// it, not at its top (where every iteration would push again).
    #[test]
    fn a_loop_at_the_entry_is_saved_around_once() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.inc(byte_ptr(esp + 4))?;
                    a.dec(cl)
                }),
                branch(ConditionCode::ne, 0, 1),
            ),
            block(
                1,
                asm(|a| {
                    a.movzx(eax, byte_ptr(esp + 4))?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ]);
        insta::assert_snapshot!(borrowed(r).unwrap_or_default(), @"
        L2:
          push ebx
          jmp L0
        L0:
          inc byte [esp+8]
          dec cl
          jne L0 else L1
        L1:
          movzx eax,byte [esp+8]
          pop ebx
          ret
          exit
        ");
    }

    #[test]
    fn a_register_an_address_item_writes_is_not_borrowed() {
        let mut r = counting(|_| Ok(()));
        r.blocks[0].items.push(Item::Address {
            reg: iced_x86::Register::EBX,
            addr: 0x0804_9000,
            origin: wiper_residual::Origin::Materialized(0),
        });
        // (`ebx` is the only callee-saved register with a low byte.)
        assert_eq!(borrowed(r), None);
    }
}
