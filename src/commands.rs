//! The subcommands: each loads its input and returns what to print (the
//! text for stdout, or a [`Report`]); none of them prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use wiper_elf::{Binary, ElfError};
use wiper_sem::wiper_qfbv::ExprPool;
use wiper_x86::{format, Disassembler, Syntax};

use crate::{json, Residual};

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

/// Output formats of the commands that print a report (`info`, `lift`,
/// `specialize`, `compare`, `check`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReportFormat {
    /// Text for people.
    #[default]
    Text,
    /// One JSON object on stdout, addresses as `"0x..."` strings.
    Json,
}

/// Output formats of the commands that also draw a graph (`disasm`,
/// `bta`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GraphFormat {
    /// The text listing.
    #[default]
    Text,
    /// The graph in Graphviz dot.
    Dot,
    /// JSON, addresses as `"0x..."` strings.
    Json,
}

/// `wiper disasm`: the control-flow graph of one function.
pub fn disasm<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    syntax: Syntax,
    fmt: GraphFormat,
) -> Result<String> {
    let (binary, f) = load_function(path, function)?;
    let binary = binary.elf();
    Ok(match fmt {
        GraphFormat::Text => format::listing(binary, &f, syntax),
        GraphFormat::Dot => format::dot(binary, &f, syntax),
        GraphFormat::Json => json::to_text(&json::cfg(binary, &f, syntax)),
    })
}

/// Longest formula `wiper lift` prints, in bytes (longer ones are cut with `…`).
const LIFT_FORMULA_LEN: usize = 240;

/// `wiper lift`: every instruction of one function with its decoupled parts
/// and their formulas, block by block.
pub fn lift<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    fmt: ReportFormat,
) -> Result<String> {
    let function = function.into();
    let (binary, f) = load_function(path, function)?;
    let binary = binary.elf();
    let mut pool = ExprPool::new();
    let mut blocks = Vec::with_capacity(f.blocks.len());
    for block in f.blocks.values() {
        let lifted = block
            .instructions
            .iter()
            .map(|ins| wiper_sem::lift(&mut pool, ins))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{}: function {function}", path.display()))?;
        blocks.push(lifted);
    }
    Ok(match fmt {
        ReportFormat::Text => lift_text(binary, &f, &pool, &blocks),
        ReportFormat::Json => json::to_text(&lift_json(binary, &f, &pool, &blocks)),
    })
}

