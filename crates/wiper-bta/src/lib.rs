//! Binding-time analysis for wiper: which decoupled instructions of a
//! function run at specialization time (Static), stay in the residual code
//! (Dynamic), or stay with static values folded in (Lifted).
//!
//! The analysis follows WiPEr (Srinivasan & Reps, OOPSLA 2015): instructions
//! are decoupled into single-assignment parts (`wiper-sem`), a dependence
//! graph over the parts is built (data dependences through registers, each
//! flag and memory; control dependences from post-dominators), and the
//! dynamic parts are the forward slice from the dynamic inputs. A dynamic
//! part that reads static locations is Lifted. The stack pointer stays
//! static, as the symbolic entry value `esp0` plus a constant, wherever its
//! offset is known.
//!
//! ```no_run
//! use wiper_bta::{analyze, StaticSpec};
//! let binary = wiper_elf::Binary::open("testdata/bin/prod-O0".as_ref()).unwrap();
//! let entry = wiper_x86::resolve_function(&binary, "prod").unwrap();
//! let spec: StaticSpec = "arg1=1 arg2=3".parse().unwrap();
//! let analysis = analyze(&binary, entry, &spec).unwrap();
//! print!("{}", wiper_bta::render::listing(&binary, &analysis));
//! ```
//!
//! The design, the may-alias rules and the assumptions are in `docs/bta.md`.

mod error;
mod graph;
mod memory;
mod program;
pub mod render;
mod session;
mod slice;
pub mod spec;
mod stack;
mod times;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use petgraph::graph::NodeIndex;
use wiper_elf::Binary;
use wiper_qfbv::ExprPool;
use wiper_x86::{abi, CallTarget, Disassembler, Function};

pub use error::BtaError;
pub use graph::{CallOutput, DependenceGraph, EdgeKind, Input, Node, NodeId};
pub use memory::{AbstractLoc, Access, AccessKind};
pub use program::{InstructionInfo, PartId, PartInfo};
pub use session::Session;
pub use slice::{BindingTime, Pattern, StaticRead};
pub use spec::{Buffer, SpecError, StaticInput, StaticSpec, StaticValue};
pub use stack::{Offset, StackState};
pub use times::{Context, InstructionTime, InstructionTimes};

use graph::{Built, CalleeInfo, EXIT_OUTPUTS};
use program::Program;
use stack::{Ctx, Footprint, StackInfo};

/// A call site of the analysed function, with what the analysis decided.
#[derive(Debug, Clone)]
pub struct CallSite {
    /// The part that jumps to the callee.
    pub jump: PartId,
    /// The callee.
    pub target: CallTarget,
    /// A tail call.
    pub tail: bool,
    /// Whether the callee was analysed (a function of the binary, not
    /// recursive, within the depth limit); otherwise the calling convention
    /// alone describes it.
    pub analysed: bool,
    /// For an analysed callee: the static pattern of its inputs at this call.
    pub pattern: Option<Pattern>,
    /// Number of stack arguments the analysed callee reads.
    pub arg_count: u32,
    /// The callee's outputs at this site and whether each is dynamic.
    pub outputs: Vec<(CallOutput, bool)>,
}

