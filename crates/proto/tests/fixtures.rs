//! Every frame today's nodes send, kept as bytes in `fixtures/wire-v2.txt`: each must still decode to the
//! same value, and still encode to the same bytes, so no change can break an older peer silently. New
//! frames are added to the file; a line once written is never changed (see the crate's "Growing the
//! wire"). `P2PNODE_ADD_FIXTURES=1 cargo test -p proto --test fixtures` appends the frames the file lacks,
//! and only those.

use std::collections::BTreeMap;
use std::io::Write as _;

use proto::{
    Announcement, Bitmap, Catalogue, CatalogueEntry, Datagram, ErrorCode, FileId, GroupKey, Manifest, NodeId, Offer,
    OfferId, Request, Response, Role,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wire-v2.txt");

/// Decodes bytes and says whether they are the value a frame was made from.
type Decodes = Box<dyn Fn(&[u8]) -> Result<bool, proto::DecodeError>>;

/// A frame of the wire: its value, its bytes as sent, and how the bytes are read back.
struct Frame {
    bytes: Vec<u8>,
    decodes: Decodes,
}

fn frame<T: PartialEq + 'static>(
    value: T,
    bytes: Vec<u8>,
    decode: fn(&[u8]) -> Result<T, proto::DecodeError>,
) -> Frame {
    Frame { bytes, decodes: Box::new(move |b| decode(b).map(|decoded| decoded == value)) }
}

/// Request and response frames are sent with their length prefix; the decoders take the body.
fn request(r: Request) -> Frame {
    let bytes = r.encode();
    frame(r, bytes, |b| Request::decode(&b[proto::FRAME_PREFIX..]))
}

fn response(r: Response) -> Frame {
    let bytes = r.encode();
    frame(r, bytes, |b| Response::decode(&b[proto::FRAME_PREFIX..]))
}

/// Bytes that carry no structure to decode (a key, a proof): the same bytes must come out today.
fn fixed(bytes: Vec<u8>) -> Frame {
    let same = bytes.clone();
    Frame { bytes, decodes: Box::new(move |b| Ok(b == same)) }
}

fn datagram(d: Datagram) -> Frame {
    let bytes = d.encode().expect("within limits");
    frame(d, bytes, Datagram::decode)
}

/// Every frame of wire version 2, by the name its fixture line carries.
fn today() -> BTreeMap<&'static str, Frame> {
    let file = FileId([0xab; 32]);
    let hashes = vec![blake3::hash(b"one"), blake3::hash(b"two")];
    let manifest = Manifest::new("film.mkv".into(), 300 * 1024, hashes).expect("valid");
    let whole = CatalogueEntry { id: file, name: "films/film.mkv".into(), size: 300 * 1024, have: None };
    let partial = CatalogueEntry {
        id: FileId([0xcd; 32]),
        name: "part.bin".into(),
        size: 1 << 20,
        have: Some(Bitmap::from_prefix(&[0b0101], 4)),
    };
    let announcement = Announcement {
        node: NodeId([7; 32]),
        instance: 0x0102_0304_0506_0708,
        name: "laptop".into(),
        ports: vec![("tcp".into(), 5001), ("tls".into(), 5001), ("quic".into(), 5001)],
        catalogue_version: 42,
        file_count: 3,
        interval_secs: 5,
    };
    let offer = Offer {
        id: OfferId([0x11; 16]),
        transport: "quic".into(),
        port: 5001,
        files: 3,
        bytes: 5 << 30,
        text: 0,
        title: "holiday/ and 2 more".into(),
        name: "laptop".into(),
    };
    let error = |code| response(Response::Err { code, message: format!("{code}") });
    // A group's members must derive the same keys and proofs whatever version each runs.
    let group = GroupKey::derive("fixture group secret").expect("a secret");
    let binding = [0x5a; 32];
    BTreeMap::from([
        ("request-catalogue", request(Request::Catalogue)),
        ("request-manifest", request(Request::Manifest(file))),
        ("request-chunk", request(Request::Chunk { file, index: 7, offset: 65_536, len: 262_144 })),
        ("request-have", request(Request::Have(file))),
        ("response-ok", response(Response::Ok { len: 1 << 33 })),
        ("response-not-found", error(ErrorCode::NotFound)),
        ("response-bad-request", error(ErrorCode::BadRequest)),
        ("response-busy", error(ErrorCode::Busy)),
        ("response-internal", error(ErrorCode::Internal)),
        ("response-elsewhere", error(ErrorCode::Elsewhere)),
        ("response-not-trusted", error(ErrorCode::NotTrusted)),
        ("response-declined", error(ErrorCode::Declined)),
        ("request-offer", request(Request::Offer(offer))),
        ("request-offer-list", request(Request::OfferList(OfferId([0x11; 16])))),
        ("request-offer-text", request(Request::OfferText(OfferId([0x11; 16])))),
        ("request-offer-ended", request(Request::OfferEnded { offer: OfferId([0x11; 16]), fetched: true })),
        ("datagram-announce", datagram(Datagram::Announce(announcement))),
        ("datagram-query", datagram(Datagram::Query { from: NodeId([9; 32]) })),
        ("catalogue", {
            let catalogue = Catalogue { entries: vec![whole, partial] };
            let bytes = catalogue.encode();
            frame(catalogue, bytes, Catalogue::decode)
        }),
        ("group-discovery-key", fixed(group.discovery_key().to_vec())),
        ("group-proof-client", fixed(group.proof(Role::Client, &binding).to_vec())),
        ("group-proof-server", fixed(group.proof(Role::Server, &binding).to_vec())),
        ("manifest", {
            let bytes = manifest.encode();
            frame(manifest, bytes, Manifest::decode)
        }),
    ])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let digit = |i: usize| u8::from_str_radix(&text[i..i + 2], 16).expect("hex fixture");
    (0..text.len()).step_by(2).map(digit).collect()
}

