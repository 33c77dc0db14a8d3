//! Whole-expression queries and rewrites: sub-terms, free variables, size,
//! depth, substitution and re-simplification.
//!
//! Every walk is iterative and visits each distinct node once, so deep or
//! heavily shared DAGs neither overflow the stack nor blow up exponentially.

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::fx::{FxHashMap, FxHashSet};
use crate::{ExprId, ExprPool, QfbvError, VarId};

impl ExprPool {
    /// All distinct sub-terms of `roots` (roots included), children before
    /// parents (ascending id order).
    pub fn subterms(&self, roots: &[ExprId]) -> Vec<ExprId> {
        self.subterms_except(roots, |_| false)
    }

    /// Like [`ExprPool::subterms`], but does not enter (or return) nodes for
    /// which `known` holds, e.g. nodes already in a memo table.
    pub(crate) fn subterms_except(
        &self,
        roots: &[ExprId],
        known: impl Fn(ExprId) -> bool,
    ) -> Vec<ExprId> {
        let mut seen: FxHashSet<ExprId> = FxHashSet::default();
        let mut stack: Vec<ExprId> = roots.to_vec();
        while let Some(e) = stack.pop() {
            if !known(e) && seen.insert(e) {
                stack.extend(self.args(e).iter().copied().filter(|a| !seen.contains(a)));
            }
        }
        let mut out: Vec<ExprId> = seen.into_iter().collect();
        out.sort_unstable();
        out
    }

    /// The free variables of `e` (bit-vector and memory), in declaration order.
    pub fn vars(&self, e: ExprId) -> Vec<VarId> {
        let mut vs: Vec<VarId> = self
            .subterms(&[e])
            .into_iter()
            .filter_map(|s| self.as_var(s))
            .collect();
        vs.sort_unstable();
        vs
    }

    /// Number of distinct nodes of `e` (its DAG size).
    pub fn size(&self, e: ExprId) -> usize {
        self.subterms(&[e]).len()
    }

    /// Length of the longest path from `e` to a leaf; a leaf has depth 0.
    pub fn depth(&self, e: ExprId) -> usize {
        let mut depth: FxHashMap<ExprId, usize> = FxHashMap::default();
        for s in self.subterms(&[e]) {
            let d = self.args(s).iter().map(|a| depth[a] + 1).max().unwrap_or(0);
            depth.insert(s, d);
        }
        depth[&e]
    }

    /// Replaces variables by expressions (`map` from variable to replacement of
    /// the same sort) and simplifies what changed. Fails if a replacement has
    /// the wrong sort. Sub-terms without a substituted variable keep their ids.
    pub fn subst<S: BuildHasher>(
        &mut self,
        e: ExprId,
        map: &HashMap<VarId, ExprId, S>,
    ) -> Result<ExprId, QfbvError> {
        for (&v, &r) in map {
            if self.sort(r) != self.var_sort(v) {
                return Err(QfbvError::IllSorted {
                    op: "subst",
                    detail: format!(
                        "`{}` is {} but its replacement is {}",
                        self.var_name(v),
                        self.var_sort(v),
                        self.sort(r)
                    ),
                });
            }
        }
        Ok(self.rebuild(
            e,
            |p, s| p.as_var(s).and_then(|v| map.get(&v).copied()),
            false,
        ))
    }

    /// Replaces every occurrence of the sub-term `old` in `e` by `new` (of
    /// the same sort) and simplifies what changed: the rewriting step of a
    /// proof that reuses a proved equality `old = new` as a lemma. Fails if
    /// the sorts differ.
    pub fn replace(&mut self, e: ExprId, old: ExprId, new: ExprId) -> Result<ExprId, QfbvError> {
        if self.sort(old) != self.sort(new) {
            return Err(QfbvError::IllSorted {
                op: "replace",
                detail: format!("{} replaced by {}", self.sort(old), self.sort(new)),
            });
        }
        Ok(self.rebuild(e, |_, s| (s == old).then_some(new), false))
    }

    /// Re-applies the simplifier to every node of `e` (useful after
    /// [`ExprPool::mk_raw`]); builder-made expressions are already simplified.
    pub fn simplify(&mut self, e: ExprId) -> ExprId {
        self.rebuild(e, |_, _| None, true)
    }

    /// Rebuilds `e` bottom-up: `leaf` may replace a node outright; other nodes
    /// are rebuilt through [`ExprPool::mk`] when an operand changed, or always
    /// if `force`.
    fn rebuild(
        &mut self,
        e: ExprId,
        leaf: impl Fn(&ExprPool, ExprId) -> Option<ExprId>,
        force: bool,
    ) -> ExprId {
        let mut new: FxHashMap<ExprId, ExprId> = FxHashMap::default();
        for s in self.subterms(&[e]) {
            let r = match leaf(self, s) {
                Some(r) => r,
                None => {
                    let args: Vec<ExprId> = self.args(s).iter().map(|a| new[a]).collect();
                    if force || args.as_slice() != self.args(s) {
                        self.build(self.op(s), &args)
                    } else {
                        s
                    }
                }
            };
            new.insert(s, r);
        }
        new[&e]
    }
}
