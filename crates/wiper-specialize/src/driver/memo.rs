//! Specialization points: program points, the memo table, glue into a
//! memo entry, the whistle and the generalization it asks for.

use std::fmt;
use std::hash::{Hash, Hasher};

use wiper_residual::{Item, Label};
use wiper_sem::{Flag, Reg};

use super::{Frame, Pending, RunState, Specializer, State, Stop};
use crate::function::InstrInfo;
use crate::materialize::Emitter;
use crate::relations::{RelLoc, Relations};
use crate::state::{FxHasher, Known, Region, SVal, Store};
use crate::SpecializeError;

/// A location that can be generalized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum GenLoc {
    /// A register.
    Reg(Reg),
    /// A flag.
    Flag(Flag),
    /// An aligned 4-byte word of memory.
    Word(Region, u32),
}

/// The locations where the static parts of two stores of one program point
/// differ (registers, flags, then aligned memory words, each in increasing
/// order); `None` when there are more than [`MAX_GENERALIZED`].
pub(super) fn static_diff(a: &Store, b: &Store) -> Option<Vec<GenLoc>> {
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
pub(super) fn memo_hash(point: &Point, store: &Store) -> u64 {
    let mut h = FxHasher::default();
    point.hash(&mut h);
    store.hash_static(&mut h);
    h.finish()
}

/// A program point of specialization: an address of a function, under a
/// stack of inlined calls.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Point {
    /// Entry of the function whose code runs.
    pub(super) func: u32,
    /// The instruction's address.
    pub(super) addr: u32,
    /// The inlined calls, outermost first.
    pub(super) ctx: Vec<Frame>,
}

/// A location generalized at an address of a function (in every inlining
/// context): made dynamic on arrival there. Ordered by function, address,
/// then location, so the glue that materializes them is deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Generalization {
    /// Entry of the function.
    pub(super) func: u32,
    /// The address in it.
    pub(super) addr: u32,
    /// The location made dynamic.
    pub(super) loc: GenLoc,
}

impl fmt::Display for Generalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} at {:#x} (function {:#x})",
            self.loc, self.addr, self.func
        )
    }
}

/// What a blown whistle asks for: restart the run with these locations
/// generalized at `addr` of `func`.
#[derive(Clone, Debug)]
pub(super) struct Restart {
    /// Entry of the function.
    pub(super) func: u32,
    /// The program point's address.
    pub(super) addr: u32,
    /// The locations whose static values kept changing there.
    pub(super) locs: Vec<GenLoc>,
}

impl Restart {
    /// The generalizations this restart adds.
    pub(super) fn generalizations(&self) -> impl Iterator<Item = Generalization> + '_ {
        self.locs.iter().map(|&loc| Generalization {
            func: self.func,
            addr: self.addr,
            loc,
        })
    }
}

/// The way into a specialization point: its residual block, and the glue
/// code that brings the machine from the state at the jump into the state
/// the point expects.
pub(super) struct Arrival {
    /// The point's residual block.
    pub(super) label: Label,
    /// Code to run before jumping there (may be empty).
    pub(super) glue: Vec<Item>,
}

/// A specialization point: a memo entry, and a node of the tree of paths
/// the whistle walks.
pub(super) struct MemoEntry {
    point: Point,
    /// The store on arrival (after generalization and dead locations were
    /// dropped): its static part is the memo key, what it has synced is
    /// what jumps to the point must sync first.
    store: Store,
    /// The point's residual block.
    label: Label,
    /// Dynamic branches on the path from the entry to the point.
    dyn_branches: u32,
    /// The point before this one on the path that created it.
    parent: Option<usize>,
    /// Residual items (terminators left out) when the point was created.
    items_at: usize,
    /// How many points lie before this one on its path.
    depth: u32,
    /// An earlier point on the path (itself for the first), chosen so that
    /// [`RunState::ancestor_at`] takes logarithmic steps (Myers' skew-binary
    /// jump pointers).
    jump: usize,
    /// The nearest visit of the same point before this one on its path:
    /// following these gives the point's visits on the path, newest first.
    previous_visit: Option<usize>,
}

