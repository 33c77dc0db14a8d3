//! Guarded stores: a store into the frame at an index the specializer does
//! not know keeps the frame's known bytes when the residual checks, before
//! it, that the address falls where nothing is known.
//!
//! `buf[--i] = digit` with `i` generalized writes the frame at `buf + i`.
//! Without a bound on `i` the store may reach any frame byte, so every
//! known byte of the frame would be forgotten: the caller's static locals
//! (a format pointer walking a static format string) become dynamic and
//! the rest of the function is residual. Instead, the bytes around `buf`
//! that the specializer does not know form a *window*: the longest run of
//! unknown frame bytes holding the address at index 0, above the stack
//! pointer. The residual computes the address and jumps into the original
//! code at the store when it falls outside the window (after writing
//! everything known into the machine, as `leave` does); on the other side
//! the store reaches only unknown bytes, which the machine holds anyway,
//! and nothing is forgotten.

use iced_x86::{Code, ConditionCode, Instruction, MemoryOperand, OpKind, Register};
use wiper_qfbv::ExprId;
use wiper_residual::{Item, Origin};
use wiper_sem::{loc_var, Loc, Reg};

use super::{reach, Specializer, State, Stop};
use crate::eval::{base_var_name, Evaluated};
use crate::function::InstrInfo;
use crate::materialize::Emitter;
use crate::state::{Base, Region};

/// The frame bytes a guarded store may write: stack offsets `lo..hi`
/// (from [`Base::Stack`]) where nothing is known, for the store at `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Window {
    /// The store's address.
    pub(super) addr: u32,
    /// The lowest offset.
    pub(super) lo: i64,
    /// Past the highest offset.
    pub(super) hi: i64,
}

/// The longest window looked for (bytes each way from the address at
/// index 0).
const MOST_WINDOW: i64 = 4096;

impl Specializer<'_> {
    /// The window of the store `info` (evaluated as `ev` in `state`) if it
    /// is a store at the frame plus a constant plus dynamic terms whose
    /// reach the residual block `before` does not bound, and a guard can
    /// be placed before it.
    pub(super) fn store_window(
        &mut self,
        state: &State,
        info: &InstrInfo,
        ev: &Evaluated,
        before: &[Item],
    ) -> Option<Window> {
        let ins = info.instruction;
        let [(a, width)] = ev.dyn_writes[..] else {
            return None;
        };
        if state.store.escaped
            || !ev.dyn_reads.is_empty()
            || ins.op0_kind() != OpKind::Memory
            || ins.segment_prefix() != Register::None
            || info.flags_read() != 0
            || info.live_flags_out != 0
            || ins.memory_index() == Register::ESP
        {
            return None;
        }
        let stack = self.pool.lookup_var(base_var_name(Base::Stack))?;
        if reach::frame_reach(&self.pool, a, stack, before, width).is_some() {
            return None; // bounded already: `forget_written` narrows
        }
        let at = self.index_zero_offset(state, a)?;
        if !forgetting_loses_something(state) {
            return None; // a guard would cost code for nothing
        }
        let (lo, hi) = unknown_run(state, i64::from(at as i32))?;
        if hi - lo < i64::from(width) || ins.ip32().wrapping_sub(self.top) < 5 {
            return None;
        }
        if self.original_may_reenter() {
            return None;
        }
        Some(Window {
            addr: ins.ip32(),
            lo,
            hi,
        })
    }

    /// The stack offset of the address at index 0 of a store at `a`, when
    /// `a` is the frame plus a constant plus dynamic terms: one term is the
    /// stack base or a register holding a frame address (then its offset
    /// hint), with scale 1; the others are dynamic values that are neither
    /// (the index). `None` for any other shape.
    fn index_zero_offset(&mut self, state: &State, a: ExprId) -> Option<u32> {
        let (terms, constant) = crate::linear::terms(&self.pool, a)?;
        let stack = self.pool.lookup_var(base_var_name(Base::Stack))?;
        let esp = loc_var(&mut self.pool, Loc::Reg(Reg::Esp));
        let esp = self.pool.as_var(esp);
        let entry = self.pool.lookup_var(base_var_name(Base::Entry));
        // (offset hint, whether it is the stack base itself)
        let mut base: Option<(u32, bool)> = None;
        let mut others = 0;
        for &(v, scale) in &terms {
            let marked = match Loc::of_var(&self.pool, v) {
                Some(Loc::Reg(r)) => state.store.frame_reg(r),
                _ => None,
            };
            let at = if v == stack {
                Some((0, true))
            } else {
                marked.map(|k| (k, false))
            };
            match at {
                Some(b) if scale == 1 && base.is_none() => base = Some(b),
                Some(_) => return None,
                None if Some(v) == esp || Some(v) == entry => return None,
                None => others += 1,
            }
        }
        let (k, stack_base) = base?;
        if stack_base && others == 0 {
            return None; // a constant frame address
        }
        Some(k.wrapping_add(constant))
    }

    /// Emits the check that the store `info` writes inside `window` (`lea
    /// r, [address + k]; sub r, esp; cmp r, span` in a free register, else
    /// in `eax` saved around it, with `ja` to the original code as the
    /// block's branch, `Next::Guard`).
    pub(super) fn guard_store(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        window: Window,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        let mut em = Emitter::new(items, addr);
        for r in [ins.memory_base(), ins.memory_index()] {
            if let Some(r) = Reg::from_iced(r) {
                em.register(&mut state.store, r);
            }
        }
        self.stats.materialized += em.materialized;
        // The machine flags are overwritten: known ones are no longer in
        // the machine (dynamic ones are dead: `store_window`).
        for f in state.store.flags.iter_mut().flatten() {
            f.synced = false;
        }
        let width = i64::from(ins.memory_size().size() as u32);
        let span = (window.hi - width - window.lo) as u32;
        // A dynamic register dead after the store holds the offset; else
        // `eax`, saved around the check (the machine esp is then 4 lower).
        let scratch = dead_register(state, info);
        let saved = scratch.is_none();
        let r = scratch.unwrap_or(Reg::Eax);
        if !saved {
            state.store.copies.retain(|c| c.1 != r);
            state.store.rels.forget(crate::relations::RelLoc::Reg(r));
            // A known value stays known; the machine no longer holds it.
            if let Some(k) = state.store.regs[r.index()].as_mut() {
                k.synced = false;
            }
        }
        let below = if saved { 4 } else { 0 };
        // r = address + k - esp = offset - lo, the machine esp being stack
        // + real_esp - below: k = real_esp - below - lo.
        let real_esp = i64::from(state.store.real_esp as i32);
        let esp_based = if ins.memory_base() == Register::ESP {
            below
        } else {
            0
        };
        let k = real_esp - below - window.lo;
        let displacement = i64::from(ins.memory_displacement32() as i32) + esp_based + k;
        let operand = MemoryOperand::with_base_index_scale_displ_size(
            ins.memory_base(),
            ins.memory_index(),
            ins.memory_index_scale(),
            displacement,
            4,
        );
        let reg = r.to_iced();
        let mut check = vec![
            Instruction::with2(Code::Lea_r32_m, reg, operand),
            Instruction::with2(Code::Sub_r32_rm32, reg, Register::ESP),
            Instruction::with2(Code::Cmp_rm32_imm32, reg, span),
        ];
        if saved {
            check.insert(0, Instruction::with1(Code::Push_r32, reg));
            check.push(Instruction::with1(Code::Pop_r32, reg));
        }
        let glue = Origin::Glue(addr);
        for i in check {
            items.push(Item::Instr(i.expect("the guard is encodable"), glue));
        }
        Ok(())
    }
}

