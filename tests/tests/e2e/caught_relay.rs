//! An honest relay, or a caught one (issue 15): what a relay that lies to the clients can
//! no longer do, shown through the malicious proxy of [`crate::hostile_relay`] in front of
//! a real relay. An envelope nobody signed that claims a future epoch must not stall
//! syncing; a deleted space must be said plainly, with the deleting member's signature as
//! proof, and a relay that claims a deletion without one must be called out; neither may
//! lose anything on the device or make it re-create the space.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hearth_client::sync;
use hearth_proto::{DeviceId, Envelope, EnvelopeHeader, EnvelopeKind, SpaceId};
use hearth_testkit::couple::{appreciate, appreciations};
use hearth_tests::Run;

use crate::hostile_relay::{Pair, Place, Scope, Times};

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const T: Duration = Duration::from_secs(20);

/// Runs `hearth ARGS` on the profile in `home`, without a terminal.
fn hearth(home: &Path, args: &[&str]) -> Run {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HEARTH_HOME", home)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into()
}

/// An envelope in `author`'s name claiming epoch 99, with `signature` (zeros: unsigned; or
/// a stranger's) and garbage inside: what a relay can make up without anyone's key.
fn claiming_epoch_99(space: SpaceId, author: DeviceId, signature: [u8; 64]) -> Vec<u8> {
    let header = EnvelopeHeader {
        kind: EnvelopeKind::Changes,
        space,
        epoch: 99,
        author,
        counter: 1_000_000,
    };
    Envelope::from_parts(header, [7; 24], b"made up by the relay".to_vec(), signature).encode()
}

/// The same claim, signed, but by a key that is not `author`'s.
fn badly_signed_epoch_99(space: SpaceId, author: DeviceId) -> Vec<u8> {
    let unsigned = Envelope::decode(&claiming_epoch_99(space, author, [0; 64])).unwrap();
    let stranger = hearth_crypto::DeviceKeys::generate().unwrap();
    let message =
        Envelope::signed_message(unsigned.header(), unsigned.nonce(), unsigned.ciphertext());
    claiming_epoch_99(space, author, stranger.sign(&message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_envelope_claiming_a_future_epoch_is_refused_and_syncing_goes_on() {
    let mut p = Pair::new().await;
    let sam = p.sam.device_id();
    let space = p.sam.space().unwrap();
    p.sam_writes("SAM-BEFORE").await;
    let jordan = Scope::Device(p.jordan.device_id());
    // In every batch Jordan gets while the rules stand: one would have made each attempt
    // stop for a rotation that never happened, and every sync fail.
    for claim in [
        claiming_epoch_99(space, sam, [0; 64]),
        badly_signed_epoch_99(space, sam),
    ] {
        p.proxy
            .inject_batch_item(jordan, Times::ForGood, Place::Back, claim);
    }

    let run = hearth(&p.path("jordan"), &["sync"]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: skipped an entry from"))
        .collect();
    assert_eq!(warnings.len(), 2, "{}", run.stderr);
    for warning in warnings {
        assert!(
            warning.contains(&format!("device {}", sam.short())) && warning.contains("signature"),
            "{warning}"
        );
    }
    assert_eq!(
        p.proxy.tally().injected,
        2,
        "one attempt: nothing made it run again"
    );
    assert!(appreciations(&p.jordan).contains(&"SAM-BEFORE".to_owned()));

    // The relay stops lying: later syncs are clean, and nothing was lost either way.
    p.proxy.clear();
    appreciate(&mut p.jordan, "JORDAN-AFTER");
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    p.sam_writes("SAM-AFTER").await;
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.waiting, 0);
    assert_eq!(appreciations(&p.sam), appreciations(&p.jordan));
    for text in ["SAM-BEFORE", "SAM-AFTER", "JORDAN-AFTER"] {
        assert!(appreciations(&p.sam).contains(&text.to_owned()), "{text}");
    }
}
