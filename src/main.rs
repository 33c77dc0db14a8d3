//! `wiper`: the command line of the IA-32 partial evaluator.
//!
//! Every failure is reported as one line on stderr (`wiper: error: ...`) with exit
//! status 2; usage errors come from clap with the same status.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use wiper::commands;

/// Partial evaluation of IA-32 machine code.
#[derive(Parser)]
#[command(name = "wiper", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarize an i386 ELF executable: type, entry, segments, functions, symbols.
    Info {
        /// The ELF file.
        binary: PathBuf,
    },
    /// Print a function's control-flow graph: blocks, instructions, successors.
    Disasm {
        /// The ELF file.
        binary: PathBuf,
        /// Function name, or its entry address as 0x followed by hex digits.
        #[arg(short, long, value_name = "NAME|0xADDR")]
        function: String,
        /// Assembly syntax.
        #[arg(long, value_enum, default_value_t = SyntaxArg::Intel)]
        syntax: SyntaxArg,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FormatArg::Text)]
        format: FormatArg,
    },
    /// Print a function's decoupled instructions, each part with its formula.
    Lift {
        /// The ELF file.
        binary: PathBuf,
        /// Function name, or its entry address as 0x followed by hex digits.
        #[arg(short, long, value_name = "NAME|0xADDR")]
        function: String,
    },
    /// Binding-time analysis: mark every decoupled instruction Static, Dynamic or Lifted.
    Bta {
        /// The ELF file.
        binary: PathBuf,
        /// Function name, or its entry address as 0x followed by hex digits.
        #[arg(short, long, value_name = "NAME|0xADDR")]
        function: String,
        /// A static input: argN=INT, argN=@str:TEXT, argN=@i32:1,2,3, argN=@bytes:HEX or
        /// REG=INT (repeatable; every input not given is dynamic).
        #[arg(long = "static", value_name = "SPEC", num_args = 1.., action = clap::ArgAction::Append)]
        statics: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = BtaFormatArg::Text)]
        format: BtaFormatArg,
    },
    /// Specialize a function for static inputs and write the residual program.
    Specialize {
        /// The ELF file.
        binary: PathBuf,
        /// Function name, or its entry address as 0x followed by hex digits.
        #[arg(short, long, value_name = "NAME|0xADDR")]
        function: String,
        /// A static input: argN=INT, argN=@str:TEXT, argN=@i32:1,2,3, argN=@bytes:HEX or
        /// REG=INT (repeatable; every input not given is dynamic).
        #[arg(long = "static", value_name = "SPEC", num_args = 1.., action = clap::ArgAction::Append)]
        statics: Vec<String>,
        /// The output file (required for --emit elf and bin; never the input).
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// What to write: a runnable ELF, the annotated residual listing, or the raw code.
        #[arg(long, value_enum, default_value_t = EmitArg::Elf)]
        emit: EmitArg,
        /// Most residual instructions before specialization gives up.
        #[arg(long, default_value_t = 100_000)]
        max_residual: usize,
    },
    /// Specialize, print the original and the residual code, and run both binaries
    /// on the same program arguments.
    Compare {
        /// The ELF file.
        binary: PathBuf,
        /// Function name, or its entry address as 0x followed by hex digits.
        #[arg(short, long, value_name = "NAME|0xADDR")]
        function: String,
        /// A static input (as for `specialize`; repeatable).
        #[arg(long = "static", value_name = "SPEC", num_args = 1.., action = clap::ArgAction::Append)]
        statics: Vec<String>,
        /// Where to write the specialized binary (default: the temporary directory).
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// The program's arguments for both runs (after `--`).
        #[arg(last = true, value_name = "ARGS")]
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

/// `--format` values.
#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// A text listing.
    Text,
    /// Graphviz dot.
    Dot,
}

fn main() -> ExitCode {
    // `RUST_LOG=wiper_specialize=debug` prints the specializer's decisions.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { binary } => commands::info(&binary),
        Command::Disasm {
            binary,
            function,
            syntax,
            format,
        } => {
            let syntax = match syntax {
                SyntaxArg::Intel => wiper_x86::Syntax::Intel,
                SyntaxArg::Gas => wiper_x86::Syntax::Gas,
            };
            let format = match format {
                FormatArg::Text => wiper_x86::Format::Text,
                FormatArg::Dot => wiper_x86::Format::Dot,
            };
            commands::disasm(&binary, &function, syntax, format)
        }
        Command::Lift { binary, function } => commands::lift(&binary, &function),
        Command::Bta {
            binary,
            function,
            statics,
            format,
        } => {
            let format = match format {
                BtaFormatArg::Text => commands::BtaFormat::Text,
                BtaFormatArg::Dot => commands::BtaFormat::Dot,
                BtaFormatArg::Json => commands::BtaFormat::Json,
            };
            commands::bta(&binary, &function, &statics, format)
        }
        Command::Specialize {
            binary,
            function,
            statics,
            output,
            emit,
            max_residual,
        } => {
            let emit = match emit {
                EmitArg::Elf => commands::EmitKind::Elf,
                EmitArg::Asm => commands::EmitKind::Asm,
                EmitArg::Bin => commands::EmitKind::Bin,
            };
            commands::specialize(
                &binary,
                &function,
                &statics,
                output.as_deref(),
                emit,
                max_residual,
            )
        }
        Command::Compare {
            binary,
            function,
            statics,
            output,
            args,
        } => commands::compare(&binary, &function, &statics, output.as_deref(), &args),
    };
    match result.and_then(|text| write_stdout(&text)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wiper: error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// Writes the command's output; a closed pipe (`wiper ... | head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
