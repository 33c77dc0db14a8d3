//! The specialization driver: specialization points, the memo table,
//! control transfers, calls and the function exit.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Instant;

use iced_x86::{Code, ConditionCode, FlowControl, Instruction, Mnemonic};
use wiper_bta::{StaticInput, StaticSpec, StaticValue};
use wiper_elf::{Binary, FileType};
use wiper_emit::{Block, Item, Label, Origin, Residual, Terminator};
use wiper_qfbv::{ExprId, ExprPool};
use wiper_sem::{loc_var, Flag, Loc, Reg};
use wiper_synth::{Goal, Synthesized, Synthesizer};
use wiper_x86::{CallerAnalysis, Disassembler};

use crate::eval::{base_var_name, Evaluated, Evaluator, SExpr, Scratch};
use crate::function::{FunctionInfo, InstrInfo, ALL_FLAGS};
use crate::materialize::Emitter;
use crate::state::{value_bytes, Base, Byte, FxHashMap, FxHasher, Known, Region, SVal, Store};
use crate::{check, Options, Specialization, SpecializeError, Stats};

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

/// A location that can be generalized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum GenLoc {
    Reg(Reg),
    Flag(Flag),
    /// An aligned 4-byte word of memory.
    Word(Region, u32),
}

/// The locations where the static parts of two stores of one program point
/// differ (registers, flags, then aligned memory words, each in increasing
/// order); `None` when there are more than [`MAX_GENERALIZED`].
fn static_diff(a: &Store, b: &Store) -> Option<Vec<GenLoc>> {
    let mut d = Vec::new();
    for r in Reg::ALL {
        if a.reg(r).map(|k| k.value) != b.reg(r).map(|k| k.value) {
            d.push(GenLoc::Reg(r));
        }
    }
    for f in Flag::ALL {
        if a.flag(f).map(|k| k.value) != b.flag(f).map(|k| k.value) {
            d.push(GenLoc::Flag(f));
        }
    }
    let limit = MAX_GENERALIZED.checked_sub(d.len())?;
    let words = a.mem.diff_words(&b.mem, limit)?;
    d.extend(
        words
            .into_iter()
            .map(|(region, off)| GenLoc::Word(region, off)),
    );
    Some(d)
}

/// The memo table's hash of a specialization point: the program point and
/// the static part of the store.
fn memo_hash(point: &Point, store: &Store) -> u64 {
    let mut h = FxHasher::default();
    point.hash(&mut h);
    store.hash_static(&mut h);
    h.finish()
}

/// How specialization leaves an instruction.
enum Next {
    Continue(u32),
    Branch {
        cc: ConditionCode,
        taken: Box<(u32, State)>,
        not_taken: Box<(u32, State)>,
        address: u32,
    },
    Exit,
    /// A jump through a table with a dynamic index: compare the target
    /// (computed into `ecx`, saved first) with each case.
    Table {
        jump: Instruction,
        cases: Vec<u32>,
        state: Box<State>,
    },
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

fn write_known(store: &mut Store, region: Region, off: u32, value: SVal, synced: bool) {
    for (i, b) in value_bytes(value, 4).into_iter().enumerate() {
        store
            .mem
            .insert((region, off + i as u32), Known { value: b, synced });
    }
}

/// A program point of specialization: function, address, inlined calls.
type Point = (u32, u32, Vec<Frame>);

/// A specialization point: a memo entry, and a node of the tree of paths
/// the whistle walks.
struct Entry {
    point: Point,
    /// The store on arrival (after generalization and dead locations were
    /// dropped): its static part is the memo key, what it has synced is
    /// what jumps to the point must sync first.
    store: Store,
    /// The point's residual block.
    label: Label,
    dyn_branches: u32,
    /// The point before this one on the path that created it.
    parent: Option<usize>,
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

/// Most locations one whistle generalizes at once (a loop's counters and
/// the values derived from them).
const MAX_GENERALIZED: usize = 4;

/// Visits of one point, each differing from the one before in the same
/// locations, that make the whistle blow when the paths between them differ
/// (see `Specializer::whistle`).
const UNEVEN_PATH_VISITS: usize = 16;

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

