//! Phase 7 of the graph build: control edges.
//!
//! Post-dominators of the statement graph (petgraph's `simple_fast` on the
//! reversed graph from the virtual exit; statements that cannot reach the
//! exit get an edge to it) give the control dependences
//! (Ferrante-Ottenstein-Warren). A branch part gets a `Control` edge to
//! every part and call node that depends on it, except to a part that only
//! moves the stack: the users of such a part's definitions inherit its
//! control dependences instead (always for flags, for `esp`/`ebp` where the
//! user does not see a known offset). It adds these edges to the
//! [`EdgeList`], which is then the graph's complete edge list.

use std::collections::HashMap;

use petgraph::algo::dominators::simple_fast;
use petgraph::graph::{DiGraph, NodeIndex};
use wiper_sem::Reg;

use super::data_edges::{EdgeList, ReachedUse};
use super::definitions::Definitions;
use super::EdgeKind;
use crate::program::{Program, Stmt};
use crate::stack::{Offset, StackInfo};

/// Adds the control edges of `program` to `edges`; `reached` lists the
/// definitions reaching each part's uses (from the data edges phase).
pub(super) fn control_edges(
    program: &Program,
    stack: &StackInfo,
    part_nodes: &[NodeIndex],
    defs: &Definitions,
    reached: &[ReachedUse],
    edges: &mut EdgeList,
) {
    let cd = control_dependences(program);
    let exempt_cd = direct_edges(program, part_nodes, defs, &cd, edges);
    inherited_edges(program, stack, &exempt_cd, reached, edges);
}

/// Per statement: the branch statements it is control dependent on.
fn control_dependences(program: &Program) -> Vec<Vec<usize>> {
    let nst = program.stmts.len();
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
    cd
}

/// Adds the edges from the branch parts to the parts and call nodes
/// control dependent on them; returns, per part that only moves the stack,
/// its branches instead.
fn direct_edges(
    program: &Program,
    part_nodes: &[NodeIndex],
    defs: &Definitions,
    cd: &[Vec<usize>],
    edges: &mut EdgeList,
) -> HashMap<NodeIndex, Vec<NodeIndex>> {
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
                if defs.exempt[p.index()] {
                    exempt_cd.insert(n, branches);
                } else {
                    for b in branches {
                        edges.add(b, n, EdgeKind::Control);
                    }
                }
            }
            Stmt::Call(ci) => {
                let site = &defs.call_sites[ci];
                let targets: Vec<NodeIndex> = std::iter::once(site.node)
                    .chain(site.outputs.iter().map(|o| o.2))
                    .collect();
                for b in &branches {
                    for &t in &targets {
                        edges.add(*b, t, EdgeKind::Control);
                    }
                }
            }
            _ => {}
        }
    }
    exempt_cd
}

/// Users of an exempt part's definitions inherit its control dependences:
/// always for flags, for esp/ebp where the user does not see a known
/// offset (different offsets met at a join).
fn inherited_edges(
    program: &Program,
    stack: &StackInfo,
    exempt_cd: &HashMap<NodeIndex, Vec<NodeIndex>>,
    reached: &[ReachedUse],
    edges: &mut EdgeList,
) {
    for r in reached {
        let Some(branches) = exempt_cd.get(&r.def) else {
            continue;
        };
        let l = r.loc;
        let inherit = if l == Reg::Esp.index() || l == Reg::Ebp.index() {
            match program.stmts[r.stmt] {
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
                edges.add(b, r.user, EdgeKind::Control);
            }
        }
    }
}
