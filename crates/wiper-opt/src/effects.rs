//! What each residual item reads and writes, over a small universe of
//! locations: the general-purpose registers, the six status flags, and the
//! promotable stack slots of the frame.
//!
//! A location set is a `u128` bit set: bits 0..8 are the registers by
//! iced's 32-bit number (bit 4, `esp`, is never set: the stack pointer is
//! tracked apart, see [`crate::frame`]), bits 8..14 the flags CF, PF, AF,
//! ZF, SF, OF, and bits 14.. the promotable slots.

use iced_x86::{
    Code, ConditionCode, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess,
    OpKind, Register, RflagsBits,
};
use wiper_residual::{Item, Residual};
use wiper_x86::{abi, Reg};

/// A set of locations (see the module docs).
pub type Locs = u128;

/// The first bit of the slots.
pub const SLOT_BASE: u32 = 14;
/// How many slots fit in a [`Locs`].
pub const MAX_SLOTS: usize = 128 - SLOT_BASE as usize;
/// All general-purpose registers but `esp`.
pub const ALL_REGS: Locs = 0xff & !reg_set(&[Reg::Esp]);
/// What a caller may read after `ret`: the callee-saved registers and the
/// return registers (`edx:eax`), i.e. the registers but `ecx`, which no
/// i386 calling convention returns a value in.
pub const RETURN_REGS: Locs = reg_set(&abi::CALLEE_SAVED) | reg_set(&abi::RETURN);
/// All six status flags.
pub const ALL_FLAGS: Locs = 0x3f << 8;

/// The bit of a promotable slot.
pub fn slot_bit(slot: usize) -> Locs {
    1 << (SLOT_BASE as usize + slot)
}

/// The location set of `regs`.
pub const fn reg_set(regs: &[Reg]) -> Locs {
    let mut set = 0;
    let mut i = 0;
    while i < regs.len() {
        set |= 1 << regs[i].index();
        i += 1;
    }
    set
}

/// The bit of the 32-bit register `reg` is part of, or `None` for `esp`
/// and registers that are not general-purpose.
pub fn reg_bit(reg: Register) -> Option<Locs> {
    Reg::from_iced(reg)
        .filter(|&r| r != Reg::Esp)
        .map(|r| 1 << r.index())
}

/// The 32-bit register of a register bit index (0..8).
pub fn reg_of_bit(bit: u32) -> Register {
    Reg::ALL[bit as usize].to_iced()
}

/// The flag bits of an iced `RflagsBits` mask.
pub fn flag_bits(rflags: u32) -> Locs {
    let mut out = 0;
    for (i, f) in [
        RflagsBits::CF,
        RflagsBits::PF,
        RflagsBits::AF,
        RflagsBits::ZF,
        RflagsBits::SF,
        RflagsBits::OF,
    ]
    .into_iter()
    .enumerate()
    {
        if rflags & f != 0 {
            out |= 1 << (8 + i);
        }
    }
    out
}

/// The flags a conditional branch on `cc` reads.
pub fn condition_flags(cc: ConditionCode) -> Locs {
    use ConditionCode as C;
    let rflags = match cc {
        C::o | C::no => RflagsBits::OF,
        C::b | C::ae => RflagsBits::CF,
        C::e | C::ne => RflagsBits::ZF,
        C::be | C::a => RflagsBits::CF | RflagsBits::ZF,
        C::s | C::ns => RflagsBits::SF,
        C::p | C::np => RflagsBits::PF,
        C::l | C::ge => RflagsBits::SF | RflagsBits::OF,
        C::le | C::g => RflagsBits::ZF | RflagsBits::SF | RflagsBits::OF,
        C::None => 0,
    };
    flag_bits(rflags)
}

/// What one item does to the locations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Locations read.
    pub uses: Locs,
    /// Locations written, wholly or in part.
    pub defs: Locs,
    /// Locations wholly overwritten (their old value is dead before).
    pub kills: Locs,
    /// The item must stay even when nothing it defines is read: it touches
    /// memory outside the promotable slots, may fault, transfers control or
    /// has effects outside the universe.
    pub side_effect: bool,
    /// `Some((dst, src))` location bit indices for a 32-bit `mov dst, src`
    /// between registers and promotable slots.
    pub copy: Option<(u32, u32)>,
    /// The item transfers control (`ret`, a jump or call into the original
    /// code, an interrupt): the last item of an exit block.
    pub leaves: bool,
}

