//! Forward evaluation of one path of blocks: what each register and memory
//! cell holds as a [`Value`], and the ranges ([`Fact`]s) that the path's
//! conditional branches prove.

use iced_x86::{
    ConditionCode, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind,
    Register,
};
use wiper_elf::Binary;

use super::range::Circ;
use super::value::{Lin, Src, Value};
use crate::locate::pc_thunk_register;
use crate::{abi, Reg};

/// What the evaluation asks of the function around the path.
pub(crate) trait Context {
    /// The binary.
    fn binary(&self) -> &Binary;
    /// Bytes of arguments the call at `call` pops on return, when known.
    fn pops(&self, call: u32) -> Option<u32>;
    /// The one value the function's frame slot at `offset` (from `esp` at the
    /// function's entry) ever holds, when there is one; `depth` limits the
    /// analyses this asks for in turn.
    fn slot(&self, offset: i32, depth: u32) -> Option<u32>;
}

/// `(src + inner) mod 2^bits` lies in `range` on this path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fact {
    pub src: Src,
    pub bits: u8,
    pub inner: u32,
    pub range: Circ,
}

/// A memory cell whose content the path knows.
#[derive(Debug, Clone, Copy)]
struct Cell {
    addr: Value,
    size: u32,
    value: Value,
}

/// The last comparison: `lhs - rhs` in `bits` bits set the flags.
#[derive(Debug, Clone, Copy)]
struct Compare {
    lhs: Value,
    rhs: Value,
    bits: u8,
}

/// The state of the evaluation of one path.
pub(crate) struct Eval<'a> {
    ctx: &'a dyn Context,
    /// `esp` and `ebp` at the path's start, from `esp` at the function's
    /// entry, when known.
    heights: (Option<i32>, Option<i32>),
    depth: u32,
    regs: [Value; 8],
    /// 8- and 16-bit registers written on the path, with their values.
    narrow: Vec<(Register, Value)>,
    cells: Vec<Cell>,
    /// Address and size of every load, by [`Src::Load`] number.
    pub loads: Vec<(Value, u32)>,
    /// The narrow value `(src + inner) mod 2^bits` each [`Src::Sext`]
    /// sign-extends.
    pub sexts: Vec<(Src, u8, u32)>,
    /// Results of `bsf`/`bsr` and the value `(src + inner) mod 2^bits` they
    /// scanned: below `bits` when that is not 0.
    pub scans: Vec<(Src, Src, u8, u32)>,
    pub facts: Vec<Fact>,
    flags: Option<Compare>,
    fresh: u32,
    info: InstructionInfoFactory,
}

fn reg_index(r: Register) -> Option<usize> {
    Reg::from_iced(r).map(Reg::index)
}

