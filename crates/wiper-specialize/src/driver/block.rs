//! Residual blocks: specializing from a point until the next one, the
//! edges of a dynamic branch, the dispatch of a jump table with a dynamic
//! index.

use iced_x86::{Code, ConditionCode, Instruction};
use wiper_residual::{Item, Label, Origin, Terminator};

use super::{relate, Specializer, State, Stop, INLINE_SHARE};
use crate::SpecializeError;

/// How specialization leaves an instruction.
pub(super) enum Next {
    /// On at this address, in the same block.
    Continue(u32),
    /// A conditional branch on a dynamic condition: both sides are
    /// specialized.
    Branch {
        /// The branch's condition.
        cc: ConditionCode,
        /// Where control goes when it holds.
        taken: Box<Target>,
        /// Where control goes otherwise.
        not_taken: Box<Target>,
        /// The branch's address.
        address: u32,
        /// Whether the branch's flags were pushed (`pushfd`) before its
        /// compare, to be popped first on both sides.
        restore_flags: bool,
    },
    /// The block ends with what was emitted (a return, a tail call).
    Exit,
    /// A store into the frame at an unknown index, after the check that it
    /// writes inside its window (`guard`): outside, the original code runs
    /// the store; inside, the same instruction is specialized again,
    /// knowing the window.
    Guard(super::guard::Window),
    /// A jump through a table with a dynamic index: compare the target
    /// (computed into `ecx`, saved first) with each case.
    Table {
        /// The original jump.
        jump: Instruction,
        /// The table's targets, sorted, without duplicates.
        cases: Vec<u32>,
        /// The state at the jump.
        state: Box<State>,
    },
}

/// One side of a dynamic branch: where it goes, in which state.
pub(super) struct Target {
    /// The address control goes to.
    pub(super) addr: u32,
    /// The state there.
    pub(super) state: State,
}

