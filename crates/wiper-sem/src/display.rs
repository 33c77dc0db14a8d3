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

/// What [`part_lines`] shows of a part, as fields (`wiper lift --format
/// json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartText {
    /// `assignment`, `opaque` (an instruction without formulas) or
    /// `barrier`.
    pub kind: &'static str,
    /// What an opaque part reads, as formulas; empty for the others.
    pub reads: Vec<String>,
    /// Per effect its destination and formula (`undefined` for a value the
    /// manual leaves undefined).
    pub effects: Vec<(String, String)>,
    /// The divide-error condition: #DE when it holds.
    pub fault: Option<String>,
    /// The barrier: `system call` or `halt`.
    pub barrier: Option<&'static str>,
}

impl PartText {
    /// The notes after the part's text, one per line: `opaque, reads …`,
    /// `dst := formula`, `#DE if …`, `barrier: …`.
    fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = Vec::new();
        if self.kind == "opaque" {
            notes.push(format!("opaque, reads {}", self.reads.join(", ")));
        }
        notes.extend(self.effects.iter().map(|(dst, f)| format!("{dst} := {f}")));
        if let Some(c) = &self.fault {
            notes.push(format!("#DE if {c}"));
        }
        if let Some(b) = self.barrier {
            notes.push(format!("barrier: {b}"));
        }
        notes
    }
}

/// The fields of `part`: its kind, and its formulas cut at `max_len`
/// bytes.
pub fn part_text(pool: &ExprPool, part: &Part, max_len: usize) -> PartText {
    let printer = Printer::infix().with_max_len(max_len);
    let barrier = part.barrier.map(|b| match b {
        Barrier::Syscall => "system call",
        Barrier::Halt => "halt",
        Barrier::SegmentBase => "segment base change",
    });
    let kind = match (&part.opaque, barrier) {
        (Some(_), _) => "opaque",
        (None, Some(_)) => "barrier",
        (None, None) => "assignment",
    };
    PartText {
        kind,
        reads: part
            .opaque
            .iter()
            .flat_map(|o| &o.inputs)
            .map(|x| printer.print(pool, *x))
            .collect(),
        effects: part
            .effects
            .iter()
            .map(|e| {
                let value = match e.value {
                    Value::Expr(x) => printer.print(pool, x),
                    Value::Undefined => "undefined".to_owned(),
                };
                (e.dst.to_string(), value)
            })
            .collect(),
        fault: part.fault.map(|c| printer.print(pool, c)),
        barrier,
    }
}

/// The lines of `part`: its text, then one `dst := formula` per effect (the
/// first on the text's line), the divide-error condition as `#DE if …`, or
/// the barrier; an opaque part first lists what it reads (`opaque, reads
/// …`). Formulas are cut at `max_len` bytes.
pub fn part_lines(pool: &ExprPool, part: &Part, max_len: usize) -> Vec<String> {
    let notes = part_text(pool, part, max_len).notes();
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
