//! hearth's fuzz targets: every decoder that reads bytes from the network or the disk.
//!
//! Each target is a function from arbitrary bytes to nothing that must never panic, hang or
//! blow up memory, whatever the bytes, and that checks what it can on the way (a decoded
//! envelope or ACL record encodes back to the very same bytes). The same functions run
//! three ways:
//! - under libFuzzer, coverage-guided, from `fuzz/` (`scripts/fuzz`, see
//!   docs/security.md);
//! - in the normal test suite (`tests/replay.rs`): every seed, every committed crasher in
//!   `fuzz/regressions/<target>/`, and a fixed number of seeded mutations of the seeds;
//! - by hand: `cargo run -p hearth-fuzz --bin hearth-fuzz-seeds -- DIR` writes the seeds
//!   out as a starting corpus.
//!
//! | target | what it reads | where such bytes come from |
//! |---|---|---|
//! | `frame` | client and relay frames | the websocket, both ways |
//! | `envelope` | envelopes | pushes (relay), batches and events (clients), the profile's outbox and parked tables |
//! | `acl` | ACL records and whole chains | `PutAcl`, `AclChanged`, the profile |
//! | `invite` | invite codes | what a partner pastes |
//! | `lockbox` | device lockboxes (age) and invite lockboxes | `GetLockbox` answers |
//! | `padding` | padded plaintexts (and plaintexts from before padding) | decrypted envelopes (only a holder of the space key can make these bytes) |
//! | `doc` | Automerge changes and documents, then every query | decrypted envelopes and profile chunks (the AEAD layer around them refuses any change: tested in hearth-crypto) |

use std::sync::OnceLock;

use hearth_crypto::{DeviceKeys, EpochKey, InviteCode, InviteKeys};
use hearth_doc::{JournalDraft, Millis, PersonId, SpaceDoc};
use hearth_proto::{
    AclRecord, AclState, ClientFrame, Envelope, EnvelopeHeader, EnvelopeKind, Limits, RelayFrame,
    SpaceId, decode_client, decode_relay, encode_client, encode_relay,
};

/// A fuzz target: arbitrary bytes in, a panic if something is wrong.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("envelope", envelope),
    ("acl", acl),
    ("invite", invite),
    ("lockbox", lockbox),
    ("padding", padding),
    ("doc", doc),
];

const SPACE: [u8; 16] = [7; 16];

/// Keys made once per process: a device and an invite, so lockboxes can be tried.
struct Fixture {
    device: DeviceKeys,
    invite: InviteKeys,
    invite_code: String,
    key: EpochKey,
    /// A small document, saved: `doc` applies the input to it as well as to an empty one.
    base: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let device = DeviceKeys::generate().expect("randomness");
        let code = InviteCode::generate("ws://127.0.0.1:7878", SPACE).expect("randomness");
        let key = EpochKey::generate().expect("randomness");
        let person = PersonId::random();
        let mut doc =
            SpaceDoc::create(b"fuzz-base", &person, "Sam", Millis(1)).expect("a new document");
        doc.add_appreciation(&person, "thank you for the soup", Millis(2))
            .expect("an appreciation");
        let base = doc.save_snapshot();
        Fixture {
            device,
            invite: code.keys(),
            invite_code: code.to_string(),
            key,
            base,
        }
    })
}

/// Frames as the relay and the client decode them.
pub fn frame(data: &[u8]) {
    let max = Limits::default().frame_bytes();
    if let Ok(frame) = decode_client(data, max) {
        // What decodes encodes again, and decodes to the same frame.
        let again = encode_client(&frame, max).expect("a decoded client frame encodes");
        let twice = decode_client(&again, max).expect("a re-encoded client frame decodes");
        assert_eq!(format!("{frame:?}"), format!("{twice:?}"));
    }
    if let Ok(frame) = decode_relay(data, max) {
        let again = encode_relay(&frame, max).expect("a decoded relay frame encodes");
        let twice = decode_relay(&again, max).expect("a re-encoded relay frame decodes");
        assert_eq!(format!("{frame:?}"), format!("{twice:?}"));
    }
}

/// Envelopes: decode, encode back byte for byte, verify, open.
pub fn envelope(data: &[u8]) {
    let Ok(envelope) = Envelope::decode(data) else {
        return;
    };
    assert_eq!(envelope.encode(), data, "envelope encoding is canonical");
    if envelope.verify().is_ok() {
        let f = fixture();
        let _ = hearth_crypto::envelope::open(
            &envelope,
            &SpaceId::from_bytes(SPACE),
            envelope.header().epoch,
            &f.key,
        );
    }
}

