//! Addressing-mode folding, local to a block. The specializer computes
//! addresses the way the original code at -O0 did, one operation at a time
//! (`imul edx,ebp,4; mov eax,ebx; add eax,edx; mov eax,[eax]`); when a
//! memory operand's base register holds `base + index*scale + disp` of
//! registers that still hold their values, the operand becomes that
//! address (`mov eax,[ebx+ebp*4]`) and the computation is left to
//! dead-code elimination.
//!
//! A register's address form comes from `mov r,s`, `lea r,[...]`, `imul
//! r,s,k` (k = 1, 2, 4 or 8), and `add r,s` or `add`/`sub r,imm` on a
//! register that has one; any other write forgets it, and a form is used
//! only while none of its registers was written since.

use iced_x86::{Code, Instruction, OpKind, Register};
use wiper_residual::{Item, Residual};
use wiper_x86::Reg;

use crate::effects::{displacement_size, memory_operand, EffectsOf};

/// `base + index*scale + disp`, with the write counts of its registers when
/// it was formed.
#[derive(Clone, Copy, Debug)]
struct Form {
    base: Option<(Register, u32)>,
    index: Option<(Register, u32, u32)>,
    disp: i32,
}

/// The forms of the eight registers and how often each was written.
#[derive(Default)]
struct Forms {
    form: [Option<Form>; 8],
    writes: [u32; 8],
}

/// The index of a 32-bit general register other than `esp`.
fn slot(r: Register) -> Option<usize> {
    if !r.is_gpr32() || r == Register::ESP {
        return None;
    }
    Reg::from_iced(r).map(Reg::index)
}

impl Forms {
    /// `r` as a base operand, stamped with its write count.
    fn reg(&self, r: Register) -> Option<(Register, u32)> {
        slot(r).map(|i| (r, self.writes[i]))
    }

    /// Whether every register of `f` still holds the value it had.
    fn valid(&self, f: &Form) -> bool {
        let holds = |r: Register, w: u32| slot(r).is_some_and(|i| self.writes[i] == w);
        f.base.map_or(true, |(r, w)| holds(r, w)) && f.index.map_or(true, |(r, _, w)| holds(r, w))
    }

    /// The form of `r`, or `r` itself as a base.
    fn of(&self, r: Register) -> Option<Form> {
        let i = slot(r)?;
        match self.form[i] {
            Some(f) if self.valid(&f) => Some(f),
            _ => Some(Form {
                base: self.reg(r),
                index: None,
                disp: 0,
            }),
        }
    }

    /// The form `ins` gives its destination, if it is one of the forms
    /// the module docs list.
    fn formed(&self, ins: &Instruction) -> Option<Form> {
        let dst = ins.op0_register();
        match ins.code() {
            Code::Mov_r32_rm32 | Code::Mov_rm32_r32 if ins.op1_kind() == OpKind::Register => {
                self.of(ins.op1_register())
            }
            Code::Lea_r32_m => {
                let base = match ins.memory_base() {
                    Register::None => None,
                    b => Some(self.reg(b)?),
                };
                let index = match ins.memory_index() {
                    Register::None => None,
                    i => Some((i, ins.memory_index_scale(), self.reg(i)?.1)),
                };
                Some(Form {
                    base,
                    index,
                    disp: ins.memory_displacement32() as i32,
                })
            }
            Code::Imul_r32_rm32_imm8 | Code::Imul_r32_rm32_imm32
                if ins.op1_kind() == OpKind::Register
                    && matches!(ins.immediate(2), 1 | 2 | 4 | 8) =>
            {
                let s = ins.op1_register();
                Some(Form {
                    base: None,
                    index: Some((s, ins.immediate(2) as u32, self.reg(s)?.1)),
                    disp: 0,
                })
            }
            Code::Add_r32_rm32 | Code::Add_rm32_r32 if ins.op1_kind() == OpKind::Register => {
                let f = self.of(dst)?;
                let s = ins.op1_register();
                let other = self.of(s)?;
                add_forms(f, other)
            }
            Code::Add_rm32_imm8 | Code::Add_rm32_imm32 | Code::Add_EAX_imm32 => {
                let f = self.of(dst)?;
                Some(Form {
                    disp: f.disp.wrapping_add(ins.immediate(1) as i32),
                    ..f
                })
            }
            Code::Sub_rm32_imm8 | Code::Sub_rm32_imm32 | Code::Sub_EAX_imm32 => {
                let f = self.of(dst)?;
                Some(Form {
                    disp: f.disp.wrapping_sub(ins.immediate(1) as i32),
                    ..f
                })
            }
            _ => None,
        }
    }
}

