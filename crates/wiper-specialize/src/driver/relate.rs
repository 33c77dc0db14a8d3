//! The offset relations of the store ([`crate::relations`]) across the
//! residual code of one instruction. Dynamic values change only through
//! residual code, so the code is what is followed: which locations an
//! emitted instruction derives from which by a static offset (`mov`, `lea`,
//! `add`/`sub` of a constant, `inc`, `dec`, `push`, `pop`), which relations
//! it breaks (everything else it writes, memory it may reach through a
//! pointer, what a call may change), and the zero flag of a compare or
//! subtraction of two related locations, which the store then knows.
//!
//! Only dynamic locations are related: a location that becomes known drops
//! out. The relations are not part of the memo key; a jump to a point is
//! sound when the relations the point was specialized with hold on arrival
//! (see `Specializer::goto`).

use iced_x86::{
    Code, FlowControl, Instruction, InstructionInfoFactory, OpAccess, OpKind, Register,
};
use wiper_residual::Item;
use wiper_sem::{Flag, Reg};
use wiper_x86::abi;

use crate::relations::{RelLoc, Relations};
use crate::state::{Base, Known, Region, SVal, Store};

/// Whether `loc` is dynamic in `store` (what relations are about).
fn dynamic(store: &Store, loc: RelLoc) -> bool {
    match loc {
        RelLoc::Reg(r) => store.reg(r).is_none(),
        RelLoc::Word(o) => (0..4).all(|i| {
            !store
                .mem
                .contains((Region::Of(Base::Stack), o.wrapping_add(i)))
        }),
    }
}

/// The frame word an `[esp+d]` or `[r+d]` address names, with the machine's
/// stack pointer at `esp` (an offset from the entry stack pointer) and
/// registers as `store` has them.
fn frame_offset(
    store: &Store,
    esp: u32,
    base: Register,
    index: Register,
    disp: u64,
) -> Option<u32> {
    if index != Register::None {
        return None;
    }
    if base == Register::ESP {
        return Some(esp.wrapping_add(disp as u32));
    }
    match store.reg(Reg::from_iced(base.full_register32())?)? {
        Known {
            value: SVal::Addr(Base::Stack, k),
            synced: true,
        } => Some(k.wrapping_add(disp as u32)),
        _ => None,
    }
}

/// Whether a write through `base` at an offset the store cannot name may
/// reach the frame: the frame escaped, or `base` holds a stack address.
fn may_reach_frame(store: &Store, base: Register) -> bool {
    store.escaped
        || base == Register::ESP
        || Reg::from_iced(base.full_register32()).is_some_and(|r| store.holds_frame_address(&[r]))
}

/// Whether `access` leaves the location as it was.
fn only_reads(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess | OpAccess::None
    )
}

/// Follows residual code through the store's relations.
struct Follower<'a> {
    store: &'a Store,
    rels: Relations,
    /// The machine's stack pointer before the next item.
    esp: u32,
    /// The zero flag as a related compare left it, until something else
    /// writes the flags.
    zf: Option<bool>,
    factory: InstructionInfoFactory,
}

