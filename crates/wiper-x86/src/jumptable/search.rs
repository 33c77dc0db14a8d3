//! The search of the paths into an instruction: starting with the
//! instruction's own block, a path is extended backwards, one predecessor at
//! a time, only while it does not settle what is asked (a jump's table, a
//! register's value); every predecessor is followed, so the answer holds on
//! every path into the instruction.

use std::cell::RefCell;
use std::collections::BTreeMap;

use iced_x86::FlowControl;
use wiper_elf::Binary;

use super::eval::{Context, Eval};
use super::frame::Frame;
use super::value::{Src, Value};
use super::{MAX_BLOCKS, MAX_DEPTH, MAX_PATHS};
use crate::locate::pc_thunk_register;
use crate::{Block, Successor};

/// The blocks of a (partly) decoded function, their predecessors and its
/// stack frame.
pub(crate) struct Graph<'b> {
    pub binary: &'b Binary,
    pub blocks: &'b BTreeMap<u32, Block>,
    preds: BTreeMap<u32, Vec<u32>>,
    entry: u32,
    /// Bytes each call pops on return (`None`: not known).
    pops: BTreeMap<u32, Option<u32>>,
    frame: Frame,
    /// The registers that hold the same constant whenever a block starts (a
    /// GOT address, or a table's, kept in a register through a loop).
    consts: BTreeMap<u32, [Option<u32>; 8]>,
    /// Values of invariant frame slots found so far, by offset and depth.
    slots: RefCell<BTreeMap<(i32, u32), Option<u32>>>,
}

impl<'b> Graph<'b> {
    /// The graph of `blocks` of a function of `binary`, entered at `entry`;
    /// `pops` has the bytes the call at each address pops on return.
    pub fn new(
        binary: &'b Binary,
        blocks: &'b BTreeMap<u32, Block>,
        entry: u32,
        pops: BTreeMap<u32, Option<u32>>,
    ) -> Graph<'b> {
        let mut preds: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for b in blocks.values() {
            for s in b.local_successors() {
                let list = preds.entry(s).or_default();
                if !list.contains(&b.start) {
                    list.push(b.start);
                }
            }
        }
        let frame = Frame::new(blocks, entry, &|call| pops.get(&call).copied().flatten());
        let mut graph = Graph {
            binary,
            blocks,
            preds,
            entry,
            pops,
            frame,
            consts: BTreeMap::new(),
            slots: RefCell::new(BTreeMap::new()),
        };
        // First without the values of frame slots, which need these; then
        // with them (a GOT address reloaded from a slot).
        graph.consts = graph.constants(&Plain(&graph), 0);
        graph.consts = graph.constants(&graph, MAX_DEPTH);
        graph
    }

    /// Constant propagation over the registers: at each block's start, the
    /// registers that hold one constant on every path from the entry.
    fn constants(&self, ctx: &dyn Context, depth: u32) -> BTreeMap<u32, [Option<u32>; 8]> {
        let mut at: BTreeMap<u32, [Option<u32>; 8]> = BTreeMap::new();
        let mut work = vec![(self.entry, [None; 8])];
        while let Some((start, incoming)) = work.pop() {
            let Some(block) = self.blocks.get(&start) else {
                continue;
            };
            let state = match at.get(&start) {
                None => incoming,
                Some(old) => {
                    let merged = std::array::from_fn(|i| old[i].filter(|_| old[i] == incoming[i]));
                    if merged == *old {
                        continue;
                    }
                    merged
                }
            };
            at.insert(start, state);
            let (esp, ebp) = self.frame.heights(start);
            let mut ev = Eval::new(ctx, state, (esp.known(), ebp.known()), depth);
            for ins in &block.instructions {
                ev.step(ins);
            }
            let out = ev.consts();
            work.extend(block.local_successors().map(|s| (s, out)));
        }
        at
    }

    /// `path`, started before the pc-thunk call its first block returns from:
    /// a path never starts between `call __x86.get_pc_thunk.bx` and the `add
    /// ebx, ...` that makes the GOT address of it (a register at the start of
    /// a path is taken to hold the GOT where PIC code uses it as one).
    fn after_thunk(&self, mut path: Vec<u32>) -> Vec<u32> {
        while let Some(&[p]) = self.preds.get(&path[0]).map(Vec::as_slice) {
            let calls_thunk = self.blocks[&p].instructions.last().is_some_and(|i| {
                i.flow_control() == FlowControl::Call
                    && pc_thunk_register(self.binary, i.near_branch32()).is_some()
            });
            if !calls_thunk || path.contains(&p) {
                break;
            }
            path.insert(0, p);
        }
        path
    }

    /// Queues the paths one block longer than `path`, one per predecessor of
    /// its first block; `None` when there is none to try (the function's
    /// entry, or the longest path searched).
    fn extend(&self, path: Vec<u32>, open: &mut Vec<Vec<u32>>) -> Option<()> {
        let first = path[0];
        let preds = self.preds.get(&first)?;
        if first == self.entry || path.len() >= MAX_BLOCKS {
            return None;
        }
        for &p in preds {
            let mut longer = Vec::with_capacity(path.len() + 1);
            longer.push(p);
            longer.extend_from_slice(&path);
            open.push(self.after_thunk(longer));
        }
        Some(())
    }
}

