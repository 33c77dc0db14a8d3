//! The original function's graph for the report, drawn by Graphviz: a dot
//! source with one HTML-like table per block (a row per instruction,
//! coloured by binding time, with `ID="g_ADDR"` so the SVG names it
//! `a_g_ADDR`, and a link to the instruction's row in the listing), run
//! through `dot -Tsvg` from `PATH` with a timeout.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use wiper_x86::format::{self, InstructionPrinter};
use wiper_x86::{Successor, Syntax};

use super::{esc, Model};

/// The graph of the page, or why there is none.
pub(crate) enum Graph {
    /// The SVG element `dot` drew (without its XML prologue).
    Svg(String),
    /// Graphviz was turned off.
    Off,
    /// Graphviz was asked for but gave no graph, for this reason.
    Unavailable(String),
}

/// Most instructions of a function the page draws (dot's layout time grows
/// quickly with the graph; the listings show any size).
const MAX_INSTRUCTIONS: usize = 3000;

/// How long `dot` may take before it is killed.
const DOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The `dot` program found on `PATH`, if there is one.
fn find_dot() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("dot"))
        .find(|p| p.is_file())
}

/// The graph of `f`, drawn by `dot`, or why not.
pub(crate) fn draw(
    binary: &wiper_elf::Binary,
    f: &wiper_x86::Function,
    model: &Model<'_>,
) -> Graph {
    if f.instruction_count() > MAX_INSTRUCTIONS {
        return Graph::Unavailable(format!(
            "the function has {} instructions, more than the {MAX_INSTRUCTIONS} the page draws",
            f.instruction_count()
        ));
    }
    let Some(dot) = find_dot() else {
        return Graph::Unavailable("Graphviz's dot is not on PATH".to_owned());
    };
    let source = source(binary, f, model);
    let run = wiper_run::run(&wiper_run::Invocation {
        path: &dot,
        argv0: None,
        args: &["-Tsvg"],
        stdin: source.as_bytes(),
        env: &[],
        timeout: DOT_TIMEOUT,
    });
    match run {
        Ok(wiper_run::Outcome::Finished(out)) => {
            let text = out.stdout_str();
            match (out.status.code(), text.find("<svg")) {
                (Some(0), Some(at)) => Graph::Svg(text[at..].to_owned()),
                _ => Graph::Unavailable(format!(
                    "dot failed ({}): {}",
                    out.status,
                    out.stderr_str().lines().next().unwrap_or("no message")
                )),
            }
        }
        Ok(wiper_run::Outcome::TimedOut(t)) => {
            Graph::Unavailable(format!("dot took longer than {} s", t.as_secs()))
        }
        Err(e) => Graph::Unavailable(format!("cannot run dot: {e}")),
    }
}

/// The dot source: a table per block, an edge per successor; calls, tail
/// calls and returns point to ellipses.
fn source(binary: &wiper_elf::Binary, f: &wiper_x86::Function, model: &Model<'_>) -> String {
    let mut printer = InstructionPrinter::new(binary, Syntax::Intel);
    let mut out = String::from(
        "digraph cfg {\n  node [shape=plaintext fontname=\"monospace\" fontsize=10];\n  \
         edge [fontname=\"sans-serif\" fontsize=9];\n",
    );
    for block in f.blocks.values() {
        let copies = model.copies_of(block.start).len();
        let _ = write!(
            out,
            "  \"b{0:x}\" [label=<<TABLE BORDER=\"1\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"1\"><TR><TD ALIGN=\"LEFT\" HREF=\"#ob-{0:x}\" ID=\"gb_{0:x}\"><B>{0:#010x}</B>  {1}</TD></TR>",
            block.start,
            match copies {
                _ if !model.recorded => String::new(),
                0 => "not reached".to_owned(),
                1 => "1 copy".to_owned(),
                n => format!("{n} copies"),
            }
        );
        for ins in &block.instructions {
            let addr = ins.ip32();
            let time = model.time(addr);
            let _ = write!(
                out,
                "<TR><TD ALIGN=\"LEFT\" BGCOLOR=\"{}\" HREF=\"#o-{addr:x}\" ID=\"g_{addr:x}\" TITLE=\"{}\">{addr:08x}  {}</TD></TR>",
                time.colour(),
                time.name(),
                esc(&printer.format(ins))
            );
        }
        out.push_str("</TABLE>>];\n");
    }
    edges(&mut out, binary, f);
    out.push_str("}\n");
    out
}

/// The edges of the graph, and the ellipses of the targets outside it.
fn edges(out: &mut String, binary: &wiper_elf::Binary, f: &wiper_x86::Function) {
    let mut externals = std::collections::BTreeSet::new();
    for block in f.blocks.values() {
        for s in &block.successors {
            let (to, label) = match s {
                Successor::FallThrough(a) | Successor::Jump(a) => (format!("b{a:x}"), ""),
                Successor::Taken(a) => (format!("b{a:x}"), "taken"),
                Successor::NotTaken(a) => (format!("b{a:x}"), "not taken"),
                Successor::Case { target, .. } => (format!("b{target:x}"), "case"),
                _ => {
                    let text = format::successor_text(binary, s);
                    externals.insert(text.clone());
                    (text, "")
                }
            };
            let _ = writeln!(
                out,
                "  \"b{:x}\" -> \"{}\" [label=\"{label}\"];",
                block.start,
                dot_string(&to)
            );
        }
    }
    for e in externals {
        let _ = writeln!(out, "  \"{}\" [shape=ellipse];", dot_string(&e));
    }
}

/// `s` escaped for a quoted dot string.
fn dot_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