/// `a + b` as one address form, if it has at most a base and a scaled
/// index.
fn add_forms(a: Form, b: Form) -> Option<Form> {
    let disp = a.disp.wrapping_add(b.disp);
    let as_index = |f: &Form| -> Option<(Register, u32, u32)> {
        match (f.base, f.index) {
            (Some((r, w)), None) => Some((r, 1, w)),
            (None, Some(i)) => Some(i),
            _ => None,
        }
    };
    match (a.base, a.index, b.base, b.index) {
        (Some(base), None, _, _) => Some(Form {
            base: Some(base),
            index: Some(as_index(&b)?),
            disp,
        }),
        (None, Some(index), Some(base), None) => Some(Form {
            base: Some(base),
            index: Some(index),
            disp,
        }),
        (None, None, _, _) => Some(Form { disp, ..b }),
        _ => None,
    }
}

/// `ins` with its memory operand `[r + d]` replaced by `f + d`, when the
/// operand is just a base register `r` and a displacement.
fn folded(ins: &Instruction, forms: &Forms) -> Option<Instruction> {
    memory_operand(ins)?;
    if ins.code() == Code::Lea_r32_m {
        return None; // an address, not an access: the affine passes' domain
    }
    let r = ins.memory_base();
    if ins.memory_index() != Register::None || slot(r).is_none() {
        return None;
    }
    let f = forms.form[slot(r)?].filter(|f| forms.valid(f))?;
    if f.index.is_some_and(|(i, _, _)| i == Register::ESP) || f.base.is_none() && f.index.is_none()
    {
        return None;
    }
    let disp = f.disp.wrapping_add(ins.memory_displacement32() as i32);
    let mut new = *ins;
    new.set_memory_base(f.base.map_or(Register::None, |b| b.0));
    let (index, scale) = f.index.map_or((Register::None, 1), |(i, s, _)| (i, s));
    new.set_memory_index(index);
    new.set_memory_index_scale(scale);
    new.set_memory_displacement32(disp as u32);
    new.set_memory_displ_size(if f.base.is_none() {
        4 // no base: always a 32-bit displacement
    } else {
        displacement_size(disp)
    });
    Some(new)
}

