//! Discovery datagrams of a private group, sealed with ChaCha20-Poly1305 (ring) under the group's
//! discovery key: an outsider sees random bytes, padded to a multiple of [`PAD`] (so a name's length
//! shows no more than its content), no name, id, port or count. Each carries a fresh random nonce and, inside the seal, the sender's clock: one older or newer
//! than [`WINDOW`] is refused, so a recorded datagram cannot be replayed later. Opening costs one AEAD
//! check, so datagrams of other groups and plain ones are dropped cheaply.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::{GroupKey, MAX_DATAGRAM};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// How far a sealed datagram's clock may be from ours: members' clocks may differ by this much, and a
/// replay is refused once it is this old.
const WINDOW: Duration = Duration::from_secs(60);
/// The sender's clock, seconds since 1970, big-endian, first inside the seal; then the datagram's length.
const STAMP: usize = 8;
const LEN: usize = 2;
const TAG: usize = 16;
/// What sealing adds to a datagram at least: the nonce before it, the clock and length inside, the tag
/// after it.
const OVERHEAD: usize = NONCE_LEN + STAMP + LEN + TAG;
/// Sealed datagrams are padded to a multiple of this (at most [`MAX_DATAGRAM`]).
const PAD: usize = 256;

/// Seals and opens the datagrams of one group (discovery's, and any other a member broadcasts, such as a
/// pairing beacon).
pub struct Seal {
    key: LessSafeKey,
    random: SystemRandom,
}

impl Seal {
    /// The seal of `group`.
    pub fn new(group: &GroupKey) -> Self {
        let key = UnboundKey::new(&CHACHA20_POLY1305, &group.discovery_key()).expect("a 32-byte key");
        Self { key: LessSafeKey::new(key), random: SystemRandom::new() }
    }

    /// `datagram` sealed; `None` if it would not fit one [`MAX_DATAGRAM`] packet.
    pub fn seal(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        if datagram.len() + OVERHEAD > MAX_DATAGRAM {
            return None;
        }
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let padded = (datagram.len() + OVERHEAD).next_multiple_of(PAD).min(MAX_DATAGRAM) - NONCE_LEN - TAG;
        let mut inside = Vec::with_capacity(padded + TAG);
        inside.extend_from_slice(&now_secs().to_be_bytes());
        inside.extend_from_slice(&(datagram.len() as u16).to_be_bytes());
        inside.extend_from_slice(datagram);
        inside.resize(padded, 0);
        self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut inside).ok()?;
        Some([&nonce[..], &inside].concat())
    }

    /// The datagram inside `sealed`, if this group sealed it within a minute of now (the members' clocks may differ that much).
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < OVERHEAD || sealed.len() > MAX_DATAGRAM {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let inside = self.key.open_in_place(nonce, Aad::empty(), &mut body).ok()?;
        let (stamp, rest) = inside.split_at(STAMP);
        let (len, rest) = rest.split_at(LEN);
        let datagram = rest.get(..usize::from(u16::from_be_bytes(len.try_into().ok()?)))?;
        let stamp = u64::from_be_bytes(stamp.try_into().ok()?);
        (now_secs().abs_diff(stamp) <= WINDOW.as_secs()).then(|| datagram.to_vec())
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_group_opens_and_nothing_shows_through() {
        let (ours, theirs) = (Seal::new(&GroupKey::from_bytes([1; 32])), Seal::new(&GroupKey::from_bytes([2; 32])));
        let datagram = b"P2PD\x02 name=alice ports=tls:5001".to_vec();
        let sealed = ours.seal(&datagram).expect("fits");
        assert_eq!(ours.open(&sealed), Some(datagram.clone()));
        assert_eq!(theirs.open(&sealed), None, "another group's key");
        assert!(!sealed.windows(5).any(|w| w == b"alice"), "the name does not show");
        assert_ne!(ours.seal(&datagram), Some(sealed.clone()), "a fresh nonce each time");
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(ours.open(&flipped), None, "tampered");
        assert_eq!(ours.open(&datagram), None, "a plain datagram");
        assert!(ours.seal(&[0; MAX_DATAGRAM]).is_none(), "too long to seal");
        let (short, long) = (ours.seal(b"a").expect("fits"), ours.seal(&[7; 200]).expect("fits"));
        assert_eq!((short.len(), long.len(), sealed.len()), (PAD, PAD, PAD), "lengths are padded");
    }

    #[test]
    fn a_stale_datagram_is_refused() {
        let seal = Seal::new(&GroupKey::from_bytes([3; 32]));
        let old = now_secs() - WINDOW.as_secs() - 5;
        let mut inside = [&old.to_be_bytes()[..], &8u16.to_be_bytes(), b"datagram"].concat();
        let nonce = [9u8; NONCE_LEN];
        seal.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut inside)
            .expect("seal");
        assert_eq!(seal.open(&[&nonce[..], &inside].concat()), None);
    }
}