    /// The label of the specialization point (`addr`, `state`), creating it
    /// (and queueing its specialization) if new, with the glue code that
    /// brings the machine into the point's expected state.
    fn goto(&mut self, mut state: State, addr: u32) -> Result<(Label, Vec<Item>), Stop> {
        let mut glue = Vec::new();
        let f = self.function(state.func)?;
        let mut em = Emitter::new(&mut glue, addr);
        // Generalization: make chosen locations dynamic here.
        let gens: Vec<GenLoc> = self
            .generalized
            .iter()
            .filter(|(fu, a, _)| *fu == state.func && *a == addr)
            .map(|g| g.2)
            .collect();
        for g in gens {
            match g {
                GenLoc::Reg(r) if r != Reg::Esp => {
                    if let Some(Known {
                        value: SVal::Addr(Base::Stack, _),
                        ..
                    }) = state.store.reg(r)
                    {
                        state.store.escaped = true;
                    }
                    em.register(&mut state.store, r);
                    state.store.set_reg(r, None);
                    state.store.copies.retain(|c| c.1 != r);
                }
                GenLoc::Reg(_) => {}
                GenLoc::Flag(fl) => {
                    em.flags(&mut state.store, 1 << fl.index());
                    state.store.flags[fl.index()] = None;
                }
                GenLoc::Word(region, off) => {
                    state.store.copies.retain(|c| c.0 != off);
                    em.memory(&mut state.store, region, off, 4)?;
                    for i in 0..4 {
                        state.store.mem.remove((region, off + i));
                    }
                }
            }
        }
        self.stats.materialized += em.materialized;
        // Dead registers and flags are dropped (with the copy facts on
        // them: a dead register holds garbage).
        if let Some(info) = f.instrs.get(&addr) {
            for r in Reg::ALL {
                if r != Reg::Esp && info.live_regs_in & (1 << r.index()) == 0 {
                    state.store.set_reg(r, None);
                    state.store.copies.retain(|c| c.1 != r);
                }
            }
            for fl in Flag::ALL {
                if info.live_flags_in & (1 << fl.index()) == 0 {
                    state.store.flags[fl.index()] = None;
                }
            }
        }
        let point = (state.func, addr, state.ctx.clone());
        let hash = memo_hash(&point, &state.store);
        // A memo entry fits when its static part is this one and the copies
        // its code relies on hold here too.
        let hit = self.run.memo.get(&hash).and_then(|ids| {
            ids.iter().map(|id| &self.run.entries[*id]).find(|e| {
                e.point == point
                    && e.store.same_static(&state.store)
                    && e.store
                        .copies
                        .iter()
                        .all(|c| state.store.copies.contains(c))
            })
        });
        if let Some(e) = hit {
            let (label, target) = (e.label, e.store.clone());
            self.glue_to(&mut state.store, &target, addr, &mut glue)?;
            return Ok((label, glue));
        }
        // Whistle: along this path, the last visits of the same point,
        // each reached from the one before through a dynamic branch, differ
        // in the same few locations every time: a static value
        // changing under dynamic control (a counter). Generalize it there.
        if let Some(d) = self.whistle(&point, &state) {
            if std::env::var_os("WIPER_DEBUG").is_some() {
                eprintln!("wiper: debug: generalizing at {addr:#x}: {d:?}");
            }
            return Err(Stop::Restart(
                d.iter().map(|g| (state.func, addr, *g)).collect(),
            ));
        }
        let id = self.run.entries.len();
        let label = self.new_label();
        self.run.entries.push(Entry {
            point,
            store: state.store.clone(),
            label,
            dyn_branches: state.dyn_branches,
            parent: state.parent,
        });
        self.run.memo.entry(hash).or_default().push(id);
        state.parent = Some(id);
        self.run.worklist.push((label, addr, state));
        Ok((label, glue))
    }

    /// The locations to generalize at a new point, if the whistle blows.
    ///
    /// The last visits of `point` on this path, each reached from the one
    /// before through a dynamic branch, are compared. When the newest
    /// `generalize_after` of them differ in the same locations each time and
    /// each went around the loop along the same specialization points, a
    /// static value changes under dynamic control with nothing else
    /// changing: a counter, generalized. When the paths differ, the
    /// changing value drives what the code does (an interpreter's program
    /// counter walking a static program, bounded by the program's length),
    /// so the whistle waits for [`UNEVEN_PATH_VISITS`] such visits.
    fn whistle(&self, point: &Point, state: &State) -> Option<Vec<GenLoc>> {
        let k = self.options.generalize_after.max(1);
        let most = k.max(UNEVEN_PATH_VISITS);
        // The visits, newest first, with the index in `walked` of each
        // (the current state has none: it is not an entry yet).
        let mut chain: Vec<(&Store, u32, usize)> =
            vec![(&state.store, state.dyn_branches, usize::MAX)];
        let mut walked: Vec<&Point> = Vec::new();
        let mut cur = state.parent;
        while let Some(id) = cur {
            let e = &self.run.entries[id];
            if e.point == *point {
                // Each visit must be reached from the one before through a
                // dynamic branch.
                if e.dyn_branches >= chain[chain.len() - 1].1 {
                    break;
                }
                chain.push((&e.store, e.dyn_branches, walked.len()));
                if chain.len() > most {
                    break;
                }
            }
            walked.push(&e.point);
            cur = e.parent;
            if walked.len() > 100_000 {
                break;
            }
        }
        if chain.len() <= k {
            return None;
        }
        let d = static_diff(chain[0].0, chain[1].0).filter(|d| !d.is_empty())?;
        let same_diff = 1 + chain[1..]
            .windows(2)
            .take_while(|w| static_diff(w[0].0, w[1].0).as_ref() == Some(&d))
            .count();
        // The points passed between visit j and visit j + 1.
        let path = |j: usize| {
            let from = chain[j].2.wrapping_add(1);
            &walked[from..chain[j + 1].2]
        };
        let same_path = (1..k).all(|j| path(j) == path(0));
        if same_diff < k || (!same_path && same_diff < UNEVEN_PATH_VISITS) {
            return None;
        }
        // Registers holding stack addresses (esp, a frame pointer) are never
        // generalized: code moves esp back from them.
        let stack_reg = |g: &GenLoc| match g {
            GenLoc::Reg(r) => chain.iter().any(|(x, _, _)| {
                matches!(
                    x.reg(*r),
                    Some(Known {
                        value: SVal::Addr(Base::Stack, _),
                        ..
                    })
                )
            }),
            _ => false,
        };
        if d.iter().any(stack_reg) {
            return None;
        }
        Some(d)
    }