impl MemoEntry {
    /// The entry as the specializer's output shows it.
    pub(super) fn summary(&self) -> crate::PointSummary {
        crate::PointSummary {
            label: self.label,
            function: self.point.func,
            address: self.point.addr,
            inlined: self.point.ctx.iter().map(|f| f.callee).collect(),
            statics: self.store.static_summary(),
        }
    }
}

impl RunState {
    /// The point on the path to entry `id` at `depth` (at most `id`'s).
    fn ancestor_at(&self, mut id: usize, depth: u32) -> usize {
        while self.entries[id].depth > depth {
            let e = &self.entries[id];
            id = if self.entries[e.jump].depth >= depth {
                e.jump
            } else {
                e.parent.expect("a point below the first has a parent")
            };
        }
        id
    }

    /// The depth and jump pointer of a new entry after `parent`.
    fn depth_and_jump(&self, parent: Option<usize>, id: usize) -> (u32, usize) {
        let Some(p) = parent else {
            return (0, id);
        };
        let pe = &self.entries[p];
        let j = &self.entries[pe.jump];
        let jj = &self.entries[j.jump];
        let jump = if pe.depth - j.depth == j.depth - jj.depth {
            j.jump
        } else {
            p
        };
        (pe.depth + 1, jump)
    }

    /// The visits of `point` on the path up to entry `from` (included),
    /// newest first, at most `most` of them: the newest, then the chain of
    /// [`MemoEntry::previous_visit`]s.
    fn visits_on_path(&self, point: &Point, from: Option<usize>, most: usize) -> Vec<usize> {
        let mut visits = Vec::new();
        let mut next = self.newest_visit_on_path(point, from);
        while let Some(id) = next {
            if visits.len() == most {
                break;
            }
            visits.push(id);
            next = self.entries[id].previous_visit;
        }
        visits
    }

    /// How many of the last `most` visits of `point` on the path to
    /// `state` were each reached from the one before (the newest: from
    /// `state`) through a dynamic branch.
    pub(super) fn dynamic_visit_chain(&self, point: &Point, state: &State, most: usize) -> usize {
        let mut branches = state.dyn_branches;
        let mut chain = 0;
        for id in self.visits_on_path(point, state.parent, most) {
            let earlier = self.entries[id].dyn_branches;
            if earlier >= branches {
                break;
            }
            branches = earlier;
            chain += 1;
        }
        chain
    }

    /// The points the path from entry `from` back passes between its
    /// visits `visits` (entries on it, newest first): element j holds
    /// those strictly between visit j - 1 (for j = 0: the state after
    /// `from`) and visit j, newest first.
    fn paths_between(&self, from: Option<usize>, visits: &[usize]) -> Vec<Vec<&Point>> {
        let mut paths = vec![Vec::new()];
        let mut cur = from;
        while let (Some(id), Some(&next)) = (cur, visits.get(paths.len() - 1)) {
            if id == next {
                if paths.len() == visits.len() {
                    break;
                }
                paths.push(Vec::new());
            } else {
                paths
                    .last_mut()
                    .expect("a path")
                    .push(&self.entries[id].point);
            }
            cur = self.entries[id].parent;
        }
        paths
    }

    /// The newest visit of `point` on the path up to entry `from`
    /// (included).
    fn newest_visit_on_path(&self, point: &Point, from: Option<usize>) -> Option<usize> {
        let (from, ids) = (from?, self.by_point.get(point)?);
        // A loop's head has its visits close together on the path: walk it
        // back a little first. Scanning the point's visits instead costs an
        // ancestor test for each, and in a tree unrolled through dynamic
        // branches most of them lie on other paths.
        let mut cur = Some(from);
        for _ in 0..PATH_WALK {
            let id = cur?; // (the whole path was walked)
            if self.entries[id].point == *point {
                return Some(id);
            }
            cur = self.entries[id].parent;
        }
        // The rest of the path lies at or above `rest`, whose ancestors
        // were all created before it: only older visits are candidates.
        let rest = cur?;
        let depth = self.entries[rest].depth;
        let older = ids.partition_point(|&id| id <= rest);
        ids[..older]
            .iter()
            .rev()
            .filter(|&&id| self.entries[id].depth <= depth)
            .find(|&&id| self.ancestor_at(rest, self.entries[id].depth) == id)
            .copied()
    }
}

