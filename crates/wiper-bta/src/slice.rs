//! Binding times: forward slicing from the dynamic inputs over the
//! dependence graph, and lifting.

use std::collections::VecDeque;
use std::fmt;

use petgraph::graph::NodeIndex;
use petgraph::visit::{EdgeRef, NodeIndexable};
use wiper_sem::{Flag, Loc, Reg, Temp};

use crate::graph::{Built, EdgeKind, Input, UseWhat};
use crate::memory::AbstractLoc;

/// A static location a Lifted part reads: its value must be folded into
/// the residual instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StaticRead {
    /// A register.
    Reg(Reg),
    /// A flag.
    Flag(Flag),
    /// A temporary of the decoupled sequence.
    Temp(Temp),
    /// Memory: a stack slot, a global, read-only data, buffer contents.
    Mem(AbstractLoc),
}

impl fmt::Display for StaticRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaticRead::Reg(r) => f.write_str(r.name()),
            StaticRead::Flag(fl) => f.write_str(fl.name()),
            StaticRead::Temp(t) => write!(f, "{t}"),
            StaticRead::Mem(l) => write!(f, "{l}"),
        }
    }
}

/// The binding time of a part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindingTime {
    /// Reads only static values and runs under static control: evaluated
    /// at specialization time.
    Static,
    /// Stays in the residual code as it is.
    Dynamic,
    /// Stays in the residual code, but reads static locations whose values
    /// must be folded into it (listed).
    Lifted(Vec<StaticRead>),
}

impl BindingTime {
    /// `S`, `D` or `L`.
    pub fn letter(&self) -> char {
        match self {
            BindingTime::Static => 'S',
            BindingTime::Dynamic => 'D',
            BindingTime::Lifted(_) => 'L',
        }
    }

    /// Whether the part is evaluated at specialization time.
    pub fn is_static(&self) -> bool {
        *self == BindingTime::Static
    }
}

/// Which inputs of a function are static: the unit of interprocedural
/// memoization (per callee and pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern {
    /// Bit `r` set: register `r` (encoding order) is static at entry.
    pub regs: u8,
    /// Bit `k` set: stack argument `k` is static (arguments 64 and up are
    /// always dynamic).
    pub args: u64,
}

impl Pattern {
    /// Whether argument `k` is static.
    pub fn arg(&self, k: u32) -> bool {
        k < 64 && self.args >> k & 1 != 0
    }

    /// Whether register `r` is static.
    pub fn reg(&self, r: Reg) -> bool {
        self.regs >> r.index() & 1 != 0
    }
}

/// Whether each entry input is dynamic under `pattern`.
pub(crate) fn input_dynamic(i: Input, pattern: &Pattern) -> bool {
    match i {
        Input::Reg(Reg::Esp) => false,
        Input::Reg(r) => !pattern.reg(r),
        Input::Flag(Flag::Df) => false,
        Input::Flag(_) => true,
        Input::Arg(k) => !pattern.arg(k),
        Input::ReturnAddress => true,
        Input::Stack => false,
        Input::Globals => true,
        Input::ReadOnly => false,
        Input::Buffer(_) => false,
        Input::Memory => true,
    }
}

/// Forward slice: every node reachable from `seeds` over data and control
/// edges (not [`EdgeKind::CallInput`]).
pub(crate) fn slice(built: &Built, seeds: &[NodeIndex], control: bool) -> Vec<bool> {
    let g = &built.graph.g;
    let mut dynamic = vec![false; g.node_bound()];
    let mut queue: VecDeque<NodeIndex> = VecDeque::new();
    for &s in seeds {
        if !dynamic[s.index()] {
            dynamic[s.index()] = true;
            queue.push_back(s);
        }
    }
    while let Some(n) = queue.pop_front() {
        for e in g.edges(n) {
            if *e.weight() == EdgeKind::CallInput || (!control && *e.weight() == EdgeKind::Control)
            {
                continue;
            }
            let t = e.target();
            if !dynamic[t.index()] {
                dynamic[t.index()] = true;
                queue.push_back(t);
            }
        }
    }
    dynamic
}

/// Binding times of the parts, given the dynamic nodes.
pub(crate) fn binding_times(built: &Built, dynamic: &[bool]) -> Vec<BindingTime> {
    built
        .graph
        .part_nodes
        .iter()
        .enumerate()
        .map(|(p, &n)| {
            if !dynamic[n.index()] {
                return BindingTime::Static;
            }
            let mut reads: Vec<StaticRead> = Vec::new();
            for u in &built.uses[p] {
                let all_static = |defs: &[NodeIndex]| defs.iter().all(|d| !dynamic[d.index()]);
                match u.what {
                    UseWhat::Loc(l) => {
                        let defs = &u.cells[0].1;
                        if !defs.is_empty() && all_static(defs) {
                            reads.push(match l {
                                Loc::Reg(r) => StaticRead::Reg(r),
                                Loc::Flag(f) => StaticRead::Flag(f),
                                Loc::Temp(t) => StaticRead::Temp(t),
                                _ => continue,
                            });
                        }
                    }
                    UseWhat::Access(ai) => {
                        let loc = built.access_locs[p][ai];
                        if u.cells.iter().all(|(_, d)| all_static(d)) {
                            reads.push(StaticRead::Mem(loc));
                        } else if !loc.is_exact() {
                            // A wide access reading some static cells: list them.
                            let mut cells: Vec<AbstractLoc> = u
                                .cells
                                .iter()
                                .filter(|(_, d)| {
                                    !d.is_empty()
                                        && all_static(d)
                                        && d.iter().any(|n| {
                                            !matches!(
                                                built.graph.g[*n],
                                                crate::graph::Node::Entry(
                                                    crate::graph::Input::Stack
                                                )
                                            )
                                        })
                                })
                                .filter_map(|(c, _)| c.and_then(|c| built.cells[c as usize].loc()))
                                .collect();
                            cells.sort();
                            reads.extend(merge(cells).into_iter().map(StaticRead::Mem));
                        }
                    }
                }
            }
            reads.sort();
            reads.dedup();
            if reads.is_empty() {
                BindingTime::Dynamic
            } else {
                BindingTime::Lifted(reads)
            }
        })
        .collect()
}

/// Merges adjacent stack (or global, or buffer) ranges.
fn merge(cells: Vec<AbstractLoc>) -> Vec<AbstractLoc> {
    let mut out: Vec<AbstractLoc> = Vec::new();
    for c in cells {
        if let Some(last) = out.last_mut() {
            match (*last, c) {
                (
                    AbstractLoc::Stack {
                        offset: a,
                        size: an,
                    },
                    AbstractLoc::Stack {
                        offset: b,
                        size: bn,
                    },
                ) if i64::from(a) + i64::from(an) == i64::from(b) => {
                    *last = AbstractLoc::Stack {
                        offset: a,
                        size: an + bn,
                    };
                    continue;
                }
                (
                    AbstractLoc::Global {
                        addr: a,
                        size: an,
                        read_only,
                    },
                    AbstractLoc::Global {
                        addr: b,
                        size: bn,
                        read_only: r2,
                    },
                ) if u64::from(a) + u64::from(an) == u64::from(b) && read_only == r2 => {
                    *last = AbstractLoc::Global {
                        addr: a,
                        size: an + bn,
                        read_only,
                    };
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}