impl Follower<'_> {
    /// The relation location of operand `k` of `ins` (a 32-bit register
    /// other than `esp`, or a frame word).
    fn operand(&self, ins: &Instruction, k: u32) -> Option<RelLoc> {
        match ins.op_kind(k) {
            OpKind::Register => {
                let r = ins.op_register(k);
                if !r.is_gpr32() || r == Register::ESP {
                    return None;
                }
                Reg::from_iced(r).map(RelLoc::Reg)
            }
            OpKind::Memory
                if ins.memory_size().size() == 4 && ins.segment_prefix() == Register::None =>
            {
                let d = ins.memory_displacement64();
                frame_offset(
                    self.store,
                    self.esp,
                    ins.memory_base(),
                    ins.memory_index(),
                    d,
                )
                .map(RelLoc::Word)
            }
            _ => None,
        }
    }

    /// The derivation `ins` makes: `(loc, from, delta)`, `loc` now holding
    /// `from`'s old value plus `delta`.
    fn derivation(&self, ins: &Instruction) -> Option<(RelLoc, RelLoc, u32)> {
        let imm = |k: u32| match ins.op_kind(k) {
            OpKind::Immediate8to32 | OpKind::Immediate32 => Some(ins.immediate(k) as u32),
            _ => None,
        };
        let same = |delta: Option<u32>| {
            let loc = self.operand(ins, 0)?;
            Some((loc, loc, delta?))
        };
        match ins.code() {
            Code::Mov_r32_rm32 | Code::Mov_rm32_r32 => {
                Some((self.operand(ins, 0)?, self.operand(ins, 1)?, 0))
            }
            Code::Lea_r32_m if ins.memory_index() == Register::None => {
                let base = ins.memory_base();
                if base == Register::ESP || !base.is_gpr32() {
                    return None;
                }
                let from = RelLoc::Reg(Reg::from_iced(base)?);
                Some((self.operand(ins, 0)?, from, ins.memory_displacement32()))
            }
            Code::Add_rm32_imm8 | Code::Add_rm32_imm32 | Code::Add_EAX_imm32 => same(imm(1)),
            Code::Sub_rm32_imm8 | Code::Sub_rm32_imm32 | Code::Sub_EAX_imm32 => {
                same(imm(1).map(u32::wrapping_neg))
            }
            Code::Inc_r32 | Code::Inc_rm32 => same(Some(1)),
            Code::Dec_r32 | Code::Dec_rm32 => same(Some(u32::MAX)),
            Code::Push_r32 => Some((
                RelLoc::Word(self.esp.wrapping_sub(4)),
                self.operand(ins, 0)?,
                0,
            )),
            Code::Pop_r32 => Some((self.operand(ins, 0)?, RelLoc::Word(self.esp), 0)),
            _ => None,
        }
    }

    /// What `ins` writes: registers, frame bytes (offset, size), and
    /// whether it may write frame words the store cannot name.
    fn writes(&mut self, ins: &Instruction) -> (Vec<Reg>, Vec<(u32, u32)>, bool) {
        let (store, esp) = (self.store, self.esp);
        let info = self.factory.info(ins);
        let mut regs: Vec<Reg> = info
            .used_registers()
            .iter()
            .filter(|r| !only_reads(r.access()))
            .filter_map(|r| Reg::from_iced(r.register().full_register32()))
            .collect();
        let (mut frame, mut anywhere) = (Vec::new(), false);
        for m in info
            .used_memory()
            .iter()
            .filter(|m| !only_reads(m.access()))
        {
            let size = m.memory_size().size().max(1) as u32;
            match frame_offset(store, esp, m.base(), m.index(), m.displacement()) {
                Some(off) => frame.push((off, size)),
                None => anywhere |= may_reach_frame(store, m.base()),
            }
        }
        if matches!(
            ins.flow_control(),
            FlowControl::Call | FlowControl::IndirectCall
        ) {
            regs.extend([Reg::Eax, Reg::Ecx, Reg::Edx]);
            anywhere |= store.escaped || store.holds_frame_address(&abi::CALLER_SAVED);
        }
        (regs, frame, anywhere)
    }

    /// Follows one residual instruction.
    fn instruction(&mut self, ins: &Instruction) {
        let derived = self.derivation(ins);
        let (regs, frame, anywhere) = self.writes(ins);
        let hit = |loc: RelLoc| match loc {
            RelLoc::Reg(r) => regs.contains(&r),
            RelLoc::Word(o) => {
                anywhere
                    || frame
                        .iter()
                        .any(|&(w, n)| o.wrapping_sub(w) < n || w.wrapping_sub(o) < 4)
            }
        };
        let zf = self.compare(ins);
        match derived {
            Some((loc, from, delta)) => {
                self.rels.derive(loc, from, delta);
                self.rels.forget_where(|l| l != loc && hit(l));
            }
            None => self.rels.forget_where(hit),
        }
        if ins.rflags_modified() != 0 {
            self.zf = zf;
        }
        self.esp = self.esp_after(ins);
    }

    /// The zero flag of `cmp a, b` or `sub a, b` on two related locations.
    fn compare(&self, ins: &Instruction) -> Option<bool> {
        let compares = matches!(
            ins.code(),
            Code::Cmp_r32_rm32 | Code::Cmp_rm32_r32 | Code::Sub_r32_rm32 | Code::Sub_rm32_r32
        );
        if !compares {
            return None;
        }
        let (a, b) = (self.operand(ins, 0)?, self.operand(ins, 1)?);
        Some(self.rels.difference(a, b)? == 0)
    }

    /// The machine's stack pointer after `ins` (an offset from the entry
    /// stack pointer); relations to frame words are dropped when it cannot
    /// be followed.
    fn esp_after(&mut self, ins: &Instruction) -> u32 {
        let names_esp = (0..ins.op_count())
            .any(|k| ins.op_kind(k) == OpKind::Register && ins.op_register(k) == Register::ESP);
        let esp_written = names_esp
            && (0..ins.op_count()).any(|k| {
                ins.op_kind(k) == OpKind::Register
                    && ins.op_register(k) == Register::ESP
                    && k == 0
                    && !matches!(
                        ins.mnemonic(),
                        iced_x86::Mnemonic::Cmp | iced_x86::Mnemonic::Test
                    )
            });
        if !esp_written {
            return self.esp.wrapping_add(ins.stack_pointer_increment() as u32);
        }
        let delta = match ins.code() {
            Code::Lea_r32_m
                if ins.memory_base() == Register::ESP && ins.memory_index() == Register::None =>
            {
                Some(ins.memory_displacement32())
            }
            Code::Add_rm32_imm8 | Code::Add_rm32_imm32 => Some(ins.immediate(1) as u32),
            Code::Sub_rm32_imm8 | Code::Sub_rm32_imm32 => {
                Some((ins.immediate(1) as u32).wrapping_neg())
            }
            _ => None,
        };
        match delta {
            Some(d) => self.esp.wrapping_add(d),
            None => {
                self.rels.forget_where(|l| matches!(l, RelLoc::Word(_)));
                self.esp
            }
        }
    }
}

