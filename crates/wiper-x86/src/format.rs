//! Printing instructions and control-flow graphs: listings and Graphviz.
//!
//! Intel syntax follows GNU objdump's `-M intel` conventions (`DWORD PTR`, `0x` hex,
//! mnemonic padded to seven columns, branch targets annotated `<symbol+offset>`,
//! x87 operands as objdump writes them, the operands iced leaves implicit that
//! objdump shows: `imul eax,eax,0x1c`, `rep stosd DWORD PTR [edi],eax`, `repz`),
//! so a listing reads like the tool users already know; `Syntax::Gas` gives AT&T.
//! Two deliberate departures: an absolute memory operand is always in brackets
//! with its size (`DWORD PTR gs:[0x14]`, `DWORD PTR [0x804c010]` where objdump
//! writes `gs:0x14` and `ds:0x804c010`), so that it cannot be read as an
//! immediate; and string instructions keep iced's sized mnemonics without the
//! default segments (`stosd DWORD PTR [edi]` for objdump's `stos DWORD PTR es:[edi]`).

use std::fmt::Write as _;

use iced_x86::{
    Code, Formatter, GasFormatter, Instruction, IntelFormatter, Mnemonic, OpCodeOperandKind,
    OpKind, Register,
};
use wiper_elf::Binary;

use crate::{Block, CallTarget, Function, Successor};

/// Assembly syntax of listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Syntax {
    /// Intel syntax as GNU objdump prints it with `-M intel`.
    #[default]
    Intel,
    /// AT&T syntax as GNU as and objdump print it by default.
    Gas,
}

/// Output format of a CFG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One block after another, with successors.
    #[default]
    Text,
    /// Graphviz `digraph`.
    Dot,
}

/// An iced formatter set up the way wiper prints instructions: Intel syntax as
/// `objdump -M intel` does (`DWORD PTR`, `0x` hex, mnemonic padded to seven
/// columns, scale always shown), or AT&T. Every stage that prints instructions uses it.
pub fn formatter(syntax: Syntax) -> Box<dyn Formatter> {
    let mut formatter: Box<dyn Formatter> = match syntax {
        Syntax::Intel => Box::new(IntelFormatter::new()),
        Syntax::Gas => Box::new(GasFormatter::new()),
    };
    let o = formatter.options_mut();
    o.set_hex_prefix("0x");
    o.set_hex_suffix("");
    o.set_uppercase_hex(false);
    o.set_small_hex_numbers_in_decimal(false);
    o.set_branch_leading_zeros(false);
    o.set_show_branch_size(false);
    o.set_first_operand_char_index(7);
    if syntax == Syntax::Intel {
        // Scale always shown, as objdump does. (In AT&T syntax iced would
        // then print `0xc(%esp,)` for a base without index, which GNU as
        // refuses.)
        o.set_always_show_scale(true);
        o.set_uppercase_keywords(true);
        o.set_space_after_operand_separator(false);
        o.set_memory_size_options(iced_x86::MemorySizeOptions::Always);
    } else {
        o.set_space_after_operand_separator(true);
    }
    formatter
}

/// Formats whole instructions as wiper prints them: [`formatter`], plus (in Intel
/// syntax) objdump's forms where iced's differ (see the module doc).
pub struct TextFormatter {
    syntax: Syntax,
    inner: Box<dyn Formatter>,
}

impl TextFormatter {
    /// A formatter for `syntax`.
    pub fn new(syntax: Syntax) -> Self {
        TextFormatter {
            syntax,
            inner: formatter(syntax),
        }
    }

    /// The underlying iced formatter, for single operands and mnemonics.
    pub fn inner(&mut self) -> &mut dyn Formatter {
        &mut *self.inner
    }

