//! CPU-state placement layered on the one instruction generator
//! (`wiper_sem::sample`): instances placed for the processor oracle
//! ([`Oracle`]: encoded at [`CODE_BASE`], absolute memory operands in the
//! scratch window, branch targets in the landing zone) and random machine
//! states for them that the processor runs without faulting. The instances
//! are `wiper_sem::sample::Instance`s; [`Instance::generate_nth`] rejects the
//! ones whose states could not be chosen freely (a count register, dividend
//! or bit offset that addresses the memory operand) or that admit no valid
//! state, and adds the operand slots the states put edge values in.
//!
//! The first [`FIXED_STATES`] states of every instance fix the inputs of
//! per-state rules ([`Variant`]): CF clear and set alternately (carry-in),
//! DF both ways, the count in `cl` running through [`COUNTS`], and the first
//! two operands ([`Slot`]s, explicit or the implicit accumulator) at edge
//! values against each other ([`PAIRS`]); later fix-ups (memory placement,
//! divisions, ...) take precedence. Instances where the count register or
//! the dividend addresses the memory operand are not generated, so the
//! inputs stay free to choose.
//!
//! [`Instance::states`] draws the other states: [`CpuState::random`] (registers
//! with edge values, `esp` in the middle half of a [`WINDOW`]-byte window)
//! plus random CF PF AF ZF SF OF DF and window bytes, then:
//! * **memory operands**: the base and index registers are solved so that
//!   the access lies in the window, through the segment's base for a `gs`
//!   or `fs` operand (`index*scale` with the wrap-around
//!   multiples, base = index through the modular inverse of `1+scale`; an
//!   `esp` base keeps `esp` and uses a small displacement); `lea` and `nop`
//!   keep random registers;
//! * **shifts/rotates by `cl`**: counts 0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31,
//!   32, 33, 63, 64, 255 (three in four) or random, as the generator draws
//!   immediate counts;
//! * **string instructions** (with no prefix, `rep`, or for `cmps`/`scas`
//!   `repne`): `ecx` 0..12 for `rep`; `esi`/`edi` placed so the whole range
//!   fits in the window for either DF; for `repe`/`repne` comparisons, runs
//!   of equal (or different) elements ending at a random point;
//! * **`div`/`idiv`**: a divisor with edge values (never 0), then a dividend
//!   whose quotient fits (high half below the divisor, or `q*d+r` for idiv,
//!   or a sign-extended low half); the check recomputes the trap condition;
//! * **`bsf`/`bsr`**: a zero source one time in four;
//! * **`bt*` with a register offset into memory**: an offset (positive or
//!   negative, beyond the operand) whose addressed word is in the window;
//!   instances where the offset register also addresses the operand are
//!   rejected;
//! * **`cmpxchg`**: the accumulator equals the destination half the time;
//! * **`ret`, `jmp`/`call r/m32`**: a landing address on the stack, in the
//!   register or memory slot ([`landing`]: outside [`RESERVED`] bytes after
//!   the code, so longer replacement sequences fit);
//! * **`leave`**: `ebp` points into the window; `loop`/`jecxz`: `ecx` 0, 1,
//!   2 or -1 mostly; `popfd`: a popped value with only modelled flags;
//! * **barriers** (`int 0x80`, `hlt`, traps): instances only, never run.
//!
//! Every state is then checked ([`Instance::check`]): every memory access
//! iced-x86 computes for the instruction (stack slots included) lies at least
//! 8 bytes inside the window, string ranges and bit-test words likewise, no
//! division traps, and every return or indirect target is a landing address.
//! States failing the check are drawn again; an instance admitting no states
//! is replaced by another. Runs without the processor (`z3_agrees.rs`) take
//! [`Instance::unchecked_state`]s that pass [`Instance::check_accesses`],
//! where a division may trap ([`Instance::make_division_trap`]).

use std::ops::Deref;

use iced_x86::{Code, Instruction, InstructionInfoFactory, Mnemonic, OpKind, Register};
use wiper_oracle::{
    flags, is_landing_address, CpuState, Rng, CODE_BASE, EAX, EBP, EBX, ECX, EDI, ESI, ESP,
    FS_BASE, GS_BASE, LANDING_BASE, LANDING_SIZE, SCRATCH_BASE,
};
use wiper_qfbv::bv::inverse32;
use wiper_sem::sample::{self, is_barrier, string_elem, width_mask, Placement, COUNTS};
use wiper_sem::Reg;
use wiper_x86::reg::is_high_byte;

/// Bytes in the scratch window of every generated state.
pub const WINDOW: u32 = 128;
/// Bytes after [`CODE_BASE`] that are never used as indirect branch or return
/// targets, so that a longer replacement sequence placed at `CODE_BASE` (the
/// decoupled parts of an instruction) does not cover a target.
pub const RESERVED: u32 = 0x100;
/// Distance every memory access keeps from the window's ends.
const MARGIN: u32 = 8;
/// Attempts to draw one valid state before giving up on an instance.
const STATE_ATTEMPTS: usize = 300;

/// The oracle's placement: instances at [`CODE_BASE`], absolute memory
/// operands [`MARGIN`] bytes inside the [`WINDOW`]-byte scratch window,
/// branch targets in the landing zone ([`landing`], [`is_landing_address`]).
#[derive(Clone, Copy, Debug)]
pub struct Oracle;

