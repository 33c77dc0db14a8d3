//! The dependence graph over the decoupled instructions of a function.
//!
//! Nodes are the parts, one entry node per input (each register and flag,
//! each stack argument, the return address, the rest of the stack, writable
//! globals, read-only data, each static buffer, other memory), and per call
//! site a call node with one node per output of the callee. Data edges come
//! from a reaching-definitions analysis over the statement flow graph in
//! which memory is split into *cells*: the byte ranges that the exact
//! accesses of the function cut the stack, the globals and each buffer into,
//! plus one "rest" cell per region; an access touches the cells its
//! [`AbstractLoc`] may alias. Control edges come from post-dominators
//! (Ferrante-Ottenstein-Warren) on the statement graph with its virtual exit.
//!
//! [`build`] runs the phases in order, each in its own file and each handing
//! a named struct to the next:
//!
//! 1. `interface`: stack argument count, register save slots, and per call
//!    site the callee's effects and argument slots in our terms
//!    (`Interface`);
//! 2. `cells`: the memory cells and which cells a location may touch
//!    (`CellTable`);
//! 3. `nodes`: the graph with its entry nodes and part nodes (`Nodes`);
//! 4. `definitions`: per statement its uses and definitions, the call
//!    nodes, seeds, stack-only parts and visible effects (`Definitions`);
//! 5. `reaching`: the definitions reaching each statement (`Reaching`);
//! 6. `data_edges`: the data edges and the reaching definitions of every
//!    use (`DataEdges`);
//! 7. `control_edges`: the control edges, completing the edge list.
//!
//! Uses and definitions name locations by a dense index: the registers,
//! the flags, the temporaries, then one index per cell (from `CELL0`).

mod cells;
mod control_edges;
mod data_edges;
mod definitions;
mod interface;
mod nodes;
mod reaching;

use petgraph::graph::NodeIndex;
use petgraph::stable_graph::StableGraph;
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use wiper_elf::Binary;
use wiper_sem::{Flag, Loc, Reg, Temp};
use wiper_x86::abi;

use crate::memory::AbstractLoc;
use crate::program::{PartId, Program};
use crate::stack::StackInfo;
use cells::Cell;

/// An input of the function: the value a location holds at entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Input {
    /// A register.
    Reg(Reg),
    /// A flag.
    Flag(Flag),
    /// Stack argument N (`[esp0+4+4N]`).
    Arg(u32),
    /// The return address at `[esp0]`.
    ReturnAddress,
    /// Other stack bytes (uninitialized locals, the caller's frame).
    Stack,
    /// Writable global data.
    Globals,
    /// Read-only data of the binary.
    ReadOnly,
    /// The buffer of static pointer argument N.
    Buffer(u32),
    /// Memory outside the binary, the stack and the buffers (heap, ...).
    Memory,
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Reg(r) => f.write_str(r.name()),
            Input::Flag(fl) => f.write_str(fl.name()),
            Input::Arg(k) => write!(f, "arg{k}"),
            Input::ReturnAddress => f.write_str("return address"),
            Input::Stack => f.write_str("stack"),
            Input::Globals => f.write_str("globals"),
            Input::ReadOnly => f.write_str("read-only data"),
            Input::Buffer(k) => write!(f, "@arg{k} buffer"),
            Input::Memory => f.write_str("other memory"),
        }
    }
}

/// An output of a callee at a call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallOutput {
    /// A register the callee may change (`eax`, `ecx`, `edx`).
    Reg(Reg),
    /// The status flags.
    Flags,
    /// Memory the callee may write, in the caller's terms.
    Mem(AbstractLoc),
}

/// What a caller sees of a function at its exit, in this order: the
/// registers a call may change ([`abi::CALLER_SAVED`]) and the flags.
pub(crate) const EXIT_OUTPUTS: [CallOutput; 4] = {
    let [a, c, d] = abi::CALLER_SAVED;
    [
        CallOutput::Reg(a),
        CallOutput::Reg(c),
        CallOutput::Reg(d),
        CallOutput::Flags,
    ]
};

impl std::fmt::Display for CallOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallOutput::Reg(r) => f.write_str(r.name()),
            CallOutput::Flags => f.write_str("flags"),
            CallOutput::Mem(l) => write!(f, "{l}"),
        }
    }
}