/// The result of the analysis of one function under one static spec.
pub struct Analysis {
    /// The function's control-flow graph.
    pub function: Function,
    /// The static spec analysed.
    pub spec: StaticSpec,
    /// The pool the parts' formulas live in.
    pub pool: ExprPool,
    /// Every part, indexed by [`PartId`].
    pub parts: Vec<PartInfo>,
    /// Every original instruction, in block and address order.
    pub instructions: Vec<InstructionInfo>,
    /// The binding time of each part.
    pub binding: Vec<BindingTime>,
    /// `esp` and `ebp` before each part.
    pub stack: Vec<StackState>,
    /// The memory accesses of each part.
    pub accesses: Vec<Vec<Access>>,
    /// Whether the frame's address escaped (unknown accesses may then alias
    /// the stack).
    pub escaped: bool,
    /// Number of stack arguments the function accesses.
    pub arg_count: u32,
    /// Stack offsets of the 4-byte slots where the prologue saves
    /// callee-saved registers: part of no C object, so indexed (`[esp0-?]`,
    /// `[esp0+?]`) and unknown accesses are taken not to reach them.
    pub save_slots: Vec<i32>,
    /// The call sites, in address order.
    pub calls: Vec<CallSite>,
    /// At the exit: `eax`, `ecx`, `edx`, the flags, and the memory a caller
    /// can see the function write, each with whether it is dynamic.
    pub outputs: Vec<(CallOutput, bool)>,
    /// The dependence graph.
    pub graph: DependenceGraph,
    node_dynamic: Vec<bool>,
    successors: Vec<Vec<PartId>>,
    exempt: Vec<bool>,
}

impl Analysis {
    /// Whether a graph node is dynamic (for parts: Dynamic or Lifted).
    pub fn is_dynamic(&self, node: NodeId) -> bool {
        self.node_dynamic[node.0 as usize]
    }

    /// The parts control may reach directly after `part` (call and exit
    /// statements skipped; a call's effect happens on the way, see
    /// [`Analysis::call_at`]).
    pub fn successors(&self, part: PartId) -> &[PartId] {
        &self.successors[part.index()]
    }

    /// The call site whose callee runs right after `part`, if `part` is
    /// the jump of a call.
    pub fn call_at(&self, part: PartId) -> Option<&CallSite> {
        self.calls.iter().find(|c| c.jump == part)
    }

    /// Whether `part` only moves `esp` or `ebp` by a known amount (writing
    /// at most flags besides): such a part stays Static under dynamic
    /// control, since its result is the same symbolic address on every path
    /// (where paths meet with different offsets, the readers become
    /// dynamic instead).
    pub fn moves_stack_only(&self, part: PartId) -> bool {
        self.exempt[part.index()]
    }

    /// Counts of Static, Dynamic and Lifted parts.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for b in &self.binding {
            match b {
                BindingTime::Static => c.0 += 1,
                BindingTime::Dynamic => c.1 += 1,
                BindingTime::Lifted(_) => c.2 += 1,
            }
        }
        c
    }

    /// The part at `address` with index `index` in its decoupled sequence.
    pub fn part_at(&self, address: u32, index: u8) -> Option<PartId> {
        self.parts
            .iter()
            .find(|p| p.address == address && p.part.index == index)
            .map(|p| p.id)
    }
}

/// The caller-saved registers (bits by [`wiper_x86::Reg::index`]) that no
/// part of `program` writes and that it does not pass to a callee (a
/// function without calls that leaves them alone: `__x86.get_pc_thunk.bx`
/// keeps `ecx`).
fn preserved_registers(program: &Program) -> u8 {
    if !program.calls.is_empty() {
        return 0;
    }
    let mut preserved = abi::CALLER_SAVED
        .iter()
        .fold(0u8, |m, r| m | 1 << r.index());
    for p in &program.parts {
        for w in p.part.writes() {
            if let wiper_sem::Loc::Reg(r) = w {
                preserved &= !(1 << r.index());
            }
        }
        if p.part.barrier.is_some() {
            return 0;
        }
    }
    preserved
}

/// Analyses the function at `entry` of `binary` with the static inputs of
/// `spec`.
pub fn analyze(binary: &Binary, entry: u32, spec: &StaticSpec) -> Result<Analysis, BtaError> {
    let context = Context::of_spec(spec);
    analyze_checked(binary, entry, &context, spec.clone(), spec.max_arg())
}

/// Fails when `max_arg` (the highest static argument named) is not one of
/// the `nargs` arguments the function reads.
fn check_arg_range(max_arg: Option<u32>, nargs: u32) -> Result<(), BtaError> {
    match max_arg {
        Some(max) if max >= nargs => Err(BtaError::ArgumentOutOfRange {
            index: max,
            reads: nargs,
        }),
        _ => Ok(()),
    }
}

