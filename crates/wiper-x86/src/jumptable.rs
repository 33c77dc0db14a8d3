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

use crate::locate::pc_thunk_register;

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
    /// The address each entry is relative to (the GOT for PIC tables); `None` when
    /// entries are absolute addresses.
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
    /// A value the domain does not model (what `movsx eax, al` wrote, or what an
    /// operand read): unknown, but a value to bound. Named by the instruction's
    /// address and what it defines.
    Def(u32, Defined),
}

/// What an unmodelled instruction defines: a register it writes, or operand `i` it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defined {
    Reg(Register),
    Operand(u32),
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
    /// The 32-bit word at `table + 4 * index` (the table address relative to `got`,
    /// when set), plus `plus`.
    Entry {
        index: Source,
        table: u32,
        /// The value PIC code holds the GOT address in, when the table address was
        /// formed from it: `got + table + 4 * index`.
        got: Option<Linear>,
        plus: Plus,
        /// The same value seen as a plain unknown, for any use other than a table
        /// target (a VM's opcode fetch `mov eax, [edi+ebx]` looks like a PIC entry).
        plain: Linear,
    },
}

/// What was added to a loaded table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plus {
    Nothing,
    Const(u32),
    /// The GOT value the table address was formed from (PIC entries are GOT-relative).
    Got,
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
    /// Calls in the window to `__x86.get_pc_thunk.*`: call address -> register set.
    thunks: BTreeMap<u32, Register>,
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

    fn operand(&self, ins: &Instruction, i: u32) -> Value {
        match ins.op_kind(i) {
            OpKind::Register if ins.op_register(i).size() == 4 => self.reg(ins.op_register(i)),
            OpKind::Register => self.narrow_reg(ins.op_register(i)),
            OpKind::Immediate32 | OpKind::Immediate8to32 | OpKind::Immediate8 => {
                Value::Const(ins.immediate(i) as u32)
            }
            OpKind::Memory if ins.memory_size().size() == 4 => self.load(ins),
            _ => operand_value(ins, i),
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

    /// Value loaded by the memory operand: a table entry when the address is
    /// `4 * index + constant`, or `4 * index + g + constant` with `g` a second unknown
    /// (PIC code's GOT register); a stack slot when it is `reg + constant`.
    fn load(&self, ins: &Instruction) -> Value {
        let address = self.address(ins);
        if let Value::Lin(l) = address {
            if l.scale == 4 {
                return Value::Entry {
                    index: l.source,
                    table: l.offset,
                    got: None,
                    plus: Plus::Nothing,
                    plain: unknown_linear(ins, Defined::Operand(u32::MAX)),
                };
            }
            if let (Source::Reg(r), 1) = (l.source, l.scale) {
                return Value::Lin(Linear {
                    source: Source::Slot(r, l.offset, self.epoch),
                    scale: 1,
                    offset: 0,
                });
            }
        }
        let two_registers =
            ins.memory_base() != Register::None && ins.memory_index() != Register::None;
        if address == Value::Unknown && two_registers {
            let base = self.reg(ins.memory_base());
            let index = mul(self.reg(ins.memory_index()), ins.memory_index_scale());
            let (Value::Lin(a), Value::Lin(b)) = (base, index) else {
                return operand_value(ins, u32::MAX);
            };
            let (idx, got) = match (a.scale, b.scale) {
                (4, 1) => (a, b),
                (1, 4) => (b, a),
                _ => return operand_value(ins, u32::MAX),
            };
            return Value::Entry {
                index: idx.source,
                table: idx.offset.wrapping_add(ins.memory_displacement32()),
                got: Some(got),
                plus: Plus::Nothing,
                plain: unknown_linear(ins, Defined::Operand(u32::MAX)),
            };
        }
        operand_value(ins, u32::MAX)
    }

    fn step(&mut self, ins: &Instruction) {
        // A conditional jump tests the flags of the last instruction that wrote them.
        if ins.mnemonic() != Mnemonic::Cmp && ins.rflags_modified() != 0 {
            self.last_cmp = None;
        }
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
                    _ => fresh(ins, ins.op0_register()),
                })
            }
            (Mnemonic::Add, Some(r)) => Some(match (self.reg(r), self.operand(ins, 1)) {
                (entry @ Value::Entry { .. }, added) => {
                    add_to_entry(entry, added, unknown_linear(ins, Defined::Reg(r)))
                        .unwrap_or_else(|| fresh(ins, r))
                }
                (a, b) => add(a, b),
            }),
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
            // `call __x86.get_pc_thunk.reg` puts the return address in reg.
            (Mnemonic::Call, _) => {
                if let Some(r) = self.thunks.get(&ins.ip32()) {
                    self.write_reg(*r, Value::Const(ins.next_ip32()), ins);
                }
                None
            }
            (Mnemonic::Cmp, _) => {
                if let Value::Const(n) = self.operand(ins, 1) {
                    self.last_cmp = Some((plain(self.operand(ins, 0)), n));
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

/// A loaded table entry plus `added`: a constant (absolute tables), or the GOT
/// value its table address was formed from (PIC tables).
fn add_to_entry(entry: Value, added: Value, sum: Linear) -> Option<Value> {
    let Value::Entry {
        index,
        table,
        got,
        plus: Plus::Nothing,
        ..
    } = entry
    else {
        return None;
    };
    let plus = match (got, added) {
        (None, Value::Const(c)) => Plus::Const(c),
        (Some(g), Value::Lin(l)) if g == l => Plus::Got,
        _ => return None,
    };
    Some(Value::Entry {
        index,
        table,
        got,
        plus,
        plain: sum,
    })
}

/// A new unknown value: what `ins` wrote into register `r`.
fn fresh(ins: &Instruction, r: Register) -> Value {
    unknown(ins, Defined::Reg(r))
}

/// A new unknown value: what `ins` read through operand `i` (`u32::MAX`: its memory operand).
fn operand_value(ins: &Instruction, i: u32) -> Value {
    unknown(ins, Defined::Operand(i))
}

fn unknown(ins: &Instruction, what: Defined) -> Value {
    Value::Lin(unknown_linear(ins, what))
}

fn unknown_linear(ins: &Instruction, what: Defined) -> Linear {
    Linear {
        source: Source::Def(ins.ip32(), what),
        scale: 1,
        offset: 0,
    }
}

/// A table entry used as an ordinary number.
fn plain(v: Value) -> Value {
    match v {
        Value::Entry { plain, .. } => Value::Lin(plain),
        other => other,
    }
}

fn add(a: Value, b: Value) -> Value {
    match (plain(a), plain(b)) {
        (Value::Const(x), Value::Const(y)) => Value::Const(x.wrapping_add(y)),
        (Value::Lin(l), Value::Const(c)) | (Value::Const(c), Value::Lin(l)) => Value::Lin(Linear {
            offset: l.offset.wrapping_add(c),
            ..l
        }),
        _ => Value::Unknown,
    }
}

fn mul(v: Value, k: u32) -> Value {
    match plain(v) {
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
/// decoded instructions that fall through to it (calls to pc thunks included).
fn window(
    binary: &Binary,
    insns: &BTreeMap<u32, Instruction>,
    jump: &Instruction,
) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut at = jump.ip32();
    while out.len() < WINDOW {
        let Some((_, prev)) = insns.range(..at).next_back() else {
            break;
        };
        let falls_through = match prev.flow_control() {
            FlowControl::Next | FlowControl::ConditionalBranch => true,
            FlowControl::Call => pc_thunk_register(binary, prev.near_branch32()).is_some(),
            _ => false,
        };
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
    let window = window(binary, insns, jump);
    let thunks = window
        .iter()
        .filter(|i| i.flow_control() == FlowControl::Call)
        .filter_map(|i| Some((i.ip32(), pc_thunk_register(binary, i.near_branch32())?)))
        .collect();
    let mut state = State {
        regs: BTreeMap::new(),
        narrow: BTreeMap::new(),
        epoch: 0,
        last_cmp: None,
        bounds: Vec::new(),
        thunks,
    };
    for ins in &window {
        state.step(ins);
    }
    let target = match jump.op0_kind() {
        OpKind::Register => state.reg(jump.op0_register()),
        OpKind::Memory => state.load(jump),
        _ => return None,
    };
    let Value::Entry {
        index,
        table,
        got,
        plus,
        ..
    } = target
    else {
        return None;
    };
    // PIC code holds the GOT address (`_GLOBAL_OFFSET_TABLE_`) in its base register.
    let (table, added, relative_to) = match (got, plus) {
        (None, Plus::Nothing) => (table, 0, None),
        (None, Plus::Const(c)) => (table, c, Some(c)),
        (Some(_), Plus::Got) => {
            let g = binary.got?;
            (table.wrapping_add(g), g, Some(g))
        }
        _ => return None,
    };
    // A bound on `v = index + o` numbers the cases by v: case i reads entry `i - o`.
    let (checked, bound) = state
        .bounds
        .iter()
        .rev()
        .find(|(v, _)| v.source == index && v.scale == 1)
        .copied()
        .filter(|&(_, b)| b < MAX_ENTRIES)?;
    let table = table.wrapping_sub(checked.offset.wrapping_mul(4));
    let mut targets = Vec::with_capacity(bound as usize + 1);
    for i in 0..=bound {
        let t = binary
            .read_u32(table.wrapping_add(4 * i))?
            .wrapping_add(added);
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
