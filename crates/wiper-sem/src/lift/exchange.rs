//! `xchg`, `xadd`, `cmpxchg`: each assigns two locations and is decoupled,
//! through a temporary where a value must survive a part.

use iced_x86::{Code, OpKind, Register};

use super::flags;
use crate::decouple::{native, Seq};
use crate::loc::Flag;

/// The variant for operand width `w` among (8, 16, 32)-bit ones.
fn by_width<T: Copy>(w: u32, codes: [T; 3]) -> T {
    match w {
        8 => codes[0],
        16 => codes[1],
        _ => codes[2],
    }
}

/// Whether operands 0 and 1 are the same register.
fn same_register(seq: &Seq) -> bool {
    let ins = seq.ins;
    ins.op0_kind() == OpKind::Register
        && ins.op1_kind() == OpKind::Register
        && ins.op0_register() == ins.op1_register()
}

/// `xchg a, b`: `mov t0,a; mov a,b; mov b,t0`; with a memory operand `m`
/// (always operand 0 in iced's forms): `mov t0,m; mov m,r; mov r,t0`, which
/// keeps the address computed from the original registers.
pub(super) fn xchg(seq: &mut Seq) {
    if same_register(seq) {
        return;
    }
    let (a, b) = (seq.op_text(0), seq.op_text(1));
    let t = seq.temp();
    let va = seq.read(0);
    let e = seq.set_temp(t, va);
    seq.pseudo("mov", &[&t.to_string(), &a], vec![e]);
    let vb = seq.read(1);
    let e = seq.write(0, vb);
    let code = by_width(
        seq.width(0),
        [Code::Mov_rm8_r8, Code::Mov_rm16_r16, Code::Mov_rm32_r32],
    );
    let nat = native::with_reg_mem(code, seq.native_operand(0), seq.native_operand(1));
    seq.native(nat, vec![e]);
    let w = seq.width(1);
    let vt = seq.temp_value(t, w);
    let e = seq.write(1, vt);
    seq.pseudo("mov", &[&b, &t.to_string()], vec![e]);
}

/// `xadd d, s`: `mov t0,d; add d,s; mov s,t0` (or just `add r,r` when both
/// operands are one register, where the sum wins).
pub(super) fn xadd(seq: &mut Seq) {
    let w = seq.width(0);
    let add = by_width(
        w,
        [Code::Add_rm8_r8, Code::Add_rm16_r16, Code::Add_rm32_r32],
    );
    let add_native = native::with_reg_mem(add, seq.native_operand(0), seq.native_operand(1));
    let sum_part = |seq: &mut Seq| {
        let (d, s) = (seq.read(0), seq.read(1));
        let (r, fx) = flags::add(seq.pool, d, s, None);
        let mut effects = vec![seq.write(0, r)];
        effects.extend(fx);
        seq.native(add_native, effects);
    };
    if same_register(seq) {
        sum_part(seq);
        return;
    }
    let (d, s) = (seq.op_text(0), seq.op_text(1));
    let t = seq.temp();
    let vd = seq.read(0);
    let e = seq.set_temp(t, vd);
    seq.pseudo("mov", &[&t.to_string(), &d], vec![e]);
    sum_part(seq);
    let vt = seq.temp_value(t, w);
    let e = seq.write(1, vt);
    seq.pseudo("mov", &[&s, &t.to_string()], vec![e]);
}

/// `cmpxchg d, s` with accumulator `a` (`al`/`ax`/`eax`):
/// `cmp a,d; cmove d,s; cmovne a,d`.
pub(super) fn cmpxchg(seq: &mut Seq) {
    let w = seq.width(0);
    let acc = by_width(w, [Register::AL, Register::AX, Register::EAX]);
    let (d, s) = (seq.op_text(0), seq.op_text(1));
    let acc_text = crate::text::register(acc);

    let va = seq.get_reg(acc);
    let vd = seq.read(0);
    let (_, fx) = flags::sub(seq.pool, va, vd, None);
    let cmp = by_width(
        w,
        [Code::Cmp_r8_rm8, Code::Cmp_r16_rm16, Code::Cmp_r32_rm32],
    );
    let nat = native::with_reg_mem(cmp, native::Operand::Reg(acc), seq.native_operand(0));
    seq.native(nat, fx);

    let zf = seq.flag(Flag::Zf);
    let (vd, vs) = (seq.read(0), seq.read(1));
    let v = seq.pool.ite(zf, vs, vd);
    let e = seq.write(0, v);
    if w >= 16 && !seq.is_mem(0) {
        let code = by_width(
            w,
            [Code::INVALID, Code::Cmove_r16_rm16, Code::Cmove_r32_rm32],
        );
        let nat = native::with_reg_mem(code, seq.native_operand(0), seq.native_operand(1));
        seq.native(nat, vec![e]);
    } else {
        seq.pseudo("cmove", &[&d, &s], vec![e]);
    }

    let (va, vd) = (seq.get_reg(acc), seq.read(0));
    let v = seq.pool.ite(zf, va, vd);
    let e = seq.set_reg(acc, v);
    if w >= 16 {
        let code = by_width(
            w,
            [Code::INVALID, Code::Cmovne_r16_rm16, Code::Cmovne_r32_rm32],
        );
        let nat = native::with_reg_mem(code, native::Operand::Reg(acc), seq.native_operand(0));
        seq.native(nat, vec![e]);
    } else {
        seq.pseudo("cmovne", &[&acc_text, &d], vec![e]);
    }
}
