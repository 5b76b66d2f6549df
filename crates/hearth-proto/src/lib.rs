//! The language hearth's clients and relay speak: ids, limits, the signed envelope, the
//! hash-chained ACL and the websocket frames, with their canonical encodings and the
//! public-key checks on them.
//!
//! This crate is deliberately small and key-less: it holds no secret keys, no document
//! model and no async runtime, so the relay can depend on it and still be unable to read
//! or forge anything. Sealing, opening and signing live in hearth-crypto, which builds on
//! the messages defined here ([`Envelope::signed_message`],
//! [`AclRecord::signing_message`], [`auth_message`]); the relay signs its own
//! [`identity_message`] with a key of its own.
//!
//! Every decoder takes bytes a stranger may have sent: it never panics, refuses trailing
//! bytes, and reports what was wrong as a [`ProtoError`].
//!
//! ```
//! use hearth_proto::{ClientFrame, PROTOCOL_VERSION, Limits, decode_client, encode_client};
//!
//! let limits = Limits::default();
//! let hello = ClientFrame::Hello { version: PROTOCOL_VERSION, client: "hearth/0.1".into() };
//! let bytes = encode_client(&hello, limits.frame_bytes())?;
//! assert_eq!(decode_client(&bytes, limits.frame_bytes())?, hello);
//! # Ok::<(), hearth_proto::ProtoError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acl;
mod byte_array;
pub mod consent;
mod cursor;
pub mod envelope;
mod error;
pub mod frame;
pub mod identity;
mod ids;
mod limits;
mod signature;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use acl::{AclBody, AclRecord, AclState, InviteInfo, InviteRole, key_check, people};
pub use consent::{
    ConsentFault, Countersignature, Judged, countersign_message, judge_countersignature,
    snapshot_hash,
};
pub use envelope::{Envelope, EnvelopeHeader, EnvelopeKind, VerifiedEnvelope};
pub use error::{AclRule, ProtoError};
pub use frame::{
    CREATION_TOKEN_PREFIX, ClientFrame, PROTOCOL_VERSION, RejectCode, RelayFrame, auth_message,
    check_version, decode_client, decode_relay, delete_space_message, encode_client, encode_relay,
    is_creation_token, verify_delete_space,
};
pub use identity::{Fingerprint, identity_message, verify_relay_identity};
pub use ids::{DeviceId, InviteId, SpaceId};
pub use limits::Limits;
pub use signature::{BatchVerifier, SignatureCheck, verify_signature};