/// A visit of a program point on the current path, as the whistle compares
/// them.
struct Visit<'a> {
    /// The store on arrival.
    store: &'a Store,
    /// Dynamic branches on the path to the visit.
    dyn_branches: u32,
    /// Residual items when the visit was made.
    items: usize,
}

/// Points of the path walked back before the visits of a point are looked
/// up by ancestor tests instead (see `RunState::visits_on_path`).
const PATH_WALK: usize = 256;

/// Most locations one whistle generalizes at once (a loop's counters and
/// the values derived from them).
pub(super) const MAX_GENERALIZED: usize = 4;

/// Visits of one point, each differing from the one before in the same
/// locations, that make the whistle blow when the paths between them differ
/// (see `Specializer::whistle`).
pub(super) const UNEVEN_PATH_VISITS: usize = 16;

/// Residual instructions a loop under static control may emit by unrolling
/// (its turns so far times the code per turn over the last
/// [`UNROLL_WINDOW`]) before its counter is generalized (see
/// `Specializer::unroll_whistle`).
pub(super) const UNROLL_CODE_BUDGET: usize = 4096;

/// Fewest visits of a point before unrolling can be too costly.
const UNROLL_MIN_VISITS: usize = 16;

/// Most visits the unrolling whistle looks back over.
const UNROLL_WINDOW: usize = 64;

