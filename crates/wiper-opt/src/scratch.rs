//! Callee-saved registers used as temporaries give way to a scratch
//! register. The specializer keeps the original's register choice: a
//! function that uses `ebx` saves it on entry and restores it before `ret`.
//! After promotion that save is `mov ecx,ebx` and the restore `mov ebx,ecx`.
//! When nothing else touches the scratch register `S` (`ecx`, or `edx` when
//! no caller reads it at return) and the function makes no calls, the two
//! registers swap roles: `R` keeps its entry value throughout, the
//! temporaries live in `S`, and the save and the restores go.

use iced_x86::{Mnemonic, OpKind, Register};
use wiper_residual::{Item, Residual};
use wiper_x86::{abi, Reg};

use crate::effects::{reg_bit, reg_move, Effects, EffectsOf, ARITHMETIC};
use crate::liveness::{liveness, successors};

/// `reg` (any part of `from`) as the same part of `to`, if `to` has it.
fn same_part(reg: Register, from: Register, to: Register) -> Option<Register> {
    if reg.full_register32() != from {
        return Some(reg);
    }
    let parts = |r: Register| -> [Option<Register>; 4] {
        match Reg::from_iced(r).filter(|&r| r != Reg::Esp) {
            Some(r) => [
                Some(r.to_iced()),
                Some(r.word()),
                r.low_byte(),
                r.high_byte(),
            ],
            None => [None; 4],
        }
    };
    let k = parts(from).iter().position(|&p| p == Some(reg))?;
    parts(to)[k]
}

/// `item` with register `from` renamed to `to`, when `from` appears only
/// as explicit operands of an instruction without implicit ones.
pub fn renamed(item: &Item, from: Register, to: Register) -> Option<Item> {
    match item {
        Item::Address { reg, addr, origin } => Some(Item::Address {
            reg: same_part(*reg, from, to)?,
            addr: *addr,
            origin: *origin,
        }),
        Item::Instr(ins, origin) => {
            let m = ins.mnemonic();
            let explicit = ARITHMETIC.contains(&m)
                || matches!(m, Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Lea)
                || crate::effects::is_setcc(ins);
            // One-operand `mul`/`imul` read and write eax and edx.
            let implicit = matches!(m, Mnemonic::Imul | Mnemonic::Mul) && ins.op_count() == 1;
            if !explicit || implicit {
                return None;
            }
            let mut new = *ins;
            for k in 0..ins.op_count() {
                if ins.op_kind(k) == OpKind::Register {
                    new.set_op_register(k, same_part(ins.op_register(k), from, to)?);
                }
            }
            if ins.memory_base() != Register::None {
                new.set_memory_base(same_part(ins.memory_base(), from, to)?);
            }
            if ins.memory_index() != Register::None {
                new.set_memory_index(same_part(ins.memory_index(), from, to)?);
            }
            Some(Item::Instr(new, *origin))
        }
        Item::CallLabel(..) => None,
    }
}

/// Swaps every callee-saved register that only holds temporaries with a
/// free scratch register (see the module docs); returns how many.
pub fn free_saved_registers(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let mut swapped = 0;
    let edx_free = residual.edx_dead_at_return;
    for r in abi::CALLEE_SAVED.map(Reg::to_iced) {
        // The caller-saved registers but `eax`, which is busy: `ecx`, and
        // `edx` when no caller reads it.
        let scratch = abi::CALLER_SAVED
            .into_iter()
            .filter(|&s| s != Reg::Eax && (s != Reg::Edx || edx_free))
            .map(Reg::to_iced);
        for s in scratch {
            if swap(residual, calc, r, s) {
                swapped += 1;
                break;
            }
        }
    }
    swapped
}

