//! `wiper report`: one self-contained HTML page about a specialization.
//!
//! The page shows the original function's control-flow graph with every
//! instruction coloured by the binding time the specializer read for it
//! (the BTA's [`wiper_bta::InstructionTime`] in the context of the
//! function's entry: [`wiper_specialize::Specialization::entry_times`]),
//! the residual code as the `--emit asm` listing shows it (after the
//! optimizer), grouped into its blocks, the map between the two (each
//! residual instruction's [`wiper_residual::Origin`]; each original block's
//! copies, the specialization points at its start, with the static values
//! that tell them apart), and the summary figures. It reads only the
//! public outputs of the stages: the decoded function, the
//! [`wiper_specialize::Specialization`] (specialized with
//! [`wiper_specialize::Options::record_points`]), the optimized residual
//! and its encoding.
//!
//! The graph is drawn by Graphviz (`dot` on `PATH`, run with a timeout,
//! its SVG embedded) when asked for and available; the page is complete
//! without it (per-block listings with their successors as text are always
//! there). Apart from the time figure, the same input gives the same bytes.

mod graphviz;
mod html;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use wiper_bta::{InstructionTime, InstructionTimes};
use wiper_residual::{Label, Origin};
use wiper_specialize::PointSummary;
use wiper_x86::Disassembler;

use crate::commands::{self, FunctionArg};
use crate::{Error, Residual};

/// How the page is made.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Draw the original control-flow graph with Graphviz when `dot` is on
    /// `PATH` (otherwise, or when false, the page has the listings only).
    pub graphviz: bool,
}

impl Default for ReportOptions {
    /// Graphviz when available.
    fn default() -> Self {
        ReportOptions { graphviz: true }
    }
}

/// The page for `residual` (specialized for the static inputs `statics`,
/// shown as given). Its polyvariance figures need the specialization
/// points: specialize with [`wiper_specialize::Options::record_points`]
/// (without them each block shows its copies as not recorded).
pub fn page(
    residual: &Residual,
    statics: &[String],
    options: &ReportOptions,
) -> Result<String, Error> {
    let original = Disassembler::new(&residual.binary).function(residual.function.entry())?;
    let model = Model::new(residual, &original);
    let graph = if options.graphviz {
        graphviz::draw(&residual.binary, &original, &model)
    } else {
        graphviz::Graph::Off
    };
    Ok(html::page(residual, statics, &original, &model, &graph))
}

/// `wiper report`: specializes `function` of the binary at `path` for
/// `statics` (recording the specialization points) and writes the page to
/// `output` (never the input). The report for stderr: the summary line and
/// where the page went, and how its graph was drawn.
pub fn report<'a>(
    path: &Path,
    function: impl Into<FunctionArg<'a>>,
    statics: &[String],
    output: &Path,
    options: &wiper_specialize::Options,
    page_options: &ReportOptions,
) -> Result<commands::Report> {
    commands::check_output(path, Some(output))?;
    let options = wiper_specialize::Options {
        record_points: true,
        ..options.clone()
    };
    let sp = commands::specialize_path(path, function, statics, &options)?;
    let text = page(&sp, statics, page_options)
        .with_context(|| format!("{}: function {}", path.display(), sp.function().name()))?;
    std::fs::write(output, &text).with_context(|| format!("cannot write {}", output.display()))?;
    let drawn = if !page_options.graphviz {
        "without a graph (--no-graphviz)"
    } else if text.contains("<svg") {
        "with its graph drawn by Graphviz"
    } else {
        "without a graph (see the page)"
    };
    let mut stderr = commands::stderr_lines(&sp);
    stderr.push(format!(
        "wiper: report written to {} {drawn}",
        output.display()
    ));
    Ok(commands::Report {
        stderr,
        ..Default::default()
    })
}

/// What the page says about the original function, computed once from the
/// stages' outputs.
pub(crate) struct Model<'a> {
    /// The BTA's instruction times at the function's entry.
    times: Option<&'a InstructionTimes>,
    /// Every instruction address of the original function.
    instructions: BTreeSet<u32>,
    /// Residual instructions per original address, by [`OriginKind`].
    uses: BTreeMap<u32, [usize; OriginKind::ALL.len()]>,
    /// The points of the specialized function itself, by block start.
    copies: BTreeMap<u32, Vec<&'a PointSummary>>,
    /// Every point, by its residual block.
    by_label: BTreeMap<Label, &'a PointSummary>,
    /// Whether the points were recorded.
    recorded: bool,
    /// The specialized function's entry.
    entry: u32,
    /// The specializer's residual blocks the encoder laid out (others were
    /// merged into a predecessor or removed by the optimizer).
    emitted: BTreeSet<Label>,
    /// The blocks the optimizer made.
    made: &'a BTreeSet<Label>,
}

