//! (tests) Seeded random streams for the statistics' simulations: a small deterministic generator (xorshift64*),
//! so every simulation draws the same numbers on every machine.

/// xorshift64*.
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn binomial(&mut self, n: u32, p: f64) -> f64 {
        (0..n).filter(|_| self.uniform() < p).count() as f64
    }
}

/// `count` generators, seeded 1..=count.
pub(crate) fn seeds(count: u64) -> impl Iterator<Item = Rng> {
    (1..=count).map(|seed| Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1))
}
