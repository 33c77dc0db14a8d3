//! Stack realignment: `and esp, -16` (gcc's `main`) and its undoing
//! (`lea esp,[ecx-0x4]`, `lea esp,[ebp-0xc]`); and, the same way, a
//! dynamic stack allocation (`sub esp, eax`: alloca, a variable-length
//! array) and its undoing (`mov esp, ebx`, `lea esp,[ebp-0xc]`).
//!
//! The realigned stack pointer has an unknown distance from the entry one,
//! so it becomes a fresh base: what was relative to the entry stack pointer
//! (the registers that hold entry-frame addresses, the entry frame's known
//! bytes) moves to [`Base::Entry`], and the realigned stack pointer is the
//! new [`Base::Stack`], so accesses to the new frame are tracked exactly.
//! Entry-relative values cannot be rebuilt from `esp`: everything goes into
//! the machine before the realignment, and the evaluator makes every
//! instruction that computes or stores one emit it (eval.rs). The
//! instruction that points `esp` back into the entry frame undoes it: the
//! realigned frame is dropped and the entry frame is the frame again.

use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use wiper_residual::{Item, Origin};
use wiper_sem::Reg;

use super::{Specializer, State, Stop};
use crate::function::InstrInfo;
use crate::state::{Base, Byte, Known, Region, SVal, Store};
use crate::SpecializeError;

/// Whether `ins` realigns the stack: `and esp, -2^n` with `n >= 2`.
pub(super) fn is_realignment(ins: &Instruction) -> bool {
    let imm = match ins.op1_kind() {
        OpKind::Immediate8to32 | OpKind::Immediate32 => ins.immediate(1) as u32,
        _ => return false,
    };
    let alignment = imm.wrapping_neg();
    ins.mnemonic() == Mnemonic::And
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register() == Register::ESP
        && alignment >= 4
        && alignment.is_power_of_two()
}

/// Whether `ins` allocates stack space of a run-time size: `sub esp, r`
/// (alloca, a variable-length array), which leaves `esp` at an unknown
/// distance below the frame, as a realignment does.
pub(super) fn is_dynamic_allocation(ins: &Instruction) -> bool {
    ins.mnemonic() == Mnemonic::Sub
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register() == Register::ESP
        && ins.op1_kind() == OpKind::Register
}

/// Whether anything in `store` is relative to `base`.
fn uses_base(store: &Store, base: Base) -> bool {
    let in_regs = Reg::ALL
        .iter()
        .any(|r| matches!(store.reg(*r), Some(Known { value: SVal::Addr(b, _), .. }) if b == base));
    in_regs
        || store.mem.iter().any(|((region, _), k)| {
            region == Region::Of(base) || matches!(k.value, Byte::Part(b, ..) if b == base)
        })
}

/// `store` with every address relative to `from` made relative to `to`
/// (and `to`-relative ones dropped, when `from` replaces a dead frame).
fn rebase(store: &mut Store, from: Base, to: Base) {
    let moved = |b: Base| if b == from { to } else { b };
    for r in Reg::ALL {
        if let Some(
            k @ Known {
                value: SVal::Addr(b, o),
                ..
            },
        ) = store.reg(r)
        {
            let value = SVal::Addr(moved(b), o);
            store.set_reg(r, Some(Known { value, ..k }));
        }
    }
    store.mem = store.mem.remap(|(region, off), k| {
        let region = match region {
            Region::Of(b) => Region::Of(moved(b)),
            r => r,
        };
        let value = match k.value {
            Byte::Part(b, o, i) => Byte::Part(moved(b), o, i),
            v => v,
        };
        Some(((region, off), Known { value, ..k }))
    });
    store.copies.clear();
}

/// Forgets the frame at [`Base::Stack`] (its bytes are in the machine):
/// its known bytes, and registers and bytes that point into it.
fn drop_frame(store: &mut Store) {
    for r in Reg::ALL {
        if matches!(
            store.reg(r),
            Some(Known {
                value: SVal::Addr(Base::Stack, _),
                ..
            })
        ) {
            store.set_reg(r, None);
        }
    }
    store.mem = store.mem.remap(|(region, off), v| {
        let stale =
            region == Region::Of(Base::Stack) || matches!(v.value, Byte::Part(Base::Stack, ..));
        (!stale).then_some(((region, off), v))
    });
}

