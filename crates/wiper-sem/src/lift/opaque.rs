//! Opaque parts: instructions wiper has no formulas for (x87, SSE, `cpuid`,
//! `rdtsc`, ...) but can pass through. Their footprint comes from iced's
//! `InstructionInfoFactory`: the registers, flags and memory operands they
//! read become [`crate::Opaque::inputs`], and each location they write gets
//! an effect that reaches a fresh opaque-value variable (`eax'`, `cf'`,
//! `mem0_64'`). Every opaque part reads and writes `fpu`, so opaque parts stay
//! in order among themselves.
//!
//! What cannot be passed through this way is refused with the reason:
//! control transfers, `rep` string instructions (their memory footprint
//! depends on `ecx`), writes to segment registers, 16-bit addressing,
//! vector-indexed memory and memory operands of unknown size. Memory
//! through `fs`/`gs` is addressed from `fs_base`/`gs_base`.

use std::cell::RefCell;

use iced_x86::{CodeSize, FlowControl, InstructionInfoFactory, OpAccess, Register, UsedMemory};
use wiper_qfbv::ExprId;

use crate::decouple::{set, set_flag, undef, Seq};
use crate::loc::{opaque_var, Flag, Loc, Reg};
use crate::part::Effect;

thread_local! {
    /// iced's instruction-info factory (it keeps buffers between calls).
    static FACTORY: RefCell<InstructionInfoFactory> = RefCell::new(InstructionInfoFactory::new());
}

/// Most bytes one load or store of an opaque part covers (wider operands
/// are split into chunks).
const CHUNK: u32 = 8;

/// How an opaque instruction uses one general register.
#[derive(Default, Clone, Copy)]
struct RegUse {
    /// Read (also when written in part or conditionally: the kept bits or
    /// the kept value flow through).
    read: bool,
    /// The widest sub-register written, if any.
    written: Option<Register>,
}

/// The footprint iced reports, gathered before formulas are built.
struct Footprint {
    regs: [RegUse; 8],
    /// `(access, memory operand)` for every memory access.
    memory: Vec<(OpAccess, UsedMemory)>,
}

/// Lifts the instruction of `seq` as one opaque part, or says why it cannot
/// be passed through.
pub(super) fn lift(seq: &mut Seq) -> Result<(), String> {
    let ins = seq.ins;
    if ins.flow_control() != FlowControl::Next {
        return Err("it transfers control".into());
    }
    if ins.is_string_instruction() && (ins.has_rep_prefix() || ins.has_repne_prefix()) {
        return Err("a repeated string instruction without semantics".into());
    }
    let footprint = footprint(seq)?;
    let mut inputs: Vec<ExprId> = Vec::new();
    let mut effects: Vec<Effect> = Vec::new();
    registers(seq, &footprint, &mut inputs, &mut effects);
    flags(seq, &mut inputs, &mut effects);
    memory(seq, &footprint, &mut inputs, &mut effects);
    let fpu = seq.var(Loc::Fpu);
    inputs.push(fpu);
    let new = opaque_var(seq.pool, "fpu", 32);
    effects.push(set(Loc::Fpu, new));
    let mut unique = Vec::with_capacity(inputs.len());
    for i in inputs {
        if !unique.contains(&i) {
            unique.push(i);
        }
    }
    seq.opaque(effects, unique);
    Ok(())
}

/// Reads iced's instruction info for the instruction of `seq`.
fn footprint(seq: &Seq) -> Result<Footprint, String> {
    // Instructions built by later stages (`Instruction::with*`) have no code
    // size, which iced would read as 64-bit (`rsp` for `esp`).
    let mut ins = *seq.ins;
    ins.set_code_size(CodeSize::Code32);
    FACTORY.with(|f| {
        let mut f = f.borrow_mut();
        let info = f.info(&ins);
        let mut regs = [RegUse::default(); 8];
        for used in info.used_registers() {
            let r = used.register();
            if r.is_segment_register() {
                if !matches!(used.access(), OpAccess::Read | OpAccess::CondRead) {
                    return Err(format!("it writes the segment register {r:?}").to_lowercase());
                }
                continue;
            }
            let Some(reg) = r.is_gpr().then(|| Reg::from_iced(r)).flatten() else {
                continue; // x87/SSE/...: the `fpu` location
            };
            let u = &mut regs[reg.index()];
            match used.access() {
                OpAccess::Read | OpAccess::CondRead => u.read = true,
                OpAccess::Write if r.size() == 4 => u.written = Some(widest(u.written, r)),
                OpAccess::Write
                | OpAccess::CondWrite
                | OpAccess::ReadWrite
                | OpAccess::ReadCondWrite => {
                    u.read = true;
                    u.written = Some(widest(u.written, r));
                }
                OpAccess::None | OpAccess::NoMemAccess => {}
            }
        }
        let mut memory = Vec::new();
        for m in info.used_memory() {
            if matches!(m.access(), OpAccess::None | OpAccess::NoMemAccess) {
                continue;
            }
            if m.vsib_size() != 0 || m.index().is_vector_register() {
                return Err("vector-indexed memory".into());
            }
            if m.address_size() == CodeSize::Code16 {
                return Err("16-bit addressing".into());
            }
            if m.memory_size().size() == 0 {
                return Err("a memory operand of unknown size".into());
            }
            let gpr = |r: Register| r == Register::None || r.is_gpr();
            if !gpr(m.base()) || !gpr(m.index()) {
                return Err(format!("an address with {:?}", m.base()).to_lowercase());
            }
            memory.push((m.access(), *m));
        }
        Ok(Footprint { regs, memory })
    })
}

