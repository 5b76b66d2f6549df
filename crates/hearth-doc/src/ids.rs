//! Identifiers and timestamps that cross crate boundaries.
//!
//! Ids are newtypes so a person id can never be passed where an entry id is expected, and
//! so that every id that enters the program from a user, a file or the network is checked
//! once, at parse time. Times are plain UTC milliseconds because that is what Automerge
//! stores and what every device agrees on, whatever its time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::error::DocError;

/// A person in a space: 16 random bytes, written as 32 lowercase hex characters.
///
/// A person may use several devices; every device of that person writes under the same
/// `PersonId`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersonId(String);

impl PersonId {
    /// A fresh random person id.
    ///
    /// # Panics
    ///
    /// If the operating system has no random source, like [`Uuid::now_v7`].
    pub fn random() -> PersonId {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
        let mut id = String::with_capacity(32);
        for b in bytes {
            id.push(hex_digit(b >> 4));
            id.push(hex_digit(b & 0x0f));
        }
        PersonId(id)
    }

    /// The id of the person `key` names, in a space made since per-person containers: the
    /// same on every device, and bound to the person's key, so no one else can claim it.
    pub fn of(key: &crate::authorship::PersonKey) -> PersonId {
        let hash = blake3::derive_key("hearth 2026-12 person id v1", key.as_bytes());
        let mut id = String::with_capacity(32);
        for b in &hash[..16] {
            id.push(hex_digit(b >> 4));
            id.push(hex_digit(b & 0x0f));
        }
        PersonId(id)
    }

    /// The id as 32 lowercase hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_valid(s: &str) -> bool {
        s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

impl FromStr for PersonId {
    type Err = DocError;

    /// Accepts 32 hex characters in either case; the id is kept lowercase.
    fn from_str(s: &str) -> Result<PersonId, DocError> {
        let trimmed = s.trim();
        // Ids are read by the thousand from the document, where they are already
        // canonical: check before allocating a lowercase copy.
        if PersonId::is_valid(trimmed) {
            return Ok(PersonId(trimmed.to_owned()));
        }
        let lower = trimmed.to_ascii_lowercase();
        if PersonId::is_valid(&lower) {
            Ok(PersonId(lower))
        } else {
            Err(DocError::Invalid {
                what: "person id",
                input: s.to_owned(),
                expected: "32 hex characters",
            })
        }
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for PersonId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PersonId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PersonId, D::Error> {
        deserializer.deserialize_str(ParseVisitor::<PersonId>::new("a person id"))
    }
}

/// Deserialises any `FromStr` type from a string without an intermediate `String`: the
/// document is read thousands of ids at a time.
pub(crate) struct ParseVisitor<T> {
    expecting: &'static str,
    _t: std::marker::PhantomData<T>,
}

impl<T> ParseVisitor<T> {
    pub(crate) fn new(expecting: &'static str) -> ParseVisitor<T> {
        ParseVisitor {
            expecting,
            _t: std::marker::PhantomData,
        }
    }
}

impl<T: FromStr<Err = DocError>> serde::de::Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

/// An entry (appreciation, feedback, journal entry, commitment, check-in): a UUID v7.
///
/// UUID v7 starts with the creation time, so ids sort roughly by age, and ends with random
/// bits, which is why the last 8 characters make a good short handle for humans.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(String);

impl EntryId {
    /// A fresh UUID v7.
    ///
    /// # Panics
    ///
    /// If the operating system has no random source (see [`Uuid::now_v7`]).
    #[allow(clippy::new_without_default)] // a Default that draws random bytes would surprise
    pub fn new() -> EntryId {
        EntryId(Uuid::now_v7().hyphenated().to_string())
    }

    /// A stable id derived from `parts` (a UUID v8), for entries every device works out
    /// from the document instead of storing, such as the commitment inside a check-in.
    pub(crate) fn derived(context: &str, parts: &[&str]) -> EntryId {
        let mut h = blake3::Hasher::new_derive_key(context);
        for part in parts {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&h.finalize().as_bytes()[..16]);
        EntryId(Uuid::new_v8(bytes).hyphenated().to_string())
    }

    /// The id in canonical lowercase hyphenated form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last 8 characters: the random tail of the UUID, shown to users as a handle.
    pub fn short(&self) -> &str {
        let start = self.0.len().saturating_sub(8);
        self.0.get(start..).unwrap_or(&self.0)
    }
}

impl FromStr for EntryId {
    type Err = DocError;