/// `wiper lift`'s listing of `f`, whose blocks lifted to `blocks`.
fn lift_text(
    binary: &Binary,
    f: &wiper_x86::Function,
    pool: &ExprPool,
    blocks: &[Vec<wiper_sem::Lifted>],
) -> String {
    let mut printer = format::InstructionPrinter::new(binary, Syntax::Intel);
    let mut body = String::new();
    let mut parts = 0;
    for (block, lifted) in f.blocks.values().zip(blocks) {
        let _ = writeln!(body, "\nblock {:#010x}:", block.start);
        for lifted in lifted {
            let ins = &lifted.original;
            let _ = writeln!(body, "{:08x}  {}", ins.ip32(), printer.format(ins));
            for part in &lifted.parts {
                for line in wiper_sem::display::part_lines(pool, part, LIFT_FORMULA_LEN) {
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
    format!(
        "function {name} at {:#010x}: {} blocks, {} instructions, {parts} parts\n{body}",
        f.entry,
        f.blocks.len(),
        f.instruction_count()
    )
}

/// `wiper lift --format json`: the function, its counts, and per block its
/// start, successors and instructions, each with its address, text and
/// parts (index, text, kind, effects as `dst` and `formula`, what an
/// opaque part reads, the divide-error condition, the barrier).
fn lift_json(
    binary: &Binary,
    f: &wiper_x86::Function,
    pool: &ExprPool,
    blocks: &[Vec<wiper_sem::Lifted>],
) -> serde_json::Value {
    let mut printer = format::InstructionPrinter::new(binary, Syntax::Intel);
    let mut parts = 0;
    let mut json_blocks = Vec::with_capacity(blocks.len());
    for (block, lifted) in f.blocks.values().zip(blocks) {
        let mut instructions = Vec::with_capacity(lifted.len());
        for lifted in lifted {
            let json_parts: Vec<_> = lifted
                .parts
                .iter()
                .map(|part| {
                    let t = wiper_sem::display::part_text(pool, part, LIFT_FORMULA_LEN);
                    let effects: Vec<_> = t
                        .effects
                        .into_iter()
                        .map(|(dst, formula)| serde_json::json!({"dst": dst, "formula": formula}))
                        .collect();
                    serde_json::json!({
                        "index": part.index,
                        "text": part.text,
                        "kind": t.kind,
                        "effects": effects,
                        "reads": t.reads,
                        "fault": t.fault,
                        "barrier": t.barrier,
                    })
                })
                .collect();
            parts += json_parts.len();
            instructions.push(serde_json::json!({
                "address": json::hex(lifted.original.ip32()),
                "text": printer.format(&lifted.original),
                "parts": json_parts,
            }));
        }
        json_blocks.push(serde_json::json!({
            "start": json::hex(block.start),
            "instructions": instructions,
            "successors": json::successors(binary, &block.successors),
        }));
    }
    serde_json::json!({
        "function": f.name,
        "entry": json::hex(f.entry),
        "block_count": f.blocks.len(),
        "instruction_count": f.instruction_count(),
        "part_count": parts,
        "blocks": json_blocks,
    })
}

/// `wiper bta`: the binding time of every part of one function under the
/// given static inputs.
pub fn bta<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    fmt: GraphFormat,
) -> Result<String> {
    let function = function.into();
    let spec = wiper_bta::StaticSpec::parse_all(statics)?;
    let (binary, located) = locate(path, function)?;
    let binary = binary.elf();
    let analysis = wiper_bta::analyze(binary, located.entry(), &spec)
        .with_context(|| format!("{}: function {function}", path.display()))?;
    Ok(match fmt {
        GraphFormat::Text => wiper_bta::render::listing(binary, &analysis),
        GraphFormat::Dot => wiper_bta::render::dot(binary, &analysis),
        GraphFormat::Json => wiper_bta::render::json(binary, &analysis),
    })
}

/// What `wiper specialize` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitKind {
    /// A runnable ELF.
    Elf,
    /// The annotated residual listing.
    Asm,
    /// The raw residual code.
    Bin,
}

/// What `wiper specialize` writes, where, and how it reports.
#[derive(Clone, Copy, Debug)]
pub struct Written<'a> {
    /// The output file (`-o`): required for `--emit elf` and `bin`.
    pub output: Option<&'a Path>,
    /// What to write.
    pub emit: EmitKind,
    /// The syntax of the listing.
    pub syntax: Syntax,
    /// The report's format.
    pub format: ReportFormat,
}

impl EmitKind {
    /// Its name as `--emit` takes it.
    pub fn name(self) -> &'static str {
        match self {
            EmitKind::Elf => "elf",
            EmitKind::Asm => "asm",
            EmitKind::Bin => "bin",
        }
    }
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
/// residual program. In text, returns the text for stdout (the listing
/// for `--emit asm` without `-o`) and the summary line for stderr; in
/// JSON, one object for stdout (the summary, where the output went, and
/// the listing for `--emit asm`) and only the warnings for stderr.
pub fn specialize<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    written: &Written<'_>,
    options: &wiper_specialize::Options,
) -> Result<Report> {
    let Written {
        output,
        emit,
        syntax,
        format: fmt,
    } = *written;
    if emit != EmitKind::Asm && output.is_none() {
        return Err(anyhow!(
            "-o OUTPUT is required for --emit elf and --emit bin"
        ));
    }
    check_output(path, output)?;
    let sp = specialize_path(path, function, statics, options)?;
    let write = |out: &Path, bytes: &[u8]| {
        std::fs::write(out, bytes).with_context(|| format!("cannot write {}", out.display()))
    };
    let mut stdout = String::new();
    let mut summary = summary_line(&sp);
    match (emit, output) {
        (EmitKind::Elf, Some(out)) => write_residual(&sp, out)?,
        (EmitKind::Asm, None) if fmt == ReportFormat::Text => stdout = sp.listing_in(syntax),
        (EmitKind::Asm, None) => {}
        (EmitKind::Asm, Some(out)) => write(out, sp.listing_in(syntax).as_bytes())?,
        (EmitKind::Bin, Some(out)) => {
            write(out, &sp.encoded.code)?;
            let _ = write!(summary, "; code loads at {:#x}", sp.encoded.load_vaddr);
            if sp.plan.pie {
                summary.push_str(" (relative to the load base)");
            }
        }
        (EmitKind::Elf | EmitKind::Bin, None) => unreachable!("refused above"),
    }
    if fmt == ReportFormat::Json {
        let mut v = serde_json::json!({
            "emit": emit.name(),
            "output": output.map(|o| o.display().to_string()),
            "summary": json::summary(&sp),
        });
        if emit == EmitKind::Asm {
            v["listing"] = json::listing(&sp, syntax);
        }
        return Ok(Report {
            stdout: json::to_text(&v),
            stderr: warning_lines(&sp),
            ..Default::default()
        });
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
/// listings and the runs for stdout and the summary line for stderr (in
/// JSON, one object for stdout and only the warnings for stderr); runs
/// that differ are the report's failure.
pub fn compare<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    output: Option<&Path>,
    options: &wiper_specialize::Options,
    args: &[String],
    fmt: ReportFormat,
) -> Result<Report> {
    let (sp, out_path) = specialize_beside(path, function, statics, output, options)?;
    let name = sp.function().name();
    let original = Disassembler::new(&sp.binary)
        .function(sp.function().entry())
        .with_context(|| format!("{}: function {name}", path.display()))?;
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let runs = [
        run_program(path, path, &argv, b"", RUN_TIMEOUT)?,
        run_program(&out_path, path, &argv, b"", RUN_TIMEOUT)?,
    ];
    let compared = Compared {
        counts: count_instructions(&sp, [path, &out_path], &argv),
        sp,
        original,
        out_path,
        args,
        runs,
    };
    let same = compared.runs[0] == compared.runs[1];
    let (stdout, stderr) = match fmt {
        ReportFormat::Text => (compared.text(), stderr_lines(&compared.sp)),
        ReportFormat::Json => (
            json::to_text(&compared.json(path)),
            warning_lines(&compared.sp),
        ),
    };
    Ok(Report {
        stdout,
        stderr,
        failure: (!same).then(|| anyhow!("the residual binary behaves differently")),
        ..Default::default()
    })
}

/// What `compare` found: the specialization, the original CFG, where the
/// residual binary is, the runs of both and what callgrind counted.
struct Compared<'a> {
    /// The specialization.
    sp: Residual,
    /// The original function.
    original: wiper_x86::Function,
    /// The residual binary.
    out_path: PathBuf,
    /// The program arguments of both runs.
    args: &'a [String],
    /// The runs of the original and of the residual binary.
    runs: [wiper_run::Outcome; 2],
    /// What callgrind counted of each; `None` without valgrind.
    counts: Option<[Result<crate::callgrind::Counted>; 2]>,
}

