//! `wiper info`: a summary of an executable and, on request, its functions,
//! as text or JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};
use wiper_elf::{Binary, FileType};
use wiper_x86::Disassembler;

use crate::commands::load;
use crate::json::hex;

/// How `wiper info` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoOptions {
    /// List every function (address, size, name), not just their count.
    pub functions: bool,
    /// JSON instead of text.
    pub json: bool,
}

/// One function of the listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionEntry {
    /// Entry address.
    pub address: u32,
    /// Size in bytes: the symbol's, else its `.eh_frame` entry's, else
    /// the extent of the instructions decoded from the entry (0 when it
    /// does not decode).
    pub size: u32,
    /// The symbol or PLT name, or `fn_ADDR`.
    pub name: String,
}

/// Every function wiper finds (symbols, `.eh_frame`, entry, `main`, direct
/// call targets), by address.
pub fn functions(binary: &Binary) -> Vec<FunctionEntry> {
    let mut dis = Disassembler::new(binary);
    let unwind = binary.unwind_ranges();
    dis.discover_functions()
        .into_iter()
        .map(|address| {
            let symbol_size = binary.function_at(address).map_or(0, |s| s.size);
            let fde_size = unwind
                .iter()
                .find(|r| r.start == address)
                .map_or(0, |r| r.len);
            let size = if symbol_size != 0 {
                symbol_size
            } else if fde_size != 0 {
                fde_size
            } else {
                dis.function(address).map_or(0, |f| {
                    let end = f.instructions().map(|i| i.next_ip32()).max();
                    end.map_or(0, |e| e.saturating_sub(address))
                })
            };
            let name = binary
                .name_of(address)
                .unwrap_or_else(|| format!("fn_{address:x}"));
            FunctionEntry {
                address,
                size,
                name,
            }
        })
        .collect()
}

/// `wiper info`: the summary of the executable at `path`.
pub fn info(path: &Path, options: InfoOptions) -> Result<String> {
    let binary = load(path)?;
    let listed = functions(&binary);
    if options.json {
        return Ok(crate::json::to_text(&as_json(
            path, &binary, &listed, options,
        )));
    }
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "file:        {}", path.display());
    let _ = writeln!(w, "class:       ELF32, little-endian");
    let _ = writeln!(w, "machine:     Intel 80386 (EM_386)");
    let _ = writeln!(w, "type:        {}", type_text(binary.file_type));
    let _ = writeln!(w, "linking:     {}", linking_text(&binary));
    let _ = writeln!(w, "entry:       {:#010x}", binary.entry);
    match wiper_x86::find_main(&binary) {
        Some(m) => writeln!(w, "main:        {m:#010x}"),
        None => writeln!(w, "main:        not found"),
    }?;
    let _ = writeln!(w, "segments:    {}", binary.segments.len());
    for s in &binary.segments {
        let _ = writeln!(
            w,
            "  LOAD {}  vaddr {:#010x}  memsz {:#09x}  offset {:#09x}  filesz {:#09x}",
            s.perms, s.vaddr, s.mem_size, s.offset, s.file_size
        );
    }
    let _ = writeln!(w, "sections:    {}", binary.sections.len());
    let code_symbols = binary.symbols.iter().filter(|s| s.is_code()).count();
    let _ = writeln!(
        w,
        "symbols:     {} ({code_symbols} functions)",
        binary.symbols.len()
    );
    let _ = writeln!(w, "plt entries: {}", binary.plt.len());
    let _ = writeln!(
        w,
        "functions:   {} (symbols, .eh_frame, entry, main and direct call targets)",
        listed.len()
    );
    if options.functions {
        for f in &listed {
            let _ = writeln!(w, "  {:#010x} {:8}  {}", f.address, f.size, f.name);
        }
    }
    Ok(out)
}

fn type_text(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Executable => "EXEC (executable)",
        FileType::PositionIndependent => "DYN (position-independent executable)",
    }
}

fn linking_text(binary: &Binary) -> String {
    match &binary.interpreter {
        Some(interp) => format!("dynamic, interpreter {interp}"),
        None => "static".to_string(),
    }
}

/// The summary as a JSON object: the text's fields, the segments, and the
/// functions when asked for.
fn as_json(path: &Path, binary: &Binary, listed: &[FunctionEntry], options: InfoOptions) -> Value {
    let segments: Vec<Value> = binary
        .segments
        .iter()
        .map(|s| {
            json!({
                "perms": s.perms.to_string(),
                "vaddr": hex(s.vaddr),
                "mem_size": s.mem_size,
                "offset": s.offset,
                "file_size": s.file_size,
            })
        })
        .collect();
    let mut v = json!({
        "file": path.display().to_string(),
        "type": match binary.file_type {
            FileType::Executable => "EXEC",
            FileType::PositionIndependent => "DYN",
        },
        "interpreter": binary.interpreter,
        "entry": hex(binary.entry),
        "main": wiper_x86::find_main(binary).map(hex),
        "segments": segments,
        "sections": binary.sections.len(),
        "symbols": binary.symbols.len(),
        "function_symbols": binary.symbols.iter().filter(|s| s.is_code()).count(),
        "plt_entries": binary.plt.len(),
        "function_count": listed.len(),
    });
    if options.functions {
        v["functions"] = listed
            .iter()
            .map(|f| json!({"address": hex(f.address), "size": f.size, "name": f.name}))
            .collect();
    }
    v
}