impl Placement for Oracle {
    fn ip(&self) -> u32 {
        CODE_BASE
    }

    fn data(&self, rng: &mut Rng, size: u32) -> u32 {
        SCRATCH_BASE + rng.range(MARGIN, WINDOW - MARGIN - size)
    }

    fn far_target(&self, rng: &mut Rng) -> u32 {
        landing(rng)
    }

    fn near_target(&self, target: u32, len: u32) -> bool {
        is_landing_address(target, len as usize)
    }

    fn segment_base(&self, segment: Register) -> u32 {
        segment_base(segment)
    }
}

/// The base of a segment in the oracle's harness: [`GS_BASE`] and
/// [`FS_BASE`] (inside the window), 0 for the flat ones.
pub fn segment_base(segment: Register) -> u32 {
    match segment {
        Register::GS => GS_BASE,
        Register::FS => FS_BASE,
        _ => 0,
    }
}

/// One generated instruction, placed by [`Oracle`] (its fields are those of
/// the `sample::Instance` it dereferences to: `code`, `ins`, `bytes`, `text`
/// and `nth`, which also rotates the operand values of the [`Variant`]s, see
/// [`Instance::states`]).
#[derive(Clone, Debug)]
pub struct Instance {
    /// The instruction.
    pub sample: sample::Instance,
    /// The operands that take edge values in the first states (at most two).
    pub slots: Vec<Slot>,
}

impl Deref for Instance {
    type Target = sample::Instance;

    fn deref(&self) -> &sample::Instance {
        &self.sample
    }
}

/// An operand that takes edge values ([`Edge`]) in a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Explicit operand `i` (a register or memory).
    Op(u32),
    /// A register the instruction reads implicitly (the accumulator of `mul`,
    /// `cdq`, `sahf`, ...).
    Reg(Register),
}

/// A value an operand takes in a state, in the operand's width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edge {
    /// Left as drawn.
    Random,
    /// 0.
    Zero,
    /// 1.
    One,
    /// All ones (-1).
    Ones,
    /// The sign bit alone (`0x80..`).
    Min,
    /// All ones but the sign bit (`0x7f..`).
    Max,
}

impl Edge {
    /// The value in `bits` bits (`None` for [`Edge::Random`]).
    pub fn value(self, bits: u32) -> Option<u32> {
        let mask = width_mask(bits);
        Some(match self {
            Edge::Random => return None,
            Edge::Zero => 0,
            Edge::One => 1,
            Edge::Ones => mask,
            Edge::Min => 1 << (bits - 1),
            Edge::Max => mask >> 1,
        })
    }
}

/// The operand-value pairs of the fixed states, for the first two [`Slot`]s
/// (destination, source): zero, all ones and both sides of the sign
/// boundary against each other, so that carries, borrows and overflows
/// (and carry-ins that cause them) happen.
pub const PAIRS: [(Edge, Edge); 16] = {
    use Edge::*;
    [
        (Zero, Random),
        (Random, Zero),
        (Ones, Random),
        (Random, Ones),
        (Ones, Zero),
        (Zero, Ones),
        (Max, Zero),
        (Min, Zero),
        (Min, One),
        (Max, Ones),
        (Min, Min),
        (Ones, Ones),
        (Zero, Zero),
        (Min, Ones),
        (Zero, Max),
        (Min, Max),
    ]
};

/// States of every instance whose rule inputs are fixed ([`Variant`]); the
/// rest are random.
pub const FIXED_STATES: usize = 32;

/// The rule inputs a state is made to have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The carry-in (CF before the instruction).
    pub cf: bool,
    /// The direction flag.
    pub df: bool,
    /// The count in `cl` of a shift or rotate by `cl`.
    pub count: u32,
    /// Values of the first two [`Slot`]s.
    pub values: (Edge, Edge),
}

impl Variant {
    /// The variant of state `j` of instance `nth`, if state `j` is one of the
    /// [`FIXED_STATES`]: CF alternates (clear, set) so that every other input
    /// is seen with both carry-ins; DF alternates in pairs; the `cl` count
    /// runs through [`COUNTS`] (0, 1, then larger ones, each with both
    /// carry-ins); operand values run through [`PAIRS`], rotated by `nth` so
    /// that counts and values pair differently in each instance.
    pub fn of_state(nth: usize, j: usize) -> Option<Variant> {
        (j < FIXED_STATES).then(|| Variant {
            cf: j % 2 == 1,
            df: (j / 2) % 2 == 1,
            count: COUNTS[(j / 2) % COUNTS.len()],
            values: PAIRS[(j / 2 + nth % PAIRS.len()) % PAIRS.len()],
        })
    }
}

/// Where an operand's value lives in a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpLoc {
    /// A register (8, 16 or 32 bits).
    Reg(Register),
    /// `size` bytes at an address.
    Mem(u32, u32),
}

