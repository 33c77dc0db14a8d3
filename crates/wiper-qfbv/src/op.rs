//! The vocabulary of the expression language: sorts, variable handles and
//! node operators (the pool in [`crate::pool`] builds expressions of them,
//! [`crate::bv`] gives the operators their concrete meaning).

use std::fmt;

/// The sort of an expression: a bit-vector of 1..=64 bits, or memory (an array
/// from 32-bit addresses to bytes).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sort {
    /// Bit-vector of the given width.
    Bv(u32),
    /// Byte-addressed memory with 32-bit addresses.
    Mem,
}

impl Sort {
    /// The width of a bit-vector sort, `None` for memory.
    pub fn width(self) -> Option<u32> {
        match self {
            Sort::Bv(w) => Some(w),
            Sort::Mem => None,
        }
    }
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sort::Bv(w) => write!(f, "bv{w}"),
            Sort::Mem => f.write_str("mem"),
        }
    }
}

/// Handle of a declared variable (a name with a sort) inside its [`ExprPool`].
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(u32);

impl VarId {
    /// The variable declared `index`-th (only the pool declares them).
    pub(crate) fn new(index: u32) -> Self {
        VarId(index)
    }

    /// Position of the variable in declaration order (dense, from 0).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for VarId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Node operators. Operands are the node's [`ExprPool::args`]; the comment
/// gives them in order. All binary bit-vector operators take equal widths.
///
/// `ugt/uge/sgt/sge/ne` have no operator of their own: the builders express
/// them with `Ult/Ule/Slt/Sle` (operands swapped) and `Not(Eq)`, so that each
/// relation has one canonical form.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Constant (no operands); `val` is masked to `width`.
    Const {
        /// The value, masked to `width` bits.
        val: u64,
        /// The width, 1..=64.
        width: u32,
    },
    /// A declared variable (no operands).
    Var(VarId),
    /// Bitwise not `(x)`.
    Not,
    /// Two's-complement negation `(x)`.
    Neg,
    /// Addition `(a, b)`.
    Add,
    /// Subtraction `(a, b)`.
    Sub,
    /// Multiplication `(a, b)`.
    Mul,
    /// Unsigned division `(a, b)`; `a / 0` is all ones.
    Udiv,
    /// Unsigned remainder `(a, b)`; `a % 0` is `a`.
    Urem,
    /// Signed division `(a, b)`, truncating; SMT-LIB `bvsdiv`.
    Sdiv,
    /// Signed remainder `(a, b)`, sign of the dividend; SMT-LIB `bvsrem`.
    Srem,
    /// Bitwise and `(a, b)`.
    And,
    /// Bitwise or `(a, b)`.
    Or,
    /// Bitwise xor `(a, b)`.
    Xor,
    /// Shift left `(a, amount)`; amounts >= width give 0.
    Shl,
    /// Logical shift right `(a, amount)`; amounts >= width give 0.
    Lshr,
    /// Arithmetic shift right `(a, amount)`; amounts >= width give sign fill.
    Ashr,
    /// Rotate left `(a, amount)` by `amount mod width`.
    Rotl,
    /// Rotate right `(a, amount)` by `amount mod width`.
    Rotr,
    /// Concatenation `(high, low)`; the total width is at most 64.
    Concat,
    /// Equality `(a, b)` of bit-vectors, 1-bit result.
    Eq,
    /// Unsigned `<` `(a, b)`, 1-bit result.
    Ult,
    /// Unsigned `<=` `(a, b)`, 1-bit result.
    Ule,
    /// Signed `<` `(a, b)`, 1-bit result.
    Slt,
    /// Signed `<=` `(a, b)`, 1-bit result.
    Sle,
    /// Bits `hi..=lo` of `(x)`.
    Extract {
        /// Highest bit taken.
        hi: u32,
        /// Lowest bit taken.
        lo: u32,
    },
    /// Zero extension of `(x)` to the given total width.
    ZeroExt(u32),
    /// Sign extension of `(x)` to the given total width.
    SignExt(u32),
    /// If-then-else `(cond: bv1, then, else)`; branches of any equal sort.
    Ite,
    /// Little-endian load of the given number (1..=8) of bytes `(mem, addr: bv32)`.
    Load(u8),
    /// Little-endian store `(mem, addr: bv32, value)`; stores `width/8` bytes of
    /// a value whose width is a multiple of 8 (at most 64). Result: memory.
    Store,
}

impl Op {
    /// Number of operands.
    pub fn arity(self) -> usize {
        match self {
            Op::Const { .. } | Op::Var(_) => 0,
            Op::Not | Op::Neg | Op::Extract { .. } | Op::ZeroExt(_) | Op::SignExt(_) => 1,
            Op::Ite | Op::Store => 3,
            _ => 2,
        }
    }

    /// SMT-LIB style name (`bvadd`, `extract`, …; `load`/`store` for the
    /// memory operators), used by printers and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Const { .. } => "const",
            Op::Var(_) => "var",
            Op::Not => "bvnot",
            Op::Neg => "bvneg",
            Op::Add => "bvadd",
            Op::Sub => "bvsub",
            Op::Mul => "bvmul",
            Op::Udiv => "bvudiv",
            Op::Urem => "bvurem",
            Op::Sdiv => "bvsdiv",
            Op::Srem => "bvsrem",
            Op::And => "bvand",
            Op::Or => "bvor",
            Op::Xor => "bvxor",
            Op::Shl => "bvshl",
            Op::Lshr => "bvlshr",
            Op::Ashr => "bvashr",
            Op::Rotl => "ext_rotate_left",
            Op::Rotr => "ext_rotate_right",
            Op::Concat => "concat",
            Op::Eq => "=",
            Op::Ult => "bvult",
            Op::Ule => "bvule",
            Op::Slt => "bvslt",
            Op::Sle => "bvsle",
            Op::Extract { .. } => "extract",
            Op::ZeroExt(_) => "zero_extend",
            Op::SignExt(_) => "sign_extend",
            Op::Ite => "ite",
            Op::Load(_) => "load",
            Op::Store => "store",
        }
    }

    /// Whether the operands of this binary operator may be swapped.
    pub fn is_commutative(self) -> bool {
        matches!(
            self,
            Op::Add | Op::Mul | Op::And | Op::Or | Op::Xor | Op::Eq
        )
    }
}