/// Marks every known location of `store` as held by the machine.
fn all_synced(store: &mut Store) {
    for r in Reg::ALL {
        if let Some(k) = store.reg(r) {
            store.set_reg(r, Some(Known { synced: true, ..k }));
        }
    }
    for f in store.flags.iter_mut().flatten() {
        f.synced = true;
    }
    store.mem = store
        .mem
        .remap(|loc, k| Some((loc, Known { synced: true, ..k })));
}

impl Specializer<'_> {
    /// `and esp, -2^n` where the stack base's alignment is known to be at
    /// least `2^n` (a process's entry: Linux starts it with `esp` 16-byte
    /// aligned) and no flag it writes is read: the new stack pointer is a
    /// known `stack + k`, as after `sub esp, k`. Whether it was.
    pub(super) fn realign_statically(&self, state: &mut State, info: &InstrInfo) -> bool {
        let ins = info.instruction;
        let mask = ins.immediate(1) as u32;
        let aligned = self.stack_alignment != 0 && mask.wrapping_neg() <= self.stack_alignment;
        let flags_read = info.live_flags_out & !(1 << wiper_sem::Flag::Df.index()) != 0;
        let esp = state.store.reg(Reg::Esp).map(|k| k.value);
        let (true, false, Some(SVal::Addr(Base::Stack, k))) = (aligned, flags_read, esp) else {
            return false;
        };
        state.store.set_reg(
            Reg::Esp,
            Some(Known {
                value: SVal::Addr(Base::Stack, k & mask),
                synced: true,
            }),
        );
        true
    }

    /// `and esp, -2^n` (or `sub esp, r` with a dynamic `r`): everything
    /// into the machine, the instruction, then the entry frame moves to
    /// [`Base::Entry`] and the new stack pointer is the new [`Base::Stack`].
    pub(super) fn realign(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        let allocation = is_dynamic_allocation(&ins);
        let what = match allocation {
            true => "dynamic stack allocation",
            false => "stack realignment",
        };
        let unsupported = |reason: &str| {
            Stop::Fail(SpecializeError::Unsupported {
                address: addr,
                reason: reason.into(),
            })
        };
        if !state.ctx.is_empty() {
            return Err(unsupported(&format!("a {what} inside an inlined call")));
        }
        let again = uses_base(&state.store, Base::Entry);
        if again && !allocation {
            return Err(unsupported(&format!(
                "a {what} while the stack is realigned or allocated"
            )));
        }
        self.sync_all(state, addr, 0, items)?;
        items.push(Item::Instr(ins, Origin::Original(addr)));
        let store = &mut state.store;
        if again {
            // Another allocation below the first: the frame between them
            // (in the machine now) is forgotten, with what points into it;
            // the entry frame stays.
            drop_frame(store);
        } else {
            rebase(store, Base::Stack, Base::Entry);
        }
        store.set_reg(
            Reg::Esp,
            Some(Known {
                value: SVal::Addr(Base::Stack, 0),
                synced: true,
            }),
        );
        store.real_esp = 0;
        // `and` and `sub` set the status flags from the unknown result.
        let df = store.flags[wiper_sem::Flag::Df.index()];
        store.flags = [None; 7];
        store.flags[wiper_sem::Flag::Df.index()] = df;
        Ok(())
    }

    /// An instruction that points `esp` back into the entry frame, at
    /// `entry + k` (`post` is the store after it, `esp` aside): everything
    /// into the machine, the instruction, then the realigned frame is
    /// dropped and the entry frame is [`Base::Stack`] again.
    pub(super) fn leave_realigned(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        post: Store,
        k: u32,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        self.sync_all(state, addr, 0, items)?;
        items.push(Item::Instr(ins, Origin::Original(addr)));
        let mut store = post;
        all_synced(&mut store);
        // The realigned frame is below the stack pointer now: dead. What
        // points into it is left to the machine.
        drop_frame(&mut store);
        rebase(&mut store, Base::Entry, Base::Stack);
        store.set_reg(
            Reg::Esp,
            Some(Known {
                value: SVal::Addr(Base::Stack, k),
                synced: true,
            }),
        );
        store.real_esp = k;
        state.store = store;
        Ok(())
    }

    /// An error unless the stack is as the function found it (a function
    /// must undo its realignment before it returns).
    pub(super) fn check_not_realigned(&self, state: &State, addr: u32) -> Result<(), Stop> {
        if uses_base(&state.store, Base::Entry) {
            return Err(Stop::Fail(SpecializeError::Unsupported {
                address: addr,
                reason: "a return with the stack still realigned".into(),
            }));
        }
        Ok(())
    }
}