/// A random landing address outside the reserved code area.
pub fn landing(rng: &mut Rng) -> u32 {
    loop {
        let t = match rng.below(8) {
            0 => LANDING_BASE,
            1 => LANDING_BASE + LANDING_SIZE - 1,
            2 => CODE_BASE - 1,
            3 => CODE_BASE + RESERVED + 5,
            _ => LANDING_BASE + rng.below(LANDING_SIZE),
        };
        if is_target(t) {
            return t;
        }
    }
}

/// Whether `t` is a landing address outside the reserved code area.
pub fn is_target(t: u32) -> bool {
    is_landing_address(t, RESERVED as usize)
}

impl Instance {
    /// A random instance of `code`, trying several register and operand
    /// choices until one encodes to `code` and admits valid states.
    pub fn generate(code: Code, rng: &mut Rng) -> Result<Instance, String> {
        Self::generate_nth(code, usize::MAX, rng)
    }

    /// Instance `nth` of `code`: like [`Instance::generate`], but the first
    /// [`sample::edge_count`] instances of a form take its
    /// [`sample::edge_immediates`] in
    /// turn (every immediate operand the `nth` value of its list).
    pub fn generate_nth(code: Code, nth: usize, rng: &mut Rng) -> Result<Instance, String> {
        let mut last = String::new();
        for _ in 0..200 {
            match Self::try_generate(code, nth, rng) {
                Ok(inst) => {
                    if is_barrier(code) {
                        return Ok(inst);
                    }
                    // The instance must admit states.
                    let mut probe = rng.clone();
                    if (0..20).all(|_| inst.state(&mut probe).is_some()) {
                        return Ok(inst);
                    }
                    last = format!("no valid state for `{}`", inst.text);
                }
                Err(e) => last = e,
            }
        }
        Err(format!("cannot generate an instance of {code:?}: {last}"))
    }

    /// One attempt: an instance from the generator, unless its states
    /// could not be chosen freely.
    fn try_generate(code: Code, nth: usize, rng: &mut Rng) -> Result<Instance, String> {
        let sample = sample::Instance::generate(code, nth, &Oracle, rng)?;
        let ins = &sample.ins;
        let mn = ins.mnemonic();
        if matches!(
            mn,
            Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
        ) && ins.op_kind(0) == OpKind::Memory
            && ins.op_kind(1) == OpKind::Register
        {
            // The bit offset register must be free to choose.
            let r = ins.op_register(1).full_register32();
            if r == ins.memory_base() || r == ins.memory_index() {
                return Err("bit offset register addresses the operand".into());
            }
        }
        let cl = (0..ins.op_count())
            .any(|i| ins.op_kind(i) == OpKind::Register && ins.op_register(i) == Register::CL);
        if cl
            && super::is_shift_or_rotate(mn)
            && [ins.memory_base(), ins.memory_index()].contains(&Register::ECX)
        {
            // The count must be free to choose (0, 1, ... in every instance).
            return Err("the count register addresses the operand".into());
        }
        let addr = [ins.memory_base(), ins.memory_index()];
        if matches!(mn, Mnemonic::Div | Mnemonic::Idiv | Mnemonic::Cmpxchg)
            && (addr.contains(&Register::EAX) || addr.contains(&Register::EDX))
        {
            // The dividend (or accumulator) is set after the operand is
            // placed and would move it.
            return Err("the accumulator addresses the operand".into());
        }
        let slots = slots(ins);
        Ok(Instance { sample, slots })
    }

    /// The memory-operand index (0-based) of the instance, if it has one.
    fn mem_op(&self) -> Option<u32> {
        (0..self.ins.op_count()).find(|&i| self.ins.op_kind(i) == OpKind::Memory)
    }

    /// Where operand `i` lives in state `s`.
    pub fn op_loc(&self, s: &CpuState, i: u32) -> Option<OpLoc> {
        match self.ins.op_kind(i) {
            OpKind::Register => Some(OpLoc::Reg(self.ins.op_register(i))),
            OpKind::Memory => {
                let addr = self.ins.virtual_address(i, 0, |r, _, _| reg_value(s, r))? as u32;
                Some(OpLoc::Mem(addr, self.ins.memory_size().size() as u32))
            }
            _ => None,
        }
    }

    /// Operand size in bytes of operand `i` (register or memory).
    fn op_size(&self, i: u32) -> u32 {
        match self.ins.op_kind(i) {
            OpKind::Register => self.ins.op_register(i).size() as u32,
            _ => self.ins.memory_size().size() as u32,
        }
    }

    /// `n` valid states, or an error when the instance does not admit them.
    /// State `j` has the rule inputs of [`Variant::of_state`]`(self.nth, j)`
    /// (the first [`FIXED_STATES`]), the others are random.
    pub fn states(&self, n: usize, rng: &mut Rng) -> Result<Vec<CpuState>, String> {
        let mut out = Vec::with_capacity(n);
        for j in 0..n {
            match self.state_with(rng, Variant::of_state(self.nth, j)) {
                Some(s) => out.push(s),
                None => {
                    return Err(format!(
                        "`{}` ({:?}): no valid state after {STATE_ATTEMPTS} attempts ({})",
                        self.text,
                        self.code,
                        self.why_invalid(rng)
                    ))
                }
            }
        }
        Ok(out)
    }

    /// The reason the last random state was invalid (for messages).
    fn why_invalid(&self, rng: &mut Rng) -> String {
        let s = self.candidate(rng, None);
        self.check(&s).err().unwrap_or_else(|| "flaky".into())
    }

