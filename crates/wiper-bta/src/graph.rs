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

use std::collections::{BTreeSet, HashMap, HashSet};

use petgraph::algo::dominators::simple_fast;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::stable_graph::StableGraph;
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use wiper_elf::Binary;
use wiper_qfbv::Op;
use wiper_sem::{Flag, Loc, Reg, Temp, Value};

use crate::memory::{AbstractLoc, AccessKind};
use crate::program::{formula_reads, part_roots, PartId, Program, Stmt, ENTRY};
use crate::stack::{Offset, StackInfo};

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
    pub what: UseWhat,
    /// Per cell (one entry for registers): the defining nodes.
    pub cells: Vec<(Option<u32>, Vec<NodeIndex>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UseWhat {
    Loc(Loc),
    /// Memory access number `usize` of the part.
    Access(usize),
}

/// A memory cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    Stack(i64, i64),
    Global(i64, i64, bool),
    Buffer(u32, i64, i64),
    StackRest,
    GlobalRest(bool),
    BufferRest(u32),
    Other,
}

impl Cell {
    /// The location of the cell, for listing static reads (`None` for the
    /// rest of the globals and other memory).
    pub fn loc(self) -> Option<AbstractLoc> {
        match self {
            Cell::Stack(lo, hi) => Some(AbstractLoc::Stack {
                offset: lo as i32,
                size: (hi - lo) as u32,
            }),
            Cell::Global(lo, hi, ro) => Some(AbstractLoc::Global {
                addr: lo as u32,
                size: (hi - lo) as u32,
                read_only: ro,
            }),
            Cell::Buffer(k, lo, hi) => Some(AbstractLoc::Buffer {
                arg: k,
                offset: lo as i32,
                size: (hi - lo) as u32,
            }),
            Cell::StackRest => Some(AbstractLoc::StackAny),
            Cell::BufferRest(arg) => Some(AbstractLoc::BufferAny { arg }),
            _ => None,
        }
    }
}

/// Per call site: the caller-side view.
#[derive(Debug, Clone)]
pub(crate) struct CallSiteGraph {
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
    pub graph: DependenceGraph,
    pub entry_nodes: Vec<(Input, NodeIndex)>,
    pub uses: Vec<Vec<Use>>,
    pub cells: Vec<Cell>,
    pub calls: Vec<CallSiteGraph>,
    /// Parts seeded dynamic: barriers, readers of an untracked `esp`.
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

const NREG: usize = 8;
const NFLAG: usize = 7;
const NTEMP: usize = 8;
const CELL0: usize = NREG + NFLAG + NTEMP;

fn loc_index(l: Loc) -> Option<usize> {
    match l {
        Loc::Reg(r) => Some(r.index()),
        Loc::Flag(f) => Some(NREG + f.index()),
        Loc::Temp(t) if (t.0 as usize) < NTEMP => Some(NREG + NFLAG + t.0 as usize),
        _ => None,
    }
}

fn index_loc(i: usize) -> Loc {
    if i < NREG {
        Loc::Reg(Reg::ALL[i])
    } else if i < NREG + NFLAG {
        Loc::Flag(Flag::ALL[i - NREG])
    } else {
        Loc::Temp(Temp((i - NREG - NFLAG) as u8))
    }
}

struct CellTable {
    cells: Vec<Cell>,
    /// Cells where the prologue saves callee-saved registers: part of no
    /// C object, so indexed and unknown accesses never reach them.
    saves: Vec<bool>,
    cache: HashMap<(AbstractLoc, bool), Vec<u32>>,
    escaped: bool,
}

impl CellTable {
    fn new(
        exact: &[AbstractLoc],
        saves: &[i32],
        buffers: &[u32],
        binary: &Binary,
        escaped: bool,
    ) -> CellTable {
        let mut stack: Vec<(i64, i64)> = Vec::new();
        let mut global: Vec<(i64, i64)> = Vec::new();
        let mut buffer_ranges: HashMap<u32, Vec<(i64, i64)>> =
            buffers.iter().map(|&k| (k, Vec::new())).collect();
        for l in exact {
            match *l {
                AbstractLoc::Stack { offset, size } if size > 0 => {
                    stack.push((i64::from(offset), i64::from(offset) + i64::from(size)))
                }
                AbstractLoc::Global { addr, size, .. } if size > 0 => {
                    global.push((i64::from(addr), i64::from(addr) + i64::from(size)))
                }
                AbstractLoc::Buffer { arg, offset, size } if size > 0 => buffer_ranges
                    .entry(arg)
                    .or_default()
                    .push((i64::from(offset), i64::from(offset) + i64::from(size))),
                _ => {}
            }
        }
        fn partition(iv: &[(i64, i64)]) -> Vec<(i64, i64)> {
            let mut pts: Vec<i64> = iv.iter().flat_map(|&(a, b)| [a, b]).collect();
            pts.sort_unstable();
            pts.dedup();
            pts.windows(2)
                .map(|w| (w[0], w[1]))
                .filter(|&(a, b)| iv.iter().any(|&(x, y)| x <= a && b <= y))
                .collect()
        }
        let mut cells = Vec::new();
        cells.extend(
            partition(&stack)
                .into_iter()
                .map(|(a, b)| Cell::Stack(a, b)),
        );
        cells.extend(
            partition(&global)
                .into_iter()
                .map(|(a, b)| Cell::Global(a, b, binary.is_read_only(a as u32))),
        );
        let mut keys: Vec<u32> = buffer_ranges.keys().copied().collect();
        keys.sort_unstable();
        for k in &keys {
            cells.extend(
                partition(&buffer_ranges[k])
                    .into_iter()
                    .map(|(a, b)| Cell::Buffer(*k, a, b)),
            );
        }
        cells.push(Cell::StackRest);
        cells.push(Cell::GlobalRest(false));
        cells.push(Cell::GlobalRest(true));
        cells.extend(keys.iter().map(|k| Cell::BufferRest(*k)));
        cells.push(Cell::Other);
        let saves = cells
            .iter()
            .map(|c| matches!(c, Cell::Stack(lo, hi) if saves.iter().any(|&o| i64::from(o) <= *lo && *hi <= i64::from(o) + 4)))
            .collect();
        CellTable {
            cells,
            saves,
            cache: HashMap::new(),
            escaped,
        }
    }