impl Compared<'_> {
    /// The text report: both listings, both runs, whether they agree, and
    /// the instructions executed.
    fn text(&self) -> String {
        let sp = &self.sp;
        let name = sp.function().name();
        let mut text = String::new();
        let _ = writeln!(
            text,
            "== original {name} ({} instructions)",
            sp.stats().original_instructions
        );
        text.push_str(&format::listing(&sp.binary, &self.original, Syntax::Intel));
        let _ = writeln!(
            text,
            "\n== residual {name}.specialized ({} instructions), written to {}",
            sp.summary().residual_instructions,
            self.out_path.display()
        );
        text.push_str(&sp.listing());
        let _ = writeln!(text, "\n== run with arguments: {}", self.args.join(" "));
        let [a, b] = &self.runs;
        let _ = write!(text, "original: {a}");
        let _ = write!(text, "residual: {b}");
        let _ = writeln!(
            text,
            "{}",
            if a == b {
                "same output and exit status"
            } else {
                "DIFFERENT"
            }
        );
        let Some(counts) = &self.counts else {
            text.push_str("== instructions executed: skipped (valgrind is not installed)\n");
            return text;
        };
        text.push_str("== instructions executed (valgrind --tool=callgrind)\n");
        for (which, count) in ["original", "residual"].into_iter().zip(counts) {
            match count {
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

    /// The JSON report: the summary, and per binary (`original`,
    /// `residual`) its path, instruction count, code (the CFG, or the
    /// residual listing), run and instructions executed; the arguments;
    /// whether the runs are the `same`.
    fn json(&self, path: &Path) -> serde_json::Value {
        let sp = &self.sp;
        let executed = |i: usize| self.counts.as_ref().map(|c| json::counted(&c[i]));
        serde_json::json!({
            "function": sp.function().name(),
            "args": self.args,
            "same": self.runs[0] == self.runs[1],
            "summary": json::summary(sp),
            "original": {
                "path": path.display().to_string(),
                "instructions": sp.stats().original_instructions,
                "cfg": json::cfg(&sp.binary, &self.original, Syntax::Intel),
                "run": json::run(&self.runs[0]),
                "executed": executed(0),
            },
            "residual": {
                "path": self.out_path.display().to_string(),
                "instructions": sp.summary().residual_instructions,
                "listing": json::listing(sp, Syntax::Intel),
                "run": json::run(&self.runs[1]),
                "executed": executed(1),
            },
        })
    }
}

/// How long `compare` lets a run under valgrind take.
const COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The instructions the original and the residual binary (`programs`)
/// execute on `args`, counted with callgrind: in total and in the calls of
/// the function. `None` without valgrind; a run callgrind could not count
/// is an error saying why.
fn count_instructions(
    sp: &Residual,
    programs: [&Path; 2],
    args: &[&str],
) -> Option<[Result<crate::callgrind::Counted>; 2]> {
    let valgrind = crate::callgrind::valgrind()?;
    let name = sp.function().name();
    let mut target = crate::callgrind::Target::of_function(&sp.binary, name, sp.function().entry());
    let code = sp.code_address();
    target
        .ranges
        .push((code, code.saturating_add(sp.code().len() as u32)));
    Some(programs.map(|program| {
        crate::callgrind::count(&valgrind, program, args, b"", &target, COUNT_TIMEOUT)
    }))
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
