//! Circular intervals of `bits`-bit numbers: the ranges the jump-table
//! analysis proves. Adding a constant to a circular interval is exact, which
//! keeps `x - 5 <= 7` (the values 5..=12 of `x`, but also what wraps below 0)
//! one interval.

/// The values `start, start + 1, ..., start + len - 1` modulo `2^bits`:
/// `len == 2^bits` is every value, `len == 0` none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Circ {
    start: u64,
    len: u64,
    bits: u8,
}

impl Circ {
    fn modulus(bits: u8) -> u64 {
        1u64 << bits
    }

    /// Every `bits`-bit value.
    pub fn full(bits: u8) -> Circ {
        Circ {
            start: 0,
            len: Self::modulus(bits),
            bits,
        }
    }

    /// No value: a path whose conditions contradict each other.
    pub fn empty(bits: u8) -> Circ {
        Circ {
            start: 0,
            len: 0,
            bits,
        }
    }

    /// `lo, lo + 1, ..., hi` modulo `2^bits` (round past the largest value
    /// when `hi < lo`).
    pub fn interval(lo: u64, hi: u64, bits: u8) -> Circ {
        let m = Self::modulus(bits);
        let (lo, hi) = (lo % m, hi % m);
        Circ {
            start: lo,
            len: (hi + m - lo) % m + 1,
            bits,
        }
    }

    /// Whether no value is in it.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Whether every value is in it.
    pub fn is_full(self) -> bool {
        self.len == Self::modulus(self.bits)
    }

    /// The values plus `k`, modulo `2^bits`.
    pub fn shift(self, k: u64) -> Circ {
        let m = Self::modulus(self.bits);
        Circ {
            start: (self.start + k % m) % m,
            ..self
        }
    }

    /// The values modulo `2^bits`, for `bits` at most the current width.
    pub fn reduce(self, bits: u8) -> Circ {
        let m = Self::modulus(bits);
        if self.len >= m {
            return Circ::full(bits);
        }
        Circ {
            start: self.start % m,
            len: self.len,
            bits,
        }
    }

    /// The same numbers as `bits`-bit values (`bits` at least the current
    /// width): exact unless the interval wraps, when it is every value below
    /// `2^self.bits`.
    pub fn widen(self, bits: u8) -> Circ {
        match self.bounds() {
            Some((lo, hi)) => Circ::interval(lo, hi, bits),
            None if self.is_empty() => Circ::empty(bits),
            None => Circ::interval(0, Self::modulus(self.bits) - 1, bits),
        }
    }

    /// The 32-bit sign extensions of the values.
    pub fn sign_extend(self) -> Circ {
        if self.is_empty() {
            return Circ::empty(32);
        }
        let m = Self::modulus(self.bits);
        let half = m / 2;
        let extend = |v: u64| if v >= half { v + (1u64 << 32) - m } else { v };
        // Steps from the start to the most negative value: the values stay
        // one interval unless they run from the largest positive one to it.
        let d = (half + m - self.start) % m;
        if d > 0 && d < self.len {
            return Circ::interval(extend(half), half - 1, 32);
        }
        Circ {
            start: extend(self.start),
            len: self.len,
            bits: 32,
        }
    }

    /// The smallest circular interval holding every value in both (the
    /// intersection can be two pieces; this is their hull).
    pub fn intersect(self, other: Circ) -> Circ {
        debug_assert_eq!(self.bits, other.bits);
        if self.is_empty() || other.is_empty() {
            return Circ::empty(self.bits);
        }
        if self.is_full() {
            return other;
        }
        if other.is_full() {
            return self;
        }
        let m = Self::modulus(self.bits);
        // `other` relative to `self.start`; `self` is `0..self.len` there.
        let d = (other.start + m - self.start) % m;
        let end = d + other.len;
        let first = (d < self.len).then(|| (d, end.min(m).min(self.len)));
        let second = (end > m).then(|| (0, (end - m).min(self.len)));
        let (lo, hi) = match (first, second) {
            (None, None) => return Circ::empty(self.bits),
            (Some(p), None) | (None, Some(p)) => p,
            (Some((d0, e0)), Some((_, e1))) => {
                // Either 0..e0 or round the top from d0 to e1.
                if e0 <= m - d0 + e1 {
                    (0, e0)
                } else {
                    (d0, m + e1)
                }
            }
        };
        Circ {
            start: (self.start + lo) % m,
            len: hi - lo,
            bits: self.bits,
        }
    }