    /// Glue from `store` to a memo entry's `target` store (same static
    /// values): sync what the target expects synced, move the machine esp.
    fn glue_to(
        &mut self,
        store: &mut Store,
        target: &Store,
        addr: u32,
        glue: &mut Vec<Item>,
    ) -> Result<(), SpecializeError> {
        let mut em = Emitter::new(glue, addr);
        let keys: Vec<(Region, u32)> = target
            .mem
            .iter()
            .filter(|(k, v)| v.synced && store.mem.get(*k).is_some_and(|s| !s.synced))
            .map(|(k, _)| k)
            .collect();
        for (region, off) in keys {
            em.memory(store, region, off, 1)?;
        }
        for r in Reg::ALL {
            if r == Reg::Esp {
                continue;
            }
            if let (Some(t), Some(s)) = (target.reg(r), store.reg(r)) {
                if t.synced && !s.synced {
                    em.register(store, r);
                }
            }
        }
        let mut mask = 0;
        for f in Flag::ALL {
            if let (Some(t), Some(s)) = (target.flag(f), store.flag(f)) {
                if t.synced && !s.synced {
                    mask |= 1 << f.index();
                }
            }
        }
        em.flags(store, mask);
        em.set_real_esp(store, target.real_esp);
        self.stats.materialized += em.materialized;
        Ok(())
    }

    fn finish(&mut self, label: Label, items: Vec<Item>, terminator: Terminator) {
        self.run.size += items.len() + 1;
        self.run.blocks.push(Block {
            label,
            items,
            terminator,
        });
    }

    /// Specializes from `addr` in `state` into the block `label`.
    fn process(&mut self, label: Label, mut addr: u32, mut state: State) -> Result<(), Stop> {
        let mut items = Vec::new();
        let mut first = true;
        loop {
            if self.run.size + items.len() > self.options.max_residual {
                return Err(Stop::Fail(SpecializeError::TooLarge {
                    limit: self.options.max_residual,
                }));
            }
            let mut f = self.function(state.func)?;
            if !f.instrs.contains_key(&addr) {
                // A jump into another function (a tail call): it runs in
                // the same frame.
                match self.binary.function_at(addr) {
                    Some(_) => {
                        state.func = addr;
                        f = self.function(addr)?;
                    }
                    None => {
                        return Err(Stop::Fail(SpecializeError::Unsupported {
                            address: addr,
                            reason: "control reaches an address outside any known function".into(),
                        }))
                    }
                }
            }
            let info = &f.instrs[&addr];
            if !first && info.block_start {
                let (target, glue) = self.goto(state, addr)?;
                items.extend(glue);
                self.finish(label, items, Terminator::Jump(target, Origin::Glue(addr)));
                return Ok(());
            }
            first = false;
            match self.step(&mut state, info, &mut items)? {
                Next::Continue(a) => addr = a,
                Next::Exit => {
                    self.finish(label, items, Terminator::Exit);
                    return Ok(());
                }
                Next::Table { jump, cases, state } => {
                    self.table(label, items, jump, &cases, *state)?;
                    return Ok(());
                }
                Next::Branch {
                    cc,
                    mut taken,
                    mut not_taken,
                    address,
                } => {
                    taken.1.dyn_branches += 1;
                    not_taken.1.dyn_branches += 1;
                    let t = self.edge(taken.1, taken.0)?;
                    let n = self.edge(not_taken.1, not_taken.0)?;
                    self.finish(
                        label,
                        items,
                        Terminator::Branch {
                            cc,
                            taken: t,
                            not_taken: n,
                            origin: Origin::Original(address),
                        },
                    );
                    return Ok(());
                }
            }
        }
    }

    /// Residual dispatch for a jump table with a dynamic index: `push ecx;
    /// pushfd; mov ecx, target; cmp ecx, case; je ...` for each case,
    /// restoring the flags and `ecx` on every edge.
    fn table(
        &mut self,
        label: Label,
        mut items: Vec<Item>,
        jump: Instruction,
        cases: &[u32],
        state: State,
    ) -> Result<(), Stop> {
        let addr = jump.ip32();
        let glue = Origin::Glue(addr);
        let ecx = iced_x86::Register::ECX;
        items.push(Item::Instr(
            Instruction::with1(Code::Push_r32, ecx).expect("push"),
            glue,
        ));
        items.push(Item::Instr(Instruction::with(Code::Pushfd), glue));
        let load = match jump.op0_kind() {
            iced_x86::OpKind::Register => {
                Instruction::with2(Code::Mov_r32_rm32, ecx, jump.op0_register()).expect("mov")
            }
            _ => {
                let mut m = iced_x86::MemoryOperand::with_base_index_scale_displ_size(
                    jump.memory_base(),
                    jump.memory_index(),
                    jump.memory_index_scale(),
                    i64::from(jump.memory_displacement32() as i32),
                    4,
                );
                if jump.memory_base() == iced_x86::Register::ESP {
                    m.displacement += 8;
                }
                Instruction::with2(Code::Mov_r32_rm32, ecx, m).expect("mov")
            }
        };
        items.push(Item::Instr(load, Origin::Reduced(addr)));
        let mut cur = (label, items);
        let mut state = state;
        state.dyn_branches += 1;
        for t in cases {
            let (target, glue_items) = self.goto(state.clone(), *t)?;
            let edge = self.new_label();
            let mut edge_items = vec![
                Item::Instr(Instruction::with(Code::Popfd), glue),
                Item::Instr(Instruction::with1(Code::Pop_r32, ecx).expect("pop"), glue),
            ];
            edge_items.extend(glue_items);
            self.finish(edge, edge_items, Terminator::Jump(target, glue));
            let next = self.new_label();
            cur.1.push(Item::Instr(
                Instruction::with2(Code::Cmp_rm32_imm32, ecx, *t).expect("cmp"),
                glue,
            ));
            self.finish(
                cur.0,
                std::mem::take(&mut cur.1),
                Terminator::Branch {
                    cc: ConditionCode::e,
                    taken: edge,
                    not_taken: next,
                    origin: glue,
                },
            );
            cur = (next, Vec::new());
        }
        // No case matched: impossible for a table the decoder bounded.
        cur.1.push(Item::Instr(Instruction::with(Code::Ud2), glue));
        self.finish(cur.0, cur.1, Terminator::Exit);
        Ok(())
    }

