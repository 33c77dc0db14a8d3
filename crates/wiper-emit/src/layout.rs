//! Block order: depth-first from the entry, each block followed (when it can
//! be) by the block it falls through to, so most `Jump`s disappear and most
//! `Branch`es become a single `jcc`.

use std::collections::{HashMap, HashSet};

use crate::EmitError;
use wiper_residual::{Block, Item, Label, Residual, Terminator};

/// The residual's blocks by label, checked: unique labels, every reference defined.
pub(crate) struct Blocks<'a> {
    /// Block of each label.
    pub by_label: HashMap<Label, &'a Block>,
    /// The entry label.
    pub entry: Label,
}

impl<'a> Blocks<'a> {
    /// Checks `residual` ([`Residual::verify`]) and indexes its blocks.
    pub fn new(residual: &'a Residual) -> Result<Self, EmitError> {
        residual.verify()?;
        let entry = residual
            .entry
            .ok_or(wiper_residual::ResidualError::NoEntry)?;
        let by_label = residual.blocks.iter().map(|b| (b.label, b)).collect();
        Ok(Blocks { by_label, entry })
    }

    fn get(&self, label: Label) -> &'a Block {
        self.by_label[&label]
    }
}

/// The emission order of the blocks reachable from the entry (unreachable
/// blocks are dropped).
///
/// Depth-first: a chain starts at a block popped from the stack and continues
/// with the block's fall-through candidate while that one is not placed yet: a
/// `Jump` target, else a `Branch`'s `not_taken`, else its `taken`. Every other
/// successor (called blocks, the other branch target) is pushed for later.
///
/// Loops are rotated: before a block that is not the entry goes a block of
/// its loop that ends by jumping to it (the latch), so each turn of the loop
/// falls through instead of jumping back, and the branch that leaves the
/// loop is the one taken once.
pub(crate) fn order(blocks: &Blocks<'_>) -> Vec<Label> {
    let mut placed: HashSet<Label> = HashSet::new();
    let mut order = Vec::new();
    let mut stack = vec![blocks.entry];
    let mut latches: HashMap<Label, Vec<Label>> = HashMap::new();
    for (label, block) in &blocks.by_label {
        if let Terminator::Jump(target, _) = block.terminator {
            if target != *label && !block.items.iter().any(|i| matches!(i, Item::CallLabel(..))) {
                latches.entry(target).or_default().push(*label);
            }
        }
    }
    for v in latches.values_mut() {
        v.sort();
    }
    while let Some(start) = stack.pop() {
        let mut current = start;
        while !placed.contains(&current) {
            if current != blocks.entry {
                let latch = latches.get(&current).and_then(|ls| {
                    ls.iter()
                        .copied()
                        .find(|l| !placed.contains(l) && reaches(blocks, current, *l))
                });
                if let Some(latch) = latch {
                    placed.insert(latch);
                    order.push(latch);
                }
            }
            placed.insert(current);
            order.push(current);
            let block = blocks.get(current);
            let mut later: Vec<Label> = Vec::new();
            let mut next = None;
            for item in &block.items {
                if let Item::CallLabel(l, _) = item {
                    later.push(*l);
                }
            }
            match &block.terminator {
                Terminator::Exit => {}
                Terminator::Jump(l, _) => next = Some(*l),
                Terminator::Branch {
                    taken, not_taken, ..
                } => {
                    if !placed.contains(not_taken) {
                        later.push(*taken);
                        next = Some(*not_taken);
                    } else {
                        next = Some(*taken);
                    }
                }
            }
            // Pushed in reverse so the first one named is visited first.
            stack.extend(later.into_iter().rev().filter(|l| !placed.contains(l)));
            match next {
                Some(n) if !placed.contains(&n) => current = n,
                _ => break,
            }
        }
    }
    order
}

/// Whether `to` can be reached from `from` along terminators.
fn reaches(blocks: &Blocks<'_>, from: Label, to: Label) -> bool {
    let mut seen = HashSet::new();
    let mut work = vec![from];
    while let Some(l) = work.pop() {
        if l == to {
            return true;
        }
        if seen.insert(l) {
            work.extend(blocks.get(l).successors());
        }
    }
    false
}
