//! `rep` string instructions that run whole in the residual program: those
//! with a dynamic count, and those one of whose steps leaves residual code
//! (the machine has no instruction for a single step of a `rep`).

use iced_x86::{Instruction, Mnemonic};
use wiper_residual::Item;
use wiper_sem::{Flag, Reg};

use super::residual::forget_written_registers;
use super::{Specializer, State, Stop};
use crate::function::InstrInfo;
use crate::state::{Known, Region, SVal, Store};

/// What an unconditional `rep movs`/`stos`/`lods` with a known count, a
/// known direction and known index registers leaves behind.
#[derive(Debug, PartialEq)]
struct RepOutcome {
    /// Registers with their known values after it (`ecx` 0, the index
    /// registers moved by count × width).
    regs: Vec<(Reg, SVal)>,
    /// The destination bytes (region, first offset, length), which the
    /// machine now holds.
    written: Option<(Region, u32, u32)>,
}

/// The most bytes a `rep` instruction with a known count may move or store
/// step by step at specialization time (glibc's `strstr` clears a 256-byte
/// table); a longer one runs whole, so that its bytes are not materialized
/// one word at a time afterwards.
pub(super) const EVALUATED_BYTES: u32 = 256;

/// Whether `ins`, a `rep` instruction, has a known count of more than
/// [`EVALUATED_BYTES`] bytes left in `store`.
pub(super) fn too_long_to_evaluate(store: &Store, ins: &Instruction) -> bool {
    let width = ins.memory_size().size() as u64;
    matches!(
        store.reg(Reg::Ecx).map(|k| k.value),
        Some(SVal::Const(n)) if n.saturating_mul(width) > u64::from(EVALUATED_BYTES)
    )
}

impl RepOutcome {
    /// The outcome of `ins` run whole from `store`; `None` when anything it
    /// depends on is dynamic, or for `repe`/`repne` (`cmps`, `scas`), which
    /// may stop early.
    fn of(store: &Store, ins: &Instruction) -> Option<RepOutcome> {
        let (source, dest) = match ins.mnemonic() {
            Mnemonic::Movsb | Mnemonic::Movsw | Mnemonic::Movsd => (true, true),
            Mnemonic::Stosb | Mnemonic::Stosw | Mnemonic::Stosd => (false, true),
            Mnemonic::Lodsb | Mnemonic::Lodsw | Mnemonic::Lodsd => (true, false),
            _ => return None,
        };
        if !ins.has_rep_prefix() {
            return None;
        }
        let count = match store.reg(Reg::Ecx)?.value {
            SVal::Const(c) => c as u32,
            SVal::Addr(..) => return None,
        };
        let down = store.flag(Flag::Df)?.value;
        let width = ins.memory_size().size() as u32;
        let bytes = count.wrapping_mul(width);
        let moved = |v: SVal| {
            let step = if down { bytes.wrapping_neg() } else { bytes };
            match v {
                SVal::Const(c) => SVal::Const(u64::from((c as u32).wrapping_add(step))),
                SVal::Addr(b, o) => SVal::Addr(b, o.wrapping_add(step)),
            }
        };
        let mut regs = vec![(Reg::Ecx, SVal::Const(0))];
        let mut written = None;
        if source {
            regs.push((Reg::Esi, moved(store.reg(Reg::Esi)?.value)));
        }
        if dest {
            let edi = store.reg(Reg::Edi)?.value;
            regs.push((Reg::Edi, moved(edi)));
            let (region, first) = Region::of(edi);
            // Going down, the last element stored is the lowest.
            let low = if down && count > 0 {
                first.wrapping_sub(bytes.wrapping_sub(width))
            } else {
                first
            };
            written = Some((region, low, bytes));
        }
        Some(RepOutcome { regs, written })
    }
}

