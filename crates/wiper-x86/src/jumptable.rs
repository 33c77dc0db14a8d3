//! Resolving the indirect jumps of gcc `switch` statements into their case targets.
//!
//! gcc dispatches a dense `switch` through a table of 32-bit entries, after a bounds
//! check that sends out-of-range values to the default label:
//!
//! ```text
//! -O1/-O2:  cmp eax, 7 ; ja default ; jmp [eax*4 + table]
//! -O0:      cmp [ebp+8], 7 ; ja default ; mov eax, [ebp+8] ; shl eax, 2
//!           add eax, table ; mov eax, [eax] ; jmp eax
//! PIC:      cmp eax, 7 ; ja default ; mov edx, [ebx + eax*4 + off] ; add edx, ebx ; jmp edx
//! ```
//!
//! The resolver takes the instructions that lead to the jump in address order (at
//! most [`WINDOW`], not crossing a call, return or unconditional jump) and evaluates
//! them forward over a small abstract domain: a register holds a linear function
//! `scale * x + offset` of one unknown *source* (a register or stack slot as it was
//! at the start of the window), a table entry indexed by such a value, or nothing
//! known. A `cmp v, N` followed by `ja`/`jae` bounds `v`. The jump is resolved when
//! its target is a table entry whose index has a bound; for PIC tables (entries
//! relative to the register that holds the GOT address) that register is taken to
//! hold the binary's `_GLOBAL_OFFSET_TABLE_`, as gcc's PIC code guarantees. Every
//! target must be code, or the jump stays unresolved.

use std::collections::BTreeMap;

use iced_x86::{ConditionCode, FlowControl, Instruction, Mnemonic, OpKind, Register};
use wiper_elf::Binary;

/// How many instructions before the jump are examined.
pub const WINDOW: usize = 24;
/// Largest table accepted (a bound above this is not a gcc switch).
pub const MAX_ENTRIES: u32 = 4096;

/// A resolved jump table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpTable {
    /// Address of the indirect jump.
    pub jump: u32,
    /// Address of the first table entry.
    pub table: u32,
    /// For PIC tables, the address each entry is relative to (the GOT); `None` when
    /// entries are absolute.
    pub relative_to: Option<u32>,
    /// Target of each entry, in table order.
    pub targets: Vec<u32>,
}

/// An unknown value at the start of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Reg(Register),
    /// The word at `reg + offset`, `reg` as it was at the window start; `epoch`
    /// counts memory writes, so a slot reread after a store is a different source.
    Slot(Register, u32, u32),
    /// Whatever the instruction at this address wrote into this register, when the
    /// domain does not model it (`movsx eax, al`): unknown, but a value to bound.
    Def(u32, Register),
}

/// `scale * source + offset`, modulo 2^32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Linear {
    source: Source,
    scale: u32,
    offset: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Unknown,
    Const(u32),
    Lin(Linear),
    /// The 32-bit word at `table + 4 * index`; with `got_reg`, the table address is
    /// relative to the GOT held in that register, and `relative` says the GOT was
    /// added to the loaded entry too (the PIC table form).
    Entry {
        index: Source,
        table: u32,
        got_reg: Option<Register>,
        relative: bool,
    },
}

struct State {
    /// 32-bit registers written in the window.
    regs: BTreeMap<Register, Value>,
    /// 8- and 16-bit registers written in the window (`sub dl, 0x2b`).
    narrow: BTreeMap<Register, Value>,
    epoch: u32,
    last_cmp: Option<(Value, u32)>,
    /// Upper bounds (inclusive) on values proven by `cmp; ja`.
    bounds: Vec<(Linear, u32)>,
}

impl State {
    fn reg(&self, r: Register) -> Value {
        let r = r.full_register32();
        self.regs.get(&r).copied().unwrap_or(Value::Lin(Linear {
            source: Source::Reg(r),
            scale: 1,
            offset: 0,
        }))
    }

