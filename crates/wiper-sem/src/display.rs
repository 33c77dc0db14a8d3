//! Printing parts with their formulas, one shared layout for `wiper lift`
//! and the generated `docs/semantics.md`:
//!
//! ```text
//!     lea    esp,[esp-0x4]            esp := esp - 0x4
//!     mov    DWORD PTR [esp],ebp      mem := store32(mem, esp, ebp)
//! ```

use wiper_qfbv::{ExprPool, Printer};

use crate::part::{Barrier, Part, Value};

/// Column at which formulas start (after a 4-space indent and the text).
const FORMULA_COLUMN: usize = 40;

/// The lines of `part`: its text, then one `dst := formula` per effect (the
/// first on the text's line), the divide-error condition as `#DE if …`, or
/// the barrier; an opaque part first lists what it reads (`opaque, reads
/// …`). Formulas are cut at `max_len` bytes.
pub fn part_lines(pool: &ExprPool, part: &Part, max_len: usize) -> Vec<String> {
    let printer = Printer::infix().with_max_len(max_len);
    let mut notes: Vec<String> = Vec::new();
    if let Some(o) = &part.opaque {
        let inputs: Vec<String> = o.inputs.iter().map(|x| printer.print(pool, *x)).collect();
        notes.push(format!("opaque, reads {}", inputs.join(", ")));
    }
    notes.extend(part.effects.iter().map(|e| match e.value {
        Value::Expr(x) => format!("{} := {}", e.dst, printer.print(pool, x)),
        Value::Undefined => format!("{} := undefined", e.dst),
    }));
    if let Some(c) = part.fault {
        notes.push(format!("#DE if {}", printer.print(pool, c)));
    }
    match part.barrier {
        Some(Barrier::Syscall) => notes.push("barrier: system call".to_owned()),
        Some(Barrier::Halt) => notes.push("barrier: halt".to_owned()),
        None => {}
    }
    let head = format!("    {}", part.text);
    let mut notes = notes.into_iter();
    let Some(first) = notes.next() else {
        return vec![head];
    };
    let first = if head.chars().count() + 2 <= FORMULA_COLUMN {
        format!("{head:<FORMULA_COLUMN$}{first}")
    } else {
        format!("{head}  {first}")
    };
    std::iter::once(first)
        .chain(notes.map(|n| format!("{:FORMULA_COLUMN$}{n}", "")))
        .collect()
}