    /// One valid random state, or `None` after [`STATE_ATTEMPTS`] attempts.
    pub fn state(&self, rng: &mut Rng) -> Option<CpuState> {
        self.state_with(rng, None)
    }

    /// A random state with the instance's fix-ups applied but not checked
    /// ([`Instance::check`]): for runs without the processor, where a state
    /// may divide by zero or reach outside the window.
    pub fn unchecked_state(&self, rng: &mut Rng) -> CpuState {
        self.candidate(rng, None)
    }

    /// One valid state with the rule inputs of `variant`, or `None` after
    /// [`STATE_ATTEMPTS`] attempts. When the operand values make every
    /// attempt invalid (an operand that is also an address register), the
    /// second half of the attempts keeps the flags and count but draws the
    /// values.
    fn state_with(&self, rng: &mut Rng, variant: Option<Variant>) -> Option<CpuState> {
        (0..STATE_ATTEMPTS).find_map(|a| {
            let v = variant.map(|mut v| {
                if a >= STATE_ATTEMPTS / 2 {
                    v.values = (Edge::Random, Edge::Random);
                }
                v
            });
            let s = self.candidate(rng, v);
            self.check(&s).is_ok().then_some(s)
        })
    }

    /// Where slot `slot` lives in state `s`, and its width in bits.
    pub fn slot_loc(&self, s: &CpuState, slot: Slot) -> Option<(OpLoc, u32)> {
        match slot {
            Slot::Op(i) => Some((self.op_loc(s, i)?, 8 * self.op_size(i))),
            Slot::Reg(r) => Some((OpLoc::Reg(r), 8 * r.size() as u32)),
        }
    }

    /// Writes the edge values of `values` into the slots that live in
    /// registers (`memory` false) or in memory (`memory` true).
    fn apply_values(&self, s: &mut CpuState, values: (Edge, Edge), memory: bool) {
        for (slot, edge) in self.slots.iter().zip([values.0, values.1]) {
            let Some((loc, bits)) = self.slot_loc(s, *slot) else {
                continue;
            };
            if matches!(loc, OpLoc::Mem(..)) != memory {
                continue;
            }
            if let Some(v) = edge.value(bits) {
                write_loc(s, loc, v);
            }
        }
    }

    /// A random state with the fix-ups for this instance applied (not yet
    /// checked), with the rule inputs of `variant` if given.
    fn candidate(&self, rng: &mut Rng, variant: Option<Variant>) -> CpuState {
        let mut s = CpuState::random(rng, WINDOW as usize);
        s.eflags = rng.next_u32() & flags::MASK;
        if rng.chance(1, 8) {
            s.regs[ESP] += rng.below(4);
        }
        if let Some(v) = variant {
            s.set_flag(flags::CF, v.cf);
            s.set_flag(flags::DF, v.df);
            self.apply_values(&mut s, v.values, false);
        }
        let mn = self.ins.mnemonic();
        let code = self.code;
        // Before the memory operand is placed.
        if self.has_cl() {
            let c = if let Some(v) = variant {
                v.count
            } else if rng.chance(3, 4) {
                *rng.choose(&COUNTS)
            } else {
                rng.below(256)
            };
            set_reg(&mut s, Register::CL, c);
        }
        match mn {
            Mnemonic::Loop | Mnemonic::Loope | Mnemonic::Loopne | Mnemonic::Jecxz
                if rng.chance(3, 4) =>
            {
                s.regs[ECX] = *rng.choose(&[0, 1, 2, u32::MAX]);
            }
            Mnemonic::Leave | Mnemonic::Enter => {
                s.regs[EBP] = SCRATCH_BASE + rng.range(MARGIN + 16, WINDOW - MARGIN - 16);
            }
            _ => {}
        }
        if let Some(elem) = string_elem(code) {
            self.string_setup(&mut s, elem, rng);
        }
        // Place the memory operand.
        if let Some(i) = self.mem_op() {
            if mn != Mnemonic::Lea && mn != Mnemonic::Nop {
                self.place_memory(&mut s, i, rng);
            }
        }
        if let Some(v) = variant {
            self.apply_values(&mut s, v.values, true);
        }
        // After: values that depend on where the operands are.
        match mn {
            Mnemonic::Div | Mnemonic::Idiv => self.division_setup(&mut s, rng),
            Mnemonic::Bsf | Mnemonic::Bsr | Mnemonic::Tzcnt | Mnemonic::Lzcnt
                if rng.chance(1, 4) =>
            {
                if let Some(l) = self.op_loc(&s, 1) {
                    write_loc(&mut s, l, 0);
                }
            }
            Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
                if self.is_bit_test_mem_reg() =>
            {
                self.bit_offset_setup(&mut s, rng);
            }
            Mnemonic::Cmpxchg if rng.coin() => {
                if let Some(l) = self.op_loc(&s, 0) {
                    let v = read_loc(&s, l).unwrap_or(0);
                    let acc = match self.op_size(0) {
                        1 => Register::AL,
                        2 => Register::AX,
                        _ => Register::EAX,
                    };
                    set_reg(&mut s, acc, v);
                }
            }
            Mnemonic::Ret => {
                let t = landing(rng);
                let sp = s.regs[ESP];
                if s.mem_offset(sp, 4).is_some() {
                    s.write_u32(sp, t);
                }
            }
            Mnemonic::Jmp | Mnemonic::Call if self.ins.op_kind(0) != OpKind::NearBranch32 => {
                let t = landing(rng);
                if let Some(l) = self.op_loc(&s, 0) {
                    write_loc(&mut s, l, t);
                }
            }
            Mnemonic::Popfd | Mnemonic::Popf => {
                let v = (rng.next_u32() & flags::MASK) | 2;
                let sp = s.regs[ESP];
                if s.mem_offset(sp, 4).is_some() {
                    s.write_u32(sp, v);
                }
            }
            Mnemonic::Xlatb => {
                let al = s.regs[EAX] & 0xff;
                s.regs[EBX] = (SCRATCH_BASE + rng.range(MARGIN, WINDOW - MARGIN)).wrapping_sub(al);
            }
            _ => {}
        }
        s
    }

