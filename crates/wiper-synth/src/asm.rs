//! Building candidate instructions from abstract operands.
//!
//! Candidates are described as a mnemonic name (iced's `Mnemonic` spelling,
//! `"Add"`, `"Imul"`, `"Sete"`) and [`Opnd`]s; [`build`] finds an iced `Code`
//! whose name is `Mnemonic_kind_kind…` (`Add_rm32_imm8`, `Imul_r32_rm32_imm32`)
//! for the operands, builds the instruction, encodes it and decodes it back,
//! so every candidate is exactly what the decoder would produce (and what
//! `wiper_sem::lift` is checked on).

use std::collections::HashMap;
use std::sync::OnceLock;

use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, Instruction, MemoryOperand, OpKind, Register,
};
use wiper_sem::Reg;

/// A 32-bit addressing form `[base + index*scale + disp]`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Addr {
    /// The base register.
    pub base: Option<Reg>,
    /// The index register and its scale (1, 2, 4 or 8).
    pub index: Option<(Reg, u8)>,
    /// The displacement (wrapping).
    pub disp: u32,
}

impl Addr {
    /// The addressing of the memory operand of `ins`, if it uses 32-bit
    /// general registers only.
    pub fn of(ins: &Instruction) -> Option<Addr> {
        let reg = |r: Register| -> Option<Option<Reg>> {
            if r == Register::None {
                Some(None)
            } else if r.is_gpr32() {
                Reg::from_iced(r).map(Some)
            } else {
                None
            }
        };
        let base = reg(ins.memory_base())?;
        let index = reg(ins.memory_index())?.map(|r| (r, ins.memory_index_scale() as u8));
        Some(Addr {
            base,
            index,
            disp: ins.memory_displacement32(),
        })
    }

    /// The registers the address reads.
    pub fn regs(&self) -> impl Iterator<Item = Reg> {
        self.base.into_iter().chain(self.index.map(|(r, _)| r))
    }

    /// The iced memory operand.
    pub fn operand(&self) -> MemoryOperand {
        let base = self.base.map_or(Register::None, Reg::to_iced);
        let (index, scale) = self
            .index
            .map_or((Register::None, 1), |(r, s)| (r.to_iced(), u32::from(s)));
        let disp = i64::from(self.disp as i32);
        let size = if self.base.is_none() && self.index.is_none() {
            4
        } else if (-128..=127).contains(&disp) {
            1
        } else {
            4
        };
        MemoryOperand::new(base, index, scale, disp, size, false, Register::None)
    }
}

/// An operand of a candidate instruction.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Opnd {
    /// A register of any size (`eax`, `ax`, `al`, `ah`, `cl`).
    R(Register),
    /// A memory operand of the given width in bits (ignored by `lea`).
    M(Addr, u32),
    /// An immediate; sign-extended forms are chosen when the value allows.
    I(u32),
}

/// Every iced `Code` by its name.
fn codes() -> &'static HashMap<String, Code> {
    static CODES: OnceLock<HashMap<String, Code>> = OnceLock::new();
    CODES.get_or_init(|| Code::values().map(|c| (format!("{c:?}"), c)).collect())
}

/// The iced register of `r` at `bits` (8: the low byte, `None` for `esp`..`edi`).
pub(crate) fn sized(r: Reg, bits: u32) -> Option<Register> {
    match bits {
        32 => Some(r.to_iced()),
        16 => Some(r.word()),
        8 => r.low_byte(),
        _ => None,
    }
}

/// Width in bits of a register or memory operand.
fn width(o: &Opnd) -> Option<u32> {
    match o {
        Opnd::R(r) => Some(r.size() as u32 * 8),
        Opnd::M(_, w) => Some(*w),
        Opnd::I(_) => None,
    }
}

/// The operand-kind spellings iced uses in `Code` names for `o`.
fn kinds(mn: &str, o: &Opnd, ctx: u32) -> Vec<String> {
    match o {
        Opnd::R(r) => {
            let s = r.size() * 8;
            let mut v = Vec::new();
            if *r == Register::CL {
                v.push("CL".to_owned());
            }
            v.push(format!("r{s}"));
            v.push(format!("rm{s}"));
            v
        }
        Opnd::M(_, w) if mn == "Lea" => {
            let _ = w;
            vec!["m".to_owned()]
        }
        Opnd::M(_, w) => vec![format!("rm{w}")],
        Opnd::I(_) => {
            if ctx == 8 {
                vec!["imm8".to_owned()]
            } else {
                vec!["imm8".to_owned(), format!("imm{ctx}")]
            }
        }
    }
}

/// Builds `mn ops` (e.g. `build("Add", &[R(EAX), I(5)])`), choosing the
/// first iced form that fits, then encodes and decodes it. `None` when no
/// form exists or the operands are not encodable.
pub(crate) fn build(mn: &str, ops: &[Opnd]) -> Option<Instruction> {
    let ctx = ops.iter().find_map(width).unwrap_or(32);
    let lists: Vec<Vec<String>> = ops.iter().map(|o| kinds(mn, o, ctx)).collect();
    let mut choice = vec![0usize; ops.len()];
    loop {
        let mut name = mn.to_owned();
        for (l, &c) in lists.iter().zip(&choice) {
            name.push('_');
            name.push_str(&l[c]);
        }
        if let Some(&code) = codes().get(&name) {
            if let Some(ins) = construct(code, ops).and_then(|i| finish(&i)) {
                if immediates_kept(&ins, ops, ctx) {
                    return Some(ins);
                }
            }
        }
        // Next combination (odometer).
        let mut i = ops.len();
        loop {
            if i == 0 {
                return None;
            }
            i -= 1;
            choice[i] += 1;
            if choice[i] < lists[i].len() {
                break;
            }
            choice[i] = 0;
        }
    }
}

