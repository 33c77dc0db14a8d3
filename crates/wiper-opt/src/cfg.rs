//! Control-flow cleanup: jumps to empty blocks are threaded to where those
//! blocks go, a block reached only by a jump from one other block is merged
//! into it, a branch whose two targets are one block becomes a jump, and
//! blocks nothing reaches are dropped. The specializer makes
//! many such blocks (one per specialization point), and the later passes
//! see more when straight-line code is one block.

use std::collections::{HashMap, HashSet};

use wiper_residual::{Block, Item, Label, Origin, Residual, Terminator};

use crate::liveness::{block_index, successors};

/// The origin of glue that runs before the entry block's first item.
pub fn entry_glue_origin(residual: &Residual) -> Origin {
    residual
        .blocks
        .iter()
        .find(|b| Some(b.label) == residual.entry)
        .and_then(|b| b.items.first())
        .map_or(Origin::Glue(0), |item| {
            Origin::Glue(item.origin().address())
        })
}

/// Whether some block's terminator continues at `label`.
pub fn is_jumped_to(residual: &Residual, label: Label) -> bool {
    residual
        .blocks
        .iter()
        .any(|b| crate::liveness::successors(&b.terminator).contains(&label))
}

/// Puts `items` in a new entry block that jumps to the old entry (nothing
/// when there are none).
pub fn prepend_to_entry(residual: &mut Residual, items: Vec<Item>) {
    let Some(entry) = residual.entry else { return };
    if items.is_empty() {
        return;
    }
    let origin = entry_glue_origin(residual);
    let label = Label(residual.blocks.iter().map(|b| b.label.0).max().unwrap_or(0) + 1);
    residual.blocks.insert(
        0,
        Block {
            label,
            items,
            terminator: Terminator::Jump(entry, origin),
        },
    );
    residual.entry = Some(label);
}

/// For a block that branches back to itself while ZF is clear (`jne` to
/// itself, or `je` out): where it exits to, and the branch's origin. The
/// loops the loop passes ([`crate::counted`], [`crate::unroll`]) rewrite.
pub fn loop_while_not_zero(block: &Block) -> Option<(Label, Origin)> {
    let Terminator::Branch {
        cc,
        taken,
        not_taken,
        origin,
    } = block.terminator
    else {
        return None;
    };
    match (taken == block.label, not_taken == block.label) {
        (true, false) if cc == iced_x86::ConditionCode::ne => Some((not_taken, origin)),
        (false, true) if cc == iced_x86::ConditionCode::e => Some((taken, origin)),
        _ => None,
    }
}

/// Applies `f` to every label a terminator names.
fn retarget(t: &mut Terminator, f: impl Fn(Label) -> Label) {
    match t {
        Terminator::Exit => {}
        Terminator::Jump(l, _) => *l = f(*l),
        Terminator::Branch {
            taken, not_taken, ..
        } => {
            *taken = f(*taken);
            *not_taken = f(*not_taken);
        }
    }
}

/// The labels called by `CallLabel` items (entries of specialized clones).
fn call_targets(residual: &Residual) -> HashSet<Label> {
    residual
        .blocks
        .iter()
        .flat_map(|b| &b.items)
        .filter_map(|i| match i {
            Item::CallLabel(l, _) => Some(*l),
            _ => None,
        })
        .collect()
}

