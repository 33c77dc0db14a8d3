//! Binding times from the BTA, read while specializing.
//!
//! Every function the specializer enters (the specialized function, an
//! inlined callee, a clone, the target of a tail jump) is analysed by
//! `wiper-bta` in the context its static store gives at the entry: which
//! registers and stack arguments are known, and which arguments point into
//! static buffers. The analysis is made once per (function, context), so it
//! is polyvariant over the specializer's contexts at function granularity
//! (a [`wiper_bta::Session`], which builds each function's model once and
//! ignores control dependences: the specializer is polyvariant over static
//! stores).
//!
//! [`Specializer::decide`] reads the time of each instruction:
//! - **Dynamic** (every part reads only dynamic values): when the
//!   instruction touches only registers and flags and the store indeed
//!   knows none of what it reads, it is emitted as it is, without
//!   evaluating it ([`Specializer::emit_dynamic`]). When the store knows an
//!   input after all (the online specializer knows more than the
//!   monovariant analysis: an interpreter's program counter), the
//!   instruction is evaluated: the online step *refines* the BTA.
//! - **Static** and **Lifted**: evaluated; Lifted parts go to Reduce. A
//!   Static instruction that leaves residual code (its inputs were
//!   generalized) is a refinement too.
//!
//! In debug builds every instruction emitted without evaluation is also
//! evaluated, and the two results must be the same: the fast path never
//! changes the residual.

use std::rc::Rc;

use iced_x86::FlowControl;
use wiper_bta::{Context, InstructionTime, InstructionTimes, Pattern};
use wiper_residual::{Item, Origin};
use wiper_sem::{Loc, Reg};
use wiper_x86::abi;

use super::{Specializer, State};
use crate::eval::Evaluated;
use crate::function::InstrInfo;
use crate::state::{Base, Byte, Known, Region, SVal, Store};

/// How the specializer treats one instruction, from the BTA's time and the
/// store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// Dynamic by the BTA, and the store agrees: emit without evaluating.
    EmitDynamic,
    /// Evaluate it: the BTA's time (if any) and whether the store knows an
    /// input the BTA took as dynamic.
    Evaluate {
        /// The BTA's time, when the function was analysed.
        time: Option<InstructionTime>,
        /// The BTA said Dynamic but the store knows an input.
        refined: bool,
    },
}

impl Specializer<'_> {
    /// The BTA's times for `func`, entered with `store` (whose `esp` points
    /// at the return address slot); `None` when the analysis fails.
    pub(super) fn times_at_entry(
        &mut self,
        func: u32,
        store: &Store,
    ) -> Option<Rc<InstructionTimes>> {
        let nargs = (self.arg_bytes(func) / abi::ARG_SIZE).min(64);
        let context = self.context_of(store, nargs);
        if let Some(t) = self.times.get(&(func, context.clone())) {
            return t.clone();
        }
        let times = self.bta.times_in(func, &context).ok().map(Rc::new);
        self.stats.bta.contexts += 1;
        self.times.insert((func, context), times.clone());
        times
    }

    /// The context `store` gives a function with `nargs` stack arguments
    /// entered with it.
    fn context_of(&self, store: &Store, nargs: u32) -> Context {
        let mut pattern = Pattern { regs: 0, args: 0 };
        for r in Reg::ALL {
            if r != Reg::Esp && store.reg(r).is_some() {
                pattern.regs |= 1 << r.index();
            }
        }
        let mut buffers = Vec::new();
        let ret_slot = store.esp();
        for k in 0..nargs {
            match stack_word(store, ret_slot.wrapping_add(abi::arg_offset(k))) {
                None => {}
                Some(value) => {
                    pattern.args |= 1 << k;
                    let points_into_buffer = value.is_some_and(|v| {
                        let (region, off) = Region::of(v);
                        self.buffer_ranges.iter().any(|b| b.contains(region, off))
                    });
                    if points_into_buffer {
                        buffers.push(k);
                    }
                }
            }
        }
        Context { pattern, buffers }
    }

    /// How to treat `info` in `state`; counts the BTA's decisions.
    pub(super) fn decide(&mut self, state: &State, info: &InstrInfo) -> Decision {
        let addr = info.instruction.ip32();
        let time = state.times.as_ref().and_then(|t| t.at(addr));
        match time {
            None => self.stats.bta.unanalysed += 1,
            Some(InstructionTime::Static) => self.stats.bta.static_ += 1,
            Some(InstructionTime::Lifted) => self.stats.bta.lifted += 1,
            Some(InstructionTime::Dynamic) => {
                self.stats.bta.dynamic += 1;
                if registers_and_flags_only(info) && !reads_known(&state.store, info, true) {
                    return Decision::EmitDynamic;
                }
                let known = reads_known(&state.store, info, false);
                if known {
                    self.stats.bta.refined += 1;
                }
                return Decision::Evaluate {
                    time,
                    refined: known,
                };
            }
        }
        Decision::Evaluate {
            time,
            refined: false,
        }
    }

    /// Counts an evaluated instruction whose outcome the BTA did not
    /// foresee as refined: a Static one that left residual code (its
    /// inputs were generalized), a Dynamic one that read a known value the
    /// machine does not hold or known memory (`store` is the store before
    /// the instruction).
    pub(super) fn note_outcome(&mut self, decision: Decision, store: &Store, ev: &Evaluated) {
        let residual = ev.has_residual() || ev.needs_fallback;
        let refined = match decision {
            Decision::Evaluate {
                time: Some(InstructionTime::Static),
                ..
            } => residual,
            Decision::Evaluate {
                time: Some(InstructionTime::Dynamic),
                refined: false,
            } => ev.read_unsynced || reads_known_memory(store, ev),
            _ => false,
        };
        if refined {
            self.stats.bta.refined += 1;
        }
    }

    /// Emits an instruction the BTA and the store agree is dynamic, as it
    /// is (when it writes anything live), and makes what it writes dynamic.
    pub(super) fn emit_dynamic(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) {
        let ins = info.instruction;
        let live_writes = info.writes.iter().any(|w| match *w {
            Loc::Reg(r) => info.live_regs_out & (1 << r.index()) != 0,
            Loc::Flag(f) => info.live_flags_out & (1 << f.index()) != 0,
            _ => false,
        });
        if live_writes {
            items.push(Item::Instr(ins, Origin::Original(ins.ip32())));
        }
        self.stats.bta.emitted += 1;
        let store = &mut state.store;
        for w in &info.writes {
            match *w {
                Loc::Reg(r) => {
                    // (From registers holding no frame address.)
                    store.set_dynamic(r, None);
                    store.copies.retain(|c| c.1 != r);
                }
                Loc::Flag(f) => store.flags[f.index()] = None,
                _ => {}
            }
        }
    }
}