/// Moves, arithmetic, compares and conditional moves: their only effects
/// are on registers, flags and their explicit operands, and an explicit
/// 4-byte memory operand of theirs may be replaced by a register with the
/// same instruction code.
pub const ARITHMETIC: &[Mnemonic] = &[
    Mnemonic::Mov,
    Mnemonic::Add,
    Mnemonic::Sub,
    Mnemonic::Adc,
    Mnemonic::Sbb,
    Mnemonic::And,
    Mnemonic::Or,
    Mnemonic::Xor,
    Mnemonic::Cmp,
    Mnemonic::Test,
    Mnemonic::Inc,
    Mnemonic::Dec,
    Mnemonic::Neg,
    Mnemonic::Not,
    Mnemonic::Imul,
    Mnemonic::Mul,
    Mnemonic::Shl,
    Mnemonic::Shr,
    Mnemonic::Sar,
    Mnemonic::Rol,
    Mnemonic::Ror,
    Mnemonic::Cmove,
    Mnemonic::Cmovne,
    Mnemonic::Cmovl,
    Mnemonic::Cmovle,
    Mnemonic::Cmovg,
    Mnemonic::Cmovge,
    Mnemonic::Cmovb,
    Mnemonic::Cmovbe,
    Mnemonic::Cmova,
    Mnemonic::Cmovae,
    Mnemonic::Cmovs,
    Mnemonic::Cmovns,
];

/// Further instructions with only register, flag and explicit-operand
/// effects, which cannot fault without a memory operand.
const OTHER_PURE: &[Mnemonic] = &[
    Mnemonic::Movzx,
    Mnemonic::Movsx,
    Mnemonic::Lea,
    Mnemonic::Xchg,
    Mnemonic::Cdq,
    Mnemonic::Cwde,
    Mnemonic::Bswap,
    Mnemonic::Nop,
    Mnemonic::Sete,
    Mnemonic::Setne,
    Mnemonic::Setl,
    Mnemonic::Setle,
    Mnemonic::Setg,
    Mnemonic::Setge,
    Mnemonic::Setb,
    Mnemonic::Setbe,
    Mnemonic::Seta,
    Mnemonic::Setae,
    Mnemonic::Sets,
    Mnemonic::Setns,
];

/// Whether `ins` has only pure effects (see [`ARITHMETIC`]), no prefixes
/// and falls through.
pub fn is_pure(ins: &Instruction) -> bool {
    let m = ins.mnemonic();
    (ARITHMETIC.contains(&m) || OTHER_PURE.contains(&m))
        && ins.flow_control() == FlowControl::Next
        && !ins.has_lock_prefix()
        && !ins.has_rep_prefix()
        && !ins.has_repne_prefix()
}

/// Whether operand `k` of `ins` is a register fixed by its instruction code
/// (`add eax, imm32` has a short form whose `eax` cannot be renamed).
pub fn is_fixed_register(ins: &Instruction, k: u32) -> bool {
    use iced_x86::OpCodeOperandKind as K;
    matches!(
        ins.op_code().op_kind(k),
        K::al | K::cl | K::ax | K::dx | K::eax
    )
}

/// The register a zero test compares with zero: `test r,r` or `cmp r,0`
/// (also in the short forms of `cmp al,0` and `cmp eax,0`).
pub fn zero_test(item: &Item) -> Option<Register> {
    let Item::Instr(ins, _) = item else {
        return None;
    };
    let reg_op = |i: u32| (ins.op_kind(i) == OpKind::Register).then(|| ins.op_register(i));
    match ins.code() {
        Code::Test_rm8_r8 | Code::Test_rm32_r32 => {
            let r = reg_op(0)?;
            (reg_op(1)? == r).then_some(r)
        }
        Code::Cmp_rm8_imm8
        | Code::Cmp_rm32_imm8
        | Code::Cmp_rm32_imm32
        | Code::Cmp_AL_imm8
        | Code::Cmp_EAX_imm32 => (ins.immediate(1) == 0).then_some(reg_op(0)?),
        _ => None,
    }
}