    /// A label for a branch edge: the point itself, or a block of glue
    /// leading to it.
    fn edge(&mut self, state: State, addr: u32) -> Result<Label, Stop> {
        let (label, glue) = self.goto(state, addr)?;
        if glue.is_empty() {
            return Ok(label);
        }
        let l = self.new_label();
        self.finish(l, glue, Terminator::Jump(label, Origin::Glue(addr)));
        Ok(l)
    }

    /// Evaluates an instruction; residual effects on registers and flags
    /// that are dead afterwards are dropped (their value may be anything).
    fn evaluate(&mut self, store: &Store, info: &InstrInfo) -> (Store, Evaluated) {
        let is_call = matches!(
            info.instruction.flow_control(),
            FlowControl::Call | FlowControl::IndirectCall
        );
        let evaluator = Evaluator::new(
            &mut self.pool,
            self.binary,
            self.pie,
            store,
            &mut self.scratch,
        );
        let (post, mut ev) = evaluator.run(&info.lifted, is_call);
        ev.regs
            .retain(|(r, _)| info.live_regs_out & (1 << r.index()) != 0);
        ev.flags
            .retain(|(f, _)| info.live_flags_out & (1 << f.index()) != 0);
        (post, ev)
    }

    /// The code address a known instruction-pointer value stands for.
    fn code_addr(&self, v: SVal, at: u32) -> Result<u32, SpecializeError> {
        match v {
            SVal::Const(c) => Ok(c as u32),
            SVal::Addr(Base::Load, t) if self.pie => Ok(t),
            SVal::Addr(..) => Err(SpecializeError::Unsupported {
                address: at,
                reason: "a jump to a stack address".into(),
            }),
        }
    }

    fn step(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<Next, Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        let next = ins.next_ip32();
        match ins.flow_control() {
            FlowControl::Call | FlowControl::IndirectCall => return self.call(state, info, items),
            FlowControl::Interrupt | FlowControl::Exception if info.lifted.barrier().is_some() => {
                self.barrier(state, info, items)?;
                let f = self.function(state.func)?;
                return Ok(if f.instrs.contains_key(&next) {
                    Next::Continue(next)
                } else {
                    Next::Exit
                });
            }
            _ => {}
        }
        if let Some(r) = info.free_narrow_write {
            // Only the bits this instruction writes are ever read: the
            // register's old value is irrelevant, so take it as 0.
            if state.store.reg(r).is_none() {
                state.store.set_reg(
                    r,
                    Some(Known {
                        value: SVal::Const(0),
                        synced: false,
                    }),
                );
            }
        }
        let (post, ev) = self.evaluate(&state.store, info);
        if ev.esp_lost {
            return Err(Stop::Fail(SpecializeError::Unsupported {
                address: addr,
                reason: format!(
                    "`{}` makes the stack pointer unknown (stack realignment)",
                    mnemonic_text(&ins)
                ),
            }));
        }
        if ins.flow_control() == FlowControl::Return {
            if let Some(SExpr::Known(v)) = ev.eip {
                // Return from an inlined call.
                let target = self.code_addr(v, addr)?;
                state.store = post;
                if let Some(fr) = state.ctx.pop() {
                    state.func = fr.caller;
                }
                return Ok(Next::Continue(target));
            }
            if !state.ctx.is_empty() {
                return Err(Stop::Fail(SpecializeError::Unsupported {
                    address: addr,
                    reason: "the return address of an inlined call became dynamic".into(),
                }));
            }
            self.exit(state, &ins, items)?;
            return Ok(Next::Exit);
        }
        if ev.has_residual() || ev.needs_fallback {
            let start = items.len();
            self.emit_residual(state, info, items)?;
            purge_copies(&mut state.store, info, &ev);
            self.update_copies(state, &items[start..]);
        } else {
            state.store = post;
            purge_copies(&mut state.store, info, &ev);
        }
        match ev.eip {
            None => Ok(Next::Continue(next)),
            Some(SExpr::Known(v)) => Ok(Next::Continue(self.code_addr(v, addr)?)),
            Some(SExpr::Dyn(_)) => {
                let cc = ins.condition_code();
                let is_jcc = ins.flow_control() == FlowControl::ConditionalBranch
                    && cc != ConditionCode::None
                    && !matches!(
                        ins.mnemonic(),
                        Mnemonic::Loop
                            | Mnemonic::Loope
                            | Mnemonic::Loopne
                            | Mnemonic::Jecxz
                            | Mnemonic::Jcxz
                    );
                if !is_jcc && ins.flow_control() == FlowControl::IndirectBranch {
                    let f = self.function(state.func)?;
                    let cases: Vec<u32> = f
                        .function
                        .blocks
                        .values()
                        .filter(|b| b.instructions.last().is_some_and(|i| i.ip32() == addr))
                        .flat_map(|b| b.successors.iter())
                        .filter_map(|s| match s {
                            wiper_x86::Successor::Case { target, .. } => Some(*target),
                            _ => None,
                        })
                        .collect();
                    if !cases.is_empty() && !self.pie {
                        self.materialize_inputs(&mut state.store, info, &ev, items)?;
                        let esp = state.store.esp();
                        Emitter::new(items, addr).lower_real_esp(&mut state.store, esp);
                        let mut cases = cases;
                        cases.sort();
                        cases.dedup();
                        return Ok(Next::Table {
                            jump: ins,
                            cases,
                            state: Box::new(state.clone()),
                        });
                    }
                    if state.ctx.is_empty() {
                        // An indirect tail call: the callee returns to our
                        // caller, so everything goes into the machine.
                        self.sync_all(state, addr, UNKNOWN_ARGS, items)?;
                        items.push(Item::Instr(ins, Origin::Original(addr)));
                        return Ok(Next::Exit);
                    }
                }
                if !is_jcc {
                    return Err(Stop::Fail(SpecializeError::Unsupported {
                        address: addr,
                        reason: format!(
                            "`{}` jumps to a target known only at run time",
                            mnemonic_text(&ins)
                        ),
                    }));
                }
                let mut em = Emitter::new(items, addr);
                em.flags(&mut state.store, info.flags_read());
                self.stats.materialized += em.materialized;
                Ok(Next::Branch {
                    cc,
                    taken: Box::new((ins.near_branch32(), state.clone())),
                    not_taken: Box::new((next, state.clone())),
                    address: addr,
                })
            }
        }
    }

