//! Bounded big-endian reading and writing, shared by every message of this crate and by the on-disk
//! state files of `store`.

/// Why bytes from the network could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a field: a truncated datagram or frame.
    #[error("message truncated")]
    Truncated,
    /// Bytes were left after the message: a framing bug or a different protocol.
    #[error("{0} trailing bytes after message")]
    TrailingBytes(usize),
    /// The first bytes are not this protocol's magic: another program speaks on this port.
    #[error("not a p2pnode message (bad magic)")]
    BadMagic,
    /// The peer speaks a version this build does not know; upgrade to talk to it.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// A length field exceeds the limit of its field.
    #[error("{what} too long: {len} > {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// The length found.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A tag byte names no known variant.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// The field.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A text field is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// The fields decode but contradict each other (for example a manifest whose chunk count does not
    /// match its size).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Reads fields from a byte slice, failing on truncation instead of panicking.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Checks the 4-byte magic and the version byte that open every top-level message.
    pub fn header(&mut self, magic: &[u8; 4], version: u8) -> Result<(), DecodeError> {
        if self.array::<4>()? != *magic {
            return Err(DecodeError::BadMagic);
        }
        match self.u8()? {
            v if v == version => Ok(()),
            v => Err(DecodeError::UnsupportedVersion(v)),
        }
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// A big-endian `u8`.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A `u16`-length-prefixed UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        check_len(what, len, max)?;
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8(what))
    }

    /// A `u32` element count of at most `max`, also bounded by what the remaining bytes can hold with
    /// `min_elem` bytes per element, so a forged count cannot make the caller pre-allocate much.
    pub fn count(&mut self, what: &'static str, max: usize, min_elem: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        check_len(what, n, max)?;
        if n.saturating_mul(min_elem) > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    /// Ends decoding: all input must have been consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Appends fields to a byte vector.
pub trait Writer {
    /// Appends raw bytes.
    fn put(&mut self, bytes: &[u8]);
    /// Appends a big-endian `u8`.
    fn put_u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    /// Appends a big-endian `u16`.
    fn put_u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }
    /// Appends a big-endian `u32`.
    fn put_u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
    /// Appends a big-endian `u64`.
    fn put_u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }
    /// Writes a `u16`-length-prefixed string; callers validate the length against the field's limit
    /// before encoding, so the cast never truncates.
    fn put_str(&mut self, s: &str) {
        debug_assert!(s.len() <= usize::from(u16::MAX));
        self.put_u16(s.len() as u16);
        self.put(s.as_bytes());
    }
}

impl Writer for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Fails when `len` exceeds `max`.
pub fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::TooLong { what, len: len as u64, max: max as u64 });
    }
    Ok(())
}