/// A node of the dependence graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// The value of an input at entry.
    Entry(Input),
    /// A part.
    Part(PartId),
    /// Call site N (index into [`crate::Analysis::calls`]): the callee's
    /// inputs flow into it.
    Call(usize),
    /// One output of the callee of call site N.
    CallOut(usize, CallOutput),
}

/// Why one node depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// Through a register.
    Reg(Reg),
    /// Through a flag.
    Flag(Flag),
    /// Through a temporary of a decoupled sequence.
    Temp(Temp),
    /// Through memory, as the reading access sees it.
    Mem(AbstractLoc),
    /// Control dependence: the target runs or not depending on the branch.
    Control,
    /// An argument flowing into a call; the callee's outputs depend on it
    /// through the callee's own analysis, not through this edge.
    CallInput,
}

impl std::fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EdgeKind::Reg(r) => f.write_str(r.name()),
            EdgeKind::Flag(fl) => f.write_str(fl.name()),
            EdgeKind::Temp(t) => write!(f, "{t}"),
            EdgeKind::Mem(l) => write!(f, "{l}"),
            EdgeKind::Control => f.write_str("control"),
            EdgeKind::CallInput => f.write_str("argument"),
        }
    }
}

/// Opaque handle of a node of a [`DependenceGraph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) u32);

/// The dependence graph (a petgraph `StableGraph`, kept internal).
#[derive(Debug, Clone)]
pub struct DependenceGraph {
    pub(crate) g: StableGraph<Node, EdgeKind>,
    pub(crate) part_nodes: Vec<NodeIndex>,
}

impl DependenceGraph {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.g.node_count()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.g.edge_count()
    }

    /// Every node, in creation order (entry nodes, parts, call nodes).
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, Node)> + '_ {
        self.g
            .node_indices()
            .map(|i| (NodeId(i.index() as u32), self.g[i]))
    }

    /// The node of `id`.
    pub fn node(&self, id: NodeId) -> Node {
        self.g[NodeIndex::new(id.0 as usize)]
    }

    /// Every edge as (from, to, kind): `to` depends on `from`.
    pub fn edges(&self) -> impl Iterator<Item = (NodeId, NodeId, EdgeKind)> + '_ {
        (&self.g).edge_references().map(|e| {
            (
                NodeId(e.source().index() as u32),
                NodeId(e.target().index() as u32),
                *e.weight(),
            )
        })
    }

    /// The node of a part.
    pub fn part_node(&self, part: PartId) -> NodeId {
        NodeId(self.part_nodes[part.index()].index() as u32)
    }

    /// What `part` depends on: (node, kind) pairs.
    pub fn dependences(&self, part: PartId) -> Vec<(Node, EdgeKind)> {
        let n = self.part_nodes[part.index()];
        self.g
            .edges_directed(n, petgraph::Direction::Incoming)
            .map(|e| (self.g[e.source()], *e.weight()))
            .collect()
    }

    /// What depends on `part`: (node, kind) pairs.
    pub fn dependents(&self, part: PartId) -> Vec<(Node, EdgeKind)> {
        let n = self.part_nodes[part.index()];
        self.g
            .edges_directed(n, petgraph::Direction::Outgoing)
            .map(|e| (self.g[e.target()], *e.weight()))
            .collect()
    }
}

/// What the caller's graph needs to know about a callee.
#[derive(Debug, Clone)]
pub(crate) enum CalleeInfo {
    /// External, indirect, undecodable or too deep: the calling convention
    /// only.
    Opaque,
    /// A function of the binary with its own analysis.
    Internal {
        /// Stack arguments it reads.
        nargs: u32,
        /// Memory it may write, in its own terms (index = effect number).
        effects: Vec<AbstractLoc>,
    },
}

/// A use of a part, with the definitions reaching it.
#[derive(Debug, Clone)]
pub(crate) struct Use {
    /// What is used.
    pub what: UseWhat,
    /// Per cell (one entry for registers): the defining nodes.
    pub cells: Vec<(Option<u32>, Vec<NodeIndex>)>,
}

/// What a use reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UseWhat {
    /// A register, flag or temporary.
    Loc(Loc),
    /// Memory access number `usize` of the part.
    Access(usize),
}

/// Per call site: the caller-side view.
#[derive(Debug, Clone)]
pub(crate) struct CallSiteGraph {
    /// The call node.
    pub node: NodeIndex,
    /// Output nodes; for memory outputs also the callee effect index.
    pub outputs: Vec<(CallOutput, Option<usize>, NodeIndex)>,
    /// Reaching definitions of each argument slot the callee reads.
    pub arg_defs: Vec<Vec<NodeIndex>>,
    /// Reaching definitions of each register at the call.
    pub reg_defs: Vec<Vec<NodeIndex>>,
}

