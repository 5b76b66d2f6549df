//! Relay addresses as people type them. Someone setting up hearth copies whatever their
//! operator (or their own reverse proxy) told them: `relay.example.org`,
//! `relay.example.org:8443`, `wss://relay.example.org/`, `ws://192.168.1.5:7878`. The
//! relay serves its websocket at `/v1/sync`, and a URL without that path used to reach a
//! 404 only once a profile was already tied to it. [`RelayUrl::parse`] turns each of these
//! into the one URL a client connects to, and says plainly what is wrong with the rest,
//! before anything is stored.
//!
//! The rules (docs/self-hosting.md, "Relay addresses"):
//! - `ws://` and `wss://` are the only schemes, in any case; `http(s)://` is refused with
//!   the websocket scheme to use instead.
//! - Without a scheme, a loopback host (`localhost`, `127.0.0.1`, `[::1]`) gets `ws://`,
//!   since a relay on the same machine is usually reached without TLS; any other host gets
//!   `wss://`, since a relay across a network should be reached through TLS. A relay on the
//!   home network without TLS needs `ws://` spelt out.
//! - No path (or just `/`) is the relay's own `/v1/sync`. Any other path is kept exactly
//!   as given: a reverse proxy may mount the relay under a prefix.
//! - The host is lowercased; ports are kept as given, default ones are not added.
//! - Blanks, credentials (`user:pass@`), a `#fragment`, an empty host or a port that is not
//!   1 to 65535 are refused.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The path a hearth relay serves its websocket at.
pub const DEFAULT_PATH: &str = "/v1/sync";

/// A relay's websocket URL, normalised by [`RelayUrl::parse`]: always `ws://` or `wss://`,
/// a lowercase host, and a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayUrl(String);

/// What is wrong with a relay address, and what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayUrlError {
    /// Nothing was given.
    #[error(
        "the relay address is empty: give your relay's host name, e.g. relay.example.org, or \
         its full address, e.g. wss://relay.example.org/v1/sync"
    )]
    Empty,
    /// A space, tab or other blank inside the address.
    #[error(
        "the relay address {input:?} has a space or another blank in it: type it as one word, \
         e.g. relay.example.org"
    )]
    Blank {
        /// What was given.
        input: String,
    },
    /// A scheme other than `ws` or `wss`.
    #[error("{}", scheme_message(input, scheme))]
    Scheme {
        /// What was given.
        input: String,
        /// The scheme it names, lowercased.
        scheme: String,
    },
    /// No host between the scheme and the path.
    #[error(
        "the relay address {input:?} names no host: give the relay's host name or IP address, \
         e.g. wss://relay.example.org/v1/sync"
    )]
    NoHost {
        /// What was given.
        input: String,
    },
    /// A host that is not a host name or an IP address.
    #[error(
        "the relay address {input:?} has {host:?} where a host name or IP address goes: use \
         letters, digits, `-` and `.` (an international name in its xn-- form), or an IPv6 \
         address in brackets, e.g. ws://[::1]:7878"
    )]
    Host {
        /// What was given.
        input: String,
        /// The part taken for the host.
        host: String,
    },
    /// A port that is not a number from 1 to 65535.
    #[error(
        "the relay address {input:?} has port {port:?}: a port is a number from 1 to 65535, \
         e.g. relay.example.org:8443"
    )]
    Port {
        /// What was given.
        input: String,
        /// The part taken for the port.
        port: String,
    },
    /// A user name or password in the address.
    #[error(
        "the relay address {input:?} carries a user name or password: a hearth relay needs \
         none, and it would be kept in your profile and in every invite code. Leave out the \
         part before `@`"
    )]
    Credentials {
        /// What was given.
        input: String,
    },
    /// A `#fragment`, which a websocket request never sends.
    #[error(
        "the relay address {input:?} has a #fragment, which never reaches the relay: leave \
         out everything from `#`"
    )]
    Fragment {
        /// What was given.
        input: String,
    },
}

fn scheme_message(input: &str, scheme: &str) -> String {
    let instead = match scheme {
        "https" => Some("wss"),
        "http" => Some("ws"),
        _ => None,
    };
    match instead {
        Some(ws) => format!(
            "the relay address {input:?} starts with {scheme}://, but a hearth relay speaks \
             websockets: use {ws}:// instead (or leave the scheme out: hearth then uses wss://, \
             or ws:// for this machine)"
        ),
        None => format!(
            "the relay address {input:?} starts with {scheme}://, which is not a relay's: use \
             wss:// (or ws:// for a relay reached without TLS), e.g. \
             wss://relay.example.org/v1/sync"
        ),
    }
}

