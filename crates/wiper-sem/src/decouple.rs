//! The builder of decoupled sequences: temporaries, part emission and
//! normalization, native instructions for parts that are real IA-32
//! instructions, and access to the original instruction's operands.

use iced_x86::{Code, Instruction, MemoryOperand, OpKind, Register};
use wiper_qfbv::{ExprId, ExprPool};
use wiper_x86::reg::is_high_byte;

use crate::loc::{is_undefined_var, loc_var, Flag, Loc, Reg, Temp};
use crate::part::{Barrier, Effect, Part, Value};
use crate::text;

/// `dst := e`.
pub(crate) fn set(dst: Loc, e: ExprId) -> Effect {
    Effect {
        dst,
        value: Value::Expr(e),
    }
}

/// `flag := e`.
pub(crate) fn set_flag(flag: Flag, e: ExprId) -> Effect {
    set(Loc::Flag(flag), e)
}

/// `flag := undefined`.
pub(crate) fn undef(flag: Flag) -> Effect {
    Effect {
        dst: Loc::Flag(flag),
        value: Value::Undefined,
    }
}

/// A decoupled sequence under construction for one original instruction.
pub(crate) struct Seq<'a> {
    /// The pool every formula is built in.
    pub pool: &'a mut ExprPool,
    /// The original instruction.
    pub ins: &'a Instruction,
    parts: Vec<Part>,
    temps: u8,
}

impl<'a> Seq<'a> {
    /// An empty sequence for `ins`.
    pub fn new(pool: &'a mut ExprPool, ins: &'a Instruction) -> Self {
        Seq {
            pool,
            ins,
            parts: Vec::new(),
            temps: 0,
        }
    }

    /// The finished parts.
    pub fn finish(self) -> Vec<Part> {
        self.parts
    }

    /// A fresh temporary.
    pub fn temp(&mut self) -> Temp {
        let t = Temp(self.temps);
        self.temps += 1;
        t
    }

    /// The variable of `loc` (its value before the part being built).
    pub fn var(&mut self, loc: Loc) -> ExprId {
        loc_var(self.pool, loc)
    }

    /// The effect `t := v`, zero-extending `v` to 32 bits.
    pub fn set_temp(&mut self, t: Temp, v: ExprId) -> Effect {
        let v = self.pool.zext(v, 32);
        set(Loc::Temp(t), v)
    }

    /// The low `width` bits of temporary `t`.
    pub fn temp_value(&mut self, t: Temp, width: u32) -> ExprId {
        let v = self.var(Loc::Temp(t));
        self.pool.trunc(v, width)
    }

    /// The variable of flag `f`.
    pub fn flag(&mut self, f: Flag) -> ExprId {
        self.var(Loc::Flag(f))
    }

    /// Appends a part. Effects that assign a location its own value are
    /// dropped, and a flag whose formula is just its undefined-value variable
    /// becomes [`Value::Undefined`].
    pub fn part(&mut self, text: String, native: Option<Instruction>, effects: Vec<Effect>) {
        let mut kept = Vec::with_capacity(effects.len());
        for mut e in effects {
            if let Value::Expr(x) = e.value {
                if x == loc_var(self.pool, e.dst) {
                    continue;
                }
                if self
                    .pool
                    .as_var(x)
                    .is_some_and(|v| is_undefined_var(self.pool, v))
                {
                    e.value = Value::Undefined;
                }
            }
            debug_assert!(
                kept.iter().all(|k: &Effect| k.dst != e.dst),
                "{text}: two effects on {}",
                e.dst
            );
            kept.push(e);
        }
        let index = u8::try_from(self.parts.len()).expect("short sequences");
        self.parts.push(Part {
            origin: self.ins.ip32(),
            index,
            text,
            native,
            effects: kept,
            fault: None,
            barrier: None,
            opaque: None,
        });
    }

    /// Appends a part that is the IA-32 instruction `native`.
    pub fn native(&mut self, mut native: Instruction, effects: Vec<Effect>) {
        native.set_ip32(self.ins.ip32());
        let text = text::instruction(&native);
        self.part(text, Some(native), effects);
    }

    /// Appends the original instruction itself as a part (the instruction
    /// needs no decoupling).
    pub fn whole(&mut self, effects: Vec<Effect>) {
        let text = text::instruction(self.ins);
        self.part(text, Some(*self.ins), effects);
    }

    /// Appends a pseudo-instruction part.
    pub fn pseudo(&mut self, mnemonic: &str, operands: &[&str], effects: Vec<Effect>) {
        self.part(text::pseudo(mnemonic, operands), None, effects);
    }

    /// Appends the original instruction as a barrier part.
    pub fn barrier(&mut self, barrier: Barrier) {
        self.whole(Vec::new());
        self.parts.last_mut().expect("just pushed").barrier = Some(barrier);
    }