/// The wider of a sub-register written before (if any) and `r`, both of
/// the same 32-bit register: `ah` and `al` together make `ax`.
fn widest(before: Option<Register>, r: Register) -> Register {
    let Some(b) = before else { return r };
    if b.size() != r.size() || b == r {
        return if b.size() >= r.size() { b } else { r };
    }
    // Two different bytes (`al`, `ah`) of one register.
    match Reg::from_iced(r).expect("a general register") {
        Reg::Eax => Register::AX,
        Reg::Ecx => Register::CX,
        Reg::Edx => Register::DX,
        _ => Register::BX,
    }
}

/// Register inputs and effects. `esp` moves by iced's stack-pointer
/// increment when the instruction has one.
fn registers(seq: &mut Seq, fp: &Footprint, inputs: &mut Vec<ExprId>, effects: &mut Vec<Effect>) {
    for reg in Reg::ALL {
        let u = fp.regs[reg.index()];
        let var = seq.var(Loc::Reg(reg));
        if u.read {
            inputs.push(var);
        }
        let Some(w) = u.written else { continue };
        if reg == Reg::Esp && seq.ins.stack_pointer_increment() != 0 {
            let inc = seq.ins.stack_pointer_increment() as i64 as u64;
            let k = seq.pool.bv(inc, 32);
            let v = seq.pool.add(var, k);
            effects.push(set(Loc::Reg(reg), v));
            continue;
        }
        let name = format!("{w:?}").to_lowercase();
        let new = opaque_var(seq.pool, &name, 8 * w.size() as u32);
        effects.push(seq.set_reg(w, new));
    }
}

/// Flag inputs and effects, from iced's flag masks (flags written are read
/// too: a write may leave the old value).
fn flags(seq: &mut Seq, inputs: &mut Vec<ExprId>, effects: &mut Vec<Effect>) {
    let ins = seq.ins;
    for f in Flag::ALL {
        let bit = f.rflags_bit();
        if (ins.rflags_read() | ins.rflags_written()) & bit != 0 {
            let v = seq.flag(f);
            inputs.push(v);
        }
        if ins.rflags_written() & bit != 0 {
            let new = opaque_var(seq.pool, f.name(), 1);
            effects.push(set_flag(f, new));
        } else if ins.rflags_cleared() & bit != 0 || ins.rflags_set() & bit != 0 {
            let v = seq.pool.bit(ins.rflags_set() & bit != 0);
            effects.push(set_flag(f, v));
        } else if ins.rflags_undefined() & bit != 0 {
            effects.push(undef(f));
        }
    }
}

/// Memory inputs (a load per chunk read) and the memory effect (a store of
/// a fresh value per chunk written).
fn memory(seq: &mut Seq, fp: &Footprint, inputs: &mut Vec<ExprId>, effects: &mut Vec<Effect>) {
    let mut mem = seq.var(Loc::Mem);
    let mut stored = 0;
    for (access, m) in &fp.memory {
        let base = address(seq, m);
        let size = m.memory_size().size() as u32;
        let writes = !matches!(access, OpAccess::Read | OpAccess::CondRead);
        let reads = *access != OpAccess::Write;
        for start in (0..size).step_by(CHUNK as usize) {
            let n = CHUNK.min(size - start);
            let off = seq.pool.bv(u64::from(start), 32);
            let a = seq.pool.add(base, off);
            if reads {
                let v = seq.load(a, 8 * n);
                inputs.push(v);
            }
            if writes {
                let v = opaque_var(seq.pool, &format!("mem{stored}_{}", 8 * n), 8 * n);
                stored += 1;
                mem = seq.pool.store(mem, a, v);
            }
        }
    }
    if stored > 0 {
        effects.push(set(Loc::Mem, mem));
    }
}

/// The address of a memory operand iced reports: the `fs`/`gs` base (other
/// segments are flat), plus displacement, base and scaled index (narrow
/// index registers, `al` of `xlat`, zero-extended).
fn address(seq: &mut Seq, m: &UsedMemory) -> ExprId {
    let mut a = seq.pool.bv(m.displacement() & 0xffff_ffff, 32);
    let segment = match m.segment() {
        Register::FS => Some(Loc::FsBase),
        Register::GS => Some(Loc::GsBase),
        _ => None,
    };
    if let Some(base) = segment {
        let b = seq.var(base);
        a = seq.pool.add(b, a);
    }
    for (r, scale) in [(m.base(), 1), (m.index(), m.scale())] {
        if r == Register::None {
            continue;
        }
        let v = seq.get_reg(r);
        let v = seq.pool.zext(v, 32);
        let v = if scale == 1 {
            v
        } else {
            let s = seq.pool.bv(u64::from(scale), 32);
            seq.pool.mul(v, s)
        };
        a = seq.pool.add(a, v);
    }
    a
}

#[cfg(test)]
mod tests {
    use iced_x86::Register::*;

    use super::widest;

    /// Two different bytes of one register make its low word; otherwise
    /// the wider of the two (the first on a tie), or the only one.
    #[test]
    fn the_widest_write_of_a_register_covers_every_part_written() {
        assert_eq!(widest(Some(AL), AH), AX);
        assert_eq!(widest(Some(CH), CL), CX);
        assert_eq!(widest(Some(DL), DH), DX);
        assert_eq!(widest(Some(BH), BL), BX);
        assert_eq!(widest(Some(AX), AL), AX);
        assert_eq!(widest(Some(AL), EAX), EAX);
        assert_eq!(widest(Some(AH), AH), AH);
        assert_eq!(widest(Option::None, AH), AH);
    }
}