    /// Appends `ins` as text to `out`.
    pub fn format(&mut self, ins: &Instruction, out: &mut String) {
        if self.syntax == Syntax::Gas {
            out.push_str(&gas_pseudo_prefixes(ins));
            self.inner.format(ins, out);
            return;
        }
        let mnemonic = self.mnemonic(ins);
        let Some(operands) = objdump_operands(&mut *self.inner, ins) else {
            let mut text = String::new();
            self.inner.format(ins, &mut text);
            let mut iced_mnemonic = String::new();
            self.inner.format_mnemonic(ins, &mut iced_mnemonic);
            out.push_str(&mnemonic);
            out.push_str(text.strip_prefix(iced_mnemonic.as_str()).unwrap_or(&text));
            return;
        };
        out.push_str(&mnemonic);
        if !operands.is_empty() {
            // Operands start at column 7, or one space after a longer mnemonic.
            let pad = 7usize.saturating_sub(mnemonic.len()).max(1);
            out.push_str(&" ".repeat(pad));
            out.push_str(&operands.join(","));
        }
    }

    /// The mnemonic with its prefixes (`rep stosd`; `repz cmpsb` in Intel syntax,
    /// as objdump writes `repe`, and `repnz` for `repne`).
    pub fn mnemonic(&mut self, ins: &Instruction) -> String {
        let mut text = String::new();
        self.inner.format_mnemonic(ins, &mut text);
        if self.syntax == Syntax::Intel {
            for (iced, objdump) in [("repe ", "repz "), ("repne ", "repnz ")] {
                if let Some(rest) = text.strip_prefix(iced) {
                    text = format!("{objdump}{rest}");
                }
            }
        }
        text
    }
}

/// GNU as's pseudo-prefixes that make it choose the encoding `ins` has where
/// its own choice differs: `{load}` for the register-to-register form of
/// `mov`, `add`, ... whose destination is the ModRM `reg` field (as picks
/// the other opcode), `{disp8}`/`{disp32}` for a displacement longer than it
/// needs (`lea 0x0(%esi),%esi`, gcc's padding). Empty for most instructions.
fn gas_pseudo_prefixes(ins: &Instruction) -> String {
    let mut text = String::new();
    let alu = matches!(
        ins.mnemonic(),
        Mnemonic::Mov
            | Mnemonic::Add
            | Mnemonic::Or
            | Mnemonic::Adc
            | Mnemonic::Sbb
            | Mnemonic::And
            | Mnemonic::Sub
            | Mnemonic::Xor
            | Mnemonic::Cmp
    );
    let kinds = ins.op_code().op_kinds();
    if alu
        && ins.op_count() == 2
        && ins.op0_kind() == OpKind::Register
        && ins.op1_kind() == OpKind::Register
        && matches!(
            kinds.get(1),
            Some(
                OpCodeOperandKind::r8_or_mem
                    | OpCodeOperandKind::r16_or_mem
                    | OpCodeOperandKind::r32_or_mem
            )
        )
    {
        text.push_str("{load} ");
    }
    let memory = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
    if memory && ins.memory_base() != Register::None {
        let displacement = ins.memory_displacement32() as i32;
        let needed = if displacement == 0 && ins.memory_base() != Register::EBP {
            0
        } else if i8::try_from(displacement).is_ok() {
            1
        } else {
            4
        };
        match ins.memory_displ_size() {
            1 if needed < 1 => text.push_str("{disp8} "),
            4 if needed < 4 => text.push_str("{disp32} "),
            _ => {}
        }
    }
    text
}

