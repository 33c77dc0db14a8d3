//! The specialization driver: the [`specialize`] entry point, the
//! [`Specializer`] and its per-run state, and the restart loop (a run that
//! blows the whistle restarts with more locations generalized).
//!
//! The concerns live in submodules, each adding methods to [`Specializer`]:
//!
//! - `entry`: the entry store and the layout of the static buffers;
//! - `memo`: program points, the memo table, the whistle and generalization;
//! - `block`: specializing from a point into a residual block, branch edges,
//!   jump tables with a dynamic index;
//! - `step`: one instruction (Eval, the control it leaves by);
//! - `bta`: the BTA's binding times per function context, and the
//!   instructions emitted on its word without evaluation;
//! - `residual`: an instruction's residual part (Emit, Reduce, the fallback)
//!   and the copy facts;
//! - `calls`: calls (inlined, cloned or kept) and recursion;
//! - `exit`: the function exit, barriers and syncing everything;
//! - `realign`: stack realignment (`and esp, -16`) and its undoing;
//! - `warn`: the warnings found while specializing (an integer used as an
//!   address, a buffer read past its end).

mod block;
mod bta;
mod calls;
mod entry;
mod exit;
mod guard;
mod leave;
mod memo;
mod process;
mod reach;
mod realign;
mod relate;
mod rep;
mod residual;
mod step;
mod warn;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::rc::Rc;
use std::time::Instant;

use wiper_bta::{Context, InstructionTimes, StaticSpec};
use wiper_elf::{Binary, FileType};
use wiper_qfbv::ExprPool;
use wiper_residual::{Block, Item, Label, Residual, Terminator};
use wiper_synth::Synthesizer;
use wiper_x86::{CallerAnalysis, Disassembler};

use crate::eval::Scratch;
use crate::function::FunctionInfo;
use crate::state::{FxHashMap, Region, Store};
use crate::warnings::binary_warnings;
use crate::{BtaStats, Options, Specialization, SpecializeError, Start, Stats, Warning};
use entry::{entry_store, BufferRange, DataLayout, EntryStore};
use memo::{Generalization, MemoEntry, Restart};

/// An inlined call: where to go back to.
///
/// Two frames are equal when their caller, callee and return slot are:
/// `entered_with` is a note for the recursion rule (see
/// `calls::recursion_fingerprint`), not part of the specialization point.
#[derive(Clone, Debug)]
struct Frame {
    /// The caller's function entry.
    caller: u32,
    /// The callee's entry (the function the call entered, whatever it
    /// tail-jumps to).
    callee: u32,
    /// Stack offset of the return address slot.
    ret_slot: u32,
    /// The fingerprint of the static state the callee was entered with.
    entered_with: u64,
    /// How many dynamic branches the path had taken when the callee was
    /// entered (a recursion that repeats after one is under dynamic
    /// control).
    dyn_at_entry: u32,
    /// Whether the decoder found that the call never returns (a frame of
    /// a whole program's spine: `_start_c`, `__libc_start_main`).
    never_returns: bool,
    /// The caller's [`State::active_dyn`] at the call, restored when the
    /// callee returns.
    active_dyn_at_entry: u32,
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        (self.caller, self.callee, self.ret_slot) == (other.caller, other.callee, other.ret_slot)
    }
}

impl Eq for Frame {}

impl Hash for Frame {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self.caller, self.callee, self.ret_slot).hash(h);
    }
}

/// The specializer's state at one point.
#[derive(Clone, Debug)]
struct State {
    /// The static store.
    store: Store,
    /// Entry of the function whose code runs.
    func: u32,
    /// Inlined calls, outermost first.
    ctx: Vec<Frame>,
    /// Dynamic branches on the path from the entry (for the whistle:
    /// only a loop under dynamic control needs generalization).
    dyn_branches: u32,
    /// Dynamic branches taken in the code of the running function and of
    /// its inlined callers (not in callees that returned since): while it
    /// is 0, the running code still follows one path whatever the input.
    active_dyn: u32,
    /// The last specialization point on the path.
    parent: Option<usize>,
    /// The BTA's instruction times for the running function in the context
    /// it was entered with (`None`: not analysed).
    times: Option<Rc<InstructionTimes>>,
    /// The same for the callers of `ctx`, outermost first.
    caller_times: Vec<Option<Rc<InstructionTimes>>>,
    /// The window the store at its address writes in, checked by the
    /// residual just before (`guard`); set for that instruction only.
    guarded: Option<guard::Window>,
}

impl State {
    /// The function the outermost inlined call entered (called by the
    /// function specialized at the root of the state), if there is one.
    fn outermost_callee(&self) -> Option<u32> {
        self.ctx.first().map(|f| f.callee)
    }
}

