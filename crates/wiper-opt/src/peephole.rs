//! Peepholes over a few neighbouring items, using liveness:
//! - `mov t,a; mov a,b; mov b,t` becomes `xchg a,b` (plus `mov t,b` if `t`
//!   is still read);
//! - `mov a,b; OP a,c; mov b,a` becomes `OP b,c` when `a` is dead after,
//!   and so does `mov a,c; OP a,b; mov b,a` for a commutative `OP`;
//! - `mov t,a; mov a,b; OP a,t` becomes `OP a,b` for a commutative `OP`
//!   when `t` is dead after;
//! - `test r,r` or `cmp r,0` right after an arithmetic instruction that
//!   wrote `r` goes
//!   when only ZF, SF and PF are read afterwards (they are the same);
//! - `imul r,s,1` becomes `mov r,s` (`s` a register or memory) when the
//!   flags it writes are dead;
//! - `mov a,[m]; OP b,a` becomes `OP b,[m]` when `a` is dead after;
//! - `add a,imm; mov b,[a+d]` becomes `mov b,[a+d+imm]` when `a` and the
//!   flags are dead after;
//! - `movzx r,x; OP rl; mov x,rl` becomes `OP x` and `movzx r,x; test rl,rl`
//!   becomes `test x,x` (or `cmp byte x,0`) when `r` is dead after;
//! - `movzx r,b; X` with `X` reading only `rl` reads `b` instead when `r`
//!   is dead after `X` (a byte in memory for `b` when `X` extends `rl`);
//! - `movzx r,rl` (the low byte of `r` itself) goes when the next
//!   instruction reads only that byte of `r` and `r` is dead after it.

use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register, RflagsBits};
use wiper_residual::{Item, Residual};
use wiper_x86::Reg;

use crate::build::mov;
use crate::effects::{
    displacement_size, flag_bits, is_fixed_register, low_byte, reg_bit, reg_move, zero_test,
    Effects, EffectsOf, Locs, ALL_FLAGS,
};
use crate::liveness::liveness;

/// Whether `reg` is in `live`.
fn is_live(live: Locs, reg: Register) -> bool {
    reg_bit(reg).is_some_and(|b| live & b != 0)
}

/// Two-operand arithmetic `OP a, c` that reads and writes `a` (a register)
/// and reads `c` (a register or an immediate), with no implicit operands.
fn two_address(ins: &Instruction) -> bool {
    use Mnemonic as M;
    matches!(
        ins.mnemonic(),
        M::Add | M::Sub | M::And | M::Or | M::Xor | M::Adc | M::Sbb | M::Imul
    ) && ins.op_count() == 2
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register().is_gpr32()
        && !is_fixed_register(ins, 0)
        && matches!(
            ins.op1_kind(),
            OpKind::Register | OpKind::Immediate8to32 | OpKind::Immediate32
        )
        && !ins.has_lock_prefix()
}

/// Two-operand arithmetic on registers whose operands can be swapped
/// without changing the result or the flags.
fn commutative(ins: &Instruction) -> bool {
    two_address(ins)
        && matches!(
            ins.mnemonic(),
            Mnemonic::Add | Mnemonic::And | Mnemonic::Or | Mnemonic::Xor | Mnemonic::Imul
        )
}

/// An instruction that writes `reg` with its result and sets ZF, SF and PF
/// from it, as `test reg, reg` would.
fn sets_zf_sf_pf_of(ins: &Instruction, reg: Register) -> bool {
    use Mnemonic as M;
    matches!(
        ins.mnemonic(),
        M::Add | M::Sub | M::And | M::Or | M::Xor | M::Inc | M::Dec | M::Neg | M::Adc | M::Sbb
    ) && ins.op0_kind() == OpKind::Register
        && ins.op0_register() == reg
}

/// Rewrites what it can; returns whether anything changed.
pub fn run(residual: &mut Residual, calc: &mut EffectsOf) -> bool {
    let fx = calc.residual(residual);
    let live = liveness(residual, &fx);
    let mut changed = false;
    for (b, block) in residual.blocks.iter_mut().enumerate() {
        let items = std::mem::take(&mut block.items);
        let mut keep: Vec<Item> = Vec::with_capacity(items.len());
        let mut k = 0;
        while k < items.len() {
            let site = Site {
                window: &items[k..],
                out: &live.live_out[b],
                fx: &fx[b],
                k,
            };
            match rewrite(&site, calc, &mut keep) {
                Some(consumed) => {
                    changed = true;
                    k += consumed;
                }
                None => {
                    keep.push(items[k].clone());
                    k += 1;
                }
            }
        }
        block.items = keep;
    }
    changed
}

/// Where a rule is tried: at item `k` of a block.
struct Site<'a> {
    /// The block's items from item `k` on.
    window: &'a [Item],
    /// What is live after each item of the block.
    out: &'a [Locs],
    /// The effects of each item of the block.
    fx: &'a [Effects],
    /// The index of the first item of `window` in the block.
    k: usize,
}

/// Tries the rules in turn at `s`; the first that applies pushes its
/// replacement onto `keep` (the rewritten items so far) and returns how many
/// items it consumed.
fn rewrite(s: &Site<'_>, calc: &mut EffectsOf, keep: &mut Vec<Item>) -> Option<usize> {
    moves_to_xchg(s, keep)
        .or_else(|| op_on_source(s, keep))
        .or_else(|| commuted_op(s, keep))
        .or_else(|| load_into_op(s, keep))
        .or_else(|| op_on_byte(s, keep))
        .or_else(|| op_on_dword(s, keep))
        .or_else(|| test_byte(s, keep))
        .or_else(|| drop_self_extension(s, calc))
        .or_else(|| add_into_address(s, calc, keep))
        .or_else(|| drop_redundant_test(s, keep))
        .or_else(|| imul_by_one(s, keep))
        .or_else(|| extended_byte_source(s, calc, keep))
}

/// `movzx r,b; X` where `X` reads only the low byte of `r` becomes `X`
/// reading the byte register `b` itself, when `r` is dead after `X` and `X`
/// names the low byte as an explicit register operand (`movzx ecx,al;
/// movzx edx,cl` is `movzx edx,al`; `movzx edx,al; mov [ebp],dl` is
/// `mov [ebp],al`); with a byte in memory for `b`, when `X` extends the
/// low byte (`movzx edx,[esi]; movzx ecx,dl` is `movzx ecx,[esi]`).
fn extended_byte_source(s: &Site<'_>, calc: &mut EffectsOf, keep: &mut Vec<Item>) -> Option<usize> {
    let [Item::Instr(ext, _), Item::Instr(x, origin), ..] = s.window else {
        return None;
    };
    if ext.code() != Code::Movzx_r32_rm8 {
        return None;
    }
    let r = ext.op0_register();
    let rl = low_byte(r)?;
    if is_live(s.out[s.k + 1], r) || !reads_only_low_byte(calc, x, r) {
        return None;
    }
    if ext.op1_kind() == OpKind::Memory {
        // `movzx r,[m]; movzx s,rl` is `movzx s,[m]` (and so for `movsx`).
        let extends = matches!(x.code(), Code::Movzx_r32_rm8 | Code::Movsx_r32_rm8);
        if !extends || x.op1_kind() != OpKind::Register || x.op1_register() != rl {
            return None;
        }
        zero_extended_byte(ext)?; // the address does not use `r`
        let mut new = *ext;
        new.set_code(x.code());
        new.set_op0_register(x.op0_register());
        keep.push(Item::Instr(new, *origin));
        return Some(2);
    }
    let b = ext.op1_register();
    let mut new = *x;
    let mut named = false;
    for k in 0..x.op_count() {
        if x.op_kind(k) == OpKind::Register && x.op_register(k) == rl {
            if is_fixed_register(x, k) {
                return None; // `shl edx, cl`: the count is `cl` or nothing
            }
            new.set_op_register(k, b);
            named = true;
        }
    }
    let in_address =
        x.memory_base().full_register32() == r || x.memory_index().full_register32() == r;
    if !named || in_address {
        return None;
    }
    keep.push(Item::Instr(new, *origin));
    Some(2)
}