impl Specializer<'_> {
    /// Emits the `rep` instruction `info` whole, after putting all known
    /// memory and its inputs into the machine. With a known outcome
    /// ([`RepOutcome`]) its registers stay known and only its destination
    /// is forgotten; otherwise its outputs are dynamic
    /// ([`Specializer::pass_through`]).
    pub(super) fn pass_rep(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let ins = info.instruction;
        let Some(outcome) = RepOutcome::of(&state.store, &ins) else {
            return self.pass_through(state, info, items);
        };
        self.emit_whole(state, info, items)?;
        // What it writes is dynamic (`lods` leaves its last element in
        // `eax`), but for the registers whose outcome is known.
        forget_written_registers(&mut state.store, info);
        for (r, value) in outcome.regs {
            state.store.set_reg(
                r,
                Some(Known {
                    value,
                    synced: true,
                }),
            );
        }
        if let Some((region, low, len)) = outcome.written {
            for i in 0..len {
                state.store.mem.remove((region, low.wrapping_add(i)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Base;
    use iced_x86::{Code, Decoder, DecoderOptions};

    fn decode(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(32, bytes, 0x1000, DecoderOptions::NONE).decode()
    }

    fn store(ecx: u32, down: bool) -> Store {
        let mut s = Store::entry();
        let known = |value| {
            Some(Known {
                value,
                synced: false,
            })
        };
        s.set_reg(Reg::Ecx, known(SVal::Const(u64::from(ecx))));
        s.set_reg(Reg::Edi, known(SVal::Addr(Base::Stack, 0x100)));
        s.set_reg(Reg::Esi, known(SVal::Const(0x8000)));
        s.flags[Flag::Df.index()] = Some(Known {
            value: down,
            synced: true,
        });
        s
    }

    #[test]
    fn a_forward_rep_movsd_moves_both_pointers_and_writes_its_destination() {
        let ins = decode(&[0xf3, 0xa5]);
        assert_eq!(ins.code(), Code::Movsd_m32_m32);
        let out = RepOutcome::of(&store(3, false), &ins).unwrap();
        assert_eq!(
            out.regs,
            vec![
                (Reg::Ecx, SVal::Const(0)),
                (Reg::Esi, SVal::Const(0x800c)),
                (Reg::Edi, SVal::Addr(Base::Stack, 0x10c)),
            ]
        );
        assert_eq!(out.written, Some((Region::Of(Base::Stack), 0x100, 12)));
    }

    #[test]
    fn a_backward_rep_stosb_writes_below_its_start() {
        let ins = decode(&[0xf3, 0xaa]);
        let out = RepOutcome::of(&store(4, true), &ins).unwrap();
        assert_eq!(out.regs[1], (Reg::Edi, SVal::Addr(Base::Stack, 0xfc)));
        // Bytes 0xfd..=0x100 are stored, the first at 0x100.
        assert_eq!(out.written, Some((Region::Of(Base::Stack), 0xfd, 4)));
    }

    #[test]
    fn only_short_reps_are_evaluated_step_by_step() {
        let stosd = decode(&[0xf3, 0xab]);
        let stosb = decode(&[0xf3, 0xaa]);
        assert!(!too_long_to_evaluate(&store(64, false), &stosd));
        assert!(too_long_to_evaluate(&store(65, false), &stosd));
        assert!(!too_long_to_evaluate(&store(256, false), &stosb));
        let mut s = store(1000, false);
        s.set_reg(Reg::Ecx, None);
        assert!(!too_long_to_evaluate(&s, &stosd));
    }

    #[test]
    fn unknown_counts_directions_and_conditional_reps_have_no_outcome() {
        let movsd = decode(&[0xf3, 0xa5]);
        let mut s = store(3, false);
        s.flags[Flag::Df.index()] = None;
        assert_eq!(RepOutcome::of(&s, &movsd), None);
        let mut s = store(3, false);
        s.set_reg(Reg::Ecx, None);
        assert_eq!(RepOutcome::of(&s, &movsd), None);
        // `repe cmpsb` stops at the first difference.
        assert_eq!(
            RepOutcome::of(&store(3, false), &decode(&[0xf3, 0xa6])),
            None
        );
        // Without a prefix it is no `rep` at all.
        assert_eq!(RepOutcome::of(&store(3, false), &decode(&[0xa5])), None);
    }
}