/// Follows `emitted`, the residual code of one instruction that started
/// with the machine's stack pointer at `real_esp` and the relations
/// `rels`, into `post`, the store after it; `zf_live` says whether the
/// instruction's zero flag is read later.
pub(super) fn follow(
    rels: Relations,
    real_esp: u32,
    emitted: &[Item],
    zf_live: bool,
    post: &mut Store,
) {
    let mut f = Follower {
        store: post,
        rels,
        esp: real_esp,
        zf: None,
        factory: InstructionInfoFactory::new(),
    };
    for item in emitted {
        match item {
            Item::Instr(ins, _) => f.instruction(ins),
            Item::Address { reg, .. } => {
                if let Some(r) = Reg::from_iced(reg.full_register32()) {
                    f.rels.forget(RelLoc::Reg(r));
                }
            }
            Item::CallLabel(..) => {
                let escaped = f.store.escaped || f.store.holds_frame_address(&abi::CALLER_SAVED);
                f.rels.forget_where(|l| {
                    matches!(l, RelLoc::Reg(Reg::Eax | Reg::Ecx | Reg::Edx))
                        || escaped && matches!(l, RelLoc::Word(_))
                });
            }
        }
    }
    let (mut rels, zf) = (f.rels, f.zf);
    // Dynamic locations only, and no words below the stack pointer.
    let low = post.esp().min(post.real_esp);
    rels.forget_where(|l| {
        !dynamic(post, l) || matches!(l, RelLoc::Word(o) if (o.wrapping_sub(low) as i32) < 0)
    });
    post.rels = rels;
    if let (Some(zf), true, None) = (zf, zf_live, post.flag(Flag::Zf)) {
        post.flags[Flag::Zf.index()] = Some(Known {
            value: zf,
            synced: true,
        });
    }
}