/// `mov t,a; mov a,b; mov b,t` becomes `xchg a,b` (plus `mov t,b` if `t` is live).
fn moves_to_xchg(s: &Site<'_>, keep: &mut Vec<Item>) -> Option<usize> {
    let [m1, m2, m3, ..] = s.window else {
        return None;
    };
    let (Some((t, a)), Some((a2, b2)), Some((b3, t3))) = (reg_move(m1), reg_move(m2), reg_move(m3))
    else {
        return None;
    };
    if !(a2 == a && b3 == b2 && t3 == t && t != a && a != b2 && t != b2) {
        return None;
    }
    let origin = match m2 {
        Item::Instr(_, o) => *o,
        _ => unreachable!("a move is an instruction"),
    };
    let xchg = Instruction::with2(Code::Xchg_rm32_r32, a, b2).expect("xchg r32, r32 is encodable");
    keep.push(Item::Instr(xchg, origin));
    if is_live(s.out[s.k + 2], t) {
        keep.push(Item::Instr(mov(t, b2), origin));
    }
    Some(3)
}

/// `mov a,b; OP a,c; mov b,a` becomes `OP b,c` when `a` is dead after;
/// so does `mov a,c; OP a,b; mov b,a` for a commutative `OP` (the result
/// lands in the operand that was not copied).
fn op_on_source(s: &Site<'_>, keep: &mut Vec<Item>) -> Option<usize> {
    let [m1, Item::Instr(op, origin), m3, ..] = s.window else {
        return None;
    };
    let (Some((a, b1)), Some((b3, a3))) = (reg_move(m1), reg_move(m3)) else {
        return None;
    };
    if !(a3 == a
        && a != b1
        && a != b3
        && two_address(op)
        && op.op0_register() == a
        && !is_live(s.out[s.k + 2], a))
    {
        return None;
    }
    let mut new = *op;
    if b3 == b1 {
        new.set_op0_register(b1);
        if new.op1_kind() == OpKind::Register && new.op1_register() == a {
            new.set_op1_register(b1);
        }
    } else if commutative(op) && op.op1_kind() == OpKind::Register && op.op1_register() == b3 {
        new.set_op0_register(b3);
        new.set_op1_register(b1);
    } else {
        return None;
    }
    keep.push(Item::Instr(new, *origin));
    Some(3)
}

/// `mov t,a; mov a,b; OP a,t` becomes `OP a,b` for a commutative `OP`, `t` dead after.
fn commuted_op(s: &Site<'_>, keep: &mut Vec<Item>) -> Option<usize> {
    let [m1, m2, Item::Instr(op, origin), ..] = s.window else {
        return None;
    };
    let (Some((t, a)), Some((a2, b2))) = (reg_move(m1), reg_move(m2)) else {
        return None;
    };
    if !(a2 == a
        && t != a
        && b2 != t
        && commutative(op)
        && op.op0_register() == a
        && op.op1_kind() == OpKind::Register
        && op.op1_register() == t
        && !is_live(s.out[s.k + 2], t))
    {
        return None;
    }
    let mut new = *op;
    new.set_op1_register(b2);
    keep.push(Item::Instr(new, *origin));
    Some(3)
}

/// `mov a,[m]; OP b,a` becomes `OP b,[m]` when `a` is dead after.
fn load_into_op(s: &Site<'_>, keep: &mut Vec<Item>) -> Option<usize> {
    let [Item::Instr(load, _), Item::Instr(op, op_origin), ..] = s.window else {
        return None;
    };
    let folded = fold_load(load, op, s.out[s.k + 1])?;
    keep.push(Item::Instr(folded, *op_origin));
    Some(2)
}

/// `movzx r,x; OP rl; mov x,rl` becomes `OP x` when `r` is dead after.
fn op_on_byte(s: &Site<'_>, keep: &mut Vec<Item>) -> Option<usize> {
    let [Item::Instr(ext, _), Item::Instr(op, origin), Item::Instr(st, _), ..] = s.window else {
        return None;
    };
    let x = byte_through(ext, op, st).filter(|_| !is_live(s.out[s.k + 2], ext.op0_register()))?;
    keep.push(Item::Instr(x, *origin));
    Some(3)
}

/// `mov r,[m]; OP r,c; mov [m],r` becomes `OP [m],c` when `r` is dead after.
fn op_on_dword(s: &Site<'_>, keep: &mut Vec<Item>) -> Option<usize> {
    let [Item::Instr(ld, _), Item::Instr(op, origin), Item::Instr(st, _), ..] = s.window else {
        return None;
    };
    let x = dword_through(ld, op, st).filter(|_| !is_live(s.out[s.k + 2], ld.op0_register()))?;
    keep.push(Item::Instr(x, *origin));
    Some(3)
}

/// `movzx r,x; test rl,rl` becomes `test x,x` (`cmp x,0`) when `r` is dead after.
fn test_byte(s: &Site<'_>, keep: &mut Vec<Item>) -> Option<usize> {
    let [Item::Instr(ext, _), test @ Item::Instr(_, origin), ..] = s.window else {
        return None;
    };
    let x = zero_extended_byte(ext).filter(|_| {
        zero_test(test) == low_byte(ext.op0_register())
            && !is_live(s.out[s.k + 1], ext.op0_register())
    })?;
    let tested = match x {
        ByteOperand::Reg(x) => Instruction::with2(Code::Test_rm8_r8, x, x),
        ByteOperand::Mem(m) => Instruction::with2(Code::Cmp_rm8_imm8, m, 0),
    };
    keep.push(Item::Instr(tested.expect("encodable byte test"), *origin));
    Some(2)
}

/// `movzx r,rl` goes when the next instruction reads only `rl` and `r` is dead after it.
fn drop_self_extension(s: &Site<'_>, calc: &mut EffectsOf) -> Option<usize> {
    let [Item::Instr(ext, _), Item::Instr(x, _), ..] = s.window else {
        return None;
    };
    zero_extends_itself(ext)
        .is_some_and(|r| !is_live(s.out[s.k + 1], r) && reads_only_low_byte(calc, x, r))
        .then_some(1)
}