/// The fixture file: `name hex` per line, `#` lines are comments.
fn kept() -> BTreeMap<String, Vec<u8>> {
    let text = std::fs::read_to_string(FIXTURES).unwrap_or_default();
    let lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    lines.filter_map(|l| l.split_once(' ')).map(|(name, bytes)| (name.to_string(), unhex(bytes.trim()))).collect()
}

#[test]
fn every_frame_of_wire_version_2_decodes_as_it_did() {
    let (today, kept) = (today(), kept());
    for (name, bytes) in &kept {
        let frame = today
            .get(name.as_str())
            .unwrap_or_else(|| panic!("fixture {name}: no frame of that name (never remove one)"));
        assert_eq!(&frame.bytes, bytes, "fixture {name}: today's encoding differs from the bytes older peers send");
        assert_eq!(
            (frame.decodes)(bytes),
            Ok(true),
            "fixture {name}: the kept bytes no longer decode to the same value"
        );
    }
    let missing: Vec<_> = today.keys().filter(|name| !kept.contains_key(**name)).collect();
    if missing.is_empty() {
        return;
    }
    if std::env::var_os("P2PNODE_ADD_FIXTURES").is_some() {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(FIXTURES).expect("fixture file");
        for name in &missing {
            writeln!(file, "{name} {}", hex(&today[**name].bytes)).expect("fixture written");
        }
        return;
    }
    panic!("frames without a fixture: {missing:?}; add them with P2PNODE_ADD_FIXTURES=1");
}

#[test]
fn a_request_this_build_does_not_know_is_a_decode_error_not_a_panic() {
    // What a newer peer's request looks like to this build: the server answers it `bad request`.
    let mut bytes = Request::Catalogue.encode();
    let tag = proto::FRAME_PREFIX + 5;
    bytes[tag] = 0xee;
    assert!(matches!(
        Request::decode(&bytes[proto::FRAME_PREFIX..]),
        Err(proto::DecodeError::UnknownTag { what: "request", tag: 0xee })
    ));
    // And an error code it does not know is kept as a number.
    let unknown = Response::Err { code: ErrorCode::Other(99), message: "not trusted".into() }.encode();
    assert!(matches!(
        Response::decode(&unknown[proto::FRAME_PREFIX..]),
        Ok(Response::Err { code: ErrorCode::Other(99), .. })
    ));
}