impl<'a> Eval<'a> {
    /// The state at the start of a path: every register its constant in
    /// `consts` or its own unknown; `heights` are those of `esp` and `ebp`
    /// there, `depth` limits what the evaluation asks of `ctx`.
    pub fn new(
        ctx: &'a dyn Context,
        consts: [Option<u32>; 8],
        heights: (Option<i32>, Option<i32>),
        depth: u32,
    ) -> Eval<'a> {
        Eval {
            ctx,
            heights,
            depth,
            regs: std::array::from_fn(|i| match consts[i] {
                Some(c) => Value::Const(c),
                None => Value::Lin(Lin::of(Src::Reg(i), 32)),
            }),
            narrow: Vec::new(),
            cells: Vec::new(),
            loads: Vec::new(),
            sexts: Vec::new(),
            scans: Vec::new(),
            facts: Vec::new(),
            flags: None,
            fresh: 0,
            info: InstructionInfoFactory::new(),
        }
    }

    /// The binary.
    pub fn binary(&self) -> &'a Binary {
        self.ctx.binary()
    }

    /// The 32-bit registers that hold constants.
    pub fn consts(&self) -> [Option<u32>; 8] {
        std::array::from_fn(|i| match self.regs[i] {
            Value::Const(c) => Some(c),
            _ => None,
        })
    }

    fn fresh(&mut self, bits: u8) -> Value {
        self.fresh += 1;
        Value::narrow(Src::Fresh(self.fresh), bits, 0)
    }

    /// The value of register `r` (zero-extended when narrow).
    pub fn reg(&self, r: Register) -> Value {
        let Some(i) = reg_index(r) else {
            return Value::Unknown;
        };
        if r.size() == 4 {
            return self.regs[i];
        }
        if let Some((_, v)) = self.narrow.iter().find(|(n, _)| *n == r) {
            return *v;
        }
        if crate::reg::is_high_byte(r) || self.narrow.iter().any(|(n, _)| reg_index(*n) == Some(i))
        {
            return Value::Unknown;
        }
        self.regs[i].low(8 * r.size() as u8)
    }

    fn set_reg(&mut self, r: Register, v: Value) {
        let Some(i) = reg_index(r) else { return };
        self.narrow.retain(|(n, _)| reg_index(*n) != Some(i));
        if r.size() == 4 {
            self.regs[i] = v;
        } else {
            self.regs[i] = Value::Unknown;
            if !crate::reg::is_high_byte(r) {
                self.narrow.push((r, v));
            }
        }
    }

    /// The address of `ins`'s memory operand (`Unknown` with an `fs`/`gs`
    /// segment).
    pub fn address(&self, ins: &Instruction) -> Value {
        if matches!(ins.memory_segment(), Register::FS | Register::GS) {
            return Value::Unknown;
        }
        let mut a = Value::Const(ins.memory_displacement32());
        if ins.memory_base() != Register::None {
            a = a.add(self.reg(ins.memory_base()));
        }
        if ins.memory_index() != Register::None {
            a = a.add(self.reg(ins.memory_index()).mul(ins.memory_index_scale()));
        }
        a
    }

    /// What `size` bytes at `addr` hold: a known cell, a constant of
    /// read-only memory, or a new unknown remembered for reloads.
    pub fn load(&mut self, addr: Value, size: u32) -> Value {
        let bits = (8 * size) as u8;
        if addr == Value::Unknown {
            return self.fresh(bits);
        }
        if let Some(c) = self
            .cells
            .iter()
            .rev()
            .find(|c| c.addr == addr && c.size >= size)
        {
            return c.value.low(bits);
        }
        if let Value::Const(a) = addr {
            if self.binary().is_constant(a) {
                if let Some(b) = self.binary().read(a, size) {
                    let mut word = [0u8; 4];
                    word[..b.len()].copy_from_slice(&b);
                    return Value::Const(u32::from_le_bytes(word));
                }
            }
        }
        let slot = self.frame_offset(addr).filter(|_| size == 4);
        if let Some(c) = slot.and_then(|o| self.ctx.slot(o, self.depth)) {
            self.cells.push(Cell {
                addr,
                size,
                value: Value::Const(c),
            });
            return Value::Const(c);
        }
        let value = Value::narrow(Src::Load(self.loads.len() as u32), bits, 0);
        self.loads.push((addr, size));
        self.cells.push(Cell { addr, size, value });
        value
    }

    /// Where `addr` is in the function's frame (from `esp` at its entry),
    /// when it is `esp` or `ebp` at the path's start plus a constant.
    fn frame_offset(&self, addr: Value) -> Option<i32> {
        let Value::Lin(l) = addr else { return None };
        if l.scale != 1 || l.bits != 32 {
            return None;
        }
        let base = match l.src {
            Src::Reg(i) if i == Reg::Esp.index() => self.heights.0?,
            Src::Reg(i) if i == Reg::Ebp.index() => self.heights.1?,
            _ => return None,
        };
        Some(base.wrapping_add(l.outer as i32))
    }

    fn store(&mut self, addr: Value, size: u32, value: Value) {
        let disjoint = |c: &Cell| match c.addr.difference(addr) {
            // The cell starts `d` bytes after the store.
            Some(d) => {
                let d = i64::from(d as i32);
                d >= i64::from(size) || d + i64::from(c.size) <= 0
            }
            None => false,
        };
        self.cells.retain(disjoint);
        if addr != Value::Unknown {
            self.cells.push(Cell { addr, size, value });
        }
    }

    /// Operand `i` of `ins` (zero-extended when narrow).
    fn operand(&mut self, ins: &Instruction, i: u32) -> Value {
        match ins.op_kind(i) {
            OpKind::Register => self.reg(ins.op_register(i)),
            OpKind::Memory => {
                let addr = self.address(ins);
                self.load(addr, ins.memory_size().size() as u32)
            }
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32 => {
                let bits = operand_bits(ins, 0);
                Value::Const(ins.immediate(i) as u32).low(bits)
            }
            _ => Value::Unknown,
        }
    }

    /// Writes `v` to operand 0 of `ins`.
    fn write_dest(&mut self, ins: &Instruction, v: Value) {
        match ins.op0_kind() {
            OpKind::Register => self.set_reg(ins.op0_register(), v),
            OpKind::Memory => {
                let addr = self.address(ins);
                self.store(addr, ins.memory_size().size() as u32, v);
            }
            _ => {}
        }
    }

    /// Evaluates one instruction (not the path's final jump).
    pub fn step(&mut self, ins: &Instruction) {
        if ins.rflags_modified() != 0 {
            self.flags = None;
        }
        let bits = operand_bits(ins, 0);
        let handled = match ins.mnemonic() {
            Mnemonic::Mov => {
                let v = self.operand(ins, 1);
                self.write_dest(ins, v);
                true
            }
            Mnemonic::Movzx if ins.op0_kind() == OpKind::Register => {
                let v = self.operand(ins, 1);
                self.set_reg(ins.op0_register(), v);
                true
            }
            Mnemonic::Movsx if ins.op0_kind() == OpKind::Register => {
                let v = match self.operand(ins, 1) {
                    Value::Const(c) => {
                        let from = operand_bits(ins, 1);
                        Value::Const(((c << (32 - from)) as i32 >> (32 - from)) as u32)
                    }
                    Value::Lin(l) if l.is_plain() && l.bits < 32 => {
                        self.sexts.push((l.src, l.bits, l.inner));
                        Value::narrow(Src::Sext(self.sexts.len() as u32 - 1), 32, 0)
                    }
                    _ => self.fresh(32),
                };
                self.set_reg(ins.op0_register(), v.low(operand_bits(ins, 0)));
                true
            }
            Mnemonic::Lea => {
                let v = self.address(ins).low(bits);
                self.set_reg(ins.op0_register(), v);
                true
            }
            Mnemonic::Cmp => {
                let (lhs, rhs) = (self.operand(ins, 0), self.operand(ins, 1));
                self.flags = Some(Compare { lhs, rhs, bits });
                true
            }
            // `test r, r` sets the flags as `cmp r, 0` does.
            Mnemonic::Test
                if ins.op0_kind() == OpKind::Register
                    && ins.op1_kind() == OpKind::Register
                    && ins.op0_register() == ins.op1_register() =>
            {
                let lhs = self.operand(ins, 0);
                self.flags = Some(Compare {
                    lhs,
                    rhs: Value::Const(0),
                    bits,
                });
                true
            }
            Mnemonic::Push => {
                let v = self.operand(ins, 0);
                self.push(v);
                true
            }
            Mnemonic::Pop => {
                let esp = self.regs[Reg::Esp.index()];
                let v = self.load(esp, 4);
                self.regs[Reg::Esp.index()] = esp.add(Value::Const(4));
                self.write_dest(ins, v);
                true
            }
            Mnemonic::Call => {
                self.call(ins);
                true
            }
            _ => self.arithmetic(ins, bits),
        };
        if !handled {
            self.clobber(ins);
        }
    }

    fn push(&mut self, v: Value) {
        let esp = self.regs[Reg::Esp.index()].add(Value::Const(4u32.wrapping_neg()));
        self.regs[Reg::Esp.index()] = esp;
        self.store(esp, 4, v);
    }

    /// A call: a pc thunk sets its register; any other callee may change the
    /// caller-saved registers, `esp` (`ret N`) and any memory.
    fn call(&mut self, ins: &Instruction) {
        if ins.flow_control() == FlowControl::Call {
            if let Some(r) = pc_thunk_register(self.binary(), ins.near_branch32()) {
                self.set_reg(r, Value::Const(ins.next_ip32()));
                return;
            }
        }
        for r in abi::CALLER_SAVED {
            let v = self.fresh(32);
            self.set_reg(r.to_iced(), v);
        }
        let esp = match self.ctx.pops(ins.ip32()) {
            Some(p) => self.regs[Reg::Esp.index()].add(Value::Const(p)),
            None => self.fresh(32),
        };
        self.regs[Reg::Esp.index()] = esp;
        self.cells.clear();
    }

    /// Register-destination arithmetic the domain follows; `false` for
    /// anything else.
    fn arithmetic(&mut self, ins: &Instruction, bits: u8) -> bool {
        if ins.op_count() == 0 || ins.op0_kind() != OpKind::Register {
            return false;
        }
        let dest = ins.op0_register();
        let imm = |ins: &Instruction| {
            matches!(
                ins.op1_kind(),
                OpKind::Immediate8
                    | OpKind::Immediate8to32
                    | OpKind::Immediate32
                    | OpKind::Immediate16
                    | OpKind::Immediate8to16
            )
            .then(|| ins.immediate(1) as u32)
        };
        let old = self.reg(dest);
        let same = ins.op1_kind() == OpKind::Register && ins.op1_register() == dest;
        let v = match ins.mnemonic() {
            Mnemonic::Xor | Mnemonic::Sub if same => Value::Const(0),
            Mnemonic::Add | Mnemonic::Sub => {
                let other = self.operand(ins, 1);
                let negate = ins.mnemonic() == Mnemonic::Sub;
                if negate {
                    // `sub` sets the flags as `cmp` does.
                    self.flags = Some(Compare {
                        lhs: old,
                        rhs: other,
                        bits,
                    });
                }
                match other {
                    Value::Const(c) => {
                        old.add_narrow(if negate { c.wrapping_neg() } else { c }, bits)
                    }
                    _ if negate || bits < 32 => Value::Unknown,
                    _ => old.add(other),
                }
            }
            // The index of a set bit: below `bits` when the operand is not 0.
            Mnemonic::Bsf | Mnemonic::Bsr => {
                let scanned = self.operand(ins, 1);
                let v = self.fresh(bits);
                if let (Value::Lin(f), Value::Lin(l)) = (v, scanned.low(operand_bits(ins, 1))) {
                    if l.is_plain() {
                        self.scans.push((f.src, l.src, l.bits, l.inner));
                    }
                }
                v
            }
            Mnemonic::Tzcnt | Mnemonic::Lzcnt | Mnemonic::Popcnt => {
                self.bounded(bits, u64::from(bits))
            }
            Mnemonic::Inc => old.add_narrow(1, bits),
            Mnemonic::Dec => old.add_narrow(u32::MAX, bits),
            Mnemonic::Shl if bits == 32 => match imm(ins) {
                Some(k) => old.mul(1 << (k & 31)),
                None => Value::Unknown,
            },
            Mnemonic::And => match (old, imm(ins)) {
                (Value::Const(c), Some(k)) => Value::Const(c & k),
                (_, Some(k)) => self.bounded(bits, u64::from(k) & ((1u64 << bits) - 1)),
                _ => Value::Unknown,
            },
            Mnemonic::Shr => match (old, imm(ins)) {
                (Value::Const(c), Some(k)) if bits == 32 => Value::Const(c >> (k & 31)),
                (_, Some(k)) if (k & 31) > 0 && u32::from(bits) > (k & 31) => {
                    self.bounded(bits, (1u64 << (u32::from(bits) - (k & 31))) - 1)
                }
                _ => Value::Unknown,
            },
            Mnemonic::Xchg if ins.op1_kind() == OpKind::Register => {
                let other = self.reg(ins.op1_register());
                self.set_reg(ins.op1_register(), old);
                other
            }
            _ => return false,
        };
        let v = if v == Value::Unknown {
            self.fresh(bits)
        } else {
            v
        };
        self.set_reg(dest, v);
        true
    }

    /// A new unknown of `bits` bits known to be at most `max`.
    fn bounded(&mut self, bits: u8, max: u64) -> Value {
        let v = self.fresh(bits);
        if let Value::Lin(l) = v {
            self.facts.push(Fact {
                src: l.src,
                bits,
                inner: 0,
                range: Circ::interval(0, max, bits),
            });
        }
        v
    }

    /// Forgets what an instruction the domain does not follow writes.
    fn clobber(&mut self, ins: &Instruction) {
        let info = self.info.info(ins).clone();
        let mut memory_written = false;
        for m in info.used_memory() {
            if matches!(
                m.access(),
                OpAccess::Write
                    | OpAccess::ReadWrite
                    | OpAccess::CondWrite
                    | OpAccess::ReadCondWrite
            ) {
                memory_written = true;
            }
        }
        let repeated = ins.has_rep_prefix() || ins.has_repe_prefix() || ins.has_repne_prefix();
        if memory_written {
            if !repeated && ins.op_count() > 0 && ins.op0_kind() == OpKind::Memory {
                let addr = self.address(ins);
                let v = self.fresh(32);
                self.store(addr, ins.memory_size().size() as u32, v);
            } else {
                self.cells.clear();
            }
        }
        for r in info.used_registers() {
            let written = matches!(
                r.access(),
                OpAccess::Write
                    | OpAccess::ReadWrite
                    | OpAccess::CondWrite
                    | OpAccess::ReadCondWrite
            );
            if written && reg_index(r.register()).is_some() {
                let v = self.fresh(8 * r.register().size() as u8);
                self.set_reg(r.register(), v);
            }
        }
    }

    /// Records what taking (or not) the conditional branch `ins` proves.
    pub fn branch(&mut self, ins: &Instruction, taken: bool) {
        let Some(cmp) = self.flags else { return };
        let (lhs, n, cc) = match (cmp.lhs, cmp.rhs) {
            (Value::Lin(l), Value::Const(n)) => (l, n, ins.condition_code()),
            (Value::Const(n), Value::Lin(l)) => (l, n, mirror(ins.condition_code())),
            _ => return,
        };
        let Some(range) = condition_range(cc, taken, u64::from(n), cmp.bits) else {
            return;
        };
        if lhs.scale != 1 {
            return;
        }
        let fact = if cmp.bits <= lhs.bits {
            Fact {
                src: lhs.src,
                bits: cmp.bits,
                inner: lhs.inner.wrapping_add(lhs.outer),
                range,
            }
        } else if cmp.bits == 32 {
            // A zero-extended narrow value plus `outer`, compared in 32 bits.
            let narrow = Circ::interval(0, (1u64 << lhs.bits) - 1, 32);
            let zext = range
                .shift(u64::from(lhs.outer.wrapping_neg()))
                .intersect(narrow);
            let range = match zext.bounds() {
                Some((lo, hi)) => Circ::interval(lo, hi, lhs.bits),
                None => Circ::empty(lhs.bits),
            };
            Fact {
                src: lhs.src,
                bits: lhs.bits,
                inner: lhs.inner,
                range,
            }
        } else {
            return;
        };
        self.facts.push(fact);
    }
}