/// `add a,imm; X` with `[a+d]` becomes `X` with `[a+d+imm]` when `a` is dead after `X`.
fn add_into_address(s: &Site<'_>, calc: &mut EffectsOf, keep: &mut Vec<Item>) -> Option<usize> {
    let [Item::Instr(add, _), Item::Instr(x, x_origin), ..] = s.window else {
        return None;
    };
    let k = s.k;
    let folded = fold_address(
        calc,
        add,
        x,
        (s.fx[k].defs, s.fx[k + 1].kills),
        s.out[k + 1],
    )?;
    keep.push(Item::Instr(folded, *x_origin));
    Some(2)
}

/// `test r,r` or `cmp r,0` goes after an instruction that set ZF/SF/PF from `r`
/// when no other flag is live.
fn drop_redundant_test(s: &Site<'_>, keep: &[Item]) -> Option<usize> {
    let item = s.window.first()?;
    if !matches!(item, Item::Instr(..)) {
        return None;
    }
    let zf_sf_pf = flag_bits(RflagsBits::ZF | RflagsBits::SF | RflagsBits::PF);
    let (Some(r), true) = (zero_test(item), s.out[s.k] & ALL_FLAGS & !zf_sf_pf == 0) else {
        return None;
    };
    let Some(Item::Instr(prev, _)) = keep.last() else {
        return None;
    };
    sets_zf_sf_pf_of(prev, r).then_some(1)
}

/// `imul r,s,1` becomes `mov r,s` when the flags it writes are dead.
fn imul_by_one(s: &Site<'_>, keep: &mut Vec<Item>) -> Option<usize> {
    let Some(Item::Instr(ins, origin)) = s.window.first() else {
        return None;
    };
    let k = s.k;
    if !(matches!(
        ins.code(),
        Code::Imul_r32_rm32_imm8 | Code::Imul_r32_rm32_imm32
    ) && ins.immediate(2) == 1
        && s.fx[k].defs & s.out[k] & ALL_FLAGS == 0)
    {
        return None;
    }
    let copy = if ins.op1_kind() == OpKind::Register {
        mov(ins.op0_register(), ins.op1_register())
    } else {
        // The same memory operand, loaded.
        let mut load = *ins;
        load.set_code(Code::Mov_r32_rm32);
        load
    };
    keep.push(Item::Instr(copy, *origin));
    Some(1)
}

/// A byte operand: a byte register or a memory operand.
#[derive(Clone, Copy)]
enum ByteOperand {
    Reg(Register),
    Mem(iced_x86::MemoryOperand),
}

/// The memory operand of `ins` (which has one).
fn memory_of(ins: &Instruction) -> iced_x86::MemoryOperand {
    iced_x86::MemoryOperand::new(
        ins.memory_base(),
        ins.memory_index(),
        ins.memory_index_scale(),
        ins.memory_displacement32() as i32 as i64,
        ins.memory_displ_size(),
        false,
        ins.segment_prefix(),
    )
}

/// The byte a `movzx r32, x8` reads, when it is not part of `r` and `r`
/// has a low byte.
fn zero_extended_byte(ext: &Instruction) -> Option<ByteOperand> {
    if ext.code() != Code::Movzx_r32_rm8 || low_byte(ext.op0_register()).is_none() {
        return None;
    }
    let r = ext.op0_register();
    match ext.op1_kind() {
        OpKind::Register if ext.op1_register().full_register32() != r => {
            Some(ByteOperand::Reg(ext.op1_register()))
        }
        OpKind::Memory if ext.memory_base() != r && ext.memory_index() != r => {
            Some(ByteOperand::Mem(memory_of(ext)))
        }
        _ => None,
    }
}

/// `movzx r,x; OP rl; mov x,rl` (a byte read, changed and written back
/// through `r`): `OP x`, for `OP` an `inc`, `dec`, `neg`, `not`, or an
/// add, sub, and, or, xor of an immediate. The flags are the same, as
/// `OP` computes the same value.
fn byte_through(ext: &Instruction, op: &Instruction, st: &Instruction) -> Option<Instruction> {
    use Code as C;
    let x = zero_extended_byte(ext)?;
    let rl = low_byte(ext.op0_register())?;
    let unary = matches!(op.code(), C::Inc_rm8 | C::Dec_rm8 | C::Neg_rm8 | C::Not_rm8);
    let with_imm = matches!(
        op.code(),
        C::Add_rm8_imm8 | C::Sub_rm8_imm8 | C::And_rm8_imm8 | C::Or_rm8_imm8 | C::Xor_rm8_imm8
    );
    if !(unary || with_imm) || op.op0_kind() != OpKind::Register || op.op0_register() != rl {
        return None;
    }
    if st.code() != C::Mov_rm8_r8 || st.op1_register() != rl {
        return None;
    }
    let stored_back = match x {
        ByteOperand::Reg(x) => st.op0_kind() == OpKind::Register && st.op0_register() == x,
        ByteOperand::Mem(_) => st.op0_kind() == OpKind::Memory && same_memory(st, ext),
    };
    if !stored_back {
        return None;
    }
    let imm = with_imm.then(|| op.immediate(1) as u8 as i8 as i32);
    match (x, imm) {
        (ByteOperand::Reg(x), None) => Instruction::with1(op.code(), x),
        (ByteOperand::Reg(x), Some(i)) => Instruction::with2(op.code(), x, i),
        (ByteOperand::Mem(m), None) => Instruction::with1(op.code(), m),
        (ByteOperand::Mem(m), Some(i)) => Instruction::with2(op.code(), m, i),
    }
    .ok()
}

/// Whether the memory operands of `a` and `b` are the same address.
fn same_memory(a: &Instruction, b: &Instruction) -> bool {
    a.memory_base() == b.memory_base()
        && a.memory_index() == b.memory_index()
        && a.memory_index_scale() == b.memory_index_scale()
        && a.memory_displacement32() == b.memory_displacement32()
        && a.segment_prefix() == b.segment_prefix()
}

