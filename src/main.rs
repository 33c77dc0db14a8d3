//! `wiper`: the command line of the IA-32 partial evaluator.
//!
//! Every failure is reported as one line on stderr (`wiper: error: ...`) with exit
//! status 2; usage errors come from clap with the same status. The commands
//! (`wiper::commands`) return their output; only this file prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use wiper::commands::{self, Report};

/// Partial evaluation of IA-32 machine code.
#[derive(Parser)]
#[command(name = "wiper", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The input executable (every command).
#[derive(Args)]
struct BinaryArgs {
    /// The ELF file.
    binary: PathBuf,
}

/// The function a command works on.
#[derive(Args)]
struct FunctionArgs {
    /// Function name, or its entry address as 0x followed by hex digits.
    #[arg(short, long, value_name = "NAME|0xADDR")]
    function: String,
    /// Take an address that is not a known function start as a function anyway.
    #[arg(long)]
    force: bool,
}

impl FunctionArgs {
    /// The function as the commands take it.
    fn arg(&self) -> commands::FunctionArg<'_> {
        commands::FunctionArg {
            spec: &self.function,
            force: self.force,
        }
    }
}

/// The static inputs (`bta`, `specialize`, `compare`, `check`, `report`).
#[derive(Args)]
struct StaticArgs {
    /// A static input: argN=INT, argN=@str:TEXT, argN=@i32:1,2,3, argN=@bytes:HEX or
    /// REG=INT (repeatable; every input not given is dynamic). argN is the Nth
    /// 32-bit stack slot of the arguments, counted from 0 ([esp+4+4N] at entry).
    #[arg(long = "static", value_name = "SPEC", num_args = 1.., action = clap::ArgAction::Append)]
    statics: Vec<String>,
}

/// The options that shape the residual code (`specialize`, `compare`,
/// `check`, `report`).
#[derive(Args)]
struct SpecializeOptions {
    /// Most residual instructions before specialization gives up.
    #[arg(long, value_name = "N", default_value_t = wiper_specialize::Options::default().max_residual)]
    max_residual: usize,
}

