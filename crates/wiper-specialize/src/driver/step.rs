//! One instruction: evaluating it over the store and deciding how
//! specialization leaves it (next address, dynamic branch, table, exit).

use iced_x86::{Code, ConditionCode, FlowControl, Instruction, Mnemonic};
use wiper_residual::{Item, Origin};
use wiper_sem::Reg;

use super::block::{Next, Target};
use super::bta::Decision;
use super::realign::{is_dynamic_allocation, is_realignment};
use super::residual::purge_copies;
use super::{Specializer, State, Stop, UNKNOWN_ARGS};
use crate::eval::{Evaluated, Evaluator, SExpr};
use crate::function::InstrInfo;
use crate::materialize::Emitter;
use crate::state::{Base, Known, SVal, Store};
use crate::SpecializeError;

impl Specializer<'_> {
    /// Evaluates an instruction; residual effects on registers and flags
    /// that are dead afterwards are dropped (their value may be anything).
    pub(super) fn evaluate(&mut self, store: &Store, info: &InstrInfo) -> (Store, Evaluated) {
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
        let (mut post, mut ev) = evaluator.run(&info.lifted, is_call);
        self.note_warnings(info.instruction.ip32(), &ev);
        ev.regs
            .retain(|(r, _)| info.live_regs_out & (1 << r.index()) != 0);
        // A dead register's entry-relative value is not computed into the
        // machine, and nothing could put it there later: forget it.
        for r in Reg::ALL {
            let dead = info.live_regs_out & (1 << r.index()) == 0;
            if let Some(Known {
                value: SVal::Addr(Base::Entry, _),
                synced: false,
            }) = post.reg(r)
            {
                if dead && r != Reg::Esp {
                    post.set_reg(r, None);
                }
            }
        }
        ev.flags
            .retain(|(f, _)| info.live_flags_out & (1 << f.index()) != 0);
        (post, ev)
    }

    /// The code address a known instruction-pointer value stands for.
    pub(super) fn code_addr(&self, v: SVal, at: u32) -> Result<u32, SpecializeError> {
        match v {
            SVal::Const(c) => Ok(c as u32),
            SVal::Addr(Base::Load, t) if self.pie => Ok(t),
            SVal::Addr(..) => Err(SpecializeError::Unsupported {
                address: at,
                reason: "a jump to a stack address".into(),
            }),
        }
    }

    /// Specializes one instruction in `state`, appending its residual code
    /// to `items`; how specialization goes on.
    pub(super) fn step(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<Next, Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        let next = ins.next_ip32();
        tracing::trace!(
            depth = state.ctx.len(),
            items = items.len(),
            "{addr:#x} {ins}"
        );
        if let Some(barrier) = info.lifted.barrier() {
            // A system call (`int 0x80`, `call DWORD PTR gs:0x10`) or a trap.
            self.barrier(state, info, items)?;
            let f = self.function(state.func)?;
            // `ud2`, `int3`, `hlt`: the process stops there.
            let stops = barrier == wiper_sem::Barrier::Halt;
            return Ok(if !stops && f.instrs.contains_key(&next) {
                Next::Continue(next)
            } else {
                Next::Exit
            });
        }
        if matches!(
            ins.flow_control(),
            FlowControl::Call | FlowControl::IndirectCall
        ) {
            return self.call(state, info, items);
        }
        if is_realignment(&ins) {
            if !self.realign_statically(state, info) {
                self.realign(state, info, items)?;
            }
            return Ok(Next::Continue(next));
        }
        let decision = self.decide(state, info);
        if decision == Decision::EmitDynamic {
            #[cfg(debug_assertions)]
            let (online, start) = (self.online_outcome(state, info), items.len());
            self.emit_dynamic(state, info, items);
            #[cfg(debug_assertions)]
            if let Ok((store, emitted)) = online {
                assert_eq!(
                    (&store, emitted.as_slice()),
                    (&state.store, &items[start..]),
                    "the BTA's fast path and evaluation disagree at {addr:#x}"
                );
            }
            return Ok(Next::Continue(next));
        }
        if let Some(r) = info.free_narrow_write {
            // Only the bits this instruction writes are ever read: the
            // register's old value is irrelevant, so take it as 0 (also
            // when it holds an address: gcc reuses a pointer register for a
            // byte counter with `mov bl, 0`, and the address's upper bits
            // would otherwise make the register, and the frame, escape).
            if !state
                .store
                .reg(r)
                .is_some_and(|k| matches!(k.value, SVal::Const(_)))
            {
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
        if let Some(k) = ev.esp_entry {
            self.leave_realigned(state, info, post, k, items)?;
            return Ok(Next::Continue(next));
        }
        if ev.esp_lost && is_dynamic_allocation(&ins) {
            self.realign(state, info, items)?;
            return Ok(Next::Continue(next));
        }
        if ev.esp_lost && !self.can_keep(state) && self.can_leave_at(addr) {
            // The original runs on from here, with its own stack pointer.
            self.leave_here(state, addr, items)?;
            return Ok(Next::Exit);
        }
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
            return self.ret(state, &ins, post, &ev, items);
        }
        if info.lifted.is_rep_loop()
            && (matches!(ev.eip, Some(SExpr::Dyn(_)))
                || ev.has_residual()
                || ev.needs_fallback
                || super::rep::too_long_to_evaluate(&state.store, &ins))
        {
            // A `rep` string instruction with a dynamic count, or one of
            // whose steps leaves residual code, or a long one, runs as it
            // is, whole: the machine has no instruction for one step.
            self.pass_rep(state, info, items)?;
            return Ok(Next::Continue(next));
        }
        let guarded = state.guarded.is_some_and(|w| w.addr == addr);
        if !guarded && ev.has_residual() {
            if let Some(window) = self.store_window(state, info, &ev, items) {
                self.guard_store(state, info, window, items)?;
                return Ok(Next::Guard(window));
            }
        }
        self.note_outcome(decision, &state.store, &ev);
        self.apply(state, info, post, &ev, items)?;
        state.guarded = None;
        match ev.eip {
            None => Ok(Next::Continue(next)),
            Some(SExpr::Known(v)) => match self.code_addr(v, addr)? {
                // `jmp 0`: a tail call to an undefined weak function.
                0 if ins.code() == Code::Jmp_rel32_32 || ins.code() == Code::Jmp_rel8_32 => {
                    self.fault_at_zero(state, addr, Code::Jmp_rel32_32, items)?;
                    Ok(Next::Exit)
                }
                target => Ok(Next::Continue(target)),
            },
            Some(SExpr::Dyn(_)) => self.dynamic_jump(state, info, &ev, items),
        }
    }

    /// Leaves the evaluated instruction's effects: its residual code (Emit,
    /// Reduce or the fallback) when it has any, else the store after it.
    fn apply(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        post: Store,
        ev: &Evaluated,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        if ev.has_residual() || ev.needs_fallback {
            let start = items.len();
            self.emit_residual(state, info, items)?;
            purge_copies(&mut state.store, info, ev);
            self.update_copies(state, &items[start..]);
        } else {
            state.store = post;
            purge_copies(&mut state.store, info, ev);
        }
        Ok(())
    }

    /// What evaluating `info` in `state` would leave (store and residual
    /// code), without changing `state` or the counts: the judge of the
    /// BTA's fast path in debug builds.
    #[cfg(debug_assertions)]
    fn online_outcome(
        &mut self,
        state: &State,
        info: &InstrInfo,
    ) -> Result<(Store, Vec<Item>), Stop> {
        let saved = self.stats.clone();
        let mut state = state.clone();
        let mut items = Vec::new();
        let (post, ev) = self.evaluate(&state.store, info);
        let applied = self.apply(&mut state, info, post, &ev, &mut items);
        self.stats = saved;
        applied.map(|()| (state.store, items))
    }

    /// A return: from an inlined call when the return address is known,
    /// else the function's exit.
    fn ret(
        &mut self,
        state: &mut State,
        ins: &Instruction,
        post: Store,
        ev: &Evaluated,
        items: &mut Vec<Item>,
    ) -> Result<Next, Stop> {
        let addr = ins.ip32();
        if let Some(SExpr::Known(v)) = ev.eip {
            // Return from an inlined call.
            let target = self.code_addr(v, addr)?;
            state.store = post;
            if let Some(fr) = state.ctx.pop() {
                state.func = fr.caller;
                state.active_dyn = fr.active_dyn_at_entry;
                state.times = state.caller_times.pop().flatten();
            }
            return Ok(Next::Continue(target));
        }
        if !state.ctx.is_empty() {
            return Err(Stop::Fail(SpecializeError::Unsupported {
                address: addr,
                reason: "the return address of an inlined call became dynamic".into(),
            }));
        }
        self.check_not_realigned(state, addr)?;
        self.exit(state, ins, items)?;
        Ok(Next::Exit)
    }

    /// A jump whose target is dynamic: a conditional branch (both sides
    /// specialized), a jump through a table (a compare chain), an indirect
    /// tail call; anything else is unsupported.
    fn dynamic_jump(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        ev: &Evaluated,
        items: &mut Vec<Item>,
    ) -> Result<Next, Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        let next = ins.next_ip32();
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
                self.materialize_inputs(&mut state.store, info, ev, items)?;
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
        if ins.mnemonic() == Mnemonic::Jecxz {
            return Ok(self.dynamic_jecxz(state, addr, ins, items));
        }
        if let Some(next) = self.inlined_tail_call(state, &ins, items)? {
            return Ok(next);
        }
        if !is_jcc && (self.whole_program || !self.can_keep(state)) && self.can_leave_at(addr) {
            // A computed jump (into an unrolled loop, glibc's `jmp eax`
            // after a PC thunk): the original makes it and runs on. (In a
            // whole program that beats keeping a callee: the path that
            // lost track is often an error path.)
            self.leave_here(state, addr, items)?;
            return Ok(Next::Exit);
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
            taken: Box::new(Target {
                addr: ins.near_branch32(),
                state: state.clone(),
            }),
            not_taken: Box::new(Target {
                addr: next,
                state: state.clone(),
            }),
            address: addr,
            restore_flags: false,
        })
    }

    /// `jecxz` on a dynamic `ecx`: `pushfd; test ecx,ecx` and a `je`, each
    /// side starting with `popfd`, so the flags the machine holds are
    /// what they were (`jecxz` reads and writes none).
    fn dynamic_jecxz(
        &mut self,
        state: &mut State,
        addr: u32,
        ins: Instruction,
        items: &mut Vec<Item>,
    ) -> Next {
        let esp = state.store.esp();
        let mut em = Emitter::new(items, addr);
        em.register(&mut state.store, Reg::Ecx);
        em.lower_real_esp(&mut state.store, esp);
        self.stats.materialized += em.materialized;
        let glue = Origin::Glue(addr);
        let ecx = iced_x86::Register::ECX;
        items.push(Item::Instr(Instruction::with(Code::Pushfd), glue));
        let test = Instruction::with2(Code::Test_rm32_r32, ecx, ecx).expect("test");
        items.push(Item::Instr(test, Origin::Reduced(addr)));
        Next::Branch {
            cc: ConditionCode::e,
            taken: Box::new(Target {
                addr: ins.near_branch32(),
                state: state.clone(),
            }),
            not_taken: Box::new(Target {
                addr: ins.next_ip32(),
                state: state.clone(),
            }),
            address: addr,
            restore_flags: true,
        }
    }
}

/// The instruction's mnemonic, for messages.
fn mnemonic_text(ins: &Instruction) -> String {
    format!("{:?}", ins.mnemonic()).to_lowercase()
}