    /// Cells an access to `loc` may touch (`write`: for a store).
    fn of(&mut self, loc: AbstractLoc, write: bool) -> Vec<u32> {
        if let Some(v) = self.cache.get(&(loc, write)) {
            return v.clone();
        }
        let inside = |lo: i64, hi: i64, a: i64, b: i64| lo < b && a < hi;
        let escaped = self.escaped;
        let saves = &self.saves;
        let v: Vec<u32> = self
            .cells
            .iter()
            .enumerate()
            .filter(|(i, _)| loc.is_exact() || !saves[*i])
            .filter(|(_, c)| match (loc, **c) {
                (AbstractLoc::Stack { offset, size }, Cell::Stack(a, b)) => {
                    let lo = i64::from(offset);
                    inside(lo, lo + i64::from(size), a, b)
                }
                (AbstractLoc::StackAny, Cell::Stack(..) | Cell::StackRest) => true,
                (AbstractLoc::LocalAny, Cell::Stack(lo, _)) => lo < 0,
                (AbstractLoc::LocalAny, Cell::StackRest) => true,
                (AbstractLoc::Global { addr, size, .. }, Cell::Global(a, b, _)) => {
                    let lo = i64::from(addr);
                    inside(lo, lo + i64::from(size), a, b)
                }
                (
                    AbstractLoc::GlobalAny { read_only, .. },
                    Cell::Global(_, _, ro) | Cell::GlobalRest(ro),
                ) => ro == read_only,
                (AbstractLoc::Buffer { arg, offset, size }, Cell::Buffer(k, a, b)) => {
                    let lo = i64::from(offset);
                    arg == k && inside(lo, lo + i64::from(size), a, b)
                }
                (AbstractLoc::BufferAny { arg }, Cell::Buffer(k, ..) | Cell::BufferRest(k)) => {
                    arg == k
                }
                (AbstractLoc::Unknown, c) => match c {
                    Cell::Stack(..) | Cell::StackRest => escaped,
                    Cell::Global(_, _, ro) | Cell::GlobalRest(ro) => !ro,
                    Cell::Buffer(..) | Cell::BufferRest(_) | Cell::Other => true,
                },
                _ => false,
            })
            .map(|(i, _)| i as u32)
            .collect();
        let _ = write;
        self.cache.insert((loc, write), v.clone());
        v
    }
}

/// A definition: (defining node, location index).
type Def = (NodeIndex, usize);

struct StmtInfo {
    /// Uses: (location index, who uses it: graph node, use slot).
    uses: Vec<(usize, NodeIndex, UseRef)>,
    /// Definitions: (def id, must).
    defs: Vec<(usize, bool)>,
}

#[derive(Clone, Copy)]
enum UseRef {
    /// Part `p`'s use number `u`, cell position `c`.
    Part(usize, usize, usize),
    CallArg(usize, usize),
    CallReg(usize, usize),
    Exit(usize),
}

struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 != 0
    }
}