/// Whether `ins` is a `setCC` (the one-operand form with a condition).
pub fn is_setcc(ins: &Instruction) -> bool {
    ins.condition_code() != ConditionCode::None && ins.op_count() == 1
}

/// `(dst, src)` of a 32-bit register-to-register `mov`.
pub fn reg_move(item: &Item) -> Option<(Register, Register)> {
    let Item::Instr(ins, _) = item else {
        return None;
    };
    (matches!(ins.code(), Code::Mov_r32_rm32 | Code::Mov_rm32_r32)
        && ins.op0_kind() == OpKind::Register
        && ins.op1_kind() == OpKind::Register)
        .then(|| (ins.op0_register(), ins.op1_register()))
}

/// The register an instruction adds a constant to, and the constant
/// (modulo 2^32; the caller masks it to the register's width): `add` or
/// `sub` of an immediate, `inc`, `dec`, and `lea r,[r+d]`.
pub fn constant_step(ins: &Instruction) -> Option<(Register, u32)> {
    if ins.op_count() == 0 || ins.op0_kind() != OpKind::Register {
        return None;
    }
    let r = ins.op0_register();
    reg_bit(r)?;
    let imm = || match ins.op1_kind() {
        OpKind::Immediate8 | OpKind::Immediate32 | OpKind::Immediate8to32 => {
            Some(ins.immediate(1) as u32)
        }
        _ => None,
    };
    let step = match ins.mnemonic() {
        Mnemonic::Inc => 1,
        Mnemonic::Dec => u32::MAX,
        Mnemonic::Add if ins.op_count() == 2 => imm()?,
        Mnemonic::Sub if ins.op_count() == 2 => imm()?.wrapping_neg(),
        Mnemonic::Lea
            if ins.memory_base() == r
                && ins.memory_index() == Register::None
                && ins.segment_prefix() == Register::None =>
        {
            ins.memory_displacement32()
        }
        _ => return None,
    };
    Some((r, step))
}

/// Whether `ins` is a shift or rotate whose count may be zero: by `cl`,
/// or by an immediate that is zero modulo 32 (any rotate through carry
/// of a byte or word, whose count is also taken modulo 9 or 17). With a
/// zero count it leaves the flags as they were, so its flag writes are
/// not kills: the flags before may be the flags after.
pub fn may_keep_flags(ins: &Instruction) -> bool {
    use Mnemonic as M;
    let m = ins.mnemonic();
    if matches!(m, M::Rcl | M::Rcr) {
        return true;
    }
    if !matches!(
        m,
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Shld | M::Shrd
    ) || ins.op_count() == 0
    {
        return false;
    }
    let count = ins.op_count() - 1;
    match ins.op_kind(count) {
        OpKind::Immediate8 => ins.immediate8() & 0x1f == 0,
        _ => true,
    }
}

/// The low byte of a 32-bit register (`al` of `eax`), when it has one.
pub fn low_byte(r: Register) -> Option<Register> {
    Reg::from_iced(r)?.low_byte()
}

/// The index of the explicit memory operand of `ins`, if any.
pub fn memory_operand(ins: &Instruction) -> Option<u32> {
    (0..ins.op_count()).find(|&i| ins.op_kind(i) == OpKind::Memory)
}

/// Computes [`Effects`] for items, given which explicit memory operands are
/// promotable slots.
pub struct EffectsOf {
    factory: InstructionInfoFactory,
    /// What `ret` reads.
    return_regs: Locs,
}

impl Default for EffectsOf {
    fn default() -> Self {
        Self::new()
    }
}

impl EffectsOf {
    /// A new calculator (`ret` reads [`RETURN_REGS`]).
    pub fn new() -> Self {
        EffectsOf {
            factory: InstructionInfoFactory::new(),
            return_regs: RETURN_REGS,
        }
    }