    /// Whether the instruction has CL as an explicit operand (shift counts).
    fn has_cl(&self) -> bool {
        (0..self.ins.op_count()).any(|i| {
            self.ins.op_kind(i) == OpKind::Register && self.ins.op_register(i) == Register::CL
        }) && self.ins.mnemonic() != Mnemonic::Mov
    }

    fn is_bit_test_mem_reg(&self) -> bool {
        self.ins.op_kind(0) == OpKind::Memory && self.ins.op_kind(1) == OpKind::Register
    }

    /// Sets the base and index registers so that the memory operand lies in
    /// the window (esp as a base stays where it is: its displacement is small).
    fn place_memory(&self, s: &mut CpuState, i: u32, rng: &mut Rng) {
        let ins = &self.ins;
        if ins.op_kind(i) != OpKind::Memory {
            return;
        }
        let size = ins.memory_size().size().max(1) as u32;
        let base = ins.memory_base();
        let index = ins.memory_index();
        let scale = ins.memory_index_scale();
        let disp = ins.memory_displacement32();
        let hi = WINDOW.saturating_sub(MARGIN + size).max(MARGIN + 1);
        let mut ea = SCRATCH_BASE + rng.range(MARGIN, hi);
        if rng.chance(1, 2) && size > 1 {
            ea &= !(size - 1);
        }
        // The offset in the operand's segment.
        let ea = ea.wrapping_sub(segment_base(ins.memory_segment()));
        let bi = Reg::from_iced(base).map(Reg::index);
        let ii = Reg::from_iced(index).map(Reg::index);
        match (bi, ii) {
            (None, None) => {}
            (Some(ESP), None) => {}
            (Some(b), None) => s.regs[b] = ea.wrapping_sub(disp),
            (None, Some(x)) | (Some(ESP), Some(x)) => {
                let from = if bi.is_some() { s.regs[ESP] } else { 0 };
                let mut t = ea.wrapping_sub(disp).wrapping_sub(from);
                // Make t a multiple of the scale (moving ea down a little).
                t = t.wrapping_sub(t % scale);
                let wrap = if scale == 1 {
                    0
                } else {
                    (1u64 << 32) / u64::from(scale)
                };
                let j = u64::from(rng.below(scale));
                s.regs[x] = ((u64::from(t / scale) + j * wrap) & 0xffff_ffff) as u32;
            }
            (Some(b), Some(x)) if b == x => {
                let f = scale + 1;
                let mut t = ea.wrapping_sub(disp);
                if f % 2 == 1 {
                    s.regs[b] = t.wrapping_mul(inverse32(f).expect("odd"));
                } else {
                    t &= !1;
                    s.regs[b] = (t >> 1).wrapping_add(if rng.coin() { 1 << 31 } else { 0 });
                }
            }
            (Some(b), Some(x)) => {
                let iv = if rng.coin() {
                    rng.below(64)
                } else {
                    rng.interesting_u32()
                };
                s.regs[x] = iv;
                s.regs[b] = ea.wrapping_sub(disp).wrapping_sub(iv.wrapping_mul(scale));
            }
        }
    }