/// Builds the dependence graph of `program`.
pub(crate) fn build(
    program: &Program,
    stack: &StackInfo,
    callees: &[CalleeInfo],
    binary: &Binary,
    buffers: &[u32],
) -> Built {
    let pool = &program.pool;
    let nparts = program.parts.len();
    // ----- argument count and call effects in our terms -------------------
    let mut nargs = 0u32;
    for acc in &stack.accesses {
        for a in acc {
            if let AbstractLoc::Stack { offset, size } = a.loc {
                if offset >= 4 {
                    nargs = nargs.max((offset as u32 - 4) / 4 + 1);
                } else if i64::from(offset) + i64::from(size) > 4 {
                    nargs = nargs.max(1);
                }
            }
        }
    }
    for &k in buffers {
        nargs = nargs.max(k + 1);
    }
    let mapped: Vec<Vec<Option<AbstractLoc>>> = program
        .calls
        .iter()
        .enumerate()
        .map(|(i, _)| match &callees[i] {
            CalleeInfo::Opaque => vec![Some(AbstractLoc::Unknown)],
            CalleeInfo::Internal { nargs: cn, effects } => effects
                .iter()
                .map(|l| map_effect(*l, stack.callee_esp0[i], *cn))
                .collect(),
        })
        .collect();
    // ----- cells -----------------------------------------------------------
    let mut exact: Vec<AbstractLoc> = Vec::new();
    for acc in &stack.accesses {
        exact.extend(acc.iter().map(|a| a.loc).filter(|l| l.is_exact()));
    }
    for m in &mapped {
        exact.extend(m.iter().flatten().copied().filter(|l| l.is_exact()));
    }
    exact.push(AbstractLoc::Stack { offset: 0, size: 4 });
    for k in 0..nargs {
        exact.push(AbstractLoc::Stack {
            offset: 4 + 4 * k as i32,
            size: 4,
        });
    }
    let call_args: Vec<Vec<AbstractLoc>> = program
        .calls
        .iter()
        .enumerate()
        .map(|(i, _)| match (&callees[i], stack.callee_esp0[i]) {
            (CalleeInfo::Internal { nargs: cn, .. }, Some(ce)) => (0..*cn)
                .map(|k| AbstractLoc::Stack {
                    offset: ce + 4 + 4 * k as i32,
                    size: 4,
                })
                .collect(),
            (CalleeInfo::Internal { nargs: cn, .. }, None) => {
                vec![AbstractLoc::StackAny; *cn as usize]
            }
            _ => Vec::new(),
        })
        .collect();
    for a in &call_args {
        exact.extend(a.iter().copied().filter(|l| l.is_exact()));
    }
    let saves = save_slots(program, stack);
    let mut cells = CellTable::new(&exact, &saves.clone(), buffers, binary, stack.escaped);
    let nlocs = CELL0 + cells.cells.len();

    // ----- graph nodes ----------------------------------------------------
    let mut g: StableGraph<Node, EdgeKind> = StableGraph::new();
    let mut entry_nodes: Vec<(Input, NodeIndex)> = Vec::new();
    let mut entry_node = |g: &mut StableGraph<Node, EdgeKind>, i: Input| -> NodeIndex {
        if let Some((_, n)) = entry_nodes.iter().find(|(x, _)| *x == i) {
            return *n;
        }
        let n = g.add_node(Node::Entry(i));
        entry_nodes.push((i, n));
        n
    };
    let mut part_nodes = Vec::with_capacity(nparts);
    // Entry nodes first, in a fixed order.
    let mut entry_defs: Vec<Def> = Vec::new();
    for r in Reg::ALL {
        let n = entry_node(&mut g, Input::Reg(r));
        entry_defs.push((n, r.index()));
    }
    for f in Flag::ALL {
        let n = entry_node(&mut g, Input::Flag(f));
        entry_defs.push((n, NREG + f.index()));
    }
    let cell_list = cells.cells.clone();
    for (ci, c) in cell_list.iter().enumerate() {
        let inputs: Vec<Input> = match *c {
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
        };
        for i in inputs {
            let n = entry_node(&mut g, i);
            entry_defs.push((n, CELL0 + ci));
        }
    }
    for p in &program.parts {
        part_nodes.push(g.add_node(Node::Part(p.id)));
    }

    // ----- statements: uses and defs --------------------------------------
    let mut defs: Vec<Def> = Vec::new();
    let mut stmt_info: Vec<StmtInfo> = (0..program.stmts.len())
        .map(|_| StmtInfo {
            uses: Vec::new(),
            defs: Vec::new(),
        })
        .collect();
    let mut uses: Vec<Vec<Use>> = vec![Vec::new(); nparts];
    let mut seeds = Vec::new();
    let mut exempt = vec![false; nparts];
    let mut effects: Vec<(AbstractLoc, Vec<NodeIndex>)> = Vec::new();
    let add_effect =
        |loc: AbstractLoc, n: NodeIndex, effects: &mut Vec<(AbstractLoc, Vec<NodeIndex>)>| {
            let visible = match loc {
                AbstractLoc::Stack { offset, size } => i64::from(offset) + i64::from(size) > 4,
                AbstractLoc::LocalAny => false,
                AbstractLoc::Global { read_only, .. }
                | AbstractLoc::GlobalAny { read_only, .. } => !read_only,
                _ => true,
            };
            if !visible {
                return;
            }
            let loc = match loc {
                AbstractLoc::Buffer { .. } | AbstractLoc::BufferAny { .. } => AbstractLoc::Unknown,
                l => l,
            };
            match effects.iter_mut().find(|(l, _)| *l == loc) {
                Some((_, v)) => {
                    if !v.contains(&n) {
                        v.push(n)
                    }
                }
                None => effects.push((loc, vec![n])),
            }
        };
    for (i, d) in entry_defs.iter().enumerate() {
        defs.push(*d);
        stmt_info[ENTRY].defs.push((i, true));
    }
    let mut call_sites: Vec<CallSiteGraph> = Vec::new();
    for (s, stmt) in program.stmts.iter().enumerate() {
        match *stmt {
            Stmt::Part(pid) => {
                let p = pid.index();
                let info = &program.parts[p];
                let node = part_nodes[p];
                let st = stack.stack[p];
                let part = &info.part;
                let mut use_list: Vec<Use> = Vec::new();
                let add_use =
                    |what: UseWhat, locs: Vec<usize>, si: &mut StmtInfo, ul: &mut Vec<Use>| {
                        let u = ul.len();
                        ul.push(Use {
                            what,
                            cells: Vec::new(),
                        });
                        for (c, l) in locs.into_iter().enumerate() {
                            let cell = (l >= CELL0).then(|| (l - CELL0) as u32);
                            ul[u].cells.push((cell, Vec::new()));
                            si.uses.push((l, node, UseRef::Part(p, u, c)));
                        }
                    };
                if part.barrier.is_some() {
                    seeds.push(node);
                    for i in 0..NREG + NFLAG {
                        add_use(
                            UseWhat::Loc(index_loc(i)),
                            vec![i],
                            &mut stmt_info[s],
                            &mut use_list,
                        );
                    }
                    let acc = &stack.accesses[p];
                    for (ai, a) in acc.iter().enumerate() {
                        let cs = cells.of(a.loc, a.kind != AccessKind::Read);
                        if a.kind == AccessKind::Read {
                            add_use(
                                UseWhat::Access(ai),
                                cs.iter().map(|c| CELL0 + *c as usize).collect(),
                                &mut stmt_info[s],
                                &mut use_list,
                            );
                        } else {
                            for c in cs {
                                defs.push((node, CELL0 + c as usize));
                                stmt_info[s].defs.push((defs.len() - 1, false));
                            }
                            add_effect(a.loc, node, &mut effects);
                        }
                    }
                    defs.push((node, Reg::Eax.index()));
                    stmt_info[s].defs.push((defs.len() - 1, true));
                    uses[p] = use_list;
                    continue;
                }
                let roots = part_roots(part);
                let (data, addr) = formula_reads(pool, &roots);
                let mut regs: BTreeSet<Loc> = data.clone();
                for l in &addr {
                    let known = match l {
                        Loc::Reg(Reg::Esp) => st.esp != Offset::Unknown,
                        Loc::Reg(Reg::Ebp) => st.ebp != Offset::Unknown,
                        _ => false,
                    };
                    if !known {
                        regs.insert(*l);
                    }
                }
                let reads_esp =
                    data.contains(&Loc::Reg(Reg::Esp)) || addr.contains(&Loc::Reg(Reg::Esp));
                if reads_esp && st.esp == Offset::Unknown && stack.reachable[p] {
                    seeds.push(node);
                }
                for l in regs {
                    if let Some(i) = loc_index(l) {
                        add_use(UseWhat::Loc(l), vec![i], &mut stmt_info[s], &mut use_list);
                    }
                }
                for (ai, a) in stack.accesses[p].iter().enumerate() {
                    if a.kind == AccessKind::Read {
                        let cs = cells.of(a.loc, false);
                        add_use(
                            UseWhat::Access(ai),
                            cs.iter().map(|c| CELL0 + *c as usize).collect(),
                            &mut stmt_info[s],
                            &mut use_list,
                        );
                    }
                }
                // Definitions.
                let writes = part.writes();
                for l in &writes {
                    if let Some(i) = loc_index(*l) {
                        defs.push((node, i));
                        stmt_info[s].defs.push((defs.len() - 1, true));
                    }
                }
                for a in &stack.accesses[p] {
                    if a.kind == AccessKind::Read {
                        continue;
                    }
                    let must = a.kind == AccessKind::Write && a.loc.is_exact();
                    for c in cells.of(a.loc, true) {
                        defs.push((node, CELL0 + c as usize));
                        stmt_info[s].defs.push((defs.len() - 1, must));
                    }
                    add_effect(a.loc, node, &mut effects);
                }
                // Exemption: moves esp/ebp by a known amount (and flags).
                let after = stack.after[p];
                let moves = writes
                    .iter()
                    .any(|l| matches!(l, Loc::Reg(Reg::Esp | Reg::Ebp)));
                let only = writes.iter().all(|l| match l {
                    Loc::Reg(Reg::Esp) => after.esp != Offset::Unknown,
                    Loc::Reg(Reg::Ebp) => after.ebp != Offset::Unknown,
                    Loc::Flag(_) => true,
                    _ => false,
                });
                exempt[p] = moves && only && part.fault.is_none();
                uses[p] = use_list;
            }
            Stmt::Call(ci) => {
                let node = g.add_node(Node::Call(ci));
                let mut outputs = Vec::new();
                for r in [Reg::Eax, Reg::Ecx, Reg::Edx] {
                    let n = g.add_node(Node::CallOut(ci, CallOutput::Reg(r)));
                    outputs.push((CallOutput::Reg(r), None, n));
                    defs.push((n, r.index()));
                    stmt_info[s].defs.push((defs.len() - 1, true));
                }
                let n = g.add_node(Node::CallOut(ci, CallOutput::Flags));
                outputs.push((CallOutput::Flags, None, n));
                for f in Flag::ALL {
                    if f != Flag::Df {
                        defs.push((n, NREG + f.index()));
                        stmt_info[s].defs.push((defs.len() - 1, true));
                    }
                }
                for (ei, m) in mapped[ci].iter().enumerate() {
                    let Some(loc) = m else { continue };
                    let n = g.add_node(Node::CallOut(ci, CallOutput::Mem(*loc)));
                    outputs.push((CallOutput::Mem(*loc), Some(ei), n));
                    for c in cells.of(*loc, true) {
                        defs.push((n, CELL0 + c as usize));
                        stmt_info[s].defs.push((defs.len() - 1, false));
                    }
                    add_effect(*loc, n, &mut effects);
                }
                let args = &call_args[ci];
                for (k, a) in args.iter().enumerate() {
                    for c in cells.of(*a, false) {
                        stmt_info[s]
                            .uses
                            .push((CELL0 + c as usize, node, UseRef::CallArg(ci, k)));
                    }
                }
                for r in Reg::ALL {
                    stmt_info[s]
                        .uses
                        .push((r.index(), node, UseRef::CallReg(ci, r.index())));
                }
                call_sites.push(CallSiteGraph {
                    node,
                    outputs,
                    arg_defs: vec![Vec::new(); args.len()],
                    reg_defs: vec![Vec::new(); NREG],
                });
            }
            Stmt::Exit => {
                for (i, l) in [Reg::Eax, Reg::Ecx, Reg::Edx].iter().enumerate() {
                    stmt_info[s]
                        .uses
                        .push((l.index(), NodeIndex::end(), UseRef::Exit(i)));
                }
                for f in Flag::ALL {
                    if f != Flag::Df {
                        stmt_info[s].uses.push((
                            NREG + f.index(),
                            NodeIndex::end(),
                            UseRef::Exit(3),
                        ));
                    }
                }
            }
            Stmt::Entry | Stmt::Empty => {}
        }
    }

    // ----- reaching definitions -------------------------------------------
    let ndefs = defs.len();
    let mut defs_of: Vec<Vec<usize>> = vec![Vec::new(); nlocs];
    for (i, (_, l)) in defs.iter().enumerate() {
        defs_of[*l].push(i);
    }
    let nst = program.stmts.len();
    let mut inn: Vec<Bits> = (0..nst).map(|_| Bits::new(ndefs)).collect();
    let mut out: Vec<Bits> = (0..nst).map(|_| Bits::new(ndefs)).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for &s in &program.rpo {
            let mut cur = Bits::new(ndefs);
            for &p in &program.preds[s] {
                for (c, o) in cur.0.iter_mut().zip(out[p].0.iter()) {
                    *c |= *o;
                }
            }
            let mut o = Bits(cur.0.clone());
            for &(d, must) in &stmt_info[s].defs {
                if must {
                    for &k in &defs_of[defs[d].1] {
                        o.clear(k);
                    }
                }
            }
            for &(d, _) in &stmt_info[s].defs {
                o.set(d);
            }
            inn[s] = cur;
            if o.0 != out[s].0 {
                out[s] = o;
                changed = true;
            }
        }
    }

    // ----- data edges -----------------------------------------------------
    let mut edge_set: HashSet<(NodeIndex, NodeIndex, EdgeKind)> = HashSet::new();
    let mut edge_list: Vec<(NodeIndex, NodeIndex, EdgeKind)> = Vec::new();
    let mut add_edge = |a: NodeIndex, b: NodeIndex, k: EdgeKind, list: &mut Vec<_>| {
        if edge_set.insert((a, b, k)) {
            list.push((a, b, k));
        }
    };
    let mut exit_defs: Vec<(CallOutput, Vec<NodeIndex>)> = vec![
        (CallOutput::Reg(Reg::Eax), Vec::new()),
        (CallOutput::Reg(Reg::Ecx), Vec::new()),
        (CallOutput::Reg(Reg::Edx), Vec::new()),
        (CallOutput::Flags, Vec::new()),
    ];
    // Reaching (def node, loc) pairs per statement, for inheritance below.
    let mut reaching_users: Vec<(NodeIndex, usize, NodeIndex, usize)> = Vec::new(); // (def node, loc, user node, stmt)
    for s in 0..nst {
        for &(l, user, uref) in &stmt_info[s].uses {
            let srcs: Vec<NodeIndex> = defs_of[l]
                .iter()
                .filter(|&&d| inn[s].get(d))
                .map(|&d| defs[d].0)
                .collect();
            match uref {
                UseRef::Part(p, u, c) => {
                    let kind = match uses[p][u].what {
                        UseWhat::Loc(Loc::Reg(r)) => EdgeKind::Reg(r),
                        UseWhat::Loc(Loc::Flag(f)) => EdgeKind::Flag(f),
                        UseWhat::Loc(Loc::Temp(t)) => EdgeKind::Temp(t),
                        UseWhat::Loc(_) => EdgeKind::Control,
                        UseWhat::Access(ai) => EdgeKind::Mem(stack.accesses[p][ai].loc),
                    };
                    for &src in &srcs {
                        add_edge(src, user, kind, &mut edge_list);
                        reaching_users.push((src, l, user, s));
                    }
                    uses[p][u].cells[c].1 = srcs;
                }
                UseRef::CallArg(ci, k) => {
                    for &src in &srcs {
                        add_edge(src, user, EdgeKind::CallInput, &mut edge_list);
                    }
                    call_sites[ci].arg_defs[k].extend(srcs);
                }
                UseRef::CallReg(ci, r) => {
                    call_sites[ci].reg_defs[r].extend(srcs);
                }
                UseRef::Exit(i) => {
                    for src in srcs {
                        if !exit_defs[i].1.contains(&src) {
                            exit_defs[i].1.push(src);
                        }
                    }
                }
            }
        }
    }

    // ----- control dependences --------------------------------------------
    let exit = program.exit();
    let mut rg: DiGraph<(), ()> = DiGraph::with_capacity(nst, nst * 2);
    for _ in 0..nst {
        rg.add_node(());
    }
    for (a, ss) in program.succs.iter().enumerate() {
        for &b in ss {
            rg.add_edge(NodeIndex::new(b), NodeIndex::new(a), ());
        }
    }
    // Statements that cannot reach the exit (endless loops) get an edge to it.
    let reaches_exit = {
        let mut seen = vec![false; nst];
        let mut stack = vec![exit];
        seen[exit] = true;
        while let Some(n) = stack.pop() {
            for &p in &program.preds[n] {
                if !seen[p] {
                    seen[p] = true;
                    stack.push(p);
                }
            }
        }
        seen
    };
    for (s, r) in reaches_exit.iter().enumerate() {
        if !r && s != exit {
            rg.add_edge(NodeIndex::new(exit), NodeIndex::new(s), ());
        }
    }
    let pdom = simple_fast(&rg, NodeIndex::new(exit));
    let ipdom = |n: usize| {
        pdom.immediate_dominator(NodeIndex::new(n))
            .map(|x| x.index())
    };
    let mut cd: Vec<Vec<usize>> = vec![Vec::new(); nst];
    for &a in &program.rpo {
        let ss = &program.succs[a];
        if ss.len() < 2 {
            continue;
        }
        let stop = ipdom(a);
        for &b in ss {
            let mut runner = Some(b);
            while let Some(r) = runner {
                if Some(r) == stop || r == exit {
                    break;
                }
                if !cd[r].contains(&a) {
                    cd[r].push(a);
                }
                runner = ipdom(r);
            }
        }
    }
    let stmt_node = |s: usize| -> Option<NodeIndex> {
        match program.stmts[s] {
            Stmt::Part(p) => Some(part_nodes[p.index()]),
            _ => None,
        }
    };
    let mut exempt_cd: HashMap<NodeIndex, Vec<NodeIndex>> = HashMap::new();
    for (s, deps) in cd.iter().enumerate() {
        let branches: Vec<NodeIndex> = deps.iter().filter_map(|&b| stmt_node(b)).collect();
        if branches.is_empty() {
            continue;
        }
        match program.stmts[s] {
            Stmt::Part(p) => {
                let n = part_nodes[p.index()];
                if exempt[p.index()] {
                    exempt_cd.insert(n, branches);
                } else {
                    for b in branches {
                        add_edge(b, n, EdgeKind::Control, &mut edge_list);
                    }
                }
            }
            Stmt::Call(ci) => {
                let site = &call_sites[ci];
                let targets: Vec<NodeIndex> = std::iter::once(site.node)
                    .chain(site.outputs.iter().map(|o| o.2))
                    .collect();
                for b in &branches {
                    for &t in &targets {
                        add_edge(*b, t, EdgeKind::Control, &mut edge_list);
                    }
                }
            }
            _ => {}
        }
    }
    // Users of an exempt part's definitions inherit its control
    // dependences: always for flags, for esp/ebp where the user does not
    // see a known offset (different offsets met at a join).
    for (src, l, user, s) in reaching_users {
        let Some(branches) = exempt_cd.get(&src) else {
            continue;
        };
        let inherit = if l == Reg::Esp.index() || l == Reg::Ebp.index() {
            match program.stmts[s] {
                Stmt::Part(p) => {
                    let st = stack.stack[p.index()];
                    if l == Reg::Esp.index() {
                        st.esp == Offset::Unknown
                    } else {
                        st.ebp == Offset::Unknown
                    }
                }
                _ => true,
            }
        } else {
            true
        };
        if inherit {
            for &b in branches {
                add_edge(b, user, EdgeKind::Control, &mut edge_list);
            }
        }
    }
    for (a, b, k) in edge_list {
        g.add_edge(a, b, k);
    }
    Built {
        graph: DependenceGraph { g, part_nodes },
        entry_nodes,
        uses,
        cells: cells.cells,
        calls: call_sites,
        seeds,
        exit_defs,
        effects,
        nargs,
        exempt,
        save_slots: saves,
        access_locs: stack
            .accesses
            .iter()
            .map(|acc| acc.iter().map(|a| a.loc).collect())
            .collect(),
    }
}