/// `mov r,[m]; OP r,c; mov [m],r` (a dword read, changed and written back
/// through `r`): `OP [m],c`, for `OP` an `inc`, `dec`, `neg`, `not`, or an
/// add, sub, and, or, xor of an immediate or of a register other than `r`.
/// The flags are the same, as `OP` computes the same value; `m` must not
/// be addressed through `r`.
fn dword_through(ld: &Instruction, op: &Instruction, st: &Instruction) -> Option<Instruction> {
    use Code as C;
    let r = ld.op0_register();
    let loads = matches!(ld.code(), C::Mov_r32_rm32 | C::Mov_EAX_moffs32)
        && ld.op1_kind() == OpKind::Memory;
    if !loads || ld.memory_base() == r || ld.memory_index() == r || op.has_lock_prefix() {
        return None;
    }
    let stores_back = matches!(st.code(), C::Mov_rm32_r32 | C::Mov_moffs32_EAX)
        && st.op0_kind() == OpKind::Memory
        && st.op1_register() == r
        && same_memory(ld, st);
    if !stores_back || op.op0_kind() != OpKind::Register || op.op0_register() != r {
        return None;
    }
    let m = memory_of(ld);
    let source =
        || (op.op1_kind() == OpKind::Register && op.op1_register() != r).then(|| op.op1_register());
    match op.code() {
        C::Inc_rm32 | C::Dec_rm32 | C::Neg_rm32 | C::Not_rm32 => Instruction::with1(op.code(), m),
        C::Add_rm32_imm8
        | C::Sub_rm32_imm8
        | C::And_rm32_imm8
        | C::Or_rm32_imm8
        | C::Xor_rm32_imm8
        | C::Add_rm32_imm32
        | C::Sub_rm32_imm32
        | C::And_rm32_imm32
        | C::Or_rm32_imm32
        | C::Xor_rm32_imm32 => Instruction::with2(op.code(), m, op.immediate(1) as u32 as i32),
        C::Add_EAX_imm32
        | C::Sub_EAX_imm32
        | C::And_EAX_imm32
        | C::Or_EAX_imm32
        | C::Xor_EAX_imm32 => {
            let code = match op.code() {
                C::Add_EAX_imm32 => C::Add_rm32_imm32,
                C::Sub_EAX_imm32 => C::Sub_rm32_imm32,
                C::And_EAX_imm32 => C::And_rm32_imm32,
                C::Or_EAX_imm32 => C::Or_rm32_imm32,
                _ => C::Xor_rm32_imm32,
            };
            Instruction::with2(code, m, op.immediate(1) as u32 as i32)
        }
        C::Add_rm32_r32 | C::Add_r32_rm32 => Instruction::with2(C::Add_rm32_r32, m, source()?),
        C::Sub_rm32_r32 | C::Sub_r32_rm32 => Instruction::with2(C::Sub_rm32_r32, m, source()?),
        C::And_rm32_r32 | C::And_r32_rm32 => Instruction::with2(C::And_rm32_r32, m, source()?),
        C::Or_rm32_r32 | C::Or_r32_rm32 => Instruction::with2(C::Or_rm32_r32, m, source()?),
        C::Xor_rm32_r32 | C::Xor_r32_rm32 => Instruction::with2(C::Xor_rm32_r32, m, source()?),
        _ => return None,
    }
    .ok()
}

/// The register of a `movzx r32, r8` whose source is the low byte of the
/// destination itself.
fn zero_extends_itself(ins: &Instruction) -> Option<Register> {
    (ins.code() == Code::Movzx_r32_rm8
        && ins.op1_kind() == OpKind::Register
        && ins.op1_register().full_register32() == ins.op0_register()
        && is_low_byte(ins.op1_register()))
    .then(|| ins.op0_register())
}

/// `al`, `cl`, `dl` or `bl`: the low byte of a 32-bit register.
fn is_low_byte(r: Register) -> bool {
    Reg::from_iced(r).and_then(Reg::low_byte) == Some(r)
}

/// Whether `x` touches the 32-bit register `r` only by reading its low byte.
fn reads_only_low_byte(calc: &mut EffectsOf, x: &Instruction, r: Register) -> bool {
    let info = crate::effects::info32(calc.factory(), x);
    let mut reads = false;
    for used in info.used_registers() {
        let u = used.register();
        if !(u.is_gpr8() || u.is_gpr16() || u.is_gpr32()) || u.full_register32() != r {
            continue;
        }
        if is_low_byte(u) && used.access() == iced_x86::OpAccess::Read {
            reads = true;
        } else {
            return false;
        }
    }
    reads
}

/// `add a, imm` followed by `x` that uses `a` only as the base of its memory
/// operand, with `a` dead after `x` (or overwritten by it) and the flags of
/// the `add` unread (or surely overwritten by `x`, whose effects kill
/// `x_kills`), and no implicit operand of `x` reading `a` (`mul`'s `eax`):
/// `x` with the immediate folded into its displacement.
fn fold_address(
    calc: &mut EffectsOf,
    add: &Instruction,
    x: &Instruction,
    (add_defs, x_kills): (Locs, Locs),
    live_after_x: Locs,
) -> Option<Instruction> {
    let imm = match add.code() {
        Code::Add_rm32_imm8 | Code::Add_rm32_imm32 | Code::Add_EAX_imm32 => add.immediate(1) as i32,
        Code::Sub_rm32_imm8 | Code::Sub_rm32_imm32 | Code::Sub_EAX_imm32 => {
            (add.immediate(1) as i32).wrapping_neg()
        }
        _ => return None,
    };
    // Not `esp`: the stack pointer is outside the liveness universe, so
    // "dead after `x`" cannot be told, and later `[esp+d]` operands rely on
    // the adjustment.
    if add.op0_kind() != OpKind::Register || reg_bit(add.op0_register()).is_none() {
        return None;
    }
    let a = add.op0_register();
    let op = crate::effects::memory_operand(x)?;
    let writes_a = op != 0
        && x.op0_kind() == OpKind::Register
        && x.op0_register() == a
        && x.mnemonic() == Mnemonic::Mov;
    let reads_a_otherwise = (0..x.op_count()).any(|i| {
        x.op_kind(i) == OpKind::Register
            && x.op_register(i).full_register32() == a
            && !(i == 0 && writes_a)
    });
    // Implicit operands too: `mul dword [eax+d]` multiplies `eax`.
    let implicit_use = crate::effects::info32(calc.factory(), x)
        .used_registers()
        .iter()
        .any(|u| {
            let r = u.register();
            (r.is_gpr8() || r.is_gpr16() || r.is_gpr32())
                && r.full_register32() == a
                && !matches!(
                    (u.access(), writes_a),
                    (iced_x86::OpAccess::Read, _) | (iced_x86::OpAccess::Write, true)
                )
        });
    if x.memory_base() != a
        || x.memory_index() == a
        || reads_a_otherwise
        || implicit_use
        || x.rflags_read() != 0
        || add_defs & live_after_x & ALL_FLAGS & !x_kills != 0
        || (!writes_a && is_live(live_after_x, a))
    {
        return None;
    }
    let displacement = (x.memory_displacement32() as i32).wrapping_add(imm);
    let mut folded = *x;
    folded.set_memory_displacement32(displacement as u32);
    folded.set_memory_displ_size(displacement_size(displacement));
    Some(folded)
}

