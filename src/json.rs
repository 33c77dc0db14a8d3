//! The pieces of `--format json` that several commands share: an address
//! ([`hex`], the one home of how JSON outputs write one), a control-flow
//! graph, a residual listing, the summary figures and a program run.
//! Keys come out in alphabetical order (serde_json's maps are sorted).

use serde_json::{json, Value};
use wiper_elf::Binary;
use wiper_x86::{format, CallTarget, Function, Successor, Syntax};

use crate::callgrind::Counted;
use crate::Residual;

/// An address as JSON: a `"0x..."` string ([`format::hex_address`]), so
/// that no reader loses bits.
pub(crate) fn hex(addr: u32) -> Value {
    Value::String(format::hex_address(addr))
}

/// `v` as the text a command prints: indented, with a final newline.
pub(crate) fn to_text(v: &Value) -> String {
    format!("{v:#}\n")
}

/// The name of `syntax` as `--syntax` takes it.
fn syntax_name(syntax: Syntax) -> &'static str {
    match syntax {
        Syntax::Intel => "intel",
        Syntax::Gas => "gas",
    }
}

/// The control-flow graph `wiper disasm` lists, as JSON: the function's
/// name (`null` without a symbol) and entry, and per block its start, end,
/// instructions (address, bytes, text in `syntax`), jump table and
/// successors.
pub(crate) fn cfg(binary: &Binary, f: &Function, syntax: Syntax) -> Value {
    let mut printer = format::InstructionPrinter::new(binary, syntax);
    let blocks: Vec<Value> = f
        .blocks
        .values()
        .map(|block| {
            let instructions: Vec<Value> = block
                .instructions
                .iter()
                .map(|ins| {
                    json!({
                        "address": hex(ins.ip32()),
                        "bytes": format::bytes_text(&format::instruction_bytes(binary, ins)),
                        "text": printer.format(ins),
                    })
                })
                .collect();
            let jump_table = block.jump_table.as_ref().map(|t| {
                json!({
                    "table": hex(t.table),
                    "entries": t.targets.len(),
                    "relative_to": t.relative_to.map(hex),
                })
            });
            json!({
                "start": hex(block.start),
                "end": hex(block.end()),
                "instructions": instructions,
                "jump_table": jump_table,
                "successors": successors(binary, &block.successors),
            })
        })
        .collect();
    json!({
        "function": f.name,
        "entry": hex(f.entry),
        "syntax": syntax_name(syntax),
        "block_count": f.blocks.len(),
        "instruction_count": f.instruction_count(),
        "blocks": blocks,
    })
}

/// A block's successors as JSON: each its `kind` (the first word of the
/// text listing's `-> ...`: `fall-through`, `jump`, `taken`, `not-taken`,
/// `case`, `call`, `tail-call`, `return`, `indirect-jump`, `halt`), its
/// `target` address when it has one, the `index` of a case, the callee's
/// `name`, and the `text` as the listing shows it.
pub(crate) fn successors(binary: &Binary, successors: &[Successor]) -> Value {
    successors
        .iter()
        .map(|s| {
            let text = format::successor_text(binary, s);
            let kind = text.split(' ').next().unwrap_or_default().to_owned();
            let mut v = json!({"kind": kind, "text": text});
            match s {
                Successor::FallThrough(a)
                | Successor::Jump(a)
                | Successor::Taken(a)
                | Successor::NotTaken(a) => v["target"] = hex(*a),
                Successor::Case { index, target } => {
                    v["target"] = hex(*target);
                    v["index"] = json!(index);
                }
                Successor::Call(t) | Successor::TailCall(t) => match t {
                    CallTarget::Function(a) => {
                        v["target"] = hex(*a);
                        v["name"] = json!(format::symbolize(binary, *a));
                    }
                    CallTarget::Import { addr, name } => {
                        v["target"] = hex(*addr);
                        v["name"] = json!(format!("{name}@plt"));
                    }
                    CallTarget::Absent => v["target"] = hex(0),
                    CallTarget::Indirect => {}
                },
                Successor::Return | Successor::IndirectJump | Successor::Halt => {}
            }
            v
        })
        .collect()
}

