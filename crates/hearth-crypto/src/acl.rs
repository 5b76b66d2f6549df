//! Signing ACL records and relay logins. hearth-proto fixes what is signed and checks
//! signatures with public keys only; the secret keys live here, so the signing does too.
//!
//! Two kinds of key sign: a device's key ([`DeviceKeys`]) and an invite's key
//! ([`InviteKeys`]), which signs the AddDevice record that consumes it and the joining
//! device's first relay login. [`AclSigner`] covers both.

use hearth_proto::{AclBody, AclRecord, DeviceId, SpaceId, auth_message};

use crate::{CryptoError, DeviceKeys, InviteKeys};

/// A key that can sign ACL records and relay logins.
pub trait AclSigner {
    /// Its Ed25519 public key.
    fn public_key(&self) -> [u8; 32];
    /// Signs a 32-byte domain-separated message.
    fn sign_message(&self, message: &[u8]) -> [u8; 64];
}

impl AclSigner for DeviceKeys {
    fn public_key(&self) -> [u8; 32] {
        *self.device_id().as_bytes()
    }

    fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        self.sign(message)
    }
}

impl AclSigner for InviteKeys {
    fn public_key(&self) -> [u8; 32] {
        self.invite_id()
    }

    fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        self.sign(message)
    }
}

/// Builds the record following `prev` with `body`, signed by every key the body requires,
/// taken from `signers`.
///
/// # Errors
/// [`CryptoError::MissingSigner`] if a required key is not among `signers`.
pub fn sign_record(
    prev: [u8; 32],
    body: AclBody,
    signers: &[&dyn AclSigner],
) -> Result<AclRecord, CryptoError> {
    let message = AclRecord::signing_message(&prev, &body);
    let mut signatures = Vec::new();
    for key in body.required_signers() {
        let signer = signers
            .iter()
            .find(|s| s.public_key() == key)
            .ok_or_else(|| CryptoError::MissingSigner(hex::encode(&key[..4])))?;
        signatures.push((key, signer.sign_message(&message)));
    }
    Ok(AclRecord {
        prev,
        body,
        signatures,
    })
}

/// Signs a relay login (the relay's challenge) as `signer`, who claims to be `device`
/// (the device's own key, or with `as_invite` the invite key).
pub fn sign_login(
    signer: &dyn AclSigner,
    relay_id: &[u8; 16],
    nonce: &[u8; 32],
    time_ms: u64,
    space: &SpaceId,
    as_invite: bool,
) -> ([u8; 32], [u8; 64]) {
    let key = signer.public_key();
    let message = auth_message(
        relay_id,
        nonce,
        time_ms,
        space,
        &DeviceId::from_bytes(key),
        as_invite,
    );
    (key, signer.sign_message(&message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InviteCode;
    use hearth_proto::{AclState, InviteId, InviteRole, Limits, verify_signature};

    #[test]
    fn a_partner_joins_through_a_signed_chain() {
        let space = SpaceId::from_bytes([6; 16]);
        let alex = DeviceKeys::generate().unwrap();
        let sam = DeviceKeys::generate().unwrap();
        let code = InviteCode::generate("ws://127.0.0.1:7878", *space.as_bytes()).unwrap();
        let invite = code.keys();

        let genesis = sign_record(
            [0; 32],
            AclBody::Genesis {
                space,
                device: alex.device_id(),
                recipient: alex.recipient_bytes().unwrap(),
                epoch: 0,
                key_check: crate::EpochKey::generate().unwrap().check(&space, 0),
            },
            &[&alex],
        )
        .unwrap();
        let offer = sign_record(
            genesis.hash(),
            AclBody::Invite {
                invite: InviteId::from_bytes(invite.invite_id()),
                expires_at_ms: u64::MAX,
                role: InviteRole::Partner,
                by: alex.device_id(),
            },
            &[&alex],
        )
        .unwrap();
        let join_body = AclBody::AddDevice {
            device: sam.device_id(),
            recipient: sam.recipient_bytes().unwrap(),
            invite: InviteId::from_bytes(invite.invite_id()),
        };
        // Sam's key alone is not enough: the invite must sign too.
        assert!(matches!(
            sign_record(offer.hash(), join_body, &[&sam]),
            Err(CryptoError::MissingSigner(_))
        ));
        let join = sign_record(offer.hash(), join_body, &[&invite, &sam]).unwrap();

        let chain = [genesis, offer, join];
        let state = AclState::from_records(&chain, &Limits::default()).unwrap();
        assert!(state.is_member(&alex.device_id()));
        assert!(state.is_member(&sam.device_id()));
    }

    #[test]
    fn a_login_signature_verifies_only_for_what_it_names() {
        let device = DeviceKeys::generate().unwrap();
        let space = SpaceId::from_bytes([6; 16]);
        let (key, sig) = sign_login(&device, &[1; 16], &[2; 32], 1000, &space, false);
        let id = DeviceId::from_bytes(key);
        let ok = auth_message(&[1; 16], &[2; 32], 1000, &space, &id, false);
        assert!(verify_signature(&key, &ok, &sig).is_ok());
        let other_nonce = auth_message(&[1; 16], &[3; 32], 1000, &space, &id, false);
        assert!(verify_signature(&key, &other_nonce, &sig).is_err());
        let as_invite = auth_message(&[1; 16], &[2; 32], 1000, &space, &id, true);
        assert!(verify_signature(&key, &as_invite, &sig).is_err());
    }
}