/// Stack offsets where the entry block saves a callee-saved register
/// (`ebx`, `esi`, `edi`, `ebp`) it has not written yet: `push ebp`,
/// `mov [esp+0x30],esi`.
fn save_slots(program: &Program, stack: &StackInfo) -> Vec<i32> {
    let pool = &program.pool;
    let mut written: Vec<Reg> = Vec::new();
    let mut out = Vec::new();
    for p in &program.parts {
        if p.block != program.function.entry {
            break;
        }
        for e in &p.part.effects {
            if e.dst != Loc::Mem {
                continue;
            }
            let Value::Expr(x) = e.value else { continue };
            if pool.op(x) != Op::Store {
                continue;
            }
            let v = pool.args(x)[2];
            let reg = pool.as_var(v).and_then(|v| Loc::of_var(pool, v));
            if let Some(Loc::Reg(r @ (Reg::Ebx | Reg::Esi | Reg::Edi | Reg::Ebp))) = reg {
                if written.contains(&r) {
                    continue;
                }
                for a in &stack.accesses[p.id.index()] {
                    if let (AbstractLoc::Stack { offset, size: 4 }, AccessKind::Write) =
                        (a.loc, a.kind)
                    {
                        if offset < 0 {
                            out.push(offset);
                        }
                    }
                }
            }
        }
        for w in p.part.writes() {
            if let Loc::Reg(r) = w {
                written.push(r);
            }
        }
    }
    out
}

