//! What an evaluated path says about a jump's table: the entry's address
//! as `table + 4 * u`, what is added to the entry, and the range of `u`
//! (from the path's facts, the size of a load, the bytes of a table read at
//! a bounded index, a sign extension).

use iced_x86::{Instruction, OpKind};

use super::eval::Eval;
use super::range::Circ;
use super::value::{Lin, Src, Value};
use super::{read_constant, within_object, MAX_ENTRIES};

/// Where a path says the jump's targets are: entry `u` is the word at
/// `table + 4 * u` (modulo 2^32), `u` in `range`; the target is the word plus
/// `plus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape {
    pub table: u32,
    pub plus: Option<u32>,
    pub range: Circ,
}

impl Shape {
    /// Both shapes as one, when they describe the same table (with the
    /// entries of both; the table address may have absorbed a multiple of
    /// four from the index).
    pub fn merge(self, other: Shape) -> Option<Shape> {
        let delta = other.table.wrapping_sub(self.table);
        if self.plus != other.plus || delta % 4 != 0 {
            return None;
        }
        let moved = other.range.shift(u64::from((delta as i32 / 4) as u32));
        Some(Shape {
            range: self.range.hull(moved),
            ..self
        })
    }
}

/// What the evaluation of one path found.
pub(super) enum Outcome {
    /// The path's conditions contradict each other: no execution takes it.
    Infeasible,
    Bounded(Shape),
    /// A table whose index this path does not bound, or a target this path
    /// does not show: a longer path may.
    Unbounded,
    /// The target is not a table entry (a function pointer, a constant).
    NotTable,
}

/// What the evaluated path says about the targets of `jump`; `depth` limits
/// the tables behind tables.
pub(super) fn shape(ev: &Eval<'_>, jump: &Instruction, depth: u32) -> Outcome {
    let got = ev.binary().got;
    // (address of the entry, what is added to it).
    let entries: Vec<(Value, Option<u32>)> = match jump.op0_kind() {
        OpKind::Memory => vec![(ev.address(jump), None)],
        OpKind::Register => match ev.reg(jump.op0_register()) {
            Value::Lin(l) if l.scale == 1 && l.bits == 32 => match loaded(ev, l.src) {
                Some(addr) => vec![(addr, (l.outer != 0).then_some(l.outer))],
                None => return unknown(l.src),
            },
            // An entry plus the GOT register (PIC), either way round.
            Value::Sum(a, b) => [(a, b), (b, a)]
                .into_iter()
                .filter(|(e, base)| e.scale == 1 && e.bits == 32 && is_base(*base))
                .filter_map(|(e, base)| {
                    let plus = got?.wrapping_add(e.outer).wrapping_add(base.outer);
                    Some((loaded(ev, e.src)?, Some(plus)))
                })
                .collect(),
            _ => return Outcome::NotTable,
        },
        _ => return Outcome::NotTable,
    };
    let mut outcome = match entries.first() {
        Some((Value::Lin(l), _)) => unknown(l.src),
        _ => Outcome::NotTable,
    };
    for (addr, plus) in entries {
        for (table, index) in split_address(addr, 4, got) {
            match index_range(ev, index, depth) {
                Some(range) if range.is_empty() => return Outcome::Infeasible,
                Some(range) => return Outcome::Bounded(Shape { table, plus, range }),
                None => outcome = Outcome::Unbounded,
            }
        }
    }
    outcome
}

/// The values of the table index `index` (a narrow one zero-extended, so
/// its range must not wrap; a 32-bit one may, the table's address then has
/// the other part of its offset), when at most [`MAX_ENTRIES`].
fn index_range(ev: &Eval<'_>, index: Lin, depth: u32) -> Option<Circ> {
    let range = range_of(ev, index.src, index.bits, index.inner, depth);
    if range.is_empty() {
        return Some(Circ::empty(32));
    }
    let range = match (index.bits, range.bounds()) {
        (32, _) => range,
        (_, Some((lo, hi))) => Circ::interval(lo, hi, 32),
        (_, None) => return None,
    };
    (range.len() <= u64::from(MAX_ENTRIES)).then_some(range)
}

/// Where a value the path did not define comes from: a register at the
/// path's start may be defined by a longer path.
fn unknown(src: Src) -> Outcome {
    match src {
        Src::Reg(_) => Outcome::Unbounded,
        _ => Outcome::NotTable,
    }
}

