//! Control transfers: `jmp`, `jcc`, `call`, `ret`. A part that transfers
//! control assigns `eip`; nothing else does.
//!
//! * `jcc t` → one part `eip := ite(cc, t, next)` (`jecxz`: `ecx == 0`);
//!   `jmp` → `eip := target`.
//! * `call t` (direct, or through a register other than `esp`) →
//!   `lea esp,[esp-0x4]; mov DWORD PTR [esp],next; jmp t`.
//! * `call m` / `call esp` → `mov t0,op; lea esp,[esp-0x4];
//!   mov DWORD PTR [esp],next; jmp t0` (the target is read before the push).
//! * `ret` / `ret n` → `mov t0,DWORD PTR [esp]; lea esp,[esp+0x4+n]; jmp t0`.

use iced_x86::{Mnemonic, OpKind};

use super::flags;
use super::stack::{adjust_esp, load_top_to_temp, operand_to_temp, store_top};
use crate::decouple::{native, set, Seq};
use crate::loc::{Loc, Reg, Temp};

/// Entry point for `jmp`, `jcc`, `call`, `ret`.
pub(super) fn transfer(seq: &mut Seq) {
    match seq.ins.mnemonic() {
        Mnemonic::Call => call(seq),
        Mnemonic::Ret => ret(seq),
        Mnemonic::Jmp => {
            let v = seq.read(0);
            seq.whole(vec![set(Loc::Eip, v)]);
        }
        _ => {
            let c = if seq.ins.mnemonic() == Mnemonic::Jecxz {
                let ecx = seq.var(Loc::Reg(Reg::Ecx));
                let zero = seq.pool.zero(32);
                seq.pool.eq(ecx, zero)
            } else {
                flags::condition(seq.pool, seq.ins.condition_code())
            };
            let target = seq.read(0);
            let next = seq.pool.bv(u64::from(seq.ins.next_ip32()), 32);
            let v = seq.pool.ite(c, target, next);
            seq.whole(vec![set(Loc::Eip, v)]);
        }
    }
}

/// `jmp t` to a temporary (pseudo).
fn jmp_temp(seq: &mut Seq, t: Temp) {
    let v = seq.var(Loc::Temp(t));
    seq.pseudo("jmp", &[&t.to_string()], vec![set(Loc::Eip, v)]);
}

fn call(seq: &mut Seq) {
    let ins = seq.ins;
    let next = ins.next_ip32();
    let through_temp = seq.is_mem(0) || seq.uses_esp(0);
    let t = through_temp.then(|| {
        let t = seq.temp();
        operand_to_temp(seq, t, 0);
        t
    });
    adjust_esp(seq, -4);
    let v = seq.pool.bv(u64::from(next), 32);
    store_top(seq, v, "", Some(native::store_top_imm(next)));
    match (t, ins.op0_kind()) {
        (Some(t), _) => jmp_temp(seq, t),
        (None, OpKind::Register) => {
            let r = ins.op0_register();
            let v = seq.get_reg(r);
            seq.native(native::jmp_reg(r), vec![set(Loc::Eip, v)]);
        }
        (None, _) => {
            let target = ins.near_branch32();
            let v = seq.pool.bv(u64::from(target), 32);
            seq.native(native::jmp(target), vec![set(Loc::Eip, v)]);
        }
    }
}

fn ret(seq: &mut Seq) {
    let extra = if seq.ins.op_count() == 1 {
        i64::from(seq.ins.immediate16())
    } else {
        0
    };
    let t = seq.temp();
    load_top_to_temp(seq, t);
    adjust_esp(seq, 4 + extra);
    jmp_temp(seq, t);
}
