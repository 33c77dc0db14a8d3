//! Stack-slot promotion: a frame slot that only ever holds a value between
//! its stores and loads is given a register that is free over its whole
//! live range, and every access to it becomes that register.
//!
//! Registers and slots interfere when one is written while the other is
//! live, unless the write copies the value the other holds (a `mov` from
//! it, or from a location that holds the same value through copies earlier
//! in the block), so they may share;
//! all locations live on entry interfere with each other. Slots are
//! assigned most-accessed first, each to the first register that interferes
//! neither with it nor with the slots already given that register.

use iced_x86::{Code, Instruction, MemoryOperand, Mnemonic, OpKind, Register};
use wiper_residual::{Item, Residual};

use wiper_x86::Reg;

use crate::cfg::{entry_glue_origin, is_jumped_to, prepend_to_entry};
use crate::effects::{reg_bit, reg_of_bit, Effects, EffectsOf, Locs, SLOT_BASE};
use crate::frame::Frame;
use crate::liveness::liveness;

/// Registers in the order they are tried: caller-saved first, `eax` last
/// (it is the busiest).
const ORDER: [Reg; 7] = [
    Reg::Ecx,
    Reg::Edx,
    Reg::Esi,
    Reg::Edi,
    Reg::Ebx,
    Reg::Ebp,
    Reg::Eax,
];

/// The register bits of [`ORDER`], of all registers (`byte` false) or of
/// those with a low byte (`cl`, `dl`, `bl`, `al`: for byte slots).
fn order_bits(byte: bool) -> Vec<u32> {
    ORDER
        .iter()
        .filter(|r| !byte || r.low_byte().is_some())
        .map(|r| r.index() as u32)
        .collect()
}

/// The register a slot of `size` bytes lives in when given the 32-bit
/// register of bit `r`.
fn slot_register(r: u32, size: i32) -> Register {
    let full = reg_of_bit(r);
    if size == 1 {
        Reg::ALL[r as usize]
            .low_byte()
            .expect("a register with a low byte")
    } else {
        full
    }
}

/// Promotes what it can of `frame`'s slots in `residual`; returns how many,
/// and how many of them are byte slots.
pub fn promote(residual: &mut Residual, frame: &Frame, calc: &mut EffectsOf) -> (usize, usize) {
    if frame.slots.is_empty() {
        return (0, 0);
    }
    let fx: Vec<Vec<Effects>> = residual
        .blocks
        .iter()
        .zip(&frame.slot_of)
        .map(|(b, slots)| {
            b.items
                .iter()
                .zip(slots)
                .map(|(item, &s)| calc.item(item, s))
                .collect()
        })
        .collect();
    let live = liveness(residual, &fx);
    let mut interferes = [0 as Locs; 128];
    for (b, block_fx) in fx.iter().enumerate() {
        // Block-local value numbers: locations that hold the same value
        // (through chains of copies) may share a register.
        let mut value: [u32; 128] = std::array::from_fn(|i| i as u32);
        let mut fresh = 128u32;
        for (k, e) in block_fx.iter().enumerate() {
            let mut out = live.live_out[b][k];
            if let Some((dst, src)) = e.copy {
                value[dst as usize] = value[src as usize];
                let same = value[src as usize];
                for l in bits(out) {
                    if value[l as usize] == same {
                        out &= !(1 << l);
                    }
                }
            } else {
                for d in bits(e.defs) {
                    value[d as usize] = fresh;
                    fresh += 1;
                }
            }
            for d in bits(e.defs) {
                add(&mut interferes, d, out);
            }
        }
    }
    // Incoming values are loaded after the entry's register saves, where
    // the saved registers are free.
    let entry = entry_index(residual);
    let saves = leading_saves(residual, entry);
    let at_entry = match saves {
        0 => live.live_in[entry],
        k => live.live_out[entry][k - 1],
    };
    for a in bits(at_entry) {
        add(&mut interferes, a, at_entry);
    }
    let hints = move_hints(residual, frame);
    let mut assigned: Vec<Option<Register>> = vec![None; frame.slots.len()];
    for (s, slot_reg) in assigned.iter_mut().enumerate() {
        let sb = SLOT_BASE + s as u32;
        let size = frame.slots[s].size;
        let order = order_bits(size == 1);
        // Registers the slot is moved from or to come first: sharing one
        // makes the move vanish.
        let preferred = hints[s].iter().copied().filter(|r| order.contains(r));
        let Some(r) = preferred.chain(order.iter().copied()).find(|&r| {
            interferes[r as usize] & (1 << sb) == 0 && interferes[sb as usize] & (1 << r) == 0
        }) else {
            continue;
        };
        // The slot's live range joins the register's.
        let merged = interferes[sb as usize];
        add(&mut interferes, r, merged);
        *slot_reg = Some(slot_register(r, size));
    }
    for (block, slots) in residual.blocks.iter_mut().zip(&frame.slot_of) {
        for (item, slot) in block.items.iter_mut().zip(slots) {
            let (Item::Instr(ins, _), Some(s)) = (item, slot) else {
                continue;
            };
            let Some(reg) = assigned[*s] else { continue };
            let op =
                crate::effects::memory_operand(ins).expect("a slot access has a memory operand");
            ins.set_op_kind(op, OpKind::Register);
            ins.set_op_register(op, reg);
            ins.set_memory_base(Register::None);
            ins.set_memory_index(Register::None);
            ins.set_memory_displacement32(0);
            ins.set_memory_displ_size(0);
            ins.set_segment_prefix(Register::None);
        }
    }
    load_incoming(residual, frame, &assigned, at_entry, saves);
    let promoted = assigned.iter().flatten();
    (
        promoted.clone().count(),
        promoted.filter(|r| r.is_gpr8()).count(),
    )
}

