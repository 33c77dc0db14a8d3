//! Phase 5 of the graph build: reaching definitions.
//!
//! An iterative forward dataflow over the statements, in reverse post
//! order, with one bit per definition: a statement's must definitions kill
//! every other definition of the same location, and all its definitions
//! reach its successors. It hands the [`Reaching`] sets at the start of
//! every statement to the data edges phase.

use petgraph::graph::NodeIndex;

use super::definitions::Definitions;
use super::Def;
use crate::program::Program;

/// A set of definition ids.
struct Bits(Vec<u64>);

impl Bits {
    /// The empty set for `n` definitions.
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    /// Adds `i`.
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    /// Removes `i`.
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    /// Whether `i` is in the set.
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 != 0
    }
}

/// The definitions reaching the start of each statement.
pub(super) struct Reaching {
    /// Per location index: the ids of its definitions.
    defs_of: Vec<Vec<usize>>,
    /// Per statement: the definitions reaching its start.
    inn: Vec<Bits>,
}

impl Reaching {
    /// The nodes whose definitions of location `loc` reach statement `s`.
    pub(super) fn sources(&self, defs: &[Def], loc: usize, s: usize) -> Vec<NodeIndex> {
        self.defs_of[loc]
            .iter()
            .filter(|&&d| self.inn[s].get(d))
            .map(|&d| defs[d].0)
            .collect()
    }
}

/// Computes the definitions reaching every statement of `program`; `nlocs`
/// is the number of location indices (registers, flags, temporaries and
/// cells).
pub(super) fn reaching(program: &Program, definitions: &Definitions, nlocs: usize) -> Reaching {
    let defs = &definitions.defs;
    let stmts = &definitions.stmts;
    let ndefs = defs.len();
    let mut defs_of: Vec<Vec<usize>> = vec![Vec::new(); nlocs];
    for (i, (_, l)) in defs.iter().enumerate() {
        defs_of[*l].push(i);
    }
    let nst = program.stmts.len();
    let mut inn: Vec<Bits> = (0..nst).map(|_| Bits::new(ndefs)).collect();
    let mut out: Vec<Bits> = (0..nst).map(|_| Bits::new(ndefs)).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for &s in &program.rpo {
            let mut cur = Bits::new(ndefs);
            for &p in &program.preds[s] {
                for (c, o) in cur.0.iter_mut().zip(out[p].0.iter()) {
                    *c |= *o;
                }
            }
            let mut o = Bits(cur.0.clone());
            for &(d, must) in &stmts[s].defs {
                if must {
                    for &k in &defs_of[defs[d].1] {
                        o.clear(k);
                    }
                }
            }
            for &(d, _) in &stmts[s].defs {
                o.set(d);
            }
            inn[s] = cur;
            if o.0 != out[s].0 {
                out[s] = o;
                changed = true;
            }
        }
    }
    Reaching { defs_of, inn }
}