impl RelayUrl {
    /// Reads a relay address as a person typed it (see the module docs for the rules).
    ///
    /// # Errors
    /// A [`RelayUrlError`] saying what is wrong and what to type instead.
    pub fn parse(input: &str) -> Result<RelayUrl, RelayUrlError> {
        let given = input.trim();
        if given.is_empty() {
            return Err(RelayUrlError::Empty);
        }
        let owned = || given.to_owned();
        if given.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RelayUrlError::Blank { input: owned() });
        }
        if given.contains('#') {
            return Err(RelayUrlError::Fragment { input: owned() });
        }
        let (scheme, rest) = match given.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if scheme != "ws" && scheme != "wss" {
                    return Err(RelayUrlError::Scheme {
                        input: owned(),
                        scheme,
                    });
                }
                (Some(scheme), rest)
            }
            None => (None, given),
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if authority.contains('@') {
            return Err(RelayUrlError::Credentials { input: owned() });
        }
        let (host, port) = split_authority(authority).map_err(|bad| match bad {
            Bad::Host(host) if host.is_empty() => RelayUrlError::NoHost { input: owned() },
            Bad::Host(host) => RelayUrlError::Host {
                input: owned(),
                host,
            },
            Bad::Port(port) => RelayUrlError::Port {
                input: owned(),
                port,
            },
        })?;
        let scheme =
            scheme.unwrap_or_else(|| if is_loopback(&host) { "ws" } else { "wss" }.to_owned());
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (tail, None),
        };
        let path = if path.is_empty() || path == "/" {
            DEFAULT_PATH
        } else {
            path
        };
        let mut url = format!("{scheme}://{host}");
        if let Some(port) = port {
            url.push(':');
            url.push_str(&port.to_string());
        }
        url.push_str(path);
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        // What the websocket client will make of it: anything it could not parse is the
        // path's or the query's (the host and port were checked above).
        if url
            .parse::<tokio_tungstenite::tungstenite::http::Uri>()
            .is_err()
        {
            return Err(RelayUrlError::Host {
                input: owned(),
                host: tail.to_owned(),
            });
        }
        Ok(RelayUrl(url))
    }

    /// The URL, e.g. `wss://relay.example.org/v1/sync`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the relay is reached without TLS (`ws://`).
    pub fn is_plain(&self) -> bool {
        self.0.starts_with("ws://")
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RelayUrl {
    type Err = RelayUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RelayUrl::parse(s)
    }
}

impl AsRef<str> for RelayUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What part of an authority is wrong.
enum Bad {
    Host(String),
    Port(String),
}

/// `host[:port]` or `[v6][:port]`, with the host lowercased and checked.
fn split_authority(authority: &str) -> Result<(String, Option<u16>), Bad> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err(Bad::Host(authority.to_owned()));
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(Bad::Host(authority.to_owned()));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| Bad::Host(authority.to_owned()))?,
            ),
        };
        (format!("[{}]", v6.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        // `::1` without brackets, or two ports.
        if host.contains(':') || !is_host_name(host) {
            return Err(Bad::Host(host.to_owned()));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(Bad::Port(p.to_owned())),
        })
        .transpose()?;
    Ok((host, port))
}