impl SpecializeOptions {
    /// The specializer's options: these, and the defaults for the rest.
    fn options(&self) -> wiper_specialize::Options {
        wiper_specialize::Options {
            max_residual: self.max_residual,
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Summarize an i386 ELF executable: type, entry, segments, functions, symbols.
    Info {
        #[command(flatten)]
        binary: BinaryArgs,
        /// List every function: address, size in bytes, name (or fn_ADDR).
        #[arg(long)]
        functions: bool,
        #[command(flatten)]
        format: ReportFormatArgs,
    },
    /// Print a function's control-flow graph: blocks, instructions, successors.
    Disasm {
        #[command(flatten)]
        binary: BinaryArgs,
        #[command(flatten)]
        function: FunctionArgs,
        /// Assembly syntax.
        #[arg(long, value_enum, default_value_t = SyntaxArg::Intel)]
        syntax: SyntaxArg,
        /// Output format (JSON addresses are hex strings).
        #[arg(long, value_enum, default_value_t = FormatArg::Text)]
        format: FormatArg,
    },
    /// Print a function's decoupled instructions, each part with its formula.
    Lift {
        #[command(flatten)]
        binary: BinaryArgs,
        #[command(flatten)]
        function: FunctionArgs,
        #[command(flatten)]
        format: ReportFormatArgs,
    },
    /// Binding-time analysis: mark every decoupled instruction Static, Dynamic or Lifted.
    Bta {
        #[command(flatten)]
        binary: BinaryArgs,
        #[command(flatten)]
        function: FunctionArgs,
        #[command(flatten)]
        statics: StaticArgs,
        /// Output format (JSON addresses are hex strings).
        #[arg(long, value_enum, default_value_t = BtaFormatArg::Text)]
        format: BtaFormatArg,
    },
    /// Specialize a function for static inputs and write the residual program.
    Specialize {
        #[command(flatten)]
        binary: BinaryArgs,
        #[command(flatten)]
        function: FunctionArgs,
        #[command(flatten)]
        statics: StaticArgs,
        /// The output file (required for --emit elf and bin; never the input).
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// What to write: a runnable ELF, the annotated residual listing, or the raw code.
        #[arg(long, value_enum, default_value_t = EmitArg::Elf)]
        emit: EmitArg,
        /// Assembly syntax of the listing (--emit asm).
        #[arg(long, value_enum, default_value_t = SyntaxArg::Intel)]
        syntax: SyntaxArg,
        #[command(flatten)]
        options: SpecializeOptions,
        /// Output format: with json, stdout gets one object (the summary,
        /// the output file, and with --emit asm the listing) instead of
        /// the stderr summary line; the file -o names is as in text.
        #[arg(long, value_enum, default_value_t = ReportFormatArg::Text)]
        format: ReportFormatArg,
    },
    /// Extract the component a command line selects: specialize the whole program
    /// (a static executable from its entry point, a dynamic one from main) for that
    /// argv and environment, and write a runnable ELF.
    Extract {
        #[command(flatten)]
        binary: BinaryArgs,
        /// The command line, split like a shell splits it (argv[0] first), e.g. 'gzip -d'.
        #[arg(long, value_name = "LINE")]
        argv: String,
        /// An environment variable of the extracted program, NAME=VALUE (repeatable;
        /// default: an empty environment).
        #[arg(long, value_name = "NAME=VALUE", action = clap::ArgAction::Append)]
        env: Vec<String>,
        /// The output file (never the input).
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
        /// What to write: the runnable ELF, or the annotated residual listing.
        #[arg(long, value_enum, default_value_t = EmitArg::Elf)]
        emit: EmitArg,
        /// Also write every original function, kept (and why) or dropped, to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        #[command(flatten)]
        options: SpecializeOptions,
    },
    /// Specialize, print the original and the residual code, and run both binaries
    /// on the same program arguments.
    Compare {
        #[command(flatten)]
        binary: BinaryArgs,
        #[command(flatten)]
        function: FunctionArgs,
        #[command(flatten)]
        statics: StaticArgs,
        /// Where to write the specialized binary (default: the temporary directory;
        /// never the input).
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        #[command(flatten)]
        options: SpecializeOptions,
        #[command(flatten)]
        format: ReportFormatArgs,
        /// The program's arguments for both runs (after `--`).
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Specialize and write one self-contained HTML page: the original CFG coloured
    /// by binding time, the residual code, the map between them, the figures.
    Report {
        #[command(flatten)]
        binary: BinaryArgs,
        #[command(flatten)]
        function: FunctionArgs,
        #[command(flatten)]
        statics: StaticArgs,
        /// The page to write (never the input).
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
        #[command(flatten)]
        options: SpecializeOptions,
        /// Do not draw the original CFG with Graphviz even if `dot` is on PATH.
        #[arg(long)]
        no_graphviz: bool,
    },
    /// Specialize, then run the original and the residual binary on many generated
    /// argument vectors and compare them; the first difference is minimized.
    Check {
        #[command(flatten)]
        binary: BinaryArgs,
        #[command(flatten)]
        function: FunctionArgs,
        #[command(flatten)]
        statics: StaticArgs,
        /// Where to write the specialized binary (default: beside the input as
        /// BINARY.NAME.specialized; never the input).
        #[arg(short, long, value_name = "OUT", conflicts_with = "residual")]
        output: Option<PathBuf>,
        #[command(flatten)]
        options: SpecializeOptions,
        /// How many generated inputs to run both binaries on.
        #[arg(long, value_name = "N", default_value_t = 200)]
        runs: u64,
        /// The seed of the input generator (the same seed gives the same inputs).
        #[arg(long, value_name = "S", default_value_t = wiper::check::DEFAULT_SEED)]
        seed: u64,
        /// Seconds each run may take; a run past it is reported as `timed out`.
        #[arg(long, value_name = "SECS", default_value_t = commands::RUN_TIMEOUT.as_secs_f64())]
        timeout: f64,
        /// Compare against this residual binary instead of specializing.
        #[arg(long, value_name = "PATH")]
        residual: Option<PathBuf>,
        /// The template of standard input: a literal, {int}, {int:LO..HI},
        /// {str:ALPHABET:LO..HI} or {bytes:LO..HI}.
        #[arg(long, value_name = "TEMPLATE")]
        stdin: Option<String>,
        #[command(flatten)]
        format: ReportFormatArgs,
        /// The argument templates (after `--`), one per program argument: a literal,
        /// {int}, {int:LO..HI} or {str:ALPHABET:LO..HI}.
        #[arg(last = true, value_name = "ARGS-TEMPLATE")]
        args: Vec<String>,
    },
}

/// `wiper specialize --emit` values.
#[derive(Clone, Copy, ValueEnum)]
enum EmitArg {
    /// A runnable ELF: the input with the function's entry jumping to the residual code.
    Elf,
    /// The residual listing, each instruction annotated with where it came from.
    Asm,
    /// The raw residual code (its load address is in the summary line).
    Bin,
}

/// `wiper bta --format` values.
#[derive(Clone, Copy, ValueEnum)]
enum BtaFormatArg {
    /// The decoupled listing with S, D or L on every part.
    Text,
    /// The dependence graph in Graphviz dot, nodes coloured by binding time.
    Dot,
    /// JSON, for scripts.
    Json,
}

/// `--syntax` values.
#[derive(Clone, Copy, ValueEnum)]
enum SyntaxArg {
    /// Intel syntax, as `objdump -M intel` prints it.
    Intel,
    /// AT&T syntax, as GNU as and `objdump` print it.
    Gas,
}

/// `--format` values of the commands that print a report (`info`, `lift`,
/// `specialize`, `compare`, `check`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormatArg {
    /// Text.
    Text,
    /// JSON, for scripts.
    Json,
}

/// The `--format` option of the commands that print a report.
#[derive(Args)]
struct ReportFormatArgs {
    /// Output format (JSON addresses are hex strings).
    #[arg(long, value_enum, default_value_t = ReportFormatArg::Text)]
    format: ReportFormatArg,
}

impl ReportFormatArgs {
    /// The format as the commands take it.
    fn get(&self) -> commands::ReportFormat {
        self.format.into()
    }
}

impl From<ReportFormatArg> for commands::ReportFormat {
    fn from(format: ReportFormatArg) -> Self {
        match format {
            ReportFormatArg::Text => commands::ReportFormat::Text,
            ReportFormatArg::Json => commands::ReportFormat::Json,
        }
    }
}

/// `wiper disasm --format` values.
#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// A text listing.
    Text,
    /// Graphviz dot.
    Dot,
    /// JSON, for scripts.
    Json,
}

impl From<EmitArg> for commands::EmitKind {
    fn from(emit: EmitArg) -> Self {
        match emit {
            EmitArg::Elf => commands::EmitKind::Elf,
            EmitArg::Asm => commands::EmitKind::Asm,
            EmitArg::Bin => commands::EmitKind::Bin,
        }
    }
}

impl From<BtaFormatArg> for commands::GraphFormat {
    fn from(format: BtaFormatArg) -> Self {
        match format {
            BtaFormatArg::Text => commands::GraphFormat::Text,
            BtaFormatArg::Dot => commands::GraphFormat::Dot,
            BtaFormatArg::Json => commands::GraphFormat::Json,
        }
    }
}

impl From<SyntaxArg> for wiper_x86::Syntax {
    fn from(syntax: SyntaxArg) -> Self {
        match syntax {
            SyntaxArg::Intel => wiper_x86::Syntax::Intel,
            SyntaxArg::Gas => wiper_x86::Syntax::Gas,
        }
    }
}

impl From<FormatArg> for commands::GraphFormat {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Text => commands::GraphFormat::Text,
            FormatArg::Dot => commands::GraphFormat::Dot,
            FormatArg::Json => commands::GraphFormat::Json,
        }
    }
}