/// The analysis in `context`; fails when `max_arg` (the highest static
/// argument the user named) is not an argument the function reads.
fn analyze_checked(
    binary: &Binary,
    entry: u32,
    context: &Context,
    spec: StaticSpec,
    max_arg: Option<u32>,
) -> Result<Analysis, BtaError> {
    let mut an = Analyzer::new(binary, true);
    an.in_progress.insert(entry);
    let model = an.build_model(entry, &context.buffers, 0);
    an.in_progress.remove(&entry);
    let model = model?;
    check_arg_range(max_arg, model.built.nargs)?;
    let pattern = context.pattern;
    let result = an.binding(&model, pattern);
    let binding = slice::binding_times(&model.built, &result.dynamic);
    let model = Rc::try_unwrap(model).unwrap_or_else(|_| panic!("model still shared"));
    let Model {
        program,
        stack,
        built,
        callees,
    } = model;
    let calls = program
        .calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let site = &built.calls[i];
            CallSite {
                jump: c.jump,
                target: c.target.clone(),
                tail: c.tail,
                analysed: matches!(callees[i].1, CalleeInfo::Internal { .. }),
                pattern: result.patterns[i],
                arg_count: match callees[i].1 {
                    CalleeInfo::Internal { nargs, .. } => nargs,
                    CalleeInfo::Opaque => 0,
                },
                outputs: site
                    .outputs
                    .iter()
                    .map(|(o, _, n)| (*o, result.dynamic[n.index()]))
                    .collect(),
            }
        })
        .collect();
    let outputs = outputs_of(&built, &result.dynamic);
    let mut successors = vec![Vec::new(); program.parts.len()];
    for (p, s) in program.part_stmt.iter().enumerate() {
        let mut seen = HashSet::new();
        let mut stack_: Vec<usize> = program.succs[*s].clone();
        while let Some(t) = stack_.pop() {
            if !seen.insert(t) {
                continue;
            }
            match program.stmts[t] {
                program::Stmt::Part(q) => successors[p].push(q),
                program::Stmt::Call(_) | program::Stmt::Empty => {
                    stack_.extend(program.succs[t].iter().copied())
                }
                _ => {}
            }
        }
        successors[p].sort();
    }
    let node_dynamic = result.dynamic;
    let exempt = built.exempt.clone();
    Ok(Analysis {
        function: program.function,
        spec,
        pool: program.pool,
        parts: program.parts,
        instructions: program.instructions,
        binding,
        stack: stack.stack,
        accesses: stack.accesses,
        escaped: stack.escaped,
        arg_count: built.nargs,
        save_slots: built.save_slots.clone(),
        calls,
        outputs,
        graph: built.graph,
        node_dynamic,
        successors,
        exempt,
    })
}

fn outputs_of(built: &Built, dynamic: &[bool]) -> Vec<(CallOutput, bool)> {
    let dyn_any = |nodes: &[NodeIndex]| nodes.iter().any(|n| dynamic[n.index()]);
    built
        .exit_defs
        .iter()
        .map(|(o, nodes)| (*o, dyn_any(nodes)))
        .chain(
            built
                .effects
                .iter()
                .map(|(l, nodes)| (CallOutput::Mem(*l), dyn_any(nodes))),
        )
        .collect()
}

/// A function prepared for binding-time analysis: pattern-independent.
struct Model {
    program: Program,
    stack: StackInfo,
    built: Built,
    /// Per call site: the callee's entry (when analysed) and what the graph
    /// knows of it.
    callees: Vec<(Option<u32>, CalleeInfo)>,
}