/// Folds address computations into memory operands (see the module docs);
/// returns whether anything changed.
pub fn fold_addresses(residual: &mut Residual, calc: &mut EffectsOf) -> bool {
    let mut changed = false;
    for block in &mut residual.blocks {
        let mut forms = Forms::default();
        for item in &mut block.items {
            if let Item::Instr(ins, _) = item {
                if let Some(new) = folded(ins, &forms) {
                    *ins = new;
                    changed = true;
                }
            }
            let formed = match item {
                Item::Instr(ins, _) => forms.formed(ins).map(|f| (ins.op0_register(), f)),
                _ => None,
            };
            let defs = calc.item(item, None).defs;
            for i in 0..8 {
                if defs & (1 << i) != 0 {
                    forms.writes[i] += 1;
                    forms.form[i] = None;
                }
            }
            if let Some((dst, f)) = formed {
                if let Some(i) = slot(dst) {
                    forms.form[i] = Some(f);
                }
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    #[test]
    fn an_address_computed_step_by_step_becomes_an_operand() {
        let f = function(|a| {
            a.imul_3(edx, ebp, 4)?;
            a.mov(eax, ebx)?;
            a.add(eax, edx)?;
            a.mov(ecx, dword_ptr(eax))?;
            a.lea(edx, ptr(ebp + 1))?;
            a.mov(dword_ptr(edx), ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_addresses), @"
        L0:
          imul edx,ebp,4
          mov eax,ebx
          add eax,edx
          mov ecx,[ebx+ebp*4]
          lea edx,[ebp+1]
          mov [ebp+1],ecx
          ret
          exit
        ");
    }

    /// A sum of two plain registers is a base and an index of scale 1.
    #[test]
    fn a_sum_of_two_registers_becomes_base_and_index() {
        let f = function(|a| {
            a.mov(eax, ebx)?;
            a.add(eax, ecx)?;
            a.mov(edx, dword_ptr(eax + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_addresses), @"
        L0:
          mov eax,ebx
          add eax,ecx
          mov edx,[ebx+ecx+8]
          ret
          exit
        ");
    }

    /// A scaled index plus a base register (the index computed first) is
    /// an operand too.
    #[test]
    fn a_scaled_index_plus_a_register_becomes_an_operand() {
        let f = function(|a| {
            a.imul_3(edx, ebp, 4)?;
            a.add(edx, ebx)?;
            a.mov(ecx, dword_ptr(edx + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_addresses), @"
        L0:
          imul edx,ebp,4
          add edx,ebx
          mov ecx,[ebx+ebp*4+8]
          ret
          exit
        ");
    }

    /// A constant address plus a register keeps both displacements.
    #[test]
    fn a_constant_plus_a_register_keeps_the_constant() {
        let f = function(|a| {
            a.lea(eax, ptr(0x100))?;
            a.add(eax, ebx)?;
            a.mov(ecx, dword_ptr(eax + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_addresses), @"
        L0:
          lea eax,[100h]
          add eax,ebx
          mov ecx,[ebx+108h]
          ret
          exit
        ");
    }

    /// A register whose own form went stale (`ecx` changed) still holds
    /// its value: a copy of it is that register as a base.
    #[test]
    fn a_copy_of_a_register_with_a_stale_form_is_that_register() {
        let f = function(|a| {
            a.lea(ebx, ptr(ecx + 4))?;
            a.inc(ecx)?;
            a.mov(eax, ebx)?;
            a.mov(edx, dword_ptr(eax + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::fold_addresses), @"
        L0:
          lea ebx,[ecx+4]
          inc ecx
          mov eax,ebx
          mov edx,[ebx+8]
          ret
          exit
        ");
    }

    /// Near misses: a call of a residual block (`CallLabel`) and a call
    /// into the original code may change every register, so `eax` after
    /// them need not be `ebx+4`.
    #[test]
    fn an_address_form_does_not_cross_a_call() {
        use crate::testutil::{asm, block, residual};
        use wiper_residual::{Item, Label, Origin, Terminator};
        let calls = [
            Item::CallLabel(Label(1), Origin::Original(0)),
            Item::Instr(asm(|a| a.call(0x0804_9000u64))[0], Origin::Original(0)),
        ];
        for call in calls {
            let mut entry = block(
                0,
                asm(|a| {
                    a.lea(eax, ptr(ebx + 4))?;
                    a.mov(ecx, dword_ptr(eax))?;
                    a.ret()
                }),
                Terminator::Exit,
            );
            entry.items.insert(1, call);
            let clone = block(1, asm(|a| a.ret()), Terminator::Exit);
            crate::testutil::assert_unchanged(residual(vec![entry, clone]), super::fold_addresses);
        }
    }

    /// Near misses: a register of the form is written before the use, and
    /// a product by 3 is no scale.
    #[test]
    fn stale_or_unencodable_forms_stay() {
        let f = function(|a| {
            a.mov(eax, ebx)?;
            a.add(eax, edx)?;
            a.inc(ebx)?;
            a.mov(ecx, dword_ptr(eax))?;
            a.imul_3(edx, ebp, 3)?;
            a.mov(ecx, dword_ptr(edx))?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::fold_addresses);
    }
}
