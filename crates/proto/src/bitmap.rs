//! Which chunks of a file a node holds: one bit per chunk, bit `i % 8` of byte `i / 8` for chunk `i`,
//! the layout of the wire (catalogue entries, `have` answers) and of a download's state file.

use crate::codec::DecodeError;

/// The chunks of a file of a known chunk count that are there. Bits past the count are always clear, so
/// that counts and comparisons never see a peer's padding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bitmap {
    bytes: Vec<u8>,
    chunks: u32,
}

impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitmap({}/{})", self.count(), self.chunks)
    }
}

impl Bitmap {
    /// No chunk of `chunks`.
    pub fn empty(chunks: u32) -> Self {
        Self { bytes: vec![0; Self::byte_len(chunks)], chunks }
    }

    /// Every chunk of `chunks`.
    pub fn full(chunks: u32) -> Self {
        let mut all = Self { bytes: vec![0xff; Self::byte_len(chunks)], chunks };
        all.clear_padding();
        all
    }

    /// The bytes a bitmap of `chunks` takes.
    pub fn byte_len(chunks: u32) -> usize {
        chunks.div_ceil(8) as usize
    }

    /// The bitmap of a file of `chunks` in `bytes` as a peer sent them: exactly [`Self::byte_len`] long.
    pub fn decode(bytes: &[u8], chunks: u32) -> Result<Self, DecodeError> {
        if bytes.len() != Self::byte_len(chunks) {
            return Err(DecodeError::Invalid("chunk bitmap length"));
        }
        let mut bits = Self { bytes: bytes.to_vec(), chunks };
        bits.clear_padding();
        Ok(bits)
    }

    /// The bitmap in `bytes` that may be cut short (a state file written up to a crash): the chunks past
    /// its end are not there.
    pub fn from_prefix(bytes: &[u8], chunks: u32) -> Self {
        let mut bits = Self::empty(chunks);
        let n = bytes.len().min(bits.bytes.len());
        bits.bytes[..n].copy_from_slice(&bytes[..n]);
        bits.clear_padding();
        bits
    }

    /// The chunk count.
    pub fn chunks(&self) -> u32 {
        self.chunks
    }

    /// Whether chunk `index` is there (`false` past the count).
    pub fn has(&self, index: u32) -> bool {
        index < self.chunks && self.bytes[index as usize / 8] & (1 << (index % 8)) != 0
    }

    /// Marks chunk `index` there; whether it was not before. An index past the count changes nothing.
    pub fn set(&mut self, index: u32) -> bool {
        if index >= self.chunks || self.has(index) {
            return false;
        }
        self.bytes[index as usize / 8] |= 1 << (index % 8);
        true
    }

    /// Adds the chunks of `other` (of the same count; a bitmap of another count adds nothing).
    pub fn union(&mut self, other: &Bitmap) {
        if other.chunks == self.chunks {
            self.bytes.iter_mut().zip(&other.bytes).for_each(|(mine, theirs)| *mine |= theirs);
        }
    }

    /// How many chunks are there.
    pub fn count(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// Whether every chunk is there.
    pub fn is_full(&self) -> bool {
        self.count() == self.chunks
    }

    /// The chunks not there, in order.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.chunks).filter(|&i| !self.has(i))
    }

    /// The bytes, as sent and stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The byte that holds chunk `index`, and where it sits: for writing one bit's change to a file.
    pub fn byte_of(&self, index: u32) -> (usize, u8) {
        let at = index as usize / 8;
        (at, self.bytes.get(at).copied().unwrap_or_default())
    }

    fn clear_padding(&mut self) {
        if let Some(last) = self.bytes.last_mut()
            && !self.chunks.is_multiple_of(8)
        {
            *last &= (1u8 << (self.chunks % 8)) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sets_and_ignores_padding() {
        let mut bits = Bitmap::empty(10);
        assert_eq!((bits.as_bytes().len(), bits.count()), (2, 0));
        assert!(bits.set(9) && !bits.set(9) && !bits.set(10), "a bit is set once, none past the count");
        assert!(bits.has(9) && !bits.has(8) && !bits.has(10));
        assert_eq!(bits.missing().count(), 9);
        assert_eq!(Bitmap::full(10).count(), 10);
        assert!(Bitmap::full(10).is_full() && Bitmap::full(0).is_full());
        let peer = Bitmap::decode(&[0xff, 0xff], 10).expect("right length");
        assert_eq!(peer, Bitmap::full(10), "a peer's padding bits are cleared");
        assert!(Bitmap::decode(&[0xff], 10).is_err() && Bitmap::decode(&[0; 3], 10).is_err());
        let cut = Bitmap::from_prefix(&[0b11], 10);
        assert_eq!((cut.count(), cut.chunks()), (2, 10));
        bits.union(&cut);
        assert_eq!(bits.count(), 3);
        assert_eq!(bits.byte_of(9), (1, 0b10));
    }
}
