//! Phase 2 of the graph build: memory cells.
//!
//! Splits memory into *cells*: the byte ranges that the exact locations of
//! the function (its accesses, the callees' effects and argument slots, the
//! return address and the stack arguments from the [`Interface`]) cut the
//! stack, the globals and each static buffer into, plus one "rest" cell per
//! region and one for other memory. It hands a [`CellTable`] to the later
//! phases: the cell list (entry nodes per cell) and the cells an access to
//! an [`AbstractLoc`] may touch (the memory uses and definitions).

use std::collections::HashMap;

use wiper_elf::Binary;
use wiper_x86::abi;

use super::interface::Interface;
use crate::memory::AbstractLoc;
use crate::stack::StackInfo;

/// A memory cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    /// Stack bytes `[esp0+lo, esp0+hi)`.
    Stack(i64, i64),
    /// Global bytes `[lo, hi)`, read-only or not.
    Global(i64, i64, bool),
    /// Bytes `[lo, hi)` of the buffer of static pointer argument N.
    Buffer(u32, i64, i64),
    /// The rest of the stack.
    StackRest,
    /// The rest of the globals, read-only or not.
    GlobalRest(bool),
    /// The rest of the buffer of static pointer argument N.
    BufferRest(u32),
    /// Memory outside the binary, the stack and the buffers.
    Other,
}

impl Cell {
    /// The location of the cell, for listing static reads (`None` for the
    /// rest of the globals and other memory).
    pub fn loc(self) -> Option<AbstractLoc> {
        match self {
            Cell::Stack(lo, hi) => Some(AbstractLoc::Stack {
                offset: lo as i32,
                size: (hi - lo) as u32,
            }),
            Cell::Global(lo, hi, ro) => Some(AbstractLoc::Global {
                addr: lo as u32,
                size: (hi - lo) as u32,
                read_only: ro,
            }),
            Cell::Buffer(k, lo, hi) => Some(AbstractLoc::Buffer {
                arg: k,
                offset: lo as i32,
                size: (hi - lo) as u32,
            }),
            Cell::StackRest => Some(AbstractLoc::StackAny),
            Cell::BufferRest(arg) => Some(AbstractLoc::BufferAny { arg }),
            _ => None,
        }
    }
}

/// Builds the [`CellTable`] of a function from its accesses and interface.
pub(super) fn cell_table(
    stack: &StackInfo,
    interface: &Interface,
    buffers: &[u32],
    binary: &Binary,
) -> CellTable {
    let mut exact: Vec<AbstractLoc> = Vec::new();
    for acc in &stack.accesses {
        exact.extend(acc.iter().map(|a| a.loc).filter(|l| l.is_exact()));
    }
    for m in &interface.mapped {
        exact.extend(m.iter().flatten().copied().filter(|l| l.is_exact()));
    }
    exact.push(AbstractLoc::Stack { offset: 0, size: 4 });
    for k in 0..interface.nargs {
        exact.push(AbstractLoc::Stack {
            offset: abi::arg_offset(k) as i32,
            size: 4,
        });
    }
    for a in &interface.call_args {
        exact.extend(a.iter().copied().filter(|l| l.is_exact()));
    }
    CellTable::new(&exact, &interface.saves, buffers, binary, stack.escaped)
}

/// The cells of a function and which of them each location may touch.
pub(super) struct CellTable {
    /// Every cell, indexed by cell number.
    pub cells: Vec<Cell>,
    /// Cells where the prologue saves callee-saved registers: part of no
    /// C object, so indexed and unknown accesses never reach them.
    saves: Vec<bool>,
    cache: HashMap<(AbstractLoc, bool), Vec<u32>>,
    escaped: bool,
}

