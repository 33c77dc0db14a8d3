//! Random machine states for wiper-sem's own CPU-free tests.

#![allow(dead_code)]

use std::collections::BTreeMap;

use iced_x86::Instruction;
use wiper_sem::sample::Sampler;
use wiper_sem::{MachineState, Reg};

/// Start of the memory window of generated states.
pub const WINDOW: u32 = 0x0001_0000;
/// Size of the window.
pub const WINDOW_SIZE: u32 = 0x800;

/// A random state for `ins`: registers are often addresses inside the
/// window (so memory operands hit it), `esp` always is, `ecx` is small for
/// `rep` instructions, flags and window bytes are random.
pub fn random_state(s: &mut Sampler, ins: &Instruction) -> MachineState {
    let mut st = MachineState::default();
    for r in Reg::ALL {
        st.regs[r.index()] = match s.below(4) {
            0 => s.next_u32(),
            1 => s.below(40),
            _ => WINDOW + 0x100 + s.below(WINDOW_SIZE - 0x200),
        };
    }
    st.regs[Reg::Esp.index()] = WINDOW + 0x300 + s.below(0x200);
    let rep = ins.has_rep_prefix() || ins.has_repne_prefix();
    if rep && ins.is_string_instruction() {
        st.regs[Reg::Ecx.index()] = s.below(12);
    }
    for f in 0..7 {
        st.flags[f] = s.below(2) == 1;
    }
    st.eip = ins.ip32();
    st.mem = (0..WINDOW_SIZE)
        .map(|i| (WINDOW + i, s.next_u32() as u8))
        .collect::<BTreeMap<u32, u8>>();
    // The bytes an explicit memory operand addresses are known too.
    if (0..ins.op_count()).any(|i| ins.op_kind(i) == iced_x86::OpKind::Memory) {
        let reg = |r: iced_x86::Register| Reg::from_iced(r).map_or(0, |r| st.regs[r.index()]);
        let addr = ins
            .memory_displacement32()
            .wrapping_add(reg(ins.memory_base()))
            .wrapping_add(reg(ins.memory_index()).wrapping_mul(ins.memory_index_scale()));
        for i in 0..8 {
            st.mem.insert(addr.wrapping_add(i), s.next_u32() as u8);
        }
    }
    // A few equal neighbours, so `repe cmps` and `repne scas` run several
    // iterations.
    if s.below(2) == 0 {
        let v = s.next_u32() as u8;
        for i in 0..WINDOW_SIZE {
            if s.below(4) != 0 {
                st.mem.insert(WINDOW + i, v);
            }
        }
    }
    st
}

/// Number of random states per form: `default`, or the value of the
/// environment variable `var`.
pub fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