/// Whether `info` reads and writes only registers other than `esp` and
/// flags, falls through, and may be emitted as it is when its inputs are
/// dynamic (not a barrier, not a narrow write the specializer completes,
/// no part assigning a constant, which the store would know).
fn registers_and_flags_only(info: &InstrInfo) -> bool {
    let plain = |l: &Loc| match l {
        Loc::Reg(r) => *r != Reg::Esp,
        Loc::Flag(_) => true,
        _ => false,
    };
    info.instruction.flow_control() == FlowControl::Next
        && info.lifted.barrier().is_none()
        && info.free_narrow_write.is_none()
        && !info.writes_a_constant
        && info.reads.iter().all(plain)
        && info.writes.iter().all(plain)
}

/// Whether the store knows a flag or a register other than `esp` that
/// `info` reads; a register holding a stack address (a frame pointer, which
/// the BTA too takes as a static address, not a value), or a dynamic one
/// holding a frame address, counts only with `addresses`.
fn reads_known(store: &Store, info: &InstrInfo, addresses: bool) -> bool {
    info.reads.iter().any(|l| match *l {
        Loc::Reg(r) if r != Reg::Esp && store.frame_reg(r).is_some() => addresses,
        Loc::Reg(r) if r != Reg::Esp => match store.reg(r) {
            Some(Known {
                value: SVal::Addr(b, _),
                ..
            }) if b.is_frame() => addresses,
            known => known.is_some(),
        },
        Loc::Flag(f) => store.flag(f).is_some(),
        _ => false,
    })
}

/// Whether a byte the evaluated instruction read at a known address is
/// known too.
fn reads_known_memory(store: &Store, ev: &Evaluated) -> bool {
    ev.known_reads.iter().any(|&(region, off, n)| {
        (0..n).any(|i| store.mem.get((region, off.wrapping_add(i))).is_some())
    })
}

/// The 4-byte stack slot at `off`: `None` when a byte of it is dynamic,
/// else its value when it is one constant or one address (`Some(None)`
/// for known bytes that are neither).
fn stack_word(store: &Store, off: u32) -> Option<Option<SVal>> {
    let mut bytes = [None; 4];
    for (i, b) in bytes.iter_mut().enumerate() {
        let Known { value, .. } = store
            .mem
            .get((Region::Of(Base::Stack), off.wrapping_add(i as u32)))?;
        *b = Some(value);
    }
    let constant = bytes
        .iter()
        .enumerate()
        .try_fold(0u64, |acc, (i, b)| match b {
            Some(Byte::Const(v)) => Some(acc | u64::from(*v) << (8 * i)),
            _ => None,
        });
    if let Some(c) = constant {
        return Some(Some(SVal::Const(c)));
    }
    let address = match bytes[0] {
        Some(Byte::Part(base, o, 0)) => (1..4)
            .all(|i| bytes[i] == Some(Byte::Part(base, o, i as u8)))
            .then_some(SVal::Addr(base, o)),
        _ => None,
    };
    Some(address)
}