impl Specializer<'_> {
    /// The label of the specialization point (`addr`, `state`), creating it
    /// (and queueing its specialization) if new, with the glue code that
    /// brings the machine into the point's expected state.
    pub(super) fn goto(&mut self, mut state: State, addr: u32) -> Result<Arrival, Stop> {
        let mut glue = Vec::new();
        let f = self.function(state.func)?;
        self.generalize_at(&mut state, addr, &mut glue)?;
        if let Some(info) = f.instrs.get(&addr) {
            drop_dead(&mut state.store, info);
        }
        let point = Point {
            func: state.func,
            addr,
            ctx: state.ctx.clone(),
        };
        let hash = memo_hash(&point, &state.store);
        let mut hit = self.memo_hit(hash, &point, &state.store);
        if hit.is_none() {
            // The point was met with these static values but other
            // relations: keep only those both agree on, so that a loop
            // whose relations drift is specialized once more at most per
            // relation lost, not once per turn.
            if let Some(rels) = self.same_static_relations(hash, &point, &state.store) {
                state.store.rels = state.store.rels.intersect(&rels);
                hit = self.memo_hit(hash, &point, &state.store);
            }
        }
        if let Some(id) = hit {
            let e = &self.run.entries[id];
            let (label, target) = (e.label, e.store.clone());
            self.glue_to(&mut state.store, &target, addr, &mut glue)?;
            return Ok(Arrival { label, glue });
        }
        // Whistle: along this path, the last visits of the same point,
        // each reached from the one before through a dynamic branch, differ
        // in the same few locations every time: a static value
        // changing under dynamic control (a counter). Generalize it there.
        let whistle = self
            .whistle(&point, &state)
            .or_else(|| self.unroll_whistle(&point, &state));
        let restarts = whistle.is_some() || self.last_run() && self.drifts(&point, &state);
        if restarts && self.leaves_instead_of_restarting(addr) {
            // No restart is left to generalize or spend in: the original
            // code runs the loop.
            return self.leave(state, addr, glue);
        }
        if let Some(locs) = whistle {
            tracing::debug!("whistle at {addr:#x}: generalizing {locs:?}, restarting");
            return Err(Stop::Restart(Restart {
                func: state.func,
                addr,
                locs,
            }));
        }
        if self.should_leave(&point) {
            return self.leave(state, addr, glue);
        }
        if self.drifts(&point, &state) {
            return Err(Stop::Spend(vec![point]));
        }
        let id = self.run.entries.len();
        let label = self.new_label();
        let point_key = point.clone();
        let (depth, jump) = self.run.depth_and_jump(state.parent, id);
        let previous_visit = self.run.newest_visit_on_path(&point, state.parent);
        self.run.entries.push(MemoEntry {
            point,
            store: state.store.clone(),
            label,
            dyn_branches: state.dyn_branches,
            parent: state.parent,
            items_at: self.run.items,
            depth,
            jump,
            previous_visit,
        });
        self.run.by_point.entry(point_key).or_default().push(id);
        self.run.memo.entry(hash).or_default().push(id);
        state.parent = Some(id);
        self.run.worklist.push(Pending { label, addr, state });
        Ok(Arrival { label, glue })
    }

    /// Generalization: makes the locations chosen for `addr` of the running
    /// function dynamic, materializing their values first.
    fn generalize_at(
        &mut self,
        state: &mut State,
        addr: u32,
        glue: &mut Vec<Item>,
    ) -> Result<(), SpecializeError> {
        let mut em = Emitter::new(glue, addr);
        let gens: Vec<GenLoc> = self
            .generalized
            .iter()
            .filter(|g| g.func == state.func && g.addr == addr)
            .map(|g| g.loc)
            .collect();
        for g in gens {
            match g {
                GenLoc::Reg(r) if r != Reg::Esp => {
                    // (A frame address stays marked: `Store::set_reg`.)
                    em.register(&mut state.store, r);
                    state.store.set_reg(r, None);
                    state.store.copies.retain(|c| c.1 != r);
                    state.store.rels.forget(RelLoc::Reg(r));
                }
                GenLoc::Reg(_) => {}
                GenLoc::Flag(fl) => {
                    em.flags(&mut state.store, 1 << fl.index());
                    state.store.flags[fl.index()] = None;
                }
                GenLoc::Word(region, off) => {
                    state.store.copies.retain(|c| c.0 != off);
                    if region == Region::Of(crate::state::Base::Stack) {
                        state.store.rels.forget(RelLoc::Word(off));
                    }
                    em.memory(&mut state.store, region, off, 4)?;
                    for i in 0..4 {
                        state.store.mem.remove((region, off + i));
                    }
                }
            }
        }
        self.stats.materialized += em.materialized;
        Ok(())
    }

    /// The memo entry for `point` and `store` (whose [`memo_hash`] is
    /// `hash`), if there is one: its static part is this one and the copies
    /// its code relies on hold here too.
    fn memo_hit(&self, hash: u64, point: &Point, store: &Store) -> Option<usize> {
        let ids = self.run.memo.get(&hash)?;
        ids.iter().copied().find(|id| {
            let e = &self.run.entries[*id];
            e.point == *point
                && e.store.same_static(store)
                && e.store.copies.iter().all(|c| store.copies.contains(c))
                && e.store.rels.implied_by(&store.rels)
        })
    }

    /// The relations of the newest memo entry for `point` whose static part
    /// is `store`'s (whatever its relations), if there is one.
    fn same_static_relations(&self, hash: u64, point: &Point, store: &Store) -> Option<Relations> {
        let ids = self.run.memo.get(&hash)?;
        ids.iter().rev().find_map(|id| {
            let e = &self.run.entries[*id];
            (e.point == *point && e.store.same_static(store)).then(|| e.store.rels.clone())
        })
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
    pub(super) fn whistle(&self, point: &Point, state: &State) -> Option<Vec<GenLoc>> {
        let k = self.options.generalize_after.max(1);
        let most = k.max(UNEVEN_PATH_VISITS);
        // The chain needs k earlier visits of the point on this path.
        let earlier = self.run.visits_on_path(point, state.parent, most);
        if earlier.len() < k {
            return None;
        }
        // The visits, newest first (the current state is not an entry
        // yet), each reached from the one before through a dynamic branch.
        let mut chain = vec![Visit {
            store: &state.store,
            dyn_branches: state.dyn_branches,
            items: self.run.items,
        }];
        let mut ids = Vec::new();
        for &id in &earlier {
            let e = &self.run.entries[id];
            if e.dyn_branches >= chain[chain.len() - 1].dyn_branches {
                break;
            }
            chain.push(Visit {
                store: &e.store,
                dyn_branches: e.dyn_branches,
                items: e.items_at,
            });
            ids.push(id);
        }
        if chain.len() <= k {
            return None;
        }
        let d = static_diff(chain[0].store, chain[1].store).filter(|d| !d.is_empty())?;
        let same_diff = 1 + chain[1..]
            .windows(2)
            .take_while(|w| static_diff(w[0].store, w[1].store).as_ref() == Some(&d))
            .count();
        // The points passed between visit j and visit j + 1.
        let paths = self.run.paths_between(state.parent, &ids[..k]);
        let same_path = (1..k).all(|j| paths[j] == paths[0]);
        if same_diff < k || (!same_path && same_diff < UNEVEN_PATH_VISITS) {
            return None;
        }
        if holds_stack_address(chain.iter().map(|v| v.store), &d) {
            return None;
        }
        // A search narrowing an interval (binary search over a static
        // table): the changing values converge, each step at most half the
        // one before, so every path ends within logarithmically many
        // turns. Unrolled, while that costs little code.
        let visits = &chain[..=same_diff];
        let cost = self.run.items - visits[visits.len() - 1].items;
        if cost <= UNROLL_CODE_BUDGET && converges(visits.iter().map(|v| v.store), &d) {
            return None;
        }
        Some(d)
    }

    /// The locations to generalize at a point whose loop runs under static
    /// control and costs too much unrolled: the last visits on this path
    /// (static branches or not) differ in the same locations each time along
    /// the same points, and the residual code the unrolling has cost (its
    /// turns times the code per turn over the last [`UNROLL_WINDOW`])
    /// exceeds [`UNROLL_CODE_BUDGET`]: a
    /// counter driving dynamic work (`for (i = 0; i < 32768; i++) head[i] =
    /// 0`), which stays a loop. A loop that computes only static values
    /// emits nothing and is still unrolled to its end (a table built at
    /// specialization time); an interpreter's dispatch over a static program
    /// takes other paths each turn and is left alone.
    pub(super) fn unroll_whistle(&self, point: &Point, state: &State) -> Option<Vec<GenLoc>> {
        let turns = self.run.by_point.get(point).map_or(0, Vec::len);
        if turns < UNROLL_MIN_VISITS {
            return None;
        }
        let k = self.options.generalize_after.max(1);
        let earlier = self.run.visits_on_path(point, state.parent, UNROLL_WINDOW);
        if earlier.len() + 1 < UNROLL_MIN_VISITS.max(k + 2) {
            return None;
        }
        // Visits newest first: the store and the residual items then.
        let mut visits: Vec<(&Store, usize)> = vec![(&state.store, self.run.items)];
        visits.extend(
            earlier
                .iter()
                .map(|&id| (&self.run.entries[id].store, self.run.entries[id].items_at)),
        );
        // The code the unrolling has cost so far, estimated from the turns
        // so far and the code per turn over the window.
        let window = self.run.items.saturating_sub(visits.last()?.1);
        if turns * window / (visits.len() - 1) <= UNROLL_CODE_BUDGET {
            return None;
        }
        let d = static_diff(visits[0].0, visits[1].0).filter(|d| !d.is_empty())?;
        let same_diff =
            (1..=k).all(|j| static_diff(visits[j].0, visits[j + 1].0).as_ref() == Some(&d));
        let paths = self.run.paths_between(state.parent, &earlier[..=k]);
        let same_path = (1..=k).all(|j| paths[j] == paths[0]);
        if !same_diff || !same_path || holds_stack_address(visits.iter().map(|v| v.0), &d) {
            return None;
        }
        Some(d)
    }

    /// Glue from `store` to a memo entry's `target` store (same static
    /// values): sync what the target expects synced, move the machine esp.
    pub(super) fn glue_to(
        &mut self,
        store: &mut Store,
        target: &Store,
        addr: u32,
        glue: &mut Vec<Item>,
    ) -> Result<(), SpecializeError> {
        let mut em = Emitter::new(glue, addr);
        let keys: Vec<_> = target
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
}

/// Whether `esp` or `ebp` is among `locs` and holds a stack address in one
/// of `stores`: the stack pointer and the frame pointer are never
/// generalized, since code moves esp back from them. Other registers
/// holding frame addresses (a pointer walking a local buffer) are: the
/// register is then marked as holding a frame address
/// ([`Store::frame_regs`]), and code that later moves it into `esp` leaves
/// for the original code or stops with an error, never a wrong residual.
fn holds_stack_address<'s>(stores: impl Iterator<Item = &'s Store>, locs: &[GenLoc]) -> bool {
    let stores: Vec<&Store> = stores.collect();
    locs.iter().any(|g| match g {
        GenLoc::Reg(r) if matches!(r, Reg::Esp | Reg::Ebp) => stores.iter().any(|s| {
            matches!(
                s.reg(*r),
                Some(Known {
                    value: SVal::Addr(b, _),
                    ..
                }) if b.is_frame()
            )
        }),
        _ => false,
    })
}