/// ACL records, and the input as a whole chain: records, each prefixed by its length as a
/// big-endian u16.
pub fn acl(data: &[u8]) {
    if let Ok(record) = AclRecord::decode(data) {
        assert_eq!(record.encode(), data, "ACL encoding is canonical");
        let _ = record.verify_signatures();
    }
    let mut records = Vec::new();
    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if tail.len() < len {
            return;
        }
        let (bytes, tail) = tail.split_at(len);
        let Ok(record) = AclRecord::decode(bytes) else {
            return;
        };
        records.push(record);
        rest = tail;
    }
    if !records.is_empty() {
        let _ = AclState::from_records(&records, &Limits::default());
    }
}

/// Invite codes, as pasted: parse, print and parse again to the same code.
pub fn invite(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(code) = text.parse::<InviteCode>() else {
        return;
    };
    let printed = code.to_string();
    let again: InviteCode = printed.parse().expect("a printed invite code parses");
    assert_eq!(again.to_string(), printed);
    assert_eq!(again.space(), code.space());
}

/// Lockboxes: for this device (age, X25519) and for an invite (XChaCha20-Poly1305).
pub fn lockbox(data: &[u8]) {
    let f = fixture();
    let _ = hearth_crypto::lockbox::open(data, &f.device, &SPACE, 0);
    let _ = f.invite.open_lockbox(data, &SPACE, 0);
}

/// Padded plaintexts, as a decrypted envelope holds them: whatever unpads pads again into
/// a frame that unpads to the same plaintext.
pub fn padding(data: &[u8]) {
    use hearth_crypto::padding::{pad, unpad};
    if let Ok(plain) = unpad(data) {
        let again = pad(plain).expect("a plaintext that came out of a frame fits one");
        assert_eq!(unpad(&again), Ok(plain), "padding round-trips");
    }
}

/// Document data: applied to an empty document and to a small one, then every query runs
/// over the result, and the result saves and reloads.
pub fn doc(data: &[u8]) {
    let f = fixture();
    for base in [None, Some(&f.base)] {
        let Ok(mut doc) = SpaceDoc::replica(b"fuzz") else {
            return;
        };
        if let Some(base) = base {
            doc.apply(base).expect("the base document applies");
        }
        if doc.apply(data).is_err() {
            continue;
        }
        let _ = doc.people();
        let _ = doc.appreciations();
        let _ = doc.feedback();
        let _ = doc.journal();
        let _ = doc.commitments();
        let _ = doc.checkins();
        let _ = doc.trend();
        let _ = doc.timeline();
        let _ = doc.schema();
        let _ = doc.waiting();
        let saved = doc.save_snapshot();
        let mut again = SpaceDoc::replica(b"fuzz-again").expect("an empty document");
        again.apply(&saved).expect("a saved document applies");
        assert_eq!(again.heads(), doc.heads(), "a saved document reloads whole");
    }
}

