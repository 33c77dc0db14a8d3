//! The subcommands: each loads its input and returns what to print (the
//! text for stdout, or a [`Report`]); none of them prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use wiper_elf::{Binary, ElfError};
use wiper_sem::wiper_qfbv::ExprPool;
use wiper_x86::{format, Disassembler, Format, Syntax};

use crate::Residual;

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

/// The `--function` argument: a name or `0xADDR`, and whether an address
/// that is not a known function start is taken anyway (`--force`).
#[derive(Clone, Copy, Debug)]
pub struct FunctionArg<'a> {
    /// The name or `0xADDR`.
    pub spec: &'a str,
    /// Take an address that is not a known function start.
    pub force: bool,
}

impl<'a> From<&'a str> for FunctionArg<'a> {
    /// The function `spec`, without `--force`.
    fn from(spec: &'a str) -> Self {
        FunctionArg { spec, force: false }
    }
}

impl<'a> From<&'a String> for FunctionArg<'a> {
    /// The function `spec`, without `--force`.
    fn from(spec: &'a String) -> Self {
        FunctionArg::from(spec.as_str())
    }
}

impl std::fmt::Display for FunctionArg<'_> {
    /// The name or `0xADDR` as given.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.spec)
    }
}

/// Loads the ELF at `path` and finds `function` in it (see
/// [`crate::Binary::function`]), naming the file in errors.
pub fn locate<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
) -> Result<(crate::Binary, crate::Function)> {
    let function = function.into();
    let binary = crate::Binary::from_loaded(path, load(path)?);
    let f = binary
        .locate(function.spec, function.force)
        .with_context(|| format!("{}", path.display()))?;
    Ok((binary, f))
}

/// Loads the ELF at `path` and decodes the function `function` (a name or
/// `0xADDR`) into its control-flow graph, naming file and function in errors.
pub fn load_function<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
) -> Result<(crate::Binary, wiper_x86::Function)> {
    let function = function.into();
    let (binary, located) = locate(path, function)?;
    let f = Disassembler::new(binary.elf())
        .function(located.entry())
        .with_context(|| format!("{}: function {function}", path.display()))?;
    Ok((binary, f))
}

/// `wiper disasm`: the control-flow graph of one function.
pub fn disasm<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    syntax: Syntax,
    fmt: Format,
) -> Result<String> {
    let (binary, f) = load_function(path, function)?;
    let binary = binary.elf();
    Ok(match fmt {
        Format::Text => format::listing(binary, &f, syntax),
        Format::Dot => format::dot(binary, &f, syntax),
    })
}

/// Longest formula `wiper lift` prints, in bytes (longer ones are cut with `…`).
const LIFT_FORMULA_LEN: usize = 240;

