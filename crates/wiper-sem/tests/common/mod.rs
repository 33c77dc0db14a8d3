//! Helpers shared by the conformance tests and the CPU-free tests that run
//! generated instances: state generation on top of the instruction
//! generator ([`gen`]), conversion of oracle states to [`MachineState`]s, and
//! the comparison of a processor outcome with [`wiper_sem::execute`]'s
//! result.

#![allow(dead_code)]

pub mod gen;

pub use wiper_sem::sample::is_shift_or_rotate;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Mutex;

use iced_x86::{Instruction, RflagsBits};
use wiper_oracle::{
    flags, CpuState, OracleError, Outcome, CODE_BASE, FS_BASE, GS_BASE, SCRATCH_BASE,
};
use wiper_qfbv::ExprPool;
use wiper_sem::{Executed, Flag, Lifted, MachineState, Reg};

/// Serializes harness runs of this test process: two threads that write and
/// spawn harness executables at the same time make each other wait on
/// `ETXTBSY` (a child forked by one thread holds the other's write handle
/// until it execs); one run at a time while the other thread evaluates is
/// faster.
static ORACLE: Mutex<()> = Mutex::new(());

/// [`wiper_oracle::run_code`], one harness at a time.
pub fn run_code(code: &[u8], states: &[CpuState]) -> Result<Vec<Outcome>, OracleError> {
    let _one = ORACLE.lock().unwrap_or_else(|e| e.into_inner());
    wiper_oracle::run_code(code, states)
}

/// [`wiper_oracle::run_instructions`], one harness at a time.
pub fn run_instructions(
    instructions: &[Instruction],
    states: &[CpuState],
) -> Result<Vec<Outcome>, OracleError> {
    let _one = ORACLE.lock().unwrap_or_else(|e| e.into_inner());
    wiper_oracle::run_instructions(instructions, states)
}

/// The wiper state for an oracle state: registers, the seven flags from the
/// EFLAGS bits, `eip` at [`CODE_BASE`], every window byte at
/// `SCRATCH_BASE + i`, and the harness's segment bases.
pub fn to_machine(s: &CpuState) -> MachineState {
    let mut m = MachineState {
        regs: s.regs,
        eip: CODE_BASE,
        fs_base: FS_BASE,
        gs_base: GS_BASE,
        ..MachineState::default()
    };
    for f in Flag::ALL {
        m.flags[f.index()] = s.eflags & f.eflags_bit() != 0;
    }
    m.mem = s
        .mem
        .iter()
        .enumerate()
        .map(|(i, &b)| (SCRATCH_BASE + i as u32, b))
        .collect();
    m
}

/// Registers, flags and window of a state, for messages.
pub fn show_state(s: &CpuState) -> String {
    let mut out = String::new();
    for (r, v) in Reg::ALL.iter().zip(s.regs) {
        let _ = write!(out, "{}={v:08x} ", r.name());
    }
    out.push_str("flags=");
    for (mask, name) in flags::NAMES {
        if s.eflags & mask != 0 {
            out.push_str(name);
            out.push(' ');
        }
    }
    let _ = write!(out, "({:#x})\n      window @{SCRATCH_BASE:#x}:", s.eflags);
    for (i, chunk) in s.mem.chunks(32).enumerate() {
        let _ = write!(out, "\n        +{:03x}: ", i * 32);
        for b in chunk {
            let _ = write!(out, "{b:02x}");
        }
    }
    out
}

/// The decoupled parts of a lifted instruction, one per line.
pub fn show_parts(lifted: &Lifted) -> String {
    let mut out = String::new();
    for p in &lifted.parts {
        let native = if p.native.is_some() {
            ""
        } else {
            "  (no native)"
        };
        let _ = writeln!(out, "      [{}] {}{native}", p.index, p.text);
    }
    if lifted.parts.is_empty() {
        out.push_str("      (no parts)\n");
    }
    out
}

/// The name of a flag in messages.
pub fn flag_name(f: Flag) -> &'static str {
    ["CF", "PF", "AF", "ZF", "SF", "OF", "DF"][f.index()]
}

