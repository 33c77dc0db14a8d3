//! Code sinking: an instruction that only writes one register, read on
//! one path out of its block alone, moves to the start of that path's
//! block when that block has no other way in.
//!
//! The specializer writes a value where it became known, often before a
//! branch whose other arm never reads it: a Brainfuck interpreter's
//! `mov edx, 0` (the next cell, cleared) ahead of the test of the current
//! cell, read only when the loop `[->++<]` runs. Sunk, the value is not
//! computed on the paths that do not need it, and it meets the code that
//! uses it, so `mov edx, 0; add edx, ecx; add edx, ecx` becomes one
//! `lea` ([`crate::affine`]).
//!
//! An item moves when it has no side effect (no memory access, no stack
//! pointer write, no control transfer), writes one register and no flag,
//! and no later item of its block reads or writes that register or
//! writes anything it reads. A load of a stack word (`mov r, [esp+d]`, an
//! argument or a saved value) moves too when no later item of its block
//! may store to memory, move `esp` or transfer control (loads, compares
//! and tests of memory may come between), and the target block is
//! entered with the same `esp`.
//!
//! The item then goes to the start of each successor where the register
//! is live (a stack load copies into both arms when both read it: the
//! register it held across the branch is then free there, often a saved
//! one whose `push` and `pop` can go; anything else moves only when one
//! arm alone reads it), when every such
//! successor is not the block itself and has no other predecessor (no
//! other branch, no call, not the entry). Items move from the end of a
//! block backwards, each in front of those moved before it, so their
//! order is kept. No path runs more instructions than before; a value
//! both arms read is one more instruction of code.

use iced_x86::{Code, FlowControl, OpAccess, OpKind, Register};
use wiper_residual::{Item, Label, Residual};

use crate::effects::{info32, Effects, EffectsOf, Locs, ALL_REGS};
use crate::liveness::{block_index, liveness, successor_indices};

/// Sinks what can sink (see the module documentation), a few rounds so
/// that items move on through chains of blocks; returns how many moves.
pub fn sink(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let mut moved = 0;
    for _ in 0..4 {
        let round = sink_round(residual, calc);
        if round == 0 {
            break;
        }
        moved += round;
    }
    moved
}

/// How many ways into each block (by index): branches and jumps to it,
/// calls of it, and the entry.
pub(crate) fn predecessor_counts(residual: &Residual) -> Vec<usize> {
    let index = block_index(residual);
    let mut count = vec![0; residual.blocks.len()];
    let mut add = |l: &Label| {
        if let Some(&i) = index.get(l) {
            count[i] += 1;
        }
    };
    for block in &residual.blocks {
        block.successors().iter().for_each(&mut add);
    }
    if let Some(entry) = &residual.entry {
        add(entry);
    }
    count
}

/// The one register bit an item writes, when it is a candidate to sink:
/// no side effect but a load of a stack word (`mov r, [esp+d]`), no flag
/// or slot written, exactly one register. The second value says whether
/// it is such a load, which may only move past items without side
/// effects (no store, no change of `esp`).
fn sinkable_def(item: &Item, fx: &Effects) -> Option<(Locs, bool)> {
    let defs = fx.defs;
    if fx.leaves || defs & !ALL_REGS != 0 || defs.count_ones() != 1 {
        return None;
    }
    if !fx.side_effect {
        return Some((defs, false));
    }
    let Item::Instr(ins, _) = item else {
        return None;
    };
    let stack_load = ins.code() == Code::Mov_r32_rm32
        && ins.op1_kind() == OpKind::Memory
        && ins.memory_base() == Register::ESP
        && ins.memory_index() == Register::None
        && ins.segment_prefix() == Register::None;
    stack_load.then_some((defs, true))
}

/// Whether `item` may write memory or the stack pointer, or transfer
/// control: a stack load cannot move past it. (Loads, compares and tests
/// of memory can be passed.)
fn writes_memory_or_esp(item: &Item, calc: &mut EffectsOf) -> bool {
    let ins = match item {
        Item::Instr(ins, _) => ins,
        Item::Address { .. } => return false,
        Item::CallLabel(..) => return true,
    };
    if ins.flow_control() != FlowControl::Next {
        return true;
    }
    let info = info32(calc.factory(), ins);
    let reads_only = |a: OpAccess| {
        matches!(
            a,
            OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess
        )
    };
    info.used_memory().iter().any(|m| !reads_only(m.access()))
        || info
            .used_registers()
            .iter()
            .any(|r| r.register().full_register32() == Register::ESP && !reads_only(r.access()))
}