/// The address the value `src` was loaded from, when it is a 32-bit load.
fn loaded(ev: &Eval<'_>, src: Src) -> Option<Value> {
    match src {
        Src::Load(k) => {
            let (addr, size) = ev.loads[k as usize];
            (size == 4).then_some(addr)
        }
        _ => None,
    }
}

/// Whether `l` (a register at the path's start, or a reload of a spilled
/// one, plus a constant) may be PIC code's GOT register: the unknown is then
/// taken to be `_GLOBAL_OFFSET_TABLE_`.
fn is_base(l: Lin) -> bool {
    l.scale == 1 && l.bits == 32 && matches!(l.src, Src::Reg(_) | Src::Load(_))
}

/// The ways to read `addr` as `table + scale * u`, `u` a narrow or 32-bit
/// unknown: the table's address and `u`. A second unknown added to it is
/// PIC code's GOT register (either may be, when `scale` is 1).
fn split_address(addr: Value, scale: u32, got: Option<u32>) -> Vec<(u32, Lin)> {
    let index = |l: Lin| Lin { outer: 0, ..l };
    match addr {
        Value::Lin(l) if l.scale == scale => vec![(l.outer, index(l))],
        Value::Sum(a, b) => [(a, b), (b, a)]
            .into_iter()
            .filter(|(base, i)| i.scale == scale && is_base(*base))
            .filter_map(|(base, i)| {
                let table = got?.wrapping_add(base.outer).wrapping_add(i.outer);
                Some((table, index(i)))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The range of `(src + inner) mod 2^bits` on the evaluated path.
fn range_of(ev: &Eval<'_>, src: Src, bits: u8, inner: u32, depth: u32) -> Circ {
    let whole = src_range(ev, src, depth);
    let mut r = whole.shift(u64::from(inner)).reduce(bits);
    for f in ev
        .facts
        .iter()
        .filter(|f| f.src == src && f.bits < 32 && f.bits >= bits)
    {
        let delta = u64::from(inner.wrapping_sub(f.inner));
        r = r.intersect(f.range.shift(delta).reduce(bits));
    }
    r
}

/// The range of the 32-bit unknown `src`: what its definition implies (the
/// size of a load, the bytes of a table, a sign extension) and the facts.
fn src_range(ev: &Eval<'_>, src: Src, depth: u32) -> Circ {
    let mut r = Circ::full(32);
    match src {
        Src::Load(k) => {
            let (addr, size) = ev.loads[k as usize];
            if size < 4 {
                r = Circ::interval(0, (1u64 << (8 * size)) - 1, 32);
            }
            if depth > 0 {
                if let Some(values) = table_values(ev, addr, size, depth - 1) {
                    r = r.intersect(values);
                }
            }
        }
        Src::Sext(k) => {
            let (narrow, bits, inner) = ev.sexts[k as usize];
            r = range_of(ev, narrow, bits, inner, depth).sign_extend();
        }
        _ => {}
    }
    for &(_, scanned, bits, inner) in ev.scans.iter().filter(|s| s.0 == src) {
        if !range_of(ev, scanned, bits, inner, depth).contains(0) {
            r = r.intersect(Circ::interval(0, u64::from(bits) - 1, 32));
        }
    }
    for f in ev.facts.iter().filter(|f| f.src == src && f.bits == 32) {
        r = r.intersect(f.range.shift(u64::from(f.inner.wrapping_neg())));
    }
    // A fact on the low bits bounds an unknown that has no others.
    if let Some((_, hi)) = r.bounds() {
        for f in ev.facts.iter().filter(|f| f.src == src && f.bits < 32) {
            if hi < 1u64 << f.bits {
                let low = f.range.shift(u64::from(f.inner.wrapping_neg()));
                r = r.intersect(low.widen(32));
            }
        }
    }
    r
}

/// The values a load of `size` bytes at `addr` can read, when `addr` is a
/// constant table at a bounded index.
fn table_values(ev: &Eval<'_>, addr: Value, size: u32, depth: u32) -> Option<Circ> {
    split_address(addr, size, ev.binary().got)
        .into_iter()
        .find_map(|(table, index)| {
            let range = within_object(ev.binary(), table, size, index_range(ev, index, depth)?);
            let (mut min, mut max) = (u32::MAX, 0);
            for i in 0..range.len() {
                let u = range.start().wrapping_add(i) as u32;
                let v = read_constant(ev.binary(), table.wrapping_add(size.wrapping_mul(u)), size)?;
                min = min.min(v);
                max = max.max(v);
            }
            Some(if min > max {
                Circ::empty(32)
            } else {
                Circ::interval(u64::from(min), u64::from(max), 32)
            })
        })
}
