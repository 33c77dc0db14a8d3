//! Printing an [`Analysis`]: the classified listing `wiper bta` shows, the
//! dependence graph as Graphviz dot, and JSON for scripts.

use std::fmt::Write as _;

use wiper_elf::Binary;
use wiper_x86::{format, CallTarget, Syntax};

use crate::graph::{EdgeKind, Node};
use crate::stack::Offset;
use crate::{Analysis, BindingTime, CallSite};

/// Column at which the static reads of a Lifted part start.
const READS_COLUMN: usize = 44;

fn function_name(binary: &Binary, a: &Analysis) -> String {
    a.function
        .name
        .clone()
        .or_else(|| binary.name_of(a.function.entry))
        .unwrap_or_else(|| format!("{:#010x}", a.function.entry))
}

fn target_text(binary: &Binary, t: &CallTarget) -> String {
    match t {
        CallTarget::Function(addr) => match format::symbolize(binary, *addr) {
            Some(s) => format!("{addr:#010x} <{s}>"),
            None => format!("{addr:#010x}"),
        },
        CallTarget::Import { name, .. } => format!("<{name}@plt>"),
        CallTarget::Indirect => "indirect".to_owned(),
        CallTarget::Absent => "0x00000000 (absent)".to_owned(),
    }
}

fn letter(dynamic: bool) -> char {
    if dynamic {
        'D'
    } else {
        'S'
    }
}

fn call_line(binary: &Binary, c: &CallSite) -> String {
    let kind = if c.tail { "tail call" } else { "call" };
    let mut s = format!("{kind} {}", target_text(binary, &c.target));
    if let Some(p) = c.pattern {
        let args: Vec<String> = (0..c.arg_count)
            .map(|k| format!("arg{k} {}", if p.arg(k) { 'S' } else { 'D' }))
            .collect();
        if !args.is_empty() {
            let _ = write!(s, " ({})", args.join(", "));
        }
    } else if !c.analysed {
        s.push_str(" (not analysed: calling convention)");
    }
    let outs: Vec<String> = c
        .outputs
        .iter()
        .map(|(o, d)| format!("{o} {}", letter(*d)))
        .collect();
    let _ = write!(s, ": {}", outs.join(", "));
    s
}

/// The classified listing: every instruction with its parts, each part
/// prefixed with `S`, `D` or `L`, the static locations each Lifted part
/// reads, the call summaries, and counts.
pub fn listing(binary: &Binary, a: &Analysis) -> String {
    let mut printer = format::InstructionPrinter::new(binary, Syntax::Intel);
    let (s, d, l) = a.counts();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "function {} at {:#010x}: {} blocks, {} instructions, {} parts",
        function_name(binary, a),
        a.function.entry,
        a.function.blocks.len(),
        a.function.instruction_count(),
        a.parts.len()
    );
    let _ = writeln!(out, "static inputs: {}", a.spec);
    let _ = writeln!(
        out,
        "binding times: {s} static, {d} dynamic, {l} lifted{}",
        if a.escaped { " (frame escapes)" } else { "" }
    );
    let mut current_block = None;
    for ins in &a.instructions {
        if current_block != Some(ins.block) {
            if let Some(prev) = current_block {
                successors_line(binary, a, prev, &mut out);
            }
            current_block = Some(ins.block);
            let _ = writeln!(out, "\nblock {:#010x}:", ins.block);
        }
        let text = printer.format(&ins.instruction);
        let head = format!("{:08x}  {text}", ins.address);
        match ins.parts.clone().next() {
            Some(first) => {
                let st = a.stack[first as usize];
                let mut note = format!("esp={}", st.esp);
                if st.ebp != Offset::Unknown {
                    let _ = write!(note, " ebp={}", st.ebp);
                }
                let _ = writeln!(out, "{head:<48}; {note}");
            }
            None => {
                let _ = writeln!(out, "{head}");
            }
        }
        for p in ins.parts.clone() {
            let info = &a.parts[p as usize];
            let b = &a.binding[p as usize];
            let line = format!("  {}  {}", b.letter(), info.part.text);
            match b {
                BindingTime::Lifted(reads) => {
                    let list: Vec<String> = reads.iter().map(|r| r.to_string()).collect();
                    let _ = writeln!(
                        out,
                        "{line:<READS_COLUMN$}  [reads static: {}]",
                        list.join(", ")
                    );
                }
                _ => {
                    let _ = writeln!(out, "{line}");
                }
            }
            if let Some(c) = a.call_at(info.id) {
                let _ = writeln!(out, "       {}", call_line(binary, c));
            }
        }
    }
    if let Some(prev) = current_block {
        successors_line(binary, a, prev, &mut out);
    }
    let outs: Vec<String> = a
        .outputs
        .iter()
        .map(|(o, d)| format!("{o} {}", letter(*d)))
        .collect();
    let _ = writeln!(out, "\nat exit: {}", outs.join(", "));
    out
}

