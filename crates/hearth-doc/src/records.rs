//! The JSON shape of each stored entry (see `layout.rs` for where they live).
//!
//! These are private on purpose: the stored format must not change when a public model
//! type gains a field. Unknown fields are ignored; optional fields of the wrong type read as
//! missing; a required field that is missing or wrong makes that one entry unreadable.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::deck::WEEKLY_DECK_ID;
use crate::ids::{EntryId, Millis, PersonId};
use crate::model::{AnswerValue, Answers, CommitmentStatus, ReplyKind};
use crate::week::Week;
use hearth_crypto::answers::{Commitment, SealKey, Sealed};

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AppreciationRecord {
    pub(crate) id: EntryId,
    pub(crate) author: PersonId,
    pub(crate) text: String,
    pub(crate) created_at: Millis,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FeedbackRecord {
    pub(crate) id: EntryId,
    pub(crate) author: PersonId,
    // The four parts are required when writing, but a missing one is no reason to hide the
    // rest of what someone said.
    #[serde(default, deserialize_with = "lenient")]
    pub(crate) observation: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub(crate) feeling: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub(crate) need: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub(crate) request: Option<String>,
    pub(crate) created_at: Millis,
    /// Replies nested in the entry, as the map form of an entry has them. This crate
    /// writes replies to the root `replies` list instead.
    #[serde(default, deserialize_with = "lenient_vec", skip_serializing)]
    pub(crate) replies: Vec<ReplyRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ReplyRecord {
    /// The feedback replied to; absent for replies nested in their feedback.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) feedback: Option<EntryId>,
    pub(crate) author: PersonId,
    pub(crate) kind: ReplyKind,
    pub(crate) text: String,
    pub(crate) created_at: Millis,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct JournalRecord {
    pub(crate) id: EntryId,
    pub(crate) author: PersonId,
    pub(crate) created_at: Millis,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) title: Option<String>,
    pub(crate) body: String,
    #[serde(
        default,
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) tags: Vec<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) edited_at: Option<Millis>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CommitmentRecord {
    pub(crate) id: EntryId,
    pub(crate) author: PersonId,
    pub(crate) text: String,
    pub(crate) week: Week,
    /// A status this version does not know (from a newer partner) makes the entry
    /// unreadable rather than guessed at, since a guess could later overwrite it.
    #[serde(default = "open")]
    pub(crate) status: CommitmentStatus,
    pub(crate) created_at: Millis,
}

fn open() -> CommitmentStatus {
    CommitmentStatus::Open
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CheckinRecord {
    pub(crate) week: Week,
    /// The id of the deck the check-in is answered with. Stored as `template`, the name the
    /// field had before decks were called decks: the document format does not change with
    /// the word, so older and newer hearths read each other's check-ins (the `decks` map of
    /// a couple's own decks keeps its name too).
    #[serde(
        rename = "template",
        default = "weekly",
        deserialize_with = "lenient_or_weekly"
    )]
    pub(crate) deck: String,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) opened_by: Option<PersonId>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) opened_at: Option<Millis>,
    /// Submissions nested in the check-in (person id -> submission), as the map form of
    /// an entry has them. This crate writes them to the root `submissions` map.
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    pub(crate) answers: Option<serde_json::Map<String, serde_json::Value>>,
}

fn weekly() -> String {
    WEEKLY_DECK_ID.to_owned()
}

fn lenient_or_weekly<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient::<D, String>(d)?.unwrap_or_else(weekly))
}

/// A submission from before sealing: the answers in the clear.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SubmissionRecord {
    pub(crate) submitted_at: Millis,
    /// The answers, as a JSON object (or as JSON text, which the map form stores).
    #[serde(default)]
    pub(crate) answers: serde_json::Value,
}

/// Sealed answers as stored: Automerge bytes, not JSON, since ciphertext and hashes do
/// not compress and base64 or hex would grow them by a third or double them.
///
/// `0x01 || submitted_at (i64, big-endian) || commitment (32) || nonce (24) || ciphertext`
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SealedSubmission {
    pub(crate) submitted_at: Millis,
    pub(crate) sealed: Sealed,
}

const SEALED_V1: u8 = 1;
const SEALED_HEAD: usize = 1 + 8 + 32 + 24;

impl SealedSubmission {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEALED_HEAD + self.sealed.ciphertext.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&self.submitted_at.0.to_be_bytes());
        out.extend_from_slice(self.sealed.commitment.as_bytes());
        out.extend_from_slice(&self.sealed.nonce);
        out.extend_from_slice(&self.sealed.ciphertext);
        out
    }

    /// `None` for another version or a damaged record.
    pub(crate) fn decode(bytes: &[u8]) -> Option<SealedSubmission> {
        let submitted_at = Self::submitted_at(bytes)?;
        let commitment: [u8; 32] = bytes.get(9..41)?.try_into().ok()?;
        let nonce: [u8; 24] = bytes.get(41..SEALED_HEAD)?.try_into().ok()?;
        Some(SealedSubmission {
            submitted_at,
            sealed: Sealed {
                nonce,
                ciphertext: bytes.get(SEALED_HEAD..)?.to_vec(),
                commitment: Commitment::from_bytes(commitment),
            },
        })
    }

    /// Only the time, for views that need no answers.
    pub(crate) fn submitted_at(bytes: &[u8]) -> Option<Millis> {
        if bytes.first() != Some(&SEALED_V1) || bytes.len() < SEALED_HEAD {
            return None;
        }
        Some(Millis(i64::from_be_bytes(
            bytes.get(1..9)?.try_into().ok()?,
        )))
    }
}