    /// Pointers, count and data for a string instruction.
    fn string_setup(&self, s: &mut CpuState, elem: u32, rng: &mut Rng) {
        let ins = &self.ins;
        let rep = ins.has_rep_prefix() || ins.has_repne_prefix();
        if rep && rng.chance(7, 8) {
            s.regs[ECX] = if rng.chance(1, 4) {
                *rng.choose(&[0, 1, 2])
            } else {
                rng.below(13)
            };
        }
        let n = if rep { s.regs[ECX].min(64) } else { 1 };
        let down = s.flag(flags::DF);
        let span = n.max(1) * elem;
        let place = |rng: &mut Rng| -> u32 {
            let lo = MARGIN + if down { span - elem } else { 0 };
            let hi = WINDOW.saturating_sub(MARGIN + if down { elem } else { span });
            if lo >= hi {
                return SCRATCH_BASE + MARGIN;
            }
            let mut off = rng.range(lo, hi + 1);
            if rng.coin() {
                off &= !(elem - 1);
                off = off.max(lo);
            }
            SCRATCH_BASE + off
        };
        let (src, dst) = string_regs(ins.mnemonic());
        if src {
            s.regs[ESI] = place(rng);
        }
        if dst {
            s.regs[EDI] = place(rng);
        }
        // Runs of equal or different elements for repe/repne comparisons.
        let cmp = matches!(
            ins.mnemonic(),
            Mnemonic::Cmpsb
                | Mnemonic::Cmpsw
                | Mnemonic::Cmpsd
                | Mnemonic::Scasb
                | Mnemonic::Scasw
                | Mnemonic::Scasd
        );
        if cmp && rng.chance(3, 4) {
            let repe = ins.has_rep_prefix();
            let k = rng.below(n + 1);
            let step = |j: u32| -> u32 {
                if down {
                    0u32.wrapping_sub(j * elem)
                } else {
                    j * elem
                }
            };
            let mask = if elem == 4 {
                u32::MAX
            } else {
                (1 << (8 * elem)) - 1
            };
            for j in 0..=k.min(n.saturating_sub(1)) {
                let d = s.regs[EDI].wrapping_add(step(j));
                let want = if src {
                    let a = s.regs[ESI].wrapping_add(step(j));
                    read_mem(s, a, elem).unwrap_or(0)
                } else {
                    s.regs[EAX] & mask
                };
                // Elements before k: equal for repe, different for repne;
                // element k: the opposite, ending the run.
                let equal = (j < k) == repe || (!rep_any(ins) && rng.coin());
                let v = if equal {
                    want
                } else {
                    want ^ (1 + rng.below(mask)) & mask
                };
                let v = if !equal && v == want { want ^ 1 } else { v };
                write_mem(s, d, elem, v);
            }
        }
    }

    /// Divisor and dividend that do not trap (most of the time; the check decides).
    fn division_setup(&self, s: &mut CpuState, rng: &mut Rng) {
        let size = self.op_size(0);
        let bits = 8 * size;
        let mask = if size == 4 {
            u32::MAX
        } else {
            (1u32 << bits) - 1
        };
        let signed = self.ins.mnemonic() == Mnemonic::Idiv;
        let Some(loc) = self.op_loc(s, 0) else { return };
        let mut d = match rng.below(4) {
            0 => *rng.choose(&[1, 2, 3, mask, mask - 1, mask >> 1, (mask >> 1) + 1, 7, 10]),
            1 => rng.interesting_u32() & mask & 0xff,
            _ => rng.interesting_u32() & mask,
        };
        if d == 0 {
            d = 1 + rng.below(mask.min(1000));
        }
        write_loc(s, loc, d);
        let (lo_reg, hi_reg) = self.dividend();
        let d = read_loc(s, loc).unwrap_or(1);
        if signed {
            if rng.coin() {
                // Sign-extend the low half (like cdq).
                let lo = reg_value(s, lo_reg).unwrap_or(0) as u32;
                let neg = lo >> (bits - 1) & 1 == 1;
                set_reg(s, hi_reg, if neg { mask } else { 0 });
            } else {
                let dd = sext(d, bits);
                let qmax = 1i64 << (bits - 1);
                let q = rng.next_u64() as i64 % qmax;
                let r = if dd.abs() > 1 {
                    rng.next_u64() as i64 % dd.abs()
                } else {
                    0
                };
                let prod = q * dd;
                let r = if prod < 0 { -r.abs() } else { r.abs() };
                let dividend = prod + r;
                set_reg(s, lo_reg, dividend as u32 & mask);
                set_reg(s, hi_reg, (dividend >> bits) as u32 & mask);
            }
        } else if rng.chance(1, 4) {
            set_reg(s, hi_reg, 0);
        } else {
            let h = if d <= 1 { 0 } else { rng.below(d) };
            set_reg(s, hi_reg, h);
        }
    }

    /// A bit offset register value whose addressed word lies in the window.
    fn bit_offset_setup(&self, s: &mut CpuState, rng: &mut Rng) {
        let size = self.op_size(0);
        let Some(OpLoc::Mem(ea, _)) = self.op_loc(s, 0) else {
            return;
        };
        let target = SCRATCH_BASE + rng.range(MARGIN, WINDOW - MARGIN - size);
        let k = (i64::from(target) - i64::from(ea)).div_euclid(i64::from(size));
        let v = k * 8 * i64::from(size) + i64::from(rng.below(8 * size));
        set_reg(s, self.ins.op_register(1), v as u32);
    }

    /// Whether `s` is safe to run: every memory access in the window, no
    /// division trap, branch and return targets in the landing zone.
    pub fn check(&self, s: &CpuState) -> Result<(), String> {
        self.check_accesses(s)?;
        self.check_division(s)
    }