/// Width in bits of operand `i` (32 when it has none).
fn operand_bits(ins: &Instruction, i: u32) -> u8 {
    if ins.op_count() <= i {
        return 32;
    }
    match ins.op_kind(i) {
        OpKind::Register => (8 * ins.op_register(i).size()) as u8,
        OpKind::Memory => (8 * ins.memory_size().size()).min(32) as u8,
        _ => 32,
    }
}

/// The condition with its operands swapped (`n < x` is `x > n`).
fn mirror(cc: ConditionCode) -> ConditionCode {
    use ConditionCode as C;
    match cc {
        C::a => C::b,
        C::b => C::a,
        C::ae => C::be,
        C::be => C::ae,
        C::g => C::l,
        C::l => C::g,
        C::ge => C::le,
        C::le => C::ge,
        other => other,
    }
}

/// The values `x` of `bits` bits for which `cmp x, n; j<cc>` goes the way
/// `taken` says.
fn condition_range(cc: ConditionCode, taken: bool, n: u64, bits: u8) -> Option<Circ> {
    use ConditionCode as C;
    let max = (1u64 << bits) - 1;
    let half = 1i64 << (bits - 1);
    // `n` as a signed number.
    let s = if n >= half as u64 {
        n as i64 - 2 * half
    } else {
        n as i64
    };
    let range = |lo: i64, hi: i64| interval(lo, hi, bits);
    let (n, max) = (n as i64, max as i64);
    // Every value but `n`.
    let other = Circ::interval((n + 1) as u64, (n - 1).rem_euclid(max + 1) as u64, bits);
    // (condition, its negation) as ranges; signed ones from the most
    // negative value (`-half`), which `interval` takes modulo `2^bits`.
    let (yes, no) = match cc {
        C::a => (range(n + 1, max), range(0, n)),
        C::ae => (range(n, max), range(0, n - 1)),
        C::b => (range(0, n - 1), range(n, max)),
        C::be => (range(0, n), range(n + 1, max)),
        C::e => (range(n, n), other),
        C::ne => (other, range(n, n)),
        C::le => (range(-half, s), range(s + 1, half - 1)),
        C::g => (range(s + 1, half - 1), range(-half, s)),
        C::l => (range(-half, s - 1), range(s, half - 1)),
        C::ge => (range(s, half - 1), range(-half, s - 1)),
        _ => return None,
    };
    Some(if taken { yes } else { no })
}

