//! The program the analysis works on: every instruction of a function's CFG
//! lifted into decoupled parts (one [`ExprPool`]), and the flow graph over
//! *statements*: the parts, plus an entry, an exit, a statement per call
//! (the callee's effect, between the call's jump and the return site) and a
//! placeholder for a block without parts.
//!
//! It also says which locations a part's formulas read ([`part_roots`],
//! [`formula_reads`]): the stack tracking (liveness) and the dependence
//! graph (uses) both need it, so it lives here, before either.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;

use iced_x86::Mnemonic;
use wiper_qfbv::{ExprId, ExprPool, Op};
use wiper_sem::{lift, Loc, Part};
use wiper_x86::{CallTarget, Function, Instruction, Successor};

use crate::error::BtaError;

/// Dense index of a part of the analysed function, in address order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartId(pub u32);

impl PartId {
    /// The index as a `usize`, for indexing [`crate::Analysis::parts`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A part with its place in the function.
#[derive(Debug, Clone)]
pub struct PartInfo {
    /// Its id.
    pub id: PartId,
    /// Start address of the block holding its instruction.
    pub block: u32,
    /// Address of its original instruction (also `part.origin`).
    pub address: u32,
    /// Index of its instruction in [`crate::Analysis::instructions`].
    pub instruction: usize,
    /// The part: text, formulas (in [`crate::Analysis::pool`]), barrier.
    pub part: Part,
}

/// An original instruction and the range of its parts.
#[derive(Debug, Clone)]
pub struct InstructionInfo {
    /// Its address.
    pub address: u32,
    /// Start address of its block.
    pub block: u32,
    /// The decoded instruction.
    pub instruction: Instruction,
    /// Its parts, as a range of [`PartId`] indices (empty for `nop`s).
    pub parts: Range<u32>,
}

/// A flow-graph statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stmt {
    /// Function entry: defines every input.
    Entry,
    /// A part.
    Part(PartId),
    /// The effect of the callee of call site `usize` (index into `calls`).
    Call(usize),
    /// A block without parts.
    Empty,
    /// The virtual exit.
    Exit,
}

/// A call or tail call.
#[derive(Debug, Clone)]
pub(crate) struct CallInfo {
    /// The callee.
    pub target: CallTarget,
    /// The part that jumps to the callee.
    pub jump: PartId,
    /// A tail call (the callee returns to our caller).
    pub tail: bool,
}

/// A function lifted into parts, with its statement flow graph.
pub(crate) struct Program {
    pub function: Function,
    pub pool: ExprPool,
    pub parts: Vec<PartInfo>,
    pub instructions: Vec<InstructionInfo>,
    pub stmts: Vec<Stmt>,
    pub succs: Vec<Vec<usize>>,
    pub preds: Vec<Vec<usize>>,
    /// Statement of each part.
    pub part_stmt: Vec<usize>,
    pub calls: Vec<CallInfo>,
    /// Bytes of arguments `ret N` pops (0 for cdecl).
    pub ret_pop: u32,
    /// Statements in reverse post-order from the entry (reachable ones).
    pub rpo: Vec<usize>,
}

pub(crate) const ENTRY: usize = 0;

