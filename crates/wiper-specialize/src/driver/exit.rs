//! The function exit, barriers (system calls) and syncing everything into
//! the machine before code the specializer does not see.

use std::collections::HashSet;

use iced_x86::Instruction;
use wiper_residual::{Item, Origin};
use wiper_sem::{Flag, Reg};
use wiper_x86::abi;

use super::{Specializer, State, Stop};
use crate::function::{InstrInfo, ALL_FLAGS};
use crate::materialize::Emitter;
use crate::state::{Base, Byte, Known, Region, SVal, Store};

impl Specializer<'_> {
    /// Function exit: what the caller can observe goes into the machine,
    /// then the original `ret`. `edx` only when some caller of the
    /// function may read it ([`CallerAnalysis::edx_at_return`]): the
    /// residual is reached only where the original function was.
    pub(super) fn exit(
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
        // The i386 ABI has the direction flag clear at every return: a
        // known `df` (memmove's `cld` after its backward `rep movsd`) is
        // written before `ret`, below the return address.
        em.flags(&mut state.store, 1 << Flag::Df.index());
        em.emit(*ins, Origin::Original(ins.ip32()));
        self.stats.materialized += em.materialized;
        Ok(())
    }

    /// A system call or other barrier: everything into the machine first;
    /// afterwards `eax` and the flags are dynamic, and memory the kernel
    /// may write is forgotten: the ranges the call's known number and
    /// arguments say (`wiper_x86::syscalls`), else everything a callee
    /// could reach.
    pub(super) fn barrier(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let ins = info.instruction;
        if info.lifted.barrier() == Some(wiper_sem::Barrier::SegmentBase) {
            // `mov gs, edx`: what was known relative to the old base is not
            // the new one's.
            self.sync_all(state, ins.ip32(), 0, items)?;
            items.push(Item::Instr(ins, Origin::Original(ins.ip32())));
            let base = match ins.op0_register() {
                iced_x86::Register::FS => Base::Fs,
                _ => Base::Gs,
            };
            state.store.mem.retain(|(r, _), _| r != Region::Of(base));
            if base == Base::Gs {
                // The selector is the one the C library just installed
                // (an assumption: docs/extraction.md).
                state.store.gs_base = state.store.tls_descriptor;
            }
            return Ok(());
        }
        let syscall = info.lifted.barrier() == Some(wiper_sem::Barrier::Syscall);
        let written = syscall.then(|| syscall_writes(&state.store)).flatten();
        let descriptor = syscall
            .then(|| installed_descriptor(&state.store))
            .flatten();
        self.sync_all(state, ins.ip32(), 0, items)?;
        items.push(Item::Instr(ins, Origin::Original(ins.ip32())));
        state.store.set_reg(Reg::Eax, None);
        // The vsyscall entry (`call DWORD PTR gs:0x10`) is code too: its
        // flags are not the kernel's promise, but for the direction flag,
        // which it leaves clear like any function (the ABI) and the kernel
        // leaves as it was.
        let df = state.store.flags[Flag::Df.index()];
        state.store.flags = [None; 7];
        state.store.flags[Flag::Df.index()] = df;
        if descriptor.is_some() {
            state.store.tls_descriptor = descriptor;
        }
        match written {
            Some(ranges) => {
                for (region, start, len) in ranges {
                    state
                        .store
                        .mem
                        .retain(|(r, off), _| r != region || off.wrapping_sub(start) >= len);
                }
            }
            None => {
                let frame = state.store.escaped;
                self.forget_reachable(state, frame);
            }
        }
        Ok(())
    }

    /// Materializes every known register, flag and memory byte and moves
    /// the machine esp to the static one. Code we do not see runs next: if
    /// it can be handed a stack address (in `eax`/`ecx`/`edx`, the
    /// argument area or global memory), the frame escapes.
    pub(super) fn sync_all(
        &mut self,
        state: &mut State,
        addr: u32,
        args: u32,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        state.store.copies.clear();
        let esp = state.store.esp();
        if state.store.holds_frame_address(&abi::CALLER_SAVED)
            || state.store.mem.iter().any(|((region, off), k)| {
                matches!(k.value, Byte::Part(b, ..) if b.is_frame())
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
    /// change: all but the static buffers, and the frame (with the entry
    /// frame of a realigned stack) when it escaped (keeping the return
    /// addresses of inlined calls and saved entry-frame addresses).
    pub(super) fn forget_reachable(&mut self, state: &mut State, frame: bool) {
        if state.store.mem.has_image() {
            tracing::trace!("the initial image is forgotten");
        }
        let slots = ret_slots(state);
        let buffers = &self.buffer_ranges;
        state.store.mem.retain(|(region, off), k| {
            // An entry-relative address saved in the frame (`ebp`, or the
            // `ecx` gcc's realigning `main` saves) is a saved register,
            // which no callee writes.
            let saved_entry = matches!(k.value, Byte::Part(Base::Entry, ..));
            match region {
                Region::Of(Base::Stack) => !frame || saved_entry || slots.contains(&off),
                Region::Of(Base::Entry) => !frame || saved_entry,
                r => buffers.iter().any(|b| b.contains(r, off)),
            }
        });
    }
}

/// The stack bytes holding the return addresses of inlined calls, and the
/// frame pointers saved right below them.
pub(super) fn ret_slots(state: &State) -> HashSet<u32> {
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
                    value: Byte::Part(b, _, _),
                    ..
                }) if b.is_frame()
            )
        });
        if holds_frame_pointer {
            slots.extend((0..4).map(|i| saved.wrapping_add(i)));
        }
    }
    slots
}

/// The memory a system call may write, as `(region, first offset,
/// length)` ranges, when the store knows its number and the arguments
/// that say where (`wiper_x86::syscalls::memory_written`); `None` when it
/// may write anything.
fn syscall_writes(store: &Store) -> Option<Vec<(Region, u32, u32)>> {
    use wiper_x86::syscalls::{memory_written, Size, ARGS};
    let known = |r: Reg| store.reg(r).map(|k| k.value);
    let constant = |r: Reg| match known(r) {
        Some(SVal::Const(c)) => Some(c as u32),
        _ => None,
    };
    let number = constant(Reg::Eax)?;
    let mut ranges = Vec::new();
    for w in memory_written(number, ARGS.map(constant))? {
        let pointer = known(ARGS[w.pointer])?;
        if pointer == SVal::Const(0) {
            continue;
        }
        let len = match w.size {
            Size::Fixed(n) => n,
            Size::Arg(k) => constant(ARGS[k])?,
            Size::ArgTimes(k, n) => constant(ARGS[k])?.checked_mul(n)?,
        };
        let (region, start) = Region::of(pointer);
        ranges.push((region, start, len));
    }
    Some(ranges)
}

/// The base address of the segment descriptor a system call installs:
/// `set_thread_area(u_info)` (243) and `modify_ldt(1 or 0x11, ptr, size)`
/// (123) take a `struct user_desc` whose second word is the base; when
/// the store knows it.
fn installed_descriptor(store: &Store) -> Option<SVal> {
    let known = |r: Reg| store.reg(r).map(|k| k.value);
    let desc = match known(Reg::Eax)? {
        SVal::Const(243) => known(Reg::Ebx)?,
        SVal::Const(123) if matches!(known(Reg::Ebx)?, SVal::Const(1 | 0x11)) => known(Reg::Ecx)?,
        _ => return None,
    };
    let (region, off) = Region::of(desc);
    store.mem.word((region, off.wrapping_add(4)))
}
