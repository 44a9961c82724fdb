//! Where the page listens and its secret, kept in the state folder so that a bookmark keeps working
//! across restarts.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use tokio::net::TcpListener;

use crate::WebError;
use crate::http::random_token;

/// The file in the state folder that holds the page's address and secret.
pub const PAGE_FILE: &str = "web";
/// The address the first start tries.
pub const DEFAULT_PAGE_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5080);

/// Where the page is asked to listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageAt {
    /// Where it listened before (the first time [`DEFAULT_PAGE_ADDR`], or any free port if that is
    /// taken), remembered in the state folder.
    Remembered,
    /// Here (a loopback address; port 0: any free one), not remembered.
    Chosen(SocketAddr),
}

/// The page's listener, and the secret that opens it.
pub(crate) struct Bound {
    pub(crate) listener: TcpListener,
    pub(crate) secret: String,
}

/// Binds the page's port in `state` folder's terms (see [`PageAt`]), with the stored secret (made and
/// stored the first time).
pub(crate) async fn bind(state: &Path, at: PageAt) -> Result<Bound, WebError> {
    let file = state.join(PAGE_FILE);
    let stored = match std::fs::read_to_string(&file) {
        Ok(text) => Stored::parse(&text),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(source) => return Err(WebError::State { path: file, source }),
    };
    let secret = match &stored {
        Some(stored) => stored.secret.clone(),
        None => random_token().map_err(|e| WebError::Random(e.to_string()))?,
    };
    let listener = match (at, &stored) {
        (PageAt::Chosen(addr), _) => {
            if !addr.ip().is_loopback() {
                return Err(WebError::NotLoopback(addr));
            }
            bind_at(addr).await?
        }
        (PageAt::Remembered, Some(Stored { addr: Some(addr), .. })) => bind_at(*addr).await?,
        (PageAt::Remembered, _) => match TcpListener::bind(DEFAULT_PAGE_ADDR).await {
            Ok(listener) => listener,
            Err(_) => bind_at(SocketAddr::new(DEFAULT_PAGE_ADDR.ip(), 0)).await?,
        },
    };
    let addr = listener.local_addr().map_err(|source| WebError::Bind { addr: DEFAULT_PAGE_ADDR, source })?;
    let remembered = matches!(at, PageAt::Remembered).then_some(addr).or(stored.as_ref().and_then(|s| s.addr));
    let text = Stored { addr: remembered, secret: secret.clone() }.to_text();
    if stored.as_ref().map(Stored::to_text).as_deref() != Some(&text) {
        write_private(&file, &text).map_err(|source| WebError::State { path: file, source })?;
    }
    Ok(Bound { listener, secret })
}

async fn bind_at(addr: SocketAddr) -> Result<TcpListener, WebError> {
    TcpListener::bind(addr).await.map_err(|source| WebError::Bind { addr, source })
}

/// The state file's content: the address on its first line (none while only a chosen one was used),
/// the secret on its second.
struct Stored {
    addr: Option<SocketAddr>,
    secret: String,
}

impl Stored {
    /// A file that does not hold a valid secret is made anew.
    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let addr = lines.next()?.trim().parse().ok().filter(|a: &SocketAddr| a.ip().is_loopback());
        let secret = lines.next()?.trim();
        let valid = secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| Self { addr, secret: secret.to_string() })
    }

    fn to_text(&self) -> String {
        let addr = self.addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
        format!("{addr}\n{}\n", self.secret)
    }
}

/// Writes `text` to `path`, readable by its owner alone (it holds the secret).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_address_and_secret_are_remembered() {
        let state = tempfile::tempdir().expect("temp dir");
        let first = bind(state.path(), PageAt::Remembered).await.expect("first start");
        let addr = first.listener.local_addr().expect("addr");
        drop(first.listener);
        let again = bind(state.path(), PageAt::Remembered).await.expect("second start");
        assert_eq!(again.listener.local_addr().expect("addr"), addr);
        assert_eq!(again.secret, first.secret);
        assert_eq!(again.secret.len(), 64);
    }

    #[tokio::test]
    async fn a_taken_remembered_port_is_an_error_and_a_chosen_one_must_be_loopback() {
        let state = tempfile::tempdir().expect("temp dir");
        let first = bind(state.path(), PageAt::Remembered).await.expect("first start");
        let taken = bind(state.path(), PageAt::Remembered).await;
        assert!(matches!(taken, Err(WebError::Bind { .. })), "the port is held by the first");
        drop(first);
        let lan = PageAt::Chosen("0.0.0.0:0".parse().expect("addr"));
        assert!(matches!(bind(state.path(), lan).await, Err(WebError::NotLoopback(_))));
    }

    proptest::proptest! {
        /// Whatever the state file holds, it is read without a panic, and a secret read is 64 hex digits.
        #[test]
        fn any_state_file_is_read_safely(text in "(?s).{0,200}") {
            if let Some(stored) = Stored::parse(&text) {
                proptest::prop_assert!(stored.secret.len() == 64);
                proptest::prop_assert!(stored.addr.is_none_or(|a| a.ip().is_loopback()));
            }
        }
    }

    #[test]
    fn a_damaged_file_is_made_anew() {
        assert!(Stored::parse("127.0.0.1:5080\nnot-hex\n").is_none());
        assert!(Stored::parse("").is_none());
        let stored = Stored::parse(&format!("8.8.8.8:80\n{}\n", "a".repeat(64))).expect("valid secret");
        assert_eq!(stored.addr, None, "only loopback addresses are taken");
    }
}
