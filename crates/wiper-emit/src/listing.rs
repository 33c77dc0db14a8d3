//! The encoded residual as an `objdump -d -M intel`-like listing.

use std::collections::HashMap;
use std::fmt::Write as _;

use iced_x86::OpKind;
use wiper_elf::Binary;
use wiper_residual::Origin;
use wiper_x86::format::{bytes_text, InstructionPrinter, Syntax};

use crate::Encoded;

/// The encoded code, one instruction per line: address, bytes, Intel syntax as
/// `wiper disasm` prints it, and a comment with the instruction's origin (`;
/// from 0x8049abc`, `; reduced from 0x...`, `; materialized for 0x...`, `;
/// fallback 0x...`, `; glue 0x...`, `; pc thunk eax`, `; trap`). A block
/// that is entered other than by falling through starts with an `L3:` line. Branch targets are named: original addresses
/// with the binary's symbols (`call 0x8049010 <print_int>`), residual blocks
/// with their labels (`jne 0x804c012 <L2>`), thunks as `<pc_thunk.eax>`. In a
/// PIE, the `lea` after a thunk call also shows the link-time address it
/// loads (`; materialized for 0x1290, address 0x4018 <calls>`).
pub fn listing(binary: &Binary, encoded: &Encoded) -> String {
    listing_in(binary, encoded, Syntax::Intel)
}

/// [`listing`] in `syntax`: with [`Syntax::Gas`], instructions in AT&T
/// syntax and comments after `#` (GNU as reads `;` as a statement separator).
pub fn listing_in(binary: &Binary, encoded: &Encoded, syntax: Syntax) -> String {
    let c = match syntax {
        Syntax::Intel => ';',
        Syntax::Gas => '#',
    };
    let items = listing_items(binary, encoded, syntax);
    let widest = items.iter().map(|i| i.bytes.len()).max().unwrap_or(1);
    let bytes_width = widest * 3 - 1;
    let mut out = format!(
        "{c} {} residual instructions, {} bytes at {:#010x}, entry {:#010x}\n",
        encoded.instruction_count,
        encoded.code_size(),
        encoded.code_vaddr,
        encoded.entry_vaddr
    );
    for item in &items {
        for label in &item.labels {
            let _ = writeln!(out, "{label}:");
        }
        let _ = writeln!(
            out,
            "  {:08x}  {:<bytes_width$}  {:<40} {c} {}",
            item.address,
            bytes_text(&item.bytes),
            item.text,
            item.annotation
        );
    }
    out
}

/// One instruction of the residual listing, as fields: what a line of
/// [`listing_in`] shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingItem {
    /// Its address.
    pub address: u32,
    /// Its code bytes.
    pub bytes: Vec<u8>,
    /// The instruction in the listing's syntax, branch targets named
    /// (`jne 0x804c012 <L2>`).
    pub text: String,
    /// The label lines before it (`pc_thunk.eax`, `L3`), without the colon.
    pub labels: Vec<String>,
    /// Where it came from; `None` for a PC thunk and for a trap.
    pub origin: Option<Origin>,
    /// The comment: the origin (`reduced from 0x80490b3`), `pc thunk eax`
    /// or `trap: ...`, and the address a PIE's `lea` after a thunk call
    /// loads.
    pub annotation: String,
}

/// The instructions of [`listing_in`], each with its address, bytes, text,
/// labels and annotation.
pub fn listing_items(binary: &Binary, encoded: &Encoded, syntax: Syntax) -> Vec<ListingItem> {
    let mut printer = InstructionPrinter::new(binary, syntax);
    let mut names: HashMap<u32, String> = HashMap::new();
    for &(reg, addr) in &encoded.thunks {
        names.insert(addr, thunk_name(reg));
    }
    for (label, addr) in &encoded.labels {
        names.entry(*addr).or_insert_with(|| label.to_string());
    }
    let mut thunk_of: HashMap<u32, String> = HashMap::new();
    for &(reg, addr) in &encoded.thunks {
        thunk_of.insert(addr, format!("{reg:?}").to_lowercase());
    }
    let targets: std::collections::HashSet<u32> = encoded
        .lines
        .iter()
        .filter(|l| matches!(l.instruction.op0_kind(), OpKind::NearBranch32))
        .map(|l| l.instruction.near_branch32())
        .collect();
    let mut in_thunk = String::new();
    let mut after_thunk_call: Option<(iced_x86::Register, u32)> = None;
    let mut items = Vec::with_capacity(encoded.lines.len());
    for line in &encoded.lines {
        let mut labels = Vec::new();
        if let Some(reg) = thunk_of.get(&line.address) {
            labels.push(thunk_name_str(reg));
            in_thunk = reg.clone();
        }
        // One label line where control arrives other than by falling
        // through (the entry, a branch target); blocks merged into their
        // predecessor by fall-through are not shown.
        let label = line.block.as_ref().or(line.empty_blocks.last());
        if let Some(label) = label {
            if targets.contains(&line.address) || line.address == encoded.entry_vaddr {
                labels.push(label.to_string());
            }
        }
        let at = line.address.wrapping_sub(encoded.load_vaddr) as usize;
        let bytes = encoded
            .code
            .get(at..at.saturating_add(line.instruction.len()))
            .unwrap_or_default()
            .to_vec();
        let mut text = printer.format(&line.instruction);
        if matches!(line.instruction.op0_kind(), OpKind::NearBranch32) {
            if let Some(name) = names.get(&line.instruction.near_branch32()) {
                let _ = write!(text, " <{name}>");
            }
        }
        let mut annotation = match (&line.origin, line.address < encoded.code_vaddr) {
            (Some(origin), _) => origin.to_string(),
            (None, true) => format!("pc thunk {in_thunk}"),
            (None, false) => "trap: the exit block could fall through".to_string(),
        };
        // `call pc_thunk.R; lea R,[R+d]` loads the address (thunk + 5) + d.
        let ins = &line.instruction;
        if let Some((reg, base)) = after_thunk_call.take() {
            if ins.code() == iced_x86::Code::Lea_r32_m
                && ins.op0_register() == reg
                && ins.memory_base() == reg
                && ins.memory_index() == iced_x86::Register::None
            {
                let addr = base.wrapping_add(ins.memory_displacement32());
                let _ = write!(annotation, ", address {addr:#x}");
                if let Some(name) = data_name(binary, addr) {
                    let _ = write!(annotation, " <{name}>");
                }
            }
        }
        if ins.is_call_near() {
            after_thunk_call = encoded
                .thunks
                .iter()
                .find(|(_, a)| *a == ins.near_branch32())
                .map(|&(reg, a)| (reg, a + 5));
        }
        items.push(ListingItem {
            address: line.address,
            bytes,
            text,
            labels,
            origin: line.origin,
            annotation,
        });
    }
    items
}

/// The symbol at `addr` (any kind: data addresses matter here), if any.
fn data_name(binary: &Binary, addr: u32) -> Option<String> {
    binary
        .symbols
        .iter()
        .find(|s| s.addr == addr)
        .map(|s| s.name.clone())
}

fn thunk_name(reg: iced_x86::Register) -> String {
    thunk_name_str(&format!("{reg:?}").to_lowercase())
}

fn thunk_name_str(reg: &str) -> String {
    format!("pc_thunk.{reg}")
}