/// Threads, merges and prunes blocks (see the module docs).
pub fn simplify(residual: &mut Residual) {
    let Some(entry) = residual.entry else { return };
    // 1. Threading: an empty block that only jumps forwards to its target.
    let forward: HashMap<Label, Label> = residual
        .blocks
        .iter()
        .filter_map(|b| match b.terminator {
            Terminator::Jump(t, _) if b.items.is_empty() && t != b.label => Some((b.label, t)),
            _ => None,
        })
        .collect();
    // Where each label finally leads, computed once per chain (a cycle of
    // empty blocks stays where it is). Chains are followed from the blocks
    // in order, not in the map's (random) order, so that where a cycle is
    // entered, and so the output, does not change from run to run.
    let mut target: HashMap<Label, Label> = HashMap::new();
    let starts = residual.blocks.iter().map(|b| b.label);
    for start in starts.filter(|l| forward.contains_key(l)) {
        let mut chain = vec![start];
        let mut on_chain: HashSet<Label> = HashSet::from([start]);
        let mut l = start;
        let end = loop {
            if let Some(&t) = target.get(&l) {
                break t;
            }
            match forward.get(&l) {
                Some(&t) if on_chain.insert(t) => {
                    chain.push(t);
                    l = t;
                }
                Some(_) => break l, // a cycle
                None => break l,
            }
        };
        for c in chain {
            target.insert(c, end);
        }
    }
    let resolve = |l: Label| target.get(&l).copied().unwrap_or(l);
    for b in &mut residual.blocks {
        retarget(&mut b.terminator, resolve);
        if let Terminator::Branch {
            taken,
            not_taken,
            origin,
            ..
        } = b.terminator
        {
            if taken == not_taken {
                b.terminator = Terminator::Jump(taken, origin);
            }
        }
        for item in &mut b.items {
            if let Item::CallLabel(l, _) = item {
                *l = resolve(*l);
            }
        }
    }
    let entry = resolve(entry);
    residual.entry = Some(entry);
    // 2. Pruning: keep what the entry and the clone entries reach.
    let calls = call_targets(residual);
    let index = block_index(residual);
    let mut reached: HashSet<Label> = HashSet::new();
    let mut work: Vec<Label> = std::iter::once(entry)
        .chain(calls.iter().copied())
        .collect();
    while let Some(l) = work.pop() {
        if reached.insert(l) {
            if let Some(&i) = index.get(&l) {
                work.extend(successors(&residual.blocks[i].terminator));
                for item in &residual.blocks[i].items {
                    if let Item::CallLabel(c, _) = item {
                        work.push(*c);
                    }
                }
            }
        }
    }
    residual.blocks.retain(|b| reached.contains(&b.label));
    // 3. Merging: a block whose only way in is a jump from one block.
    let mut preds: HashMap<Label, usize> = HashMap::new();
    for l in std::iter::once(entry).chain(calls) {
        *preds.entry(l).or_default() += 2; // never merged away
    }
    for b in &residual.blocks {
        for s in successors(&b.terminator) {
            *preds.entry(s).or_default() += 1;
        }
    }
    let mut blocks: HashMap<Label, wiper_residual::Block> = residual
        .blocks
        .iter()
        .map(|b| (b.label, b.clone()))
        .collect();
    let order: Vec<Label> = residual.blocks.iter().map(|b| b.label).collect();
    let mut merged: HashSet<Label> = HashSet::new();
    for &l in &order {
        if merged.contains(&l) {
            continue;
        }
        loop {
            let next = match blocks[&l].terminator {
                Terminator::Jump(t, _) if t != l && preds.get(&t) == Some(&1) => t,
                _ => break,
            };
            let tail = blocks.remove(&next).expect("a reached block");
            let head = blocks.get_mut(&l).expect("a reached block");
            head.items.extend(tail.items);
            head.terminator = tail.terminator;
            merged.insert(next);
        }
    }
    residual.blocks = order
        .iter()
        .filter(|l| !merged.contains(l))
        .map(|l| blocks.remove(l).expect("each block once"))
        .collect();
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode as Cc;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, jump, residual};

    /// A clone's entry (called by `CallLabel`) is never merged into the one
    /// block that jumps to it: the call needs its label.
    #[test]
    fn a_called_block_keeps_its_label() {
        let mut r = residual(vec![
            block(0, asm(|a| a.nop()), jump(1)),
            block(1, asm(|a| a.xor(eax, eax)), jump(2)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ]);
        let call = wiper_residual::Item::CallLabel(
            wiper_residual::Label(2),
            wiper_residual::Origin::Original(0),
        );
        r.blocks[0].items.insert(0, call);
        let mut simplified = r.clone();
        super::simplify(&mut simplified);
        assert_eq!(simplified.verify(), Ok(()));
        insta::assert_snapshot!(crate::testutil::listing(&simplified), @"
        L0:
          call L2
          nop
          xor eax,eax
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// A loop while not zero is `jne` back to itself or `je` out; any
    /// other branch, to itself or not, is not one.
    #[test]
    fn loops_while_not_zero_are_told_from_other_branches() {
        let exit_of = |cc, taken, not_taken| {
            let b = block(1, asm(|a| a.dec(ecx)), branch(cc, taken, not_taken));
            super::loop_while_not_zero(&b).map(|(l, _)| l.0)
        };
        assert_eq!(exit_of(Cc::ne, 1, 2), Some(2));
        assert_eq!(exit_of(Cc::e, 2, 1), Some(2));
        assert_eq!(exit_of(Cc::e, 1, 2), None);
        assert_eq!(exit_of(Cc::ne, 2, 1), None);
        assert_eq!(exit_of(Cc::e, 2, 3), None);
        assert_eq!(exit_of(Cc::ne, 2, 3), None);
        assert_eq!(exit_of(Cc::b, 1, 2), None);
    }

    /// The listing after [`super::simplify`].
    fn simplified(r: wiper_residual::Residual) -> String {
        after(r, |r, _| super::simplify(r))
    }

    #[test]
    fn empty_blocks_are_threaded_and_single_entry_ones_merged() {
        let r = residual(vec![
            block(0, asm(|a| a.mov(eax, 1)), jump(1)),
            block(1, Vec::new(), jump(2)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
            block(3, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(simplified(r), @"
        L0:
          mov eax,1
          ret
          exit
        ");
    }

    /// Near miss: the entry block has one jump in (the loop's back edge),
    /// but it is also the way in from outside, so it is never merged into
    /// the block that jumps to it.
    #[test]
    fn the_entry_block_is_never_merged_away() {
        let r = residual(vec![
            block(0, asm(|a| a.dec(ecx)), branch(Cc::ne, 1, 2)),
            block(1, asm(|a| a.inc(eax)), jump(0)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(simplified(r), @"
        L0:
          dec ecx
          jne L1 else L2
        L1:
          inc eax
          jmp L0
        L2:
          ret
          exit
        ");
    }

    /// Near miss: L2 is reached from L0 and L1, so it stays a block.
    #[test]
    fn a_block_with_two_ways_in_stays_apart() {
        let r = residual(vec![
            block(0, asm(|a| a.test(eax, eax)), branch(Cc::e, 1, 2)),
            block(1, asm(|a| a.mov(eax, 1)), jump(2)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(simplified(r), @"
        L0:
          test eax,eax
          je L1 else L2
        L1:
          mov eax,1
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// L0's branch to the empty L1 goes straight to L2; then both its
    /// targets are L2 and it becomes a jump (and L2 merges in).
    #[test]
    fn a_branch_through_an_empty_block_becomes_a_jump() {
        let r = residual(vec![
            block(0, asm(|a| a.test(eax, eax)), branch(Cc::e, 1, 2)),
            block(1, Vec::new(), jump(2)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(simplified(r), @"
        L0:
          test eax,eax
          ret
          exit
        ");
    }

    /// The taken edge is threaded past the empty L1; L2 has two ways in
    /// (from L0 and L3), so it stays a block.
    #[test]
    fn a_branch_to_an_empty_block_is_threaded() {
        let r = residual(vec![
            block(0, asm(|a| a.test(eax, eax)), branch(Cc::e, 1, 3)),
            block(1, Vec::new(), jump(2)),
            block(3, asm(|a| a.mov(eax, 1)), jump(2)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(simplified(r), @"
        L0:
          test eax,eax
          je L2 else L3
        L3:
          mov eax,1
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// Near miss: the empty L1 and L2 jump to each other; the chain stops
    /// at the cycle (an endless loop stays one), at the same block every
    /// run (chains were once followed in a hash map's random order).
    #[test]
    fn a_cycle_of_empty_blocks_stays_a_loop() {
        let r = residual(vec![
            block(0, asm(|a| a.mov(eax, 1)), jump(1)),
            block(1, Vec::new(), jump(2)),
            block(2, Vec::new(), jump(1)),
        ]);
        insta::assert_snapshot!(simplified(r), @"
        L0:
          mov eax,1
          jmp L2
        L2:
          jmp L2
        ");
    }

    /// Near miss: no jump reaches L1, but L0 calls it, so it stays (and is
    /// never merged away).
    #[test]
    fn a_block_reached_by_a_call_stays() {
        let mut entry = block(0, asm(|a| a.ret()), Terminator::Exit);
        entry.items.insert(
            0,
            wiper_residual::Item::CallLabel(
                wiper_residual::Label(1),
                wiper_residual::Origin::Original(0),
            ),
        );
        let r = residual(vec![entry, block(1, asm(|a| a.ret()), Terminator::Exit)]);
        insta::assert_snapshot!(simplified(r), @"
        L0:
          call L1
          ret
          exit
        L1:
          ret
          exit
        ");
    }
}
