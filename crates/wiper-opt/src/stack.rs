//! Stack-pointer peepholes. The specializer moves the machine's stack
//! pointer only where residual code needs it, one adjustment at a time, and
//! passes values through the stack the way the original code did:
//! - `lea esp,[esp+a]; ...; lea esp,[esp+b]` becomes `...; lea
//!   esp,[esp+a+b]` (nothing when that is 0) when the items between neither
//!   read nor move the stack pointer nor touch memory;
//! - `lea esp,[esp+d]; mov [esp],r` with `d <= -4` becomes
//!   `lea esp,[esp+d+4]; push r` (so that the frame elimination sees the
//!   save);
//! - `push r; pop s` becomes `mov s,r`;
//! - `mov [esp],r; pop s` becomes `mov s,r; lea esp,[esp+4]`.
//!
//! The last two leave the word just below the stack pointer as it was
//! instead of holding `r`: nothing reads memory below the stack pointer
//! (the specializer keeps every live frame byte at or above it, and the
//! i386 System V ABI gives a function no red zone).

use iced_x86::{Code, Instruction, MemoryOperand, Register};
use wiper_residual::{Item, Residual};

use crate::build::mov;

/// The displacement of `lea esp,[esp+d]`.
fn esp_adjustment(item: &Item) -> Option<i32> {
    let Item::Instr(ins, _) = item else {
        return None;
    };
    (ins.code() == Code::Lea_r32_m
        && ins.op0_register() == Register::ESP
        && ins.memory_base() == Register::ESP
        && ins.memory_index() == Register::None)
        .then(|| ins.memory_displacement32() as i32)
}

/// `lea esp,[esp+d]`.
fn lea_esp(d: i32) -> Instruction {
    let m = MemoryOperand::with_base_displ(Register::ESP, d as i64);
    Instruction::with2(Code::Lea_r32_m, Register::ESP, m).expect("lea esp")
}

/// The register a `push r32` pushes or a `pop r32` pops into.
fn push_pop(item: &Item, code: Code) -> Option<Register> {
    match item {
        Item::Instr(ins, _) if ins.code() == code && ins.op0_register() != Register::ESP => {
            Some(ins.op0_register())
        }
        _ => None,
    }
}

/// The register `mov [esp],r` stores.
fn store_at_esp(item: &Item) -> Option<Register> {
    let Item::Instr(ins, _) = item else {
        return None;
    };
    (ins.code() == Code::Mov_rm32_r32
        && ins.memory_base() == Register::ESP
        && ins.memory_index() == Register::None
        && ins.memory_displacement32() == 0
        && ins.segment_prefix() == Register::None
        && ins.op1_register() != Register::ESP)
        .then(|| ins.op1_register())
}

/// Whether `item` neither reads nor moves the stack pointer, nor touches
/// memory (a stack adjustment may move across it).
fn independent_of_esp(item: &Item) -> bool {
    match item {
        Item::Instr(ins, _) => {
            ins.stack_pointer_increment() == 0
                && ins.flow_control() == iced_x86::FlowControl::Next
                && (0..ins.op_count()).all(|k| match ins.op_kind(k) {
                    iced_x86::OpKind::Register => ins.op_register(k) != Register::ESP,
                    iced_x86::OpKind::Memory => {
                        ins.code() == Code::Lea_r32_m
                            && ins.memory_base() != Register::ESP
                            && ins.memory_index() != Register::ESP
                    }
                    _ => true,
                })
        }
        Item::Address { .. } => true,
        Item::CallLabel(..) => false,
    }
}

/// The last stack adjustment in `out` with only items independent of the
/// stack pointer after it.
fn pending_adjustment(out: &[Item]) -> Option<usize> {
    let k = out.iter().rposition(|i| !independent_of_esp(i))?;
    esp_adjustment(&out[k]).map(|_| k)
}

/// Appends `lea esp,[esp+d]` to `out`, merged into the pending adjustment
/// if there is one; returns whether it merged.
fn adjust(out: &mut Vec<Item>, d: i32, origin: wiper_residual::Origin) -> bool {
    let merged = match pending_adjustment(out) {
        Some(p) => esp_adjustment(&out.remove(p)).expect("a stack adjustment"),
        None => 0,
    };
    let total = merged.wrapping_add(d);
    if total != 0 || merged == 0 {
        out.push(Item::Instr(lea_esp(total), origin));
    }
    merged != 0
}