/// Whether the locations `locs` converge over `stores` (visits of one
/// point, newest first; the oldest may not know them yet and are left
/// out): over the newest three or more visits where every location holds a
/// constant, no location's steps from visit to visit grow, and one
/// location's newest step is at most half its oldest. Binary search: `lo`
/// steps 1, 1, 2, 4 and `mid` 1, 2, 4. A counter (1, 1, 1) and a pointer
/// walking (4, 4, 4) do not converge; a loop that does only stays unrolled
/// for logarithmically many turns.
fn converges<'s>(stores: impl Iterator<Item = &'s Store>, locs: &[GenLoc]) -> bool {
    let known: Vec<Vec<u32>> = stores
        .map_while(|s| locs.iter().map(|&g| constant_at(s, g)).collect())
        .collect();
    if known.len() < 3 {
        return false;
    }
    let mut shrinking = false;
    for i in 0..locs.len() {
        let steps: Vec<u32> = known
            .windows(2)
            .map(|w| (w[0][i].wrapping_sub(w[1][i]) as i32).unsigned_abs())
            .collect();
        if steps.windows(2).any(|w| w[0] > w[1]) {
            return false;
        }
        shrinking |= steps[0].saturating_mul(2) <= steps[steps.len() - 1];
    }
    shrinking
}