/// Parses the command line, runs the command and prints what it returns.
fn main() -> ExitCode {
    // `RUST_LOG=wiper_specialize=debug` prints the specializer's decisions.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let cli = Cli::parse();
    match run(cli.command).and_then(print) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("wiper: error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// Runs `command`: what it has to print, or why it failed.
fn run(command: Command) -> anyhow::Result<Report> {
    match command {
        Command::Info {
            binary,
            functions,
            format,
        } => wiper::info::info(
            &binary.binary,
            wiper::info::InfoOptions {
                functions,
                json: format.get() == commands::ReportFormat::Json,
            },
        )
        .map(Report::from),
        Command::Disasm {
            binary,
            function,
            syntax,
            format,
        } => commands::disasm(&binary.binary, function.arg(), syntax.into(), format.into())
            .map(Report::from),
        Command::Lift {
            binary,
            function,
            format,
        } => commands::lift(&binary.binary, function.arg(), format.get()).map(Report::from),
        Command::Bta {
            binary,
            function,
            statics,
            format,
        } => commands::bta(
            &binary.binary,
            function.arg(),
            &statics.statics,
            format.into(),
        )
        .map(Report::from),
        Command::Specialize {
            binary,
            function,
            statics,
            output,
            emit,
            syntax,
            options,
            format,
        } => commands::specialize(
            &binary.binary,
            function.arg(),
            &statics.statics,
            &commands::Written {
                output: output.as_deref(),
                emit: emit.into(),
                syntax: syntax.into(),
                format: format.into(),
            },
            &options.options(),
        ),
        Command::Extract {
            binary,
            argv,
            env,
            output,
            emit,
            report,
            options,
        } => wiper::extract::extract(
            &binary.binary,
            &wiper::extract::Request {
                argv: &argv,
                env: &env,
                output: &output,
                emit: emit.into(),
                report: report.as_deref(),
            },
            &options.options(),
        ),
        Command::Compare {
            binary,
            function,
            statics,
            output,
            options,
            format,
            args,
        } => commands::compare(
            &binary.binary,
            function.arg(),
            &statics.statics,
            output.as_deref(),
            &options.options(),
            &args,
            format.get(),
        ),
        Command::Report {
            binary,
            function,
            statics,
            output,
            options,
            no_graphviz,
        } => wiper::report::report(
            &binary.binary,
            function.arg(),
            &statics.statics,
            &output,
            &options.options(),
            &wiper::report::ReportOptions {
                graphviz: !no_graphviz,
            },
        ),
        Command::Check {
            binary,
            function,
            statics,
            output,
            options,
            runs,
            seed,
            timeout,
            residual,
            stdin,
            format,
            args,
        } => timeout_duration(timeout).and_then(|timeout| {
            wiper::check::check(
                &binary.binary,
                function.arg(),
                &statics.statics,
                output.as_deref(),
                &options.options(),
                &wiper::check::CheckOptions {
                    runs,
                    seed,
                    timeout,
                    residual,
                    args,
                    stdin,
                    format: format.get(),
                },
            )
        }),
    }
}

/// Prints a command's report: its stderr lines, then its stdout text; a
/// failure it carries becomes the command's error, else its exit status is
/// the command's.
fn print(report: Report) -> anyhow::Result<u8> {
    for line in &report.stderr {
        eprintln!("{line}");
    }
    write_stdout(&report.stdout)?;
    report.failure.map_or(Ok(report.exit_status), Err)
}

/// `--timeout SECS` as a duration, or why not.
fn timeout_duration(secs: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            anyhow::anyhow!("--timeout must be a positive number of seconds, not {secs}")
        })
}

/// Writes the command's output; a closed pipe (`wiper ... | head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `s` on one line: every run of whitespace (newlines too) becomes one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