/// A released key: `person`'s key for their sealed answers `commitment` in `week`, released
/// after seeing the partner's sealed answers `seen`. Stored as Automerge bytes:
///
/// `0x01 || len || week || len || person || commitment (32) || key (32) || 0 or 1 || seen
/// (32, if 1) || released_at (i64, big-endian)`
///
/// The week and person stay text so a reader can skip other weeks without decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RevealRecord {
    pub(crate) week: Week,
    pub(crate) person: PersonId,
    pub(crate) commitment: Commitment,
    pub(crate) key: SealKey,
    pub(crate) seen: Option<Commitment>,
    pub(crate) released_at: Millis,
}

const REVEAL_V1: u8 = 1;

impl RevealRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let week = self.week.to_string();
        let mut out = Vec::with_capacity(160);
        out.push(REVEAL_V1);
        for text in [week.as_str(), self.person.as_str()] {
            out.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(self.commitment.as_bytes());
        out.extend_from_slice(self.key.as_bytes());
        match &self.seen {
            Some(seen) => {
                out.push(1);
                out.extend_from_slice(seen.as_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(&self.released_at.0.to_be_bytes());
        out
    }

    /// `None` for another version or a damaged record.
    pub(crate) fn decode(bytes: &[u8]) -> Option<RevealRecord> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != REVEAL_V1 {
            return None;
        }
        let mut text = || -> Option<&str> {
            let (&len, tail) = rest.split_first()?;
            let (text, tail) = tail.split_at_checked(usize::from(len))?;
            rest = tail;
            std::str::from_utf8(text).ok()
        };
        let week: Week = text()?.parse().ok()?;
        let person: PersonId = text()?.parse().ok()?;
        let (commitment, rest) = rest.split_first_chunk::<32>()?;
        let (key, rest) = rest.split_first_chunk::<32>()?;
        let (&flag, rest) = rest.split_first()?;
        let (seen, rest) = match flag {
            0 => (None, rest),
            1 => {
                let (seen, rest) = rest.split_first_chunk::<32>()?;
                (Some(Commitment::from_bytes(*seen)), rest)
            }
            _ => return None,
        };
        let (released_at, rest) = rest.split_first_chunk::<8>()?;
        if !rest.is_empty() {
            return None;
        }
        Some(RevealRecord {
            week,
            person,
            commitment: Commitment::from_bytes(*commitment),
            key: SealKey::from_bytes(*key),
            seen,
            released_at: Millis(i64::from_be_bytes(*released_at)),
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SubmissionMeta {
    pub(crate) submitted_at: Millis,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PersonRecord {
    #[serde(default, deserialize_with = "lenient")]
    pub(crate) name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub(crate) joined_at: Option<Millis>,
}

/// Just the id and claimed author of an entry, for lookups by handle.
#[derive(Debug, Deserialize)]
pub(crate) struct IdOnly {
    pub(crate) id: EntryId,
    pub(crate) author: PersonId,
}

/// Answers from stored JSON, keeping every answer that reads and dropping the rest.
pub(crate) fn answers_from_json(value: &serde_json::Value) -> Answers {
    match value {
        serde_json::Value::Object(map) => Answers(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), AnswerValue::from_json(v)?)))
                .collect(),
        ),
        serde_json::Value::String(text) => serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .filter(serde_json::Value::is_object)
            .map(|v| answers_from_json(&v))
            .unwrap_or_default(),
        _ => Answers::default(),
    }
}

/// An optional field that reads as missing when it has the wrong type.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(T::deserialize(value).ok())
}

/// A list field keeping the items that read; anything but a list reads as empty.
fn lenient_vec<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|item| T::deserialize(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// JSON for a record. Records are strings, numbers and lists of strings, which always
/// serialise.
pub(crate) fn to_json(record: &impl Serialize) -> String {
    serde_json::to_string(record).expect("records hold only strings and numbers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_of_the_wrong_type_read_as_missing() {
        let j: JournalRecord = serde_json::from_str(
            r#"{"id":"01937d9e-8f4a-7c3b-9d2e-5a6b7c8d9e0f","author":"a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0",
                "created_at":5,"title":42,"body":"hi","tags":["ok",7,"fine"],"edited_at":"yesterday",
                "mood":"unknown fields are fine"}"#,
        )
        .unwrap();
        assert_eq!(j.title, None);
        assert_eq!(j.tags, ["ok", "fine"]);
        assert_eq!(j.edited_at, None);
    }

    #[test]
    fn required_fields_must_be_there_and_right() {
        let bad = [
            r#"{"author":"a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0","text":"x","created_at":1}"#,
            r#"{"id":"nope","author":"a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0","text":"x","created_at":1}"#,
            r#"{"id":"01937d9e-8f4a-7c3b-9d2e-5a6b7c8d9e0f","author":"a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0","text":7,"created_at":1}"#,
            r#"{"id":"01937d9e-8f4a-7c3b-9d2e-5a6b7c8d9e0f","author":"a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0","text":"x","created_at":"now"}"#,
            r#"[1,2,3]"#,
            r#"not json"#,
        ];
        for text in bad {
            assert!(
                serde_json::from_str::<AppreciationRecord>(text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn answers_read_from_objects_and_from_json_text() {
        let object = serde_json::json!({"feeling": 7, "need": ["time"], "odd": {"x": 1}});
        let a = answers_from_json(&object);
        assert_eq!(a.scale("feeling"), Some(7));
        assert_eq!(a.list("need").unwrap(), ["time"]);
        assert!(a.get("odd").is_none());
        let text = serde_json::Value::String(r#"{"feeling": 3}"#.into());
        assert_eq!(answers_from_json(&text).scale("feeling"), Some(3));
        assert!(answers_from_json(&serde_json::Value::String("garbage".into())).is_empty());
    }
}

#[cfg(test)]
mod binary_tests {
    use super::*;

    /// A submission sealed by the first release with sealing, as the document stores it,
    /// with the key its device kept (hearth-crypto's vectors pin the sealing itself).
    /// Existing check-ins must keep reading: never edit this to make a test pass.
    const STORED_SUBMISSION: &str = "010000019ab0a20700e6676171d7b1ecbd328cefc53cc756a397ce2cd04c4d658b4e1a3f7c962f5d6c0661ae68c1c9461606e6d7416a6a03fbb88c04bbd97e851a15350af9a94732bf59848876143632b898959090dc30a8ab29689223e26c7f7ca2cbb1b2a65eaf700d7ef05ca7";
    const STORED_KEY: &str = "4932375b5c136ba4ef33752c3134ef3c0b4f5d758186b16c0af894390cc342ee";

    #[test]
    fn a_submission_stored_by_the_first_release_still_reads_and_opens() {
        let bytes = hex::decode(STORED_SUBMISSION).unwrap();
        let submission = SealedSubmission::decode(&bytes).unwrap();
        assert_eq!(submission.submitted_at, Millis(1_763_900_000_000));
        assert_eq!(submission.encode(), bytes, "it writes back byte for byte");
        let key = SealKey::from_bytes(hex::decode(STORED_KEY).unwrap().try_into().unwrap());
        let week: Week = "2026-W47".parse().unwrap();
        let person: PersonId = "0123456789abcdef0123456789abcdef".parse().unwrap();
        let answers = crate::checkins::open_answers(week, &person, &submission.sealed, &key);
        assert_eq!(
            answers.as_deref(),
            Some(&b"{\"feeling\":8,\"need\":[\"time\"]}"[..])
        );
    }

    #[test]
    fn sealed_submissions_and_released_keys_read_back_and_refuse_damage() {
        let week: Week = "2026-W47".parse().unwrap();
        let person = PersonId::random();
        let (key, sealed) =
            hearth_crypto::answers::seal("2026-W47", person.as_str(), b"{\"feeling\":8}").unwrap();
        let submission = SealedSubmission {
            submitted_at: Millis(1_763_900_000_000),
            sealed: sealed.clone(),
        };
        let bytes = submission.encode();
        assert_eq!(SealedSubmission::decode(&bytes), Some(submission.clone()));
        assert_eq!(
            SealedSubmission::submitted_at(&bytes),
            Some(submission.submitted_at)
        );
        for reveal in [
            RevealRecord {
                week,
                person: person.clone(),
                commitment: sealed.commitment,
                key: key.clone(),
                seen: Some(sealed.commitment),
                released_at: Millis(7),
            },
            RevealRecord {
                week,
                person: person.clone(),
                commitment: sealed.commitment,
                key: key.clone(),
                seen: None,
                released_at: Millis(-1),
            },
        ] {
            let bytes = reveal.encode();
            assert_eq!(RevealRecord::decode(&bytes), Some(reveal.clone()));
            for cut in 0..bytes.len() {
                assert_eq!(RevealRecord::decode(&bytes[..cut]), None, "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(RevealRecord::decode(&longer), None);
            let mut other = bytes;
            other[0] = 2;
            assert_eq!(RevealRecord::decode(&other), None, "a newer version");
        }
        for cut in 0..65 {
            assert_eq!(
                SealedSubmission::decode(&bytes[..cut]),
                None,
                "cut at {cut}"
            );
        }
        let mut other = bytes;
        other[0] = 2;
        assert_eq!(SealedSubmission::decode(&other), None, "a newer version");
    }
}