    /// A calculator for `residual`: `ret` reads [`RETURN_REGS`], without
    /// `edx` when [`Residual::edx_dead_at_return`] says no caller reads it.
    pub fn for_residual(residual: &Residual) -> Self {
        let mut calc = EffectsOf::new();
        if residual.edx_dead_at_return {
            calc.return_regs &= !reg_bit(Register::EDX).expect("a register");
        }
        calc
    }

    /// The instruction-info factory, for callers that need iced's details.
    pub fn factory(&mut self) -> &mut InstructionInfoFactory {
        &mut self.factory
    }

    /// The effects of `item`; `slot` is the promotable slot its explicit
    /// memory operand accesses, if it does.
    pub fn item(&mut self, item: &Item, slot: Option<usize>) -> Effects {
        match item {
            Item::Instr(ins, _) => self.instruction(ins, slot),
            Item::Address { reg, .. } => {
                let bit = reg_bit(*reg).unwrap_or(0);
                Effects {
                    defs: bit,
                    kills: bit,
                    ..Effects::default()
                }
            }
            Item::CallLabel(..) => Effects {
                uses: !0,
                defs: !0,
                side_effect: true,
                ..Effects::default()
            },
        }
    }

    /// The effects of every item of `residual` (per block, per item), with
    /// no promotable slots.
    pub fn residual(&mut self, residual: &wiper_residual::Residual) -> Vec<Vec<Effects>> {
        residual
            .blocks
            .iter()
            .map(|b| b.items.iter().map(|item| self.item(item, None)).collect())
            .collect()
    }

    /// The effects of one instruction (see [`EffectsOf::item`]).
    pub fn instruction(&mut self, ins: &Instruction, slot: Option<usize>) -> Effects {
        if ins.flow_control() != FlowControl::Next {
            // `ret` hands the registers to the caller; anything else (a
            // call, a jump into the original code, a system call) may read
            // and write every location.
            let (uses, defs) = if ins.mnemonic() == Mnemonic::Ret {
                (self.return_regs, 0)
            } else {
                (!0, !0)
            };
            return Effects {
                uses,
                defs,
                side_effect: true,
                leaves: true,
                ..Effects::default()
            };
        }
        let mut fx = Effects {
            side_effect: !is_pure(ins),
            ..Effects::default()
        };
        let info = info32(&mut self.factory, ins);
        for used in info.used_registers() {
            let reg = used.register();
            let Some(bit) = reg_bit(reg) else {
                let writes = !matches!(used.access(), OpAccess::Read | OpAccess::CondRead);
                if reg.full_register32() == Register::ESP && writes {
                    fx.side_effect = true; // the stack pointer is tracked apart
                } else if reg.is_segment_register() && writes {
                    fx.side_effect = true; // `mov gs, edx`: a new thread pointer
                } else if !reg.is_segment_register() && reg.full_register32() != Register::ESP {
                    fx.side_effect = true; // FPU, SSE, ...: outside the universe
                }
                continue;
            };
            match used.access() {
                OpAccess::Read | OpAccess::CondRead => fx.uses |= bit,
                OpAccess::Write if reg.is_gpr32() => {
                    fx.defs |= bit;
                    fx.kills |= bit;
                }
                OpAccess::Write
                | OpAccess::ReadWrite
                | OpAccess::ReadCondWrite
                | OpAccess::CondWrite => {
                    fx.uses |= bit;
                    fx.defs |= bit;
                }
                OpAccess::None | OpAccess::NoMemAccess => {}
            }
        }
        fx.uses |= flag_bits(ins.rflags_read());
        let written = flag_bits(ins.rflags_modified());
        fx.defs |= written;
        if !may_keep_flags(ins) {
            fx.kills |= written;
        }
        if ins.rflags_modified() & RflagsBits::DF != 0 {
            fx.side_effect = true;
        }
        let explicit = memory_operand(ins);
        match (explicit, slot) {
            (Some(op), Some(s)) => {
                let bit = slot_bit(s);
                match info.op_access(op) {
                    OpAccess::Read | OpAccess::CondRead => fx.uses |= bit,
                    OpAccess::Write => {
                        fx.defs |= bit;
                        fx.kills |= bit;
                    }
                    OpAccess::NoMemAccess => {}
                    _ => {
                        fx.uses |= bit;
                        fx.defs |= bit;
                    }
                }
            }
            (Some(_), None) if ins.mnemonic() != Mnemonic::Lea => fx.side_effect = true,
            _ => {}
        }
        if !info.used_memory().is_empty() && slot.is_none() {
            fx.side_effect = true;
        }
        if ins.mnemonic() == Mnemonic::Mov && ins.op_count() == 2 {
            let location = |i: u32| match ins.op_kind(i) {
                OpKind::Register if ins.op_register(i).is_gpr32() => {
                    reg_bit(ins.op_register(i)).map(|b| b.trailing_zeros())
                }
                OpKind::Memory => slot.map(|s| SLOT_BASE + s as u32),
                _ => None,
            };
            if let (Some(d), Some(s)) = (location(0), location(1)) {
                fx.copy = Some((d, s));
            }
        }
        fx
    }
}