    /// Keeps the copy facts true after `emitted` ran: facts on registers or
    /// slots it writes go; a lone `mov [esp+d],r32` or `mov r32,[esp+d]`
    /// makes a new one.
    fn update_copies(&mut self, state: &mut State, emitted: &[Item]) {
        let copies = &mut state.store.copies;
        let mut writes_memory = false;
        for item in emitted {
            match item {
                Item::Instr(i, _) => {
                    if let Ok(l) = wiper_sem::lift(&mut self.pool, i) {
                        for w in l.writes() {
                            match w {
                                Loc::Reg(r) => copies.retain(|c| c.1 != r),
                                Loc::Mem => writes_memory = true,
                                _ => {}
                            }
                        }
                    } else {
                        copies.clear();
                    }
                }
                _ => copies.clear(),
            }
        }
        let single = match emitted {
            [Item::Instr(i, _)] => Some(*i),
            _ => None,
        };
        let slot = |i: &Instruction, op: u32| -> Option<u32> {
            (i.op_kind(op) == iced_x86::OpKind::Memory
                && i.memory_base() == iced_x86::Register::ESP
                && i.memory_index() == iced_x86::Register::None)
                .then(|| state.store.real_esp.wrapping_add(i.memory_displacement32()))
        };
        let fact = match single {
            Some(i) if i.code() == Code::Mov_rm32_r32 => {
                slot(&i, 0).zip(Reg::from_iced(i.op1_register()))
            }
            Some(i) if i.code() == Code::Mov_r32_rm32 => {
                slot(&i, 1).zip(Reg::from_iced(i.op0_register()))
            }
            _ => None,
        };
        let copies = &mut state.store.copies;
        if writes_memory {
            match fact {
                Some((off, _)) => copies.retain(|c| c.0.wrapping_sub(off).wrapping_add(3) > 6),
                None => copies.clear(),
            }
        }
        if let Some((off, r)) = fact {
            if r != Reg::Esp && state.store.regs[r.index()].is_none() {
                copies.push((off, r));
            }
        }
    }

    /// Emits the residual code of a non-control instruction.
    fn emit_residual(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        let mut em_items = Vec::new();
        let mut em = Emitter::new(&mut em_items, addr);
        // Memory the residual formulas read must be in memory; then the
        // instruction is evaluated again over the updated store.
        let (_, first) = self.evaluate(&state.store, info);
        for (region, off, n) in &first.partial_reads {
            em.memory(&mut state.store, *region, *off, *n)?;
        }
        if !first.dyn_reads.is_empty() || !first.dyn_writes.is_empty() {
            em.all_memory(&mut state.store, |_, _| true)?;
        }
        let (post, ev) = self.evaluate(&state.store, info);
        self.stats.materialized += em.materialized;
        items.append(&mut em_items);
        let mut fallback = ev.needs_fallback;
        let mut emitted = false;
        if !fallback && !ev.read_unsynced {
            items.push(Item::Instr(ins, Origin::Original(addr)));
            state.store = self.synced_after(post.clone(), info, &ev);
            emitted = true;
        }
        if !emitted && !fallback {
            // Keep every live frame byte at or above the machine's esp.
            let floor = if (post.esp() as i32) < (state.store.esp() as i32) {
                post.esp()
            } else {
                state.store.esp()
            };
            let mut em = Emitter::new(items, addr);
            em.lower_real_esp(&mut state.store, floor);
            // Only a sequence Z3's verdicts prove is used; one that is
            // offered without a proof is counted and replaced by the fallback.
            let offered = self.reduce(state, info, &post, &ev);
            if let Some(s) = &offered {
                self.stats.reduced += s.instructions.len();
            }
            match offered.filter(|s| s.proof.holds()) {
                Some(synthesized) => {
                    let seq = synthesized.instructions;
                    let same = seq.len() == 1 && same_instruction(&seq[0], &ins);
                    let mut s = post.clone();
                    for i in &seq {
                        self.stats.proved += 1;
                        let origin = if same {
                            Origin::Original(addr)
                        } else {
                            Origin::Reduced(addr)
                        };
                        items.push(Item::Instr(*i, origin));
                        // Registers and flags the sequence clobbers lose sync.
                        if let Ok(l) = wiper_sem::lift(&mut self.pool, i) {
                            for w in l.writes() {
                                s.set_synced(w, false);
                            }
                        }
                    }
                    s.real_esp = state.store.real_esp;
                    s.escaped |= ev.escapes || state.store.escaped;
                    state.store = s;
                    emitted = true;
                }
                None => fallback = true,
            }
        }
        if !emitted && fallback {
            self.materialize_inputs(&mut state.store, info, &ev, items)?;
            let (post, ev) = self.evaluate(&state.store, info);
            // Everything the instruction reads is in the machine now.
            if ev.read_unsynced {
                return Err(Stop::Fail(SpecializeError::Unsupported {
                    address: addr,
                    reason: "could not materialize the instruction's static inputs".into(),
                }));
            }
            items.push(Item::Instr(ins, Origin::Fallback(addr)));
            self.stats.fallbacks += 1;
            state.store = self.synced_after(post, info, &ev);
        }
        // Stores through unknown pointers: known bytes they may reach
        // become dynamic (they were written to memory first).
        if !ev.dyn_writes.is_empty() {
            let stack_var = self.pool.lookup_var(base_var_name(Base::Stack));
            let esp_var = loc_var(&mut self.pool, Loc::Reg(Reg::Esp));
            let mut frame = state.store.escaped;
            for a in &ev.dyn_writes {
                let vars = self.pool.vars(*a);
                if stack_var.is_some_and(|v| vars.contains(&v))
                    || self.pool.as_var(esp_var).is_some_and(|v| vars.contains(&v))
                {
                    frame = true;
                }
            }
            self.forget_reachable(state, frame);
        }
        if ev.escapes {
            state.store.escaped = true;
        }
        Ok(())
    }

