//! Phase 4 of the graph build: the uses and definitions of each statement.
//!
//! Walks the statements once. A part uses the registers, flags and
//! temporaries its formulas read (`esp`/`ebp` in an address only where
//! their offset is unknown) and the cells its loads may touch; it defines
//! the locations it writes and the cells its stores may touch (an exact
//! store that always happens is a *must* definition, which kills). A call
//! gets its call node and output nodes, defines `eax`, `ecx`, `edx`, the
//! flags and the callee's effects, and uses the registers and the argument
//! slots; the exit uses `eax`, `ecx`, `edx` and the flags. On the way it
//! records the dynamic seeds, the parts that only move the stack, and the
//! memory effects a caller can see. It hands the [`Definitions`] to
//! reaching definitions and the edge phases.

use std::collections::BTreeSet;

use petgraph::graph::NodeIndex;
use wiper_sem::{Flag, Loc, Reg};
use wiper_x86::abi;

use super::cells::CellTable;
use super::interface::Interface;
use super::nodes::Nodes;
use super::{
    index_loc, loc_index, CallOutput, CallSiteGraph, Def, Node, Use, UseWhat, CELL0, EXIT_OUTPUTS,
    NFLAG, NREG,
};
use crate::memory::{AbstractLoc, AccessKind};
use crate::program::{formula_reads, part_roots, Program, Stmt, ENTRY};
use crate::stack::{Offset, StackInfo};

/// The uses and definitions of one statement.
pub(super) struct StmtInfo {
    /// Uses: (location index, who uses it: graph node, use slot).
    pub uses: Vec<(usize, NodeIndex, UseRef)>,
    /// Definitions: (def id, must).
    pub defs: Vec<(usize, bool)>,
}

/// Where the reaching definitions of a use go.
#[derive(Clone, Copy)]
pub(super) enum UseRef {
    /// Part `p`'s use number `u`, cell position `c`.
    Part(usize, usize, usize),
    /// Call site `ci`'s argument slot `k`.
    CallArg(usize, usize),
    /// Call site `ci`'s register (by index).
    CallReg(usize, usize),
    /// The exit's output `i` (eax, ecx, edx, flags).
    Exit(usize),
}

/// Every use and definition of the function, with what the walk found.
pub(super) struct Definitions {
    /// Every definition (def id = index), the entry's first.
    pub defs: Vec<Def>,
    /// Per statement: its uses and definitions.
    pub stmts: Vec<StmtInfo>,
    /// Per part: its uses (their reaching definitions still empty).
    pub uses: Vec<Vec<Use>>,
    /// Parts seeded dynamic: barriers, opaque parts, readers of an
    /// untracked `esp`.
    pub seeds: Vec<NodeIndex>,
    /// Per part: whether it only moves `esp`/`ebp` by a known amount.
    pub exempt: Vec<bool>,
    /// Memory a caller can see the function write, with the writing nodes.
    pub effects: Vec<(AbstractLoc, Vec<NodeIndex>)>,
    /// Per call site: its nodes (reaching definitions still empty).
    pub call_sites: Vec<CallSiteGraph>,
}

impl Definitions {
    /// Records that statement `s` defines location `loc` at `node`.
    fn def(&mut self, s: usize, node: NodeIndex, loc: usize, must: bool) {
        self.defs.push((node, loc));
        self.stmts[s].defs.push((self.defs.len() - 1, must));
    }

    /// Adds a use of the locations `locs` by `node`, part `p` of statement
    /// `s`, to the part's use list `list`.
    fn add_use(
        &mut self,
        (s, p, node): (usize, usize, NodeIndex),
        list: &mut Vec<Use>,
        what: UseWhat,
        locs: Vec<usize>,
    ) {
        let u = list.len();
        list.push(Use {
            what,
            cells: Vec::new(),
        });
        for (c, l) in locs.into_iter().enumerate() {
            let cell = (l >= CELL0).then(|| (l - CELL0) as u32);
            list[u].cells.push((cell, Vec::new()));
            self.stmts[s].uses.push((l, node, UseRef::Part(p, u, c)));
        }
    }