    /// Whether `s` is safe to run but for a division trap ([`Self::check`]
    /// without [`Self::check_division`]).
    pub fn check_accesses(&self, s: &CpuState) -> Result<(), String> {
        let ins = &self.ins;
        let mn = ins.mnemonic();
        let in_window = |addr: u32, len: u32, what: &str| -> Result<(), String> {
            let off = addr.wrapping_sub(SCRATCH_BASE);
            if off >= MARGIN && off.checked_add(len).is_some_and(|e| e <= WINDOW - MARGIN) {
                Ok(())
            } else {
                Err(format!(
                    "{what} of {len} bytes at {addr:#x} is outside the window"
                ))
            }
        };
        if let Some(elem) = string_elem(self.code) {
            let rep = rep_any(ins);
            let n = if rep { s.regs[ECX] } else { 1 };
            if n > 64 {
                return Err(format!("string count {n} too large"));
            }
            let down = s.flag(flags::DF);
            let (src, dst) = string_regs(mn);
            for (used, r) in [(src, ESI), (dst, EDI)] {
                if used && n > 0 {
                    let start = if down {
                        s.regs[r].wrapping_sub((n - 1) * elem)
                    } else {
                        s.regs[r]
                    };
                    in_window(start, n * elem, "string range")?;
                }
            }
        } else {
            let mut factory = InstructionInfoFactory::new();
            let info = factory.info(ins);
            let bt_mem_reg = matches!(
                mn,
                Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
            ) && self.is_bit_test_mem_reg();
            for m in info.used_memory() {
                let Some(addr) = m.virtual_address(0, |r, _, _| reg_value(s, r)) else {
                    return Err("cannot compute an address".into());
                };
                let len = m.memory_size().size() as u32;
                if bt_mem_reg {
                    let r = ins.op_register(1);
                    let v = sext(reg_value(s, r).unwrap_or(0) as u32, 8 * len);
                    let log = if len == 4 { 5 } else { 4 };
                    let a = (addr as u32).wrapping_add(((v >> log) * i64::from(len)) as u32);
                    in_window(a, len, "bit-test word")?;
                } else {
                    in_window(addr as u32, len.max(1), "memory access")?;
                }
            }
        }
        match mn {
            Mnemonic::Ret => {
                let t = s.read_u32(s.regs[ESP]).unwrap_or(0);
                if !is_target(t) {
                    return Err(format!("return address {t:#x} is not a landing address"));
                }
            }
            Mnemonic::Jmp | Mnemonic::Call if ins.op_kind(0) != OpKind::NearBranch32 => {
                let t = self.op_loc(s, 0).and_then(|l| read_loc(s, l)).unwrap_or(0);
                if !is_target(t) {
                    return Err(format!("branch target {t:#x} is not a landing address"));
                }
            }
            Mnemonic::Popfd | Mnemonic::Popf => {
                let v = s.read_u32(s.regs[ESP]).unwrap_or(0);
                if v & !(flags::MASK | 2) != 0 {
                    return Err(format!("popped flags {v:#x} would set TF/AC/..."));
                }
            }
            _ => {}
        }
        Ok(())
    }
    /// The registers of the low and high half of a division's dividend
    /// (`al`/`ah`, `ax`/`dx`, `eax`/`edx` by the divisor's size).
    fn dividend(&self) -> (Register, Register) {
        match self.op_size(0) {
            1 => (Register::AL, Register::AH),
            2 => (Register::AX, Register::DX),
            _ => (Register::EAX, Register::EDX),
        }
    }

    /// Makes the division of `s` trap, for runs that check divide errors:
    /// a zero divisor or (half the time) a quotient that overflows (for
    /// `div` the high half of the dividend at least the divisor, for `idiv`
    /// a dividend near the largest positive one). Other instructions are
    /// left as they are.
    pub fn make_division_trap(&self, s: &mut CpuState, rng: &mut Rng) {
        let mn = self.ins.mnemonic();
        let Some(loc) = self
            .op_loc(s, 0)
            .filter(|_| matches!(mn, Mnemonic::Div | Mnemonic::Idiv))
        else {
            return;
        };
        let (lo, hi) = self.dividend();
        let mask = width_mask(8 * self.op_size(0));
        if rng.coin() {
            write_loc(s, loc, 0);
        } else if mn == Mnemonic::Div {
            let d = read_loc(s, loc).unwrap_or(0);
            set_reg(s, hi, d);
        } else {
            set_reg(s, hi, mask >> 1);
            set_reg(s, lo, mask);
        }
    }

    /// Whether a division of `s` does not trap (no division by zero, no
    /// quotient overflow); always for other instructions.
    pub fn check_division(&self, s: &CpuState) -> Result<(), String> {
        let mn = self.ins.mnemonic();
        if !matches!(mn, Mnemonic::Div | Mnemonic::Idiv) {
            return Ok(());
        }
        let size = self.op_size(0);
        let bits = 8 * size;
        let d = self
            .op_loc(s, 0)
            .and_then(|l| read_loc(s, l))
            .ok_or("divisor unreadable")?;
        let (lo, hi) = self.dividend();
        let lo = reg_value(s, lo).unwrap_or(0);
        let hi = reg_value(s, hi).unwrap_or(0);
        let dividend = (hi << bits) | lo;
        if d == 0 {
            return Err("division by zero".into());
        }
        let ok = if mn == Mnemonic::Div {
            dividend / u64::from(d) < 1u64 << bits
        } else {
            let n = i128::from(sext_u64(dividend, 2 * bits));
            let q = n / i128::from(sext(d, bits));
            let lim = 1i128 << (bits - 1);
            (-lim..lim).contains(&q)
        };
        if !ok {
            return Err("quotient overflow".into());
        }
        Ok(())
    }
}

