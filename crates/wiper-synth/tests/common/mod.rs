//! Helpers for the synthesizer tests: assembling one instruction, building
//! goals the way the specializer does (lift, substitute static values), and
//! printing sequences.

#![allow(dead_code)]

pub mod goals;

use iced_x86::code_asm::CodeAssembler;
use iced_x86::{Decoder, DecoderOptions, Formatter, IcedError, Instruction, NasmFormatter};
use wiper_qfbv::{ExprId, ExprPool};
use wiper_sem::{loc_var, Loc, Reg};
use wiper_synth::instruction_effects;

/// Address the test instructions are placed at.
pub const IP: u64 = 0x0804_9000;

/// One instruction, assembled with iced's code assembler and decoded back.
pub fn one(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Instruction {
    let mut a = CodeAssembler::new(32).unwrap();
    f(&mut a).unwrap();
    let bytes = a.assemble(IP).unwrap();
    Decoder::with_ip(32, &bytes, IP, DecoderOptions::NONE).decode()
}

/// NASM text of a sequence, `; `-separated (`"(empty)"` for none).
pub fn text(seq: &[Instruction]) -> String {
    if seq.is_empty() {
        return "(empty)".to_owned();
    }
    let mut f = NasmFormatter::new();
    seq.iter()
        .map(|i| {
            let mut s = String::new();
            f.format(i, &mut s);
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A static input: a constant, or a known offset from `esp`.
#[derive(Copy, Clone, Debug)]
pub enum Static {
    /// The register holds this value.
    Const(u32),
    /// The register holds `esp + offset` (a frame pointer).
    EspPlus(u32),
}

/// The formula of a static input.
pub fn static_expr(pool: &mut ExprPool, s: Static) -> ExprId {
    match s {
        Static::Const(c) => pool.bv(u64::from(c), 32),
        Static::EspPlus(k) => {
            let esp = loc_var(pool, Loc::Reg(Reg::Esp));
            let k = pool.bv(u64::from(k), 32);
            pool.add(esp, k)
        }
    }
}

/// A goal's effects and its `static_regs` hint list.
pub type Effects = (Vec<(Loc, ExprId)>, Vec<(Reg, u32)>);

/// The effects of `ins` with the static registers substituted, and the
/// `static_regs` hint list (an `esp`-relative register is listed with 0).
pub fn effects(pool: &mut ExprPool, ins: &Instruction, statics: &[(Reg, Static)]) -> Effects {
    let subst: Vec<(Reg, ExprId)> = statics
        .iter()
        .map(|&(r, s)| (r, static_expr(pool, s)))
        .collect();
    let fx = instruction_effects(pool, ins, &subst).expect("liftable");
    let hints = statics
        .iter()
        .map(|&(r, s)| {
            (
                r,
                match s {
                    Static::Const(c) => c,
                    Static::EspPlus(_) => 0,
                },
            )
        })
        .collect();
    (fx, hints)
}