impl Program {
    /// Lifts every instruction of `function` and builds the flow graph.
    pub fn new(function: Function) -> Result<Program, BtaError> {
        let mut pool = ExprPool::new();
        let mut parts: Vec<PartInfo> = Vec::new();
        let mut instructions = Vec::new();
        let mut stmts = vec![Stmt::Entry];
        let mut part_stmt = Vec::new();
        let mut calls = Vec::new();
        let mut edges: Vec<(usize, usize)> = Vec::new();
        let mut ret_pop = 0;
        // Per block: first statement, last "fall-out" statement.
        let mut block_first = std::collections::BTreeMap::new();
        let mut pending: Vec<(usize, u32, Option<usize>)> = Vec::new(); // (last stmt, block start, call stmt)
        let mut exits: Vec<usize> = Vec::new();
        for block in function.blocks.values() {
            let first = stmts.len();
            block_first.insert(block.start, first);
            for ins in &block.instructions {
                if ins.mnemonic() == Mnemonic::Ret && ins.op_count() == 1 {
                    ret_pop = ret_pop.max(u32::from(ins.immediate16()));
                }
                let lifted = lift(&mut pool, ins)?;
                let start = parts.len() as u32;
                let first_stmt = stmts.len();
                for part in lifted.parts.iter() {
                    let id = PartId(parts.len() as u32);
                    if stmts.len() > first {
                        edges.push((stmts.len() - 1, stmts.len()));
                    }
                    part_stmt.push(stmts.len());
                    stmts.push(Stmt::Part(id));
                    parts.push(PartInfo {
                        id,
                        block: block.start,
                        address: ins.ip32(),
                        instruction: instructions.len(),
                        part: part.clone(),
                    });
                }
                if lifted.is_rep_loop() && !lifted.parts.is_empty() {
                    edges.push((stmts.len() - 1, first_stmt));
                }
                instructions.push(InstructionInfo {
                    address: ins.ip32(),
                    block: block.start,
                    instruction: *ins,
                    parts: start..parts.len() as u32,
                });
            }
            if stmts.len() == first {
                stmts.push(Stmt::Empty);
            }
            let last = stmts.len() - 1;
            let mut call_stmt = None;
            for s in &block.successors {
                // An unresolved indirect jump leaves the function as far as
                // the CFG knows: a tail call to an unknown target.
                let target = match s {
                    Successor::Call(t) | Successor::TailCall(t) => Some(t.clone()),
                    Successor::IndirectJump => Some(CallTarget::Indirect),
                    _ => None,
                };
                if let Some(t) = target {
                    let tail = !matches!(s, Successor::Call(_));
                    let jump = match stmts[last] {
                        Stmt::Part(p) => p,
                        _ => continue,
                    };
                    let stmt = stmts.len();
                    stmts.push(Stmt::Call(calls.len()));
                    calls.push(CallInfo {
                        target: t,
                        jump,
                        tail,
                    });
                    edges.push((last, stmt));
                    if tail {
                        exits.push(stmt);
                    } else {
                        call_stmt = Some(stmt);
                    }
                }
            }
            let leaves = block
                .successors
                .iter()
                .any(|s| matches!(s, Successor::Return | Successor::Halt));
            if leaves {
                exits.push(last);
            }
            pending.push((last, block.start, call_stmt));
        }
        let exit = stmts.len();
        stmts.push(Stmt::Exit);
        for (last, start, call_stmt) in pending {
            let block = &function.blocks[&start];
            let from = call_stmt.unwrap_or(last);
            let mut any = false;
            for succ in block.local_successors() {
                if let Some(&to) = block_first.get(&succ) {
                    edges.push((from, to));
                    any = true;
                }
            }
            let has_tail = block
                .successors
                .iter()
                .any(|s| matches!(s, Successor::TailCall(_) | Successor::IndirectJump));
            if !any && !has_tail {
                exits.push(from);
            }
        }
        for e in exits {
            edges.push((e, exit));
        }
        let mut succs = vec![Vec::new(); stmts.len()];
        let mut preds = vec![Vec::new(); stmts.len()];
        if let Some(&first) = block_first.get(&function.entry) {
            edges.push((ENTRY, first));
        }
        edges.sort_unstable();
        edges.dedup();
        for (a, b) in edges {
            succs[a].push(b);
            preds[b].push(a);
        }
        let rpo = reverse_post_order(&succs, ENTRY);
        Ok(Program {
            function,
            pool,
            parts,
            instructions,
            stmts,
            succs,
            preds,
            part_stmt,
            calls,
            ret_pop,
            rpo,
        })
    }

    /// The exit statement.
    pub fn exit(&self) -> usize {
        self.stmts.len() - 1
    }
}

/// Reverse post-order of the nodes reachable from `root`.
pub(crate) fn reverse_post_order(succs: &[Vec<usize>], root: usize) -> Vec<usize> {
    let mut visited = vec![false; succs.len()];
    let mut order = Vec::with_capacity(succs.len());
    let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
    visited[root] = true;
    while let Some((n, i)) = stack.pop() {
        if i < succs[n].len() {
            stack.push((n, i + 1));
            let s = succs[n][i];
            if !visited[s] {
                visited[s] = true;
                stack.push((s, 0));
            }
        } else {
            order.push(n);
        }
    }
    order.reverse();
    order
}

/// Registers and flags read as data and as addresses by `roots`.
pub(crate) fn formula_reads(pool: &ExprPool, roots: &[ExprId]) -> (BTreeSet<Loc>, BTreeSet<Loc>) {
    let mut data = BTreeSet::new();
    let mut addr = BTreeSet::new();
    let mut seen: HashSet<(ExprId, bool)> = HashSet::new();
    let mut stack: Vec<(ExprId, bool)> = roots.iter().map(|&r| (r, false)).collect();
    while let Some((e, in_addr)) = stack.pop() {
        if !seen.insert((e, in_addr)) {
            continue;
        }
        match pool.op(e) {
            Op::Var(v) => {
                if let Some(l) = Loc::of_var(pool, v) {
                    if l != Loc::Mem {
                        if in_addr {
                            addr.insert(l);
                        } else {
                            data.insert(l);
                        }
                    }
                }
            }
            Op::Load(_) => {
                let a = pool.args(e);
                stack.push((a[0], in_addr));
                stack.push((a[1], true));
            }
            Op::Store => {
                let a = pool.args(e);
                stack.push((a[0], in_addr));
                stack.push((a[1], true));
                stack.push((a[2], in_addr));
            }
            _ => stack.extend(pool.args(e).iter().map(|&a| (a, in_addr))),
        }
    }
    (data, addr)
}

/// The roots of a part's formulas (with an opaque part's inputs).
pub(crate) fn part_roots(part: &Part) -> Vec<ExprId> {
    part.formulas()
}