    /// Value of an 8- or 16-bit register.
    fn narrow_reg(&self, r: Register) -> Value {
        match self.narrow.get(&r) {
            Some(v) => *v,
            None if self.regs.contains_key(&r.full_register32()) => Value::Unknown,
            None => Value::Lin(Linear {
                source: Source::Reg(r),
                scale: 1,
                offset: 0,
            }),
        }
    }

    /// Records a write of `v` to register `r` of any size.
    fn write_reg(&mut self, r: Register, v: Value, ins: &Instruction) {
        let full = r.full_register32();
        self.narrow.retain(|n, _| n.full_register32() != full);
        if r.size() == 4 {
            self.regs.insert(full, v);
        } else {
            self.regs.insert(full, fresh(ins, full));
            self.narrow.insert(r, v);
        }
    }

    /// Whether `r` still holds its value from the window start.
    fn pristine(&self, r: Register) -> bool {
        !self.regs.contains_key(&r.full_register32())
    }

    fn operand(&self, ins: &Instruction, i: u32) -> Value {
        match ins.op_kind(i) {
            OpKind::Register if ins.op_register(i).size() == 4 => self.reg(ins.op_register(i)),
            OpKind::Register => self.narrow_reg(ins.op_register(i)),
            OpKind::Immediate32 | OpKind::Immediate8to32 | OpKind::Immediate8 => {
                Value::Const(ins.immediate(i) as u32)
            }
            OpKind::Memory if ins.memory_size().size() == 4 => self.load(ins),
            _ => fresh(ins, Register::None),
        }
    }

    /// Value of the address of the memory operand.
    fn address(&self, ins: &Instruction) -> Value {
        if ins.memory_segment() != Register::DS && ins.memory_segment() != Register::SS {
            return Value::Unknown;
        }
        let disp = ins.memory_displacement32();
        let base = ins.memory_base();
        let index = ins.memory_index();
        let scale = ins.memory_index_scale();
        let scaled = if index == Register::None {
            Value::Const(0)
        } else {
            mul(self.reg(index), scale)
        };
        let base_value = if base == Register::None {
            Value::Const(0)
        } else {
            self.reg(base)
        };
        add(add(base_value, scaled), Value::Const(disp))
    }

    fn load(&self, ins: &Instruction) -> Value {
        let (base, index, scale, disp) = (
            ins.memory_base(),
            ins.memory_index(),
            ins.memory_index_scale(),
            ins.memory_displacement32(),
        );
        // PIC: [got_reg + index*4 + disp], with got_reg untouched in the window.
        if base != Register::None && index != Register::None && scale == 4 && self.pristine(base) {
            if let Value::Lin(idx) = self.reg(index) {
                if idx.scale == 1 {
                    return Value::Entry {
                        index: idx.source,
                        table: disp.wrapping_add(idx.offset.wrapping_mul(4)),
                        got_reg: Some(base.full_register32()),
                        relative: false,
                    };
                }
            }
        }
        match self.address(ins) {
            Value::Lin(l) if l.scale == 4 => Value::Entry {
                index: l.source,
                table: l.offset,
                got_reg: None,
                relative: false,
            },
            Value::Lin(Linear {
                source: Source::Reg(r),
                scale: 1,
                offset,
            }) => Value::Lin(Linear {
                source: Source::Slot(r, offset, self.epoch),
                scale: 1,
                offset: 0,
            }),
            _ => fresh(ins, Register::None),
        }
    }

