//! The subcommands: each loads its input and returns what to print (the
//! text for stdout, or a [`Report`]); none of them prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use wiper_elf::{Binary, ElfError};
use wiper_sem::wiper_qfbv::ExprPool;
use wiper_x86::{format, Disassembler, Format, Syntax};

/// What a command produced, for the caller to print: the stderr lines
/// first, then the stdout text, then the failure, if any, as the error.
#[derive(Debug, Default)]
pub struct Report {
    /// The text for stdout.
    pub stdout: String,
    /// Lines for stderr, without their newlines (the summary line of
    /// `specialize` and `compare`).
    pub stderr: Vec<String>,
    /// A failure found once the output was made (`compare`'s runs that
    /// differ): the output is still printed, then this is the error.
    pub failure: Option<anyhow::Error>,
    /// The exit status when there is no failure: 0, or 1 when `check`
    /// found runs that differ.
    pub exit_status: u8,
}

impl From<String> for Report {
    /// A report of just the text for stdout.
    fn from(stdout: String) -> Self {
        Report {
            stdout,
            ..Default::default()
        }
    }
}

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

/// A finished specialization, ready to be written.
pub(crate) struct Specialized {
    binary: Binary,
    entry: u32,
    pub(crate) name: String,
    result: wiper_specialize::Specialization,
    plan: wiper_emit::Plan,
    encoded: wiper_emit::Encoded,
}

impl Specialized {
    /// Specializes `function` of the binary at `path` for `statics`.
    fn new(
        path: &Path,
        function: &str,
        statics: &[String],
        options: &wiper_specialize::Options,
    ) -> Result<Self> {
        let spec = wiper_bta::StaticSpec::parse_all(statics)?;
        let binary = load(path)?;
        let entry = wiper_x86::resolve_function(&binary, function)
            .with_context(|| format!("{}", path.display()))?;
        let name = binary
            .function_at(entry)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| format!("fn_{entry:x}"));
        let context = || format!("{}: function {name}", path.display());
        let mut result =
            wiper_specialize::specialize(&binary, entry, &spec, options).with_context(context)?;
        let started = std::time::Instant::now();
        wiper_opt::optimize(&mut result.residual);
        result.stats.time += started.elapsed();
        let plan =
            wiper_emit::plan(&binary, result.residual.data.len() as u32).with_context(context)?;
        let encoded = wiper_emit::encode(&plan, &result.residual).with_context(context)?;
        Ok(Specialized {
            binary,
            entry,
            name,
            result,
            plan,
            encoded,
        })
    }

    /// The summary line: instructions before and after, bytes, Reduce
    /// proofs, fallbacks, time.
    pub(crate) fn summary(&self) -> String {
        let st = &self.result.stats;
        format!(
            "wiper: specialized {}: {} -> {} instructions, {} bytes, {} reduced ({} proved), {} fallbacks, {:.2} s",
            self.name,
            st.original_instructions,
            self.encoded.instruction_count,
            self.encoded.code_size(),
            st.reduced,
            st.proved,
            st.fallbacks,
            st.time.as_secs_f64()
        )
    }

    /// Writes the runnable ELF to `out`.
    fn write_elf(&self, out: &Path) -> Result<()> {
        let symbol = format!("{}.specialized", self.name);
        let bytes = wiper_emit::write_elf(
            self.binary.file_bytes(),
            &self.binary,
            &self.plan,
            &self.result.residual,
            &self.encoded,
            self.entry,
            &symbol,
        )
        .with_context(|| format!("function {}", self.name))?;
        write_executable(out, &bytes)
    }
}

/// Refuses to write over the input binary.
fn check_output(input: &Path, output: Option<&Path>) -> Result<()> {
    match output {
        Some(out) if same_file(input, out) => Err(anyhow!(
            "{}: refusing to overwrite the input binary",
            out.display()
        )),
        _ => Ok(()),
    }
}

/// `wiper specialize`: specializes `function` for `statics` and writes the
/// residual program. Returns the text for stdout (the listing for
/// `--emit asm` without `-o`) and the summary line for stderr.
pub fn specialize(
    path: &Path,
    function: &str,
    statics: &[String],
    output: Option<&Path>,
    emit: EmitKind,
    options: &wiper_specialize::Options,
) -> Result<Report> {
    if emit != EmitKind::Asm && output.is_none() {
        return Err(anyhow!(
            "-o OUTPUT is required for --emit elf and --emit bin"
        ));
    }
    if let (EmitKind::Elf, Some(out)) = (emit, output) {
        let written = specialize_elf(path, function, statics, out, options)?;
        return Ok(Report {
            stderr: vec![written.summary],
            ..Default::default()
        });
    }
    check_output(path, output)?;
    let sp = Specialized::new(path, function, statics, options)?;
    let mut stdout = String::new();
    let mut summary = sp.summary();
    match (emit, output) {
        (EmitKind::Asm, None) => stdout = wiper_emit::listing(&sp.binary, &sp.encoded),
        (EmitKind::Asm, Some(out)) => {
            std::fs::write(out, wiper_emit::listing(&sp.binary, &sp.encoded))
                .with_context(|| format!("cannot write {}", out.display()))?
        }
        (EmitKind::Bin, Some(out)) => {
            std::fs::write(out, &sp.encoded.code)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let _ = write!(summary, "; code loads at {:#x}", sp.encoded.load_vaddr);
            if sp.plan.pie {
                summary.push_str(" (relative to the load base)");
            }
        }
        (EmitKind::Elf, _) | (EmitKind::Bin, None) => unreachable!("handled above"),
    }
    Ok(Report {
        stdout,
        stderr: vec![summary],
        ..Default::default()
    })
}