/// Per slot, the registers it is moved from or to (`mov [slot], r`,
/// `mov r, [slot]`, `movzx r, [slot]`), by register bit, in program order.
fn move_hints(residual: &Residual, frame: &Frame) -> Vec<Vec<u32>> {
    let mut hints = vec![Vec::new(); frame.slots.len()];
    for (block, slots) in residual.blocks.iter().zip(&frame.slot_of) {
        for (item, slot) in block.items.iter().zip(slots) {
            let (Item::Instr(ins, _), Some(s)) = (item, slot) else {
                continue;
            };
            if !matches!(
                ins.mnemonic(),
                Mnemonic::Mov | Mnemonic::Movzx | Mnemonic::Movsx
            ) {
                continue;
            }
            let other = (0..ins.op_count())
                .find(|&i| ins.op_kind(i) == OpKind::Register)
                .and_then(|i| reg_bit(ins.op_register(i)));
            if let Some(bit) = other {
                let r = bit.trailing_zeros();
                if !hints[*s].contains(&r) {
                    hints[*s].push(r);
                }
            }
        }
    }
    hints
}

/// The index of the entry block.
fn entry_index(residual: &Residual) -> usize {
    residual
        .blocks
        .iter()
        .position(|b| Some(b.label) == residual.entry)
        .expect("the frame analysis found the entry block")
}

/// How many `push r32` items open the entry block (the saves of
/// callee-saved registers), when nothing jumps back to it: the incoming
/// values of promoted slots are loaded after them. 0 when the entry block
/// is also a branch target.
fn leading_saves(residual: &Residual, entry: usize) -> usize {
    if is_jumped_to(residual, residual.blocks[entry].label) {
        return 0;
    }
    residual.blocks[entry]
        .items
        .iter()
        .take_while(|item| {
            matches!(item, Item::Instr(ins, _)
                if ins.code() == Code::Push_r32 && ins.op0_register() != Register::ESP)
        })
        .count()
}

