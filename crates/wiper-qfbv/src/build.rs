//! Builder methods: one short, simplifying, panicking constructor per operator
//! (`p.add(a, b)`, `p.extract(x, 7, 0)`, …). Ill-sorted calls panic with the
//! [`QfbvError`] message; see [`ExprPool::mk`] for the checked form.

use crate::{ExprId, ExprPool, Op, QfbvError, Sort};

/// Generates binary builder methods that map directly onto an [`Op`].
macro_rules! binary_builders {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, a: ExprId, b: ExprId) -> ExprId {
                self.build(Op::$op, &[a, b])
            }
        )*
    };
}

impl ExprPool {
    /// The constant `val` (masked to `width` bits); fails on a bad width.
    pub fn try_bv(&mut self, val: u64, width: u32) -> Result<ExprId, QfbvError> {
        self.mk(Op::Const { val, width }, &[])
    }

    /// The constant `val` masked to `width` bits. Panics if `width` is not in
    /// 1..=64.
    pub fn bv(&mut self, val: u64, width: u32) -> ExprId {
        self.build(Op::Const { val, width }, &[])
    }

    /// The all-zeros constant of `width` bits.
    pub fn zero(&mut self, width: u32) -> ExprId {
        self.bv(0, width)
    }

    /// The all-ones constant of `width` bits.
    pub fn ones(&mut self, width: u32) -> ExprId {
        self.bv(u64::MAX, width)
    }

    /// The 1-bit constant for `b` (flags and conditions are 1-bit vectors).
    pub fn bit(&mut self, b: bool) -> ExprId {
        self.bv(u64::from(b), 1)
    }

    /// The bit-vector variable `name` of `width` bits (declared on first use).
    /// Panics if the name is already a variable of another sort.
    pub fn var(&mut self, name: &str, width: u32) -> ExprId {
        self.try_var(name, Sort::Bv(width))
            .unwrap_or_else(|e| panic!("wiper-qfbv: {e}"))
    }

    /// The memory variable `name` (declared on first use).
    pub fn mem_var(&mut self, name: &str) -> ExprId {
        self.try_var(name, Sort::Mem)
            .unwrap_or_else(|e| panic!("wiper-qfbv: {e}"))
    }

    /// Bitwise not.
    pub fn not(&mut self, a: ExprId) -> ExprId {
        self.build(Op::Not, &[a])
    }

    /// Two's-complement negation.
    pub fn neg(&mut self, a: ExprId) -> ExprId {
        self.build(Op::Neg, &[a])
    }

    binary_builders! {
        /// `a + b`.
        add => Add;
        /// `a - b`.
        sub => Sub;
        /// `a * b`.
        mul => Mul;
        /// Unsigned `a / b` (all ones if `b == 0`).
        udiv => Udiv;
        /// Unsigned `a % b` (`a` if `b == 0`).
        urem => Urem;
        /// Signed `a / b` (SMT-LIB `bvsdiv`).
        sdiv => Sdiv;
        /// Signed remainder, sign of `a` (SMT-LIB `bvsrem`).
        srem => Srem;
        /// `a & b`.
        and => And;
        /// `a | b`.
        or => Or;
        /// `a ^ b`.
        xor => Xor;
        /// `a << b` (0 if `b >= width`).
        shl => Shl;
        /// Logical `a >> b` (0 if `b >= width`).
        lshr => Lshr;
        /// Arithmetic `a >> b` (sign fill if `b >= width`).
        ashr => Ashr;
        /// Rotate `a` left by `b mod width`.
        rotl => Rotl;
        /// Rotate `a` right by `b mod width`.
        rotr => Rotr;
        /// `hi ++ lo`: `hi` takes the upper bits.
        concat => Concat;
        /// `a == b` (1 bit).
        eq => Eq;
        /// Unsigned `a < b` (1 bit).
        ult => Ult;
        /// Unsigned `a <= b` (1 bit).
        ule => Ule;
        /// Signed `a < b` (1 bit).
        slt => Slt;
        /// Signed `a <= b` (1 bit).
        sle => Sle;
    }

    /// `a != b` (1 bit), built as `not(a == b)`.
    pub fn ne(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let e = self.eq(a, b);
        self.not(e)
    }

    /// Unsigned `a > b`, built as `b < a`.
    pub fn ugt(&mut self, a: ExprId, b: ExprId) -> ExprId {
        self.ult(b, a)
    }

    /// Unsigned `a >= b`, built as `b <= a`.
    pub fn uge(&mut self, a: ExprId, b: ExprId) -> ExprId {
        self.ule(b, a)
    }

    /// Signed `a > b`, built as `b < a`.
    pub fn sgt(&mut self, a: ExprId, b: ExprId) -> ExprId {
        self.slt(b, a)
    }

    /// Signed `a >= b`, built as `b <= a`.
    pub fn sge(&mut self, a: ExprId, b: ExprId) -> ExprId {
        self.sle(b, a)
    }

    /// Bits `hi..=lo` of `a`.
    pub fn extract(&mut self, a: ExprId, hi: u32, lo: u32) -> ExprId {
        self.build(Op::Extract { hi, lo }, &[a])
    }

    /// `a` zero-extended to `width` bits (`width >= width(a)`).
    pub fn zext(&mut self, a: ExprId, width: u32) -> ExprId {
        self.build(Op::ZeroExt(width), &[a])
    }

    /// `a` sign-extended to `width` bits (`width >= width(a)`).
    pub fn sext(&mut self, a: ExprId, width: u32) -> ExprId {
        self.build(Op::SignExt(width), &[a])
    }

    /// The low `width` bits of `a` (`width <= width(a)`).
    pub fn trunc(&mut self, a: ExprId, width: u32) -> ExprId {
        self.extract(a, width - 1, 0)
    }

    /// `if cond then t else e`; `cond` is 1 bit, branches share a sort
    /// (bit-vector or memory).
    pub fn ite(&mut self, cond: ExprId, t: ExprId, e: ExprId) -> ExprId {
        self.build(Op::Ite, &[cond, t, e])
    }

    /// Little-endian load of `nbytes` (1..=8) bytes at 32-bit address `addr`.
    pub fn load(&mut self, mem: ExprId, addr: ExprId, nbytes: u8) -> ExprId {
        self.build(Op::Load(nbytes), &[mem, addr])
    }

    /// Little-endian store of `value` (whose width, a multiple of 8, gives the
    /// number of bytes) at 32-bit address `addr`; returns the new memory.
    pub fn store(&mut self, mem: ExprId, addr: ExprId, value: ExprId) -> ExprId {
        self.build(Op::Store, &[mem, addr, value])
    }
}
