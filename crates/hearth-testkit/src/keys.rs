//! Keys drawn from one byte, so that a test names its devices 1, 2, 3 and every run signs
//! the same bytes: a failure replays exactly. The keys themselves come from hearth-proto's
//! `test_support`, which that crate's own unit tests use too, so there is one definition.

pub use hearth_proto::test_support::{
    device as device_id, invite as invite_id, key, signed_acl as acl_record,
};

/// Now, in milliseconds since the Unix epoch, as the protocol carries time.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
