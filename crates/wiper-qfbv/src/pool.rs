//! The hash-consing arena: expression ids, sort checking and the builder
//! API (over the sorts and operators of [`crate::op`]). Its constructors
//! simplify through the rules of [`simplify`], a child module: the rules
//! build their results through the same constructors.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::fx::FxHashMap;
use crate::{bv, Op, QfbvError, Sort, VarId};

pub mod simplify;

/// Handle of an expression inside its [`ExprPool`]. Equal ids mean
/// structurally equal expressions. Children always have smaller ids than their
/// parents, so ascending id order is a topological order.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(u32);

impl ExprId {
    /// Position of the node in its pool (dense, from 0), for side tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for ExprId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// Placeholder for unused operand slots.
const NO_ARG: ExprId = ExprId(u32::MAX);

/// An interned node: the hash-consing key.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
struct Node {
    op: Op,
    args: [ExprId; 3],
}

/// A declared variable.
struct VarInfo {
    name: Box<str>,
    sort: Sort,
    expr: ExprId,
}

/// Source of distinct pool tags.
static NEXT_POOL_TAG: AtomicU32 = AtomicU32::new(0);

/// Owns every expression node and variable, hash-consed: building the same
/// structure twice returns the same [`ExprId`].
///
/// Builder methods (`add`, `extract`, `load`, …) simplify as they build and
/// **panic** with a descriptive message on ill-sorted input, which is a
/// programmer error in the semantics layer; [`ExprPool::mk`], [`ExprPool::try_bv`]
/// and [`ExprPool::try_var`] return a [`QfbvError`] instead for input that
/// comes from user data.
pub struct ExprPool {
    tag: u32,
    nodes: Vec<Node>,
    sorts: Vec<Sort>,
    index: FxHashMap<Node, ExprId>,
    vars: Vec<VarInfo>,
    var_index: FxHashMap<Box<str>, VarId>,
}

impl Default for ExprPool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ExprPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExprPool")
            .field("nodes", &self.nodes.len())
            .field("vars", &self.vars.len())
            .finish()
    }
}

fn ill(op: Op, detail: String) -> QfbvError {
    QfbvError::IllSorted {
        op: op.name(),
        detail,
    }
}

fn check_width(w: u32) -> Result<(), QfbvError> {
    if (1..=64).contains(&w) {
        Ok(())
    } else {
        Err(QfbvError::BadWidth(w))
    }
}

impl ExprPool {
    /// An empty pool.
    pub fn new() -> Self {
        ExprPool {
            tag: NEXT_POOL_TAG.fetch_add(1, Ordering::Relaxed),
            nodes: Vec::new(),
            sorts: Vec::new(),
            index: FxHashMap::default(),
            vars: Vec::new(),
            var_index: FxHashMap::default(),
        }
    }

    /// Identity of this pool, used to catch mixing ids of different pools.
    pub(crate) fn tag(&self) -> u32 {
        self.tag
    }

    /// Number of interned nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node was interned yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    // ----- inspection -------------------------------------------------------

    /// The operator of `e`.
    pub fn op(&self, e: ExprId) -> Op {
        self.nodes[e.index()].op
    }

    /// The operands of `e` (see [`Op`] for their order).
    pub fn args(&self, e: ExprId) -> &[ExprId] {
        let n = &self.nodes[e.index()];
        &n.args[..n.op.arity()]
    }

    /// The sort of `e`.
    pub fn sort(&self, e: ExprId) -> Sort {
        self.sorts[e.index()]
    }

    /// The width of bit-vector `e`. Panics on a memory expression.
    pub fn width(&self, e: ExprId) -> u32 {
        match self.sort(e) {
            Sort::Bv(w) => w,
            Sort::Mem => panic!("width() of memory expression {e:?}"),
        }
    }

    /// The value of `e` if it is a constant.
    pub fn as_const(&self, e: ExprId) -> Option<u64> {
        match self.op(e) {
            Op::Const { val, .. } => Some(val),
            _ => None,
        }
    }

    /// The variable `e` stands for, if it is a variable.
    pub fn as_var(&self, e: ExprId) -> Option<VarId> {
        match self.op(e) {
            Op::Var(v) => Some(v),
            _ => None,
        }
    }

    /// Name of variable `v`.
    pub fn var_name(&self, v: VarId) -> &str {
        &self.vars[v.index()].name
    }

    /// Sort of variable `v`.
    pub fn var_sort(&self, v: VarId) -> Sort {
        self.vars[v.index()].sort
    }