    /// Whether `v` is one of the values.
    pub fn contains(self, v: u64) -> bool {
        let m = Self::modulus(self.bits);
        (v % m + m - self.start) % m < self.len
    }

    /// The first value (round from it the others follow).
    pub fn start(self) -> u64 {
        self.start
    }

    /// How many values.
    pub fn len(self) -> u64 {
        self.len
    }

    /// The smallest circular interval holding every value of both.
    pub fn hull(self, other: Circ) -> Circ {
        debug_assert_eq!(self.bits, other.bits);
        if self.is_empty() {
            return other;
        }
        if other.is_empty() {
            return self;
        }
        let m = Self::modulus(self.bits);
        // From one start round to the farther end of the other, or the
        // other way: the shorter one that holds both.
        let span = |a: Circ, b: Circ| {
            let to_b = (b.start + m - a.start) % m;
            (a.len.max(to_b + b.len)).min(m)
        };
        let (ab, ba) = (span(self, other), span(other, self));
        let (start, len) = if ab <= ba {
            (self.start, ab)
        } else {
            (other.start, ba)
        };
        Circ {
            start,
            len,
            bits: self.bits,
        }
    }

    /// The lowest and highest value, when the interval does not wrap and is
    /// not empty.
    pub fn bounds(self) -> Option<(u64, u64)> {
        let m = Self::modulus(self.bits);
        (self.len > 0 && self.start + self.len <= m)
            .then(|| (self.start, self.start + self.len - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::Circ;

    #[test]
    fn shifting_keeps_a_wrapped_interval_whole() {
        // x <= 12 and x >= 5, seen through x - 5.
        let below = Circ::interval(0, 12, 32).shift(5u64.wrapping_neg());
        assert_eq!(below.bounds(), None);
        let above = Circ::interval(5, u64::from(u32::MAX), 32).shift(5u64.wrapping_neg());
        assert_eq!(below.intersect(above).bounds(), Some((0, 7)));
    }

    #[test]
    fn intersection_of_two_pieces_is_their_smaller_hull() {
        // 250..=5 and 3..=252 (8 bits) meet in 3..=5 and 250..=252.
        let a = Circ::interval(250, 5, 8);
        let b = Circ::interval(3, 252, 8);
        let both = a.intersect(b);
        assert_eq!(both, Circ::interval(250, 5, 8));
        assert_eq!(b.intersect(a), both);
        assert!(Circ::interval(0, 3, 8)
            .intersect(Circ::interval(4, 9, 8))
            .is_empty());
    }

    #[test]
    fn sign_extension_splits_only_at_the_sign_change() {
        assert_eq!(
            Circ::interval(0x20, 0x7a, 8).sign_extend().bounds(),
            Some((0x20, 0x7a))
        );
        let negative = Circ::interval(0xfe, 0x02, 8).sign_extend();
        assert_eq!(negative, Circ::interval(0xffff_fffe, 2, 32));
        assert_eq!(
            Circ::interval(0x7f, 0x80, 8).sign_extend(),
            Circ::interval(0xffff_ff80, 0x7f, 32)
        );
    }

    #[test]
    fn hull_goes_the_short_way_round() {
        let a = Circ::interval(250, 252, 8);
        let b = Circ::interval(2, 4, 8);
        assert_eq!(a.hull(b), Circ::interval(250, 4, 8));
        assert_eq!(b.hull(a), Circ::interval(250, 4, 8));
        assert_eq!(
            Circ::interval(1, 9, 8).hull(Circ::interval(3, 4, 8)),
            Circ::interval(1, 9, 8)
        );
    }

    #[test]
    fn reduce_and_widen_change_the_width() {
        assert_eq!(
            Circ::interval(0x120, 0x130, 32).reduce(8),
            Circ::interval(0x20, 0x30, 8)
        );
        assert!(Circ::interval(0, 0x100, 32).reduce(8).is_full());
        assert_eq!(Circ::interval(3, 9, 8).widen(32).bounds(), Some((3, 9)));
        assert_eq!(Circ::interval(250, 9, 8).widen(32).bounds(), Some((0, 255)));
    }
}