fn successors_line(binary: &Binary, a: &Analysis, block: u32, out: &mut String) {
    if let Some(b) = a.function.blocks.get(&block) {
        let succs: Vec<String> = b
            .successors
            .iter()
            .map(|s| format::successor_text(binary, s))
            .collect();
        let _ = writeln!(out, "  -> {}", succs.join(", "));
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

const GREEN: &str = "#b7e4b7";
const RED: &str = "#f4a6a6";
const ORANGE: &str = "#f9c784";

/// The dependence graph in Graphviz dot: parts as boxes, inputs as
/// ellipses, call outputs as diamonds; static nodes green, dynamic red,
/// lifted orange. Inputs nothing depends on are left out.
pub fn dot(binary: &Binary, a: &Analysis) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "digraph \"bta {}\" ",
        dot_escape(&function_name(binary, a))
    );
    out.push_str("{\n");
    let _ = writeln!(
        out,
        "  node [fontname=\"monospace\", fontsize=10, style=filled];\n  edge [fontname=\"monospace\", fontsize=9];"
    );
    let used: std::collections::HashSet<_> = a.graph.edges().map(|(f, _, _)| f).collect();
    for (id, node) in a.graph.nodes() {
        if matches!(node, Node::Entry(_)) && !used.contains(&id) {
            continue;
        }
        let (shape, label, color) = dot_node(binary, a, id, &node);
        let _ = writeln!(
            out,
            "  n{} [shape={shape}, label=\"{}\", fillcolor=\"{color}\"];",
            id.0,
            dot_escape(&label)
        );
    }
    let mut edges: Vec<_> = a.graph.edges().collect();
    edges.sort_by_key(|(f, t, _)| (*f, *t));
    for (f, t, k) in edges {
        let style = match k {
            EdgeKind::Control => ", style=dashed",
            EdgeKind::CallInput => ", style=dotted",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  n{} -> n{} [label=\"{}\"{style}];",
            f.0,
            t.0,
            dot_escape(&k.to_string())
        );
    }
    out.push_str("}\n");
    out
}

/// The shape, label and colour of one node of [`dot`].
fn dot_node(
    binary: &Binary,
    a: &Analysis,
    id: crate::graph::NodeId,
    node: &Node,
) -> (&'static str, String, &'static str) {
    let dynamic = a.is_dynamic(id);
    let by_time = if dynamic { RED } else { GREEN };
    match node {
        Node::Entry(i) => ("ellipse", format!("entry {i}"), by_time),
        Node::Part(p) => {
            let info = &a.parts[p.index()];
            let b = &a.binding[p.index()];
            let color = match b {
                BindingTime::Static => GREEN,
                BindingTime::Dynamic => RED,
                BindingTime::Lifted(_) => ORANGE,
            };
            let text = info
                .part
                .text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let label = format!(
                "{:08x}.{} {} {text}",
                info.address,
                info.part.index,
                b.letter()
            );
            ("box", label, color)
        }
        Node::Call(c) => (
            "hexagon",
            format!("call {}", target_text(binary, &a.calls[*c].target)),
            by_time,
        ),
        Node::CallOut(_, o) => ("diamond", format!("{o}"), by_time),
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn binding_name(b: &BindingTime) -> &'static str {
    match b {
        BindingTime::Static => "static",
        BindingTime::Dynamic => "dynamic",
        BindingTime::Lifted(_) => "lifted",
    }
}

/// The analysis as JSON: the function, its entry, the spec, counts, and per
/// part its address, index, text, binding time, static reads and stack
/// state; the call sites; the outputs at exit. Addresses are `"0x..."`
/// strings ([`format::hex_address`]).
pub fn json(binary: &Binary, a: &Analysis) -> String {
    let (s, d, l) = a.counts();
    let mut out = String::new();
    out.push_str("{\n");
    let _ = writeln!(
        out,
        "  \"function\": {},",
        json_str(&function_name(binary, a))
    );
    let _ = writeln!(
        out,
        "  \"entry\": \"{}\",",
        format::hex_address(a.function.entry)
    );
    let statics: Vec<String> = a
        .spec
        .entries
        .iter()
        .map(|e| json_str(&e.to_string()))
        .collect();
    let _ = writeln!(out, "  \"static\": [{}],", statics.join(", "));
    let _ = writeln!(
        out,
        "  \"counts\": {{\"static\": {s}, \"dynamic\": {d}, \"lifted\": {l}}},"
    );
    let _ = writeln!(out, "  \"arg_count\": {},", a.arg_count);
    let _ = writeln!(out, "  \"escaped\": {},", a.escaped);
    out.push_str("  \"parts\": [\n");
    for i in 0..a.parts.len() {
        out.push_str(&part_json(a, i));
        out.push_str(if i + 1 < a.parts.len() { ",\n" } else { "\n" });
    }
    out.push_str("  ],\n  \"calls\": [\n");
    for (i, c) in a.calls.iter().enumerate() {
        out.push_str(&call_json(binary, c));
        out.push_str(if i + 1 < a.calls.len() { ",\n" } else { "\n" });
    }
    out.push_str("  ],\n  \"outputs\": [");
    out.push_str(&outputs_json(&a.outputs));
    out.push_str("]\n}\n");
    out
}

/// Part `i` of the analysis as one JSON object (a line of `json`'s
/// `parts`): address, index, text, binding time, static reads, accesses and
/// stack state.
fn part_json(a: &Analysis, i: usize) -> String {
    let p = &a.parts[i];
    let b = &a.binding[i];
    let reads: Vec<String> = match b {
        BindingTime::Lifted(r) => r.iter().map(|x| json_str(&x.to_string())).collect(),
        _ => Vec::new(),
    };
    let st = a.stack[i];
    let off = |o: Offset| match o {
        Offset::Known(c) => c.to_string(),
        Offset::Unknown => "null".to_owned(),
    };
    let accesses: Vec<String> = a.accesses[i]
        .iter()
        .map(|x| {
            let k = match x.kind {
                crate::AccessKind::Read => "read",
                crate::AccessKind::Write => "write",
                crate::AccessKind::MayWrite => "may-write",
            };
            format!("{{\"{k}\": {}}}", json_str(&x.loc.to_string()))
        })
        .collect();
    format!(
        "    {{\"id\": {i}, \"address\": \"{}\", \"index\": {}, \"text\": {}, \"binding\": \"{}\", \"static_reads\": [{}], \"accesses\": [{}], \"esp\": {}, \"ebp\": {}}}",
        format::hex_address(p.address),
        p.part.index,
        json_str(&p.part.text.split_whitespace().collect::<Vec<_>>().join(" ")),
        binding_name(b),
        reads.join(", "),
        accesses.join(", "),
        off(st.esp),
        off(st.ebp)
    )
}

/// One call site as a JSON object (a line of `json`'s `calls`).
fn call_json(binary: &Binary, c: &crate::CallSite) -> String {
    let static_args: Vec<String> = match c.pattern {
        Some(p) => (0..c.arg_count).map(|k| p.arg(k).to_string()).collect(),
        None => Vec::new(),
    };
    format!(
        "    {{\"part\": {}, \"target\": {}, \"tail\": {}, \"analysed\": {}, \"static_args\": [{}], \"outputs\": [{}]}}",
        c.jump.0,
        json_str(&target_text(binary, &c.target)),
        c.tail,
        c.analysed,
        static_args.join(", "),
        outputs_json(&c.outputs)
    )
}

/// A JSON array body of call or function outputs with their binding times.
fn outputs_json(outputs: &[(crate::CallOutput, bool)]) -> String {
    outputs
        .iter()
        .map(|(o, dynamic)| {
            format!(
                "{{\"output\": {}, \"binding\": \"{}\"}}",
                json_str(&o.to_string()),
                if *dynamic { "dynamic" } else { "static" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