/// Rewrites one block's items; returns them and whether anything changed.
fn rewrite(items: Vec<Item>) -> (Vec<Item>, bool) {
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    let mut changed = false;
    for item in items {
        let origin = item.origin();
        if let Some(d) = esp_adjustment(&item) {
            changed |= adjust(&mut out, d, origin);
            continue;
        }
        if let Some(src) = store_at_esp(&item) {
            // `lea esp,[esp+d]; mov [esp],r` with d <= -4: a push.
            if let Some(d) = out.last().and_then(esp_adjustment).filter(|&d| d <= -4) {
                out.pop();
                if d != -4 {
                    out.push(Item::Instr(lea_esp(d + 4), origin));
                }
                let push = Instruction::with1(Code::Push_r32, src).expect("push r32");
                out.push(Item::Instr(push, origin));
                changed = true;
                continue;
            }
        }
        if let Some(dst) = push_pop(&item, Code::Pop_r32) {
            let last = out.last();
            let pushed = last.and_then(|l| push_pop(l, Code::Push_r32));
            let stored = last.and_then(store_at_esp);
            if let Some(src) = pushed.or(stored) {
                out.pop();
                out.push(Item::Instr(mov(dst, src), origin));
                if stored.is_some() {
                    adjust(&mut out, 4, origin);
                }
                changed = true;
                continue;
            }
        }
        out.push(item);
    }
    (out, changed)
}

/// Applies the stack-pointer peepholes to every block; returns whether
/// anything changed.
pub fn run(residual: &mut Residual) -> bool {
    let mut changed = false;
    for block in &mut residual.blocks {
        let (items, c) = rewrite(std::mem::take(&mut block.items));
        block.items = items;
        changed |= c;
    }
    changed
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{function, listing};

    #[test]
    fn adjustments_merge_and_stack_round_trips_become_moves() {
        let mut f = function(|a| {
            a.lea(esp, ptr(esp - 8))?;
            a.lea(esp, ptr(esp - 8))?;
            a.mov(dword_ptr(esp), eax)?;
            a.pop(ebx)?;
            a.push(ecx)?;
            a.pop(edx)?;
            a.lea(esp, ptr(esp + 12))?;
            a.ret()
        });
        assert!(super::run(&mut f));
        insta::assert_snapshot!(listing(&f), @"
        L0:
          mov ebx,eax
          mov edx,ecx
          ret
          exit
        ");
    }

    /// `lea esp,[esp-4]; mov [esp],eax` is exactly a `push eax`.
    #[test]
    fn a_store_into_a_new_word_is_a_push() {
        let mut f = function(|a| {
            a.lea(esp, ptr(esp - 4))?;
            a.mov(dword_ptr(esp), eax)?;
            a.mov(eax, dword_ptr(esp + 8))?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        assert!(super::run(&mut f));
        insta::assert_snapshot!(listing(&f), @"
        L0:
          push eax
          mov eax,[esp+8]
          lea esp,[esp+4]
          ret
          exit
        ");
    }

    /// Near misses: a store at `[esp+4]` before the `pop`, a `push` and a
    /// `pop` apart, and adjustments of another register.
    #[test]
    fn other_shapes_stay() {
        let mut f = function(|a| {
            a.mov(dword_ptr(esp + 4), eax)?;
            a.pop(ebx)?;
            a.push(ecx)?;
            a.inc(eax)?;
            a.pop(edx)?;
            a.lea(ebp, ptr(ebp - 8))?;
            a.lea(ebp, ptr(ebp - 8))?;
            a.ret()
        });
        let before = listing(&f);
        assert!(!super::run(&mut f));
        assert_eq!(listing(&f), before);
    }

    /// Near misses: an adjustment does not move across a copy of the
    /// stack pointer (`mov eax,esp`) or an address computed from it (`lea
    /// ecx,[esp+4]`).
    #[test]
    fn adjustments_stay_apart_across_reads_of_the_stack_pointer() {
        for read in [
            |a: &mut CodeAssembler| a.mov(eax, esp),
            |a: &mut CodeAssembler| a.lea(ecx, ptr(esp + 4)),
        ] {
            let f = function(|a| {
                a.lea(esp, ptr(esp - 8))?;
                read(a)?;
                a.lea(esp, ptr(esp + 8))?;
                a.ret()
            });
            crate::testutil::assert_unchanged(f, |r, _| super::run(r));
        }
    }

    /// An adjustment moves across an address computed from another
    /// register (`lea ecx,[ebx+4]` touches no memory) and merges; near
    /// misses: a store or a load through another register, which may
    /// reach the words the adjustment reserves (below the stack pointer
    /// once it moved), stays between the adjustments, and the pass
    /// reports no change.
    #[test]
    fn adjustments_merge_across_addresses_but_not_across_memory() {
        let mut f = function(|a| {
            a.lea(esp, ptr(esp - 8))?;
            a.lea(ecx, ptr(ebx + 4))?;
            a.lea(esp, ptr(esp + 8))?;
            a.ret()
        });
        assert!(super::run(&mut f));
        insta::assert_snapshot!(listing(&f), @"
        L0:
          lea ecx,[ebx+4]
          ret
          exit
        ");
        for access in [
            |a: &mut CodeAssembler| a.mov(dword_ptr(ebx), eax),
            |a: &mut CodeAssembler| a.mov(eax, dword_ptr(ebx)),
        ] {
            let mut f = function(|a| {
                a.lea(esp, ptr(esp - 8))?;
                access(a)?;
                a.lea(esp, ptr(esp + 8))?;
                a.ret()
            });
            let before = listing(&f);
            assert!(!super::run(&mut f), "{before}");
            assert_eq!(listing(&f), before);
        }
    }
}