impl<'a> Model<'a> {
    /// The model of `residual`, whose original function is `original`.
    fn new(residual: &'a Residual, original: &wiper_x86::Function) -> Self {
        let result = &residual.result;
        let mut uses: BTreeMap<u32, [usize; OriginKind::ALL.len()]> = BTreeMap::new();
        for origin in residual.encoded.lines.iter().filter_map(|l| l.origin) {
            uses.entry(origin.address()).or_default()[OriginKind::of(origin) as usize] += 1;
        }
        let mut copies: BTreeMap<u32, Vec<&PointSummary>> = BTreeMap::new();
        for p in &result.points {
            if p.function == original.entry {
                copies.entry(p.address).or_default().push(p);
            }
        }
        Model {
            times: result.entry_times.as_ref(),
            instructions: original.instructions().map(|i| i.ip32()).collect(),
            uses,
            copies,
            by_label: result
                .points
                .iter()
                .filter(|p| !residual.made_labels.contains(&p.label))
                .map(|p| (p.label, p))
                .collect(),
            recorded: !result.points.is_empty(),
            entry: original.entry,
            emitted: residual
                .encoded
                .labels
                .keys()
                .filter(|l| !residual.made_labels.contains(l))
                .copied()
                .collect(),
            made: &residual.made_labels,
        }
    }

    /// The binding time of the instruction at `addr`.
    fn time(&self, addr: u32) -> Time {
        match self.times.and_then(|t| t.at(addr)) {
            Some(InstructionTime::Static) => Time::Static,
            Some(InstructionTime::Dynamic) => Time::Dynamic,
            Some(InstructionTime::Lifted) => Time::Lifted,
            None => Time::Unknown,
        }
    }

    /// The copies (points) of the block starting at `start`.
    fn copies_of(&self, start: u32) -> &[&'a PointSummary] {
        self.copies.get(&start).map_or(&[], Vec::as_slice)
    }
}

/// An instruction's binding time as the page colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Time {
    /// Every part Static: evaluated at specialization time.
    Static,
    /// Every part Dynamic: left in the residual code as it is.
    Dynamic,
    /// Lifted or mixed parts: static values folded into residual code.
    Lifted,
    /// Not analysed (the BTA failed on the function).
    Unknown,
}

impl Time {
    /// The CSS class and legend word.
    fn name(self) -> &'static str {
        match self {
            Time::Static => "static",
            Time::Dynamic => "dynamic",
            Time::Lifted => "lifted",
            Time::Unknown => "unanalysed",
        }
    }

    /// The background colour (page and graph agree).
    fn colour(self) -> &'static str {
        match self {
            Time::Static => "#d5f0d5",
            Time::Dynamic => "#f7cfcf",
            Time::Lifted => "#fbe0a8",
            Time::Unknown => "#e4e4e4",
        }
    }
}

/// The kinds of [`Origin`], in the order the page counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OriginKind {
    /// [`Origin::Original`].
    From,
    /// [`Origin::Reduced`].
    Reduced,
    /// [`Origin::Materialized`].
    Materialized,
    /// [`Origin::Fallback`].
    Fallback,
    /// [`Origin::Glue`].
    Glue,
}

impl OriginKind {
    /// Every kind, in counting order.
    const ALL: [OriginKind; 5] = [
        OriginKind::From,
        OriginKind::Reduced,
        OriginKind::Materialized,
        OriginKind::Fallback,
        OriginKind::Glue,
    ];

    /// The kind of `origin`.
    fn of(origin: Origin) -> OriginKind {
        match origin {
            Origin::Original(_) => OriginKind::From,
            Origin::Reduced(_) => OriginKind::Reduced,
            Origin::Materialized(_) => OriginKind::Materialized,
            Origin::Fallback(_) => OriginKind::Fallback,
            Origin::Glue(_) => OriginKind::Glue,
        }
    }

    /// One word for it (the `data-how` of a residual instruction).
    fn word(self) -> &'static str {
        match self {
            OriginKind::From => "from",
            OriginKind::Reduced => "reduced",
            OriginKind::Materialized => "materialized",
            OriginKind::Fallback => "fallback",
            OriginKind::Glue => "glue",
        }
    }

    /// What it means, for the page's explanations.
    fn meaning(self) -> &'static str {
        match self {
            OriginKind::From => "emitted unchanged from",
            OriginKind::Reduced => "reduced (synthesized, proved by Z3) from",
            OriginKind::Materialized => "materializes a static value for",
            OriginKind::Fallback => "fallback (original after materializing its inputs) for",
            OriginKind::Glue => "glue (stack moves, state matching) before",
        }
    }
}

/// The locations whose static values differ between `copies` (a location
/// absent from some store is dynamic there), in first-seen order, with
/// `inlined in` first when the copies run under different inlined calls.
fn differing(copies: &[&PointSummary]) -> Vec<String> {
    let mut out = Vec::new();
    if copies.windows(2).any(|w| w[0].inlined != w[1].inlined) {
        out.push(INLINED.to_owned());
    }
    let mut seen = BTreeSet::new();
    for p in copies {
        for (loc, _) in &p.statics {
            if seen.insert(loc.as_str())
                && copies
                    .iter()
                    .any(|q| value_of(q, loc) != value_of(copies[0], loc))
            {
                out.push(loc.clone());
            }
        }
    }
    out
}

/// The pseudo-location of the inlined calls around a point.
const INLINED: &str = "inlined in";

/// The value of `loc` in the store of `p` (`dynamic` when unknown).
fn value_of(p: &PointSummary, loc: &str) -> String {
    if loc == INLINED {
        if p.inlined.is_empty() {
            return "none".to_owned();
        }
        let callees: Vec<String> = p.inlined.iter().map(|a| format!("{a:#x}")).collect();
        return callees.join(" > ");
    }
    p.statics
        .iter()
        .find(|(l, _)| l == loc)
        .map_or_else(|| "dynamic".to_owned(), |(_, v)| v.clone())
}

/// `s` with the characters HTML gives a meaning escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