/// The operands objdump prints for `ins` where they differ from iced's Intel
/// formatter, or `None` where iced's are objdump's.
fn objdump_operands(f: &mut dyn Formatter, ins: &Instruction) -> Option<Vec<String>> {
    let kinds = ins.op_code().op_kinds();
    let register_x87 = kinds
        .iter()
        .any(|k| matches!(k, OpCodeOperandKind::st0 | OpCodeOperandKind::sti_opcode));
    if register_x87 || shows_implicit_st(f, ins) {
        return Some(x87_operands(f, ins));
    }
    // Registers iced leaves implicit and objdump shows: where they go among
    // the shown operands, and which instruction operand they are.
    let hidden = match ins.mnemonic() {
        Mnemonic::Imul if ins.op_count() == 3 => Some((1, 1)),
        Mnemonic::Stosb | Mnemonic::Stosw | Mnemonic::Stosd => Some((1, 1)),
        Mnemonic::Lodsb | Mnemonic::Lodsw | Mnemonic::Lodsd => Some((0, 0)),
        Mnemonic::Scasb | Mnemonic::Scasw | Mnemonic::Scasd => Some((0, 0)),
        _ => None,
    };
    if let Some((at, op)) = hidden.filter(|_| f.operand_count(ins) < ins.op_count()) {
        let mut operands: Vec<String> = (0..f.operand_count(ins))
            .map(|i| formatted_operand(f, ins, i))
            .collect();
        let register = f.format_register(ins.op_register(op)).to_string();
        operands.insert(at.min(operands.len()), register);
        return Some(operands);
    }
    // `mov gs,eax`: the register form moves the low 16 bits of a 32-bit register.
    if ins.code() == Code::Mov_Sreg_r32m16 && ins.op1_kind() == OpKind::Register {
        let sreg = f.format_register(ins.op0_register()).to_string();
        let reg = f
            .format_register(ins.op1_register().full_register32())
            .to_string();
        return Some(vec![sreg, reg]);
    }
    None
}

fn formatted_operand(f: &mut dyn Formatter, ins: &Instruction, op: u32) -> String {
    let mut text = String::new();
    let _ = f.format_operand(ins, &mut text, op);
    text
}

/// Whether iced shows an `st` operand that is not an operand of the instruction
/// (`fld st,DWORD PTR [eax]`; objdump writes `fld DWORD PTR [eax]`).
fn shows_implicit_st(f: &mut dyn Formatter, ins: &Instruction) -> bool {
    (0..f.operand_count(ins)).any(|op| {
        matches!(f.get_instruction_operand(ins, op), Ok(None))
            && formatted_operand(f, ins, op) == "st"
    })
}

/// x87 operands as objdump prints them: the instruction's own operands only,
/// the fixed top of stack as `st` and a stack register chosen by the encoding
/// as `st(i)` (`fstp st(0)`, `fmulp st(1),st`, `fadd st,st(2)`); `fxch`, `fcom`,
/// `fcomp`, `fucom` and `fucomp` show only `st(i)`.
fn x87_operands(f: &mut dyn Formatter, ins: &Instruction) -> Vec<String> {
    let kinds = ins.op_code().op_kinds();
    let mut operands: Vec<(OpCodeOperandKind, String)> = (0..ins.op_count())
        .map(|i| {
            let kind = kinds
                .get(i as usize)
                .copied()
                .unwrap_or(OpCodeOperandKind::None);
            let text = match kind {
                OpCodeOperandKind::st0 => "st".to_string(),
                OpCodeOperandKind::sti_opcode => {
                    let n = ins.op_register(i).number() - Register::ST0.number();
                    format!("st({n})")
                }
                _ => match f.get_formatter_operand(ins, i) {
                    Ok(Some(op)) => formatted_operand(f, ins, op),
                    _ => f.format_register(ins.op_register(i)).to_string(),
                },
            };
            (kind, text)
        })
        .collect();
    let one_operand = matches!(
        ins.mnemonic(),
        Mnemonic::Fxch | Mnemonic::Fcom | Mnemonic::Fcomp | Mnemonic::Fucom | Mnemonic::Fucomp
    );
    if one_operand && operands.len() == 2 {
        operands.retain(|(k, _)| *k != OpCodeOperandKind::st0);
    }
    operands.into_iter().map(|(_, t)| t).collect()
}

/// Formats single instructions in one syntax, annotating branch targets with symbols.
pub struct InstructionPrinter<'a> {
    binary: &'a Binary,
    formatter: TextFormatter,
}