    fn step(&mut self, ins: &Instruction) {
        let dest_reg = (ins.op_count() > 0 && ins.op0_kind() == OpKind::Register)
            .then(|| ins.op0_register())
            .filter(|r| r.size() == 4);
        let result = match (ins.mnemonic(), dest_reg) {
            (Mnemonic::Mov, Some(_)) => Some(self.operand(ins, 1)),
            (Mnemonic::Lea, Some(_)) => Some(self.address(ins)),
            // A zero-extended byte or word keeps its unsigned bound.
            (Mnemonic::Movzx, Some(_)) if ins.op1_kind() == OpKind::Register => {
                Some(match self.narrow_reg(ins.op1_register()) {
                    v @ Value::Lin(Linear {
                        scale: 1,
                        offset: 0,
                        ..
                    }) => v,
                    _ => fresh(ins, Register::None),
                })
            }
            (Mnemonic::Add, Some(r)) => {
                let (a, b) = (self.reg(r), self.operand(ins, 1));
                Some(match (a, ins.op1_kind()) {
                    // entry + got_reg: a PIC table target.
                    (
                        Value::Entry {
                            index,
                            table,
                            got_reg: Some(g),
                            relative: false,
                        },
                        OpKind::Register,
                    ) if ins.op1_register() == g && self.pristine(g) => Value::Entry {
                        index,
                        table,
                        got_reg: Some(g),
                        relative: true,
                    },
                    _ => add(a, b),
                })
            }
            (Mnemonic::Sub, Some(r)) => Some(match self.operand(ins, 1) {
                Value::Const(c) => add(self.reg(r), Value::Const(c.wrapping_neg())),
                _ => fresh(ins, r),
            }),
            (Mnemonic::Shl, Some(r)) if ins.op1_kind() == OpKind::Immediate8 => {
                Some(mul(self.reg(r), 1 << (ins.immediate8() & 31)))
            }
            (Mnemonic::Push | Mnemonic::Pop, _) => {
                let delta = if ins.mnemonic() == Mnemonic::Push {
                    4u32.wrapping_neg()
                } else {
                    4
                };
                let esp = add(self.reg(Register::ESP), Value::Const(delta));
                self.regs.insert(Register::ESP, esp);
                if let Some(r) = dest_reg.filter(|_| ins.mnemonic() == Mnemonic::Pop) {
                    self.write_reg(r, fresh(ins, r), ins);
                }
                None
            }
            (Mnemonic::Cmp, _) => {
                if let Value::Const(n) = self.operand(ins, 1) {
                    self.last_cmp = Some((self.operand(ins, 0), n));
                }
                None
            }
            (Mnemonic::Ja | Mnemonic::Jae, _) => {
                if let Some((Value::Lin(v), n)) = self.last_cmp {
                    let bound = if ins.condition_code() == ConditionCode::ae {
                        n.checked_sub(1)
                    } else {
                        Some(n)
                    };
                    if let Some(b) = bound {
                        self.bounds.push((v, b));
                    }
                }
                None
            }
            _ => None,
        };
        if let (Some(v), Some(r)) = (result, dest_reg) {
            self.write_reg(r, v, ins);
        } else {
            self.clobber(ins);
        }
        if writes_memory(ins) {
            self.epoch += 1;
        }
    }

    /// Forgets registers an instruction writes in ways the domain does not follow.
    fn clobber(&mut self, ins: &Instruction) {
        let handled = matches!(
            ins.mnemonic(),
            Mnemonic::Cmp | Mnemonic::Test | Mnemonic::Push | Mnemonic::Pop
        );
        if handled || ins.flow_control() != FlowControl::Next {
            return;
        }
        let mut written = implicit_writes(ins);
        if ins.op_count() > 0 && ins.op0_kind() == OpKind::Register {
            written.push(ins.op0_register());
        }
        for r in written {
            self.write_reg(r, fresh(ins, r), ins);
        }
    }
}

fn writes_memory(ins: &Instruction) -> bool {
    (ins.op_count() > 0
        && ins.op0_kind() == OpKind::Memory
        && !matches!(ins.mnemonic(), Mnemonic::Cmp | Mnemonic::Test))
        || matches!(
            ins.mnemonic(),
            Mnemonic::Push
                | Mnemonic::Call
                | Mnemonic::Stosb
                | Mnemonic::Stosd
                | Mnemonic::Movsb
                | Mnemonic::Movsd
        )
}