impl Specializer<'_> {
    /// Specializes from `addr` in `state` into the block `label`.
    pub(super) fn process(
        &mut self,
        label: Label,
        mut addr: u32,
        mut state: State,
    ) -> Result<(), Stop> {
        let mut items = Vec::new();
        let mut first = true;
        loop {
            if !self.within_bounds(&state, addr, items.len())? {
                // Over a bound that no restart can deal with any more: the
                // original runs on.
                self.leave_here(&mut state, addr, &mut items)?;
                self.finish(label, items, Terminator::Exit);
                return Ok(());
            }
            let mut f = self.function(state.func)?;
            if !f.instrs.contains_key(&addr) {
                // A jump into another function (a tail call): it runs in
                // the same frame.
                match self.binary.function_at(addr) {
                    Some(_) => {
                        state.func = addr;
                        state.times = self.times_at_entry(addr, &state.store);
                        f = match self.function(addr) {
                            Ok(f) => f,
                            Err(e) => return Err(self.failure_in(&state, e)),
                        };
                    }
                    None => match self.function_reaching(state.func, addr) {
                        Some(with_target) => f = with_target,
                        None if !self.can_keep(&state) && self.can_leave_at(addr) => {
                            // Code the decoder does not know: the original
                            // runs it.
                            self.leave_here(&mut state, addr, &mut items)?;
                            self.finish(label, items, Terminator::Exit);
                            return Ok(());
                        }
                        None => {
                            let e = SpecializeError::Unsupported {
                                address: addr,
                                reason: "control reaches an address outside any known function"
                                    .into(),
                            };
                            return Err(self.failure_in(&state, e));
                        }
                    },
                }
            }
            let info = &f.instrs[&addr];
            if !first && info.block_start {
                let keep = self.keep_candidate(&state);
                let arrival = match self.goto(state, addr) {
                    Err(Stop::Fail(e)) => return Err(self.failure(keep, e)),
                    arrival => arrival?,
                };
                items.extend(arrival.glue);
                self.finish(
                    label,
                    items,
                    Terminator::Jump(arrival.label, Origin::Glue(addr)),
                );
                return Ok(());
            }
            first = false;
            let (rels, real_esp, start) =
                (state.store.rels.clone(), state.store.real_esp, items.len());
            let mut next = match self.step(&mut state, info, &mut items) {
                Err(Stop::Fail(e)) => return Err(self.failure_in(&state, e)),
                next => next?,
            };
            let zf_live = info.live_flags_out & (1 << wiper_sem::Flag::Zf.index()) != 0;
            let emitted = &items[start..];
            let follow = |store: &mut crate::state::Store| {
                relate::follow(rels.clone(), real_esp, emitted, zf_live, store)
            };
            match &mut next {
                Next::Branch {
                    taken, not_taken, ..
                } => {
                    follow(&mut taken.state.store);
                    follow(&mut not_taken.state.store);
                }
                Next::Table { state, .. } => follow(&mut state.store),
                _ => follow(&mut state.store),
            }
            match next {
                Next::Continue(a) => addr = a,
                Next::Exit => {
                    self.finish(label, items, Terminator::Exit);
                    return Ok(());
                }
                Next::Table { jump, cases, state } => {
                    self.table(label, items, jump, &cases, *state)?;
                    return Ok(());
                }
                Next::Guard(window) => return self.finish_guarded(label, items, window, state),
                branch @ Next::Branch { .. } => return self.finish_branch(label, items, branch),
            }
        }
    }

    /// Stops the run when the residual (or the inlined callee's share of
    /// it) would pass its bound with the `pending` items of the block
    /// being built at `addr`; `false` when the specializer leaves for the
    /// original code at `addr` instead: an inlined callee's share is spent
    /// and no restart may keep it as a call, or the residual bound is
    /// reached in the last run the restart budget allows.
    fn within_bounds(&mut self, state: &State, addr: u32, pending: usize) -> Result<bool, Stop> {
        if self.run.size + pending > self.options.max_residual {
            let e = SpecializeError::TooLarge {
                limit: self.options.max_residual,
            };
            tracing::debug!(
                "residual bound reached at {addr:#x} of {:#x}, inlined in {:x?}",
                state.func,
                state.ctx.iter().map(|f| f.callee).collect::<Vec<_>>()
            );
            if self.leaves_instead_of_restarting(addr) {
                // No restart is left to spend points or keep calls in:
                // from here on the original code runs what is pending.
                return Ok(false);
            }
            return Err(match self.failure_in(state, e) {
                Stop::Fail(e) => self.spend_at_bound().map_or(Stop::Fail(e), Stop::Spend),
                stop => stop,
            });
        }
        self.run.inlining = self.responsible_callee(state);
        if let Some(callee) = self.run.inlining {
            let limit = self.options.max_residual / INLINE_SHARE;
            let used = self.run.inlined_size.get(&callee).copied().unwrap_or(0);
            if used + pending > limit {
                if !self.can_keep(state) && self.can_leave_at(addr) {
                    return Ok(false);
                }
                let e = SpecializeError::InlineTooLarge { callee, limit };
                return Err(self.failure_in(state, e));
            }
        }
        Ok(true)
    }

    /// Ends the block `label` with a guarded store's check: outside the
    /// window the original code runs the store, inside the specializer
    /// goes on with it.
    fn finish_guarded(
        &mut self,
        label: Label,
        items: Vec<Item>,
        window: super::guard::Window,
        mut state: State,
    ) -> Result<(), Stop> {
        let outside = self.leave(state.clone(), window.addr, Vec::new())?;
        let inside = self.new_label();
        state.guarded = Some(window);
        self.run.worklist.push(super::Pending {
            label: inside,
            addr: window.addr,
            state,
        });
        self.finish(
            label,
            items,
            Terminator::Branch {
                cc: super::guard::OUTSIDE,
                taken: outside.label,
                not_taken: inside,
                origin: Origin::Glue(window.addr),
            },
        );
        Ok(())
    }

    /// Ends the block `label` with a dynamic branch (`Next::Branch`) to
    /// both of its targets.
    fn finish_branch(&mut self, label: Label, items: Vec<Item>, branch: Next) -> Result<(), Stop> {
        let Next::Branch {
            cc,
            mut taken,
            mut not_taken,
            address,
            restore_flags,
        } = branch
        else {
            unreachable!("finish_branch takes a branch");
        };
        taken.state.dyn_branches += 1;
        not_taken.state.dyn_branches += 1;
        taken.state.active_dyn += 1;
        not_taken.state.active_dyn += 1;
        let prefix = || -> Vec<Item> {
            let popfd = Item::Instr(Instruction::with(Code::Popfd), Origin::Glue(address));
            if restore_flags {
                vec![popfd]
            } else {
                Vec::new()
            }
        };
        let t = self.edge(taken.state, taken.addr, prefix())?;
        let n = self.edge(not_taken.state, not_taken.addr, prefix())?;
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
        Ok(())
    }

    /// How a failure in `state` stops the run: inside an inlined call (or a
    /// clone), the run starts again with that callee kept as a call to the
    /// original code (unless it already was); otherwise specialization
    /// fails.
    fn failure_in(&self, state: &State, e: SpecializeError) -> Stop {
        self.failure(self.keep_candidate(state), e)
    }

    /// The function to keep as a call when specialization fails in
    /// `state`: the outermost inlined callee (in a whole program the
    /// innermost: its outermost callee is the C library's start-up, which
    /// holds the whole program), or the clone's function.
    fn keep_candidate(&self, state: &State) -> Option<u32> {
        let clone = (state.func != self.top).then_some(state.func);
        self.responsible_callee(state).or(clone)
    }

    /// The inlined callee answerable for the code specialized in `state`:
    /// the outermost, or in a whole program the innermost that is not a PC
    /// thunk (which is never kept: a kept thunk would hand the residual's
    /// own address to the code after it).
    pub(super) fn responsible_callee(&self, state: &State) -> Option<u32> {
        if !self.whole_program {
            return state.outermost_callee();
        }
        state
            .ctx
            .iter()
            .rev()
            .map(|f| f.callee)
            .find(|&c| wiper_x86::pc_thunk_register(self.binary, c).is_none())
    }

    /// Whether a failure in `state` would restart the run with a callee
    /// kept as a call (see [`Specializer::failure`]).
    pub(super) fn can_keep(&self, state: &State) -> bool {
        self.keep_candidate(state)
            .is_some_and(|callee| self.may_keep(callee))
    }

    /// Whether a restart may keep `callee` as a call: it is not kept yet
    /// and restarts are left (in the last run, places the specializer
    /// cannot follow leave for the original code where they can).
    fn may_keep(&self, callee: u32) -> bool {
        !self.kept.contains(&callee) && !self.last_run()
    }

    /// A failure stopping the run: a restart keeping `candidate`, if there
    /// is one not kept yet.
    fn failure(&self, candidate: Option<u32>, e: SpecializeError) -> Stop {
        match candidate {
            Some(callee) if self.may_keep(callee) => Stop::Keep(callee, e),
            _ => Stop::Fail(e),
        }
    }

    /// Residual dispatch for a jump table with a dynamic index: `push ecx;
    /// pushfd; mov ecx, target; cmp ecx, case; je ...` for each case,
    /// restoring the flags and `ecx` on every edge.
    pub(super) fn table(
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
        state.active_dyn += 1;
        for t in cases {
            let arrival = self.goto(state.clone(), *t)?;
            let edge = self.new_label();
            let mut edge_items = vec![
                Item::Instr(Instruction::with(Code::Popfd), glue),
                Item::Instr(Instruction::with1(Code::Pop_r32, ecx).expect("pop"), glue),
            ];
            edge_items.extend(arrival.glue);
            self.finish(edge, edge_items, Terminator::Jump(arrival.label, glue));
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
    pub(super) fn edge(
        &mut self,
        state: State,
        addr: u32,
        mut prefix: Vec<Item>,
    ) -> Result<Label, Stop> {
        let arrival = self.goto(state, addr)?;
        if arrival.glue.is_empty() && prefix.is_empty() {
            return Ok(arrival.label);
        }
        prefix.extend(arrival.glue);
        let l = self.new_label();
        self.finish(
            l,
            prefix,
            Terminator::Jump(arrival.label, Origin::Glue(addr)),
        );
        Ok(l)
    }
}