    /// Puts every known register, flag and memory byte the instruction
    /// reads into the machine, so the original instruction can run.
    fn materialize_inputs(
        &mut self,
        store: &mut Store,
        info: &InstrInfo,
        ev: &Evaluated,
        items: &mut Vec<Item>,
    ) -> Result<(), SpecializeError> {
        let mut em = Emitter::new(items, info.instruction.ip32());
        for l in &info.reads {
            if let Loc::Reg(r) = *l {
                em.register(store, r);
            }
        }
        em.flags(store, info.flags_read());
        for (region, off, n) in &ev.known_reads {
            em.memory(store, *region, *off, *n)?;
        }
        self.stats.materialized += em.materialized;
        Ok(())
    }

    /// The store after the original instruction ran on a machine holding
    /// all its inputs: what it computed is in the machine too.
    fn synced_after(&self, mut s: Store, info: &InstrInfo, ev: &Evaluated) -> Store {
        for &w in &info.writes {
            if w == Loc::Reg(Reg::Esp) {
                s.real_esp = s.esp();
            }
            s.set_synced(w, true);
        }
        for (region, off, n) in &ev.known_writes {
            for i in 0..*n {
                s.mem.mark_synced((*region, off.wrapping_add(i)));
            }
        }
        if ev.escapes {
            s.escaped = true;
        }
        s
    }

    /// Reduce: synthesizes code for the instruction's residual formulas.
    fn reduce(
        &mut self,
        state: &State,
        info: &InstrInfo,
        post: &Store,
        ev: &Evaluated,
    ) -> Option<Synthesized> {
        let mut map = HashMap::new();
        if let Some(v) = self.pool.lookup_var(base_var_name(Base::Stack)) {
            let esp = loc_var(&mut self.pool, Loc::Reg(Reg::Esp));
            let k = self
                .pool
                .bv(u64::from(state.store.real_esp.wrapping_neg()), 32);
            let e = self.pool.add(esp, k);
            map.insert(v, e);
        }
        let load = self.pool.lookup_var(base_var_name(Base::Load));
        let mut effects: Vec<(Loc, ExprId)> = Vec::new();
        let regs = ev.regs.iter().map(|(r, e)| (Loc::Reg(*r), *e));
        let flags = ev.flags.iter().map(|(f, e)| (Loc::Flag(*f), *e));
        let mem = ev.mem.iter().map(|e| (Loc::Mem, *e));
        for (l, e) in regs.chain(flags).chain(mem) {
            let e = self.pool.subst(e, &map).ok()?;
            if let Some(lv) = load {
                if self.pool.vars(e).contains(&lv) {
                    return None;
                }
            }
            effects.push((l, e));
        }
        let mut live_regs = 1u8 << Reg::Esp.index();
        for r in Reg::ALL {
            if info.live_regs_out & (1 << r.index()) != 0 && post.reg(r).is_none() {
                live_regs |= 1 << r.index();
            }
        }
        let mut live_flags = 0u8;
        for f in Flag::ALL {
            if info.live_flags_out & (1 << f.index()) != 0 && post.flag(f).is_none() {
                live_flags |= 1 << f.index();
            }
        }
        // Registers whose machine contents are stale, with their constant
        // value as a hint (0 for addresses, which make no immediates).
        let statics: Vec<(Reg, u32)> = Reg::ALL
            .iter()
            .filter_map(|r| match state.store.reg(*r) {
                Some(Known {
                    value,
                    synced: false,
                }) if *r != Reg::Esp => Some((
                    *r,
                    match value {
                        SVal::Const(c) => c as u32,
                        SVal::Addr(..) => 0,
                    },
                )),
                _ => None,
            })
            .collect();
        let goal = Goal {
            effects,
            live_regs,
            live_flags: live_flags & ALL_FLAGS,
            original: Some(&info.instruction),
            static_regs: &statics,
        };
        self.synth.synthesize_detailed(&self.pool, &goal)
    }

    /// Function exit: what the caller can observe goes into the machine,
    /// then the original `ret`. `edx` only when some caller of the
    /// function may read it ([`CallerAnalysis::edx_at_return`]): the
    /// residual is reached only where the original function was.
    fn exit(
        &mut self,
        state: &mut State,
        ins: &Instruction,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let mut em = Emitter::new(items, ins.ip32());
        // The frame dies; the caller owns no stack byte the function
        // could know (its arguments belong to the callee).
        em.all_memory(&mut state.store, |r, _| r != Region::Of(Base::Stack))?;
        if self.callers.edx_at_return(state.func).is_dead() {
            em.registers_except(&mut state.store, Reg::Edx);
        } else {
            self.run.edx_live_at_exit = true;
            em.all_registers(&mut state.store);
        }
        let esp = state.store.esp();
        em.set_real_esp(&mut state.store, esp);
        em.emit(*ins, Origin::Original(ins.ip32()));
        self.stats.materialized += em.materialized;
        Ok(())
    }