/// `mov a, [m]` followed by `OP b, a` (a move, two-operand arithmetic or a
/// compare)
/// with `a` dead after it: `OP b, [m]`.
fn fold_load(load: &Instruction, op: &Instruction, live_after_op: Locs) -> Option<Instruction> {
    use Mnemonic as M;
    if load.code() != Code::Mov_r32_rm32 || load.op1_kind() != OpKind::Memory {
        return None;
    }
    let a = load.op0_register();
    let code = match op.mnemonic() {
        M::Mov => Code::Mov_r32_rm32,
        M::Add => Code::Add_r32_rm32,
        M::Sub => Code::Sub_r32_rm32,
        M::And => Code::And_r32_rm32,
        M::Or => Code::Or_r32_rm32,
        M::Xor => Code::Xor_r32_rm32,
        M::Adc => Code::Adc_r32_rm32,
        M::Sbb => Code::Sbb_r32_rm32,
        M::Cmp => Code::Cmp_r32_rm32,
        M::Imul if op.op_count() == 2 => Code::Imul_r32_rm32,
        _ => return None,
    };
    let b = op.op0_register();
    if op.op_count() != 2
        || op.op0_kind() != OpKind::Register
        || !b.is_gpr32()
        || op.op1_kind() != OpKind::Register
        || op.op1_register() != a
        || b == a
        || is_live(live_after_op, a)
        || op.has_lock_prefix()
    {
        return None;
    }
    let memory = iced_x86::MemoryOperand::new(
        load.memory_base(),
        load.memory_index(),
        load.memory_index_scale(),
        load.memory_displacement32() as i32 as i64,
        displacement_size(load.memory_displacement32() as i32),
        false,
        load.segment_prefix(),
    );
    Instruction::with2(code, b, memory).ok()
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode as Cc;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, function, residual};

    /// The listing after one round of peepholes.
    fn peep(r: wiper_residual::Residual) -> String {
        after(r, super::run)
    }

    #[test]
    fn a_swap_through_a_temporary_becomes_xchg() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.mov(eax, ebx)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          xchg ebx,eax
          ret
          exit
        ");
    }

    /// Near miss: the temporary goes to `edx`, not back into `ebx`.
    #[test]
    fn a_move_elsewhere_is_no_swap() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.mov(eax, ebx)?;
            a.mov(edx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov ecx,eax
          mov eax,ebx
          mov edx,ecx
          ret
          exit
        ");
    }

    #[test]
    fn two_address_arithmetic_through_a_copy_goes_direct() {
        let f = function(|a| {
            a.mov(ecx, ebx)?;
            a.sub(ecx, esi)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          sub ebx,esi
          ret
          exit
        ");
    }

    /// Near miss: the copy `eax` is read after (it is live at `ret`).
    #[test]
    fn two_address_arithmetic_whose_copy_is_read_stays() {
        let f = function(|a| {
            a.mov(eax, ebx)?;
            a.sub(eax, esi)?;
            a.mov(ebx, eax)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov eax,ebx
          sub eax,esi
          mov ebx,eax
          ret
          exit
        ");
    }

    #[test]
    fn a_commutative_operand_moved_aside_is_used_in_place() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.mov(eax, ebx)?;
            a.add(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          add eax,ebx
          ret
          exit
        ");
    }

    /// Near miss: `sub` is not commutative (`ebx - eax` is not
    /// `eax - ebx`).
    #[test]
    fn a_non_commutative_operand_moved_aside_stays() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.mov(eax, ebx)?;
            a.sub(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov ecx,eax
          mov eax,ebx
          sub eax,ecx
          ret
          exit
        ");
    }

    /// `dec eax; test eax,eax; je`: only ZF is read, which `dec` set the
    /// same.
    #[test]
    fn a_zero_test_after_arithmetic_on_the_register_goes() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.dec(eax)?;
                    a.test(eax, eax)
                }),
                branch(Cc::e, 1, 1),
            ),
            block(1, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(peep(r), @"
        L0:
          dec eax
          je L1 else L1
        L1:
          ret
          exit
        ");
    }

    /// Near miss: `jb` reads CF, which `test` clears and `dec` keeps.
    #[test]
    fn a_zero_test_whose_carry_is_read_stays() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.dec(eax)?;
                    a.test(eax, eax)
                }),
                branch(Cc::b, 1, 1),
            ),
            block(1, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(peep(r), @"
        L0:
          dec eax
          test eax,eax
          jb L1 else L1
        L1:
          ret
          exit
        ");
    }

    #[test]
    fn imul_by_one_with_dead_flags_is_a_move() {
        let f = function(|a| {
            a.imul_3(eax, ebx, 1)?;
            a.imul_3(edx, dword_ptr(esi + 8), 1)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov eax,ebx
          mov edx,[esi+8]
          ret
          exit
        ");
    }

    #[test]
    fn a_zero_extended_byte_is_read_where_it_came_from() {
        let f = function(|a| {
            a.movzx(ecx, al)?;
            a.movzx(edx, cl)?;
            a.mov(byte_ptr(ebp), dl)?;
            a.movzx(ecx, bl)?;
            a.add(cl, 1)?;
            a.mov(byte_ptr(ebp + 1), cl)?;
            a.movzx(ecx, al)?;
            a.shl(edx, cl)?;
            a.ret()
        });
        // One rewrite per run (the optimizer repeats it); `add cl,1`
        // writes the byte, so `bl` cannot stand for it; a shift counts by
        // `cl` only.
        insta::assert_snapshot!(peep(f), @"
        L0:
          movzx edx,al
          mov [ebp],dl
          movzx ecx,bl
          add cl,1
          mov [ebp+1],cl
          movzx ecx,al
          shl edx,cl
          ret
          exit
        ");
    }

    /// A byte loaded from memory and extended again is loaded into the
    /// second register; near misses: the first register read after, and
    /// a load whose address is the register itself.
    #[test]
    fn a_byte_loaded_and_extended_again_is_loaded_into_the_second_register() {
        let f = function(|a| {
            a.movzx(edx, byte_ptr(esi - 1))?;
            a.movsx(ecx, dl)?;
            a.mov(byte_ptr(ebp), cl)?;
            a.movzx(edx, byte_ptr(esi))?;
            a.movzx(ecx, dl)?;
            a.mov(byte_ptr(ebp + 1), dl)?;
            a.movzx(edx, byte_ptr(edx))?;
            a.movzx(ecx, dl)?;
            a.mov(byte_ptr(ebp + 2), cl)?;
            a.ret()
        });
        // (The last `movzx ecx,dl` goes by the register rule: the store
        // reads `dl` itself.)
        insta::assert_snapshot!(peep(f), @"
        L0:
          movsx ecx,byte [esi-1]
          mov [ebp],cl
          movzx edx,byte [esi]
          movzx ecx,dl
          mov [ebp+1],dl
          movzx edx,byte [edx]
          mov [ebp+2],dl
          ret
          exit
        ");
    }

    /// `mov ecx,ebx; add ecx,ecx; mov ebx,ecx` doubles `ebx` in place:
    /// both operands of the `add` become `ebx`.
    #[test]
    fn an_operation_of_a_copy_on_itself_is_done_on_the_source() {
        let f = function(|a| {
            a.mov(ecx, ebx)?;
            a.add(ecx, ecx)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          add ebx,ebx
          ret
          exit
        ");
    }

    /// Near misses: a zero-extended byte that is stored, or added to
    /// another byte register, is not an extension of a loaded byte: the
    /// load stays (it is not folded into an instruction that does not
    /// extend).
    #[test]
    fn a_loaded_byte_used_without_extending_it_stays() {
        let f = function(|a| {
            a.movzx(ecx, byte_ptr(esi))?;
            a.mov(byte_ptr(edi), cl)?;
            a.movzx(edx, byte_ptr(esi + 1))?;
            a.add(bl, dl)?;
            a.mov(eax, ebx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          movzx ecx,byte [esi]
          mov [edi],cl
          movzx edx,byte [esi+1]
          add bl,dl
          mov eax,ebx
          ret
          exit
        ");
    }

    /// A dword read, changed by `or` with a register and written back is
    /// changed in place; a dword loaded and compared with is compared in
    /// place.
    #[test]
    fn or_through_and_compare_with_a_loaded_dword_use_the_memory() {
        let f = function(|a| {
            a.mov(ecx, dword_ptr(esi))?;
            a.or(ecx, edx)?;
            a.mov(dword_ptr(esi), ecx)?;
            a.mov(ecx, dword_ptr(edi))?;
            a.cmp(ebx, ecx)?;
            a.setb(al)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          or [esi],edx
          cmp ebx,[edi]
          setb al
          ret
          exit
        ");
    }

    /// Near misses: the dword is addressed through the register it is
    /// loaded into (as the base, or as the index), so the store goes to
    /// another address than the load.
    #[test]
    fn a_dword_addressed_through_its_own_register_stays() {
        for f in [
            function(|a| {
                a.mov(ecx, dword_ptr(ecx))?;
                a.add(ecx, 1)?;
                a.mov(dword_ptr(ecx), ecx)?;
                a.ret()
            }),
            function(|a| {
                a.mov(ecx, dword_ptr(esi + ecx))?;
                a.add(ecx, 1)?;
                a.mov(dword_ptr(esi + ecx), ecx)?;
                a.ret()
            }),
        ] {
            crate::testutil::assert_unchanged(f, super::run);
        }
    }

    /// Each two-operand operation with a register source changes a dword
    /// read and written back in place.
    #[test]
    fn every_register_operation_through_a_dword_is_done_in_place() {
        type Op = fn(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>;
        let ops: [(&str, Op); 5] = [
            ("add", |a| a.add(ecx, edx)),
            ("sub", |a| a.sub(ecx, edx)),
            ("and", |a| a.and(ecx, edx)),
            ("or", |a| a.or(ecx, edx)),
            ("xor", |a| a.xor(ecx, edx)),
        ];
        for (name, op) in ops {
            let f = function(|a| {
                a.mov(ecx, dword_ptr(esi))?;
                op(a)?;
                a.mov(dword_ptr(esi), ecx)?;
                a.ret()
            });
            let out = peep(f);
            assert!(out.contains(&format!("  {name} [esi],edx\n  ret")), "{out}");
        }
    }

    /// A loaded dword used once as a source is read in place by every
    /// operation that has a memory source form: `mov eax,[esi+8]; OP
    /// ecx,eax` is `OP ecx,[esi+8]`.
    #[test]
    fn every_operation_reads_a_loaded_dword_in_place() {
        type Op = fn(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>;
        let ops: [(iced_x86::Mnemonic, Op); 10] = [
            (iced_x86::Mnemonic::Mov, |a| a.mov(ecx, eax)),
            (iced_x86::Mnemonic::Add, |a| a.add(ecx, eax)),
            (iced_x86::Mnemonic::Sub, |a| a.sub(ecx, eax)),
            (iced_x86::Mnemonic::And, |a| a.and(ecx, eax)),
            (iced_x86::Mnemonic::Or, |a| a.or(ecx, eax)),
            (iced_x86::Mnemonic::Xor, |a| a.xor(ecx, eax)),
            (iced_x86::Mnemonic::Adc, |a| a.adc(ecx, eax)),
            (iced_x86::Mnemonic::Sbb, |a| a.sbb(ecx, eax)),
            (iced_x86::Mnemonic::Cmp, |a| a.cmp(ecx, eax)),
            (iced_x86::Mnemonic::Imul, |a| a.imul_2(ecx, eax)),
        ];
        let load = asm(|a| a.mov(eax, dword_ptr(esi + 8)))[0];
        for (m, op) in ops {
            let op = asm(op)[0];
            let folded = super::fold_load(&load, &op, 0).unwrap_or_else(|| panic!("{op}"));
            assert_eq!(folded.mnemonic(), m, "{op}: {folded}");
            assert_eq!(
                (
                    folded.op0_register(),
                    folded.memory_base(),
                    folded.memory_displacement32()
                ),
                (iced_x86::Register::ECX, iced_x86::Register::ESI, 8),
                "{op}: {folded}"
            );
        }
    }

    /// Near miss: the store of the byte is addressed through the register
    /// that zero-extended it, so the extension stays.
    #[test]
    fn a_byte_stored_through_its_extended_register_stays() {
        let f = function(|a| {
            a.movzx(ecx, bl)?;
            a.mov(byte_ptr(ecx), cl)?;
            a.mov(ecx, 0)?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::run);
    }

    /// Near miss: the first instruction adds the dword to the register
    /// instead of loading it, so the sum is not the dword's new value.
    #[test]
    fn a_dword_added_to_a_register_and_written_back_stays() {
        let f = function(|a| {
            a.add(ecx, dword_ptr(esi))?;
            a.add(ecx, 1)?;
            a.mov(dword_ptr(esi), ecx)?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::run);
    }

    /// Near miss: `adc` reads the carry `imul` clears.
    #[test]
    fn imul_by_one_whose_flags_are_read_stays() {
        let f = function(|a| {
            a.imul_3(eax, ebx, 1)?;
            a.adc(edx, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          imul eax,ebx,1
          adc edx,0
          ret
          exit
        ");
    }

    #[test]
    fn a_load_used_once_folds_into_its_user() {
        let f = function(|a| {
            a.mov(ecx, dword_ptr(esi + 8))?;
            a.sub(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          sub eax,[esi+8]
          ret
          exit
        ");
    }

    /// Near miss: the loaded `edx` is live at `ret`.
    #[test]
    fn a_load_read_again_stays() {
        let f = function(|a| {
            a.mov(edx, dword_ptr(esi + 8))?;
            a.sub(eax, edx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov edx,[esi+8]
          sub eax,edx
          ret
          exit
        ");
    }

    #[test]
    fn an_increment_folds_into_the_next_address() {
        let f = function(|a| {
            a.add(ecx, 4)?;
            a.mov(eax, dword_ptr(ecx + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov eax,[ecx+0Ch]
          ret
          exit
        ");
    }

    /// Near miss: a stack-pointer adjustment. The stack pointer is outside
    /// the liveness universe, and the later `[esp+d]` operands (of an x87
    /// load here, passed through as it is) rely on it.
    #[test]
    fn a_stack_pointer_adjustment_stays() {
        let f = function(|a| {
            a.sub(esp, 12)?;
            a.fild(dword_ptr(esp + 16))?;
            a.fild(dword_ptr(esp + 20))?;
            a.faddp(st1, st0)?;
            a.add(esp, 12)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          sub esp,0Ch
          fild dword [esp+10h]
          fild dword [esp+14h]
          faddp
          add esp,0Ch
          ret
          exit
        ");
    }

    /// Near miss: `adc` reads the carry of the `add`.
    #[test]
    fn an_increment_whose_carry_is_read_stays() {
        let f = function(|a| {
            a.add(ecx, 4)?;
            a.mov(eax, dword_ptr(ecx + 8))?;
            a.adc(eax, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          add ecx,4
          mov eax,[ecx+8]
          adc eax,0
          ret
          exit
        ");
    }

    /// Near miss: `mul` reads `eax` (its multiplicand) besides the
    /// address, and `edx` is live.
    #[test]
    fn an_increment_read_implicitly_stays() {
        // (the assembler would pick `add eax,imm32`'s short form)
        let add =
            iced_x86::Instruction::with2(iced_x86::Code::Add_rm32_imm8, iced_x86::Register::EAX, 4)
                .expect("add eax,4");
        let mut code = vec![add];
        code.extend(asm(|a| {
            a.mul(dword_ptr(eax + 8))?;
            a.mov(eax, 0)?;
            a.ret()
        }));
        let f = residual(vec![block(0, code, Terminator::Exit)]);
        insta::assert_snapshot!(peep(f), @"
        L0:
          add eax,4
          mul dword [eax+8]
          mov eax,0
          ret
          exit
        ");
    }

    /// Near miss: `mul byte [eax+8]` multiplies `al` and writes `ax`
    /// without naming them; its carry (read by `setc`) depends on the
    /// incremented `al`, though `eax` itself is dead after it.
    #[test]
    fn an_increment_read_implicitly_as_a_byte_stays() {
        let add =
            iced_x86::Instruction::with2(iced_x86::Code::Add_rm32_imm8, iced_x86::Register::EAX, 4)
                .expect("add eax,4");
        let mut code = vec![add];
        code.extend(asm(|a| {
            a.mul(byte_ptr(eax + 8))?;
            a.mov(eax, 0)?;
            a.setc(al)?;
            a.ret()
        }));
        let f = residual(vec![block(0, code, Terminator::Exit)]);
        crate::testutil::assert_unchanged(f, super::run);
    }

    #[test]
    fn a_byte_changed_through_a_register_is_changed_in_place() {
        let f = function(|a| {
            a.movzx(ecx, byte_ptr(esi + 3))?;
            a.dec(cl)?;
            a.mov(byte_ptr(esi + 3), cl)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          dec byte [esi+3]
          ret
          exit
        ");
    }

    #[test]
    fn a_dword_changed_through_a_register_is_changed_in_place() {
        let f = function(|a| {
            a.mov(eax, dword_ptr(0x0804_b044u32))?;
            a.add(eax, 9)?;
            a.mov(dword_ptr(0x0804_b044u32), eax)?;
            a.mov(ecx, dword_ptr(esi + 8))?;
            a.sub(ecx, edx)?;
            a.mov(dword_ptr(esi + 8), ecx)?;
            a.mov(eax, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          add dword [804B044h],9
          sub [esi+8],edx
          mov eax,0
          ret
          exit
        ");
    }

    /// Near misses: the register is read after the store (`ret` reads
    /// `eax`); the address uses the loaded register; the operation reads
    /// the loaded register twice (`add ecx,ecx`, twice the dword).
    #[test]
    fn a_dword_changed_through_a_live_or_own_register_stays() {
        let f = function(|a| {
            a.mov(ecx, dword_ptr(ecx + 4))?;
            a.inc(ecx)?;
            a.mov(dword_ptr(ecx + 4), ecx)?;
            a.mov(edx, dword_ptr(esi))?;
            a.add(edx, edx)?;
            a.mov(dword_ptr(esi), edx)?;
            a.mov(eax, dword_ptr(esi + 4))?;
            a.neg(eax)?;
            a.mov(dword_ptr(esi + 4), eax)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov ecx,[ecx+4]
          inc ecx
          mov [ecx+4],ecx
          mov edx,[esi]
          add edx,edx
          mov [esi],edx
          mov eax,[esi+4]
          neg eax
          mov [esi+4],eax
          ret
          exit
        ");
    }

    /// Near miss: the byte's address uses the register it is loaded into,
    /// so the store goes where the loaded value points, not back.
    #[test]
    fn a_byte_addressed_through_its_own_register_stays() {
        let f = function(|a| {
            a.movzx(ecx, byte_ptr(ecx + 3))?;
            a.dec(cl)?;
            a.mov(byte_ptr(ecx + 3), cl)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          movzx ecx,byte [ecx+3]
          dec cl
          mov [ecx+3],cl
          ret
          exit
        ");
    }

    /// Near miss: the operation changes another byte register (`dl`), so
    /// the byte goes back unchanged and `dl` changes: nothing to fold.
    #[test]
    fn a_byte_stored_back_unchanged_stays() {
        let f = function(|a| {
            a.movzx(ecx, byte_ptr(esi + 3))?;
            a.dec(dl)?;
            a.mov(byte_ptr(esi + 3), cl)?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::run);
    }

    /// The short (`eax`) forms of `OP eax,imm32` change a dword read and
    /// written back in place as the same operation.
    #[test]
    fn every_short_form_operation_through_a_dword_is_done_in_place() {
        use iced_x86::{Code, Instruction, Register};
        use wiper_residual::{Item, Origin};
        let ops = [
            (Code::Add_EAX_imm32, "add"),
            (Code::Sub_EAX_imm32, "sub"),
            (Code::And_EAX_imm32, "and"),
            (Code::Or_EAX_imm32, "or"),
            (Code::Xor_EAX_imm32, "xor"),
        ];
        for (code, name) in ops {
            let op = Instruction::with2(code, Register::EAX, 0x1234_5678u32).expect("op");
            let mut f = function(|a| {
                a.mov(eax, dword_ptr(esi))?;
                a.mov(dword_ptr(esi), eax)?;
                a.mov(eax, 0)?;
                a.ret()
            });
            f.blocks[0]
                .items
                .insert(1, Item::Instr(op, Origin::Original(0)));
            let out = peep(f);
            assert!(
                out.contains(&format!("  {name} dword [esi],12345678h\n")),
                "{out}"
            );
        }
    }

    /// `and eax,ecx; test eax,eax; js`: SF is read, which `and` set the
    /// same as the test.
    #[test]
    fn a_zero_test_before_a_sign_branch_goes() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.and(eax, ecx)?;
                    a.test(eax, eax)
                }),
                branch(Cc::s, 1, 1),
            ),
            block(1, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(peep(r), @"
        L0:
          and eax,ecx
          js L1 else L1
        L1:
          ret
          exit
        ");
    }

    /// Near miss: the byte goes back to the next address.
    #[test]
    fn a_byte_stored_elsewhere_stays() {
        let f = function(|a| {
            a.movzx(ecx, byte_ptr(esi + 3))?;
            a.dec(cl)?;
            a.mov(byte_ptr(esi + 4), cl)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          movzx ecx,byte [esi+3]
          dec cl
          mov [esi+4],cl
          ret
          exit
        ");
    }

    #[test]
    fn a_byte_tested_through_a_register_is_tested_in_place() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.movzx(ecx, byte_ptr(esi))?;
                    a.test(cl, cl)
                }),
                branch(Cc::e, 1, 1),
            ),
            block(1, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(peep(r), @"
        L0:
          cmp byte [esi],0
          je L1 else L1
        L1:
          ret
          exit
        ");
    }

    /// Near miss: the zero-extended `eax` is live at `ret`.
    #[test]
    fn a_byte_tested_through_a_live_register_stays() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.movzx(eax, byte_ptr(esi))?;
                    a.test(al, al)
                }),
                branch(Cc::e, 1, 1),
            ),
            block(1, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(peep(r), @"
        L0:
          movzx eax,byte [esi]
          test al,al
          je L1 else L1
        L1:
          ret
          exit
        ");
    }

    #[test]
    fn a_zero_extension_of_itself_read_as_a_byte_goes() {
        let f = function(|a| {
            a.movzx(ecx, cl)?;
            a.add(al, cl)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          add al,cl
          ret
          exit
        ");
    }

    /// So it goes before an instruction that reads the byte without
    /// naming it (`stosb` stores `al`).
    #[test]
    fn a_zero_extension_of_itself_read_implicitly_as_a_byte_goes() {
        let f = function(|a| {
            a.movzx(eax, al)?;
            a.stosb()?;
            a.xor(eax, eax)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          stosb
          xor eax,eax
          ret
          exit
        ");
    }

    /// Near miss: `add eax,ecx` reads all of `ecx`.
    #[test]
    fn a_zero_extension_of_itself_read_whole_stays() {
        let f = function(|a| {
            a.movzx(ecx, cl)?;
            a.add(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          movzx ecx,cl
          add eax,ecx
          ret
          exit
        ");
    }

    /// `code`, then a branch on `cc` to a block that returns.
    fn branching(code: Vec<iced_x86::Instruction>, cc: Cc) -> wiper_residual::Residual {
        residual(vec![
            block(0, code, branch(cc, 1, 1)),
            block(1, asm(|a| a.ret()), Terminator::Exit),
        ])
    }

    /// The temporary `ecx` is read after the swap: it gets the old `eax`,
    /// which is then in `ebx`.
    #[test]
    fn a_swap_whose_temporary_is_read_keeps_it() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.mov(eax, ebx)?;
            a.mov(ebx, ecx)?;
            a.mov(esi, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          xchg ebx,eax
          mov ecx,ebx
          mov esi,ecx
          ret
          exit
        ");
    }

    /// `mov ecx,esi; imul ecx,ebx; mov ebx,ecx` is `ebx = esi * ebx`
    /// (vm_fact's accumulator at -O0).
    #[test]
    fn commutative_arithmetic_through_a_copy_lands_in_its_other_operand() {
        let f = function(|a| {
            a.mov(ecx, esi)?;
            a.imul_2(ecx, ebx)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          imul ebx,esi
          ret
          exit
        ");
    }

    /// Near miss: `sub` is not commutative (`esi - ebx` is not
    /// `ebx - esi`).
    #[test]
    fn non_commutative_arithmetic_through_a_copy_into_its_other_operand_stays() {
        let f = function(|a| {
            a.mov(ecx, esi)?;
            a.sub(ecx, ebx)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov ecx,esi
          sub ecx,ebx
          mov ebx,ecx
          ret
          exit
        ");
    }

    /// Near miss: the moved-aside `ecx` is read again after the `add`.
    #[test]
    fn a_commutative_operand_read_again_stays() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.mov(eax, ebx)?;
            a.add(eax, ecx)?;
            a.mov(esi, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov ecx,eax
          mov eax,ebx
          add eax,ecx
          mov esi,ecx
          ret
          exit
        ");
    }

    /// `cmp ecx,0` is a zero test too: `sub` set ZF from `ecx` already.
    #[test]
    fn a_compare_with_zero_after_arithmetic_goes() {
        let r = branching(
            asm(|a| {
                a.sub(ecx, edx)?;
                a.cmp(ecx, 0)
            }),
            Cc::ne,
        );
        insta::assert_snapshot!(peep(r), @"
        L0:
          sub ecx,edx
          jne L1 else L1
        L1:
          ret
          exit
        ");
    }

    /// Near misses: `mov` sets no flags, and `add edx,1` sets them from
    /// `edx`, not from the tested `ecx`.
    #[test]
    fn a_zero_test_after_a_move_or_of_another_register_stays() {
        let moved = branching(
            asm(|a| {
                a.mov(ecx, edx)?;
                a.test(ecx, ecx)
            }),
            Cc::e,
        );
        let other = branching(
            asm(|a| {
                a.add(edx, 1)?;
                a.test(ecx, ecx)
            }),
            Cc::e,
        );
        insta::assert_snapshot!(peep(moved) + &peep(other), @"
        L0:
          mov ecx,edx
          test ecx,ecx
          je L1 else L1
        L1:
          ret
          exit
        L0:
          add edx,1
          test ecx,ecx
          je L1 else L1
        L1:
          ret
          exit
        ");
    }

    /// A `sub` folds as a negative offset, and the load may overwrite the
    /// address register itself (`ecx` is read after, but as the loaded
    /// value).
    #[test]
    fn a_decrement_folds_into_a_load_over_its_register() {
        let f = function(|a| {
            a.sub(ecx, 4)?;
            a.mov(ecx, dword_ptr(ecx + 8))?;
            a.mov(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov ecx,[ecx+4]
          mov eax,ecx
          ret
          exit
        ");
    }

    /// Near miss: `ecx` is read after the load (by `mov eax,ecx`), so it
    /// must get its increment.
    #[test]
    fn an_increment_read_after_the_load_stays() {
        let f = function(|a| {
            a.add(ecx, 4)?;
            a.mov(edx, dword_ptr(ecx + 8))?;
            a.mov(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          add ecx,4
          mov edx,[ecx+8]
          mov eax,ecx
          ret
          exit
        ");
    }

    /// A byte register changed through `ecx` is changed in place.
    #[test]
    fn a_byte_register_changed_through_another_is_changed_in_place() {
        let f = function(|a| {
            a.movzx(ecx, bh)?;
            a.add(cl, 3)?;
            a.mov(bh, cl)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          add bh,3
          ret
          exit
        ");
    }

    /// Near miss: `ecx` (the zero-extended byte plus 3) is read after.
    #[test]
    fn a_byte_changed_through_a_live_register_stays() {
        let f = function(|a| {
            a.movzx(ecx, bh)?;
            a.add(cl, 3)?;
            a.mov(bh, cl)?;
            a.mov(esi, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          movzx ecx,bh
          add cl,3
          mov bh,cl
          mov esi,ecx
          ret
          exit
        ");
    }

    /// A byte register tested through `ecx` is tested itself.
    #[test]
    fn a_byte_register_tested_through_another_is_tested_itself() {
        let r = branching(
            asm(|a| {
                a.movzx(ecx, dl)?;
                a.test(cl, cl)
            }),
            Cc::e,
        );
        insta::assert_snapshot!(peep(r), @"
        L0:
          test dl,dl
          je L1 else L1
        L1:
          ret
          exit
        ");
    }

    /// `add eax,imm32` in its short form (the assembler's choice for
    /// `eax`) folds too; the load overwrites `eax`.
    #[test]
    fn a_short_form_increment_of_eax_folds() {
        let f = function(|a| {
            a.add(eax, 0x100)?;
            a.mov(eax, dword_ptr(eax + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(peep(f), @"
        L0:
          mov eax,[eax+108h]
          ret
          exit
        ");
    }

    /// The immediate forms on a register other than `eax` (`add ecx,5` is
    /// `Add_rm32_imm8`, `and ecx,12345h` is `And_rm32_imm32`) change a
    /// dword read and written back in place too.
    #[test]
    fn a_dword_changed_by_an_immediate_through_another_register_is_changed_in_place() {
        type Op = fn(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>;
        let ops: [(&str, Op); 2] = [
            ("add dword [esi+8],5", |a| a.add(ecx, 5)),
            ("and dword [esi+8],12345h", |a| a.and(ecx, 0x12345)),
        ];
        for (done, op) in ops {
            let f = function(|a| {
                a.mov(ecx, dword_ptr(esi + 8))?;
                op(a)?;
                a.mov(dword_ptr(esi + 8), ecx)?;
                a.ret()
            });
            let out = peep(f);
            assert!(out.contains(&format!("L0:\n  {done}\n  ret")), "{out}");
        }
    }
}