/// `wiper lift`: every instruction of one function with its decoupled parts
/// and their formulas, block by block.
pub fn lift<'a>(path: &Path, function: impl Into<FunctionArg<'a>>) -> Result<String> {
    let function = function.into();
    let (binary, f) = load_function(path, function)?;
    let binary = binary.elf();
    let mut pool = ExprPool::new();
    let mut printer = format::InstructionPrinter::new(binary, Syntax::Intel);
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
            .map(|s| format::successor_text(binary, s))
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
pub fn bta<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    fmt: BtaFormat,
) -> Result<String> {
    let function = function.into();
    let spec = wiper_bta::StaticSpec::parse_all(statics)?;
    let (binary, located) = locate(path, function)?;
    let binary = binary.elf();
    let analysis = wiper_bta::analyze(binary, located.entry(), &spec)
        .with_context(|| format!("{}: function {function}", path.display()))?;
    Ok(match fmt {
        BtaFormat::Text => wiper_bta::render::listing(binary, &analysis),
        BtaFormat::Dot => wiper_bta::render::dot(binary, &analysis),
        BtaFormat::Json => wiper_bta::render::json(binary, &analysis),
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

/// Specializes `function` of the binary at `path` for `statics`: the
/// library's pipeline ([`crate::Residual`]), with the file and function
/// named in errors.
pub(crate) fn specialize_path<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    options: &wiper_specialize::Options,
) -> Result<Residual> {
    let spec = crate::Spec::parse(statics)?;
    let (binary, function) = locate(path, function)?;
    let name = function.name().to_owned();
    crate::specialize_with(&binary, &function, &spec, options)
        .with_context(|| format!("{}: function {name}", path.display()))
}

/// The summary line of `specialize`, `compare` and `check` (stderr).
pub(crate) fn summary_line(residual: &Residual) -> String {
    format!("wiper: {}", residual.summary())
}

/// The warning lines of a specialization (stderr), one per warning:
/// `wiper: warning: ...`.
pub(crate) fn warning_lines(residual: &Residual) -> Vec<String> {
    residual
        .warnings()
        .iter()
        .map(|w| format!("wiper: warning: {w}"))
        .collect()
}

/// What `specialize`, `compare` and `check` print on stderr: the summary
/// line, then the warnings.
pub(crate) fn stderr_lines(residual: &Residual) -> Vec<String> {
    let mut lines = vec![summary_line(residual)];
    lines.extend(warning_lines(residual));
    lines
}

/// Writes the runnable ELF of `residual` to `out`.
fn write_residual(residual: &Residual, out: &Path) -> Result<()> {
    let bytes = residual
        .elf_bytes()
        .with_context(|| format!("function {}", residual.function().name()))?;
    crate::api::write_executable(out, &bytes)
        .with_context(|| format!("cannot write {}", out.display()))
}

/// Refuses to write over the input binary.
pub(crate) fn check_output(input: &Path, output: Option<&Path>) -> Result<()> {
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
pub fn specialize<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    output: Option<&Path>,
    emit: EmitKind,
    syntax: Syntax,
    options: &wiper_specialize::Options,
) -> Result<Report> {
    if emit != EmitKind::Asm && output.is_none() {
        return Err(anyhow!(
            "-o OUTPUT is required for --emit elf and --emit bin"
        ));
    }
    if let (EmitKind::Elf, Some(out)) = (emit, output) {
        let written = specialize_elf(path, function, statics, out, options)?;
        let mut stderr = vec![written.summary];
        stderr.extend(
            written
                .warnings
                .iter()
                .map(|w| format!("wiper: warning: {w}")),
        );
        return Ok(Report {
            stderr,
            ..Default::default()
        });
    }
    check_output(path, output)?;
    let sp = specialize_path(path, function, statics, options)?;
    let mut stdout = String::new();
    let mut summary = summary_line(&sp);
    match (emit, output) {
        (EmitKind::Asm, None) => stdout = sp.listing_in(syntax),
        (EmitKind::Asm, Some(out)) => std::fs::write(out, sp.listing_in(syntax))
            .with_context(|| format!("cannot write {}", out.display()))?,
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
    let mut stderr = vec![summary];
    stderr.extend(warning_lines(&sp));
    Ok(Report {
        stdout,
        stderr,
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
    /// The warnings of meaning (`wiper: warning: ...` lines on stderr).
    pub warnings: Vec<crate::Warning>,
}

/// `wiper specialize --emit elf -o OUT`: specializes `function` of the
/// binary at `path` for `statics`, writes the runnable ELF to `output` and
/// returns its numbers.
pub fn specialize_elf<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    output: &Path,
    options: &wiper_specialize::Options,
) -> Result<WrittenElf> {
    check_output(path, Some(output))?;
    let sp = specialize_path(path, function, statics, options)?;
    write_residual(&sp, output)?;
    let start = sp.encoded.load_vaddr;
    Ok(WrittenElf {
        residual_instructions: sp.encoded.instruction_count,
        residual_bytes: sp.encoded.code_size(),
        code_range: (
            start,
            start.saturating_add(u32::try_from(sp.encoded.code.len()).unwrap_or(u32::MAX)),
        ),
        summary: summary_line(&sp),
        stats: sp.stats().clone(),
        warnings: sp.warnings().to_vec(),
    })
}

/// `wiper compare`: specializes, then shows the original function and the
/// residual code and runs the original and the specialized binary on the
/// same program arguments, comparing output and exit status. Returns both
/// listings and the runs for stdout and the summary line for stderr; runs
/// that differ are the report's failure.
pub fn compare<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    output: Option<&Path>,
    options: &wiper_specialize::Options,
    args: &[String],
) -> Result<Report> {
    let (sp, out_path) = specialize_beside(path, function, statics, output, options)?;
    let name = sp.function().name();
    let original = Disassembler::new(&sp.binary)
        .function(sp.function().entry())
        .with_context(|| format!("{}: function {name}", path.display()))?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "== original {name} ({} instructions)",
        sp.stats().original_instructions
    );
    text.push_str(&format::listing(&sp.binary, &original, Syntax::Intel));
    let _ = writeln!(
        text,
        "\n== residual {name}.specialized ({} instructions), written to {}",
        sp.summary().residual_instructions,
        out_path.display()
    );
    text.push_str(&sp.listing());
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
    text.push_str(&instructions_executed(&sp, path, &out_path, &args));
    Ok(Report {
        stdout: text,
        stderr: stderr_lines(&sp),
        failure: (!same).then(|| anyhow!("the residual binary behaves differently")),
        ..Default::default()
    })
}

/// How long `compare` lets a run under valgrind take.
const COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// `compare`'s section on the instructions the original (`path`) and the
/// residual binary (`out`) execute on `args`, counted with callgrind: in
/// total and in the calls of the function. Without valgrind, a line saying
/// it was skipped; a run callgrind could not count says why.
fn instructions_executed(sp: &Residual, path: &Path, out: &Path, args: &[&str]) -> String {
    let Some(valgrind) = crate::callgrind::valgrind() else {
        return "== instructions executed: skipped (valgrind is not installed)\n".to_owned();
    };
    let name = sp.function().name();
    let mut target = crate::callgrind::Target::of_function(&sp.binary, name, sp.function().entry());
    let code = sp.code_address();
    target
        .ranges
        .push((code, code.saturating_add(sp.code().len() as u32)));
    let mut text = "== instructions executed (valgrind --tool=callgrind)\n".to_owned();
    for (which, program) in [("original", path), ("residual", out)] {
        match crate::callgrind::count(&valgrind, program, args, b"", &target, COUNT_TIMEOUT) {
            Ok(c) => {
                let calls = c.function.calls;
                let _ = writeln!(
                    text,
                    "{which}: {} in total, {} in {calls} call{} of {name}",
                    c.total,
                    c.function.instructions,
                    if calls == 1 { "" } else { "s" }
                );
            }
            Err(e) => {
                let _ = writeln!(text, "{which}: not counted: {e:#}");
            }
        }
    }
    text
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
pub(crate) fn specialize_beside<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    output: Option<&Path>,
    options: &wiper_specialize::Options,
) -> Result<(Residual, PathBuf)> {
    check_output(path, output)?;
    let sp = specialize_path(path, function, statics, options)?;
    let out_path = match output {
        Some(o) => o.to_path_buf(),
        None => beside(path, &format!("{}.specialized", sp.function().name())),
    };
    check_output(path, Some(&out_path))?;
    write_residual(&sp, &out_path)?;
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
