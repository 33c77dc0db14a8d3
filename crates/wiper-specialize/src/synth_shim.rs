//! Temporary stand-in for wiper-synth while it is written.
#![allow(missing_docs, dead_code)]
use wiper_qfbv::{ExprId, ExprPool};
use wiper_sem::{Loc, Reg};
pub struct Goal<'a> {
    pub effects: Vec<(Loc, ExprId)>,
    pub live_regs: u8,
    pub live_flags: u8,
    pub original: Option<&'a iced_x86::Instruction>,
    pub static_regs: &'a [(Reg, u32)],
}
pub struct Synthesizer;
impl Synthesizer {
    pub fn new(_t: u32) -> Self {
        Synthesizer
    }
    pub fn synthesize(&mut self, _p: &mut ExprPool, _g: &Goal) -> Option<Vec<iced_x86::Instruction>> {
        None
    }
}