/// The operands of `ins` that take edge values in the fixed states (at most
/// two): its explicit register and memory operands (not `esp`, which must
/// stay in the window, not the count in `cl` of a shift, not the address of
/// `lea`/`nop`), then the registers it reads implicitly (`eax` of `mul`,
/// `al` of `cbw`, `ah` of `sahf`; not as an address register), in
/// iced-x86's order.
fn slots(ins: &Instruction) -> Vec<Slot> {
    let mn = ins.mnemonic();
    let mut out = Vec::new();
    for i in 0..ins.op_count() {
        match ins.op_kind(i) {
            OpKind::Register => {
                let r = ins.op_register(i);
                let count = r == Register::CL && super::is_shift_or_rotate(mn);
                if r.full_register32() != Register::ESP && !count && r.is_gpr() {
                    out.push(Slot::Op(i));
                }
            }
            OpKind::Memory if !matches!(mn, Mnemonic::Lea | Mnemonic::Nop) => {
                out.push(Slot::Op(i));
            }
            _ => {}
        }
    }
    let mut explicit: Vec<Register> = (0..ins.op_count())
        .filter(|&i| ins.op_kind(i) == OpKind::Register)
        .map(|i| ins.op_register(i).full_register32())
        .collect();
    explicit.extend([ins.memory_base(), ins.memory_index()]);
    let mut factory = InstructionInfoFactory::new();
    for u in factory.info(ins).used_registers() {
        let r = u.register();
        let reads = matches!(
            u.access(),
            iced_x86::OpAccess::Read | iced_x86::OpAccess::ReadWrite
        );
        if reads
            && r.is_gpr()
            && r.full_register32() == Register::EAX
            && !explicit.contains(&Register::EAX)
            && string_elem(ins.code()).is_none()
        {
            out.push(Slot::Reg(r));
        }
    }
    out.truncate(2);
    out
}

/// Whether a string instruction has any repeat prefix.
fn rep_any(ins: &Instruction) -> bool {
    ins.has_rep_prefix() || ins.has_repne_prefix()
}

/// Whether a string mnemonic uses esi (source) and edi (destination).
fn string_regs(mn: Mnemonic) -> (bool, bool) {
    use Mnemonic as M;
    match mn {
        M::Movsb | M::Movsw | M::Movsd | M::Cmpsb | M::Cmpsw | M::Cmpsd => (true, true),
        M::Lodsb | M::Lodsw | M::Lodsd => (true, false),
        _ => (false, true),
    }
}

fn sext(v: u32, bits: u32) -> i64 {
    let sh = 64 - bits;
    (i64::from(v) << sh) >> sh
}

fn sext_u64(v: u64, bits: u32) -> i64 {
    let sh = 64 - bits;
    ((v << sh) as i64) >> sh
}

/// Value of a general-purpose register (8, 16 or 32 bits) in `s`; segment
/// registers read as base 0.
pub fn reg_value(s: &CpuState, r: Register) -> Option<u64> {
    if r.is_segment_register() {
        // iced asks for segment bases.
        return Some(u64::from(segment_base(r)));
    }
    let full = Reg::from_iced(r)?.index();
    let v = s.regs[full];
    Some(u64::from(if r.is_gpr8() {
        if is_high_byte(r) {
            (v >> 8) & 0xff
        } else {
            v & 0xff
        }
    } else if r.is_gpr16() {
        v & 0xffff
    } else {
        v
    }))
}

/// Writes the low bits of `v` into register `r` of `s`.
pub fn set_reg(s: &mut CpuState, r: Register, v: u32) {
    let Some(full) = Reg::from_iced(r).map(Reg::index) else {
        return;
    };
    let old = s.regs[full];
    s.regs[full] = if r.is_gpr8() {
        if is_high_byte(r) {
            (old & !0xff00) | ((v & 0xff) << 8)
        } else {
            (old & !0xff) | (v & 0xff)
        }
    } else if r.is_gpr16() {
        (old & !0xffff) | (v & 0xffff)
    } else {
        v
    };
}

fn read_mem(s: &CpuState, addr: u32, len: u32) -> Option<u32> {
    let o = s.mem_offset(addr, len as usize)?;
    let mut b = [0u8; 4];
    b[..len as usize].copy_from_slice(&s.mem[o..o + len as usize]);
    Some(u32::from_le_bytes(b))
}

fn write_mem(s: &mut CpuState, addr: u32, len: u32, v: u32) {
    if s.mem_offset(addr, len as usize).is_some() {
        s.write_bytes(addr, &v.to_le_bytes()[..len as usize]);
    }
}

/// Reads an operand location (`None` outside the window).
pub fn read_loc(s: &CpuState, l: OpLoc) -> Option<u32> {
    match l {
        OpLoc::Reg(r) => reg_value(s, r).map(|v| v as u32),
        OpLoc::Mem(a, len) => read_mem(s, a, len.min(4)),
    }
}

/// Writes an operand location (ignored outside the window).
pub fn write_loc(s: &mut CpuState, l: OpLoc, v: u32) {
    match l {
        OpLoc::Reg(r) => set_reg(s, r, v),
        OpLoc::Mem(a, len) => write_mem(s, a, len.min(4), v),
    }
}