/// One round over every block with the liveness of the residual as it
/// was at the round's start (kept up to date for the successors that
/// receive items); returns how many items moved.
fn sink_round(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let live = liveness(residual, &calc.residual(residual));
    let mut live_in = live.live_in;
    let succ = successor_indices(residual);
    let preds = predecessor_counts(residual);
    let mut moved = 0;
    for (b, targets) in succ.iter().enumerate() {
        if targets.is_empty() {
            continue;
        }
        // (Items may have moved into this block earlier in the round.)
        let mut block_fx: Vec<Effects> = residual.blocks[b]
            .items
            .iter()
            .map(|item| calc.item(item, None))
            .collect();
        let mut k = block_fx.len();
        while k > 0 {
            k -= 1;
            let Some((def, load)) = sinkable_def(&residual.blocks[b].items[k], &block_fx[k]) else {
                continue;
            };
            let uses = block_fx[k].uses;
            let items = &residual.blocks[b].items;
            let later_clash = (k + 1..items.len()).any(|j| {
                let l = &block_fx[j];
                (l.uses | l.defs) & def != 0
                    || l.defs & uses != 0
                    || (load && l.side_effect && writes_memory_or_esp(&items[j], calc))
            });
            if later_clash {
                continue;
            }
            let reading: Vec<usize> = targets
                .iter()
                .copied()
                .filter(|&s| live_in[s] & def != 0)
                .collect();
            let alone = |s: usize| {
                s != b && preds[s] == 1 && targets.iter().filter(|&&t| t == s).count() == 1
            };
            let copies_allowed = if load { 2 } else { 1 };
            if reading.is_empty()
                || reading.len() > copies_allowed
                || !reading.iter().all(|&s| alone(s))
            {
                continue;
            }
            let item = residual.blocks[b].items.remove(k);
            let item_fx = block_fx.remove(k);
            for &s in &reading {
                residual.blocks[s].items.insert(0, item.clone());
                live_in[s] = (live_in[s] & !item_fx.kills) | item_fx.uses;
            }
            moved += 1;
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, diamond, jump, residual};

    /// `mov edx, 0` is read only where the branch is not taken (the other
    /// path clears `edx` before it returns): it moves there, in front of
    /// `mov ecx, 5` (which moved first and is read there too); `mov ebx,
    /// 1` is read on both paths and stays.
    #[test]
    fn a_value_read_on_one_path_moves_to_it() {
        let r = diamond(
            asm(|a| {
                a.mov(ebx, 1)?;
                a.mov(edx, 0)?;
                a.mov(ecx, 5)?;
                a.test(eax, eax)
            }),
            ConditionCode::e,
            asm(|a| {
                a.mov(eax, ebx)?;
                a.xor(edx, edx)?;
                a.ret()
            }),
            asm(|a| {
                a.add(edx, ecx)?;
                a.add(edx, ecx)?;
                a.lea(eax, dword_ptr(edx + ebx))?;
                a.ret()
            }),
        );
        insta::assert_snapshot!(after(r, super::sink), @"
        L0:
          mov ebx,1
          test eax,eax
          je L1 else L2
        L1:
          mov eax,ebx
          xor edx,edx
          ret
          exit
        L2:
          mov edx,0
          mov ecx,5
          add edx,ecx
          add edx,ecx
          lea eax,[edx+ebx]
          ret
          exit
        ");
    }

    /// Near misses: the register is read on both paths (`ecx`), the
    /// successor has another way in (`edx`, block 2 is also jumped to
    /// from block 1), a later item reads it (`esi`) or writes what it
    /// reads (`edi` from `eax`), or it writes the flags (`xor`).
    #[test]
    fn values_stay_where_moving_them_would_change_a_path() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.mov(ecx, 1)?;
                    a.mov(edx, 2)?;
                    a.mov(esi, 3)?;
                    a.mov(edi, eax)?;
                    a.xor(ebx, ebx)?;
                    a.mov(eax, esi)?;
                    a.test(eax, eax)
                }),
                branch(ConditionCode::e, 1, 2),
            ),
            block(1, asm(|a| a.mov(eax, ecx)), jump(2)),
            block(
                2,
                asm(|a| {
                    a.lea(eax, dword_ptr(edx + ecx))?;
                    a.add(eax, esi)?;
                    a.add(eax, edi)?;
                    a.add(eax, ebx)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ]);
        insta::assert_snapshot!(after(r, super::sink), @"
        L0:
          mov ecx,1
          mov edx,2
          mov esi,3
          mov edi,eax
          xor ebx,ebx
          mov eax,esi
          test eax,eax
          je L1 else L2
        L1:
          mov eax,ecx
          jmp L2
        L2:
          lea eax,[edx+ecx]
          add eax,esi
          add eax,edi
          add eax,ebx
          ret
          exit
        ");
    }

    /// `mov ecx, 5` moves on through a chain of blocks in one call: first
    /// into L1 (whose arm L2 reads it), then, in a second round (L1 comes
    /// first in the block list), into L2; both moves are counted.
    #[test]
    fn a_value_sinks_through_a_chain_of_blocks() {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        let mut r = residual(vec![
            block(
                2,
                asm(|a| {
                    a.mov(eax, ecx)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
            block(1, asm(|a| a.test(edx, edx)), branch(ConditionCode::e, 2, 4)),
            block(
                0,
                asm(|a| {
                    a.mov(ecx, 5)?;
                    a.test(eax, eax)
                }),
                branch(ConditionCode::e, 1, 3),
            ),
            ret(3),
            ret(4),
        ]);
        r.entry = Some(wiper_residual::Label(0));
        let mut counted = r.clone();
        let mut calc = crate::effects::EffectsOf::for_residual(&counted);
        assert_eq!(super::sink(&mut counted, &mut calc), 2, "two moves");
        insta::assert_snapshot!(after(r, super::sink), @"
        L2:
          mov ecx,5
          mov eax,ecx
          ret
          exit
        L1:
          test edx,edx
          je L2 else L4
        L0:
          test eax,eax
          je L1 else L3
        L3:
          ret
          exit
        L4:
          ret
          exit
        ");
    }

    /// A stack load passes a later load into another register (`mov
    /// edx, [ebx]`, which stays: both arms read it).
    #[test]
    fn a_stack_load_passes_a_load_of_another_register() {
        let r = diamond(
            asm(|a| {
                a.mov(ecx, dword_ptr(esp + 4))?;
                a.mov(edx, dword_ptr(ebx))?;
                a.test(eax, eax)
            }),
            ConditionCode::e,
            asm(|a| {
                a.lea(eax, dword_ptr(ecx + edx))?;
                a.ret()
            }),
            asm(|a| {
                a.mov(eax, edx)?;
                a.ret()
            }),
        );
        insta::assert_snapshot!(after(r, super::sink), @"
        L0:
          mov edx,[ebx]
          test eax,eax
          je L1 else L2
        L1:
          mov ecx,[esp+4]
          lea eax,[ecx+edx]
          ret
          exit
        L2:
          mov eax,edx
          ret
          exit
        ");
    }

    /// Near misses of a stack load: a load through another base (`[ebx]`)
    /// or with an index may fault, so it must stay on the path that does
    /// not read it; `fs:[esp+4]` is not the stack.
    #[test]
    fn loads_that_are_not_stack_words_stay() {
        let r = diamond(
            asm(|a| {
                a.mov(ecx, dword_ptr(ebx))?;
                a.mov(edx, dword_ptr(esp + eax * 4 + 4))?;
                a.mov(ebp, dword_ptr(esp + 4).fs())?;
                a.test(eax, eax)
            }),
            ConditionCode::e,
            asm(|a| {
                a.lea(eax, dword_ptr(ecx + edx))?;
                a.add(eax, ebp)?;
                a.ret()
            }),
            asm(|a| {
                a.xor(eax, eax)?;
                a.ret()
            }),
        );
        crate::testutil::assert_unchanged(r, super::sink);
    }

    /// Values move on through a chain of blocks: `mov ecx, 1` and `mov
    /// edx, 2` first into L1, the only way on for both, then each into
    /// the one arm of L1 that reads it. The stack load (`mov esi,
    /// [esp+4]`) passes the compare of memory, moves into L1 (L2 does not
    /// read `esi`) and then copies into both arms of L1, which both read
    /// it.
    #[test]
    fn values_move_on_through_a_chain_of_blocks() {
        let clear = |a: &mut CodeAssembler| {
            a.xor(ecx, ecx)?;
            a.xor(edx, edx)?;
            a.mov(esi, 0)?;
            a.ret()
        };
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.mov(esi, dword_ptr(esp + 4))?;
                    a.mov(ecx, 1)?;
                    a.mov(edx, 2)?;
                    a.cmp(byte_ptr(eax), 0)
                }),
                branch(ConditionCode::e, 1, 2),
            ),
            block(1, asm(|a| a.test(ebx, ebx)), branch(ConditionCode::e, 3, 4)),
            block(2, asm(clear), Terminator::Exit),
            block(
                3,
                asm(|a| {
                    a.lea(eax, dword_ptr(ecx + esi))?;
                    clear(a)
                }),
                Terminator::Exit,
            ),
            block(
                4,
                asm(|a| {
                    a.lea(eax, dword_ptr(edx + esi))?;
                    clear(a)
                }),
                Terminator::Exit,
            ),
        ]);
        insta::assert_snapshot!(after(r, super::sink), @"
        L0:
          cmp byte [eax],0
          je L1 else L2
        L1:
          test ebx,ebx
          je L3 else L4
        L2:
          xor ecx,ecx
          xor edx,edx
          mov esi,0
          ret
          exit
        L3:
          mov esi,[esp+4]
          mov ecx,1
          lea eax,[ecx+esi]
          xor ecx,ecx
          xor edx,edx
          mov esi,0
          ret
          exit
        L4:
          mov esi,[esp+4]
          mov edx,2
          lea eax,[edx+esi]
          xor ecx,ecx
          xor edx,edx
          mov esi,0
          ret
          exit
        ");
    }

    /// A block that received an item is looked at with its new items:
    /// `mov edx, 2` in L1 stays in front of `mov esi, edx`, which reads
    /// it, until that move has gone on into L2 too. (Taken with L1's
    /// effects from before `mov ecx, 1` arrived, the effects of `mov esi,
    /// edx` stand beside `mov edx, 2`, which then moves past its reader.)
    #[test]
    fn a_block_that_received_items_is_seen_with_them() {
        let clear = |a: &mut CodeAssembler| {
            a.xor(ecx, ecx)?;
            a.xor(edx, edx)?;
            a.mov(esi, 0)?;
            a.ret()
        };
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.mov(ecx, 1)?;
                    a.test(eax, eax)
                }),
                branch(ConditionCode::e, 1, 4),
            ),
            block(
                1,
                asm(|a| {
                    a.mov(edx, 2)?;
                    a.mov(esi, edx)?;
                    a.test(ebx, ebx)
                }),
                branch(ConditionCode::e, 2, 3),
            ),
            block(
                2,
                asm(|a| {
                    a.lea(eax, dword_ptr(esi + ecx))?;
                    a.add(eax, edx)?;
                    clear(a)
                }),
                Terminator::Exit,
            ),
            block(3, asm(clear), Terminator::Exit),
            block(4, asm(clear), Terminator::Exit),
        ]);
        insta::assert_snapshot!(after(r, super::sink), @"
        L0:
          test eax,eax
          je L1 else L4
        L1:
          test ebx,ebx
          je L2 else L3
        L2:
          mov ecx,1
          mov edx,2
          mov esi,edx
          lea eax,[esi+ecx]
          add eax,edx
          xor ecx,ecx
          xor edx,edx
          mov esi,0
          ret
          exit
        L3:
          xor ecx,ecx
          xor edx,edx
          mov esi,0
          ret
          exit
        L4:
          xor ecx,ecx
          xor edx,edx
          mov esi,0
          ret
          exit
        ");
    }
}
