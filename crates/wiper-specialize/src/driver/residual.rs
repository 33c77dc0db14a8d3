//! The residual part of an instruction: Emit (the original), Reduce
//! (synthesized, proved code), the fallback (inputs materialized, then the
//! original), and the copy facts kept true across what was emitted.
//!
//! Reduce also knows one fact about the residual code before the
//! instruction: right after a `cdq`, `edx` is the sign of `eax`, so the goal
//! of a following `idiv` divides `eax` sign-extended (which `wiper-synth`
//! turns into a multiplication by a magic number).

use std::collections::HashMap;

use iced_x86::{Code, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess};
use wiper_qfbv::ExprId;
use wiper_residual::{Item, Origin};
use wiper_sem::{loc_var, Flag, Loc, Reg};
use wiper_synth::{Goal, Synthesized};

use super::{reach, Specializer, State, Stop};
use crate::eval::{base_var_name, frame_vars, Evaluated};
use crate::function::{InstrInfo, ALL_FLAGS};
use crate::materialize::Emitter;
use crate::state::{Base, Known, Region, SVal, Store};
use crate::SpecializeError;

impl Specializer<'_> {
    /// Keeps the copy facts true after `emitted` ran: facts on registers or
    /// slots it writes go; a lone `mov [esp+d],r32` or `mov r32,[esp+d]`
    /// makes a new one.
    pub(super) fn update_copies(&mut self, state: &mut State, emitted: &[Item]) {
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
    pub(super) fn emit_residual(
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
            // The frame only when the pointers may point into it.
            let addresses = first
                .dyn_reads
                .iter()
                .chain(first.dyn_writes.iter().map(|w| &w.0));
            let frame = state.store.escaped
                || addresses
                    .into_iter()
                    .any(|&a| self.frame_based(&state.store, a));
            em.all_memory(&mut state.store, |r, _| {
                frame || !matches!(r, Region::Of(b) if b.is_frame())
            })?;
        }
        let (post, ev) = self.evaluate(&state.store, info);
        self.stats.materialized += em.materialized;
        items.append(&mut em_items);
        // The residual block as it is when the instruction starts.
        let start = items.len();
        // An opaque instruction has no formulas to reduce: with a known
        // input the machine does not hold, it goes to the fallback.
        let mut fallback = ev.needs_fallback || (ev.opaque && ev.read_unsynced);
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
            let offered = self.reduce(state, info, &post, &ev, items);
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
            self.forget_written(state, &ev.dyn_writes, &items[..start]);
        }
        if ev.escapes {
            state.store.escaped = true;
        }
        Ok(())
    }

    /// Whether the dynamic address `a` is computed from a frame address
    /// (the stack or entry base, the machine's `esp`, or a register of
    /// `store` holding a frame address).
    fn frame_based(&mut self, store: &Store, a: ExprId) -> bool {
        let vars = self.pool.vars(a);
        let esp = loc_var(&mut self.pool, Loc::Reg(Reg::Esp));
        let esp = self.pool.as_var(esp);
        esp.is_some_and(|v| vars.contains(&v))
            || frame_vars(&mut self.pool, store)
                .iter()
                .any(|f| vars.contains(&f.0))
    }

    /// Forgets the known bytes that the stores through unknown pointers
    /// `writes` (address, width) may reach. A store at the frame plus a
    /// constant plus registers the residual block `before` bounds reaches
    /// only those frame bytes ([`reach::frame_reach`]), and a guarded one
    /// only its window (`guard`); any other store
    /// through a frame address reaches the whole frame, and a store through
    /// any other pointer the frame only when a frame address escaped.
    fn forget_written(&mut self, state: &mut State, writes: &[(ExprId, u32)], before: &[Item]) {
        let stack_var = self.pool.lookup_var(base_var_name(Base::Stack));
        let mut frame = state.store.escaped;
        let mut elsewhere = false;
        let mut ranges = Vec::new();
        for &(a, width) in writes {
            let on_frame = self.frame_based(&state.store, a);
            let reach = stack_var
                .and_then(|s| reach::frame_reach(&self.pool, a, s, before, width))
                .or_else(|| state.guarded.map(|w| (w.lo, w.hi)));
            match (on_frame, reach) {
                (true, Some(r)) => ranges.push(r),
                (true, None) => {
                    frame = true;
                    elsewhere = true;
                }
                (false, _) => elsewhere = true,
            }
        }
        if elsewhere {
            self.forget_reachable(state, frame);
        }
        // (The return addresses of inlined calls stay, as in
        // `forget_reachable`.)
        let slots = super::exit::ret_slots(state);
        for (lo, hi) in ranges {
            state.store.mem.retain(|(region, off), _| {
                region != Region::Of(Base::Stack)
                    || slots.contains(&off)
                    || !(lo..hi).contains(&i64::from(off as i32))
            });
        }
    }

    /// Emits an instruction whose effect the specializer does not follow
    /// (a `rep` string instruction with a dynamic count) as it is: all
    /// known memory and the registers and flags it reads go into the
    /// machine first; afterwards what it writes is dynamic, and a store
    /// forgets the memory a store through an unknown pointer may reach.
    pub(super) fn pass_through(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let frame = self.emit_whole(state, info, items)?;
        forget_written_registers(&mut state.store, info);
        if info.writes.contains(&Loc::Mem) {
            self.forget_reachable(state, frame);
        }
        Ok(())
    }

    /// Emits the original instruction `info` after putting all known memory
    /// and the registers and flags it reads into the machine; whether it
    /// may reach the frame (a register it reads holds a frame address, or
    /// the frame escaped).
    pub(super) fn emit_whole(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<bool, Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        let mut frame = state.store.escaped;
        let mut em = Emitter::new(items, addr);
        em.all_memory(&mut state.store, |_, _| true)?;
        for l in &info.reads {
            if let Loc::Reg(r) = *l {
                frame |= state.store.holds_frame_address(&[r]);
                em.register(&mut state.store, r);
            }
        }
        em.flags(&mut state.store, info.flags_read());
        self.stats.materialized += em.materialized;
        items.push(Item::Instr(ins, Origin::Original(addr)));
        state.store.copies.clear();
        Ok(frame)
    }

    /// Puts every known register, flag and memory byte the instruction
    /// reads into the machine, so the original instruction can run.
    pub(super) fn materialize_inputs(
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
    pub(super) fn synced_after(&self, mut s: Store, info: &InstrInfo, ev: &Evaluated) -> Store {
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
    pub(super) fn reduce(
        &mut self,
        state: &State,
        info: &InstrInfo,
        post: &Store,
        ev: &Evaluated,
        items: &[Item],
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
        if edx_holds_sign_of_eax(items) {
            let eax = loc_var(&mut self.pool, Loc::Reg(Reg::Eax));
            let edx = loc_var(&mut self.pool, Loc::Reg(Reg::Edx));
            let k = self.pool.bv(31, 32);
            let sign = self.pool.ashr(eax, k);
            map.insert(self.pool.as_var(edx)?, sign);
        }
        // Bases the synthesized code could not compute.
        let unreachable_bases: Vec<_> = [Base::Load, Base::Entry, Base::Fs, Base::Gs]
            .into_iter()
            .filter_map(|b| self.pool.lookup_var(base_var_name(b)))
            .collect();
        let mut effects: Vec<(Loc, ExprId)> = Vec::new();
        let regs = ev.regs.iter().map(|(r, e)| (Loc::Reg(*r), *e));
        let flags = ev.flags.iter().map(|(f, e)| (Loc::Flag(*f), *e));
        let mem = ev.mem.iter().map(|e| (Loc::Mem, *e));
        for (l, e) in regs.chain(flags).chain(mem) {
            let e = self.pool.subst(e, &map).ok()?;
            let vars = self.pool.vars(e);
            if unreachable_bases.iter().any(|b| vars.contains(b)) {
                return None;
            }
            effects.push((l, e));
        }
        // Live: dynamic registers read later, and those holding an address
        // the residual cannot compute again (the entry frame's, while the
        // stack is realigned or allocated), whose machine copy is the only one.
        let mut live_regs = 1u8 << Reg::Esp.index();
        for r in Reg::ALL {
            let live_out = info.live_regs_out & (1 << r.index()) != 0;
            let irreplaceable = matches!(
                state.store.reg(r),
                Some(Known {
                    value: SVal::Addr(Base::Entry, _),
                    synced: true,
                })
            );
            if live_out && (post.reg(r).is_none() || irreplaceable) {
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
}

/// Whether the residual block `items` (so far) ends in a `cdq` followed
/// only by instructions that write neither `eax` nor `edx` (nor transfer
/// control): then `edx` holds the sign of `eax` at its end.
fn edx_holds_sign_of_eax(items: &[Item]) -> bool {
    let mut factory = InstructionInfoFactory::new();
    for item in items.iter().rev() {
        let Item::Instr(ins, _) = item else {
            return false;
        };
        if ins.mnemonic() == Mnemonic::Cdq {
            return true;
        }
        if ins.flow_control() != FlowControl::Next {
            return false;
        }
        let writes_eax_or_edx = factory.info(ins).used_registers().iter().any(|u| {
            matches!(Reg::from_iced(u.register()), Some(Reg::Eax | Reg::Edx))
                && !matches!(
                    u.access(),
                    OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess
                )
        });
        if writes_eax_or_edx {
            return false;
        }
    }
    false
}

/// Makes every register (but `esp`) and flag `info` writes dynamic.
pub(super) fn forget_written_registers(store: &mut Store, info: &InstrInfo) {
    for w in &info.writes {
        match *w {
            Loc::Reg(r) if r != Reg::Esp => store.set_reg(r, None),
            Loc::Flag(f) => store.flags[f.index()] = None,
            _ => {}
        }
    }
}

/// Drops the copy facts on whatever the instruction writes (registers, known
/// stack slots; all of them for a store through an unknown pointer).
pub(super) fn purge_copies(store: &mut Store, info: &InstrInfo, ev: &Evaluated) {
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

pub(super) fn same_instruction(a: &Instruction, b: &Instruction) -> bool {
    let mut a = *a;
    a.set_ip(b.ip());
    a.set_len(b.len());
    a == *b
}
