//! The one pseudo-random generator of wiper (SplitMix64): deterministic, so
//! every run is reproducible from a seed, without a dependency on `rand`.
//! Library code (the synthesizer's test states, the semantics' instance
//! generator) and every test draw from it; `wiper_oracle::Rng` is this type.

/// Edge values that expose carry, overflow, sign and parity corner cases.
const INTERESTING: [u32; 20] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0x8000_0001,
    0xffff_fffe,
    0xffff_ffff,
    0x0f0f_0f0f,
    0xf0f0_f0f0,
    31,
    32,
];

/// The increment of SplitMix64's state (2^64 divided by the golden ratio).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64 pseudo-random generator: fast, seedable, good enough for test
/// inputs (not for cryptography).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// A well-mixed 64-bit hash of `x`: the first output of the generator
    /// seeded with `x`, for values that must follow from a key without
    /// keeping a generator.
    #[must_use]
    pub fn hash(x: u64) -> u64 {
        mix(x.wrapping_add(GAMMA))
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniform value in `0..n`.
    ///
    /// # Panics
    /// If `n == 0`.
    pub fn below(&mut self, n: u32) -> u32 {
        assert!(n > 0, "Rng::below(0)");
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// A uniform value in `lo..hi`.
    ///
    /// # Panics
    /// If the range is empty.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        assert!(lo < hi, "Rng::range({lo}, {hi}) is empty");
        lo + self.below(hi - lo)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den) < num
    }

    /// A random boolean.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// Fills `buf` with random bytes.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }

    /// A random element of `items`.
    ///
    /// # Panics
    /// If `items` is empty.
    pub fn choose<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u32) as usize]
    }

    /// A 32-bit value biased towards edge cases: a quarter are edge values
    /// (0, 1, `0x7fffffff`, `0x80000000`, `0xffffffff`, ...), a quarter are edge
    /// values plus or minus a small delta, the rest uniform.
    pub fn interesting_u32(&mut self) -> u32 {
        match self.below(4) {
            0 => *self.choose(&INTERESTING),
            1 => {
                let base = *self.choose(&INTERESTING);
                let delta = self.below(8);
                if self.coin() {
                    base.wrapping_add(delta)
                } else {
                    base.wrapping_sub(delta)
                }
            }
            _ => self.next_u32(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert!(a.below(10) < 10);
            let r = b.range(5, 9);
            assert!((5..9).contains(&r));
        }
        let mut buf = [0u8; 13];
        a.fill_bytes(&mut buf);
        assert!(buf.iter().any(|&x| x != 0));
    }

    /// The sequence is SplitMix64's, as every threshold observed with it
    /// assumes: the first outputs of seed 0 and 7 are the reference ones.
    #[test]
    fn the_sequence_is_splitmix64() {
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(Rng::hash(7), Rng::new(7).next_u64());
    }
}