    /// A system call or other barrier: everything into the machine first.
    fn barrier(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let ins = info.instruction;
        self.sync_all(state, ins.ip32(), 0, items)?;
        items.push(Item::Instr(ins, Origin::Original(ins.ip32())));
        state.store.set_reg(Reg::Eax, None);
        let frame = state.store.escaped;
        self.forget_reachable(state, frame);
        Ok(())
    }

    /// Materializes every known register, flag and memory byte and moves
    /// the machine esp to the static one. Code we do not see runs next: if
    /// it can be handed a stack address (in `eax`/`ecx`/`edx`, the
    /// argument area or global memory), the frame escapes.
    fn sync_all(
        &mut self,
        state: &mut State,
        addr: u32,
        args: u32,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        state.store.copies.clear();
        let esp = state.store.esp();
        let stack_addr = |v: Option<Known<SVal>>| {
            matches!(
                v,
                Some(Known {
                    value: SVal::Addr(Base::Stack, _),
                    ..
                })
            )
        };
        if [Reg::Eax, Reg::Ecx, Reg::Edx]
            .iter()
            .any(|r| stack_addr(state.store.reg(*r)))
            || state.store.mem.iter().any(|((region, off), k)| {
                matches!(k.value, Byte::Part(Base::Stack, ..))
                    && (region != Region::Of(Base::Stack) || off.wrapping_sub(esp) < args)
            })
        {
            state.store.escaped = true;
        }
        let mut em = Emitter::new(items, addr);
        em.all_memory(&mut state.store, |_, _| true)?;
        em.all_registers(&mut state.store);
        em.flags(&mut state.store, ALL_FLAGS);
        let esp = state.store.esp();
        em.set_real_esp(&mut state.store, esp);
        self.stats.materialized += em.materialized;
        Ok(())
    }

    /// Forgets known memory that code outside the specializer's view (a
    /// callee, a system call, a store through an unknown pointer) may
    /// change: all but the static buffers, and the frame when it escaped
    /// (keeping the return addresses of inlined calls).
    fn forget_reachable(&mut self, state: &mut State, frame: bool) {
        let slots = ret_slots(state);
        let buffers = self.buffer_ranges.clone();
        state.store.mem.retain(|(region, off), _| match region {
            Region::Of(Base::Stack) => !frame || slots.contains(&off),
            r => buffers
                .iter()
                .any(|(br, lo, hi)| *br == r && off >= *lo && off < *hi),
        });
    }

    /// Bytes of stack arguments the function at `entry` reads (from the
    /// binding-time analysis; a generous bound if it fails).
    fn arg_bytes(&mut self, entry: u32) -> u32 {
        *self.arg_counts.entry(entry).or_insert_with(|| {
            wiper_bta::analyze(self.binary, entry, &StaticSpec::default())
                .map(|a| 4 * a.arg_count)
                .unwrap_or(UNKNOWN_ARGS)
        })
    }

    /// A call: inlined, specialized as a clone, or kept.
    fn call(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<Next, Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        let next = ins.next_ip32();
        let (post, ev) = self.evaluate(&state.store, info);
        let target = match ev.eip {
            Some(SExpr::Known(v)) => Some(self.code_addr(v, addr)?),
            _ => None,
        };
        let internal = target.filter(|t| {
            !self.binary.plt.contains_key(t)
                && self.binary.function_at(*t).is_some_and(|s| s.addr == *t)
                && self.function(*t).is_ok()
        });
        if let Some(t) = internal {
            let recursive = t == state.func || state.ctx.iter().any(|f| f.caller == t);
            // A recursive call is inlined when all its arguments are known
            // (the recursion then ends at specialization time), or when some
            // are and no activation of `t` it is nested in had the same
            // known arguments (a static argument progresses, as `n` in
            // `pow(x, n - 1)`; up to the inlining depth). Otherwise it
            // becomes a call to a clone.
            let nargs = self.arg_bytes(t);
            let key = arg_key(&post, post.esp(), nargs);
            let args_known = key.iter().all(Option::is_some);
            let progresses = || {
                key.iter().any(Option::is_some)
                    && activations(state)
                        .into_iter()
                        .filter(|&(f, _)| f == t)
                        .all(|(_, ret_slot)| arg_key(&post, ret_slot, nargs) != key)
            };
            if state.ctx.len() < self.options.max_inline_depth
                && (!recursive || args_known || progresses())
            {
                state.store = post;
                state.ctx.push(Frame {
                    caller: state.func,
                    ret_slot: state.store.esp(),
                });
                state.func = t;
                return Ok(Next::Continue(t));
            }
        }
        // A real call: everything into the machine.
        let args = match internal {
            Some(t) => self.arg_bytes(t),
            None => UNKNOWN_ARGS,
        };
        self.sync_all(state, addr, args, items)?;
        match internal {
            Some(t) => {
                // A clone specialized for what is known at the call.
                let clone = self.clone_state(state, t);
                let (label, glue) = self.goto(clone, t)?;
                debug_assert!(glue.is_empty());
                items.push(Item::CallLabel(label, Origin::Original(addr)));
            }
            None => {
                let call = match target {
                    Some(t) if ins.code() != Code::Call_rel32_32 => {
                        Instruction::with_branch(Code::Call_rel32_32, u64::from(t)).expect("call")
                    }
                    _ => ins,
                };
                items.push(Item::Instr(call, Origin::Original(addr)));
            }
        }
        for r in [Reg::Eax, Reg::Ecx, Reg::Edx] {
            state.store.set_reg(r, None);
        }
        state.store.flags = [None; 7];
        let frame = state.store.escaped;
        if !frame {
            // The callee owns its argument area (but not the return
            // addresses of inlined calls).
            let esp = state.store.esp();
            let slots = ret_slots(state);
            state.store.mem.retain(|(region, off), _| {
                region != Region::Of(Base::Stack)
                    || slots.contains(&off)
                    || off.wrapping_sub(esp) >= args
            });
        }
        self.forget_reachable(state, frame);
        Ok(Next::Continue(next))
    }

