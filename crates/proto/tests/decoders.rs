//! Property tests of every decoder: what a peer can send us. Each message round-trips through its
//! encoding, and no input (random bytes, or a valid message truncated, extended or with bytes flipped)
//! makes a decoder panic; whatever a decoder accepts encodes back to a message that decodes the same.

use proptest::collection::vec;
use proptest::prelude::*;
use proto::{
    Announcement, Beacon, Bitmap, Catalogue, CatalogueEntry, Datagram, DecodeError, ErrorCode, FRAME_PREFIX, FileId,
    MAX_FRAME, MAX_OFFER_FILES, MAX_OFFER_TEXT, Manifest, NodeId, Offer, OfferId, PairFrame, Request, Response,
    chunk_count_for, chunk_size_for, frame_len,
};

fn announcement() -> impl Strategy<Value = Datagram> {
    let kind = "[a-z0-9-]{1,16}";
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        "\\PC{0,16}",
        vec((kind, any::<u16>()), 0..=2),
        any::<u64>(),
        any::<u32>(),
        any::<u16>(),
    )
        .prop_map(|(node, instance, name, ports, catalogue_version, file_count, interval_secs)| {
            Datagram::Announce(Announcement {
                node: NodeId(node),
                instance,
                name,
                ports,
                catalogue_version,
                file_count,
                interval_secs,
            })
        })
}

fn datagram() -> impl Strategy<Value = Datagram> {
    prop_oneof![announcement(), any::<[u8; 32]>().prop_map(|id| Datagram::Query { from: NodeId(id) })]
}

fn beacon() -> impl Strategy<Value = Beacon> {
    (any::<u16>(), any::<[u8; 32]>(), any::<u16>()).prop_map(|(nameplate, node, port)| Beacon {
        nameplate,
        node: NodeId(node),
        port,
    })
}

fn pair_frame() -> impl Strategy<Value = PairFrame> {
    prop_oneof![
        vec(any::<u8>(), 0..=proto::MAX_PAIR_FRAME).prop_map(PairFrame::Spake),
        any::<[u8; 32]>().prop_map(PairFrame::Confirm),
        "\\PC{0,16}".prop_map(PairFrame::Name),
        Just(PairFrame::WrongCode),
        Just(PairFrame::Done),
    ]
}

/// A pairing frame as a reader takes it: its 3-byte head, then the body.
fn decode_pair_frame(bytes: &[u8]) -> Result<PairFrame, DecodeError> {
    let (head, body) = bytes.split_at_checked(3).ok_or(DecodeError::Invalid("short"))?;
    PairFrame::decode(head.try_into().map_err(|_| DecodeError::Invalid("short"))?, body)
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Catalogue),
        any::<[u8; 32]>().prop_map(|id| Request::Manifest(FileId(id))),
        (any::<[u8; 32]>(), any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(id, index, offset, len)| Request::Chunk { file: FileId(id), index, offset, len }),
        any::<[u8; 32]>().prop_map(|id| Request::Have(FileId(id))),
        offer().prop_map(Request::Offer),
        any::<[u8; 16]>().prop_map(|id| Request::OfferList(OfferId(id))),
        any::<[u8; 16]>().prop_map(|id| Request::OfferText(OfferId(id))),
        (any::<[u8; 16]>(), any::<bool>())
            .prop_map(|(id, fetched)| Request::OfferEnded { offer: OfferId(id), fetched }),
    ]
}

fn offer() -> impl Strategy<Value = Offer> {
    (
        any::<[u8; 16]>(),
        "[a-z]{1,16}",
        any::<u16>(),
        0..=MAX_OFFER_FILES,
        any::<u64>(),
        0..=MAX_OFFER_TEXT,
        "\\PC{0,50}",
        "\\PC{0,16}",
    )
        .prop_map(|(id, transport, port, files, bytes, text, title, name)| Offer {
            id: OfferId(id),
            transport,
            port,
            files,
            bytes,
            text,
            title,
            name,
        })
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        any::<u64>().prop_map(|len| Response::Ok { len }),
        (any::<u16>(), "\\PC{0,200}")
            .prop_map(|(code, message)| Response::Err { code: ErrorCode::from_code(code), message }),
    ]
}

fn manifest() -> impl Strategy<Value = Manifest> {
    ("\\PC{1,60}", 0..64u64 * 1024 * 1024).prop_map(|(name, size)| {
        let count = size.div_ceil(u64::from(chunk_size_for(size)));
        let chunks = (0..count).map(|i| blake3::hash(&i.to_be_bytes())).collect();
        Manifest::new(name, size, chunks).expect("a valid manifest")
    })
}