/// Loads the incoming value of every promoted slot that is live on entry
/// (an argument) into its register: after the entry block's first `saves`
/// pushes when there are any, else in a new block that then jumps to the
/// old entry.
fn load_incoming(
    residual: &mut Residual,
    frame: &Frame,
    assigned: &[Option<Register>],
    live_at_entry: Locs,
    saves: usize,
) {
    let origin = entry_glue_origin(residual);
    let pushed = 4 * saves as i64;
    let loads: Vec<Item> = assigned
        .iter()
        .enumerate()
        .filter(|&(s, _)| live_at_entry & (1 << (SLOT_BASE + s as u32)) != 0)
        .filter_map(|(s, reg)| {
            let reg = (*reg)?;
            let offset = frame.slots[s].offset as i64 + pushed;
            let slot = MemoryOperand::with_base_displ(Register::ESP, offset);
            let code = if reg.is_gpr8() {
                Code::Mov_r8_rm8
            } else {
                Code::Mov_r32_rm32
            };
            let ins = Instruction::with2(code, reg, slot).expect("mov reg, [esp+d]");
            Some(Item::Instr(ins, origin))
        })
        .collect();
    if saves == 0 {
        prepend_to_entry(residual, loads);
    } else {
        let entry = entry_index(residual);
        residual.blocks[entry].items.splice(saves..saves, loads);
    }
}

/// Records that location `a` interferes with every location in `set`.
fn add(interferes: &mut [Locs; 128], a: u32, set: Locs) {
    interferes[a as usize] |= set & !(1 << a);
    for b in bits(set) {
        if b != a {
            interferes[b as usize] |= 1 << a;
        }
    }
}