/// Why a run stopped early.
enum Stop {
    /// Specialization failed.
    Fail(SpecializeError),
    /// The whistle blew: run again with more locations generalized.
    Restart(Restart),
    /// Specializing an inlined call of this function failed (with this
    /// error): run again with its calls kept as calls to the original code.
    Keep(u32, SpecializeError),
    /// These points have spent their budget of variants (`leave`): run
    /// again, leaving them for the original code after a few variants.
    Spend(Vec<memo::Point>),
}

impl From<SpecializeError> for Stop {
    fn from(e: SpecializeError) -> Self {
        Stop::Fail(e)
    }
}

/// A specialization point waiting on the worklist to be specialized into
/// its block.
struct Pending {
    /// The point's residual block.
    label: Label,
    /// The point's address.
    addr: u32,
    /// The state on arrival.
    state: State,
}

/// Most restarts before giving up (the whistle keeps blowing: unrolling
/// does not stop).
const MAX_RESTARTS: usize = 64;

/// Specializes the function at `entry` of `binary` for the static inputs
/// of `spec`.
pub fn specialize(
    binary: &Binary,
    entry: u32,
    start_as: Start<'_>,
    options: &Options,
) -> Result<Specialization, SpecializeError> {
    let start = Instant::now();
    let pie = binary.file_type == FileType::PositionIndependent;
    let mut sp = Specializer::new(binary, entry, pie, options);
    let no_spec = StaticSpec::default();
    let spec = match start_as {
        Start::Function(spec) => spec,
        Start::Process(_) | Start::Main(_) => &no_spec,
    };
    sp.whole_program = !matches!(start_as, Start::Function(_));
    if matches!(start_as, Start::Process(_)) {
        sp.stack_alignment = 16;
        sp.image_static = true;
    }
    sp.bta.check(entry, spec)?;
    let data_vaddr = wiper_residual::data_address(binary).ok_or(SpecializeError::NoRoom)?;
    let top = sp.function(entry)?;
    sp.stats.original_instructions = top.instrs.len();
    let (mut data, entry_store) = match start_as {
        Start::Function(spec) => {
            let layout = DataLayout::new(spec);
            let store = entry_store(spec, &layout, data_vaddr, pie);
            (layout.data, store)
        }
        Start::Process(image) => process::process_entry(binary, image, true, data_vaddr, pie),
        Start::Main(image) => process::process_entry(binary, image, false, data_vaddr, pie),
    };
    let EntryStore {
        store,
        buffer_ranges,
    } = entry_store;
    sp.buffer_ranges = buffer_ranges;
    sp.spec = spec.clone();
    sp.data_range = (
        if pie {
            Region::Of(crate::state::Base::Load)
        } else {
            Region::Abs
        },
        data_vaddr,
        data_vaddr.saturating_add(data.len() as u32),
    );
    let times = sp.times_at_entry(entry, &store);
    let entry_times = times.as_deref().cloned();
    let init = State {
        store,
        func: entry,
        ctx: Vec::new(),
        dyn_branches: 0,
        active_dyn: 0,
        parent: None,
        times,
        caller_times: Vec::new(),
        guarded: None,
    };
    loop {
        sp.run = RunState::default();
        match sp.run_all(init.clone()) {
            Ok(label) => {
                let residual = Residual {
                    entry: Some(label),
                    blocks: std::mem::take(&mut sp.run.blocks),
                    data: std::mem::take(&mut data),
                    data_vaddr,
                    edx_dead_at_return: !sp.run.edx_live_at_exit,
                };
                let mut stats = sp.stats.clone();
                stats.points = sp.run.entries.len();
                stats.generalized = sp.generalized.len();
                tracing::debug!(
                    points = stats.points,
                    restarts = stats.restarts,
                    generalized = ?sp.generalized.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    edx_at_return = %sp.callers.edx_at_return(entry),
                    bta = ?stats.bta,
                    "specialized {entry:#x}"
                );
                let points = if sp.options.record_points {
                    sp.run.entries.iter().map(MemoEntry::summary).collect()
                } else {
                    Vec::new()
                };
                let started = Instant::now();
                let mut warnings = binary_warnings(binary, entry, spec, &mut sp.bta);
                tracing::debug!(
                    warnings = warnings.len() + sp.run.warnings.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "warnings of meaning"
                );
                warnings.append(&mut sp.run.warnings);
                stats.time = start.elapsed();
                debug_assert_eq!(residual.verify(), Ok(()));
                return Ok(Specialization {
                    residual,
                    stats,
                    points,
                    entry_times,
                    warnings,
                    inlined_return_addresses: std::mem::take(&mut sp.run.return_addresses),
                });
            }
            Err(Stop::Fail(e)) => return Err(e),
            Err(Stop::Keep(func, e)) => {
                tracing::debug!("calls of {func:#x} kept: inlining it failed: {e}");
                sp.kept.insert(func);
                sp.stats.restarts += 1;
                if sp.stats.restarts > MAX_RESTARTS {
                    return Err(e);
                }
                sp.reset_run_stats();
            }
            Err(Stop::Spend(points)) => {
                sp.stats.restarts += 1;
                if sp.stats.restarts > MAX_RESTARTS {
                    return Err(SpecializeError::TooLarge {
                        limit: sp.options.max_residual,
                    });
                }
                sp.spent.extend(points);
                sp.reset_run_stats();
            }
            Err(Stop::Restart(restart)) => {
                sp.stats.restarts += 1;
                if sp.stats.restarts > MAX_RESTARTS {
                    return Err(SpecializeError::TooLarge {
                        limit: sp.options.max_residual,
                    });
                }
                sp.generalized.extend(restart.generalizations());
                sp.reset_run_stats();
            }
        }
    }
}

