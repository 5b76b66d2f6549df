//! What a device says about itself inside the document (the ACL it has seen, where it
//! moved the space): under one key of its own person's container, a map from the device's
//! id (hex) to one JSON string (see `layout.rs` on why JSON strings). A note counts only
//! from the container of its device's own person, since the authorship rule lets only that
//! person write there: a note naming a device of the other person, which a hostile partner
//! could write, is ignored. `acl_seen.rs` and `relay_address.rs` are the two kinds.

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DocError;
use crate::layout;
use crate::space::SpaceDoc;

impl SpaceDoc {
    /// Writes `stored` as `device`'s note under `collection`, in this device's person's
    /// container.
    pub(crate) fn put_device_note(
        &mut self,
        collection: &'static str,
        device: &[u8; 32],
        stored: &impl Serialize,
    ) -> Result<(), DocError> {
        let (me, person) = self.me()?;
        let stored = crate::records::to_json(stored);
        let key = hex::encode(device);
        self.change(|doc| {
            let map = layout::collection_for_write(doc, &me, &person, collection, ObjType::Map)?;
            doc.put(&map, key, stored)?;
            Ok(())
        })
    }

    /// Every device's note under `collection` that counts (read from its own person's
    /// container and made into a `T` by `read`), per device the one that is `better` than the
    /// others.
    pub(crate) fn device_notes<S: DeserializeOwned, T>(
        &self,
        collection: &str,
        read: impl Fn([u8; 32], S) -> Option<T>,
        better: impl Fn(&T, &T) -> bool,
    ) -> Vec<T> {
        let mut out: Vec<([u8; 32], T)> = Vec::new();
        for (map, place) in layout::collections(&self.doc, collection, ObjType::Map) {
            let layout::Place::Container(owner) = place else {
                continue;
            };
            for item in self.doc.map_range(&map, ..) {
                let Some((device, note)) = parse(item.key.as_ref(), &item.value)
                    .and_then(|(device, stored)| Some((device, read(device, stored)?)))
                else {
                    continue;
                };
                if self.people.person(&device) != Some(owner) {
                    continue;
                }
                match out.iter_mut().find(|(d, _)| *d == device) {
                    Some(known) if better(&note, &known.1) => known.1 = note,
                    Some(_) => {}
                    None => out.push((device, note)),
                }
            }
        }
        out.into_iter().map(|(_, note)| note).collect()
    }
}

/// A map entry as (device, stored note); `None` for anything else a client may have put
/// there.
fn parse<S: DeserializeOwned>(key: &str, value: &automerge::ValueRef<'_>) -> Option<([u8; 32], S)> {
    let mut device = [0u8; 32];
    hex::decode_to_slice(key, &mut device).ok()?;
    let automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(text)) = value else {
        return None;
    };
    Some((device, serde_json::from_str(text).ok()?))
}