/// Swaps `r` with `s` when the function saves `r` in `s` on entry and
/// restores it from `s` before every `ret`, and nothing else touches `s`.
fn swap(residual: &mut Residual, calc: &mut EffectsOf, r: Register, s: Register) -> bool {
    let Some(entry) = residual.entry else {
        return false;
    };
    let fx: Vec<Vec<Effects>> = calc.residual(residual);
    let (rb, sb) = (reg_bit(r).expect("gpr"), reg_bit(s).expect("gpr"));
    // No calls, and nothing jumps back to the entry block.
    let calls = fx.iter().flatten().any(|e| e.uses == !0);
    let entry_reentered = residual
        .blocks
        .iter()
        .any(|b| successors(&b.terminator).contains(&entry));
    let Some(e) = residual.blocks.iter().position(|b| b.label == entry) else {
        return false;
    };
    if calls || entry_reentered {
        return false;
    }
    // The save: the first item of the entry block touching r or s.
    let touches = |fx: &Effects, bit| (fx.uses | fx.defs) & bit != 0;
    let Some(save) = fx[e].iter().position(|f| touches(f, rb | sb)) else {
        return false;
    };
    if reg_move(&residual.blocks[e].items[save]) != Some((s, r)) {
        return false;
    }
    let live = liveness(residual, &fx);
    if live.live_out[e][save] & rb != 0 {
        return false; // r's entry value is read again
    }
    // The restores: before each `ret`, the last item touching r or s.
    let mut restores = Vec::new();
    for (b, block) in residual.blocks.iter().enumerate() {
        let Some(last) = fx[b].last() else { continue };
        if !last.leaves {
            continue;
        }
        let k = fx[b][..fx[b].len() - 1]
            .iter()
            .rposition(|f| touches(f, rb | sb));
        match k {
            Some(k) if reg_move(&block.items[k]) == Some((r, s)) => restores.push((b, k)),
            _ => return false,
        }
    }
    // Nothing else touches s; everything else that touches r can be renamed.
    let mut renames = Vec::new();
    for (b, block) in residual.blocks.iter().enumerate() {
        for (k, item) in block.items.iter().enumerate() {
            if (b, k) == (e, save) || restores.contains(&(b, k)) {
                continue;
            }
            if touches(&fx[b][k], sb) {
                return false;
            }
            if touches(&fx[b][k], rb) && !fx[b][k].leaves {
                match renamed(item, r, s) {
                    Some(new) => renames.push((b, k, new)),
                    None => return false,
                }
            }
        }
    }
    for (b, k, new) in renames {
        residual.blocks[b].items[k] = new;
    }
    let mut gone: Vec<(usize, usize)> = restores;
    gone.push((e, save));
    gone.sort_unstable_by(|x, y| y.cmp(x));
    for (b, k) in gone {
        residual.blocks[b].items.remove(k);
    }
    true
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// `ebx`, saved in `ecx`, only holds a temporary: the two swap.
    #[test]
    fn a_saved_register_holding_temporaries_gives_way() {
        let f = function(|a| {
            a.mov(ecx, ebx)?;
            a.lea(ebx, ptr(eax + 5))?;
            a.imul_3(eax, ebx, 3)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::free_saved_registers), @"
        L0:
          lea ecx,[eax+5]
          imul eax,ecx,3
          ret
          exit
        ");
    }

    /// Near miss: a call between may change `ecx` (caller-saved), which
    /// would then hold the temporaries the callee must keep in `ebx`.
    #[test]
    fn a_saved_register_across_a_call_stays() {
        let f = function(|a| {
            a.mov(ecx, ebx)?;
            a.lea(ebx, ptr(eax + 5))?;
            a.call(0x0804_9000u64)?;
            a.imul_3(eax, ebx, 3)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::free_saved_registers);
    }

    /// Near misses: `ecx` is written elsewhere, and in the second
    /// function the entry value of `ebx` is read again after the save.
    #[test]
    fn a_used_scratch_or_a_reread_entry_value_stays() {
        let used = function(|a| {
            a.mov(ecx, ebx)?;
            a.lea(ebx, ptr(eax + 5))?;
            a.mov(dword_ptr(0x3000_0000u32), ecx)?;
            a.mov(ecx, eax)?;
            a.imul_3(eax, ebx, 3)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        let reread = function(|a| {
            a.mov(ecx, ebx)?;
            a.add(eax, ebx)?;
            a.lea(ebx, ptr(eax + 5))?;
            a.imul_3(eax, ebx, 3)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(
            after(used, super::free_saved_registers) + &after(reread, super::free_saved_registers),
            @"
        L0:
          mov ecx,ebx
          lea ebx,[eax+5]
          mov [30000000h],ecx
          mov ecx,eax
          imul eax,ebx,3
          mov ebx,ecx
          ret
          exit
        L0:
          mov ecx,ebx
          add eax,ebx
          lea ebx,[eax+5]
          imul eax,ebx,3
          mov ebx,ecx
          ret
          exit
        "
        );
    }

    /// `ebx` saved in `edx` when `edx` is dead at return (the second
    /// scratch register); the `edx` flag of `r` chooses.
    fn saved_in_edx(edx_dead_at_return: bool) -> wiper_residual::Residual {
        let mut f = function(|a| {
            a.mov(edx, ebx)?;
            a.lea(ebx, ptr(eax + 5))?;
            a.imul_3(eax, ebx, 3)?;
            a.mov(ebx, edx)?;
            a.ret()
        });
        f.edx_dead_at_return = edx_dead_at_return;
        f
    }

    /// No caller reads `edx`: `ebx` gives way to it.
    #[test]
    fn a_saved_register_gives_way_to_a_dead_edx() {
        insta::assert_snapshot!(after(saved_in_edx(true), super::free_saved_registers), @"
        L0:
          lea edx,[eax+5]
          imul eax,edx,3
          ret
          exit
        ");
    }

    /// Near miss: a caller may read `edx` at return, so it is no scratch
    /// register.
    #[test]
    fn a_saved_register_keeps_a_live_edx() {
        insta::assert_snapshot!(after(saved_in_edx(false), super::free_saved_registers), @"
        L0:
          mov edx,ebx
          lea ebx,[eax+5]
          imul eax,ebx,3
          mov ebx,edx
          ret
          exit
        ");
    }
}