/// Differences between the processor's outcome and wiper's execution, one
/// line each: registers, the flags not in `ex.undefined`, the next `eip` and
/// every window byte (plus any byte wiper wrote outside the window).
pub fn differences(cpu: &Outcome, ex: &Executed) -> Vec<String> {
    let mut diffs = Vec::new();
    for r in Reg::ALL {
        let (c, w) = (cpu.state.regs[r.index()], ex.state.regs[r.index()]);
        if c != w {
            diffs.push(format!("{}: cpu {c:#010x}, wiper {w:#010x}", r.name()));
        }
    }
    for f in Flag::ALL {
        if ex.undefined.contains(&f) {
            continue;
        }
        let c = cpu.state.eflags & f.eflags_bit() != 0;
        let w = ex.state.flags[f.index()];
        if c != w {
            diffs.push(format!(
                "{}: cpu {}, wiper {}",
                flag_name(f),
                u8::from(c),
                u8::from(w)
            ));
        }
    }
    if cpu.next_eip != ex.state.eip {
        diffs.push(format!(
            "next eip: cpu {:#x}, wiper {:#x}",
            cpu.next_eip, ex.state.eip
        ));
    }
    let end = SCRATCH_BASE + cpu.state.mem.len() as u32;
    let keys = (
        ex.state.mem.first_key_value(),
        ex.state.mem.last_key_value(),
    );
    if ex.state.mem.len() == cpu.state.mem.len()
        && keys.0.is_some_and(|(&a, _)| a == SCRATCH_BASE)
        && keys.1.is_some_and(|(&a, _)| a == end - 1)
    {
        // Exactly the window's bytes (the usual case; this runs for every state).
        for ((&addr, &w), &c) in ex.state.mem.iter().zip(&cpu.state.mem) {
            if w != c {
                diffs.push(format!("mem[{addr:#x}]: cpu {c:#04x}, wiper {w:#04x}"));
            }
        }
        return diffs;
    }
    // Walk the window in address order.
    let mut wiper = ex.state.mem.range(SCRATCH_BASE..end).peekable();
    for (i, &c) in cpu.state.mem.iter().enumerate() {
        let addr = SCRATCH_BASE + i as u32;
        match wiper.peek() {
            Some(&(&a, &w)) if a == addr => {
                wiper.next();
                if w != c {
                    diffs.push(format!("mem[{addr:#x}]: cpu {c:#04x}, wiper {w:#04x}"));
                }
            }
            _ => diffs.push(format!("mem[{addr:#x}]: cpu {c:#04x}, wiper lost the byte")),
        }
    }
    let outside: Vec<u32> = ex
        .state
        .mem
        .keys()
        .copied()
        .filter(|&a| !(SCRATCH_BASE..end).contains(&a))
        .collect();
    if let (Some(first), Some(last)) = (outside.first(), outside.last()) {
        diffs.push(format!(
            "wiper wrote {} byte(s) outside the window ({first:#x}..={last:#x}); the cpu wrote none there",
            outside.len()
        ));
    }
    diffs
}

/// The flags iced-x86 says `ins` leaves undefined.
pub fn iced_undefined(ins: &Instruction) -> BTreeSet<Flag> {
    let u = ins.rflags_undefined();
    Flag::ALL
        .into_iter()
        .filter(|f| u & f.rflags_bit() != 0)
        .collect()
}

/// Flags wiper reports undefined although iced-x86 (and the Intel manual)
/// define them for this instruction: such a flag would never be compared, so
/// it is reported. One exception, from the Intel manual: `shl`/`shr`/`sal` of
/// an 8- or 16-bit operand leave CF undefined when the (masked) count is at
/// least the operand width, which iced's per-form table cannot express.
pub fn suspicious_undefined(ins: &Instruction, s: &CpuState, ex: &Executed) -> Vec<Flag> {
    let iced = iced_undefined(ins);
    ex.undefined
        .iter()
        .copied()
        .filter(|f| !iced.contains(f))
        .filter(|&f| !(f == Flag::Cf && narrow_shift_past_width(ins, s)))
        .collect()
}

/// Whether `ins` is `shl`/`shr`/`sal` of an 8/16-bit operand whose masked
/// count in state `s` is at least the operand width.
fn narrow_shift_past_width(ins: &Instruction, s: &CpuState) -> bool {
    use iced_x86::{Mnemonic, OpKind, Register};
    if !matches!(
        ins.mnemonic(),
        Mnemonic::Shl | Mnemonic::Shr | Mnemonic::Sal
    ) {
        return false;
    }
    let width = match ins.op_kind(0) {
        OpKind::Register => ins.op_register(0).size() as u32 * 8,
        _ => ins.memory_size().size() as u32 * 8,
    };
    if width >= 32 {
        return false;
    }
    let count = match ins.op_kind(1) {
        OpKind::Register if ins.op_register(1) == Register::CL => s.regs[wiper_oracle::ECX] & 0xff,
        OpKind::Immediate8 => ins.immediate8().into(),
        _ => 1,
    } & 31;
    count >= width
}

/// Mask of iced `RflagsBits` for the seven modelled flags.
pub const MODELLED_RFLAGS: u32 = RflagsBits::CF
    | RflagsBits::PF
    | RflagsBits::AF
    | RflagsBits::ZF
    | RflagsBits::SF
    | RflagsBits::OF
    | RflagsBits::DF;

/// A fresh pool and the lifted instruction, or the lift error as text.
pub fn lift(ins: &Instruction) -> Result<(ExprPool, Lifted), String> {
    let mut pool = ExprPool::new();
    match wiper_sem::lift(&mut pool, ins) {
        Ok(l) => Ok((pool, l)),
        Err(e) => Err(e.to_string()),
    }
}

/// Number of random states per form: `default`, or the value of the
/// environment variable `var`.
pub fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
