//! Envelopes validly signed with test keys (ACL records: [`crate::acl_record`]), built the way the client
//! builds them, so that a test can hand the relay exactly the bytes it means to.

use ed25519_dalek::{Signer, SigningKey};
use hearth_proto::{Envelope, EnvelopeHeader, EnvelopeKind, SpaceId};

use crate::keys::device_id;

/// An encoded `Changes` envelope of epoch 0 carrying `body`, signed by `author`.
pub fn signed_changes(author: &SigningKey, space: SpaceId, counter: u64, body: &[u8]) -> Vec<u8> {
    signed_envelope(author, space, counter, EnvelopeKind::Changes, body)
}

/// An encoded envelope of epoch 0 and kind `kind` carrying `body` as its ciphertext,
/// signed by `author`. The relay never opens the ciphertext, so any bytes do; the nonce is
/// drawn from the counter so that the same call gives the same bytes.
pub fn signed_envelope(
    author: &SigningKey,
    space: SpaceId,
    counter: u64,
    kind: EnvelopeKind,
    body: &[u8],
) -> Vec<u8> {
    let header = EnvelopeHeader {
        kind,
        space,
        epoch: 0,
        author: device_id(author),
        counter,
    };
    let nonce = [counter as u8; 24];
    let message = Envelope::signed_message(&header, &nonce, body);
    Envelope::from_parts(
        header,
        nonce,
        body.to_vec(),
        author.sign(&message).to_bytes(),
    )
    .encode()
}
