//! Phase 3 of the graph build: the entry and part nodes.
//!
//! Creates the graph with one entry node per input (each register and
//! flag, then the inputs each memory cell holds at entry: stack arguments,
//! the return address, the rest of the stack, globals, read-only data, the
//! static buffers, other memory), then one node per part. It hands the
//! [`Nodes`] to the definitions phase, which adds the call nodes; the entry
//! definitions it records become the definitions of the entry statement.

use petgraph::graph::NodeIndex;
use petgraph::stable_graph::StableGraph;
use wiper_sem::{Flag, Reg};

use super::cells::Cell;
use super::{Def, EdgeKind, Input, Node, CELL0, NREG};
use crate::program::Program;

/// The graph with its entry and part nodes.
pub(super) struct Nodes {
    /// The graph (no edges yet).
    pub g: StableGraph<Node, EdgeKind>,
    /// The entry node of each input, in creation order.
    pub entry_nodes: Vec<(Input, NodeIndex)>,
    /// The node of each part, by part index.
    pub part_nodes: Vec<NodeIndex>,
    /// What the entry defines: (entry node, location index), registers,
    /// flags, then cells.
    pub entry_defs: Vec<Def>,
}

impl Nodes {
    /// The entry node of `input`, created on first use.
    fn entry_node(&mut self, input: Input) -> NodeIndex {
        if let Some((_, n)) = self.entry_nodes.iter().find(|(x, _)| *x == input) {
            return *n;
        }
        let n = self.g.add_node(Node::Entry(input));
        self.entry_nodes.push((input, n));
        n
    }
}

/// Creates the entry nodes (for the registers, the flags and `cells`) and
/// the part nodes of `program`.
pub(super) fn nodes(program: &Program, cells: &[Cell], nargs: u32) -> Nodes {
    let mut nodes = Nodes {
        g: StableGraph::new(),
        entry_nodes: Vec::new(),
        part_nodes: Vec::with_capacity(program.parts.len()),
        entry_defs: Vec::new(),
    };
    for r in Reg::ALL {
        let n = nodes.entry_node(Input::Reg(r));
        nodes.entry_defs.push((n, r.index()));
    }
    for f in Flag::ALL {
        let n = nodes.entry_node(Input::Flag(f));
        nodes.entry_defs.push((n, NREG + f.index()));
    }
    for (ci, c) in cells.iter().enumerate() {
        for i in cell_inputs(*c, nargs) {
            let n = nodes.entry_node(i);
            nodes.entry_defs.push((n, CELL0 + ci));
        }
    }
    for p in &program.parts {
        nodes.part_nodes.push(nodes.g.add_node(Node::Part(p.id)));
    }
    nodes
}

/// The inputs a cell holds at entry.
fn cell_inputs(cell: Cell, nargs: u32) -> Vec<Input> {
    match cell {
        Cell::Stack(lo, hi) => {
            let mut v = Vec::new();
            if lo < 0 {
                v.push(Input::Stack);
            }
            if lo < 4 && hi > 0 {
                v.push(Input::ReturnAddress);
            }
            if hi > 4 {
                let first = ((lo.max(4) - 4) / 4) as u32;
                let last = ((hi - 1 - 4) / 4) as u32;
                for k in first..=last {
                    if k < nargs {
                        v.push(Input::Arg(k));
                    } else if !v.contains(&Input::Stack) {
                        v.push(Input::Stack);
                    }
                }
            }
            v
        }
        Cell::StackRest => vec![Input::Stack],
        Cell::Global(_, _, true) | Cell::GlobalRest(true) => vec![Input::ReadOnly],
        Cell::Global(_, _, false) | Cell::GlobalRest(false) => vec![Input::Globals],
        Cell::Buffer(k, ..) | Cell::BufferRest(k) => vec![Input::Buffer(k)],
        Cell::Other => vec![Input::Memory],
    }
}
