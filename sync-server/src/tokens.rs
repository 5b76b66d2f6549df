//! Creation tokens, the operator's say over who may create a space on a relay in token
//! mode: `hearth-relay token create` mints one (`hrt_` and 32 random bytes), prints it
//! once, and keeps only its BLAKE3 hash; a `CreateSpace` that carries it spends one of its
//! uses in the transaction that creates the space. `token list` and `token revoke` work on
//! the same database while the relay runs (SQLite in WAL mode, with the store's busy
//! timeout). The words those commands print are here, so they are tested as strings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_proto::CREATION_TOKEN_PREFIX;
use zeroize::Zeroizing;

use crate::store::{TokenHash, TokenInfo};

/// BLAKE3 derive-key context of a token's stored hash.
const HASH_CONTEXT: &str = "hearth relay creation token v1";

/// How long a token works when `token create` is not told otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// A new random creation token.
///
/// # Errors
/// If the operating system has no randomness to give.
pub fn mint() -> Result<Zeroizing<String>, getrandom::Error> {
    let mut secret = Zeroizing::new([0u8; 32]);
    getrandom::fill(secret.as_mut())?;
    let mut token = Zeroizing::new(String::with_capacity(
        hearth_proto::frame::CREATION_TOKEN_LEN,
    ));
    token.push_str(CREATION_TOKEN_PREFIX);
    URL_SAFE_NO_PAD.encode_string(&secret[..], &mut token);
    Ok(token)
}

/// What the store keeps of `token`.
pub fn hash(token: &str) -> TokenHash {
    blake3::derive_key(HASH_CONTEXT, token.as_bytes())
}

/// Milliseconds since the Unix epoch as a UTC timestamp, `2026-03-01T12:00:00Z`.
pub fn timestamp(ms: u64) -> String {
    // RFC 3339 stops at the year 9999; a later time (none is stored) reads as its end.
    const LAST_MS: u64 = 253_402_300_799_000;
    let at = UNIX_EPOCH + Duration::from_millis(ms.min(LAST_MS));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The wall clock, in UTC milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a token's row says about it at `now_ms`.
fn state(token: &TokenInfo, now_ms: u64) -> &'static str {
    if token.expires_at_ms <= now_ms {
        "expired"
    } else if token.uses_left == 0 {
        "used up"
    } else {
        "usable"
    }
}

/// `hearth-relay token list`'s table (never a token itself: the relay does not have it).
pub fn table(tokens: &[TokenInfo], now_ms: u64) -> String {
    let mut out = format!(
        "{:<6} {:<9} {:<21} {}\n",
        "ID", "USES LEFT", "EXPIRES", "STATE"
    );
    for t in tokens {
        out.push_str(&format!(
            "{:<6} {:<9} {:<21} {}\n",
            t.id,
            t.uses_left,
            timestamp(t.expires_at_ms),
            state(t, now_ms)
        ));
    }
    out
}

/// The explanation `token create` prints beside the token.
pub fn minted_note(id: i64, uses: u32, expires_at_ms: u64) -> String {
    let uses = match uses {
        1 => "1 space".to_owned(),
        n => format!("{n} spaces"),
    };
    format!(
        "Token {id} may create {uses} until {} (the relay keeps only its hash: this is the one \
         time it is shown). Give it to the person starting a space here, privately: \
         `hearth init --relay URL --relay-token TOKEN`. Revoke it with `hearth-relay token \
         revoke {id}`.",
        timestamp(expires_at_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_past_the_year_9999_reads_as_its_end_instead_of_failing() {
        assert_eq!(timestamp(u64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_minted_token_has_the_protocols_shape_and_is_never_the_same_twice() {
        let a = mint().expect("randomness");
        let b = mint().expect("randomness");
        assert!(hearth_proto::is_creation_token(&a), "{}", a.as_str());
        assert_ne!(a.as_str(), b.as_str());
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a), hash(&a.clone()));
    }

    #[test]
    fn the_list_shows_ids_uses_expiry_and_state_but_no_secret() {
        let t0 = 1_800_000_000_000;
        let row = |id, uses_left, expires_at_ms| TokenInfo {
            id,
            uses_left,
            expires_at_ms,
            created_at_ms: t0 - 1,
        };
        let table = table(&[row(1, 1, t0 + 1), row(2, 0, t0 + 1), row(3, 4, t0)], t0);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0].split_whitespace().next(), Some("ID"));
        assert!(
            lines[1].starts_with("1 ") && lines[1].ends_with("usable"),
            "{table}"
        );
        assert!(lines[2].ends_with("used up"), "{table}");
        assert!(lines[3].ends_with("expired"), "{table}");
        assert!(lines[1].contains("2027-01-15T08:00:00Z"), "{table}");
    }
}
