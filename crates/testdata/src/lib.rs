//! Test and bench data of p2pnode: reproducible, incompressible bytes (xorshift), so that a test can make
//! a file from a seed and a corrupted copy can never match by chance. Not for anything secret.
//!
//! ```
//! let data = testdata::bytes(1 << 20, 7);
//! assert_eq!(data, testdata::bytes(1 << 20, 7), "one seed, one content");
//! assert_ne!(data, testdata::bytes(1 << 20, 8));
//! ```

/// An endless stream of bytes determined by its seed.
#[derive(Clone, Debug)]
pub struct Noise(u64);

impl Noise {
    /// The stream of `seed` (any value; an even one is made odd, as xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
}

impl Iterator for Noise {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Some(self.0 as u8)
    }
}

/// The first `len` bytes of the stream of `seed`.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    Noise::new(seed).take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_bytes_and_seeds_differ() {
        assert_eq!(bytes(1000, 7), bytes(1000, 7));
        assert_ne!(bytes(1000, 7), bytes(1000, 9));
        let distinct: std::collections::HashSet<u8> = bytes(4096, 7).into_iter().collect();
        assert!(distinct.len() > 200, "only {} distinct byte values", distinct.len());
    }
}