impl Specializer<'_> {
    /// Resets the counts of a run before the next one.
    fn reset_run_stats(&mut self) {
        self.stats.reduced = 0;
        self.stats.proved = 0;
        self.stats.fallbacks = 0;
        self.stats.materialized = 0;
        self.stats.left = 0;
        self.stats.bta = BtaStats {
            contexts: self.stats.bta.contexts,
            ..BtaStats::default()
        };
    }
}

/// Per-run state (reset when generalization restarts the run).
#[derive(Default)]
struct RunState {
    /// The residual blocks so far.
    blocks: Vec<Block>,
    /// The next fresh label.
    next_label: u32,
    /// The memo table: the entries with each [`memo_hash`], oldest first.
    memo: FxHashMap<u64, Vec<usize>>,
    /// Every specialization point, with the one before it on its path.
    entries: Vec<MemoEntry>,
    /// The points still to specialize.
    worklist: Vec<Pending>,
    /// Residual instructions so far (for [`Options::max_residual`]).
    size: usize,
    /// Residual items so far, block terminators left out: the code that
    /// does work (a chain of jumps between static points is merged away).
    items: usize,
    /// Whether some exit kept `edx` for a caller that may read it.
    edx_live_at_exit: bool,
    /// The memo entries of each program point (any store, any path),
    /// oldest first: the whistles find a point's earlier visits on the
    /// current path among them without walking the path.
    by_point: FxHashMap<memo::Point, Vec<usize>>,
    /// The outermost inlined callee of the point being specialized, if any.
    inlining: Option<u32>,
    /// Residual instructions so far inside inlined calls, per outermost
    /// callee (for [`INLINE_SHARE`]).
    inlined_size: FxHashMap<u32, usize>,
    /// The warnings found so far (`warn`).
    warnings: Vec<Warning>,
    /// The return addresses of the calls inlined so far.
    return_addresses: BTreeSet<u32>,
}

/// The share of [`Options::max_residual`] that the inlined calls of one
/// callee may cost before they are kept as calls instead: a callee whose
/// inlining does not pay (a `printf` over a dynamic format, `malloc`) stops
/// early instead of growing to the global bound first.
const INLINE_SHARE: usize = 4;

/// The specializer of one function: what every run shares (decoded
/// functions, the expression pool, Reduce's synthesizer, the generalized
/// locations, the statistics) and the state of the current run.
struct Specializer<'a> {
    binary: &'a Binary,
    /// Whether the binary is position-independent.
    pie: bool,
    options: Options,
    /// The formulas of every evaluation.
    pool: ExprPool,
    dis: Disassembler<'a>,
    /// Decoded functions by entry (`None`: decoding failed).
    functions: FxHashMap<u32, Option<Rc<FunctionInfo>>>,
    /// Reduce.
    synth: Synthesizer,
    /// Tables reused by every evaluation.
    scratch: Scratch,
    /// The specialized function's entry.
    top: u32,
    /// The locations made dynamic on arrival at a program point (in a
    /// fixed order, so the glue that materializes them is deterministic).
    generalized: BTreeSet<Generalization>,
    /// Where the static buffers live (never written through unknown
    /// pointers, by assumption).
    buffer_ranges: Vec<BufferRange>,
    /// The static inputs.
    spec: StaticSpec,
    /// The residual's data: its region, first and past-the-last address.
    data_range: (Region, u32, u32),
    /// The current run.
    run: RunState,
    /// Counts; those of a run are reset by a restart.
    stats: Stats,
    /// Stack argument bytes of internal callees.
    arg_counts: HashMap<u32, u32>,
    /// Whether the callers of a function may read `edx` after it returns
    /// (at the exit of the specialized function and of its clones, a known
    /// `edx` is materialized only then).
    callers: CallerAnalysis<'a>,
    /// The BTA's instruction times per function and context (`None`: the
    /// analysis failed there).
    times: HashMap<(u32, Context), Option<Rc<InstructionTimes>>>,
    /// The binding-time analyses of this binary's functions.
    bta: wiper_bta::Session<'a>,
    /// Functions whose calls stay calls to the original code (never
    /// inlined nor cloned): specializing an inlined call of them failed in
    /// an earlier run.
    kept: HashSet<u32>,
    /// Whether the original code may call the specialized function's
    /// entry again (`leave`), once computed.
    reenters: Option<bool>,
    /// Program points that spent their budget of variants in an earlier
    /// run (`leave`).
    spent: HashSet<memo::Point>,
    /// Whether a whole program is specialized from its start
    /// ([`Start::Process`], [`Start::Main`]): calls that never return are
    /// then inlined on its main line (`calls`).
    whole_program: bool,
    /// The alignment of the stack base (a power of two), 0 when unknown:
    /// 16 at a process's entry.
    stack_alignment: u32,
    /// Whether the initial image of the writable segments is static (a
    /// whole process from its entry point, [`Start::Process`]).
    image_static: bool,
}

