//! The subcommands: each loads its input and returns the text to print.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use wiper_elf::{Binary, ElfError, FileType};
use wiper_x86::{format, Disassembler, Format, Syntax};

/// Loads the ELF at `path`, naming the file in every error.
pub fn load(path: &Path) -> Result<Binary> {
    Binary::open(path).map_err(|e| match e {
        ElfError::Io { .. } => anyhow!(e),
        _ => anyhow!("{}: {e}", path.display()),
    })
}

/// `wiper info`: a summary of the executable.
pub fn info(path: &Path) -> Result<String> {
    let binary = load(path)?;
    let mut dis = Disassembler::new(&binary);
    let functions = dis.discover_functions();
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "file:        {}", path.display());
    let _ = writeln!(w, "class:       ELF32, little-endian");
    let _ = writeln!(w, "machine:     Intel 80386 (EM_386)");
    let kind = match binary.file_type {
        FileType::Executable => "EXEC (executable)",
        FileType::PositionIndependent => "DYN (position-independent executable)",
    };
    let _ = writeln!(w, "type:        {kind}");
    let linking = match &binary.interpreter {
        Some(interp) => format!("dynamic, interpreter {interp}"),
        None => "static".to_string(),
    };
    let _ = writeln!(w, "linking:     {linking}");
    let _ = writeln!(w, "entry:       {:#010x}", binary.entry);
    match wiper_x86::find_main(&binary) {
        Some(m) => {
            let _ = writeln!(w, "main:        {m:#010x}");
        }
        None => {
            let _ = writeln!(w, "main:        not found");
        }
    }
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
        "functions:   {} (symbols, entry, main and direct call targets)",
        functions.len()
    );
    Ok(out)
}

/// `wiper disasm`: the control-flow graph of one function.
pub fn disasm(path: &Path, function: &str, syntax: Syntax, fmt: Format) -> Result<String> {
    let binary = load(path)?;
    let entry = wiper_x86::resolve_function(&binary, function)
        .with_context(|| format!("{}", path.display()))?;
    let f = Disassembler::new(&binary)
        .function(entry)
        .with_context(|| format!("{}: function {function}", path.display()))?;
    Ok(match fmt {
        Format::Text => format::listing(&binary, &f, syntax),
        Format::Dot => format::dot(&binary, &f, syntax),
    })
}