/// Everything the slicer needs, built once per function.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The dependence graph.
    pub graph: DependenceGraph,
    /// The entry node of each input.
    pub entry_nodes: Vec<(Input, NodeIndex)>,
    /// Per part: its uses with their reaching definitions.
    pub uses: Vec<Vec<Use>>,
    /// The memory cells, by cell number.
    pub cells: Vec<Cell>,
    /// Per call site: its nodes and reaching definitions.
    pub calls: Vec<CallSiteGraph>,
    /// Parts seeded dynamic: barriers, opaque parts, readers of an
    /// untracked `esp`.
    pub seeds: Vec<NodeIndex>,
    /// Reaching definitions at the exit of eax, ecx, edx and the flags.
    pub exit_defs: Vec<(CallOutput, Vec<NodeIndex>)>,
    /// Memory the function may write that a caller can see, with the
    /// writing nodes (in this function's terms).
    pub effects: Vec<(AbstractLoc, Vec<NodeIndex>)>,
    /// Stack arguments the function accesses.
    pub nargs: u32,
    /// Exempt parts (only move `esp`/`ebp` by a known amount).
    pub exempt: Vec<bool>,
    /// Per part, per access: its location.
    pub access_locs: Vec<Vec<AbstractLoc>>,
    /// Register save slots (see [`crate::Analysis::save_slots`]).
    pub save_slots: Vec<i32>,
}

/// Number of registers (location indices `0..NREG`).
const NREG: usize = 8;
/// Number of flags (indices from `NREG`).
const NFLAG: usize = 7;
/// Number of tracked temporaries (indices from `NREG + NFLAG`).
const NTEMP: usize = 8;
/// Location index of cell 0.
const CELL0: usize = NREG + NFLAG + NTEMP;

/// The location index of a register, flag or tracked temporary.
fn loc_index(l: Loc) -> Option<usize> {
    match l {
        Loc::Reg(r) => Some(r.index()),
        Loc::Flag(f) => Some(NREG + f.index()),
        Loc::Temp(t) if (t.0 as usize) < NTEMP => Some(NREG + NFLAG + t.0 as usize),
        _ => None,
    }
}

/// The register, flag or temporary of location index `i` (below `CELL0`).
fn index_loc(i: usize) -> Loc {
    if i < NREG {
        Loc::Reg(Reg::ALL[i])
    } else if i < NREG + NFLAG {
        Loc::Flag(Flag::ALL[i - NREG])
    } else {
        Loc::Temp(Temp((i - NREG - NFLAG) as u8))
    }
}

/// A definition: (defining node, location index).
type Def = (NodeIndex, usize);

/// Builds the dependence graph of `program`.
pub(crate) fn build(
    program: &Program,
    stack: &StackInfo,
    callees: &[CalleeInfo],
    binary: &Binary,
    buffers: &[u32],
) -> Built {
    let interface = interface::interface(program, stack, callees, buffers);
    let mut cells = cells::cell_table(stack, &interface, buffers, binary);
    let mut nodes = nodes::nodes(program, &cells.cells, interface.nargs);
    let mut defs = definitions::definitions(program, stack, &interface, &mut cells, &mut nodes);
    let reaching = reaching::reaching(program, &defs, CELL0 + cells.cells.len());
    let mut data = data_edges::data_edges(stack, &reaching, &mut defs);
    control_edges::control_edges(
        program,
        stack,
        &nodes.part_nodes,
        &defs,
        &data.reached,
        &mut data.edges,
    );
    let mut g = nodes.g;
    for (a, b, k) in data.edges.list {
        g.add_edge(a, b, k);
    }
    Built {
        graph: DependenceGraph {
            g,
            part_nodes: nodes.part_nodes,
        },
        entry_nodes: nodes.entry_nodes,
        uses: defs.uses,
        cells: cells.cells,
        calls: defs.call_sites,
        seeds: defs.seeds,
        exit_defs: data.exit_defs,
        effects: defs.effects,
        nargs: interface.nargs,
        exempt: defs.exempt,
        save_slots: interface.saves,
        access_locs: stack
            .accesses
            .iter()
            .map(|acc| acc.iter().map(|a| a.loc).collect())
            .collect(),
    }
}
