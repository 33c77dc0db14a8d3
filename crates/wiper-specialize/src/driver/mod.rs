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
//! - `residual`: an instruction's residual part (Emit, Reduce, the fallback)
//!   and the copy facts;
//! - `calls`: calls (inlined, cloned or kept) and recursion;
//! - `exit`: the function exit, barriers and syncing everything.

mod block;
mod calls;
mod entry;
mod exit;
mod memo;
mod residual;
mod step;

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::rc::Rc;
use std::time::Instant;

use wiper_bta::{StaticInput, StaticSpec, StaticValue};
use wiper_elf::{Binary, FileType};
use wiper_emit::{Block, Item, Label, Residual, Terminator};
use wiper_qfbv::ExprPool;
use wiper_synth::Synthesizer;
use wiper_x86::{CallerAnalysis, Disassembler};

use crate::eval::Scratch;
use crate::function::FunctionInfo;
use crate::state::{Base, Byte, FxHashMap, Known, Region, SVal, Store};
use crate::{check, Options, Specialization, SpecializeError, Stats};
use entry::write_known;
use memo::{Entry, GenLoc};

/// An inlined call: where to go back to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Frame {
    /// The caller's function entry.
    caller: u32,
    /// Stack offset of the return address slot.
    ret_slot: u32,
}

/// The specializer's state at one point.
#[derive(Clone, Debug)]
struct State {
    store: Store,
    /// Entry of the function whose code runs.
    func: u32,
    /// Inlined calls, outermost first.
    ctx: Vec<Frame>,
    /// Dynamic branches on the path from the entry (for the whistle:
    /// only a loop under dynamic control needs generalization).
    dyn_branches: u32,
    /// The last specialization point on the path.
    parent: Option<usize>,
}

/// Why a run stopped early.
enum Stop {
    Fail(SpecializeError),
    Restart(Vec<(u32, u32, GenLoc)>),
}

impl From<SpecializeError> for Stop {
    fn from(e: SpecializeError) -> Self {
        Stop::Fail(e)
    }
}

/// Specializes the function at `entry` of `binary` for the static inputs
/// of `spec`.
pub fn specialize(
    binary: &Binary,
    entry: u32,
    spec: &StaticSpec,
    options: &Options,
) -> Result<Specialization, SpecializeError> {
    let start = Instant::now();
    check(binary, entry, spec)?;
    let mut data = Vec::new();
    let mut buffers = Vec::new();
    for e in &spec.entries {
        if let StaticInput::Arg {
            index,
            value: StaticValue::Pointer(buf),
        } = e
        {
            while data.len() % 16 != 0 {
                data.push(0);
            }
            buffers.push((*index, data.len() as u32, buf.bytes()));
            data.extend(buf.bytes());
        }
    }
    let plan = wiper_emit::plan(binary, data.len() as u32)?;
    let pie = binary.file_type == FileType::PositionIndependent;
    let mut sp = Specializer {
        binary,
        pie,
        options: options.clone(),
        pool: ExprPool::new(),
        dis: Disassembler::new(binary),
        functions: FxHashMap::default(),
        synth: Synthesizer::new(options.proof_timeout_ms),
        scratch: Scratch::default(),
        top: entry,
        generalized: BTreeSet::new(),
        buffer_ranges: Vec::new(),
        run: RunState::default(),
        stats: Stats::default(),
        arg_counts: HashMap::new(),
        callers: CallerAnalysis::new(binary),
    };
    let top = sp.function(entry)?;
    sp.stats.original_instructions = top.instrs.len();
    // The entry store.
    let mut store = Store::entry();
    let region_of_data = if pie {
        Region::Of(Base::Load)
    } else {
        Region::Abs
    };
    for e in &spec.entries {
        match e {
            StaticInput::Arg {
                index,
                value: StaticValue::Int(v),
            } => write_known(
                &mut store,
                Region::Of(Base::Stack),
                4 + 4 * index,
                SVal::Const(u64::from(*v)),
                false,
            ),
            StaticInput::Arg { .. } => {}
            StaticInput::Reg { reg, value } => store.set_reg(
                *reg,
                Some(Known {
                    value: SVal::Const(u64::from(*value)),
                    synced: false,
                }),
            ),
        }
    }
    for (index, off, bytes) in &buffers {
        let addr = plan.data_vaddr + off;
        let value = if pie {
            SVal::Addr(Base::Load, addr)
        } else {
            SVal::Const(u64::from(addr))
        };
        write_known(
            &mut store,
            Region::Of(Base::Stack),
            4 + 4 * index,
            value,
            false,
        );
        for (i, b) in bytes.iter().enumerate() {
            store.mem.insert(
                (region_of_data, addr + i as u32),
                Known {
                    value: Byte::Const(*b),
                    synced: true,
                },
            );
        }
        sp.buffer_ranges
            .push((region_of_data, addr, addr + bytes.len() as u32));
    }
    let init = State {
        store,
        func: entry,
        ctx: Vec::new(),
        dyn_branches: 0,
        parent: None,
    };
    loop {
        sp.run = RunState::default();
        match sp.run_all(init.clone()) {
            Ok(label) => {
                let residual = Residual {
                    entry: Some(label),
                    blocks: std::mem::take(&mut sp.run.blocks),
                    data,
                    edx_dead_at_return: !sp.run.edx_live_at_exit,
                };
                let mut stats = sp.stats.clone();
                stats.points = sp.run.entries.len();
                if std::env::var_os("WIPER_DEBUG").is_some() {
                    eprintln!(
                        "wiper: debug: {} points, {} restarts, generalized {:?}; edx at return {}",
                        stats.points,
                        stats.restarts,
                        sp.generalized,
                        sp.callers.edx_at_return(entry)
                    );
                }
                stats.time = start.elapsed();
                return Ok(Specialization {
                    residual,
                    plan,
                    stats,
                });
            }
            Err(Stop::Fail(e)) => return Err(e),
            Err(Stop::Restart(locs)) => {
                sp.stats.restarts += 1;
                if sp.stats.restarts > 64 {
                    return Err(SpecializeError::TooLarge {
                        limit: sp.options.max_residual,
                    });
                }
                sp.generalized.extend(locs);
                sp.stats.reduced = 0;
                sp.stats.proved = 0;
                sp.stats.fallbacks = 0;
                sp.stats.materialized = 0;
            }
        }
    }
}