    /// Appends the original instruction as an opaque part reading `inputs`
    /// ([`crate::Opaque`]).
    pub fn opaque(&mut self, effects: Vec<Effect>, inputs: Vec<ExprId>) {
        self.whole(effects);
        self.parts.last_mut().expect("just pushed").opaque = Some(crate::part::Opaque { inputs });
    }

    /// Gives the last part the divide-error condition `cond`.
    pub fn set_fault(&mut self, cond: ExprId) {
        self.parts.last_mut().expect("a part").fault = Some(cond);
    }

    // ----- operands of the original instruction ------------------------------

    /// Width in bits of operand `op`.
    pub fn width(&self, op: u32) -> u32 {
        match self.ins.op_kind(op) {
            OpKind::Register => 8 * self.ins.op_register(op).size() as u32,
            OpKind::Memory => 8 * self.ins.memory_size().size() as u32,
            OpKind::Immediate8 => 8,
            OpKind::Immediate16 | OpKind::Immediate8to16 => 16,
            OpKind::Immediate32 | OpKind::Immediate8to32 | OpKind::NearBranch32 => 32,
            k => unreachable!("operand kind {k:?} of a supported instruction"),
        }
    }

    /// The address a memory access of the original instruction reaches: its
    /// effective address plus the base of an `fs`/`gs` segment (the other
    /// segments are flat: base 0).
    pub fn mem_addr(&mut self) -> ExprId {
        let a = self.addr();
        let base = match self.ins.memory_segment() {
            Register::FS => Loc::FsBase,
            Register::GS => Loc::GsBase,
            _ => return a,
        };
        let b = self.var(base);
        self.pool.add(b, a)
    }

    /// The effective address of the memory operand (its offset in the
    /// segment; what `lea` computes), as a formula.
    pub fn addr(&mut self) -> ExprId {
        let ins = self.ins;
        let mut a = self.pool.bv(u64::from(ins.memory_displacement32()), 32);
        if ins.memory_base() != Register::None {
            let b = self.gpr32(ins.memory_base());
            a = self.pool.add(b, a);
        }
        if ins.memory_index() != Register::None {
            let i = self.gpr32(ins.memory_index());
            let scale = self.pool.bv(u64::from(ins.memory_index_scale()), 32);
            let scaled = self.pool.mul(i, scale);
            a = self.pool.add(a, scaled);
        }
        a
    }

    /// The value of a 32-bit register used in an address.
    fn gpr32(&mut self, r: Register) -> ExprId {
        debug_assert!(r.is_gpr32(), "32-bit addressing only");
        self.get_reg(r)
    }

    /// The value of operand `op` (its width is [`Seq::width`]).
    pub fn read(&mut self, op: u32) -> ExprId {
        let w = self.width(op);
        match self.ins.op_kind(op) {
            OpKind::Register => self.get_reg(self.ins.op_register(op)),
            OpKind::Memory => {
                let a = self.mem_addr();
                self.load(a, w)
            }
            OpKind::NearBranch32 => self.pool.bv(u64::from(self.ins.near_branch32()), 32),
            _ => self.pool.bv(self.ins.immediate(op), w),
        }
    }

    /// The effect that writes `v` to operand `op`.
    pub fn write(&mut self, op: u32, v: ExprId) -> Effect {
        match self.ins.op_kind(op) {
            OpKind::Register => self.set_reg(self.ins.op_register(op), v),
            OpKind::Memory => {
                let a = self.mem_addr();
                self.store(a, v)
            }
            k => unreachable!("write to operand kind {k:?}"),
        }
    }

    /// Whether operand `op` is a memory operand.
    pub fn is_mem(&self, op: u32) -> bool {
        self.ins.op_kind(op) == OpKind::Memory
    }

    /// Whether operand `op` reads `esp`: the register itself (any part of
    /// it), or a memory operand addressed through it.
    pub fn uses_esp(&self, op: u32) -> bool {
        match self.ins.op_kind(op) {
            OpKind::Register => Reg::from_iced(self.ins.op_register(op)) == Some(Reg::Esp),
            OpKind::Memory => {
                self.ins.memory_base() == Register::ESP || self.ins.memory_index() == Register::ESP
            }
            _ => false,
        }
    }

    /// The text of operand `op` of the original instruction.
    pub fn op_text(&self, op: u32) -> String {
        text::operand(self.ins, op)
    }

    /// The value of an iced general register of any size.
    pub fn get_reg(&mut self, r: Register) -> ExprId {
        let full = self.var(Loc::Reg(Reg::from_iced(r).expect("general register")));
        match r.size() {
            4 => full,
            2 => self.pool.extract(full, 15, 0),
            _ if is_high_byte(r) => self.pool.extract(full, 15, 8),
            _ => self.pool.extract(full, 7, 0),
        }
    }

