//! Phase 6 of the graph build: data edges.
//!
//! For every use of every statement, the definitions reaching it become
//! edges into the user (kind `Reg`, `Flag`, `Temp`, `Mem`, or `CallInput`
//! for a call's arguments) and are recorded in the use itself, in the call
//! site's argument and register definitions, or in the exit's outputs. It
//! hands the [`DataEdges`] (the edge list so far and every definition that
//! reaches a part) to the control edges phase.

use std::collections::HashSet;

use petgraph::graph::NodeIndex;
use wiper_sem::Loc;

use super::definitions::{Definitions, UseRef};
use super::reaching::Reaching;
use super::{CallOutput, EdgeKind, UseWhat, EXIT_OUTPUTS};
use crate::stack::StackInfo;

/// The edges of the graph, in the order they are added, without repeats.
#[derive(Default)]
pub(super) struct EdgeList {
    seen: HashSet<(NodeIndex, NodeIndex, EdgeKind)>,
    /// The edges (from, to, kind): `to` depends on `from`.
    pub list: Vec<(NodeIndex, NodeIndex, EdgeKind)>,
}

impl EdgeList {
    /// Adds the edge `a -> b` of kind `k` unless it is already there.
    pub(super) fn add(&mut self, a: NodeIndex, b: NodeIndex, k: EdgeKind) {
        if self.seen.insert((a, b, k)) {
            self.list.push((a, b, k));
        }
    }
}

/// A definition reaching a part's use.
pub(super) struct ReachedUse {
    /// The defining node.
    pub def: NodeIndex,
    /// The location index.
    pub loc: usize,
    /// The using part's node.
    pub user: NodeIndex,
    /// The using statement.
    pub stmt: usize,
}

/// The data edges and what the control edges phase needs of them.
pub(super) struct DataEdges {
    /// The edges so far.
    pub edges: EdgeList,
    /// Reaching definitions at the exit of eax, ecx, edx and the flags.
    pub exit_defs: Vec<(CallOutput, Vec<NodeIndex>)>,
    /// Every definition reaching a part's use, in edge order.
    pub reached: Vec<ReachedUse>,
}

/// Adds an edge from every definition reaching a use to its user, and
/// fills in the reaching definitions of the parts' uses and of the call
/// sites in `defs`.
pub(super) fn data_edges(
    stack: &StackInfo,
    reaching: &Reaching,
    defs: &mut Definitions,
) -> DataEdges {
    let mut out = DataEdges {
        edges: EdgeList::default(),
        exit_defs: EXIT_OUTPUTS.iter().map(|&o| (o, Vec::new())).collect(),
        reached: Vec::new(),
    };
    for (s, info) in defs.stmts.iter().enumerate() {
        for &(l, user, uref) in &info.uses {
            let srcs = reaching.sources(&defs.defs, l, s);
            match uref {
                UseRef::Part(p, u, c) => {
                    let kind = match defs.uses[p][u].what {
                        UseWhat::Loc(Loc::Reg(r)) => EdgeKind::Reg(r),
                        UseWhat::Loc(Loc::Flag(f)) => EdgeKind::Flag(f),
                        UseWhat::Loc(Loc::Temp(t)) => EdgeKind::Temp(t),
                        UseWhat::Loc(_) => EdgeKind::Control,
                        UseWhat::Access(ai) => EdgeKind::Mem(stack.accesses[p][ai].loc),
                    };
                    for &src in &srcs {
                        out.edges.add(src, user, kind);
                        out.reached.push(ReachedUse {
                            def: src,
                            loc: l,
                            user,
                            stmt: s,
                        });
                    }
                    defs.uses[p][u].cells[c].1 = srcs;
                }
                UseRef::CallArg(ci, k) => {
                    for &src in &srcs {
                        out.edges.add(src, user, EdgeKind::CallInput);
                    }
                    defs.call_sites[ci].arg_defs[k].extend(srcs);
                }
                UseRef::CallReg(ci, r) => {
                    defs.call_sites[ci].reg_defs[r].extend(srcs);
                }
                UseRef::Exit(i) => {
                    for src in srcs {
                        if !out.exit_defs[i].1.contains(&src) {
                            out.exit_defs[i].1.push(src);
                        }
                    }
                }
            }
        }
    }
    out
}
