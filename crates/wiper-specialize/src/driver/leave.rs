//! Leaving for the original code: a program point specialized in too many
//! variants stops being specialized, and the residual jumps into the
//! original function there with the machine as the original has it.
//!
//! The whistles generalize a static value that changes the same way turn
//! after turn. What they cannot see is static data split by dynamic control
//! into ever new combinations: a heap built in a local array whose entries
//! move under compares of dynamic weights (bzip2's
//! `BZ2_hbMakeCodeLengths`), a digit buffer filled one byte per turn
//! under a dynamic condition (gzip's `fprint_off`). Each combination is a
//! new variant of the same points, and the residual grows until the bound.
//!
//! A point is *spent*, and the run starts again, in two cases:
//! - its visits on one path, each reached from the one before through a
//!   dynamic branch, number [`DRIFT_VISITS`] (a loop under dynamic control
//!   that the whistles did not generalize) once the residual has reached
//!   a sixteenth of `--max-residual`;
//! - the residual reaches `--max-residual` (static data split into new
//!   combinations on many paths, as a heap's order under dynamic compares,
//!   which no one path shows): every point with [`VARIANT_BUDGET`]
//!   variants is spent, where the bound was an error before.
//!
//! In the new run, a spent point is specialized in [`SPENT_VARIANTS`]
//! variants at most; every further arrival there is a jump to the original
//! instruction, after everything known has been written into the machine
//! ([`Specializer::sync_all`]). The stack is laid out as the original's
//! (the return addresses of inlined calls are the original ones), so the
//! original code runs on from there and returns where the original
//! returns. Leaving early keeps the jumps cheap: few static bytes have
//! piled up to be written. The residual stays correct and finite; only
//! what lies past the budget is not specialized. Loops under static
//! control (a Brainfuck interpreter running a static inner loop, whose
//! visits pass static branches only) are not concerned.

use iced_x86::{Code, Instruction};
use wiper_residual::{Item, Origin, Terminator};

use super::memo::{Arrival, Point};
use super::{Specializer, State, Stop};

/// Visits of a point on one path, each through a dynamic branch, that
/// make it spent.
const DRIFT_VISITS: usize = 64;

/// Variants (memo entries, over all paths) that make a point spent when
/// the residual reaches `--max-residual`.
const VARIANT_BUDGET: usize = 64;

/// Variants a spent point is still specialized in before arrivals there
/// leave for the original code.
const SPENT_VARIANTS: usize = 4;

/// The share of `--max-residual` the residual must reach before points
/// are spent: below it, a long loop under dynamic control is cheap enough
/// to unroll (the benchmark's largest residual is under 1,000
/// instructions).
const LEAVE_SHARE: usize = 16;

/// Bytes of the specialized function's entry that the residual binary
/// overwrites with its `jmp` (wiper-emit's `patch_entry`): code there can
/// no longer be jumped into.
const PATCHED_ENTRY_BYTES: u32 = 5;