/// Valid inputs for `target`, made with the real encoders: the fuzzers start from these.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let f = fixture();
    let max = Limits::default().frame_bytes();
    let space = SpaceId::from_bytes(SPACE);
    let device = f.device.device_id();
    let envelope = || {
        let person = PersonId::random();
        let mut doc = SpaceDoc::create(b"fuzz-seed", &person, "Sam", Millis(1)).ok()?;
        doc.add_journal(
            &person,
            &JournalDraft {
                body: "a walk by the river".into(),
                ..JournalDraft::default()
            },
            Millis(2),
        )
        .ok()?;
        let header = EnvelopeHeader {
            kind: EnvelopeKind::Changes,
            space,
            epoch: 0,
            author: device,
            counter: 1,
        };
        hearth_crypto::envelope::seal(&f.device, &f.key, header, &doc.changes_since(&[])).ok()
    };
    match target {
        "frame" => {
            let sealed = envelope().map(|e| e.encode()).unwrap_or_default();
            let client = [
                ClientFrame::Hello {
                    version: 1,
                    client: "hearth/0.1.0".into(),
                },
                ClientFrame::Auth {
                    device,
                    space,
                    time_ms: 1,
                    signature: [9; 64],
                    as_invite: false,
                },
                ClientFrame::Subscribe {
                    space,
                    since_seq: 3,
                },
                ClientFrame::Push {
                    envelope: sealed.clone(),
                },
                ClientFrame::GetLockbox { epoch: 0 },
                ClientFrame::Ping { nonce: 5 },
            ];
            let relay = [
                RelayFrame::Event {
                    seq: 4,
                    envelope: sealed.clone(),
                },
                RelayFrame::Committed { seq: 4, counter: 1 },
                RelayFrame::AclChanged {
                    records: vec![vec![1, 2, 3]],
                },
            ];
            client
                .iter()
                .filter_map(|frame| encode_client(frame, max).ok())
                .chain(
                    relay
                        .iter()
                        .filter_map(|frame| encode_relay(frame, max).ok()),
                )
                .collect()
        }
        "envelope" => envelope().map(|e| vec![e.encode()]).unwrap_or_default(),
        "acl" => {
            let genesis = hearth_crypto::sign_record(
                [0; 32],
                hearth_proto::AclBody::Genesis {
                    space,
                    device,
                    recipient: f.device.recipient_bytes().unwrap_or([0; 32]),
                    epoch: 0,
                    key_check: f.key.check(&space, 0),
                },
                &[&f.device],
            );
            let Ok(genesis) = genesis else {
                return Vec::new();
            };
            let bytes = genesis.encode();
            let mut chain = (bytes.len() as u16).to_be_bytes().to_vec();
            chain.extend_from_slice(&bytes);
            vec![bytes, chain]
        }
        "invite" => vec![f.invite_code.clone().into_bytes()],
        "padding" => {
            use hearth_crypto::padding::pad;
            let mut out = vec![f.base.clone()];
            for plain in [&b""[..], b"a walk by the river", &f.base] {
                if let Ok(padded) = pad(plain) {
                    out.push(padded.to_vec());
                }
            }
            out
        }
        "lockbox" => {
            let mut out = Vec::new();
            if let Ok(recipient) = f.device.recipient_bytes()
                && let Ok(blob) = hearth_crypto::lockbox::seal(&f.key, &SPACE, 0, &recipient)
            {
                out.push(blob);
            }
            if let Ok(blob) =
                f.invite
                    .seal_lockbox(std::slice::from_ref(&f.key), &SPACE, Some("person"))
            {
                out.push(blob);
            }
            out
        }
        "doc" => {
            let mut out = vec![f.base.clone()];
            let person = PersonId::random();
            if let Ok(mut doc) = SpaceDoc::create(b"fuzz-seed", &person, "Sam", Millis(1)) {
                let heads = doc.heads();
                let _ = doc.add_journal(
                    &person,
                    &JournalDraft {
                        body: "a walk by the river".into(),
                        tags: vec!["us".into()],
                        ..JournalDraft::default()
                    },
                    Millis(2),
                );
                out.push(doc.changes_since(&heads));
                out.push(doc.save_snapshot());
            }
            out
        }
        _ => Vec::new(),
    }
}

/// A small deterministic generator for mutations (xorshift64*).
#[derive(Debug, Clone)]
pub struct Mutator(u64);

impl Mutator {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// `input` changed in one to four places: bit flips, interesting bytes, truncation,
    /// duplicated or deleted runs, inserted bytes.
    pub fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            let len = out.len();
            match self.below(7) {
                0 if len > 0 => {
                    let i = self.below(len);
                    out[i] ^= 1 << self.below(8);
                }
                1 if len > 0 => {
                    let i = self.below(len);
                    out[i] = [0, 1, 0x7f, 0x80, 0xff][self.below(5)];
                }
                2 => out.truncate(self.below(len + 1)),
                3 if len > 0 => {
                    let from = self.below(len);
                    let to = (from + 1 + self.below(16)).min(len);
                    let run = out[from..to].to_vec();
                    let at = self.below(len + 1);
                    out.splice(at..at, run);
                }
                4 if len > 0 => {
                    let from = self.below(len);
                    let to = (from + 1 + self.below(16)).min(len);
                    out.drain(from..to);
                }
                5 => {
                    let at = self.below(len + 1);
                    let byte = (self.next() & 0xff) as u8;
                    out.insert(at, byte);
                }
                _ if len >= 8 => {
                    // A length-like field set to something large.
                    let at = self.below(len - 3);
                    out[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
                }
                _ => {}
            }
        }
        out
    }
}