/// The constant `store` knows at `loc`, if it knows one.
fn constant_at(store: &Store, loc: GenLoc) -> Option<u32> {
    match loc {
        GenLoc::Reg(r) => match store.reg(r)?.value {
            SVal::Const(c) => Some(c as u32),
            SVal::Addr(..) => None,
        },
        GenLoc::Flag(_) => None,
        GenLoc::Word(region, off) => match store.mem.word((region, off))? {
            SVal::Const(c) => Some(c as u32),
            SVal::Addr(..) => None,
        },
    }
}

/// Drops the registers and flags dead on entry to `info` (with the copy
/// facts on them: a dead register holds garbage). The direction flag
/// stays: it is the ABI's clear flag almost everywhere, and a callee
/// inlined later reads it.
fn drop_dead(store: &mut Store, info: &InstrInfo) {
    for r in Reg::ALL {
        if r != Reg::Esp && info.live_regs_in & (1 << r.index()) == 0 {
            store.set_dynamic(r, None);
            store.copies.retain(|c| c.1 != r);
            store.rels.forget(RelLoc::Reg(r));
        }
    }
    for fl in Flag::ALL {
        if fl != Flag::Df && info.live_flags_in & (1 << fl.index()) == 0 {
            store.flags[fl.index()] = None;
        }
    }
}
