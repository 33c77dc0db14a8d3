//! The subcommands: each loads its input and returns the text to print.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use wiper_elf::{Binary, ElfError, FileType};
use wiper_sem::wiper_qfbv::ExprPool;
use wiper_x86::{format, Disassembler, Format, Syntax};

/// Loads the ELF at `path`, naming the file in every error.
pub fn load(path: &Path) -> Result<Binary> {
    Binary::open(path).map_err(|e| match e {
        ElfError::Io { .. } => anyhow!(e),
        _ => anyhow!("{}: {e}", path.display()),
    })
}

/// Loads the ELF at `path` and decodes the function `function` (a name or
/// `0xADDR`) into its control-flow graph, naming file and function in errors.
pub fn load_function(path: &Path, function: &str) -> Result<(Binary, wiper_x86::Function)> {
    let binary = load(path)?;
    let entry = wiper_x86::resolve_function(&binary, function)
        .with_context(|| format!("{}", path.display()))?;
    let f = Disassembler::new(&binary)
        .function(entry)
        .with_context(|| format!("{}: function {function}", path.display()))?;
    Ok((binary, f))
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
    let (binary, f) = load_function(path, function)?;
    Ok(match fmt {
        Format::Text => format::listing(&binary, &f, syntax),
        Format::Dot => format::dot(&binary, &f, syntax),
    })
}

/// Longest formula `wiper lift` prints, in bytes (longer ones are cut with `…`).
const LIFT_FORMULA_LEN: usize = 240;

/// `wiper lift`: every instruction of one function with its decoupled parts
/// and their formulas, block by block.
pub fn lift(path: &Path, function: &str) -> Result<String> {
    let (binary, f) = load_function(path, function)?;
    let mut pool = ExprPool::new();
    let mut printer = format::InstructionPrinter::new(&binary, Syntax::Intel);
    let mut body = String::new();
    let mut parts = 0;
    for block in f.blocks.values() {
        let _ = writeln!(body, "\nblock {:#010x}:", block.start);
        for ins in &block.instructions {
            let lifted = wiper_sem::lift(&mut pool, ins)
                .with_context(|| format!("{}: function {function}", path.display()))?;
            let _ = writeln!(body, "{:08x}  {}", ins.ip32(), printer.format(ins));
            for part in &lifted.parts {
                for line in wiper_sem::display::part_lines(&pool, part, LIFT_FORMULA_LEN) {
                    let _ = writeln!(body, "{line}");
                }
            }
            parts += lifted.parts.len();
        }
        let succs: Vec<String> = block
            .successors
            .iter()
            .map(|s| format::successor_text(&binary, s))
            .collect();
        let _ = writeln!(body, "  -> {}", succs.join(", "));
    }
    let name = f
        .name
        .clone()
        .unwrap_or_else(|| format!("{:#010x}", f.entry));
    Ok(format!(
        "function {name} at {:#010x}: {} blocks, {} instructions, {parts} parts\n{body}",
        f.entry,
        f.blocks.len(),
        f.instruction_count()
    ))
}

/// Output formats of `wiper bta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BtaFormat {
    /// The classified listing.
    Text,
    /// The dependence graph in Graphviz dot.
    Dot,
    /// JSON.
    Json,
}

/// `wiper bta`: the binding time of every part of one function under the
/// given static inputs.
pub fn bta(path: &Path, function: &str, statics: &[String], fmt: BtaFormat) -> Result<String> {
    let spec = wiper_bta::StaticSpec::parse_all(statics)?;
    let binary = load(path)?;
    let entry = wiper_x86::resolve_function(&binary, function)
        .with_context(|| format!("{}", path.display()))?;
    let analysis = wiper_bta::analyze(&binary, entry, &spec)
        .with_context(|| format!("{}: function {function}", path.display()))?;
    Ok(match fmt {
        BtaFormat::Text => wiper_bta::render::listing(&binary, &analysis),
        BtaFormat::Dot => wiper_bta::render::dot(&binary, &analysis),
        BtaFormat::Json => wiper_bta::render::json(&binary, &analysis),
    })
}

/// What `wiper specialize` writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum EmitKind {
    /// A runnable ELF.
    Elf,
    /// The annotated residual listing.
    Asm,
    /// The raw residual code.
    Bin,
}

/// `wiper specialize`: specializes `function` for `statics` and writes the
/// residual program. Returns the text for stdout (the listing for
/// `--emit asm` without `-o`); the summary line goes to stderr.
pub fn specialize(
    path: &Path,
    function: &str,
    statics: &[String],
    output: Option<&Path>,
    emit: EmitKind,
    max_residual: usize,
) -> Result<String> {
    let spec = wiper_bta::StaticSpec::parse_all(statics)?;
    let binary = load(path)?;
    let entry = wiper_x86::resolve_function(&binary, function)
        .with_context(|| format!("{}", path.display()))?;
    let name = binary
        .function_at(entry)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| format!("fn_{entry:x}"));
    if emit != EmitKind::Asm && output.is_none() {
        return Err(anyhow!("-o OUTPUT is required for --emit elf and --emit bin"));
    }
    if let Some(out) = output {
        if same_file(path, out) {
            return Err(anyhow!(
                "{}: refusing to overwrite the input binary",
                out.display()
            ));
        }
    }
    let options = wiper_specialize::Options {
        max_residual,
        ..Default::default()
    };
    let s = wiper_specialize::specialize(&binary, entry, &spec, &options)
        .with_context(|| format!("{}: function {name}", path.display()))?;
    let encoded = wiper_emit::encode(&s.plan, &s.residual)
        .with_context(|| format!("{}: function {name}", path.display()))?;
    let mut stdout = String::new();
    match emit {
        EmitKind::Asm => {
            let text = wiper_emit::listing(&binary, &encoded);
            match output {
                Some(out) => std::fs::write(out, text)
                    .with_context(|| format!("cannot write {}", out.display()))?,
                None => stdout = text,
            }
        }
        EmitKind::Bin => {
            let out = output.expect("checked");
            std::fs::write(out, &encoded.code)
                .with_context(|| format!("cannot write {}", out.display()))?;
        }
        EmitKind::Elf => {
            let out = output.expect("checked");
            let symbol = format!("{name}.specialized");
            let bytes = wiper_emit::write_elf(
                binary.file_bytes(),
                &binary,
                &s.plan,
                &s.residual,
                &encoded,
                entry,
                &symbol,
            )
            .with_context(|| format!("{}: function {name}", path.display()))?;
            write_executable(out, &bytes)?;
        }
    }
    let st = &s.stats;
    let mut summary = format!(
        "wiper: specialized {name}: {} -> {} instructions, {} bytes, {} reduced ({} proved), {} fallbacks, {:.2} s",
        st.original_instructions,
        encoded.instruction_count,
        encoded.code_size(),
        st.reduced,
        st.proved,
        st.fallbacks,
        st.time.as_secs_f64()
    );
    if emit == EmitKind::Bin {
        let _ = write!(summary, "; code loads at {:#x}", encoded.load_vaddr);
        if s.plan.pie {
            summary.push_str(" (relative to the load base)");
        }
    }
    eprintln!("{summary}");
    Ok(stdout)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn write_executable(out: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut p = std::fs::metadata(out)?.permissions();
        p.set_mode(p.mode() | 0o755);
        std::fs::set_permissions(out, p)?;
    }
    Ok(())
}