/// A register other than `esp` that the store `info` does not read and
/// that is dead after it: free for the guard's check. A dynamic one
/// first; else one whose value is known (it stays known, and the machine
/// need not hold it: nothing reads it before writing it).
fn dead_register(state: &State, info: &InstrInfo) -> Option<Reg> {
    let free = |r: Reg| {
        r != Reg::Esp
            && info.live_regs_out & (1 << r.index()) == 0
            && !info.reads.contains(&Loc::Reg(r))
    };
    let dynamic = Reg::ALL
        .into_iter()
        .find(|&r| free(r) && state.store.reg(r).is_none());
    dynamic.or_else(|| Reg::ALL.into_iter().find(|&r| free(r)))
}

/// Whether forgetting the frame (`forget_reachable`) would forget a known
/// byte: one that is not the return address of an inlined call or a frame
/// pointer saved below it, which stay known anyway.
fn forgetting_loses_something(state: &State) -> bool {
    let slots = super::exit::ret_slots(state);
    state
        .store
        .mem
        .iter()
        .any(|((region, off), _)| region == Region::Of(Base::Stack) && !slots.contains(&off))
}

/// The longest run of stack offsets around `at` where the store knows no
/// byte, at or above the static stack pointer (at most [`MOST_WINDOW`]
/// each way); `None` when the byte at `at` is known.
fn unknown_run(state: &State, at: i64) -> Option<(i64, i64)> {
    let store = &state.store;
    let known = |off: i64| {
        store
            .mem
            .get((Region::Of(Base::Stack), off as i32 as u32))
            .is_some()
    };
    let floor = i64::from(store.esp() as i32);
    if known(at) || at < floor {
        return None;
    }
    let mut lo = at;
    while lo > floor && at - lo < MOST_WINDOW && !known(lo - 1) {
        lo -= 1;
    }
    let mut hi = at + 1;
    while hi - at < MOST_WINDOW && !known(hi) {
        hi += 1;
    }
    Some((lo, hi))
}

/// The branch the guard ends its block with: taken when the address lies
/// outside the window.
pub(super) const OUTSIDE: ConditionCode = ConditionCode::a;