impl CellTable {
    /// The cells that the `exact` locations cut memory into.
    fn new(
        exact: &[AbstractLoc],
        saves: &[i32],
        buffers: &[u32],
        binary: &Binary,
        escaped: bool,
    ) -> CellTable {
        let mut stack: Vec<(i64, i64)> = Vec::new();
        let mut global: Vec<(i64, i64)> = Vec::new();
        let mut buffer_ranges: HashMap<u32, Vec<(i64, i64)>> =
            buffers.iter().map(|&k| (k, Vec::new())).collect();
        for l in exact {
            match *l {
                AbstractLoc::Stack { offset, size } if size > 0 => {
                    stack.push((i64::from(offset), i64::from(offset) + i64::from(size)))
                }
                AbstractLoc::Global { addr, size, .. } if size > 0 => {
                    global.push((i64::from(addr), i64::from(addr) + i64::from(size)))
                }
                AbstractLoc::Buffer { arg, offset, size } if size > 0 => buffer_ranges
                    .entry(arg)
                    .or_default()
                    .push((i64::from(offset), i64::from(offset) + i64::from(size))),
                _ => {}
            }
        }
        fn partition(iv: &[(i64, i64)]) -> Vec<(i64, i64)> {
            let mut pts: Vec<i64> = iv.iter().flat_map(|&(a, b)| [a, b]).collect();
            pts.sort_unstable();
            pts.dedup();
            pts.windows(2)
                .map(|w| (w[0], w[1]))
                .filter(|&(a, b)| iv.iter().any(|&(x, y)| x <= a && b <= y))
                .collect()
        }
        let mut cells = Vec::new();
        cells.extend(
            partition(&stack)
                .into_iter()
                .map(|(a, b)| Cell::Stack(a, b)),
        );
        cells.extend(
            partition(&global)
                .into_iter()
                .map(|(a, b)| Cell::Global(a, b, binary.is_constant(a as u32))),
        );
        let mut keys: Vec<u32> = buffer_ranges.keys().copied().collect();
        keys.sort_unstable();
        for k in &keys {
            cells.extend(
                partition(&buffer_ranges[k])
                    .into_iter()
                    .map(|(a, b)| Cell::Buffer(*k, a, b)),
            );
        }
        cells.push(Cell::StackRest);
        cells.push(Cell::GlobalRest(false));
        cells.push(Cell::GlobalRest(true));
        cells.extend(keys.iter().map(|k| Cell::BufferRest(*k)));
        cells.push(Cell::Other);
        let saves = cells
            .iter()
            .map(|c| matches!(c, Cell::Stack(lo, hi) if saves.iter().any(|&o| i64::from(o) <= *lo && *hi <= i64::from(o) + 4)))
            .collect();
        CellTable {
            cells,
            saves,
            cache: HashMap::new(),
            escaped,
        }
    }

    /// Cells an access to `loc` may touch (`write`: for a store).
    pub(super) fn of(&mut self, loc: AbstractLoc, write: bool) -> Vec<u32> {
        if let Some(v) = self.cache.get(&(loc, write)) {
            return v.clone();
        }
        let inside = |lo: i64, hi: i64, a: i64, b: i64| lo < b && a < hi;
        let escaped = self.escaped;
        let saves = &self.saves;
        let v: Vec<u32> = self
            .cells
            .iter()
            .enumerate()
            .filter(|(i, _)| loc.is_exact() || !saves[*i])
            .filter(|(_, c)| match (loc, **c) {
                (AbstractLoc::Stack { offset, size }, Cell::Stack(a, b)) => {
                    let lo = i64::from(offset);
                    inside(lo, lo + i64::from(size), a, b)
                }
                (AbstractLoc::StackAny, Cell::Stack(..) | Cell::StackRest) => true,
                (AbstractLoc::LocalAny, Cell::Stack(lo, _)) => lo < 0,
                (AbstractLoc::LocalAny, Cell::StackRest) => true,
                (AbstractLoc::Global { addr, size, .. }, Cell::Global(a, b, _)) => {
                    let lo = i64::from(addr);
                    inside(lo, lo + i64::from(size), a, b)
                }
                (
                    AbstractLoc::GlobalAny { read_only, .. },
                    Cell::Global(_, _, ro) | Cell::GlobalRest(ro),
                ) => ro == read_only,
                (AbstractLoc::Buffer { arg, offset, size }, Cell::Buffer(k, a, b)) => {
                    let lo = i64::from(offset);
                    arg == k && inside(lo, lo + i64::from(size), a, b)
                }
                (AbstractLoc::BufferAny { arg }, Cell::Buffer(k, ..) | Cell::BufferRest(k)) => {
                    arg == k
                }
                (AbstractLoc::Unknown, c) => match c {
                    Cell::Stack(..) | Cell::StackRest => escaped,
                    Cell::Global(_, _, ro) | Cell::GlobalRest(ro) => !ro,
                    Cell::Buffer(..) | Cell::BufferRest(_) | Cell::Other => true,
                },
                _ => false,
            })
            .map(|(i, _)| i as u32)
            .collect();
        let _ = write;
        self.cache.insert((loc, write), v.clone());
        v
    }
}