    /// The effect that writes `v` to an iced general register of any size; the
    /// other bits of the 32-bit register keep their value.
    pub fn set_reg(&mut self, r: Register, v: ExprId) -> Effect {
        let reg = Reg::from_iced(r).expect("general register");
        let full = self.var(Loc::Reg(reg));
        let p = &mut *self.pool;
        let value = match r.size() {
            4 => v,
            2 => {
                let hi = p.extract(full, 31, 16);
                p.concat(hi, v)
            }
            _ if is_high_byte(r) => {
                let hi = p.extract(full, 31, 16);
                let lo = p.extract(full, 7, 0);
                let x = p.concat(hi, v);
                p.concat(x, lo)
            }
            _ => {
                let hi = p.extract(full, 31, 8);
                p.concat(hi, v)
            }
        };
        set(Loc::Reg(reg), value)
    }

    /// A little-endian load of `width` bits at `addr`.
    pub fn load(&mut self, addr: ExprId, width: u32) -> ExprId {
        let mem = self.var(Loc::Mem);
        let n = u8::try_from(width / 8).expect("byte count");
        self.pool.load(mem, addr, n)
    }

    /// The effect that stores `v` at `addr`.
    pub fn store(&mut self, addr: ExprId, v: ExprId) -> Effect {
        let mem = self.var(Loc::Mem);
        set(Loc::Mem, self.pool.store(mem, addr, v))
    }

    /// The memory operand of the original instruction, for native parts.
    pub fn mem_operand(&self) -> MemoryOperand {
        let ins = self.ins;
        MemoryOperand::new(
            ins.memory_base(),
            ins.memory_index(),
            ins.memory_index_scale(),
            i64::from(ins.memory_displacement32() as i32),
            ins.memory_displ_size(),
            false,
            ins.segment_prefix(),
        )
    }
}

/// Builders of the native instructions decoupled sequences use.
pub(crate) mod native {
    use super::*;

    /// Unwraps an instruction built from operands known to be valid.
    fn ok(r: Result<Instruction, iced_x86::IcedError>) -> Instruction {
        r.expect("valid native instruction")
    }

    /// `[esp+disp]`.
    pub fn esp_at(disp: i64) -> MemoryOperand {
        MemoryOperand::with_base_displ(Register::ESP, disp)
    }

    /// `lea esp,[esp+delta]`.
    pub fn lea_esp(delta: i64) -> Instruction {
        ok(Instruction::with2(
            Code::Lea_r32_m,
            Register::ESP,
            esp_at(delta),
        ))
    }

    /// `mov DWORD PTR [esp],reg`.
    pub fn store_top(reg: Register) -> Instruction {
        ok(Instruction::with2(Code::Mov_rm32_r32, esp_at(0), reg))
    }

    /// `mov DWORD PTR [esp],imm`.
    pub fn store_top_imm(imm: u32) -> Instruction {
        ok(Instruction::with2(Code::Mov_rm32_imm32, esp_at(0), imm))
    }

    /// `mov reg,DWORD PTR [esp]`.
    pub fn load_top(reg: Register) -> Instruction {
        ok(Instruction::with2(Code::Mov_r32_rm32, reg, esp_at(0)))
    }

    /// `mov dst,src` for registers of the same size.
    pub fn mov_rr(dst: Register, src: Register) -> Instruction {
        let code = match dst.size() {
            4 => Code::Mov_rm32_r32,
            2 => Code::Mov_rm16_r16,
            _ => Code::Mov_rm8_r8,
        };
        ok(Instruction::with2(code, dst, src))
    }

    /// `jmp target`.
    pub fn jmp(target: u32) -> Instruction {
        ok(Instruction::with_branch(
            Code::Jmp_rel32_32,
            u64::from(target),
        ))
    }

    /// `jmp reg`.
    pub fn jmp_reg(reg: Register) -> Instruction {
        ok(Instruction::with1(Code::Jmp_rm32, reg))
    }

    /// A two-operand instruction `code reg_or_mem, reg` or `code reg, reg_or_mem`.
    pub fn with_reg_mem(code: Code, a: Operand, b: Operand) -> Instruction {
        match (a, b) {
            (Operand::Reg(x), Operand::Reg(y)) => ok(Instruction::with2(code, x, y)),
            (Operand::Mem(m), Operand::Reg(y)) => ok(Instruction::with2(code, m, y)),
            (Operand::Reg(x), Operand::Mem(m)) => ok(Instruction::with2(code, x, m)),
            (Operand::Mem(_), Operand::Mem(_)) => unreachable!("two memory operands"),
        }
    }

    /// A register or memory operand of a native instruction.
    #[derive(Copy, Clone)]
    pub enum Operand {
        /// A register.
        Reg(Register),
        /// A memory operand.
        Mem(MemoryOperand),
    }
}

impl Seq<'_> {
    /// Operand `op` of the original (register or memory) as a native operand.
    pub fn native_operand(&self, op: u32) -> native::Operand {
        match self.ins.op_kind(op) {
            OpKind::Register => native::Operand::Reg(self.ins.op_register(op)),
            OpKind::Memory => native::Operand::Mem(self.mem_operand()),
            k => unreachable!("native operand of kind {k:?}"),
        }
    }
}