    /// The entry state of a clone of `t` called from `state` (after
    /// everything was synced): what is known of the callee's arguments,
    /// the registers and global memory, relative to the callee's frame.
    fn clone_state(&self, state: &State, t: u32) -> State {
        let shift = state.store.esp().wrapping_sub(4);
        let tr = |v: SVal| match v {
            SVal::Addr(Base::Stack, o) => SVal::Addr(Base::Stack, o.wrapping_sub(shift)),
            v => v,
        };
        let mut s = Store::entry();
        for r in Reg::ALL {
            // Stack addresses in registers (a frame pointer) are synced and
            // differ at every depth of a recursion: the clone does not need
            // them as static values.
            if r != Reg::Esp {
                let k = state
                    .store
                    .reg(r)
                    .filter(|k| !matches!(k.value, SVal::Addr(Base::Stack, _)));
                s.set_reg(
                    r,
                    k.map(|k| Known {
                        value: tr(k.value),
                        synced: true,
                    }),
                );
            }
        }
        for ((region, off), k) in state.store.mem.iter() {
            let byte = match k.value {
                Byte::Part(b, o, i) => match tr(SVal::Addr(b, o)) {
                    SVal::Addr(b, o) => Byte::Part(b, o, i),
                    _ => unreachable!(),
                },
                b => b,
            };
            let known = Known {
                value: byte,
                synced: true,
            };
            match region {
                Region::Of(Base::Stack) => {
                    let rel = off.wrapping_sub(shift) as i32;
                    if (4..4 + 4 * 8).contains(&rel) {
                        s.mem.insert((region, rel as u32), known);
                    }
                }
                _ => {
                    s.mem.insert((region, off), known);
                }
            }
        }
        s.escaped = true;
        State {
            store: s,
            func: t,
            ctx: Vec::new(),
            dyn_branches: state.dyn_branches,
            parent: state.parent,
        }
    }
}

/// The known bytes of the `nargs` bytes of stack arguments above the return
/// address slot `ret_slot` (`None` for a dynamic byte or one holding part
/// of an address).
fn arg_key(store: &Store, ret_slot: u32, nargs: u32) -> Vec<Option<u8>> {
    (4..4 + nargs)
        .map(|i| {
            match store
                .mem
                .get((Region::Of(Base::Stack), ret_slot.wrapping_add(i)))
            {
                Some(Known {
                    value: Byte::Const(b),
                    ..
                }) => Some(b),
                _ => None,
            }
        })
        .collect()
}

/// The activations on the inlining stack of `state`, outermost first: each
/// function with the stack offset of its return address slot.
fn activations(state: &State) -> Vec<(u32, u32)> {
    // Frame i is the call from `ctx[i].caller` into the next frame's caller
    // (the running function for the last frame).
    let callees = state
        .ctx
        .iter()
        .skip(1)
        .map(|f| f.caller)
        .chain(std::iter::once(state.func));
    let root = state.ctx.first().map_or(state.func, |f| f.caller);
    std::iter::once((root, 0))
        .chain(callees.zip(state.ctx.iter().map(|f| f.ret_slot)))
        .collect()
}

/// Drops the copy facts on whatever the instruction writes (registers, known
/// stack slots; all of them for a store through an unknown pointer).
fn purge_copies(store: &mut Store, info: &InstrInfo, ev: &Evaluated) {
    for w in &info.writes {
        if let Loc::Reg(r) = *w {
            store.copies.retain(|c| c.1 != r);
        }
    }
    if !ev.dyn_writes.is_empty() {
        store.copies.clear();
    }
    for (region, off, n) in ev.known_writes.iter().chain(&ev.dyn_known_writes) {
        if *region == Region::Of(Base::Stack) {
            store
                .copies
                .retain(|c| c.0.wrapping_sub(*off).wrapping_add(3) >= n + 3);
        }
    }
}

/// The stack bytes holding the return addresses of inlined calls, and the
/// frame pointers saved right below them.
fn ret_slots(state: &State) -> HashSet<u32> {
    let mut slots: HashSet<u32> = state
        .ctx
        .iter()
        .flat_map(|f| (0..4).map(move |i| f.ret_slot.wrapping_add(i)))
        .collect();
    // The frame pointer an inlined callee saved right below its return
    // address (`push ebp` on entry) is no callee's business either.
    for f in &state.ctx {
        let saved = f.ret_slot.wrapping_sub(4);
        let holds_frame_pointer = (0..4).all(|i| {
            matches!(
                state
                    .store
                    .mem
                    .get((Region::Of(Base::Stack), saved.wrapping_add(i))),
                Some(Known {
                    value: Byte::Part(Base::Stack, _, _),
                    ..
                })
            )
        });
        if holds_frame_pointer {
            slots.extend((0..4).map(|i| saved.wrapping_add(i)));
        }
    }
    slots
}

fn same_instruction(a: &Instruction, b: &Instruction) -> bool {
    let mut a = *a;
    a.set_ip(b.ip());
    a.set_len(b.len());
    a == *b
}

fn mnemonic_text(ins: &Instruction) -> String {
    format!("{:?}", ins.mnemonic()).to_lowercase()
}
