//! Tail duplication of loop headers: a rotated loop of two blocks becomes
//! a loop of one.
//!
//! gcc and the specializer lay out a `while` loop as a body block `b` that
//! jumps to a small header block `h`, which tests and branches back to `b`
//! (or out); `h` is also entered once from before the loop. When `h` has at
//! most [`MAX_HEADER_ITEMS`] items and another way in, its items and its
//! branch are copied to the end of `b`, which then loops to itself; `h`
//! stays for the other ways in. Only where that pays ([`paying`]): the
//! passes that follow must make the body shorter than body and header
//! were. The loop body is then one block, which the
//! block-local passes ([`crate::moves`], [`crate::affine`]) and the
//! self-loop passes ([`crate::counted`], [`crate::unroll`]) see whole. Code
//! grows by at most [`MAX_HEADER_ITEMS`] items per loop, and each body
//! gets one copy (it ends in a branch afterwards, so it is not a candidate
//! again).

use std::collections::HashMap;

use wiper_residual::{Item, Label, Residual, Terminator};

use crate::liveness::{block_index, successors};

/// Largest header that is copied.
pub const MAX_HEADER_ITEMS: usize = 8;

/// How many ways into each block: jumps and branches to it, and two for
/// the entry and for blocks a `CallLabel` calls.
fn ways_in(residual: &Residual) -> HashMap<Label, usize> {
    let mut ways: HashMap<Label, usize> = HashMap::new();
    if let Some(l) = residual.entry {
        *ways.entry(l).or_default() += 2;
    }
    for b in &residual.blocks {
        for s in successors(&b.terminator) {
            *ways.entry(s).or_default() += 1;
        }
        for item in &b.items {
            if let Item::CallLabel(l, _) = item {
                *ways.entry(*l).or_default() += 2;
            }
        }
    }
    ways
}

/// The rotated loops whose header may be copied: `(body, header)` labels
/// of a body block that jumps to a header of at most
/// [`MAX_HEADER_ITEMS`] items that branches back to it and has another
/// way in.
pub fn rotated_loops(residual: &Residual) -> Vec<(Label, Label)> {
    let index = block_index(residual);
    let ways = ways_in(residual);
    let mut out = Vec::new();
    for body in &residual.blocks {
        let Terminator::Jump(h_label, _) = body.terminator else {
            continue;
        };
        let Some(&h) = index.get(&h_label) else {
            continue;
        };
        let header = &residual.blocks[h];
        let Terminator::Branch {
            taken, not_taken, ..
        } = header.terminator
        else {
            continue;
        };
        let back = (taken == body.label) != (not_taken == body.label);
        if h_label != body.label
            && back
            && header.items.len() <= MAX_HEADER_ITEMS
            && ways.get(&h_label).copied().unwrap_or(0) >= 2
        {
            out.push((body.label, h_label));
        }
    }
    out
}

/// Copies the header of each loop of `loops` (from [`rotated_loops`]) into
/// its body; returns how many it copied.
pub fn duplicate(residual: &mut Residual, loops: &[(Label, Label)]) -> usize {
    let index = block_index(residual);
    let mut copied = 0;
    for &(b, h) in loops {
        let (Some(&b), Some(&h)) = (index.get(&b), index.get(&h)) else {
            continue;
        };
        let header = &residual.blocks[h];
        let (items, terminator) = (header.items.clone(), header.terminator.clone());
        let body = &mut residual.blocks[b];
        body.items.extend(items);
        body.terminator = terminator;
        copied += 1;
    }
    copied
}