/// Letters, digits, `-` and `_` in dot-separated labels (a trailing dot allowed): a DNS
/// name or an IPv4 address.
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether `host` (lowercased, IPv6 in brackets) is this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.parse::<Ipv6Addr>().ok())
            .is_some_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(input: &str) -> String {
        RelayUrl::parse(input)
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
            .to_string()
    }

    #[test]
    fn a_bare_host_gets_wss_and_the_relays_path() {
        assert_eq!(url("relay.example.org"), "wss://relay.example.org/v1/sync");
        assert_eq!(url("Relay.Example.ORG/"), "wss://relay.example.org/v1/sync");
        assert_eq!(
            url("  relay.example.org:8443 "),
            "wss://relay.example.org:8443/v1/sync"
        );
        assert_eq!(url("192.168.1.5:7878"), "wss://192.168.1.5:7878/v1/sync");
    }

    #[test]
    fn a_bare_loopback_host_gets_ws() {
        assert_eq!(url("localhost:7878"), "ws://localhost:7878/v1/sync");
        assert_eq!(url("127.0.0.1:7878"), "ws://127.0.0.1:7878/v1/sync");
        assert_eq!(url("127.1.2.3"), "ws://127.1.2.3/v1/sync");
        assert_eq!(url("[::1]:7878"), "ws://[::1]:7878/v1/sync");
        assert_eq!(url("relay.localhost"), "ws://relay.localhost/v1/sync");
    }

    #[test]
    fn a_scheme_without_a_path_gets_the_relays_path_and_keeps_its_scheme() {
        assert_eq!(
            url("ws://relay.example.org"),
            "ws://relay.example.org/v1/sync"
        );
        assert_eq!(
            url("wss://relay.example.org/"),
            "wss://relay.example.org/v1/sync"
        );
        assert_eq!(
            url("WSS://relay.example.org"),
            "wss://relay.example.org/v1/sync"
        );
        assert_eq!(
            url("wss://localhost:7878"),
            "wss://localhost:7878/v1/sync",
            "a scheme given is kept"
        );
        assert_eq!(
            url("ws://[2001:DB8::1]:80"),
            "ws://[2001:db8::1]:80/v1/sync"
        );
    }

    #[test]
    fn a_full_address_or_another_path_is_kept_as_given() {
        for given in [
            "wss://relay.example.org/v1/sync",
            "ws://127.0.0.1:7878/v1/sync",
            "wss://example.org/hearth/v1/sync",
            "wss://example.org/hearth/",
            "wss://example.org/Relay",
            "wss://example.org/v1/sync?region=eu",
        ] {
            assert_eq!(url(given), given);
        }
        assert_eq!(
            url("example.org/hearth/v1/sync"),
            "wss://example.org/hearth/v1/sync"
        );
        assert_eq!(
            url("wss://example.org?region=eu"),
            "wss://example.org/v1/sync?region=eu"
        );
    }

    #[test]
    fn the_same_relay_typed_two_ways_is_one_address() {
        assert_eq!(
            RelayUrl::parse("relay.example.org").unwrap(),
            RelayUrl::parse("wss://RELAY.example.org/v1/sync").unwrap()
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        let err = |input: &str| RelayUrl::parse(input).unwrap_err();
        assert_eq!(err(""), RelayUrlError::Empty);
        assert_eq!(err("   "), RelayUrlError::Empty);
        assert!(matches!(
            err("relay example.org"),
            RelayUrlError::Blank { .. }
        ));
        assert!(matches!(
            err("wss://relay\texample"),
            RelayUrlError::Blank { .. }
        ));
        let http = err("https://relay.example.org/v1/sync");
        assert!(
            matches!(&http, RelayUrlError::Scheme { scheme, .. } if scheme == "https"),
            "{http:?}"
        );
        assert!(http.to_string().contains("use wss:// instead"), "{http}");
        assert!(
            err("http://relay.example.org")
                .to_string()
                .contains("use ws:// instead")
        );
        assert!(err("ftp://x").to_string().contains("use wss://"));
        assert!(matches!(err("wss://"), RelayUrlError::NoHost { .. }));
        assert!(matches!(
            err("wss:///v1/sync"),
            RelayUrlError::NoHost { .. }
        ));
        assert!(matches!(err(":7878"), RelayUrlError::NoHost { .. }));
        assert!(matches!(
            err("relay.example.org:0"),
            RelayUrlError::Port { .. }
        ));
        assert!(matches!(
            err("relay.example.org:99999"),
            RelayUrlError::Port { .. }
        ));
        assert!(matches!(
            err("relay.example.org:+80"),
            RelayUrlError::Port { .. }
        ));
        assert!(matches!(
            err("relay.example.org:"),
            RelayUrlError::Port { .. }
        ));
        assert!(matches!(err("::1"), RelayUrlError::Host { .. }));
        assert!(matches!(err("[::1"), RelayUrlError::Host { .. }));
        assert!(matches!(err("[nope]:80"), RelayUrlError::Host { .. }));
        assert!(matches!(
            err("rélay.example.org"),
            RelayUrlError::Host { .. }
        ));
        assert!(matches!(err("relay..example"), RelayUrlError::Host { .. }));
        assert!(matches!(
            err("wss://sam:secret@relay.example.org"),
            RelayUrlError::Credentials { .. }
        ));
        assert!(matches!(
            err("wss://relay.example.org/#x"),
            RelayUrlError::Fragment { .. }
        ));
    }

    #[test]
    fn a_normalised_address_reads_back_as_itself() {
        for given in [
            "relay.example.org",
            "127.0.0.1:9",
            "wss://x.org/p?q=1",
            "[::1]",
        ] {
            let once = RelayUrl::parse(given).unwrap();
            assert_eq!(RelayUrl::parse(once.as_str()).unwrap(), once);
        }
    }
}
