//! Naming PLT stubs after the functions they jump to.
//!
//! An i386 PLT entry is `jmp [slot]` (`ff 25 abs32`, non-PIC) or `jmp [ebx+disp32]`
//! (`ff a3 disp32`, PIC, ebx holding the GOT address), possibly after an `endbr32`.
//! The GOT slot it reads carries a relocation that names the target:
//! `R_386_JUMP_SLOT`/`R_386_GLOB_DAT` with a dynamic symbol, or, in static
//! binaries, `R_386_IRELATIVE` whose addend (stored in the slot, REL style) is the
//! address of an IFUNC resolver, named by the symbol table.

use std::collections::BTreeMap;

use goblin::elf::reloc::{R_386_GLOB_DAT, R_386_IRELATIVE, R_386_JMP_SLOT};
use goblin::elf::Elf;

use crate::{Binary, SymbolKind};

const ENDBR32: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfb];
const PLT_SECTIONS: [&str; 4] = [".plt", ".plt.sec", ".plt.got", ".iplt"];

/// What the relocation of a GOT slot says about its run-time content.
pub(crate) enum SlotTarget {
    /// A dynamic symbol (`R_386_JUMP_SLOT`, `R_386_GLOB_DAT`).
    Import(String),
    /// An IFUNC resolver address stored in the slot (`R_386_IRELATIVE`).
    Resolver,
}

/// Maps each PLT stub address to the name of the function its GOT slot resolves to.
pub(crate) fn name_plt_entries(
    binary: &Binary,
    relocs: &[(u32, SlotTarget)],
) -> BTreeMap<u32, String> {
    let slots: BTreeMap<u32, String> = relocs
        .iter()
        .filter_map(|(slot, target)| match target {
            SlotTarget::Import(name) => Some((*slot, name.clone())),
            SlotTarget::Resolver => resolver_name(binary, *slot).map(|n| (*slot, n)),
        })
        .collect();
    let mut out = BTreeMap::new();
    if slots.is_empty() {
        return out;
    }
    for section in binary
        .sections
        .iter()
        .filter(|s| PLT_SECTIONS.contains(&s.name.as_str()))
    {
        let Some(bytes) = binary.section_bytes(section) else {
            continue;
        };
        for off in (0..bytes.len().saturating_sub(5)).step_by(4) {
            let Some(slot) = jump_slot(binary, &bytes[off..off + 6]) else {
                continue;
            };
            let Some(name) = slots.get(&slot) else {
                continue;
            };
            let has_endbr = off >= 4 && bytes[off - 4..off] == ENDBR32;
            let entry = section.addr + off as u32 - if has_endbr { 4 } else { 0 };
            out.insert(entry, name.clone());
        }
    }
    out
}

/// The GOT slot read by a `jmp [abs32]` or `jmp [ebx+disp32]` encoded in `insn`.
fn jump_slot(binary: &Binary, insn: &[u8]) -> Option<u32> {
    let operand = u32::from_le_bytes([insn[2], insn[3], insn[4], insn[5]]);
    match (insn[0], insn[1]) {
        (0xff, 0x25) => Some(operand),
        (0xff, 0xa3) => binary.got.map(|got| got.wrapping_add(operand)),
        _ => None,
    }
}

/// GOT slot address and target of every relocation that can name a PLT stub.
pub(crate) fn slot_relocations(elf: &Elf) -> Vec<(u32, SlotTarget)> {
    let mut out = Vec::new();
    for r in elf.pltrelocs.iter().chain(elf.dynrels.iter()) {
        let slot = r.r_offset as u32;
        match r.r_type {
            R_386_JMP_SLOT | R_386_GLOB_DAT => {
                if let Some(name) = elf
                    .dynsyms
                    .get(r.r_sym)
                    .and_then(|s| elf.dynstrtab.get_at(s.st_name))
                    .filter(|n| !n.is_empty())
                {
                    out.push((slot, SlotTarget::Import(name.to_string())));
                }
            }
            R_386_IRELATIVE => out.push((slot, SlotTarget::Resolver)),
            _ => {}
        }
    }
    // Static binaries keep their IRELATIVE relocations only in section relocations.
    for (_, relocs) in elf.shdr_relocs.iter() {
        for r in relocs.iter().filter(|r| r.r_type == R_386_IRELATIVE) {
            out.push((r.r_offset as u32, SlotTarget::Resolver));
        }
    }
    out
}

/// Name of the IFUNC whose resolver address is stored in `slot` (REL addend).
fn resolver_name(binary: &Binary, slot: u32) -> Option<String> {
    let resolver = binary.read_u32(slot)?;
    let symbols_here = binary.symbols.iter().filter(|s| s.addr == resolver);
    let mut best = None;
    for s in symbols_here {
        match s.kind {
            SymbolKind::IndirectFunction => return Some(s.name.clone()),
            SymbolKind::Function if best.is_none() => best = Some(s.name.clone()),
            _ => {}
        }
    }
    best
}
