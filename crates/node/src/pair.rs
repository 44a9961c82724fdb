//! Pairing two people's nodes by a short code read aloud (`7-tiger-umbrella`): one side waits, showing
//! the code, and broadcasts a [`Beacon`] with the code's number; the other types the code, hears the
//! beacon, and connects over an authenticating transport (tls or quic). Over that channel both run
//! SPAKE2 on the whole code and prove, bound to the channel and to both proven ids, that they derived the
//! same key: someone who does not know the code learns nothing and stores nothing, and a relay between
//! two channels fails the proof. Then each tells its name, and each side files the other's id under it
//! ([`crate::TrustList::add`]). The waiting side takes one attempt per code: a wrong one ends that code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::{Beacon, NodeId, PairFrame};
use spake2::{Ed25519Group, Identity as SpakeIdentity, Password, Spake2};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use transport::{Authenticated, Transport, TransportError, async_trait};

use crate::words::WORDS;

/// How long the exchange after a connection may take: it is a few small frames.
const EXCHANGE_TIME: Duration = Duration::from_secs(10);
/// How long the last words of a side may take to be delivered, or awaited.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How often a waiting side broadcasts its beacon.
const BEACON_EVERY: Duration = Duration::from_millis(500);
/// The numbers a code starts with: 1 to this.
const NAMEPLATES: u16 = 99;

/// A pairing code: a number that finds the waiting side on the LAN, and two words that only the two
/// people know; SPAKE2 runs on all of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairCode {
    nameplate: u16,
    words: [&'static str; 2],
}

impl PairCode {
    /// A new code, at random.
    pub fn random() -> Self {
        let bytes = crate::random_id().0;
        let nameplate = u16::from_be_bytes([bytes[0], bytes[1]]) % NAMEPLATES + 1;
        Self { nameplate, words: [WORDS[usize::from(bytes[2])], WORDS[usize::from(bytes[3])]] }
    }
}

impl std::fmt::Display for PairCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.nameplate, self.words[0], self.words[1])
    }
}

impl std::str::FromStr for PairCode {
    type Err = PairError;

    fn from_str(text: &str) -> Result<Self, PairError> {
        let bad = || PairError::BadCode(text.to_string());
        let lower = text.trim().to_lowercase();
        let mut parts = lower.split('-');
        let nameplate = parts.next().and_then(|n| n.parse().ok()).filter(|n| (1..=NAMEPLATES).contains(n));
        let word = |w: Option<&str>| w.and_then(|w| WORDS.iter().find(|k| **k == w).copied());
        match (nameplate, word(parts.next()), word(parts.next()), parts.next()) {
            (Some(nameplate), Some(first), Some(second), None) => Ok(Self { nameplate, words: [first, second] }),
            _ => Err(bad()),
        }
    }
}

/// Why a pairing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// The text is not a code.
    #[error("{0:?} is not a pairing code: a number and two words, as 7-tiger-umbrella")]
    BadCode(String),
    /// The other side's proof failed: the codes differ. Nothing was stored.
    #[error("the code was wrong: nothing was stored on either side")]
    WrongCode,
    /// Nobody came in time.
    #[error("no one paired with code {code} within {within:?}")]
    NobodyCame {
        /// The code.
        code: String,
        /// The wait.
        within: Duration,
    },
    /// The channel failed or the other side broke the exchange.
    #[error("pairing broke off: {0}")]
    Broken(String),
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The transport does not prove ids: pairing would bind nothing.
    #[error("pairing needs a transport that proves ids (tls or quic)")]
    NotAuthenticating,
}

/// Where beacons are sent and heard: the LAN's broadcast, as the front end has it.
#[async_trait]
pub trait Rendezvous: Send {
    /// Broadcasts `beacon`'s bytes.
    async fn announce(&self, beacon: &[u8]);

    /// The next datagram heard, and who sent it.
    async fn hear(&mut self) -> std::io::Result<(Vec<u8>, SocketAddr)>;
}

/// The other side of a pairing: its proven id and the name it gave.
#[derive(Debug)]
pub struct Paired {
    /// Its node id, proven by its certificate.
    pub id: NodeId,
    /// The name it gave (a peer's choice: escape it wherever it is shown).
    pub name: String,
    /// The end of the channel, under way: see [`Paired::ended`].
    ending: Option<tokio::task::JoinHandle<()>>,
}

impl Paired {
    fn ending(mut self, ending: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        self.ending = Some(tokio::spawn(ending));
        self
    }

