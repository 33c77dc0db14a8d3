//! The report page's HTML: the summary, the original function (graph,
//! then per-block listings with binding times, residual uses and copies),
//! the residual blocks with each instruction's origin, and the inline CSS
//! and script of the two-way map.
//!
//! Element names the script and the tests read: an original instruction is
//! a `tr` with `id="o-ADDR"` and `data-o="ADDR"` (hex without `0x`), its
//! block a `div.oblock` with `id="ob-ADDR"` and `data-copies`; a residual
//! instruction is a `tr` with `data-r` (its index in the listing),
//! `data-how` (the origin's kind) and `data-from="ADDR"` when the origin is
//! an instruction of the original function (else `data-ext`); a residual
//! block a `div.rblock` with `id="rb-LN"`; the graph's instruction cells
//! are SVG groups `a_g_ADDR`. `#check` receives the script's own counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use wiper_residual::Label;
use wiper_specialize::PointSummary;
use wiper_x86::format::{self, InstructionPrinter};
use wiper_x86::Syntax;

use super::graphviz::Graph;
use super::{differing, esc, value_of, Model, OriginKind, Time};
use crate::Residual;

/// The page's stylesheet.
const STYLE: &str = include_str!("report.css");

/// The page's script: the two-way map and its self-check.
const SCRIPT: &str = include_str!("report.js");

/// Most copies listed per original block (the rest are counted).
const MAX_COPIES_LISTED: usize = 200;