/// A callee's memory effect in the caller's terms (`None`: invisible to
/// the caller, e.g. the callee's own frame).
fn map_effect(loc: AbstractLoc, callee_esp0: Option<i32>, nargs: u32) -> Option<AbstractLoc> {
    match loc {
        AbstractLoc::Stack { offset, size } => {
            if i64::from(offset) + i64::from(size) <= 4 {
                return None;
            }
            Some(match callee_esp0 {
                Some(c) => AbstractLoc::Stack {
                    offset: c.wrapping_add(offset),
                    size,
                },
                None => AbstractLoc::StackAny,
            })
        }
        AbstractLoc::LocalAny => None,
        AbstractLoc::StackAny => match callee_esp0 {
            Some(_) if nargs == 0 => None,
            Some(c) => Some(AbstractLoc::Stack {
                offset: c + 4,
                size: 4 * nargs,
            }),
            None => Some(AbstractLoc::StackAny),
        },
        AbstractLoc::Global {
            read_only: true, ..
        }
        | AbstractLoc::GlobalAny {
            read_only: true, ..
        } => None,
        AbstractLoc::Global { .. } | AbstractLoc::GlobalAny { .. } | AbstractLoc::Unknown => {
            Some(loc)
        }
        AbstractLoc::Buffer { .. } | AbstractLoc::BufferAny { .. } => Some(AbstractLoc::Unknown),
    }
}
