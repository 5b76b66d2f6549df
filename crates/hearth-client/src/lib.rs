//! hearth's device side: everything the `hearth` CLI, the tests and the benchmarks drive.
//!
//! A [`Profile`] is one device's copy of the couple's space: a directory holding the
//! device key file (see `hearth_crypto::keyfile`) and one SQLite file with the document's
//! chunks and the private journal, every byte of content sealed with the profile's storage
//! key. Writes are transactional: a crash at any moment loses at most the command in
//! flight, never anything committed before it.
//!
//! ```
//! use hearth_client::{Profile, Protection};
//! use hearth_doc::Millis;
//!
//! let home = tempfile::tempdir()?;
//! let mut profile = Profile::create(home.path(), "Sam", Protection::None, Millis(1_700_000_000_000))?;
//! let me = profile.person_id().clone();
//! profile.write(|doc| doc.add_appreciation(&me, "thank you for the soup", Millis(1_700_000_000_001)))?;
//!
//! let reopened = Profile::open(home.path(), None)?;
//! let doc = reopened.load()?;
//! assert_eq!(doc.appreciations()[0].text, "thank you for the soup");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod profile;
mod relay_url;
mod store;
pub mod sync;
mod sync_book;
pub mod tls;
pub mod unlock;
mod verify;

pub use error::Error;
pub use hearth_crypto::{
    CryptoError, DeviceId, ExposeSecret, ProfileSecrets, Protection, SecretString,
};
pub use profile::{Profile, ProfilePaths, default_home};
pub use relay_url::{DEFAULT_PATH, RelayUrl, RelayUrlError};
pub use sync_book::{
    DeviceInfo, Incoming, Landmark, MintedInvite, RefusedChangeReport, SyncBook, Whose, Withheld,
};
pub use tls::{RelayCa, RelayTrust, TlsFault};
pub use verify::{Verification, WriterLine, codes as verification_codes};