/// The graph as a context that knows no frame slot.
struct Plain<'g, 'b>(&'g Graph<'b>);

impl Context for Plain<'_, '_> {
    fn binary(&self) -> &Binary {
        self.0.binary
    }

    fn pops(&self, call: u32) -> Option<u32> {
        self.0.pops(call)
    }

    fn slot(&self, _: i32, _: u32) -> Option<u32> {
        None
    }
}

impl Context for Graph<'_> {
    fn binary(&self) -> &Binary {
        self.binary
    }

    fn pops(&self, call: u32) -> Option<u32> {
        self.pops.get(&call).copied().flatten()
    }

    /// The value the one `mov [slot], r32` of the function stores, when the
    /// same constant on every path into it.
    fn slot(&self, offset: i32, depth: u32) -> Option<u32> {
        if depth == 0 {
            return None;
        }
        if let Some(known) = self.slots.borrow().get(&(offset, depth)) {
            return *known;
        }
        // A cycle of slots fails rather than recurring.
        self.slots.borrow_mut().insert((offset, depth), None);
        let value = self
            .frame
            .invariant_store(offset)
            .and_then(|((block, at), reg)| {
                let judge = |ev: &Eval<'_>| match ev.reg(reg) {
                    Value::Const(c) => Step::Found(c),
                    Value::Lin(l) if matches!(l.src, Src::Reg(_)) => Step::Longer,
                    _ => Step::Fail,
                };
                search(self, block, at, depth - 1, &judge, &|a, b| {
                    (a == b).then_some(a)
                })
            });
        self.slots.borrow_mut().insert((offset, depth), value);
        value
    }
}

/// What one path shows.
pub(super) enum Step<T> {
    /// No execution takes the path.
    Infeasible,
    Found(T),
    /// A longer path may show it.
    Longer,
    /// No path will.
    Fail,
}

/// Evaluates the paths into instruction `stop` of block `block` (before
/// it), asking `judge` of each; the answers of all of them merged by
/// `merge`, when every path has one (or is infeasible).
pub(super) fn search<T>(
    graph: &Graph<'_>,
    block: u32,
    stop: usize,
    depth: u32,
    judge: &dyn Fn(&Eval<'_>) -> Step<T>,
    merge: &dyn Fn(T, T) -> Option<T>,
) -> Option<T> {
    let mut open = vec![graph.after_thunk(vec![block])];
    let mut found: Option<T> = None;
    let mut paths = 0;
    while let Some(path) = open.pop() {
        paths += 1;
        if paths > MAX_PATHS {
            return None;
        }
        let step = match evaluate(graph, &path, stop, depth) {
            Some(ev) => judge(&ev),
            None => Step::Infeasible,
        };
        match step {
            Step::Infeasible => {}
            Step::Found(v) => {
                found = Some(match found {
                    None => v,
                    Some(f) => merge(f, v)?,
                });
            }
            Step::Longer => graph.extend(path, &mut open)?,
            Step::Fail => return None,
        }
    }
    found
}

/// Evaluates the blocks of `path` forward (the conditional branches between
/// them taken or not as the path goes), the last one up to instruction
/// `stop`; `None` when the path's conditions contradict each other.
fn evaluate<'g>(graph: &'g Graph<'_>, path: &[u32], stop: usize, depth: u32) -> Option<Eval<'g>> {
    let (esp, ebp) = graph.frame.heights(path[0]);
    let consts = graph.consts.get(&path[0]).copied().unwrap_or([None; 8]);
    let mut ev = Eval::new(graph, consts, (esp.known(), ebp.known()), depth);
    for (i, start) in path.iter().enumerate() {
        let block = &graph.blocks[start];
        let last = i + 1 == path.len();
        let body = if last {
            &block.instructions[..stop]
        } else {
            &block.instructions[..]
        };
        for ins in body {
            ev.step(ins);
        }
        if let (false, Some(term)) = (last, block.instructions.last()) {
            let next = path[i + 1];
            if term.flow_control() == FlowControl::ConditionalBranch {
                let taken = block.successors.contains(&Successor::Taken(next));
                let not_taken = block.successors.contains(&Successor::NotTaken(next));
                if taken != not_taken {
                    ev.branch(term, taken);
                }
            }
            if ev.facts.iter().any(|f| f.range.is_empty()) {
                return None;
            }
        }
    }
    Some(ev)
}
