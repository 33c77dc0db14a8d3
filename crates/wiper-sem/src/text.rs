//! Texts of parts: IA-32 instructions in Intel syntax as GNU objdump prints
//! them (`mov    DWORD PTR [esp],ebp`), and pseudo-instructions in the same
//! layout.

use std::cell::RefCell;

use iced_x86::{Instruction, Register};
use wiper_x86::format::TextFormatter;

thread_local! {
    /// wiper's Intel-syntax formatter (`wiper_x86::format::TextFormatter`), as objdump prints.
    static FORMATTER: RefCell<TextFormatter> =
        RefCell::new(TextFormatter::new(wiper_x86::Syntax::Intel));
}

/// The whole instruction.
pub(crate) fn instruction(ins: &Instruction) -> String {
    FORMATTER.with(|f| {
        let mut s = String::new();
        f.borrow_mut().format(ins, &mut s);
        s
    })
}

/// Instruction operand `op` of `ins` (e.g. `DWORD PTR [esp+0x4]`).
pub(crate) fn operand(ins: &Instruction, op: u32) -> String {
    FORMATTER.with(|f| {
        let mut f = f.borrow_mut();
        let f = f.inner();
        let mut s = String::new();
        let fop = f
            .get_formatter_operand(ins, op)
            .ok()
            .flatten()
            .unwrap_or(op);
        let _ = f.format_operand(ins, &mut s, fop);
        s
    })
}

/// The mnemonic of `ins` with its prefixes (`rep stos`, `repz cmps`).
pub(crate) fn mnemonic(ins: &Instruction) -> String {
    FORMATTER.with(|f| f.borrow_mut().mnemonic(ins))
}

/// A register's name (`eax`, `al`, `ah`).
pub(crate) fn register(r: Register) -> String {
    format!("{r:?}").to_lowercase()
}

/// A pseudo-instruction laid out like objdump's output: the mnemonic padded
/// to seven columns, then comma-separated operands.
pub(crate) fn pseudo(mnemonic: &str, operands: &[&str]) -> String {
    if operands.is_empty() {
        mnemonic.to_owned()
    } else {
        format!("{mnemonic:<6} {}", operands.join(","))
    }
}