/// `lo..=hi` (signed or unsigned numbers, taken modulo `2^bits`), empty when
/// `lo > hi`.
fn interval(lo: i64, hi: i64, bits: u8) -> Circ {
    if lo > hi {
        return Circ::empty(bits);
    }
    let m = 1i64 << bits;
    Circ::interval(lo.rem_euclid(m) as u64, hi.rem_euclid(m) as u64, bits)
}

#[cfg(test)]
mod tests {
    use super::{condition_range, Circ, ConditionCode as C};

    #[test]
    fn unsigned_conditions_bound_from_zero_or_to_the_top() {
        assert_eq!(
            condition_range(C::a, false, 7, 32),
            Some(Circ::interval(0, 7, 32))
        );
        assert_eq!(
            condition_range(C::ae, true, 7, 8),
            Some(Circ::interval(7, 255, 8))
        );
        // `jb 0` is never taken.
        assert!(condition_range(C::b, true, 0, 32).unwrap().is_empty());
        // `x != 3` is every other value.
        let other = condition_range(C::ne, true, 3, 8).unwrap();
        assert!(!other.contains(3) && other.contains(2) && other.contains(4));
    }

    #[test]
    fn signed_conditions_run_from_the_most_negative_value() {
        // `x <= 5` signed: -128..=5, round through zero.
        let le = condition_range(C::le, true, 5, 8).unwrap();
        assert_eq!(le, Circ::interval(0x80, 5, 8));
        // `x > 5` signed: 6..=127.
        assert_eq!(
            condition_range(C::le, false, 5, 8),
            Some(Circ::interval(6, 127, 8))
        );
        // Nothing is below the most negative value.
        assert!(condition_range(C::l, true, 0x80, 8).unwrap().is_empty());
        // Below -1 (0xff): -128..=-2.
        assert_eq!(
            condition_range(C::l, true, 0xff, 8),
            Some(Circ::interval(0x80, 0xfe, 8))
        );
    }
}