/// The whole page.
pub(super) fn page(
    residual: &Residual,
    statics: &[String],
    original: &wiper_x86::Function,
    model: &Model<'_>,
    graph: &Graph,
) -> String {
    let name = residual.function().name();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>wiper report: {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        esc(name)
    );
    let _ = writeln!(
        out,
        "<h1>wiper report: <code>{}</code> at {:#010x}</h1>",
        esc(name),
        residual.function().entry()
    );
    summary(&mut out, residual, statics, model);
    original_section(&mut out, residual, original, model, graph);
    residual_section(&mut out, residual, model);
    let _ = write!(
        out,
        "<div id=\"detail\" class=\"detail\">Click an instruction: its residual or original \
         counterparts are highlighted and explained here.</div>\n\
         <div id=\"check\" data-errors=\"\" data-ready=\"0\"></div>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    );
    out
}

/// The summary figures (`wiper specialize`'s summary line and the
/// specializer's counts), and the warnings of meaning, if any.
fn summary(out: &mut String, residual: &Residual, statics: &[String], model: &Model<'_>) {
    let s = residual.summary();
    let st = residual.stats();
    let statics = if statics.is_empty() {
        "none".to_owned()
    } else {
        statics.join(", ")
    };
    let copied = model.copies.values().filter(|c| c.len() > 1).count();
    let rows: [(&str, &str, String); 15] = [
        ("static-inputs", "static inputs", statics),
        (
            "original-instructions",
            "original instructions",
            s.original_instructions.to_string(),
        ),
        (
            "residual-instructions",
            "residual instructions",
            s.residual_instructions.to_string(),
        ),
        (
            "residual-bytes",
            "residual code bytes",
            s.residual_bytes.to_string(),
        ),
        (
            "reduced",
            "reduced (synthesized by Reduce)",
            s.reduced.to_string(),
        ),
        (
            "proved",
            "of those proved by Z3 (only those are used)",
            s.proved.to_string(),
        ),
        ("fallbacks", "fallbacks", s.fallbacks.to_string()),
        (
            "materialized",
            "materializing instructions",
            st.materialized.to_string(),
        ),
        ("points", "specialization points", st.points.to_string()),
        (
            "polyvariant-blocks",
            "original blocks with several copies",
            copied.to_string(),
        ),
        (
            "restarts",
            "restarts (whistle or kept calls)",
            st.restarts.to_string(),
        ),
        (
            "generalized",
            "locations generalized",
            st.generalized.to_string(),
        ),
        (
            "bta-visits",
            "instruction visits by BTA time (static / dynamic / lifted / unanalysed)",
            format!(
                "{} / {} / {} / {}",
                st.bta.static_, st.bta.dynamic, st.bta.lifted, st.bta.unanalysed
            ),
        ),
        (
            "bta-online",
            "dynamic visits emitted without evaluation / refined online",
            format!("{} / {}", st.bta.emitted, st.bta.refined),
        ),
        (
            "time",
            "time (specialize and optimize)",
            format!("{:.2} s", s.time.as_secs_f64()),
        ),
    ];
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"figures\">\n");
    for (id, label, value) in rows {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td id=\"fig-{id}\">{}</td></tr>",
            esc(label),
            esc(&value)
        );
    }
    out.push_str("</table>\n");
    let warnings = residual.warnings();
    if !warnings.is_empty() {
        out.push_str("<h3>Warnings</h3>\n<ul id=\"warnings\" class=\"warnings\">\n");
        for w in warnings {
            let _ = writeln!(out, "<li>warning: {}</li>", esc(&w.to_string()));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

/// The legend of the binding-time colours.
fn legend(out: &mut String) {
    out.push_str("<p class=\"legend\">Binding times (the BTA's, in the context of the function's entry, as the specializer read them): ");
    for t in [Time::Static, Time::Dynamic, Time::Lifted, Time::Unknown] {
        let _ = write!(out, "<span class=\"ins {0}\">{0}</span> ", t.name());
    }
    out.push_str(
        "The last column counts the residual instructions that came from each instruction. \
         The specializer refines these times online: a Dynamic instruction whose inputs the \
         store knows is evaluated, a Static one whose inputs were generalized leaves code.</p>\n",
    );
}

/// The original function: the graph (or why there is none), then every
/// block's listing, successors and copies.
fn original_section(
    out: &mut String,
    residual: &Residual,
    original: &wiper_x86::Function,
    model: &Model<'_>,
    graph: &Graph,
) {
    let binary = &*residual.binary;
    let _ = writeln!(
        out,
        "<section id=\"original\">\n<h2>Original function: {} blocks, {} instructions</h2>",
        original.blocks.len(),
        original.instruction_count()
    );
    legend(out);
    match graph {
        Graph::Svg(svg) => {
            out.push_str("<div class=\"graph\">\n");
            out.push_str(svg);
            out.push_str("</div>\n");
        }
        Graph::Off => out.push_str("<p class=\"nograph\">Graph not drawn (Graphviz turned off); the blocks and their successors follow.</p>\n"),
        Graph::Unavailable(why) => {
            let _ = writeln!(
                out,
                "<p class=\"nograph\">Graph not drawn: {}; the blocks and their successors follow.</p>",
                esc(why)
            );
        }
    }
    let mut printer = InstructionPrinter::new(binary, Syntax::Intel);
    for block in original.blocks.values() {
        original_block(out, binary, &mut printer, block, model);
    }
    out.push_str("</section>\n");
}

/// One original block: its instructions, successors and copies.
fn original_block(
    out: &mut String,
    binary: &wiper_elf::Binary,
    printer: &mut InstructionPrinter<'_>,
    block: &wiper_x86::Block,
    model: &Model<'_>,
) {
    let copies = model.copies_of(block.start);
    let reached = !model.recorded || !copies.is_empty();
    let _ = writeln!(
        out,
        "<div class=\"oblock{}\" id=\"ob-{:x}\" data-copies=\"{}\">\n<h3>block {:#010x} <span class=\"copies\">{}</span></h3>\n<table class=\"code\">",
        if reached { "" } else { " unreached" },
        block.start,
        copies.len(),
        block.start,
        copies_text(model, copies.len())
    );
    for ins in &block.instructions {
        let addr = ins.ip32();
        let time = model.time(addr);
        let uses = model.uses.get(&addr).copied().unwrap_or_default();
        let uses_text: Vec<String> = OriginKind::ALL
            .iter()
            .filter(|k| uses[**k as usize] > 0)
            .map(|k| format!("{} {}", uses[*k as usize], k.word()))
            .collect();
        let _ = writeln!(
            out,
            "<tr class=\"ins {}\" id=\"o-{addr:x}\" data-o=\"{addr:x}\" title=\"{}\"><td class=\"a\">{addr:08x}</td><td class=\"b\">{}</td><td class=\"t\">{}</td><td class=\"bt\">{}</td><td class=\"u\">{}</td></tr>",
            time.name(),
            time.name(),
            bytes_text(&binary.read(addr, ins.len() as u32).unwrap_or_default()),
            esc(&printer.format(ins)),
            &time.name()[..1].to_uppercase(),
            esc(&uses_text.join(", "))
        );
    }
    let succs: Vec<String> = block
        .successors
        .iter()
        .map(|s| esc(&format::successor_text(binary, s)))
        .collect();
    let _ = writeln!(
        out,
        "</table>\n<p class=\"succ\">&rarr; {}</p>",
        succs.join(", ")
    );
    copies_list(out, model, copies);
    out.push_str("</div>\n");
}

/// `1 copy`, `3 copies`, `not reached` or `copies not recorded`.
fn copies_text(model: &Model<'_>, n: usize) -> String {
    match n {
        _ if !model.recorded => "copies not recorded".to_owned(),
        0 => "not reached at specialization time".to_owned(),
        1 => "1 copy".to_owned(),
        n => format!("{n} copies"),
    }
}

/// The copies of a block and why they are copies: the static values that
/// tell them apart (for one copy, its whole static store).
fn copies_list(out: &mut String, model: &Model<'_>, copies: &[&PointSummary]) {
    if copies.is_empty() {
        return;
    }
    let locs = if copies.len() > 1 {
        differing(copies)
    } else {
        copies[0].statics.iter().map(|(l, _)| l.clone()).collect()
    };
    let why = if copies.len() > 1 {
        format!(
            "{} copies, one per static store; they differ in {}",
            copies.len(),
            locs.join(", ")
        )
    } else {
        "1 copy; its static store".to_owned()
    };
    let _ = writeln!(
        out,
        "<details class=\"copylist\"{}><summary>{}</summary><ul>",
        if copies.len() > 1 { " open" } else { "" },
        esc(&why)
    );
    for p in copies.iter().take(MAX_COPIES_LISTED) {
        let values: Vec<String> = locs
            .iter()
            .map(|l| format!("{l} = {}", value_of(p, l)))
            .collect();
        let _ = writeln!(
            out,
            "<li class=\"copy\">{}: {}</li>",
            label_link(model, p.label),
            esc(&values.join(", "))
        );
    }
    if copies.len() > MAX_COPIES_LISTED {
        let _ = writeln!(
            out,
            "<li>and {} more</li>",
            copies.len() - MAX_COPIES_LISTED
        );
    }
    out.push_str("</ul></details>\n");
}

/// A link to the residual block `label`, or the label and what became of
/// it when the optimizer merged it into another block or removed it.
fn label_link(model: &Model<'_>, label: Label) -> String {
    if model.emitted.contains(&label) {
        format!("<a href=\"#rb-{label}\">{label}</a>")
    } else {
        format!("{label} <span class=\"gone\" title=\"merged into another block or removed by the optimizer\">(merged)</span>")
    }
}

/// Code bytes as `8b 54 24 0c`.
fn bytes_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The residual code: its blocks as the encoder laid them out, each
/// instruction with its origin, each block with the point it specializes
/// and its successors.
fn residual_section(out: &mut String, residual: &Residual, model: &Model<'_>) {
    let enc = &residual.encoded;
    let _ = writeln!(
        out,
        "<section id=\"residual\">\n<h2>Residual code: {} instructions, {} bytes at {:#010x}, entry {:#010x}</h2>",
        enc.instruction_count,
        enc.code_size(),
        enc.code_vaddr,
        enc.entry_vaddr
    );
    out.push_str("<p class=\"legend\">After the optimizer, as <code>wiper specialize --emit asm</code> lists it. Each instruction names the original instruction it came from and how; hover or click it to see that instruction, click an original instruction to see its residual code.</p>\n");
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for &(reg, addr) in &enc.thunks {
        names.insert(
            addr,
            format!("pc_thunk.{}", format!("{reg:?}").to_lowercase()),
        );
    }
    for (label, addr) in &enc.labels {
        names.entry(*addr).or_insert_with(|| label.to_string());
    }
    let mut printer = InstructionPrinter::new(&residual.binary, Syntax::Intel);
    let mut index = 0;
    let mut open = false;
    for line in enc.lines.iter().filter(|l| l.address >= enc.code_vaddr) {
        let labels: Vec<Label> = line
            .block
            .iter()
            .chain(&line.empty_blocks)
            .copied()
            .collect();
        if !labels.is_empty() || !open {
            if open {
                out.push_str("</table>\n</div>\n");
            }
            residual_block_head(out, residual, model, &labels);
            open = true;
        }
        let mut text = printer.format(&line.instruction);
        // A near branch's target (0 for other instructions), named as the
        // listing names it.
        let target = line.instruction.near_branch_target() as u32;
        if let Some(name) = names.get(&target).filter(|_| target != 0) {
            let _ = write!(text, " <{name}>");
        }
        residual_row(out, residual, model, line, &text, &mut index);
    }
    if open {
        out.push_str("</table>\n</div>\n");
    }
    out.push_str("</section>\n");
}

/// The heading of a residual block named by `labels` (the block that starts
/// here, then blocks without instructions that resolve here): the point it
/// specializes, and its successors.
fn residual_block_head(out: &mut String, residual: &Residual, model: &Model<'_>, labels: &[Label]) {
    let Some(&label) = labels.first() else {
        out.push_str("<div class=\"rblock\">\n<h3>(no label)</h3>\n<table class=\"code\">\n");
        return;
    };
    let _ = write!(out, "<div class=\"rblock\" id=\"rb-{label}\">");
    for l in &labels[1..] {
        let _ = write!(out, "<a id=\"rb-{l}\"></a>");
    }
    let _ = write!(out, "\n<h3>{label}");
    if let Some(p) = model.by_label.get(&label) {
        point_text(out, model, p);
    } else if model.made.contains(&label) {
        out.push_str(
            " <span class=\"pt\">made by the optimizer (code it moved before the old entry, and the blocks merged into it)</span>",
        );
    }
    out.push_str("</h3>\n");
    if let Some(block) = residual.result.residual.block(label) {
        let mut succ: Vec<String> = block
            .successors()
            .iter()
            .map(|l| format!("<a href=\"#rb-{l}\">{l}</a>"))
            .collect();
        if succ.is_empty() {
            succ.push("exit".to_owned());
        }
        let _ = writeln!(
            out,
            "<p class=\"succ\">ends with <code>{}</code> &rarr; {}</p>",
            esc(&block.terminator.to_string()),
            succ.join(", ")
        );
    }
    out.push_str("<table class=\"code\">\n");
}

/// What the point `p` (the residual block's) specializes: its original
/// address and the static values that set it apart from the other copies
/// of its block, with its whole static store on hover.
fn point_text(out: &mut String, model: &Model<'_>, p: &PointSummary) {
    let store: Vec<String> = p
        .statics
        .iter()
        .map(|(l, v)| format!("{l} = {v}"))
        .collect();
    let at = if model.instructions.contains(&p.address) {
        format!("<a href=\"#o-{0:x}\">{0:#010x}</a>", p.address)
    } else {
        format!("{:#010x} (function {:#x})", p.address, p.function)
    };
    let _ = write!(
        out,
        " <span class=\"pt\" title=\"static store: {}\">specializes {at}",
        esc(&store.join(", "))
    );
    let copies = model.copies_of(p.address);
    if p.function == model.entry && copies.len() > 1 {
        let values: Vec<String> = differing(copies)
            .iter()
            .map(|l| format!("{l} = {}", value_of(p, l)))
            .collect();
        let _ = write!(
            out,
            " (copy for {}; {} copies)",
            esc(&values.join(", ")),
            copies.len()
        );
    }
    out.push_str("</span>");
}

/// One residual instruction; `index` counts those with an origin.
fn residual_row(
    out: &mut String,
    residual: &Residual,
    model: &Model<'_>,
    line: &wiper_emit::Line,
    text: &str,
    index: &mut usize,
) {
    let at = line.address.wrapping_sub(residual.encoded.load_vaddr) as usize;
    let bytes = residual
        .encoded
        .code
        .get(at..at.saturating_add(line.instruction.len()))
        .unwrap_or_default();
    let Some(origin) = line.origin else {
        let _ = writeln!(
            out,
            "<tr class=\"ins trap\"><td class=\"a\">{:08x}</td><td class=\"b\">{}</td><td class=\"t\">{}</td><td class=\"o\">trap: the exit block could fall through</td></tr>",
            line.address,
            bytes_text(bytes),
            esc(text)
        );
        return;
    };
    let kind = OriginKind::of(origin);
    let addr = origin.address();
    let (attr, shown) = if model.instructions.contains(&addr) {
        (
            format!("data-from=\"{addr:x}\""),
            format!("<a href=\"#o-{addr:x}\">{}</a>", esc(&origin.to_string())),
        )
    } else {
        let name = format::symbolize(&residual.binary, addr)
            .map(|s| format!(" &lt;{}&gt;", esc(&s)))
            .unwrap_or_default();
        (
            format!("data-ext=\"{addr:x}\""),
            format!("{}{name} (another function)", esc(&origin.to_string())),
        )
    };
    let _ = writeln!(
        out,
        "<tr class=\"ins {}\" id=\"r-{index}\" data-r=\"{index}\" data-how=\"{}\" {attr} title=\"{} {addr:#x}\"><td class=\"a\">{:08x}</td><td class=\"b\">{}</td><td class=\"t\">{}</td><td class=\"o\">{shown}</td></tr>",
        kind.word(),
        kind.word(),
        kind.meaning(),
        line.address,
        bytes_text(bytes),
        esc(text),
    );
    *index += 1;
}
