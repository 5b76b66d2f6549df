//! A creation token from a relay's operator (`hearth-relay token create`), for a relay that
//! creates spaces only with one. It is needed once, by the device that creates the space
//! (its partner joins a space that exists already), so it lives only in memory, on the
//! [`Profile`](crate::Profile) of the command that offers it, and goes with the first
//! `CreateSpace` that succeeds; it is never written to the profile or logged.

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

/// A creation token, checked for its shape (`hrt_` and 43 URL-safe base64 characters).
#[derive(Clone)]
pub struct RelayToken(Zeroizing<String>);

/// A string that is not shaped like a creation token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "that is not a relay creation token: one starts with hrt_ and is {} characters long, as \
     `hearth-relay token create` prints it; copy it whole",
    hearth_proto::frame::CREATION_TOKEN_LEN
)]
pub struct NotARelayToken;

impl FromStr for RelayToken {
    type Err = NotARelayToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if hearth_proto::is_creation_token(s) {
            Ok(RelayToken(Zeroizing::new(s.to_owned())))
        } else {
            Err(NotARelayToken)
        }
    }
}

impl RelayToken {
    /// The token, for the `CreateSpace` frame.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RelayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelayToken(hrt_…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_taken_whole_and_never_shown() {
        let text = format!("hrt_{}", "A".repeat(43));
        let token: RelayToken = format!("  {text}\n").parse().expect("a token");
        assert_eq!(token.expose(), text);
        assert_eq!(format!("{token:?}"), "RelayToken(hrt_…)");
        assert_eq!(
            "hrt_short".parse::<RelayToken>().err(),
            Some(NotARelayToken)
        );
        assert!(
            NotARelayToken
                .to_string()
                .contains("starts with hrt_ and is 47 characters long")
        );
    }
}