/// The indices of the set bits of `set`.
pub fn bits(set: Locs) -> impl Iterator<Item = u32> {
    let mut rest = set;
    std::iter::from_fn(move || {
        (rest != 0).then(|| {
            let b = rest.trailing_zeros();
            rest &= rest - 1;
            b
        })
    })
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// Promotion after the frame analysis (nothing when there is none).
    fn promoted(r: wiper_residual::Residual) -> String {
        after(r, |r, c| {
            if let Some(f) = crate::frame::analyze(r) {
                super::promote(r, &f, c);
            }
        })
    }

    #[test]
    fn a_slot_accessed_as_a_dword_lives_in_a_register() {
        let f = function(|a| {
            a.lea(esp, ptr(esp - 4))?;
            a.mov(dword_ptr(esp), eax)?;
            a.mov(eax, 7)?;
            a.add(eax, dword_ptr(esp))?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        insta::assert_snapshot!(promoted(f), @"
        L0:
          lea esp,[esp-4]
          mov ecx,eax
          mov eax,7
          add eax,ecx
          lea esp,[esp+4]
          ret
          exit
        ");
    }

    /// Two slots live at once and one free register (`ecx`: `eax`, `edx`
    /// and the callee-saved registers are live to the `ret`): the slot
    /// read three times gets it, not the one at the lower offset read
    /// once. Slots are assigned most-accessed first.
    #[test]
    fn the_most_accessed_slot_gets_the_one_free_register() {
        let f = function(|a| {
            a.lea(esp, ptr(esp - 8))?;
            a.mov(dword_ptr(esp), 5)?;
            a.mov(dword_ptr(esp + 4), 7)?;
            a.add(edx, dword_ptr(esp + 4))?;
            a.add(edx, dword_ptr(esp + 4))?;
            a.add(edx, dword_ptr(esp + 4))?;
            a.add(edx, dword_ptr(esp))?;
            a.lea(esp, ptr(esp + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(promoted(f), @"
        L0:
          lea esp,[esp-8]
          mov dword [esp],5
          mov ecx,7
          add edx,ecx
          add edx,ecx
          add edx,ecx
          add edx,[esp]
          lea esp,[esp+8]
          ret
          exit
        ");
    }

    /// Sixteen slots that all hold copies of `ecx` share `ecx` (copies
    /// into and out of slots past the flags' and registers' bits too).
    #[test]
    fn many_slots_copied_from_one_register_share_it() {
        let f = function(|a| {
            a.lea(esp, ptr(esp - 0x40))?;
            for k in 0..16 {
                a.mov(dword_ptr(esp + 4 * k), ecx)?;
            }
            a.mov(eax, 0)?;
            for k in 0..16 {
                a.add(eax, dword_ptr(esp + 4 * k))?;
            }
            a.lea(esp, ptr(esp + 0x40))?;
            a.ret()
        });
        let listing = promoted(f);
        assert_eq!(listing.matches("add eax,ecx").count(), 16, "{listing}");
    }

    /// Near misses: a byte of the slot is written too (overlap), and in
    /// the second function the slot's address escapes into `ecx`.
    #[test]
    fn a_slot_with_a_byte_access_or_an_escaping_address_stays() {
        let overlap = function(|a| {
            a.lea(esp, ptr(esp - 4))?;
            a.mov(dword_ptr(esp), eax)?;
            a.mov(byte_ptr(esp + 1), dl)?;
            a.add(eax, dword_ptr(esp))?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        let escape = function(|a| {
            a.lea(esp, ptr(esp - 4))?;
            a.mov(dword_ptr(esp), eax)?;
            a.lea(ecx, ptr(esp))?;
            a.mov(dword_ptr(ecx), edx)?;
            a.add(eax, dword_ptr(esp))?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        insta::assert_snapshot!(promoted(overlap) + &promoted(escape), @"
        L0:
          lea esp,[esp-4]
          mov [esp],eax
          mov [esp+1],dl
          add eax,[esp]
          lea esp,[esp+4]
          ret
          exit
        L0:
          lea esp,[esp-4]
          mov [esp],eax
          lea ecx,[esp]
          mov [ecx],edx
          add eax,[esp]
          lea esp,[esp+4]
          ret
          exit
        ");
    }

    /// A byte slot lives in a byte register (`cl`, which it is moved from).
    #[test]
    fn a_slot_accessed_as_a_byte_lives_in_a_byte_register() {
        let f = function(|a| {
            a.lea(esp, ptr(esp - 4))?;
            a.mov(byte_ptr(esp), cl)?;
            a.movzx(eax, byte_ptr(esp))?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        insta::assert_snapshot!(promoted(f), @"
        L0:
          lea esp,[esp-4]
          mov cl,cl
          movzx eax,cl
          lea esp,[esp+4]
          ret
          exit
        ");
    }

    /// An argument slot read on entry: its register is loaded from it in a
    /// new entry block.
    #[test]
    fn an_argument_slot_is_loaded_on_entry() {
        let f = function(|a| {
            a.mov(eax, dword_ptr(esp + 4))?;
            a.add(eax, dword_ptr(esp + 4))?;
            a.ret()
        });
        insta::assert_snapshot!(promoted(f), @"
        L1:
          mov eax,[esp+4]
          jmp L0
        L0:
          mov eax,eax
          add eax,eax
          ret
          exit
        ");
    }

    /// The entry block need not be the first: an argument slot is loaded
    /// after the entry's own register saves, wherever it is laid out.
    #[test]
    fn an_argument_slot_is_loaded_after_the_saves_of_an_entry_laid_out_second() {
        use crate::testutil::{asm, block, jump, residual};
        let ret = block(1, asm(|a| a.ret()), wiper_residual::Terminator::Exit);
        let entry = block(
            0,
            asm(|a| {
                a.push(ebx)?;
                a.mov(eax, dword_ptr(esp + 8))?;
                a.add(eax, dword_ptr(esp + 8))?;
                a.pop(ebx)
            }),
            jump(1),
        );
        let mut f = residual(vec![ret, entry]);
        f.entry = Some(wiper_residual::Label(0));
        insta::assert_snapshot!(promoted(f), @"
        L1:
          ret
          exit
        L0:
          push ebx
          mov eax,[esp+8]
          mov eax,eax
          add eax,eax
          pop ebx
          jmp L1
        ");
    }

    /// Near miss: `[esp]` on entry is the return address, never a slot.
    #[test]
    fn the_return_address_stays_in_memory() {
        let f = function(|a| {
            a.mov(eax, dword_ptr(esp))?;
            a.add(eax, dword_ptr(esp))?;
            a.ret()
        });
        insta::assert_snapshot!(promoted(f), @"
        L0:
          mov eax,[esp]
          add eax,[esp]
          ret
          exit
        ");
    }
}