/// Registers written without being operand 0 (the ones gcc code around a switch uses).
fn implicit_writes(ins: &Instruction) -> Vec<Register> {
    match ins.mnemonic() {
        Mnemonic::Cdq | Mnemonic::Mul | Mnemonic::Div | Mnemonic::Idiv => {
            vec![Register::EAX, Register::EDX]
        }
        Mnemonic::Imul if ins.op_count() == 1 => vec![Register::EAX, Register::EDX],
        Mnemonic::Leave => vec![Register::ESP, Register::EBP],
        Mnemonic::Xchg if ins.op1_kind() == OpKind::Register => {
            vec![ins.op1_register().full_register32()]
        }
        _ => vec![],
    }
}

/// A new unknown value defined by `ins` (in register `r`).
fn fresh(ins: &Instruction, r: Register) -> Value {
    Value::Lin(Linear {
        source: Source::Def(ins.ip32(), r.full_register32()),
        scale: 1,
        offset: 0,
    })
}

fn add(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Const(x), Value::Const(y)) => Value::Const(x.wrapping_add(y)),
        (Value::Lin(l), Value::Const(c)) | (Value::Const(c), Value::Lin(l)) => Value::Lin(Linear {
            offset: l.offset.wrapping_add(c),
            ..l
        }),
        _ => Value::Unknown,
    }
}

fn mul(v: Value, k: u32) -> Value {
    match v {
        Value::Const(x) => Value::Const(x.wrapping_mul(k)),
        Value::Lin(l) => Value::Lin(Linear {
            scale: l.scale.wrapping_mul(k),
            offset: l.offset.wrapping_mul(k),
            ..l
        }),
        _ => Value::Unknown,
    }
}

/// The instructions that lead to `jump`, in address order: the linear chain of
/// decoded instructions that fall through to it.
fn window(insns: &BTreeMap<u32, Instruction>, jump: &Instruction) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut at = jump.ip32();
    while out.len() < WINDOW {
        let Some((_, prev)) = insns.range(..at).next_back() else {
            break;
        };
        let falls_through = matches!(
            prev.flow_control(),
            FlowControl::Next | FlowControl::ConditionalBranch
        );
        if prev.next_ip32() != at || !falls_through {
            break;
        }
        out.push(*prev);
        at = prev.ip32();
    }
    out.reverse();
    out
}

/// Resolves the indirect jump `jump` into a jump table, when it is a gcc switch.
pub fn resolve(
    binary: &Binary,
    insns: &BTreeMap<u32, Instruction>,
    jump: &Instruction,
) -> Option<JumpTable> {
    let mut state = State {
        regs: BTreeMap::new(),
        narrow: BTreeMap::new(),
        epoch: 0,
        last_cmp: None,
        bounds: Vec::new(),
    };
    for ins in window(insns, jump) {
        state.step(&ins);
    }
    let target = match jump.op0_kind() {
        OpKind::Register => state.reg(jump.op0_register()),
        OpKind::Memory => state.load(jump),
        _ => return None,
    };
    let Value::Entry {
        index,
        table,
        got_reg,
        relative,
    } = target
    else {
        return None;
    };
    let relative_to = match (got_reg, relative) {
        (None, _) => None,
        (Some(_), true) => Some(binary.got?),
        (Some(_), false) => return None,
    };
    // A bound on `v = index + o` numbers the cases by v: case i reads entry `i - o`.
    let (checked, bound) = state
        .bounds
        .iter()
        .rev()
        .find(|(v, _)| v.source == index && v.scale == 1)
        .copied()
        .filter(|&(_, b)| b < MAX_ENTRIES)?;
    let table = table
        .wrapping_add(relative_to.unwrap_or(0))
        .wrapping_sub(checked.offset.wrapping_mul(4));
    let mut targets = Vec::with_capacity(bound as usize + 1);
    for i in 0..=bound {
        let entry = binary.read_u32(table.wrapping_add(4 * i))?;
        let t = entry.wrapping_add(relative_to.unwrap_or(0));
        if !binary.is_executable(t) {
            return None;
        }
        targets.push(t);
    }
    Some(JumpTable {
        jump: jump.ip32(),
        table,
        relative_to,
        targets,
    })
}
