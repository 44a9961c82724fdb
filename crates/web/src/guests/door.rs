//! Who gets in: the 6-digit PIN shown at the serving terminal, replaced after [`MAX_WRONG`] wrong tries
//! in all (from any address), after which no PIN is taken for [`COOL_DOWN`] (so guessing goes at 5 tries
//! in 30 s at most: one chance in 200,000 per half minute), and the sessions it opens, each bound to the
//! guest's address and ended after [`SESSION_LIFE`]. Sans-IO: the caller passes the time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::http::{random_token, same_secret};

/// Wrong PINs in all before the PIN is replaced.
pub const MAX_WRONG: u32 = 5;
/// How long no PIN is taken once one was replaced: the person who needs the new one reads it off the
/// terminal meanwhile.
pub const COOL_DOWN: Duration = Duration::from_secs(30);
/// How long a guest's session lasts.
pub const SESSION_LIFE: Duration = Duration::from_secs(60 * 60);
/// Sessions held at once; the oldest goes first.
const MAX_SESSIONS: usize = 256;

/// The PIN and the sessions it opened.
pub(crate) struct Door {
    pin: String,
    wrong: u32,
    /// When the PIN was last replaced.
    replaced: Option<Instant>,
    sessions: HashMap<String, Session>,
}

struct Session {
    ip: IpAddr,
    until: Instant,
}

/// What a PIN try came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tried {
    /// In: the session's token.
    Admitted(String),
    /// Wrong; this many tries are left to everyone before the PIN is replaced.
    Wrong { left: u32 },
    /// Wrong, the last try: the PIN is now this new one (to be shown at the terminal).
    Replaced(String),
    /// Not tried: the PIN was replaced moments ago; try again after this long.
    Wait(Duration),
}

impl Door {
    pub(crate) fn new() -> Result<Self, getrandom::Error> {
        Ok(Self { pin: new_pin()?, wrong: 0, replaced: None, sessions: HashMap::new() })
    }

    /// The PIN now.
    pub(crate) fn pin(&self) -> &str {
        &self.pin
    }

    /// Tries `pin` from `ip` at `now`.
    pub(crate) fn try_pin(&mut self, pin: &str, ip: IpAddr, now: Instant) -> Result<Tried, getrandom::Error> {
        if let Some(left) = self.replaced.map(|at| (at + COOL_DOWN).saturating_duration_since(now))
            && !left.is_zero()
        {
            return Ok(Tried::Wait(left));
        }
        if same_secret(pin.trim(), &self.pin) {
            let token = random_token()?;
            self.sessions.retain(|_, s| s.until > now);
            if self.sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = self.sessions.iter().min_by_key(|(_, s)| s.until).map(|(t, _)| t.clone())
            {
                self.sessions.remove(&oldest);
            }
            self.sessions.insert(token.clone(), Session { ip, until: now + SESSION_LIFE });
            return Ok(Tried::Admitted(token));
        }
        self.wrong += 1;
        if self.wrong < MAX_WRONG {
            return Ok(Tried::Wrong { left: MAX_WRONG - self.wrong });
        }
        (self.pin, self.wrong, self.replaced) = (new_pin()?, 0, Some(now));
        Ok(Tried::Replaced(self.pin.clone()))
    }

    /// Whether `token` is a session of `ip`'s that has not ended at `now`.
    pub(crate) fn admits(&self, token: &str, ip: IpAddr, now: Instant) -> bool {
        self.sessions.iter().any(|(t, s)| same_secret(t, token) && s.ip == ip && s.until > now)
    }
}

/// Six random digits.
fn new_pin() -> Result<String, getrandom::Error> {
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes)?;
        let n = u32::from_le_bytes(bytes);
        // Below the largest multiple of a million: every PIN equally likely.
        if n < u32::MAX - u32::MAX % 1_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 7));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 9));

    fn wrong_pin(door: &Door) -> String {
        format!("{:06}", (door.pin().parse::<u32>().expect("digits") + 1) % 1_000_000)
    }

    #[test]
    fn five_wrong_pins_from_anywhere_replace_it() {
        let mut door = Door::new().expect("random");
        let (old, now) = (door.pin().to_string(), Instant::now());
        assert_eq!(old.len(), 6);
        for left in (1..MAX_WRONG).rev() {
            let from = if left % 2 == 0 { HOME } else { OTHER };
            assert_eq!(door.try_pin(&wrong_pin(&door), from, now).expect("random"), Tried::Wrong { left });
        }
        let Tried::Replaced(new) = door.try_pin(&wrong_pin(&door), HOME, now).expect("random") else {
            panic!("the fifth wrong PIN replaces it")
        };
        assert_eq!(new, door.pin());
        assert!(matches!(door.try_pin(&new, HOME, now).expect("random"), Tried::Wait(_)), "cooling down");
        let later = now + COOL_DOWN;
        if new != old {
            assert!(matches!(door.try_pin(&old, HOME, later).expect("random"), Tried::Wrong { .. }));
        }
        assert!(matches!(door.try_pin(&new, HOME, later).expect("random"), Tried::Admitted(_)));
    }

    #[test]
    fn a_session_is_bound_to_its_address_and_ends_after_an_hour() {
        let mut door = Door::new().expect("random");
        let now = Instant::now();
        let pin = door.pin().to_string();
        let Tried::Admitted(token) = door.try_pin(&pin, HOME, now).expect("random") else { panic!("right PIN") };
        assert!(door.admits(&token, HOME, now));
        assert!(!door.admits(&token, OTHER, now), "another address");
        assert!(!door.admits(&token, HOME, now + SESSION_LIFE), "an hour later");
        assert!(!door.admits("0".repeat(64).as_str(), HOME, now));
    }
}