/// The residual listing `--emit asm` prints, as JSON: where the code is,
/// its instruction count and size, and per item (PC thunks and traps
/// included) its address, bytes, text in `syntax`, the label lines before
/// it, its origin (`kind` and original `address`, `null` for a thunk or a
/// trap) and the listing's comment as `annotation`.
pub(crate) fn listing(sp: &Residual, syntax: Syntax) -> Value {
    let items: Vec<Value> = wiper_emit::listing_items(&sp.binary, &sp.encoded, syntax)
        .into_iter()
        .map(|item| {
            json!({
                "address": hex(item.address),
                "bytes": format::bytes_text(&item.bytes),
                "text": item.text,
                "labels": item.labels,
                "origin": item.origin.map(|o| json!({"kind": o.kind(), "address": hex(o.address())})),
                "annotation": item.annotation,
            })
        })
        .collect();
    json!({
        "syntax": syntax_name(syntax),
        "code_address": hex(sp.encoded.code_vaddr),
        "entry": hex(sp.encoded.entry_vaddr),
        "instruction_count": sp.encoded.instruction_count,
        "bytes": sp.encoded.code_size(),
        "items": items,
    })
}

/// The figures of the summary line, as JSON (`seconds` varies from run to
/// run), with where the residual code loads (relative to the load base in
/// a PIE) and the warnings.
pub(crate) fn summary(sp: &Residual) -> Value {
    let s = sp.summary();
    json!({
        "function": s.function,
        "original_instructions": s.original_instructions,
        "residual_instructions": s.residual_instructions,
        "residual_bytes": s.residual_bytes,
        "reduced": s.reduced,
        "proved": s.proved,
        "fallbacks": s.fallbacks,
        "jumps_into_original": s.left,
        "seconds": s.time.as_secs_f64(),
        "load_address": hex(sp.encoded.load_vaddr),
        "pie": sp.plan.pie,
        "warnings": sp.warnings().iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// A program run as JSON: `exit_status` (`null` when killed or timed
/// out), `signal` and `signal_name` (`null` unless killed), `timed_out`
/// (with `timeout_seconds`), and `stdout` and `stderr` as text (invalid
/// UTF-8 replaced; `null` when timed out).
pub(crate) fn run(outcome: &wiper_run::Outcome) -> Value {
    match outcome {
        wiper_run::Outcome::Finished(r) => {
            let signal = match r.status {
                wiper_run::Termination::Signaled(n) => Some(n),
                wiper_run::Termination::Exited(_) => None,
            };
            json!({
                "timed_out": false,
                "exit_status": r.status.code(),
                "signal": signal,
                "signal_name": signal.map(wiper_run::signal_name),
                "stdout": r.stdout_str(),
                "stderr": r.stderr_str(),
            })
        }
        wiper_run::Outcome::TimedOut(t) => json!({
            "timed_out": true,
            "timeout_seconds": t.as_secs_f64(),
            "exit_status": null,
            "signal": null,
            "signal_name": null,
            "stdout": null,
            "stderr": null,
        }),
    }
}

/// What callgrind counted of a run, as JSON: `total`, the instructions
/// `in_function` over its `calls` and `per_call` (`null` without a call),
/// or why it was `not_counted`.
pub(crate) fn counted(count: &anyhow::Result<Counted>) -> Value {
    match count {
        Ok(c) => {
            let calls = c.function.calls;
            json!({
                "total": c.total,
                "in_function": c.function.instructions,
                "calls": calls,
                "per_call": (calls > 0).then(|| c.function.instructions as f64 / calls as f64),
            })
        }
        Err(e) => json!({"not_counted": format!("{e:#}")}),
    }
}
