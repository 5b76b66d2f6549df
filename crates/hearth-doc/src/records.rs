//! The JSON shape of each stored entry (see `layout.rs` for where they live).
//!
//! These are private on purpose: the stored format must not change when a public model
//! type gains a field. Unknown fields are ignored; optional fields of the wrong type read as
//! missing; a required field that is missing or wrong makes that one entry unreadable.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::ids::{EntryId, Millis, PersonId};
use crate::model::{AnswerValue, Answers, CommitmentStatus, ReplyKind};
use crate::seal::{Commitment, Sealed};
use crate::template::WEEKLY_TEMPLATE_ID;
use crate::week::Week;

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
    /// Replies nested in the entry, as the map form of DESIGN.md §3 has them. This crate
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
    #[serde(default = "weekly", deserialize_with = "lenient_or_weekly")]
    pub(crate) template: String,
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
    /// DESIGN.md §3 has them. This crate writes them to the root `submissions` map.
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    pub(crate) answers: Option<serde_json::Map<String, serde_json::Value>>,
}

fn weekly() -> String {
    WEEKLY_TEMPLATE_ID.to_owned()
}

fn lenient_or_weekly<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient::<D, String>(d)?.unwrap_or_else(weekly))
}

/// A submission: sealed answers, or (from before sealing) the answers in the clear.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SubmissionRecord {
    pub(crate) submitted_at: Millis,
    /// Unsealed answers from before sealing, as a JSON object (or as JSON text, which the
    /// map form stores).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub(crate) answers: serde_json::Value,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) sealed: Option<SealedRecord>,
}

/// Sealed answers in the document: hex commitment and nonce, base64 ciphertext.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SealedRecord {
    pub(crate) commitment: String,
    pub(crate) nonce: String,
    pub(crate) ciphertext: String,
}

impl SealedRecord {
    pub(crate) fn from_sealed(sealed: &Sealed) -> SealedRecord {
        SealedRecord {
            commitment: sealed.commitment.to_string(),
            nonce: hex::encode(sealed.nonce),
            ciphertext: BASE64.encode(&sealed.ciphertext),
        }
    }

    /// The sealed answers, or `None` if any part is malformed.
    pub(crate) fn to_sealed(&self) -> Option<Sealed> {
        let mut nonce = [0u8; 24];
        hex::decode_to_slice(&self.nonce, &mut nonce).ok()?;
        Some(Sealed {
            nonce,
            ciphertext: BASE64.decode(&self.ciphertext).ok()?,
            commitment: Commitment::parse(&self.commitment).ok()?,
        })
    }
}

/// A released key: `person`'s key for their sealed answers `commitment` in `week`, released
/// after seeing the partner's sealed answers `seen`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RevealRecord {
    pub(crate) week: Week,
    pub(crate) person: PersonId,
    pub(crate) commitment: String,
    pub(crate) key: String,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) seen: Option<String>,
    pub(crate) released_at: Millis,
}

/// A submission without its answers: enough for the timeline, and much cheaper to read.
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

/// Just the id of an entry, for lookups by handle.
#[derive(Debug, Deserialize)]
pub(crate) struct IdOnly {
    pub(crate) id: EntryId,
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