    /// Completes once the channel's last words are delivered (or a moment has passed): await it before
    /// the process ends, after filing and telling the pairing, which need not wait for it.
    pub async fn ended(self) {
        if let Some(ending) = self.ending {
            let _ = ending.await;
        }
    }
}

/// This node as a pairing shows it: its id (the one `transport` proves) and the name it tells.
#[derive(Clone, Copy, Debug)]
pub struct Me<'a> {
    /// The id the transport proves.
    pub id: NodeId,
    /// The name told to the other side.
    pub name: &'a str,
}

/// One side of a pairing: over `transport` (one that proves ids), meeting the other side through
/// `rendezvous`, with `code`, as `me`, for at most `within`.
pub struct Pairing<'a> {
    /// The channel's transport.
    pub transport: Arc<dyn Transport>,
    /// Where beacons go and come from.
    pub rendezvous: &'a mut dyn Rendezvous,
    /// The code.
    pub code: &'a PairCode,
    /// This node.
    pub me: Me<'a>,
    /// How long to wait for the other side.
    pub within: Duration,
}

impl Pairing<'_> {
    /// Waits for the one who types the code, beaconing meanwhile. One attempt per code: a wrong one is
    /// [`PairError::WrongCode`].
    pub async fn wait(self) -> Result<Paired, PairError> {
        self.check()?;
        wait(self).await
    }

    /// Finds the node waiting with the code, by its beacon, and pairs with it.
    pub async fn join(self) -> Result<Paired, PairError> {
        self.check()?;
        join(self).await
    }

    fn check(&self) -> Result<(), PairError> {
        match self.transport.authenticates() {
            true => Ok(()),
            false => Err(PairError::NotAuthenticating),
        }
    }
}

async fn wait(Pairing { transport, rendezvous, code, me, within }: Pairing<'_>) -> Result<Paired, PairError> {
    let mut listener = transport.bind(SocketAddr::from(([0, 0, 0, 0], 0))).await?;
    let port = listener.local_addr().port();
    let beacon = Beacon { nameplate: code.nameplate, node: me.id, port }.encode();
    let deadline = tokio::time::Instant::now() + within;
    let mut every = tokio::time::interval(BEACON_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => rendezvous.announce(&beacon).await,
            accepted = listener.accept() => {
                let Ok(mut incoming) = accepted else { continue };
                let Some(proven) = incoming.authenticated() else { continue };
                let exchange = async {
                    let mut stream = incoming.accept_stream().await?.ok_or_else(|| broken("closed"))?;
                    let paired = exchange(&mut stream, code, Side::Waiting, me, proven).await;
                    // Its last words (done, or a wrong code) have reached the other side once that ends
                    // its side of the stream, which it does having read them: awaited apart.
                    let ending = async move {
                        let _ = tokio::time::timeout(CLOSE_GRACE, stream.read(&mut [0u8; 1])).await;
                        stream.finish();
                        drop(incoming);
                    };
                    match paired {
                        Ok(paired) => Ok(paired.ending(ending)),
                        Err(e) => {
                            ending.await;
                            Err(e)
                        }
                    }
                };
                match tokio::time::timeout(EXCHANGE_TIME, exchange).await {
                    Ok(Ok(paired)) => return Ok(paired),
                    Ok(Err(PairError::WrongCode)) => return Err(PairError::WrongCode),
                    // Someone connected and left before trying the code: no attempt, the code stands.
                    Ok(Err(e)) => tracing::debug!(error = %e, "pairing attempt broke off"),
                    Err(_) => tracing::debug!("pairing attempt timed out"),
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                return Err(PairError::NobodyCame { code: code.to_string(), within });
            }
        }
    }
}

async fn join(Pairing { transport, rendezvous, code, me, within }: Pairing<'_>) -> Result<Paired, PairError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let heard = tokio::time::timeout_at(deadline, rendezvous.hear()).await;
        let Ok(heard) = heard else { return Err(PairError::NobodyCame { code: code.to_string(), within }) };
        let Ok((bytes, from)) = heard else { continue };
        let Ok(beacon) = Beacon::decode(&bytes) else { continue };
        if beacon.nameplate != code.nameplate {
            continue;
        }
        let attempt = async {
            let conn = transport.connect(SocketAddr::new(from.ip(), beacon.port), beacon.node).await?;
            let mut stream = conn.open().await?;
            let proven = stream.authenticated().ok_or(PairError::NotAuthenticating)?;
            let paired = exchange(&mut stream, code, Side::Joining, me, proven).await;
            // The other side waits for this end, delivered before this process may end: awaited apart.
            let ending = async move {
                let _ = tokio::time::timeout(CLOSE_GRACE, stream.finish_delivered()).await;
                drop(conn);
            };
            paired.map(|paired| paired.ending(ending))
        };
        match tokio::time::timeout(EXCHANGE_TIME, attempt).await {
            Ok(Err(PairError::Transport(e))) => tracing::debug!(error = %e, "a beacon's node did not answer"),
            Ok(result) => return result,
            Err(_) => return Err(broken("no answer in time")),
        }
    }
}

