//! Profiles for tests that drive the client library directly: a new profile, an
//! appreciation written and read back, a device joined by a real invite, and a couple
//! paired over a relay, each done the way the `hearth` program does it.

use std::path::Path;
use std::time::Duration;

use hearth_client::{Profile, Protection};
use hearth_doc::Millis;
use hearth_proto::InviteRole;

/// The bound on each network step of the set-up: a bug fails the test instead of hanging it.
const T: Duration = Duration::from_secs(20);

/// A new profile (no passphrase) for `name` in `home`.
pub fn new_profile(home: &Path, name: &str) -> Profile {
    Profile::create(home, name, Protection::None, Millis::now()).expect("a new profile")
}

/// Writes one appreciation as the profile's person.
pub fn appreciate(profile: &mut Profile, text: &str) {
    let me = profile.person_id().clone();
    profile
        .write(|doc| doc.add_appreciation(&me, text, Millis::now()))
        .expect("an appreciation is written");
}

/// Every appreciation's text, sorted, duplicates kept.
pub fn appreciations(profile: &Profile) -> Vec<String> {
    let mut texts: Vec<String> = profile
        .load()
        .expect("the profile loads")
        .appreciations()
        .into_iter()
        .map(|a| a.text)
        .collect();
    texts.sort();
    texts
}

/// A new device in `home`, joined to `inviter`'s space by an invite minted and accepted
/// over the real relay (as the partner named `name`, or as another device of the inviter's
/// person when `name` is `None`).
pub async fn invited(home: &Path, inviter: &mut Profile, name: Option<&str>) -> Profile {
    let role = if name.is_some() {
        InviteRole::Partner
    } else {
        InviteRole::OwnDevice
    };
    let code = hearth_client::sync::invite(inviter, role, Duration::from_secs(3600), T)
        .await
        .expect("an invite");
    hearth_client::sync::join(home, &code, name, Protection::None, T)
        .await
        .expect("the invite is accepted")
        .profile
}

/// A couple on `relay`: `first` creates a space there as `first_name`, and `second` joins
/// it as the partner `second_name` through a real invite.
pub async fn paired(first: &Path, first_name: &str, second: &Path, second_name: &str, relay: &str) {
    let mut profile = new_profile(first, first_name);
    profile
        .sync_book_mut()
        .start_space(relay)
        .expect("the space starts on the relay");
    hearth_client::sync::sync_once(&mut profile, T)
        .await
        .expect("the first sync");
    invited(second, &mut profile, Some(second_name)).await;
}