/// What one (function, pattern) analysis gives its callers.
#[derive(Debug, Clone)]
struct Summary {
    /// Dynamic at exit: eax, ecx, edx, flags ([`EXIT_OUTPUTS`]).
    regs: [bool; EXIT_OUTPUTS.len()],
    /// Per effect of the model: dynamic.
    effects: Vec<bool>,
}

struct BtResult {
    dynamic: Vec<bool>,
    patterns: Vec<Option<Pattern>>,
}

/// Deepest chain of analysed callees.
const MAX_DEPTH: usize = 6;
/// Most functions analysed for one top-level analysis.
const MAX_MODELS: usize = 48;

struct Analyzer<'a> {
    /// Whether control dependences make parts dynamic (see [`Session`]).
    control: bool,
    binary: &'a Binary,
    dis: Disassembler<'a>,
    models: HashMap<u32, Option<Rc<Model>>>,
    in_progress: HashSet<u32>,
    summaries: HashMap<(u32, Pattern), Rc<Summary>>,
    summary_in_progress: HashSet<(u32, Pattern)>,
}

impl<'a> Analyzer<'a> {
    fn new(binary: &'a Binary, control: bool) -> Self {
        Analyzer {
            control,
            binary,
            dis: Disassembler::new(binary),
            models: HashMap::new(),
            in_progress: HashSet::new(),
            summaries: HashMap::new(),
            summary_in_progress: HashSet::new(),
        }
    }

    /// The model of a callee (no static buffers), if it can be analysed.
    fn callee_model(&mut self, entry: u32, depth: usize) -> Option<Rc<Model>> {
        if let Some(m) = self.models.get(&entry) {
            return m.clone();
        }
        if self.in_progress.contains(&entry) || depth > MAX_DEPTH || self.models.len() >= MAX_MODELS
        {
            return None;
        }
        self.in_progress.insert(entry);
        let m = self.build_model(entry, &[], depth).ok();
        self.in_progress.remove(&entry);
        self.models.insert(entry, m.clone());
        m
    }

    fn build_model(
        &mut self,
        entry: u32,
        buffers: &[u32],
        depth: usize,
    ) -> Result<Rc<Model>, BtaError> {
        let function = self.dis.function(entry)?;
        let mut program = Program::new(function)?;
        let mut callees = Vec::new();
        let mut footprints = Vec::new();
        let targets: Vec<CallTarget> = program.calls.iter().map(|c| c.target.clone()).collect();
        for t in targets {
            let model = match t {
                CallTarget::Function(addr) => self.callee_model(addr, depth + 1).map(|m| (addr, m)),
                _ => None,
            };
            match model {
                Some((addr, m)) => {
                    let nargs = m.built.nargs;
                    let mut arg_writes = Vec::new();
                    for (l, _) in &m.built.effects {
                        match *l {
                            AbstractLoc::Stack { offset, size } => arg_writes
                                .push((i64::from(offset), i64::from(offset) + i64::from(size))),
                            AbstractLoc::StackAny => arg_writes.push((
                                i64::from(abi::arg_offset(0)),
                                i64::from(abi::arg_offset(nargs)),
                            )),
                            _ => {}
                        }
                    }
                    footprints.push(Some(Footprint {
                        arg_writes,
                        ret_pop: m.program.ret_pop,
                        preserves: preserved_registers(&m.program),
                    }));
                    callees.push((
                        Some(addr),
                        CalleeInfo::Internal {
                            nargs,
                            effects: m.built.effects.iter().map(|(l, _)| *l).collect(),
                        },
                    ));
                }
                None => {
                    footprints.push(None);
                    callees.push((None, CalleeInfo::Opaque));
                }
            }
        }
        let ctx = Ctx::new(&mut program, self.binary, footprints, buffers.to_vec());
        let stack = ctx.analyze(&mut program);
        let infos: Vec<CalleeInfo> = callees.iter().map(|c| c.1.clone()).collect();
        let built = graph::build(&program, &stack, &infos, self.binary, buffers);
        Ok(Rc::new(Model {
            program,
            stack,
            built,
            callees,
        }))
    }

