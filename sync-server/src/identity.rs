//! The relay's own key: generated the first time a database is opened, kept in it (store
//! migration 4), and the same for as long as the database lives, so clients that pinned it
//! at first contact see the same relay after every restart. Its fingerprint is the relay
//! id of every `Challenge`, and it signs one proof per connection that asks
//! (`Identify`, see `hearth_proto::identity`).
//!
//! It signs nothing else: the relay still cannot sign for any device, and its key says
//! only "this is the same relay as before", never anything about the data it holds.

use ed25519_dalek::{Signer, SigningKey};
use hearth_proto::{Fingerprint, identity_message};

/// The relay's signing key and what clients see of it.
pub struct RelayIdentity {
    signing: SigningKey,
    public: [u8; 32],
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for RelayIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl RelayIdentity {
    /// The identity whose secret key is `secret` (as the store keeps it).
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(secret);
        let public = signing.verifying_key().to_bytes();
        Self {
            signing,
            public,
            fingerprint: Fingerprint::of(&public),
        }
    }

    /// The public key clients pin.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// The key's fingerprint, which the operator shares with the relay's users.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The relay id `Challenge` announces: the fingerprint's bytes.
    pub fn relay_id(&self) -> [u8; 16] {
        *self.fingerprint.as_bytes()
    }

    /// The proof for a client that sent `client_nonce`, on the connection challenged with
    /// `relay_nonce`, at `time_ms` by the relay's clock.
    pub(crate) fn prove(
        &self,
        client_nonce: &[u8; 32],
        relay_nonce: &[u8; 32],
        time_ms: u64,
    ) -> [u8; 64] {
        let message = identity_message(client_nonce, relay_nonce, &self.relay_id(), time_ms);
        self.signing.sign(&message).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use hearth_proto::verify_relay_identity;

    use super::*;

    #[test]
    fn the_relay_id_is_the_fingerprint_and_a_proof_checks_out_against_it() {
        let identity = RelayIdentity::from_secret(&[4; 32]);
        assert_eq!(identity.relay_id(), *identity.fingerprint().as_bytes());
        assert_eq!(
            identity.fingerprint(),
            Fingerprint::of(identity.public_key())
        );
        let proof = identity.prove(&[1; 32], &[2; 32], 99);
        assert_eq!(
            verify_relay_identity(
                identity.public_key(),
                &[1; 32],
                &[2; 32],
                &identity.relay_id(),
                99,
                &proof
            ),
            Ok(identity.fingerprint())
        );
        let other = RelayIdentity::from_secret(&[5; 32]);
        assert_ne!(other.fingerprint(), identity.fingerprint());
    }
}