/// Which side of the exchange this is: the waiting one answers, the joining one asks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Waiting,
    Joining,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Waiting => b"waiting",
            Side::Joining => b"joining",
        }
    }

    fn other(self) -> Self {
        match self {
            Side::Waiting => Side::Joining,
            Side::Joining => Side::Waiting,
        }
    }
}

/// SPAKE2 on the code, proofs of the key bound to the channel and both ids, then names.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    code: &PairCode,
    side: Side,
    me: Me<'_>,
    proven: Authenticated,
) -> Result<Paired, PairError> {
    let (spake, message) = Spake2::<Ed25519Group>::start_symmetric(
        &Password::new(code.to_string().as_bytes()),
        &SpakeIdentity::new(b"p2pnode pair v1"),
    );
    send(stream, &PairFrame::Spake(message)).await?;
    let PairFrame::Spake(theirs) = receive(stream).await? else { return Err(broken("no key exchange")) };
    let key = spake.finish(&theirs).map_err(|_| broken("a malformed key exchange"))?;
    let key: [u8; 32] = key.as_slice().try_into().map_err(|_| broken("a key of another length"))?;
    let proof = |of: Side, from: NodeId, to: NodeId| {
        let mut hasher = blake3::Hasher::new_keyed(&key);
        hasher.update(of.label()).update(&proven.binding).update(&from.0).update(&to.0);
        *hasher.finalize().as_bytes()
    };
    // The joining side proves first: a guesser learns whether it guessed only from the waiting side's
    // refusal, and the waiting side proves nothing to a wrong key.
    let check = |frame: PairFrame| match frame {
        PairFrame::Confirm(mac)
            if blake3::Hash::from(mac) == blake3::Hash::from(proof(side.other(), proven.peer, me.id)) =>
        {
            Ok(())
        }
        PairFrame::Confirm(_) | PairFrame::WrongCode => Err(PairError::WrongCode),
        _ => Err(broken("no proof of the key")),
    };
    match side {
        Side::Joining => {
            send(stream, &PairFrame::Confirm(proof(side, me.id, proven.peer))).await?;
            check(receive(stream).await?)?;
        }
        Side::Waiting => {
            if let Err(e) = check(receive(stream).await?) {
                // Told (and delivered before the channel ends: see `wait`).
                let _ = send(stream, &PairFrame::WrongCode).await;
                return Err(e);
            }
            send(stream, &PairFrame::Confirm(proof(side, me.id, proven.peer))).await?;
        }
    }
    // The waiting side names itself first, and says when it has the joining side's name (delivered before
    // it ends: see `wait`); the joining side waits for that, or for a moment.
    let name = PairFrame::Name(me.name.to_string());
    if side == Side::Waiting {
        send(stream, &name).await?;
    }
    let PairFrame::Name(theirs) = receive(stream).await? else { return Err(broken("no name")) };
    match side {
        Side::Waiting => send(stream, &PairFrame::Done).await?,
        Side::Joining => {
            send(stream, &name).await?;
            let _ = tokio::time::timeout(CLOSE_GRACE, receive(stream)).await;
        }
    }
    Ok(Paired { id: proven.peer, name: theirs, ending: None })
}

async fn send<S: AsyncWrite + Unpin + ?Sized>(stream: &mut S, frame: &PairFrame) -> Result<(), PairError> {
    let bytes = frame.encode().map_err(|e| broken(&e.to_string()))?;
    stream.write_all(&bytes).await.map_err(TransportError::from)?;
    stream.flush().await.map_err(TransportError::from)?;
    Ok(())
}

async fn receive<S: AsyncRead + Unpin + ?Sized>(stream: &mut S) -> Result<PairFrame, PairError> {
    let mut head = [0u8; 3];
    stream.read_exact(&mut head).await.map_err(TransportError::from)?;
    let mut body = vec![0u8; PairFrame::body_len(head).map_err(|e| broken(&e.to_string()))?];
    stream.read_exact(&mut body).await.map_err(TransportError::from)?;
    PairFrame::decode(head, &body).map_err(|e| broken(&e.to_string()))
}

fn broken(what: &str) -> PairError {
    PairError::Broken(what.to_string())
}