/// `Instruction::withN` for the operands.
fn construct(code: Code, ops: &[Opnd]) -> Option<Instruction> {
    use Opnd::*;
    let r = match *ops {
        [] => Ok(Instruction::with(code)),
        [R(a)] => Instruction::with1(code, a),
        [M(a, _)] => Instruction::with1(code, a.operand()),
        [I(a)] => Instruction::with1(code, a),
        [R(a), R(b)] => Instruction::with2(code, a, b),
        [R(a), M(b, _)] => Instruction::with2(code, a, b.operand()),
        [M(a, _), R(b)] => Instruction::with2(code, a.operand(), b),
        [R(a), I(b)] => Instruction::with2(code, a, b),
        [M(a, _), I(b)] => Instruction::with2(code, a.operand(), b),
        [R(a), R(b), I(c)] => Instruction::with3(code, a, b, c),
        [R(a), M(b, _), I(c)] => Instruction::with3(code, a, b.operand(), c),
        _ => return None,
    };
    r.ok()
}

/// Whether the decoded instruction's immediates are the values asked for,
/// read at the operand width `ctx` (an `imm8` form must not truncate or
/// sign-extend the value into another one).
fn immediates_kept(ins: &Instruction, ops: &[Opnd], ctx: u32) -> bool {
    let mask = if ctx >= 32 {
        u32::MAX
    } else {
        (1u32 << ctx) - 1
    };
    ops.iter().enumerate().all(|(i, o)| match o {
        Opnd::I(v) => {
            let i = i as u32;
            i < ins.op_count()
                && matches!(
                    ins.op_kind(i),
                    OpKind::Immediate8
                        | OpKind::Immediate16
                        | OpKind::Immediate32
                        | OpKind::Immediate8to16
                        | OpKind::Immediate8to32
                )
                && *v & !mask == 0
                && (ins.immediate(i) as u32) & mask == *v
        }
        _ => true,
    })
}

/// Encodes `ins` and decodes it back (at address 0), so the instruction is
/// in the decoder's normal form. `None` if it cannot be encoded.
pub(crate) fn finish(ins: &Instruction) -> Option<Instruction> {
    let mut enc = Encoder::new(32);
    enc.encode(ins, 0).ok()?;
    let bytes = enc.take_buffer();
    let out = Decoder::with_ip(32, &bytes, 0, DecoderOptions::NONE).decode();
    (!out.is_invalid() && out.code() == ins.code() && out.len() == bytes.len()).then_some(out)
}

/// The instructions placed one after the other from `ip`.
pub(crate) fn place(seq: &[Instruction], ip: u32) -> Vec<Instruction> {
    let mut at = ip;
    seq.iter()
        .map(|i| {
            let mut i = *i;
            i.set_ip32(at);
            at = at.wrapping_add(i.len() as u32);
            i
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Register as R;

    fn text(i: &Instruction) -> String {
        use iced_x86::{Formatter, NasmFormatter};
        let mut s = String::new();
        NasmFormatter::new().format(i, &mut s);
        s
    }

    #[test]
    fn forms_are_found() {
        let b = |mn: &str, ops: &[Opnd]| build(mn, ops).map(|i| text(&i));
        assert_eq!(
            b("Add", &[Opnd::R(R::EAX), Opnd::I(5)]).unwrap(),
            "add eax,5"
        );
        assert_eq!(
            b("Add", &[Opnd::R(R::EAX), Opnd::I(0x1234)]).unwrap(),
            "add eax,1234h"
        );
        assert_eq!(
            b("Add", &[Opnd::R(R::EAX), Opnd::I(0xffff_fffc)]).unwrap(),
            "add eax,0FFFFFFFCh"
        );
        assert_eq!(
            b("Shl", &[Opnd::R(R::EDX), Opnd::I(3)]).unwrap(),
            "shl edx,3"
        );
        assert_eq!(
            b("Shl", &[Opnd::R(R::EDX), Opnd::R(R::CL)]).unwrap(),
            "shl edx,cl"
        );
        assert_eq!(
            b("Imul", &[Opnd::R(R::EAX), Opnd::R(R::ECX), Opnd::I(3)]).unwrap(),
            "imul eax,ecx,3"
        );
        let at = Addr {
            base: Some(Reg::Esp),
            index: None,
            disp: 0x10,
        };
        assert_eq!(
            b("Mov", &[Opnd::R(R::EAX), Opnd::M(at, 32)]).unwrap(),
            "mov eax,[esp+10h]"
        );
        assert_eq!(
            b("Mov", &[Opnd::M(at, 8), Opnd::I(0x7f)]).unwrap(),
            "mov byte [esp+10h],7Fh"
        );
        assert_eq!(
            b("Lea", &[Opnd::R(R::EAX), Opnd::M(at, 32)]).unwrap(),
            "lea eax,[esp+10h]"
        );
        assert_eq!(b("Pushd", &[Opnd::I(7)]).unwrap(), "push 7");
        assert_eq!(
            b("Movzx", &[Opnd::R(R::EAX), Opnd::R(R::CL)]).unwrap(),
            "movzx eax,cl"
        );
        assert_eq!(b("Sete", &[Opnd::R(R::AL)]).unwrap(), "sete al");
        assert!(b("Mov", &[Opnd::R(R::AL), Opnd::I(0x100)]).is_none());
        let bad = Addr {
            base: None,
            index: Some((Reg::Esp, 2)),
            disp: 0,
        };
        assert!(b("Mov", &[Opnd::R(R::EAX), Opnd::M(bad, 32)]).is_none());
    }
}