/// The numbers of a residual ELF written by [`specialize_elf`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenElf {
    /// Residual instructions (thunks and traps excluded).
    pub residual_instructions: usize,
    /// Size in bytes of the residual code.
    pub residual_bytes: u32,
    /// Addresses `[start, end)` of everything loaded with the residual code
    /// (PC thunks included).
    pub code_range: (u32, u32),
    /// The summary line `wiper specialize` reports for stderr.
    pub summary: String,
    /// The specializer's counts.
    pub stats: wiper_specialize::Stats,
}

/// `wiper specialize --emit elf -o OUT`: specializes `function` of the
/// binary at `path` for `statics`, writes the runnable ELF to `output` and
/// returns its numbers.
pub fn specialize_elf(
    path: &Path,
    function: &str,
    statics: &[String],
    output: &Path,
    options: &wiper_specialize::Options,
) -> Result<WrittenElf> {
    check_output(path, Some(output))?;
    let sp = Specialized::new(path, function, statics, options)?;
    sp.write_elf(output)?;
    let start = sp.encoded.load_vaddr;
    Ok(WrittenElf {
        residual_instructions: sp.encoded.instruction_count,
        residual_bytes: sp.encoded.code_size(),
        code_range: (
            start,
            start.saturating_add(u32::try_from(sp.encoded.code.len()).unwrap_or(u32::MAX)),
        ),
        summary: sp.summary(),
        stats: sp.result.stats.clone(),
    })
}

/// `wiper compare`: specializes, then shows the original function and the
/// residual code and runs the original and the specialized binary on the
/// same program arguments, comparing output and exit status. Returns both
/// listings and the runs for stdout and the summary line for stderr; runs
/// that differ are the report's failure.
pub fn compare(
    path: &Path,
    function: &str,
    statics: &[String],
    output: Option<&Path>,
    options: &wiper_specialize::Options,
    args: &[String],
) -> Result<Report> {
    let (sp, out_path) = specialize_beside(path, function, statics, output, options)?;
    let original = Disassembler::new(&sp.binary)
        .function(sp.entry)
        .with_context(|| format!("{}: function {function}", path.display()))?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "== original {} ({} instructions)",
        sp.name, sp.result.stats.original_instructions
    );
    text.push_str(&format::listing(&sp.binary, &original, Syntax::Intel));
    let _ = writeln!(
        text,
        "\n== residual {}.specialized ({} instructions), written to {}",
        sp.name,
        sp.encoded.instruction_count,
        out_path.display()
    );
    text.push_str(&wiper_emit::listing(&sp.binary, &sp.encoded));
    let _ = writeln!(text, "\n== run with arguments: {}", args.join(" "));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = run_program(path, path, &args, b"", RUN_TIMEOUT)?;
    let b = run_program(&out_path, path, &args, b"", RUN_TIMEOUT)?;
    let _ = write!(text, "original: {a}");
    let _ = write!(text, "residual: {b}");
    let same = a == b;
    let _ = writeln!(
        text,
        "{}",
        if same {
            "same output and exit status"
        } else {
            "DIFFERENT"
        }
    );
    Ok(Report {
        stdout: text,
        stderr: vec![sp.summary()],
        failure: (!same).then(|| anyhow!("the residual binary behaves differently")),
        ..Default::default()
    })
}

/// How long `compare` lets each run take, and `check`'s default: a residual
/// that loops forever is a difference, not a hang.
pub const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the program at `path` with `argv0`, `args` and `stdin`, killing it
/// after `timeout` (a bare file name is the file in the current directory).
pub(crate) fn run_program(
    path: &Path,
    argv0: &Path,
    args: &[&str],
    stdin: &[u8],
    timeout: std::time::Duration,
) -> Result<wiper_run::Outcome> {
    wiper_run::run(&wiper_run::Invocation {
        path,
        argv0: Some(argv0),
        args,
        stdin,
        env: &[],
        timeout,
    })
    .with_context(|| format!("cannot run {}", path.display()))
}

/// Specializes like `specialize` and writes the runnable ELF to `output`,
/// or beside the input as `BINARY.NAME.specialized` (never over the input):
/// what `compare` and `check` run. Returns the specialization and the path
/// written.
pub(crate) fn specialize_beside(
    path: &Path,
    function: &str,
    statics: &[String],
    output: Option<&Path>,
    options: &wiper_specialize::Options,
) -> Result<(Specialized, PathBuf)> {
    check_output(path, output)?;
    let sp = Specialized::new(path, function, statics, options)?;
    let out_path = match output {
        Some(o) => o.to_path_buf(),
        None => beside(path, &format!("{}.specialized", sp.name)),
    };
    check_output(path, Some(&out_path))?;
    sp.write_elf(&out_path)?;
    Ok((sp, out_path))
}

/// `BINARY.SUFFIX` in the directory of the input `path`: where `compare`
/// writes the residual binary when no `-o` is given.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("binary");
    path.with_file_name(format!("{name}.{suffix}"))
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Writes `bytes` to `out` and makes it executable.
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