impl<'a> InstructionPrinter<'a> {
    /// A printer for instructions of `binary`.
    pub fn new(binary: &'a Binary, syntax: Syntax) -> Self {
        InstructionPrinter {
            binary,
            formatter: TextFormatter::new(syntax),
        }
    }

    /// The instruction as text, with `<symbol+offset>` after a direct branch target.
    pub fn format(&mut self, ins: &Instruction) -> String {
        let mut text = String::new();
        self.formatter.format(ins, &mut text);
        if matches!(ins.op0_kind(), OpKind::NearBranch32 | OpKind::NearBranch16) {
            if let Some(sym) = symbolize(self.binary, ins.near_branch32()) {
                let _ = write!(text, " <{sym}>");
            }
        }
        text
    }
}

/// An address as the JSON outputs of `wiper` write it (as a string, so that
/// no reader loses bits): `0x` and lowercase hex digits without padding,
/// `0x8049000`. The one home of that rendering.
pub fn hex_address(addr: u32) -> String {
    format!("{addr:#x}")
}

/// Code bytes as listings show them: two hex digits each, separated by
/// spaces (`8b 54 24 04`).
pub fn bytes_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `name` or `name+0xoff` for an address inside a known function or PLT stub.
pub fn symbolize(binary: &Binary, addr: u32) -> Option<String> {
    if let Some(name) = binary.name_of(addr) {
        return Some(name);
    }
    let sym = binary.function_containing(addr)?;
    Some(format!("{}+{:#x}", sym.name, addr - sym.addr))
}

fn target_text(binary: &Binary, target: &CallTarget) -> String {
    match target {
        CallTarget::Function(a) => match symbolize(binary, *a) {
            Some(s) => format!("{a:#010x} <{s}>"),
            None => format!("{a:#010x}"),
        },
        CallTarget::Import { addr, name } => format!("{addr:#010x} <{name}@plt>"),
        CallTarget::Indirect => "indirect".to_string(),
        CallTarget::Absent => "0x00000000 (absent)".to_string(),
    }
}

/// One successor as text: `taken 0x08049a2b`, `call 0x08049b00 <gcd>`, `return`.
pub fn successor_text(binary: &Binary, s: &Successor) -> String {
    match s {
        Successor::FallThrough(a) => format!("fall-through {a:#010x}"),
        Successor::Jump(a) => format!("jump {a:#010x}"),
        Successor::Taken(a) => format!("taken {a:#010x}"),
        Successor::NotTaken(a) => format!("not-taken {a:#010x}"),
        Successor::Case { index, target } => format!("case {index} {target:#010x}"),
        Successor::Call(t) => format!("call {}", target_text(binary, t)),
        Successor::TailCall(t) => format!("tail-call {}", target_text(binary, t)),
        Successor::Return => "return".to_string(),
        Successor::IndirectJump => "indirect-jump".to_string(),
        Successor::Halt => "halt".to_string(),
    }
}

fn header(f: &Function) -> String {
    // Bytes covered, counting those of nested instructions once.
    let mut bytes = 0;
    let mut covered_to = 0;
    for ins in f.instructions() {
        bytes += ins.next_ip32().saturating_sub(covered_to.max(ins.ip32()));
        covered_to = covered_to.max(ins.next_ip32());
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "function {} at {:#010x}: {}, {}, {}",
        f.name.as_deref().unwrap_or("?"),
        f.entry,
        plural(f.blocks.len(), "block"),
        plural(f.instruction_count(), "instruction"),
        plural(bytes as usize, "byte")
    )
}

/// The bytes of the instruction `ins` of `binary` (empty if they cannot be
/// read).
pub fn instruction_bytes(binary: &Binary, ins: &Instruction) -> Vec<u8> {
    binary
        .read(ins.ip32(), ins.len() as u32)
        .unwrap_or_default()
}

fn instruction_lines(
    binary: &Binary,
    printer: &mut InstructionPrinter<'_>,
    block: &Block,
    bytes_width: usize,
) -> Vec<String> {
    block
        .instructions
        .iter()
        .map(|ins| {
            let bytes = bytes_text(&instruction_bytes(binary, ins));
            format!(
                "{:08x}  {bytes:<bytes_width$}  {}",
                ins.ip32(),
                printer.format(ins)
            )
        })
        .collect()
}