/// Per-run state (reset when generalization restarts the run).
#[derive(Default)]
struct RunState {
    blocks: Vec<Block>,
    next_label: u32,
    /// The memo table: the entries with each [`memo_hash`], oldest first.
    memo: FxHashMap<u64, Vec<usize>>,
    /// Every specialization point, with the one before it on its path.
    entries: Vec<Entry>,
    worklist: Vec<(Label, u32, State)>,
    size: usize,
    /// Whether some exit kept `edx` for a caller that may read it.
    edx_live_at_exit: bool,
}

/// The specializer of one function: what every run shares (decoded
/// functions, the expression pool, Reduce's synthesizer, the generalized
/// locations, the statistics) and the state of the current run.
struct Specializer<'a> {
    binary: &'a Binary,
    pie: bool,
    options: Options,
    pool: ExprPool,
    dis: Disassembler<'a>,
    functions: FxHashMap<u32, Option<Rc<FunctionInfo>>>,
    synth: Synthesizer,
    /// Tables reused by every evaluation.
    scratch: Scratch,
    top: u32,
    /// (function, address, location): made dynamic on arrival there (in
    /// a fixed order, so the glue that materializes them is deterministic).
    generalized: BTreeSet<(u32, u32, GenLoc)>,
    /// Where the static buffers live (never written through unknown
    /// pointers, by assumption).
    buffer_ranges: Vec<(Region, u32, u32)>,
    run: RunState,
    stats: Stats,
    /// Stack argument bytes of internal callees.
    arg_counts: HashMap<u32, u32>,
    /// Whether the callers of a function may read `edx` after it returns
    /// (at the exit of the specialized function and of its clones, a known
    /// `edx` is materialized only then).
    callers: CallerAnalysis<'a>,
}

/// Stack argument bytes assumed for a callee we cannot analyse.
const UNKNOWN_ARGS: u32 = 32;

impl Specializer<'_> {
    fn function(&mut self, entry: u32) -> Result<Rc<FunctionInfo>, SpecializeError> {
        if let Some(Some(f)) = self.functions.get(&entry) {
            return Ok(f.clone());
        }
        let f = self.dis.function(entry)?;
        match FunctionInfo::new(&mut self.pool, f) {
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

    fn new_label(&mut self) -> Label {
        self.run.next_label += 1;
        Label(self.run.next_label - 1)
    }

    fn run_all(&mut self, init: State) -> Result<Label, Stop> {
        let (label, glue) = self.goto(init, self.top)?;
        debug_assert!(glue.is_empty());
        while let Some((label, addr, state)) = self.run.worklist.pop() {
            self.process(label, addr, state)?;
        }
        Ok(label)
    }

    fn finish(&mut self, label: Label, items: Vec<Item>, terminator: Terminator) {
        self.run.size += items.len() + 1;
        self.run.blocks.push(Block {
            label,
            items,
            terminator,
        });
    }
}