    /// The expression standing for variable `v`.
    pub fn var_expr(&self, v: VarId) -> ExprId {
        self.vars[v.index()].expr
    }

    /// The variable declared under `name`, if any.
    pub fn lookup_var(&self, name: &str) -> Option<VarId> {
        self.var_index.get(name).copied()
    }

    // ----- variables --------------------------------------------------------

    /// Declares (or looks up) the variable `name` of sort `sort` and returns its
    /// expression. Fails if the name exists with another sort or the width is
    /// out of range.
    pub fn try_var(&mut self, name: &str, sort: Sort) -> Result<ExprId, QfbvError> {
        if let Sort::Bv(w) = sort {
            check_width(w)?;
        }
        if let Some(v) = self.lookup_var(name) {
            let existing = self.var_sort(v);
            if existing != sort {
                return Err(QfbvError::VarSortConflict {
                    name: name.to_owned(),
                    existing,
                    requested: sort,
                });
            }
            return Ok(self.var_expr(v));
        }
        let v = VarId::new(u32::try_from(self.vars.len()).expect("too many variables"));
        let expr = self.intern(Op::Var(v), &[], sort);
        self.vars.push(VarInfo {
            name: name.into(),
            sort,
            expr,
        });
        self.var_index.insert(name.into(), v);
        Ok(expr)
    }

    /// A variable of sort `sort` whose name (`prefix!N`) is not used yet, e.g.
    /// for the symbolic base of a memory chunk allocated at specialization time.
    pub fn fresh_var(&mut self, prefix: &str, sort: Sort) -> ExprId {
        let mut n = self.vars.len();
        loop {
            let name = format!("{prefix}!{n}");
            if self.lookup_var(&name).is_none() {
                return self
                    .try_var(&name, sort)
                    .unwrap_or_else(|e| panic!("wiper-qfbv: {e}"));
            }
            n += 1;
        }
    }