    /// The summary of the callee at `entry` under `pattern`.
    fn summary(&mut self, entry: u32, pattern: Pattern) -> Rc<Summary> {
        let model = self.models.get(&entry).cloned().flatten();
        let key = (entry, pattern);
        if let Some(s) = self.summaries.get(&key) {
            return s.clone();
        }
        let Some(model) = model else {
            return Rc::new(Summary {
                regs: [true; EXIT_OUTPUTS.len()],
                effects: Vec::new(),
            });
        };
        if !self.summary_in_progress.insert(key) {
            return Rc::new(Summary {
                regs: [true; EXIT_OUTPUTS.len()],
                effects: vec![true; model.built.effects.len()],
            });
        }
        let r = self.binding(&model, pattern);
        self.summary_in_progress.remove(&key);
        let dyn_any = |nodes: &[NodeIndex]| nodes.iter().any(|n| r.dynamic[n.index()]);
        let mut regs = [true; EXIT_OUTPUTS.len()];
        for (i, (_, nodes)) in model.built.exit_defs.iter().enumerate() {
            regs[i] = dyn_any(nodes);
        }
        let effects = model
            .built
            .effects
            .iter()
            .map(|(_, n)| dyn_any(n))
            .collect();
        let s = Rc::new(Summary { regs, effects });
        self.summaries.insert(key, s.clone());
        s
    }

    /// Binding times of every node of `model` under `pattern`, iterating
    /// the callee summaries to a fixpoint.
    fn binding(&mut self, model: &Model, pattern: Pattern) -> BtResult {
        let built = &model.built;
        let mut base_seeds: Vec<NodeIndex> = built.seeds.clone();
        for (i, n) in &built.entry_nodes {
            if slice::input_dynamic(*i, &pattern) {
                base_seeds.push(*n);
            }
        }
        let ncalls = built.calls.len();
        let mut patterns: Vec<Option<Pattern>> = vec![None; ncalls];
        let mut summaries: Vec<Option<Rc<Summary>>> = vec![None; ncalls];
        loop {
            let mut seeds = base_seeds.clone();
            for (i, site) in built.calls.iter().enumerate() {
                let internal = model.callees[i].0;
                for (o, eff, n) in &site.outputs {
                    let dynamic = match (internal, &summaries[i]) {
                        (None, _) => true,
                        (Some(_), None) => false,
                        (Some(_), Some(s)) => match (o, eff) {
                            (_, Some(e)) => s.effects.get(*e).copied().unwrap_or(true),
                            (o, _) => EXIT_OUTPUTS
                                .iter()
                                .position(|x| x == o)
                                .map_or(true, |i| s.regs[i]),
                        },
                    };
                    if dynamic {
                        seeds.push(*n);
                        seeds.push(site.node);
                    }
                }
            }
            let dynamic = slice::slice(built, &seeds, self.control);
            let mut changed = false;
            for (i, site) in built.calls.iter().enumerate() {
                let Some(entry) = model.callees[i].0 else {
                    continue;
                };
                let is_dyn = |nodes: &[NodeIndex]| nodes.iter().any(|n| dynamic[n.index()]);
                let mut p = Pattern { regs: 0, args: 0 };
                for (r, nodes) in site.reg_defs.iter().enumerate() {
                    if !nodes.is_empty() && !is_dyn(nodes) {
                        p.regs |= 1 << r;
                    }
                }
                for (k, nodes) in site.arg_defs.iter().enumerate().take(64) {
                    if !nodes.is_empty() && !is_dyn(nodes) {
                        p.args |= 1 << k;
                    }
                }
                if patterns[i] != Some(p) {
                    patterns[i] = Some(p);
                    summaries[i] = Some(self.summary(entry, p));
                    changed = true;
                }
            }
            if !changed {
                return BtResult { dynamic, patterns };
            }
        }
    }
}