/// iced's instruction info for `ins` in 32-bit code. Instructions built with
/// `Instruction::with*` have no code size, which iced reads as 64-bit
/// (`rax` for `eax`).
pub fn info32<'a>(
    factory: &'a mut InstructionInfoFactory,
    ins: &Instruction,
) -> &'a iced_x86::InstructionInfo {
    let mut ins32 = *ins;
    ins32.set_code_size(iced_x86::CodeSize::Code32);
    factory.info(&ins32)
}

/// The encoded size of a memory displacement: none, a byte or a dword.
pub fn displacement_size(displacement: i32) -> u32 {
    match displacement {
        0 => 0,
        d if i8::try_from(d).is_ok() => 1,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, asm, function};

    /// The listing after the whole optimizer.
    fn optimized(mut r: wiper_residual::Residual) -> String {
        crate::optimize(&mut r);
        crate::testutil::listing(&r)
    }

    /// `items` as a one-block function ending in `ret`.
    fn with_items(items: Vec<wiper_residual::Item>) -> wiper_residual::Residual {
        let mut r = function(|a| a.ret());
        let ret = r.blocks[0].items.pop().expect("ret");
        r.blocks[0].items = items;
        r.blocks[0].items.push(ret);
        r
    }

    /// An instruction item.
    fn instr(ins: iced_x86::Instruction) -> wiper_residual::Item {
        wiper_residual::Item::Instr(ins, wiper_residual::Origin::Original(0))
    }

    /// `mov ecx,ebx; CALL; mov eax,ecx; CALL`, then every register a
    /// caller sees overwritten, then `ret`: the first call must read `ecx`,
    /// the copy must not cross it, and the second call's results are unread.
    fn around_calls(call: wiper_residual::Item) -> wiper_residual::Residual {
        let [set, copy] = [asm(|a| a.mov(ecx, ebx)), asm(|a| a.mov(eax, ecx))].map(|v| instr(v[0]));
        let mut items = vec![set, call.clone(), copy, call];
        use wiper_x86::abi;
        for r in abi::RETURN.iter().chain(&abi::CALLEE_SAVED) {
            let r = iced_x86::code_asm::get_gpr32(r.to_iced()).expect("a 32-bit register");
            items.push(instr(asm(|a| a.mov(r, 0))[0]));
        }
        with_items(items)
    }

    /// A call into the original code reads every register (its arguments
    /// may be anywhere), writes every one (`ecx` after it is not the `ecx`
    /// before) and must stay even when nothing it defines is read.
    #[test]
    fn a_call_reads_writes_and_stays() {
        let call = instr(asm(|a| a.call(0x0804_9000u64))[0]);
        insta::assert_snapshot!(optimized(around_calls(call)), @"
        L0:
          mov ecx,ebx
          call 08049000h
          mov eax,ecx
          call 08049000h
          mov eax,0
          mov edx,0
          mov ebx,0
          mov esi,0
          mov edi,0
          mov ebp,0
          ret
          exit
        ");
    }

    /// A division whose results nobody reads stays: it faults on a zero
    /// divisor, and so must the optimized code.
    #[test]
    fn an_unread_division_stays() {
        let f = function(|a| {
            a.mov(eax, ebx)?;
            a.xor(edx, edx)?;
            a.div(ecx)?;
            a.mov(eax, 0)?;
            a.mov(edx, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(optimized(f), @"
        L0:
          mov eax,ebx
          xor edx,edx
          div ecx
          mov eax,0
          mov edx,0
          ret
          exit
        ");
    }

    /// A call to a residual block, likewise.
    #[test]
    fn a_call_to_a_residual_block_reads_writes_and_stays() {
        let call = wiper_residual::Item::CallLabel(
            wiper_residual::Label(0),
            wiper_residual::Origin::Original(0),
        );
        insta::assert_snapshot!(optimized(around_calls(call)), @"
        L0:
          mov ecx,ebx
          call L0
          mov eax,ecx
          call L0
          mov eax,0
          mov edx,0
          mov ebx,0
          mov esi,0
          mov edi,0
          mov ebp,0
          ret
          exit
        ");
    }

    /// An address item writes its register: a copy made before it is not
    /// the register's value after it.
    #[test]
    fn an_address_item_overwrites_its_register() {
        let address = wiper_residual::Item::Address {
            reg: iced_x86::Register::ECX,
            addr: 0x0804_c000,
            origin: wiper_residual::Origin::Original(0),
        };
        let [copy, read] =
            [asm(|a| a.mov(ecx, ebx)), asm(|a| a.mov(eax, ecx))].map(|v| instr(v[0]));
        let r = with_items(vec![copy, address, read]);
        insta::assert_snapshot!(optimized(r), @"
        L0:
          mov ecx,&0x804c000
          mov eax,ecx
          ret
          exit
        ");
    }

    /// `sub` writes CF, `shl` by `cl` may keep it (a zero count), `adc`
    /// reads it: the `sub` stays although `eax` is dead.
    #[test]
    fn a_shift_by_cl_does_not_kill_the_flags() {
        let f = function(|a| {
            a.sub(eax, ebx)?;
            a.shl(esi, cl)?;
            a.adc(edx, 0)?;
            a.mov(eax, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, |r, c| crate::cleanup::eliminate_dead(r, c, None)), @"
        L0:
          sub eax,ebx
          shl esi,cl
          adc edx,0
          mov eax,0
          ret
          exit
        ");
    }

    /// By a non-zero constant the shift writes CF for sure: the `sub`
    /// goes.
    #[test]
    fn a_shift_by_a_constant_kills_the_flags() {
        let f = function(|a| {
            a.sub(eax, ebx)?;
            a.shl(esi, 3)?;
            a.adc(edx, 0)?;
            a.mov(eax, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, |r, c| crate::cleanup::eliminate_dead(r, c, None)), @"
        L0:
          shl esi,3
          adc edx,0
          mov eax,0
          ret
          exit
        ");
    }

    /// Near miss: a shift by 0 (or 32, masked to 0) leaves the flags as
    /// they were, so the `sub` whose carry `adc` reads stays.
    #[test]
    fn a_shift_by_a_masked_zero_keeps_the_flags() {
        for count in [0, 32] {
            let f = function(|a| {
                a.sub(eax, ebx)?;
                a.shl(esi, count)?;
                a.adc(edx, 0)?;
                a.mov(eax, 0)?;
                a.ret()
            });
            let out = after(f, |r, c| crate::cleanup::eliminate_dead(r, c, None));
            assert!(out.contains("sub eax,ebx"), "{out}");
        }
    }

    /// `jle` and `jg` read SF and OF as well as ZF: the `test` after `dec`
    /// (which sets OF from the decrement where `test` clears it) stays
    /// before them, and goes before `je`, which reads ZF only.
    #[test]
    fn a_zero_test_before_a_signed_compare_branch_stays() {
        use iced_x86::ConditionCode as Cc;
        let dec_test = || {
            asm(|a| {
                a.dec(eax)?;
                a.test(eax, eax)
            })
        };
        for cc in [Cc::le, Cc::g] {
            let r = crate::testutil::two_way(dec_test(), cc);
            crate::testutil::assert_unchanged(r, crate::peephole::run);
        }
        let r = crate::testutil::two_way(dec_test(), Cc::e);
        let listing = after(r, crate::peephole::run);
        assert!(!listing.contains("test"), "{listing}");
    }
}