fn catalogue() -> impl Strategy<Value = Catalogue> {
    let path = "\\PC{1,60}".prop_filter("a safe path", |p: &String| proto::check_path(p).is_ok());
    // A file in progress has a bitmap of the chunk count its size gives.
    let entry = (any::<[u8; 32]>(), path, 0..(1u64 << 31), proptest::option::of(vec(any::<u8>(), 0..64))).prop_map(
        |(id, name, size, have)| {
            let have = have.map(|bytes| Bitmap::from_prefix(&bytes, chunk_count_for(size)));
            CatalogueEntry { id: FileId(id), name, size, have }
        },
    );
    vec(entry, 0..16).prop_map(|entries| Catalogue { entries })
}

/// A change to a valid encoding: bytes overwritten, the end cut off, bytes inserted.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Set(at, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
    ];
    vec(one, 1..4)
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::Set(at, b) if len > 0 => bytes[at % len] = *b,
            Mutation::Set(..) => {}
            Mutation::Truncate(at) => bytes.truncate(at % (len + 1)),
            Mutation::Insert(at, extra) => {
                let at = at % (len + 1);
                bytes.splice(at..at, extra.iter().copied());
            }
        }
    }
    bytes
}

/// The frame body of an encoded request or response.
fn body(frame: Vec<u8>) -> Vec<u8> {
    frame[FRAME_PREFIX..].to_vec()
}

/// Whatever `decode` accepts must survive a round trip: the decoded value is what a node acts on.
macro_rules! stable {
    ($decoded:expr, $encode:expr, $decode:expr) => {
        if let Ok(value) = $decoded {
            prop_assert_eq!($decode(&$encode(&value)), Ok(value));
        }
    };
}

proptest! {
    #[test]
    fn datagrams_round_trip(d in datagram()) {
        let bytes = d.encode().expect("within limits");
        prop_assert!(bytes.len() <= proto::MAX_DATAGRAM);
        prop_assert_eq!(Datagram::decode(&bytes), Ok(d));
    }

    #[test]
    fn frames_round_trip(req in request(), resp in response()) {
        let frame = req.encode();
        prop_assert!(frame.len() <= FRAME_PREFIX + MAX_FRAME);
        prop_assert_eq!(Request::decode(&body(frame)), Ok(req));
        prop_assert_eq!(Response::decode(&body(resp.encode())), Ok(resp));
    }

    #[test]
    fn manifests_and_catalogues_round_trip(m in manifest(), c in catalogue()) {
        prop_assert_eq!(Manifest::decode(&m.encode()), Ok(m));
        prop_assert_eq!(Catalogue::decode(&c.encode()), Ok(c));
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048), prefix in any::<[u8; 4]>()) {
        let _ = Datagram::decode(&bytes);
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
        let _ = Manifest::decode(&bytes);
        let _ = Catalogue::decode(&bytes);
        let _ = Beacon::decode(&bytes);
        let _ = decode_pair_frame(&bytes);
        if let Ok(len) = frame_len(prefix) {
            prop_assert!(len <= MAX_FRAME);
        }
    }

    #[test]
    fn pairing_beacons_and_frames_round_trip_and_mutated_ones_are_rejected_or_stable(
        b in beacon(),
        f in pair_frame(),
        m in mutations(),
    ) {
        prop_assert_eq!(Beacon::decode(&b.encode()), Ok(b));
        let frame = f.encode().expect("within limits");
        prop_assert_eq!(decode_pair_frame(&frame), Ok(f));
        stable!(Beacon::decode(&mutate(b.encode(), &m)), Beacon::encode, Beacon::decode);
        let encode = |v: &PairFrame| v.encode().expect("decoded within limits");
        stable!(decode_pair_frame(&mutate(frame, &m)), encode, |b: &[u8]| decode_pair_frame(b));
    }

    #[test]
    fn mutated_datagrams_are_rejected_or_stable(d in datagram(), m in mutations()) {
        let bytes = mutate(d.encode().expect("within limits"), &m);
        stable!(Datagram::decode(&bytes), |v: &Datagram| v.encode().expect("decoded within limits"), Datagram::decode);
    }

    #[test]
    fn mutated_frames_are_rejected_or_stable(req in request(), resp in response(), m in mutations()) {
        let bytes = mutate(body(req.encode()), &m);
        stable!(Request::decode(&bytes), |v: &Request| body(v.encode()), Request::decode);
        let bytes = mutate(body(resp.encode()), &m);
        stable!(Response::decode(&bytes), |v: &Response| body(v.encode()), Response::decode);
    }

    #[test]
    fn mutated_manifests_and_catalogues_are_rejected_or_stable(
        man in manifest(),
        cat in catalogue(),
        m in mutations(),
    ) {
        let bytes = mutate(man.encode(), &m);
        stable!(Manifest::decode(&bytes), Manifest::encode, Manifest::decode);
        let bytes = mutate(cat.encode(), &m);
        stable!(Catalogue::decode(&bytes), Catalogue::encode, Catalogue::decode);
    }
}
