//! Backward liveness of registers, flags and promotable slots over the
//! residual control-flow graph.

use std::collections::HashMap;

use wiper_residual::{Label, Residual, Terminator};

use crate::effects::{condition_flags, Effects, Locs};

/// The successors of a terminator.
pub fn successors(t: &Terminator) -> Vec<Label> {
    match t {
        Terminator::Exit => Vec::new(),
        Terminator::Jump(l, _) => vec![*l],
        Terminator::Branch {
            taken, not_taken, ..
        } => vec![*taken, *not_taken],
    }
}

/// The index in `residual.blocks` of each block's label.
pub fn block_index(residual: &Residual) -> HashMap<Label, usize> {
    residual
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| (b.label, i))
        .collect()
}

/// Per block (by index in `residual.blocks`), the indices of its successors.
pub fn successor_indices(residual: &Residual) -> Vec<Vec<usize>> {
    let index = block_index(residual);
    residual
        .blocks
        .iter()
        .map(|b| {
            successors(&b.terminator)
                .iter()
                .filter_map(|l| index.get(l).copied())
                .collect()
        })
        .collect()
}

/// Locations live after each item (per block index, per item), and live on
/// entry to each block.
pub struct Liveness {
    /// `live_out[b][k]`: live right after item `k` of block `b`.
    pub live_out: Vec<Vec<Locs>>,
    /// `live_in[b]`: live when block `b` starts.
    pub live_in: Vec<Locs>,
}

/// Computes liveness for `residual` whose items have the effects `fx`
/// (same shape as the blocks). A block that ends in [`Terminator::Exit`]
/// without a control transfer as its last item keeps everything live.
pub fn liveness(residual: &Residual, fx: &[Vec<Effects>]) -> Liveness {
    let n = residual.blocks.len();
    let succ = successor_indices(residual);
    let term_uses: Vec<Locs> = residual
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| match &b.terminator {
            Terminator::Branch { cc, .. } => condition_flags(*cc),
            Terminator::Jump(..) => 0,
            Terminator::Exit => match fx[i].last() {
                Some(last) if last.leaves => 0,
                _ => !0,
            },
        })
        .collect();
    let mut live_in: Vec<Locs> = vec![0; n];
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..n).rev() {
            let mut live = term_uses[b];
            for &s in &succ[b] {
                live |= live_in[s];
            }
            for e in fx[b].iter().rev() {
                live = (live & !e.kills) | e.uses;
            }
            if live != live_in[b] {
                live_in[b] = live;
                changed = true;
            }
        }
    }
    let live_out = (0..n)
        .map(|b| {
            let mut live = term_uses[b];
            for &s in &succ[b] {
                live |= live_in[s];
            }
            block_live_out(&fx[b], live)
        })
        .collect();
    Liveness { live_out, live_in }
}

/// Locations live after each item of a block whose items have the effects
/// `fx`, given `live_end` live after its last item.
pub fn block_live_out(fx: &[Effects], live_end: Locs) -> Vec<Locs> {
    let mut live = live_end;
    let mut out = vec![0; fx.len()];
    for (k, e) in fx.iter().enumerate().rev() {
        out[k] = live;
        live = (live & !e.kills) | e.uses;
    }
    out
}