/// The CFG as a text listing: per block its instructions (address, bytes, text) and
/// its successors.
pub fn listing(binary: &Binary, f: &Function, syntax: Syntax) -> String {
    let mut printer = InstructionPrinter::new(binary, syntax);
    let widest = f.instructions().map(|i| i.len()).max().unwrap_or(1);
    let bytes_width = widest * 3 - 1;
    let mut out = header(f);
    out.push('\n');
    for block in f.blocks.values() {
        let _ = writeln!(out, "\nblock {:#010x}:", block.start);
        for line in instruction_lines(binary, &mut printer, block, bytes_width) {
            let _ = writeln!(out, "  {line}");
        }
        if let Some(t) = &block.jump_table {
            let _ = writeln!(
                out,
                "  jump table at {:#010x}: {} entries{}",
                t.table,
                t.targets.len(),
                t.relative_to
                    .map(|g| format!(", relative to {g:#010x}"))
                    .unwrap_or_default()
            );
        }
        let succs: Vec<String> = block
            .successors
            .iter()
            .map(|s| successor_text(binary, s))
            .collect();
        let _ = writeln!(out, "  -> {}", succs.join(", "));
    }
    out
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The CFG as a Graphviz digraph: one box per block, labelled edges; calls, tail
/// calls and returns point to ellipses.
pub fn dot(binary: &Binary, f: &Function, syntax: Syntax) -> String {
    let mut printer = InstructionPrinter::new(binary, syntax);
    let name = f
        .name
        .clone()
        .unwrap_or_else(|| format!("{:#010x}", f.entry));
    let mut out = format!(
        "digraph \"{}\" {{\n  label=\"{}\";\n  node [shape=box fontname=\"monospace\"];\n",
        dot_escape(&name),
        dot_escape(&header(f))
    );
    for block in f.blocks.values() {
        let mut label = format!("{:#010x}:\\l", block.start);
        for ins in &block.instructions {
            let _ = write!(
                label,
                "{:08x}  {}\\l",
                ins.ip32(),
                dot_escape(&printer.format(ins))
            );
        }
        let _ = writeln!(out, "  \"b{:08x}\" [label=\"{label}\"];", block.start);
    }
    let mut externals = std::collections::BTreeSet::new();
    for block in f.blocks.values() {
        for s in &block.successors {
            let from = format!("b{:08x}", block.start);
            let (to, label, style) = match s {
                Successor::FallThrough(a) => (format!("b{a:08x}"), "fall-through".into(), ""),
                Successor::Jump(a) => (format!("b{a:08x}"), "jump".into(), ""),
                Successor::Taken(a) => (format!("b{a:08x}"), "taken".into(), ""),
                Successor::NotTaken(a) => (format!("b{a:08x}"), "not-taken".into(), ""),
                Successor::Case { index, target } => {
                    (format!("b{target:08x}"), format!("case {index}"), "")
                }
                Successor::Call(t) | Successor::TailCall(t) => {
                    let text = target_text(binary, t);
                    externals.insert(text.clone());
                    let kind = if matches!(s, Successor::Call(_)) {
                        "call"
                    } else {
                        "tail-call"
                    };
                    (text, kind.to_string(), " style=dashed")
                }
                Successor::Return | Successor::IndirectJump | Successor::Halt => {
                    let text = successor_text(binary, s);
                    externals.insert(text.clone());
                    (text, String::new(), "")
                }
            };
            let _ = writeln!(
                out,
                "  \"{from}\" -> \"{}\" [label=\"{label}\"{style}];",
                dot_escape(&to)
            );
        }
    }
    for e in externals {
        let _ = writeln!(out, "  \"{}\" [shape=ellipse];", dot_escape(&e));
    }
    out.push_str("}\n");
    out
}