/// Stack argument bytes assumed for a callee we cannot analyse.
const UNKNOWN_ARGS: u32 = 32;

impl<'a> Specializer<'a> {
    /// A specializer of the function at `top` of `binary`, before any run.
    fn new(binary: &'a Binary, top: u32, pie: bool, options: &Options) -> Self {
        Specializer {
            binary,
            pie,
            options: options.clone(),
            pool: ExprPool::new(),
            dis: Disassembler::new(binary),
            functions: FxHashMap::default(),
            synth: Synthesizer::new(options.proof_timeout_ms),
            scratch: Scratch::default(),
            top,
            generalized: BTreeSet::new(),
            buffer_ranges: Vec::new(),
            spec: StaticSpec::default(),
            data_range: (Region::Abs, 0, 0),
            run: RunState::default(),
            stats: Stats::default(),
            arg_counts: HashMap::new(),
            callers: CallerAnalysis::new(binary),
            times: HashMap::new(),
            bta: wiper_bta::Session::new(binary),
            kept: HashSet::new(),
            reenters: None,
            spent: HashSet::new(),
            whole_program: false,
            stack_alignment: 0,
            image_static: false,
        }
    }

    /// The decoded and lifted function at `entry` (decoded once).
    fn function(&mut self, entry: u32) -> Result<Rc<FunctionInfo>, SpecializeError> {
        if let Some(Some(f)) = self.functions.get(&entry) {
            return Ok(f.clone());
        }
        let f = self.dis.function(entry)?;
        let edx_dead = self.callers.edx_at_return(entry).is_dead();
        match FunctionInfo::new(&mut self.pool, f, edx_dead) {
            Ok(info) => {
                let info = Rc::new(info);
                self.functions.insert(entry, Some(info.clone()));
                Ok(info)
            }
            Err(e) => {
                self.functions.insert(entry, None);
                Err(e)
            }
        }
    }

    /// The function at `entry` decoded again from `target` too, when
    /// control reaches `target` (a known target of an indirect jump the
    /// decoder could not resolve, such as a computed `goto`) and the
    /// function may hold it; `None` otherwise.
    fn function_reaching(&mut self, entry: u32, target: u32) -> Option<Rc<FunctionInfo>> {
        if !self.dis.add_known_target(entry, target) {
            return None;
        }
        self.functions.remove(&entry);
        let f = self.function(entry).ok()?;
        f.instrs.contains_key(&target).then_some(f)
    }

    /// A fresh label for a residual block.
    fn new_label(&mut self) -> Label {
        self.run.next_label += 1;
        Label(self.run.next_label - 1)
    }

    /// One run: specializes every point reachable from `init` at the
    /// function's entry; the label of the entry point.
    fn run_all(&mut self, init: State) -> Result<Label, Stop> {
        let arrival = self.goto(init, self.top)?;
        debug_assert!(arrival.glue.is_empty());
        while let Some(Pending { label, addr, state }) = self.run.worklist.pop() {
            self.process(label, addr, state)?;
        }
        Ok(arrival.label)
    }

    /// Adds the block `label` to the residual.
    fn finish(&mut self, label: Label, items: Vec<Item>, terminator: Terminator) {
        self.run.size += items.len() + 1;
        self.run.items += items.len();
        if let Some(callee) = self.run.inlining {
            *self.run.inlined_size.entry(callee).or_default() += items.len() + 1;
        }
        self.run.blocks.push(Block {
            label,
            items,
            terminator,
        });
    }
}