impl Specializer<'_> {
    /// Whether `point`, reached in `state`, is spent now (see the module
    /// documentation).
    pub(super) fn drifts(&mut self, point: &Point, state: &State) -> bool {
        if self.run.size < self.options.max_residual / LEAVE_SHARE
            || self.spent.contains(point)
            || point.addr.wrapping_sub(self.top) < PATCHED_ENTRY_BYTES
        {
            return false;
        }
        let chain = self.run.dynamic_visit_chain(point, state, DRIFT_VISITS);
        if chain < DRIFT_VISITS {
            return false;
        }
        if self.original_may_reenter() {
            return false;
        }
        tracing::debug!("{:#x}: variant budget spent, restarting", point.addr);
        true
    }

    /// The points to spend when the residual reaches `--max-residual`
    /// (static data split into ever new combinations on many paths, which
    /// no one point's visits on one path show): every point not spent yet
    /// with [`VARIANT_BUDGET`] variants or more; when there is none and
    /// points were spent before (they were not enough), those with at least half as
    /// many variants as the most-specialized point not spent yet, if that
    /// is more than a spent point keeps ([`SPENT_VARIANTS`]); `None` when
    /// there is none (the bound is then an error, as before).
    pub(super) fn spend_at_bound(&mut self) -> Option<Vec<Point>> {
        let eligible: Vec<(&Point, usize)> = self
            .run
            .by_point
            .iter()
            .filter(|(p, _)| {
                !self.spent.contains(*p) && p.addr.wrapping_sub(self.top) >= PATCHED_ENTRY_BYTES
            })
            .map(|(p, ids)| (p, ids.len()))
            .collect();
        let most = eligible.iter().map(|e| e.1).max().unwrap_or(0);
        let least = match self.spent.is_empty() {
            true => VARIANT_BUDGET,
            false => VARIANT_BUDGET.min((most / 2).max(SPENT_VARIANTS + 1)),
        };
        let mut points: Vec<Point> = eligible
            .into_iter()
            .filter(|e| e.1 >= least)
            .map(|(p, _)| p.clone())
            .collect();
        if points.is_empty() || self.original_may_reenter() {
            return None;
        }
        points.sort_by_key(|p| (p.func, p.addr, p.ctx.len()));
        tracing::debug!(
            "residual bound reached: {} points spent, restarting",
            points.len()
        );
        Some(points)
    }

    /// Whether a new variant of `point` leaves for the original code: the
    /// point is spent and has its [`SPENT_VARIANTS`].
    pub(super) fn should_leave(&self, point: &Point) -> bool {
        self.spent.contains(point)
            && self.run.by_point.get(point).map_or(0, Vec::len) >= SPENT_VARIANTS
    }

    /// Whether this run is the last the restart budget allows (no
    /// generalization, spending or kept call can restart it).
    pub(super) fn last_run(&self) -> bool {
        self.stats.restarts >= super::MAX_RESTARTS
    }

    /// Whether what would restart the run at `addr` leaves for the
    /// original code there instead: the run is the last, and it may.
    pub(super) fn leaves_instead_of_restarting(&mut self, addr: u32) -> bool {
        self.last_run() && self.can_leave_at(addr)
    }

    /// Whether the residual may jump into the original code at `addr`: it
    /// is not among the bytes the residual binary overwrites, and the
    /// original code cannot reach the patched entry with other inputs.
    pub(super) fn can_leave_at(&mut self, addr: u32) -> bool {
        addr.wrapping_sub(self.top) >= PATCHED_ENTRY_BYTES && !self.original_may_reenter()
    }

    /// Ends the residual block `items` with a jump into the original code
    /// at `addr`, everything known written into the machine first: where
    /// the specializer cannot follow the original (a stack pointer it
    /// loses track of, control it cannot place), the original runs on.
    pub(super) fn leave_here(
        &mut self,
        state: &mut State,
        addr: u32,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        self.sync_all(state, addr, 0, items)?;
        let jump = Instruction::with_branch(Code::Jmp_rel32_32, u64::from(addr))
            .expect("a direct jump is encodable");
        items.push(Item::Instr(jump, Origin::Original(addr)));
        self.stats.left += 1;
        tracing::debug!("{addr:#x}: leaving for the original code");
        Ok(())
    }

    /// The arrival at `addr` in `state` as a block of its own that writes
    /// everything known into the machine and jumps to the original
    /// instruction at `addr`; `glue` runs before it.
    pub(super) fn leave(
        &mut self,
        mut state: State,
        addr: u32,
        glue: Vec<Item>,
    ) -> Result<Arrival, Stop> {
        let label = self.new_label();
        let mut items = Vec::new();
        self.leave_here(&mut state, addr, &mut items)?;
        self.finish(label, items, Terminator::Exit);
        Ok(Arrival { label, glue })
    }

    /// Whether the original code, once entered, may call the specialized
    /// function's entry again (directly, or through functions it calls
    /// directly): that entry is patched to the residual, which is right
    /// only for the spec's static inputs. With nothing static it is right
    /// for every input, so nothing is checked. Calls through pointers are
    /// not followed (docs/limitations.md).
    pub(super) fn original_may_reenter(&mut self) -> bool {
        if self.spec.entries.is_empty() && !self.whole_program {
            return false;
        }
        if let Some(known) = self.reenters {
            return known;
        }
        let mut seen = std::collections::HashSet::from([self.top]);
        let mut work = vec![self.top];
        let mut reenters = false;
        while let Some(f) = work.pop() {
            let Ok(function) = self.dis.function(f) else {
                reenters = true; // code the decoder cannot read: assume it may
                break;
            };
            for ins in function.instructions() {
                if !(ins.is_call_near() || ins.is_jmp_near()) {
                    continue;
                }
                let target = ins.near_branch32();
                if target == self.top {
                    reenters = true;
                } else if seen.insert(target) && self.binary.function_at(target).is_some() {
                    work.push(target);
                }
            }
            if reenters {
                break;
            }
        }
        self.reenters = Some(reenters);
        reenters
    }
}
