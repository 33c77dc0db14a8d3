//! `push`, `pop`, `leave`, and the stack halves of `call` and `ret`,
//! decoupled so that `esp` and memory are assigned by separate parts:
//!
//! * `push r` → `lea esp,[esp-0x4]; mov DWORD PTR [esp],r` (likewise an
//!   immediate); `push esp` and `push m` read the operand first:
//!   `mov t0,op; lea esp,[esp-0x4]; mov DWORD PTR [esp],t0`.
//! * `pop r` → `mov r,DWORD PTR [esp]; lea esp,[esp+0x4]`; `pop esp` →
//!   `mov esp,DWORD PTR [esp]`; `pop m` → `mov t0,DWORD PTR [esp];
//!   lea esp,[esp+0x4]; mov m,t0` (the address of `m` uses the incremented
//!   `esp`, as the processor computes it).
//! * `leave` → `mov esp,ebp; mov ebp,DWORD PTR [esp]; lea esp,[esp+0x4]`.

use iced_x86::{Mnemonic, OpKind, Register};
use wiper_qfbv::ExprId;

use crate::decouple::{native, set, Seq};
use crate::loc::{Loc, Temp};

/// `lea esp,[esp+delta]`.
pub(super) fn adjust_esp(seq: &mut Seq, delta: i64) {
    let esp = seq.var(Loc::Reg(crate::Reg::Esp));
    let d = seq.pool.bv(delta as u64, 32);
    let v = seq.pool.add(esp, d);
    seq.native(
        native::lea_esp(delta),
        vec![set(Loc::Reg(crate::Reg::Esp), v)],
    );
}

/// `mov DWORD PTR [esp],<value>`: a native part when `nat` is given, else a
/// pseudo-instruction showing `src`.
pub(super) fn store_top(
    seq: &mut Seq,
    value: ExprId,
    src: &str,
    nat: Option<iced_x86::Instruction>,
) {
    let esp = seq.var(Loc::Reg(crate::Reg::Esp));
    let e = seq.store(esp, value);
    match nat {
        Some(n) => seq.native(n, vec![e]),
        None => seq.pseudo("mov", &["DWORD PTR [esp]", src], vec![e]),
    }
}

/// `mov t,DWORD PTR [esp]` (pseudo: the destination is a temporary).
pub(super) fn load_top_to_temp(seq: &mut Seq, t: Temp) {
    let esp = seq.var(Loc::Reg(crate::Reg::Esp));
    let v = seq.load(esp, 32);
    let e = seq.set_temp(t, v);
    seq.pseudo("mov", &[&t.to_string(), "DWORD PTR [esp]"], vec![e]);
}

/// `mov t,op` for operand `op` of the original (pseudo).
pub(super) fn operand_to_temp(seq: &mut Seq, t: Temp, op: u32) {
    let v = seq.read(op);
    let e = seq.set_temp(t, v);
    let text = seq.op_text(op);
    seq.pseudo("mov", &[&t.to_string(), &text], vec![e]);
}

/// Entry point for `push`, `pop`, `leave`.
pub(super) fn lift(seq: &mut Seq) {
    match seq.ins.mnemonic() {
        Mnemonic::Push => push(seq),
        Mnemonic::Pop => pop(seq),
        _ => leave(seq),
    }
}

fn push(seq: &mut Seq) {
    let ins = seq.ins;
    match ins.op0_kind() {
        OpKind::Register if ins.op0_register() != Register::ESP => {
            adjust_esp(seq, -4);
            let r = ins.op0_register();
            let v = seq.get_reg(r);
            store_top(seq, v, "", Some(native::store_top(r)));
        }
        OpKind::Register | OpKind::Memory => {
            let t = seq.temp();
            operand_to_temp(seq, t, 0);
            adjust_esp(seq, -4);
            let v = seq.var(Loc::Temp(t));
            store_top(seq, v, &t.to_string(), None);
        }
        _ => {
            let imm = ins.immediate(0) as u32;
            adjust_esp(seq, -4);
            let v = seq.pool.bv(u64::from(imm), 32);
            store_top(seq, v, "", Some(native::store_top_imm(imm)));
        }
    }
}

fn pop(seq: &mut Seq) {
    let ins = seq.ins;
    let esp = seq.var(Loc::Reg(crate::Reg::Esp));
    if ins.op0_kind() == OpKind::Register {
        let r = ins.op0_register();
        let v = seq.load(esp, 32);
        let e = seq.set_reg(r, v);
        seq.native(native::load_top(r), vec![e]);
        if r != Register::ESP {
            adjust_esp(seq, 4);
        }
        return;
    }
    let t = seq.temp();
    load_top_to_temp(seq, t);
    adjust_esp(seq, 4);
    let v = seq.var(Loc::Temp(t));
    let e = seq.write(0, v);
    let dst = seq.op_text(0);
    seq.pseudo("mov", &[&dst, &t.to_string()], vec![e]);
}

fn leave(seq: &mut Seq) {
    let ebp = seq.get_reg(Register::EBP);
    let e = seq.set_reg(Register::ESP, ebp);
    seq.native(native::mov_rr(Register::ESP, Register::EBP), vec![e]);
    let esp = seq.var(Loc::Reg(crate::Reg::Esp));
    let v = seq.load(esp, 32);
    let e = seq.set_reg(Register::EBP, v);
    seq.native(native::load_top(Register::EBP), vec![e]);
    adjust_esp(seq, 4);
}