    /// Records that `n` writes `loc`, if a caller can see it.
    fn add_effect(&mut self, loc: AbstractLoc, n: NodeIndex) {
        let visible = match loc {
            AbstractLoc::Stack { offset, size } => i64::from(offset) + i64::from(size) > 4,
            AbstractLoc::LocalAny => false,
            AbstractLoc::Global { read_only, .. } | AbstractLoc::GlobalAny { read_only, .. } => {
                !read_only
            }
            _ => true,
        };
        if !visible {
            return;
        }
        let loc = match loc {
            AbstractLoc::Buffer { .. } | AbstractLoc::BufferAny { .. } => AbstractLoc::Unknown,
            l => l,
        };
        match self.effects.iter_mut().find(|(l, _)| *l == loc) {
            Some((_, v)) => {
                if !v.contains(&n) {
                    v.push(n)
                }
            }
            None => self.effects.push((loc, vec![n])),
        }
    }
}

/// The walk over the statements: its inputs and the result so far.
struct Walk<'a> {
    program: &'a Program,
    stack: &'a StackInfo,
    interface: &'a Interface,
    cells: &'a mut CellTable,
    nodes: &'a mut Nodes,
    out: Definitions,
}

/// Collects the uses and definitions of every statement of `program`,
/// adding the call nodes to `nodes`.
pub(super) fn definitions(
    program: &Program,
    stack: &StackInfo,
    interface: &Interface,
    cells: &mut CellTable,
    nodes: &mut Nodes,
) -> Definitions {
    let nparts = program.parts.len();
    let out = Definitions {
        defs: Vec::new(),
        stmts: (0..program.stmts.len())
            .map(|_| StmtInfo {
                uses: Vec::new(),
                defs: Vec::new(),
            })
            .collect(),
        uses: vec![Vec::new(); nparts],
        seeds: Vec::new(),
        exempt: vec![false; nparts],
        effects: Vec::new(),
        call_sites: Vec::new(),
    };
    let mut walk = Walk {
        program,
        stack,
        interface,
        cells,
        nodes,
        out,
    };
    for (n, l) in walk.nodes.entry_defs.clone() {
        walk.out.def(ENTRY, n, l, true);
    }
    for (s, stmt) in program.stmts.iter().enumerate() {
        match *stmt {
            Stmt::Part(pid) if program.parts[pid.index()].part.barrier.is_some() => {
                walk.barrier(s, pid.index())
            }
            Stmt::Part(pid) => walk.part(s, pid.index()),
            Stmt::Call(ci) => walk.call(s, ci),
            Stmt::Exit => walk.exit(s),
            Stmt::Entry | Stmt::Empty => {}
        }
    }
    walk.out
}