    /// Accepts any UUID in its hyphenated form (either case); the id is kept lowercase.
    ///
    /// Other UUID versions are accepted on purpose: a future client may mint ids differently,
    /// and an older one must still read them.
    fn from_str(s: &str) -> Result<EntryId, DocError> {
        let trimmed = s.trim();
        if is_canonical_uuid(trimmed) {
            return Ok(EntryId(trimmed.to_owned()));
        }
        match Uuid::try_parse(trimmed) {
            Ok(uuid) if trimmed.len() == 36 => Ok(EntryId(uuid.hyphenated().to_string())),
            _ => Err(DocError::Invalid {
                what: "entry id",
                input: s.to_owned(),
                expected: "a UUID like 01937d9e-8f4a-7c3b-9d2e-5a6b7c8d9e0f",
            }),
        }
    }
}

/// Lowercase hyphenated form, the one this crate writes; checked without parsing.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
        })
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EntryId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntryId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EntryId, D::Error> {
        deserializer.deserialize_str(ParseVisitor::<EntryId>::new("an entry id (a UUID)"))
    }
}

/// UTC milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    /// The current time from the system clock.
    pub fn now() -> Millis {
        Millis(Utc::now().timestamp_millis())
    }

    /// The time as a chrono UTC date-time, clamped to chrono's range.
    pub fn to_utc(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or(if self.0 < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }
}

impl fmt::Display for Millis {
    /// RFC 3339 in UTC, to the millisecond.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            self.to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_person_ids_are_32_lowercase_hex_and_differ() {
        let a = PersonId::random();
        let b = PersonId::random();
        assert_eq!(a.as_str().len(), 32);
        assert!(PersonId::is_valid(a.as_str()));
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<PersonId>().unwrap(), a);
    }

    #[test]
    fn person_id_parse_normalises_case_and_rejects_junk() {
        let id: PersonId = "0123456789ABCDEF0123456789abcdef".parse().unwrap();
        assert_eq!(id.as_str(), "0123456789abcdef0123456789abcdef");
        for bad in [
            "",
            "xyz",
            "0123456789abcdef0123456789abcde",
            "g123456789abcdef0123456789abcdef",
        ] {
            let err = bad.parse::<PersonId>().unwrap_err();
            assert!(
                matches!(
                    err,
                    DocError::Invalid {
                        what: "person id",
                        ..
                    }
                ),
                "{bad}"
            );
            assert!(err.to_string().contains("32 hex characters"));
        }
    }

    #[test]
    fn person_id_serde_is_a_plain_string_and_validates() {
        let id = PersonId::random();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<PersonId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<PersonId>("\"nope\"").is_err());
    }

    #[test]
    fn entry_ids_are_v7_and_short_is_the_random_tail() {
        let id = EntryId::new();
        assert_eq!(id.as_str().len(), 36);
        assert_eq!(Uuid::parse_str(id.as_str()).unwrap().get_version_num(), 7);
        assert_eq!(id.short(), &id.as_str()[28..]);
        assert_eq!(id.short().len(), 8);
        assert_eq!(id.to_string().parse::<EntryId>().unwrap(), id);
    }

    #[test]
    fn entry_id_parse_normalises_case_and_rejects_other_forms() {
        let id: EntryId = "01937D9E-8F4A-7C3B-9D2E-5A6B7C8D9E0F".parse().unwrap();
        assert_eq!(id.as_str(), "01937d9e-8f4a-7c3b-9d2e-5a6b7c8d9e0f");
        assert!(
            "01937d9e8f4a7c3b9d2e5a6b7c8d9e0f"
                .parse::<EntryId>()
                .is_err()
        );
        assert!("hello".parse::<EntryId>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<EntryId>(&json).unwrap(), id);
    }

    #[test]
    fn millis_converts_to_utc_and_serialises_as_a_number() {
        let m = Millis(1_763_900_000_123);
        assert_eq!(m.to_utc().timestamp_millis(), 1_763_900_000_123);
        assert_eq!(serde_json::to_string(&m).unwrap(), "1763900000123");
        assert_eq!(m.to_string(), "2025-11-23T12:13:20.123Z");
        assert_eq!(Millis(i64::MAX).to_utc(), DateTime::<Utc>::MAX_UTC);
        assert!(Millis::now() > m);
    }
}
