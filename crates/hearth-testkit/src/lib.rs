//! What hearth's tests share, written once: keys drawn from a seed byte, ACL records and
//! envelopes signed with them, a real relay on 127.0.0.1 started with any configuration,
//! and (with the `client` feature) profiles paired into a couple over such a relay.
//!
//! It holds only set-up: what a test asserts stays in the test. Everything here goes
//! through the crates' public APIs, as any other program would.
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
pub mod couple;
pub mod keys;
pub mod records;
pub mod relay;

pub use keys::{acl_record, device_id, invite_id, key, now_ms};
pub use records::{signed_changes, signed_envelope};
pub use relay::TestRelay;