/// The loops of `loops` whose header copy pays: `settle` (the passes that
/// follow) run on a copy of `residual` with every header copied leaves the
/// body with fewer items than run on one without copies leaves the body
/// and the header together. A copy that the passes cannot shorten would
/// only make the code longer.
pub fn paying(
    residual: &Residual,
    loops: &[(Label, Label)],
    mut settle: impl FnMut(&mut Residual),
) -> Vec<(Label, Label)> {
    let mut with = residual.clone();
    duplicate(&mut with, loops);
    settle(&mut with);
    let mut without = residual.clone();
    settle(&mut without);
    let items = |r: &Residual, l: Label| {
        r.blocks
            .iter()
            .find(|b| b.label == l)
            .map_or(0, |b| b.items.len())
    };
    loops
        .iter()
        .copied()
        .filter(|&(b, h)| items(&with, b) < items(&without, b) + items(&without, h))
        .collect()
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode as Cc;
    use wiper_residual::{Label, Terminator};

    use crate::testutil::{after, asm, block, branch, jump, listing, residual};

    /// A rotated loop: L0 sets up and jumps to the header L5; the body L1
    /// runs `body` and jumps to L5, which runs `header` and branches back
    /// to L1 while not zero, else to the `ret` of L2.
    fn rotated(
        body: Vec<iced_x86::Instruction>,
        header: Vec<iced_x86::Instruction>,
    ) -> wiper_residual::Residual {
        residual(vec![
            block(0, asm(|a| a.mov(edx, 4)), jump(5)),
            block(1, body, jump(5)),
            block(5, header, branch(Cc::ne, 1, 2)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ])
    }

    /// The loops found, and the residual with every header copied.
    fn copied(r: wiper_residual::Residual) -> String {
        after(r, |r, _| {
            let loops = super::rotated_loops(r);
            super::duplicate(r, &loops);
        })
    }

    /// The header's items and branch are copied into the body, which loops
    /// to itself; the header stays for the way in from L0.
    #[test]
    fn a_header_is_copied_into_the_body() {
        let r = rotated(
            asm(|a| a.add(eax, esi)),
            asm(|a| {
                a.xchg(eax, esi)?;
                a.dec(edx)
            }),
        );
        assert_eq!(super::rotated_loops(&r), vec![(Label(1), Label(5))]);
        insta::assert_snapshot!(copied(r), @"
        L0:
          mov edx,4
          jmp L5
        L1:
          add eax,esi
          xchg esi,eax
          dec edx
          jne L1 else L2
        L5:
          xchg esi,eax
          dec edx
          jne L1 else L2
        L2:
          ret
          exit
        ");
    }

    /// Near misses: a header of more than `MAX_HEADER_ITEMS` items, and one
    /// whose only way in is the body's jump (the control-flow cleanup
    /// merges that one into the body).
    #[test]
    fn large_or_single_entry_headers_are_not_copied() {
        let long = vec![asm(|a| a.inc(eax))[0]; super::MAX_HEADER_ITEMS + 1];
        assert!(super::rotated_loops(&rotated(asm(|a| a.inc(esi)), long)).is_empty());
        let mut single = rotated(asm(|a| a.inc(esi)), asm(|a| a.dec(edx)));
        single.blocks[0].terminator = jump(1);
        assert!(super::rotated_loops(&single).is_empty());
    }

    /// A header that is the function's entry has the entry as its other
    /// way in: it is copied too.
    #[test]
    fn an_entry_header_is_copied() {
        let r = residual(vec![
            block(5, asm(|a| a.dec(edx)), branch(Cc::ne, 1, 2)),
            block(1, asm(|a| a.inc(esi)), jump(5)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ]);
        assert_eq!(super::rotated_loops(&r), vec![(Label(1), Label(5))]);
    }

    /// Through the whole optimizer: the copy lets the swaps of body and
    /// header cancel, and the loop is one block of two instructions.
    #[test]
    fn a_copy_that_pays_stays() {
        let mut r = rotated(
            asm(|a| {
                a.xchg(eax, esi)?;
                a.add(eax, esi)
            }),
            asm(|a| {
                a.xchg(eax, esi)?;
                a.dec(edx)
            }),
        );
        crate::optimize(&mut r);
        insta::assert_snapshot!(listing(&r), @"
        L0:
          xchg esi,eax
          mov edx,3
          jmp L1
        L1:
          add esi,eax
          dec edx
          jne L1 else L2
        L2:
          ret
          exit
        ");
    }

    /// Near miss: nothing shortens the copy of a header that compares with
    /// memory, so the loop keeps its two blocks.
    #[test]
    fn a_copy_that_does_not_pay_is_not_made() {
        let mut r = rotated(
            asm(|a| a.add(eax, dword_ptr(ecx))),
            asm(|a| {
                a.add(ecx, 4)?;
                a.cmp(ecx, dword_ptr(ebx))
            }),
        );
        crate::optimize(&mut r);
        insta::assert_snapshot!(listing(&r), @"
        L0:
          mov edx,4
          jmp L5
        L1:
          add eax,[ecx]
          jmp L5
        L5:
          add ecx,4
          cmp ecx,[ebx]
          jne L1 else L2
        L2:
          ret
          exit
        ");
    }

    /// A header a `call` names (a `CallLabel`, met here before the body's
    /// jump) has that call as its other way in: it is copied too.
    #[test]
    fn a_called_header_is_copied() {
        use wiper_residual::{Item, Origin};
        let mut r = rotated(asm(|a| a.inc(esi)), asm(|a| a.dec(edx)));
        r.blocks[0].terminator = jump(1);
        r.blocks[0]
            .items
            .push(Item::CallLabel(Label(5), Origin::Glue(0)));
        assert_eq!(super::rotated_loops(&r), vec![(Label(1), Label(5))]);
    }
}
