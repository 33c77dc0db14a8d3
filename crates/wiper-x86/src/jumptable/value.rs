//! The values of the forward evaluation of a path: constants and linear
//! functions of unknowns, with the narrow (8- and 16-bit) views of them that
//! byte-sized switch indexes need.

/// An unknown value on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    /// A 32-bit register as the path found it (its number).
    Reg(usize),
    /// A value defined on the path that the evaluation does not model,
    /// numbered in evaluation order (so that two visits of one instruction
    /// define different values).
    Fresh(u32),
    /// The value the `n`th load of the path read (see `Eval::loads`).
    Load(u32),
    /// The sign extension of a narrow value (see `Eval::sexts`).
    Sext(u32),
}

/// `scale * zext((src + inner) mod 2^bits) + outer`, modulo 2^32: a linear
/// function of the low `bits` bits of one unknown. For 32-bit values
/// `inner` is 0 (folded into `outer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lin {
    pub src: Src,
    pub bits: u8,
    pub inner: u32,
    pub scale: u32,
    pub outer: u32,
}

impl Lin {
    /// The unknown itself (`bits` wide, zero-extended).
    pub fn of(src: Src, bits: u8) -> Lin {
        Lin {
            src,
            bits,
            inner: 0,
            scale: 1,
            outer: 0,
        }
    }

    /// Whether the value is `(src + inner) mod 2^bits` itself: no scale, no
    /// outer offset. Ranges are proven about such values.
    pub fn is_plain(self) -> bool {
        self.scale == 1 && self.outer == 0
    }
}

/// A 32-bit value (or the zero-extended value of a narrow register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    /// Nothing known.
    Unknown,
    Const(u32),
    Lin(Lin),
    /// The sum of two linear values: an address `base + 4 * index + d` in
    /// PIC code (`base` the GOT register), or a table entry plus that base.
    Sum(Lin, Lin),
}

fn mask(bits: u8) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

impl Value {
    /// The 32-bit value of a `bits`-bit unknown (`inner` added modulo `2^bits`).
    pub fn narrow(src: Src, bits: u8, inner: u32) -> Value {
        if bits >= 32 {
            return Value::Lin(Lin {
                outer: inner,
                ..Lin::of(src, 32)
            });
        }
        Value::Lin(Lin {
            inner: inner & mask(bits),
            ..Lin::of(src, bits)
        })
    }

    /// The low `bits` bits, zero-extended (what a narrow register holds).
    pub fn low(self, bits: u8) -> Value {
        if bits >= 32 {
            return self;
        }
        match self {
            Value::Const(c) => Value::Const(c & mask(bits)),
            Value::Lin(l) if l.scale == 1 && bits <= l.bits => {
                Value::narrow(l.src, bits, l.inner.wrapping_add(l.outer))
            }
            // Zero-extended narrower values fit.
            Value::Lin(l) if l.is_plain() && bits >= l.bits => self,
            _ => Value::Unknown,
        }
    }

    /// `self + k` computed in `bits` bits (zero-extended).
    pub fn add_narrow(self, k: u32, bits: u8) -> Value {
        if bits >= 32 {
            return self.add(Value::Const(k));
        }
        match self {
            Value::Const(c) => Value::Const(c.wrapping_add(k) & mask(bits)),
            Value::Lin(l) if l.scale == 1 && l.bits == bits && l.outer == 0 => {
                Value::narrow(l.src, bits, l.inner.wrapping_add(k))
            }
            v => v.low(bits).add_narrow_plain(k, bits),
        }
    }

    fn add_narrow_plain(self, k: u32, bits: u8) -> Value {
        match self {
            Value::Lin(l) if l.is_plain() && l.bits == bits => {
                Value::narrow(l.src, bits, l.inner.wrapping_add(k))
            }
            Value::Const(c) => Value::Const(c.wrapping_add(k) & mask(bits)),
            _ => Value::Unknown,
        }
    }

    /// `self + other`, 32 bits.
    pub fn add(self, other: Value) -> Value {
        let shift = |l: Lin, c: u32| Lin {
            outer: l.outer.wrapping_add(c),
            ..l
        };
        match (self, other) {
            (Value::Const(a), Value::Const(b)) => Value::Const(a.wrapping_add(b)),
            (Value::Lin(l), Value::Const(c)) | (Value::Const(c), Value::Lin(l)) => {
                Value::Lin(shift(l, c))
            }
            (Value::Sum(a, b), Value::Const(c)) | (Value::Const(c), Value::Sum(a, b)) => {
                Value::Sum(shift(a, c), b)
            }
            (Value::Lin(a), Value::Lin(b))
                if a.src == b.src && a.bits == b.bits && a.inner == b.inner =>
            {
                Value::Lin(Lin {
                    scale: a.scale.wrapping_add(b.scale),
                    outer: a.outer.wrapping_add(b.outer),
                    ..a
                })
            }
            (Value::Lin(a), Value::Lin(b)) => Value::Sum(a, b),
            _ => Value::Unknown,
        }
    }

    /// `self * k`, 32 bits.
    pub fn mul(self, k: u32) -> Value {
        match self {
            Value::Const(c) => Value::Const(c.wrapping_mul(k)),
            Value::Lin(l) => Value::Lin(Lin {
                scale: l.scale.wrapping_mul(k),
                outer: l.outer.wrapping_mul(k),
                ..l
            }),
            _ => Value::Unknown,
        }
    }

    /// `self - other` when it is a constant: both the same function of the
    /// same unknowns but for their constant parts.
    pub fn difference(self, other: Value) -> Option<u32> {
        let same = |a: Lin, b: Lin| Lin { outer: 0, ..a } == Lin { outer: 0, ..b };
        match (self, other) {
            (Value::Const(a), Value::Const(b)) => Some(a.wrapping_sub(b)),
            (Value::Lin(a), Value::Lin(b)) if same(a, b) => Some(a.outer.wrapping_sub(b.outer)),
            (Value::Sum(a, b), Value::Sum(c, d)) if same(a, c) && same(b, d) => Some(
                a.outer
                    .wrapping_add(b.outer)
                    .wrapping_sub(c.outer.wrapping_add(d.outer)),
            ),
            _ => None,
        }
    }
}