    /// Every variable declared in this pool, in declaration order.
    pub fn declared_vars(&self) -> impl Iterator<Item = VarId> + '_ {
        (0..self.vars.len()).map(|i| VarId::new(i as u32))
    }

    // ----- construction core ------------------------------------------------

    /// Computes the sort of `op(args)`, or explains why it is ill-sorted.
    fn sort_of(&self, op: Op, args: &[ExprId]) -> Result<Sort, QfbvError> {
        if args.len() != op.arity() {
            return Err(ill(
                op,
                format!("expects {} operands, got {}", op.arity(), args.len()),
            ));
        }
        let s: Vec<Sort> = args.iter().map(|&a| self.sort(a)).collect();
        let bv = |i: usize| -> Result<u32, QfbvError> {
            s[i].width()
                .ok_or_else(|| ill(op, format!("operand {i} is memory")))
        };
        let same = || -> Result<u32, QfbvError> {
            let (a, b) = (bv(0)?, bv(1)?);
            if a == b {
                Ok(a)
            } else {
                Err(ill(op, format!("operand widths {a} and {b} differ")))
            }
        };
        let mem = |i: usize| {
            if s[i] == Sort::Mem {
                Ok(())
            } else {
                Err(ill(op, format!("operand {i} must be memory, is {}", s[i])))
            }
        };
        let addr = |i: usize| {
            if s[i] == Sort::Bv(32) {
                Ok(())
            } else {
                Err(ill(op, format!("address must be bv32, is {}", s[i])))
            }
        };
        Ok(match op {
            Op::Const { val, width } => {
                check_width(width)?;
                if val & !bv::mask(width) != 0 {
                    return Err(ill(op, format!("{val:#x} does not fit {width} bits")));
                }
                Sort::Bv(width)
            }
            Op::Var(v) => {
                if v.index() >= self.vars.len() {
                    return Err(ill(op, format!("unknown variable {v:?}")));
                }
                self.var_sort(v)
            }
            Op::Not | Op::Neg => Sort::Bv(bv(0)?),
            Op::Eq | Op::Ult | Op::Ule | Op::Slt | Op::Sle => {
                same()?;
                Sort::Bv(1)
            }
            Op::Concat => {
                let w = bv(0)? + bv(1)?;
                if w > 64 {
                    return Err(ill(op, format!("result width {w} exceeds 64")));
                }
                Sort::Bv(w)
            }
            Op::Extract { hi, lo } => {
                let w = bv(0)?;
                if lo > hi || hi >= w {
                    return Err(ill(op, format!("bits {hi}..{lo} of a bv{w}")));
                }
                Sort::Bv(hi - lo + 1)
            }
            Op::ZeroExt(to) | Op::SignExt(to) => {
                let w = bv(0)?;
                check_width(to)?;
                if to < w {
                    return Err(ill(op, format!("cannot extend bv{w} to bv{to}")));
                }
                Sort::Bv(to)
            }
            Op::Ite => {
                if s[0] != Sort::Bv(1) {
                    return Err(ill(op, format!("condition must be bv1, is {}", s[0])));
                }
                if s[1] != s[2] {
                    return Err(ill(
                        op,
                        format!("branch sorts {} and {} differ", s[1], s[2]),
                    ));
                }
                s[1]
            }
            Op::Load(n) => {
                mem(0)?;
                addr(1)?;
                if !(1..=8).contains(&n) {
                    return Err(ill(op, format!("cannot load {n} bytes")));
                }
                Sort::Bv(8 * u32::from(n))
            }
            Op::Store => {
                mem(0)?;
                addr(1)?;
                let w = bv(2)?;
                if w % 8 != 0 {
                    return Err(ill(op, format!("stored width {w} is not whole bytes")));
                }
                Sort::Mem
            }
            Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Udiv
            | Op::Urem
            | Op::Sdiv
            | Op::Srem
            | Op::And
            | Op::Or
            | Op::Xor
            | Op::Shl
            | Op::Lshr
            | Op::Ashr
            | Op::Rotl
            | Op::Rotr => Sort::Bv(same()?),
        })
    }

    /// Interns `op(args)` verbatim; the caller has checked sorts.
    fn intern(&mut self, op: Op, args: &[ExprId], sort: Sort) -> ExprId {
        let mut slots = [NO_ARG; 3];
        slots[..args.len()].copy_from_slice(args);
        let node = Node { op, args: slots };
        if let Some(&id) = self.index.get(&node) {
            return id;
        }
        let id = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&i| i != NO_ARG.0)
            .map(ExprId)
            .expect("ExprPool overflow: more than 2^32 - 1 nodes");
        self.nodes.push(node);
        self.sorts.push(sort);
        self.index.insert(node, id);
        id
    }

    /// Builds `op(args)` after checking sorts, **simplifying** with the rules of
    /// [`crate::simplify`]. Constants are masked to their width. This is the
    /// checked entry point for operators built from user data; `Var` operators
    /// must name a variable of this pool.
    pub fn mk(&mut self, op: Op, args: &[ExprId]) -> Result<ExprId, QfbvError> {
        let op = match op {
            Op::Const { val, width } => {
                check_width(width)?;
                Op::Const {
                    val: val & bv::mask(width),
                    width,
                }
            }
            op => op,
        };
        let sort = self.sort_of(op, args)?;
        let mut buf = [NO_ARG; 3];
        buf[..args.len()].copy_from_slice(args);
        Ok(self.mk_checked(op, &mut buf[..args.len()], sort))
    }

    /// Builds `op(args)` exactly as given (sorts are still checked, nothing is
    /// rewritten). Meant for tests of the simplifier and for callers that need
    /// a literal structure; everything else should use [`ExprPool::mk`] or the
    /// builder methods.
    pub fn mk_raw(&mut self, op: Op, args: &[ExprId]) -> Result<ExprId, QfbvError> {
        let sort = self.sort_of(op, args)?;
        Ok(self.intern(op, args, sort))
    }

    /// Simplifying construction once sorts are known to be right.
    fn mk_checked(&mut self, op: Op, args: &mut [ExprId], sort: Sort) -> ExprId {
        if op.is_commutative() && self.operand_order_swapped(args[0], args[1]) {
            args.swap(0, 1);
        }
        match simplify::rewrite(self, op, args, sort) {
            Some(e) => e,
            None => self.intern(op, args, sort),
        }
    }

    /// Canonical operand order for commutative operators: constants go right,
    /// other operands in ascending id order.
    fn operand_order_swapped(&self, a: ExprId, b: ExprId) -> bool {
        match (self.as_const(a).is_some(), self.as_const(b).is_some()) {
            (true, false) => true,
            (false, true) => false,
            _ => a > b,
        }
    }

    /// Builds `op(args)` for the builder methods, panicking on misuse.
    pub(crate) fn build(&mut self, op: Op, args: &[ExprId]) -> ExprId {
        self.mk(op, args)
            .unwrap_or_else(|e| panic!("wiper-qfbv: {e}"))
    }
}
