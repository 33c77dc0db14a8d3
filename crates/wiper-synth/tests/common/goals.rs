//! Random goals the way the specializer makes them: random instances
//! (`wiper_sem::sample::instance`) of the supported data-processing forms,
//! memory operands re-addressed to `[esp+d]` or to `[ebp+d]` with `ebp`
//! static as `esp+c`, a random half of the registers the instruction reads
//! static, random live registers and flags, and effects on dead registers
//! dropped.

use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, Instruction, InstructionInfoFactory, Mnemonic,
    OpAccess, OpKind, Register,
};
use wiper_qfbv::{ExprId, ExprPool};
use wiper_sem::{sample, supported_codes, Loc, Reg};
use wiper_x86::Rng;

use super::{static_expr, Static, IP};

/// Forms the goals are drawn from: data processing, stack and flag
/// instructions (no control transfers, string loops, divisions, barriers,
/// `pushf`/`popf`, or bit tests into memory).
pub fn codes() -> Vec<Code> {
    supported_codes()
        .iter()
        .copied()
        .filter(|c| {
            use Mnemonic as M;
            let m = c.mnemonic();
            !c.is_string_instruction()
                && !c.is_jcc_short_or_near()
                && !matches!(
                    m,
                    M::Jmp
                        | M::Call
                        | M::Ret
                        | M::Div
                        | M::Idiv
                        | M::Int
                        | M::Hlt
                        | M::Loop
                        | M::Loope
                        | M::Loopne
                        | M::Jecxz
                        | M::Pushfd
                        | M::Pushf
                        | M::Popfd
                        | M::Popf
                        | M::Nop
                        | M::Endbr32
                        | M::Bt
                        | M::Bts
                        | M::Btr
                        | M::Btc
                )
        })
        .collect()
}

/// Encodes and decodes `ins` (after its operands were edited).
fn normal(ins: &Instruction) -> Option<Instruction> {
    let mut e = Encoder::new(32);
    e.encode(ins, IP).ok()?;
    let b = e.take_buffer();
    let d = Decoder::with_ip(32, &b, IP, DecoderOptions::NONE).decode();
    (d.code() == ins.code() && d.len() == b.len()).then_some(d)
}

/// A random goal: the instance, the static registers and the live sets.
pub struct Case {
    /// The original instruction.
    pub ins: Instruction,
    /// Its static registers.
    pub statics: Vec<(Reg, Static)>,
    /// Live registers after it (before dropping the static ones it leaves).
    pub live_regs: u8,
    /// Live flags after it.
    pub live_flags: u8,
    /// Whether effects on dead flags stay in the goal.
    pub keep_dead_flag_effects: bool,
    /// Whether the goal names its original instruction (without it, only
    /// direct candidates, splitting and search can answer).
    pub hint: bool,
}

/// Draws the next case (`None`: the edited instance does not encode).
pub fn case(rng: &mut Rng, sampler: &mut Rng, codes: &[Code]) -> Option<Case> {
    let code = codes[rng.below(codes.len() as u32) as usize];
    let mut ins = sample::instance(code, IP as u32, sampler);
    let mut statics: Vec<(Reg, Static)> = Vec::new();
    let has_mem = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
    let frame = rng.chance(1, 2);
    if has_mem && ins.mnemonic() != Mnemonic::Lea || ins.mnemonic() == Mnemonic::Leave {
        let disp = rng.range(0, 64) as i32 - 32;
        if ins.mnemonic() != Mnemonic::Leave {
            ins.set_memory_base(if frame { Register::EBP } else { Register::ESP });
            ins.set_memory_index(Register::None);
            ins.set_memory_index_scale(1);
            ins.set_memory_displacement32(disp as u32);
            ins.set_memory_displ_size(1);
            ins = normal(&ins)?;
        }
        if frame || ins.mnemonic() == Mnemonic::Leave {
            let c = (rng.range(0, 64) as i32 - 32) as u32 & !3;
            statics.push((Reg::Ebp, Static::EspPlus(c)));
        }
    }
    for r in registers_read(&ins) {
        if statics.iter().any(|s| s.0 == r) || !rng.chance(1, 2) {
            continue;
        }
        let v = match rng.below(4) {
            0 => rng.below(4),
            1 => rng.below(64),
            2 => 1 << rng.below(32),
            _ => rng.next_u32(),
        };
        statics.push((r, Static::Const(v)));
    }
    let live_flags = match rng.below(4) {
        0 => 0,
        1 => 0x7f,
        _ => rng.below(128) as u8,
    };
    Some(Case {
        ins,
        statics,
        live_regs: rng.next_u32() as u8,
        live_flags,
        keep_dead_flag_effects: rng.chance(1, 2),
        hint: !rng.chance(1, 4),
    })
}

/// The registers other than `esp` that `ins` reads, in iced's order.
fn registers_read(ins: &Instruction) -> Vec<Reg> {
    let mut factory = InstructionInfoFactory::new();
    let mut read: Vec<Reg> = Vec::new();
    for u in factory.info(ins).used_registers() {
        if !matches!(
            u.access(),
            OpAccess::Read | OpAccess::ReadWrite | OpAccess::CondRead | OpAccess::ReadCondWrite
        ) {
            continue;
        }
        if let Some(r) = Reg::from_iced(u.register()) {
            if r != Reg::Esp && !read.contains(&r) {
                read.push(r);
            }
        }
    }
    read
}

/// The parts of a case's goal: its effects (static registers substituted,
/// effects on dead registers and, unless kept, dead flags dropped), its live
/// registers (static ones it leaves alone are dead) and its `static_regs`
/// hints. `None` when the instance does not lift.
pub struct GoalParts {
    /// The goal's effects.
    pub effects: Vec<(Loc, ExprId)>,
    /// The goal's live registers.
    pub live_regs: u8,
    /// The goal's `static_regs` hints.
    pub hints: Vec<(Reg, u32)>,
}

impl GoalParts {
    /// The goal of case `c`, built in `pool`.
    pub fn of(pool: &mut ExprPool, c: &Case) -> Option<GoalParts> {
        let subst: Vec<(Reg, ExprId)> = c
            .statics
            .iter()
            .map(|&(r, s)| (r, static_expr(pool, s)))
            .collect();
        let fx = wiper_synth::instruction_effects(pool, &c.ins, &subst)?;
        let mut live_regs = c.live_regs;
        for (r, _) in &c.statics {
            if !fx.iter().any(|(l, _)| *l == Loc::Reg(*r)) {
                live_regs &= !(1 << r.index());
            }
        }
        let effects = fx
            .into_iter()
            .filter(|(l, _)| match l {
                Loc::Reg(r) => live_regs & 1 << r.index() != 0 || *r == Reg::Esp,
                Loc::Flag(f) => c.keep_dead_flag_effects || c.live_flags & 1 << f.index() != 0,
                _ => true,
            })
            .collect();
        let hints = c
            .statics
            .iter()
            .map(|&(r, s)| (r, if let Static::Const(v) = s { v } else { 0 }))
            .collect();
        Some(GoalParts {
            effects,
            live_regs,
            hints,
        })
    }
}
