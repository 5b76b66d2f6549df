//! The newtype ids both the client and the relay pass around: spaces, devices and invites.
//! Keeping them distinct types means a device key can never be handed where an invite key
//! or a space id was meant, and every crate prints them the same way.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ProtoError;

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(#[serde(with = "crate::byte_array")] [u8; $len]);

        impl $name {
            /// Length of the id in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// A short, human-sized prefix for listings and logs: the first 4 bytes in hex.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ProtoError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out).map_err(|_| {
                    ProtoError::malformed(
                        $what,
                        format!("expected {} lowercase hex characters, got {:?}", $len * 2, s),
                    )
                })?;
                Ok(Self(out))
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }
    };
}

byte_id!(
    /// A couple's space: 16 random bytes chosen by the device that created it.
    SpaceId,
    16,
    "space id"
);

byte_id!(
    /// A device's public identity: its Ed25519 verifying key.
    DeviceId,
    32,
    "device id"
);

byte_id!(
    /// An invite's Ed25519 public key. The matching secret travels in the invite code; the
    /// joiner proves possession of it by signing the AddDevice record that consumes it.
    InviteId,
    32,
    "invite id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_hex_and_parse_back() {
        let id = DeviceId::from_bytes([0xab; 32]);
        assert_eq!(id.short(), "abababab");
        assert_eq!(id.to_string().len(), 64);
        assert_eq!(id.to_string().parse::<DeviceId>().unwrap(), id);
        assert_eq!(format!("{id:?}"), "DeviceId(abababab)");
        assert!("zz".parse::<DeviceId>().is_err());
        assert!(
            SpaceId::from_bytes([1; 16])
                .to_string()
                .parse::<DeviceId>()
                .is_err()
        );
        let space = SpaceId::from_bytes([7; 16]);
        assert_eq!(space.to_string().parse::<SpaceId>().unwrap(), space);
    }

    #[test]
    fn ids_serialize_as_raw_bytes_in_postcard() {
        let id = InviteId::from_bytes([9; 32]);
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bytes.len(), 33, "one length byte then the key");
        assert_eq!(postcard::from_bytes::<InviteId>(&bytes).unwrap(), id);
        let short = postcard::to_allocvec(&[9u8; 31].as_slice()).unwrap();
        assert!(postcard::from_bytes::<InviteId>(&short).is_err());
    }
}