impl Walk<'_> {
    /// A barrier part (a system call, ...): seeded dynamic, uses every
    /// register and flag and what it may read, defines `eax` and what it
    /// may write.
    fn barrier(&mut self, s: usize, p: usize) {
        let node = self.nodes.part_nodes[p];
        let mut use_list: Vec<Use> = Vec::new();
        self.out.seeds.push(node);
        for i in 0..NREG + NFLAG {
            self.out.add_use(
                (s, p, node),
                &mut use_list,
                UseWhat::Loc(index_loc(i)),
                vec![i],
            );
        }
        for (ai, a) in self.stack.accesses[p].iter().enumerate() {
            let cs = self.cells.of(a.loc, a.kind != AccessKind::Read);
            if a.kind == AccessKind::Read {
                let locs = cs.iter().map(|c| CELL0 + *c as usize).collect();
                self.out
                    .add_use((s, p, node), &mut use_list, UseWhat::Access(ai), locs);
            } else {
                for c in cs {
                    self.out.def(s, node, CELL0 + c as usize, false);
                }
                self.out.add_effect(a.loc, node);
            }
        }
        self.out.def(s, node, Reg::Eax.index(), true);
        self.out.uses[p] = use_list;
    }

    /// An ordinary part.
    fn part(&mut self, s: usize, p: usize) {
        let node = self.nodes.part_nodes[p];
        let st = self.stack.stack[p];
        let part = &self.program.parts[p].part;
        let mut use_list: Vec<Use> = Vec::new();
        let roots = part_roots(part);
        let (data, addr) = formula_reads(&self.program.pool, &roots);
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
        let reads_esp = data.contains(&Loc::Reg(Reg::Esp)) || addr.contains(&Loc::Reg(Reg::Esp));
        // An opaque part (no formulas for its results) is dynamic whatever
        // it reads, like a reader of an untracked `esp`.
        let untracked = reads_esp && st.esp == Offset::Unknown;
        if (untracked || part.opaque.is_some()) && self.stack.reachable[p] {
            self.out.seeds.push(node);
        }
        for l in regs {
            if let Some(i) = loc_index(l) {
                self.out
                    .add_use((s, p, node), &mut use_list, UseWhat::Loc(l), vec![i]);
            }
        }
        for (ai, a) in self.stack.accesses[p].iter().enumerate() {
            if a.kind == AccessKind::Read {
                let cs = self.cells.of(a.loc, false);
                let locs = cs.iter().map(|c| CELL0 + *c as usize).collect();
                self.out
                    .add_use((s, p, node), &mut use_list, UseWhat::Access(ai), locs);
            }
        }
        // Definitions.
        let writes = part.writes();
        for l in &writes {
            if let Some(i) = loc_index(*l) {
                self.out.def(s, node, i, true);
            }
        }
        for a in &self.stack.accesses[p] {
            if a.kind == AccessKind::Read {
                continue;
            }
            let must = a.kind == AccessKind::Write && a.loc.is_exact();
            for c in self.cells.of(a.loc, true) {
                self.out.def(s, node, CELL0 + c as usize, must);
            }
            self.out.add_effect(a.loc, node);
        }
        // Exemption: moves esp/ebp by a known amount (and flags).
        let after = self.stack.after[p];
        let moves = writes
            .iter()
            .any(|l| matches!(l, Loc::Reg(Reg::Esp | Reg::Ebp)));
        let only = writes.iter().all(|l| match l {
            Loc::Reg(Reg::Esp) => after.esp != Offset::Unknown,
            Loc::Reg(Reg::Ebp) => after.ebp != Offset::Unknown,
            Loc::Flag(_) => true,
            _ => false,
        });
        self.out.exempt[p] = moves && only && part.fault.is_none();
        self.out.uses[p] = use_list;
    }

    /// Call site `ci`: its call node and one node per callee output.
    fn call(&mut self, s: usize, ci: usize) {
        let g = &mut self.nodes.g;
        let node = g.add_node(Node::Call(ci));
        let mut outputs = Vec::new();
        for r in abi::CALLER_SAVED {
            let n = g.add_node(Node::CallOut(ci, CallOutput::Reg(r)));
            outputs.push((CallOutput::Reg(r), None, n));
            self.out.def(s, n, r.index(), true);
        }
        let n = g.add_node(Node::CallOut(ci, CallOutput::Flags));
        outputs.push((CallOutput::Flags, None, n));
        for f in Flag::ALL {
            if f != Flag::Df {
                self.out.def(s, n, NREG + f.index(), true);
            }
        }
        for (ei, m) in self.interface.mapped[ci].iter().enumerate() {
            let Some(loc) = m else { continue };
            let n = g.add_node(Node::CallOut(ci, CallOutput::Mem(*loc)));
            outputs.push((CallOutput::Mem(*loc), Some(ei), n));
            for c in self.cells.of(*loc, true) {
                self.out.def(s, n, CELL0 + c as usize, false);
            }
            self.out.add_effect(*loc, n);
        }
        let args = &self.interface.call_args[ci];
        let uses = &mut self.out.stmts[s].uses;
        for (k, a) in args.iter().enumerate() {
            for c in self.cells.of(*a, false) {
                uses.push((CELL0 + c as usize, node, UseRef::CallArg(ci, k)));
            }
        }
        for r in Reg::ALL {
            uses.push((r.index(), node, UseRef::CallReg(ci, r.index())));
        }
        self.out.call_sites.push(CallSiteGraph {
            node,
            outputs,
            arg_defs: vec![Vec::new(); args.len()],
            reg_defs: vec![Vec::new(); NREG],
        });
    }

    /// The exit: uses `eax`, `ecx`, `edx` and the flags ([`EXIT_OUTPUTS`]).
    fn exit(&mut self, s: usize) {
        let uses = &mut self.out.stmts[s].uses;
        for (i, o) in EXIT_OUTPUTS.iter().enumerate() {
            match o {
                CallOutput::Reg(r) => uses.push((r.index(), NodeIndex::end(), UseRef::Exit(i))),
                _ => {
                    for f in Flag::ALL {
                        if f != Flag::Df {
                            uses.push((NREG + f.index(), NodeIndex::end(), UseRef::Exit(i)));
                        }
                    }
                }
            }
        }
    }
}
