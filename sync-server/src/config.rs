//! The relay's settings in one struct, so that the binary, the tests (a temporary database,
//! small limits, short timeouts) and any embedding program configure the same thing the same
//! way. The binary builds it in layers, each overriding the one before: the defaults, a TOML
//! file (`--config`), `HEARTH_RELAY_*` environment variables, then command-line flags
//! ([`RelayConfig::load`]). One serde shape serves every layer, and a key no layer knows is
//! refused rather than ignored, so that a misspelt setting cannot silently leave a default
//! in force. docs/self-hosting.md lists every key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use hearth_proto::Limits;
use serde::{Deserialize, Serialize};

use crate::clock::RelayClock;
use crate::store::StoreLimits;

/// The prefix of the relay's environment variables; `__` separates nested keys
/// (`HEARTH_RELAY_LIMITS__MAX_SPACES`).
pub const ENV_PREFIX: &str = "HEARTH_RELAY_";

/// The environment variable that names the config file (as `--config` does). It is not a
/// setting itself, so the environment layer skips it.
pub const CONFIG_ENV: &str = "HEARTH_RELAY_CONFIG";

/// Who may create a space on this relay (see docs/self-hosting.md, "Admission").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Admission {
    /// Anyone with a valid Genesis record may create a space, bounded by the quotas and
    /// the per-address rate limit.
    Open,
    /// Only holders of a creation token the operator minted (`hearth-relay token
    /// create`); each use is spent with the space it creates.
    Token,
}

/// How the relay writes its log lines to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// One line of text per event, coloured only when standard error is a terminal and
    /// `NO_COLOR` is unset (so journald and files get plain text).
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`), for log
    /// collectors.
    Json,
}

impl Admission {
    /// The word the config file and the flag use for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Open => "open",
            Admission::Token => "token",
        }
    }
}

/// How fast one client address may do what costs the relay without admitting anyone:
/// creating spaces and failing to log in. An address is an IPv4 address or an IPv6 /64
/// (see docs/self-hosting.md, "Rate limits"); 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerAddress {
    /// Spaces one address may try to create per hour (all at once, or spread out).
    pub creations_per_hour: u32,
    /// Failed logins one address may have per minute before the rest are answered
    /// `RateLimited`. Successful logins are never counted or refused.
    pub failed_logins_per_minute: u32,
}

impl Default for PerAddress {
    fn default() -> Self {
        Self {
            creations_per_hour: 10,
            failed_logins_per_minute: 30,
        }
    }
}

/// How long a space may wait for its second device by default.
pub const DEFAULT_UNJOINED_SPACE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Everything a relay needs to run. In a file, durations are strings with a unit
/// (`"60s"`, `"500ms"`, `"2m"`) and sizes are whole numbers in the unit their key names
/// (`max_db_mib`, `limits.max_frame_bytes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Where to listen (the binary binds it; [`crate::serve`] takes a bound listener).
    pub listen: SocketAddr,
    /// The SQLite database file.
    #[serde(deserialize_with = "path_from_scalar")]
    pub db: PathBuf,
    /// The most the database file may grow to, in MiB (`None`: as far as the disk allows).
    /// At the cap, pushes are refused as they are on a full disk, and nothing is lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_db_mib: Option<u64>,
    /// Who may create spaces; `None`: [`Admission::Token`] on a non-loopback `listen`
    /// address, [`Admission::Open`] on a loopback one ([`RelayConfig::admission`]). Read
    /// from the old key `creation` too.
    #[serde(alias = "creation", skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    /// How long a space may wait for a second device to join it before the relay removes
    /// it (checked at start and hourly at most); zero keeps such spaces forever. Its
    /// creator's device, which holds everything it held, is told so and may create it
    /// again (docs/self-hosting.md, "Spaces nobody joined").
    #[serde(with = "humantime_serde")]
    pub unjoined_space_ttl: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client: a connection from one of
    /// these addresses is rate limited as the address the proxy appended last.
    pub trusted_proxies: Vec<IpAddr>,
    /// The relay's own TLS certificate chain (PEM, its own certificate first): with
    /// [`RelayConfig::tls_key`], the relay serves `wss://` itself; without both, plain
    /// `ws://` (behind a proxy that terminates TLS). Read again on SIGHUP.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_path_from_scalar"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of [`RelayConfig::tls_cert`] (PEM).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_path_from_scalar"
    )]
    pub tls_key: Option<PathBuf>,
    /// How long a client has from connecting to sending its whole HTTP request (the
    /// websocket upgrade); see [`crate::listener`].
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long a client has from the websocket upgrade to a successful `Auth`.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// How long an authenticated connection may stay silent (no frame, no pong) before the
    /// relay closes it. The relay pings at half this interval.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How log lines are written: `text` or `json`.
    pub log_format: LogFormat,
    /// The relay's wall clock (the system's unless an embedding program shifts it, as
    /// tests do to play a relay whose clock is off); never read from a file. The relay id
    /// is not a setting: it is the fingerprint of the relay's key, kept in the database.
    #[serde(skip)]
    pub clock: RelayClock,
    /// The per-address rate limits. After the plain keys, as TOML wants a table.
    pub per_address: PerAddress,
    /// The limits the relay announces in `Challenge` and enforces; the store's quotas are
    /// taken from them ([`RelayConfig::store_limits`]). Last, because in TOML a table
    /// follows the plain keys.
    pub limits: Limits,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            db: PathBuf::from("hearth-relay.db"),
            max_db_mib: None,
            admission: None,
            unjoined_space_ttl: DEFAULT_UNJOINED_SPACE_TTL,
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            request_timeout: crate::listener::REQUEST_DEADLINE,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            log_format: LogFormat::Text,
            clock: RelayClock::default(),
            per_address: PerAddress::default(),
            limits: Limits::default(),
        }
    }
}

/// Why the relay's settings could not be put together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file named with `--config` or `HEARTH_RELAY_CONFIG` does not exist or cannot be
    /// read.
    #[error(
        "cannot read the config file {path}: check the path given with --config or {CONFIG_ENV}"
    )]
    File {
        /// The path as given.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A key that is not a setting of the relay.
    #[error(
        "unknown setting `{key}` in {origin}: remove it or fix its spelling (docs/self-hosting.md lists the settings)"
    )]
    UnknownKey {
        /// The key, dotted if nested (`limits.max_spaces`).
        key: String,
        /// Where it was given: the file, the environment variable, or the flags.
        origin: String,
    },
    /// The config file is not valid TOML.
    #[error("{origin} is not valid TOML: {reason}; fix it (docs/self-hosting.md has an example)")]
    Syntax {
        /// The file.
        origin: String,
        /// What the parser said, with the line.
        reason: String,
    },
    /// A setting whose value does not parse or is out of range.
    #[error("bad value for `{key}` in {origin}: {reason}; {hint}")]
    BadValue {
        /// The key, dotted if nested.
        key: String,
        /// Where it was given.
        origin: String,
        /// What is wrong with the value.
        reason: String,
        /// What a good value looks like.
        hint: &'static str,
    },
    /// One of the TLS certificate and key is given without the other.
    #[error(
        "`{given}` is set but `{missing}` is not: to serve wss:// itself the relay needs both \
         its certificate chain (--tls-cert, {ENV_PREFIX}TLS_CERT or tls_cert) and its private \
         key (--tls-key, {ENV_PREFIX}TLS_KEY or tls_key); give neither to serve plain ws:// \
         behind a proxy"
    )]
    TlsHalf {
        /// The setting that is set.
        given: &'static str,
        /// The one that is missing.
        missing: &'static str,
    },
}

impl RelayConfig {
    /// The settings from every layer, each overriding the one before: the defaults, the
    /// TOML file at `file` (if any: a file that was named but is missing is an error), the
    /// `env` provider (the binary passes [`RelayConfig::env`]), then `flags` (a struct whose
    /// unset fields are skipped when serialized).
    ///
    /// # Errors
    /// [`ConfigError::File`] if `file` cannot be read, [`ConfigError::UnknownKey`] for a key
    /// that is not a setting, [`ConfigError::BadValue`] for a value that does not parse;
    /// each names the key and the layer it came from.
    pub fn load(
        file: Option<&Path>,
        env: Env,
        flags: &impl Serialize,
    ) -> Result<RelayConfig, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RelayConfig::default()));
        if let Some(path) = file {
            // figment treats a missing file as empty; a file the operator named must exist.
            std::fs::metadata(path).map_err(|source| ConfigError::File {
                path: path.to_owned(),
                source,
            })?;
            figment = figment.merge(TomlFile::file_exact(path));
        }
        let figment = figment.merge(env).merge(Flags(flags));
        let config = figment
            .extract::<RelayConfig>()
            .map_err(|e| explain(&figment, e))?;
        config.check()?;
        Ok(config)
    }

    /// What no single key can be checked for: the TLS certificate and key come together.
    ///
    /// # Errors
    /// [`ConfigError::TlsHalf`] if only one of them is set.
    pub fn check(&self) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(ConfigError::TlsHalf {
                given: "tls_cert",
                missing: "tls_key",
            }),
            (None, Some(_)) => Err(ConfigError::TlsHalf {
                given: "tls_key",
                missing: "tls_cert",
            }),
            _ => Ok(()),
        }
    }

    /// The environment layer: every `HEARTH_RELAY_*` variable but [`CONFIG_ENV`], with `__`
    /// between nested keys.
    pub fn env() -> Env {
        Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"])
    }

    /// Who may create spaces: as configured, else [`Admission::Token`] when the relay
    /// listens on an address other machines can reach and [`Admission::Open`] on a loopback
    /// one (where only this machine, or a proxy in front of it, connects).
    pub fn admission(&self) -> Admission {
        self.admission.unwrap_or(if self.listen.ip().is_loopback() {
            Admission::Open
        } else {
            Admission::Token
        })
    }

    /// The store's quotas, taken from [`RelayConfig::limits`] and the database cap.
    pub fn store_limits(&self) -> StoreLimits {
        StoreLimits::new(&self.limits, self.max_db_bytes())
    }

    /// [`RelayConfig::max_db_mib`] in bytes.
    pub fn max_db_bytes(&self) -> Option<u64> {
        self.max_db_mib.map(|mib| mib.saturating_mul(1024 * 1024))
    }

    /// The settings as a TOML file would write them (what `--print-config` shows).
    ///
    /// # Errors
    /// Only if a value has no TOML form, which no setting has.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

/// A path, also from the number or boolean the environment layer reads a bare `123` or
/// `true` as (`HEARTH_RELAY_DB=123` names a file called `123`, as the flag would).
fn path_from_scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    struct PathVisitor;
    impl serde::de::Visitor<'_> for PathVisitor {
        type Value = PathBuf;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a path")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PathBuf, E> {
            Ok(PathBuf::from(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PathBuf, E> {
            Ok(PathBuf::from(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PathBuf, E> {
            Ok(PathBuf::from(v.to_string()))
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<PathBuf, E> {
            Ok(PathBuf::from(v.to_string()))
        }
    }
    d.deserialize_any(PathVisitor)
}

/// [`path_from_scalar`] for a path that may be left out.
fn optional_path_from_scalar<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<PathBuf>, D::Error> {
    path_from_scalar(d).map(Some)
}

/// TOML through the workspace's `toml` crate (figment's own `Toml` would build a second,
/// older one).
struct TomlFile;

impl Format for TomlFile {
    type Error = toml::de::Error;
    const NAME: &'static str = "TOML";

    fn from_str<T: serde::de::DeserializeOwned>(string: &str) -> Result<T, Self::Error> {
        toml::from_str(string)
    }
}

/// The command-line layer, named so that an error can say a flag was at fault.
struct Flags<'a, T>(&'a T);

impl<T: Serialize> Provider for Flags<'_, T> {
    fn metadata(&self) -> Metadata {
        Metadata::named("command-line flags")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::globals(self.0).data()
    }
}

/// Turns figment's error into one that names the key, the layer it came from, and what to
/// do.
fn explain(figment: &Figment, error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    // For an unknown field, figment's path already ends with the field's name.
    let path = error.path.clone();
    let key = path.join(".");
    // The value's own provider; for an unknown key, whichever layer holds it.
    let metadata = figment
        .find_metadata(&key)
        .or(error.metadata.as_ref())
        .cloned();
    let origin = origin(metadata.as_ref(), &path);
    match error.kind {
        Kind::UnknownField(..) => ConfigError::UnknownKey { key, origin },
        // A file that does not parse fails as a whole, before any key is read.
        Kind::Message(reason) if path.is_empty() => ConfigError::Syntax {
            origin,
            reason: reason.trim_end().to_owned(),
        },
        kind => ConfigError::BadValue {
            hint: hint(&key),
            key,
            origin,
            reason: kind.to_string(),
        },
    }
}

/// Where a value came from, in words an operator can act on.
fn origin(metadata: Option<&Metadata>, path: &[String]) -> String {
    let Some(metadata) = metadata else {
        return "the settings".into();
    };
    if let Some(file) = metadata.source.as_ref().and_then(|s| s.file_path()) {
        return format!("the config file {}", file.display());
    }
    if metadata.name.contains("environment") {
        return format!(
            "the environment variable {ENV_PREFIX}{}",
            path.join("__").to_ascii_uppercase()
        );
    }
    if metadata.name == "command-line flags" {
        return format!("the flag --{}", path.join("-").replace('_', "-"));
    }
    metadata.name.to_string()
}

/// What a good value for `key` looks like.
fn hint(key: &str) -> &'static str {
    match key {
        "listen" => "give an IP address and port, like 127.0.0.1:7878",
        "db" => "give the path of the database file",
        "tls_cert" => "give the path of the PEM certificate chain, e.g. fullchain.pem",
        "tls_key" => "give the path of the PEM private key, e.g. privkey.pem",
        "max_db_mib" => "give a whole number of MiB, like 1024",
        "admission" | "creation" => "give \"open\" or \"token\"",
        "log_format" => "give \"text\" or \"json\"",
        "trusted_proxies" => "give a list of IP addresses, like [\"127.0.0.1\"]",
        "request_timeout" | "handshake_timeout" | "idle_timeout" | "unjoined_space_ttl" => {
            "give a duration with its unit, like \"60s\" or \"500ms\""
        }
        _ if key.starts_with("limits.") || key.starts_with("per_address.") => {
            "give a whole number, in the unit the key names"
        }
        _ => "see docs/self-hosting.md for the settings and their values",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    // figment's `Jail` closures return its (large) error type; that is its API, not ours.
    #![allow(clippy::result_large_err)]

    use figment::Jail;

    use super::*;

    /// What the binary's flags serialize as: only those given.
    #[derive(Debug, Default, Serialize)]
    struct TestFlags {
        #[serde(skip_serializing_if = "Option::is_none")]
        listen: Option<SocketAddr>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_db_mib: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        admission: Option<Admission>,
    }

    fn no_flags() -> TestFlags {
        TestFlags::default()
    }

    #[test]
    fn nothing_given_means_the_defaults() {
        Jail::expect_with(|_| {
            let config = RelayConfig::load(None, RelayConfig::env(), &no_flags()).unwrap();
            assert_eq!(config, RelayConfig::default());
            Ok(())
        });
    }

    #[test]
    fn a_file_beats_the_defaults_the_environment_beats_the_file_and_a_flag_beats_both() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "relay.toml",
                r#"
                    listen = "127.0.0.1:1001"
                    db = "from-file.db"
                    max_db_mib = 1
                    idle_timeout = "90s"
                    [limits]
                    max_spaces = 7
                "#,
            )?;
            jail.set_env("HEARTH_RELAY_LISTEN", "127.0.0.1:1002");
            jail.set_env("HEARTH_RELAY_MAX_DB_MIB", "2");
            jail.set_env("HEARTH_RELAY_LIMITS__MAX_BYTES_PER_SPACE", "4096");
            let flags = TestFlags {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 1003))),
                ..TestFlags::default()
            };
            let config =
                RelayConfig::load(Some(Path::new("relay.toml")), RelayConfig::env(), &flags)
                    .unwrap();
            assert_eq!(config.listen.port(), 1003, "the flag wins");
            assert_eq!(config.max_db_mib, Some(2), "the environment beats the file");
            assert_eq!(
                config.db,
                PathBuf::from("from-file.db"),
                "the file beats the default"
            );
            assert_eq!(config.idle_timeout, Duration::from_secs(90));
            assert_eq!(config.limits.max_spaces, 7);
            assert_eq!(config.limits.max_bytes_per_space, 4096);
            assert_eq!(
                config.limits.max_frame_bytes,
                Limits::default().max_frame_bytes,
                "a limit no layer names keeps its default"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.create_file("relay.toml", "idle_timout = \"30s\"\n")?;
            let err = RelayConfig::load(
                Some(Path::new("relay.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap_err();
            let ConfigError::UnknownKey { key, origin } = &err else {
                panic!("{err}");
            };
            assert_eq!(key, "idle_timout");
            assert!(origin.contains("relay.toml"), "{origin}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_nested_key_is_refused_by_its_full_name() {
        Jail::expect_with(|jail| {
            jail.create_file("relay.toml", "[limits]\nmax_space = 3\n")?;
            let err = RelayConfig::load(
                Some(Path::new("relay.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap_err();
            assert!(
                matches!(&err, ConfigError::UnknownKey { key, .. } if key == "limits.max_space"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_relay_variable_is_refused_by_its_name() {
        Jail::expect_with(|jail| {
            jail.set_env("HEARTH_RELAY_IDLE", "30s");
            let err = RelayConfig::load(None, RelayConfig::env(), &no_flags()).unwrap_err();
            let ConfigError::UnknownKey { key, origin } = &err else {
                panic!("{err}");
            };
            assert_eq!(key, "idle");
            assert!(origin.contains("HEARTH_RELAY_IDLE"), "{origin}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_is_named_with_where_it_came_from_and_what_to_write() {
        Jail::expect_with(|jail| {
            jail.set_env("HEARTH_RELAY_IDLE_TIMEOUT", "soon");
            let err = RelayConfig::load(None, RelayConfig::env(), &no_flags()).unwrap_err();
            let message = err.to_string();
            let ConfigError::BadValue { key, origin, .. } = &err else {
                panic!("{err}");
            };
            assert_eq!(key, "idle_timeout");
            assert!(origin.contains("HEARTH_RELAY_IDLE_TIMEOUT"), "{origin}");
            assert!(message.contains("\"60s\""), "{message}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file("relay.toml", "listen = \"localhost\"\n")?;
            let err = RelayConfig::load(
                Some(Path::new("relay.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap_err();
            let ConfigError::BadValue { key, origin, .. } = &err else {
                panic!("{err}");
            };
            assert_eq!(key, "listen");
            assert!(origin.contains("relay.toml"), "{origin}");
            Ok(())
        });
    }

    #[test]
    fn a_file_that_is_not_toml_is_refused_with_its_line() {
        Jail::expect_with(|jail| {
            jail.create_file("relay.toml", "listen = \n")?;
            let err = RelayConfig::load(
                Some(Path::new("relay.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap_err();
            let ConfigError::Syntax { origin, reason } = &err else {
                panic!("{err}");
            };
            assert!(origin.contains("relay.toml"), "{origin}");
            assert!(reason.contains("line 1"), "{reason}");
            Ok(())
        });
    }

    #[test]
    fn a_database_named_by_a_number_in_the_environment_is_a_path() {
        Jail::expect_with(|jail| {
            jail.set_env("HEARTH_RELAY_DB", "123");
            let config = RelayConfig::load(None, RelayConfig::env(), &no_flags()).unwrap();
            assert_eq!(config.db, PathBuf::from("123"));
            Ok(())
        });
    }

    #[test]
    fn a_named_config_file_that_is_missing_is_an_error() {
        Jail::expect_with(|_| {
            let err = RelayConfig::load(
                Some(Path::new("nowhere.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap_err();
            assert!(matches!(err, ConfigError::File { .. }), "{err}");
            assert!(err.to_string().contains("nowhere.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_config_file_variable_is_not_taken_for_a_setting() {
        Jail::expect_with(|jail| {
            jail.create_file("relay.toml", "")?;
            jail.set_env(CONFIG_ENV, "relay.toml");
            assert!(RelayConfig::load(None, RelayConfig::env(), &no_flags()).is_ok());
            Ok(())
        });
    }

    #[test]
    fn the_printed_config_reads_back_as_the_same_settings() {
        Jail::expect_with(|jail| {
            let config = RelayConfig {
                max_db_mib: Some(64),
                tls_cert: Some(PathBuf::from("/etc/hearth/fullchain.pem")),
                tls_key: Some(PathBuf::from("/etc/hearth/privkey.pem")),
                idle_timeout: Duration::from_millis(1500),
                admission: Some(Admission::Token),
                unjoined_space_ttl: Duration::from_secs(3600),
                trusted_proxies: vec![IpAddr::from([127, 0, 0, 1])],
                per_address: PerAddress {
                    creations_per_hour: 3,
                    failed_logins_per_minute: 0,
                },
                ..RelayConfig::default()
            };
            jail.create_file("relay.toml", &config.to_toml().unwrap())?;
            let read = RelayConfig::load(
                Some(Path::new("relay.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap();
            assert_eq!(read, config);
            Ok(())
        });
    }

    #[test]
    fn a_tls_certificate_and_key_come_from_any_layer_together() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "relay.toml",
                "tls_cert = \"/etc/hearth/fullchain.pem\"\ntls_key = \"/etc/hearth/privkey.pem\"\n",
            )?;
            let config = RelayConfig::load(
                Some(Path::new("relay.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap();
            assert_eq!(
                config.tls_cert.as_deref(),
                Some(Path::new("/etc/hearth/fullchain.pem"))
            );
            assert_eq!(
                config.tls_key.as_deref(),
                Some(Path::new("/etc/hearth/privkey.pem"))
            );
            jail.set_env("HEARTH_RELAY_TLS_KEY", "/elsewhere/key.pem");
            let config = RelayConfig::load(
                Some(Path::new("relay.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap();
            assert_eq!(
                config.tls_key.as_deref(),
                Some(Path::new("/elsewhere/key.pem"))
            );
            Ok(())
        });
    }

    #[test]
    fn a_tls_certificate_without_its_key_is_refused_naming_both() {
        Jail::expect_with(|jail| {
            jail.set_env("HEARTH_RELAY_TLS_CERT", "fullchain.pem");
            let err = RelayConfig::load(None, RelayConfig::env(), &no_flags()).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::TlsHalf {
                        given: "tls_cert",
                        missing: "tls_key"
                    }
                ),
                "{err}"
            );
            let message = err.to_string();
            assert!(message.contains("--tls-key"), "{message}");
            assert!(message.contains("give neither"), "{message}");
            Ok(())
        });
        let key_only = RelayConfig {
            tls_key: Some(PathBuf::from("privkey.pem")),
            ..RelayConfig::default()
        };
        assert!(matches!(
            key_only.check(),
            Err(ConfigError::TlsHalf {
                given: "tls_key",
                ..
            })
        ));
    }

    #[test]
    fn admission_is_token_on_a_reachable_address_and_open_on_loopback_unless_chosen() {
        let on = |listen: &str, admission| RelayConfig {
            listen: listen.parse().unwrap(),
            admission,
            ..RelayConfig::default()
        };
        assert_eq!(on("127.0.0.1:7878", None).admission(), Admission::Open);
        assert_eq!(on("[::1]:7878", None).admission(), Admission::Open);
        assert_eq!(on("0.0.0.0:7878", None).admission(), Admission::Token);
        assert_eq!(on("192.0.2.7:443", None).admission(), Admission::Token);
        assert_eq!(on("[::]:443", None).admission(), Admission::Token);
        assert_eq!(
            on("0.0.0.0:7878", Some(Admission::Open)).admission(),
            Admission::Open,
            "the operator's choice wins"
        );
        assert_eq!(
            on("127.0.0.1:7878", Some(Admission::Token)).admission(),
            Admission::Token
        );
    }

    #[test]
    fn admission_comes_from_the_file_the_environment_or_the_flag_and_the_old_key_still_counts() {
        Jail::expect_with(|jail| {
            jail.create_file("old.toml", "creation = \"token\"\n")?;
            let config =
                RelayConfig::load(Some(Path::new("old.toml")), RelayConfig::env(), &no_flags())
                    .unwrap();
            assert_eq!(config.admission, Some(Admission::Token), "the old key");
            jail.create_file("new.toml", "admission = \"token\"\n")?;
            jail.set_env("HEARTH_RELAY_ADMISSION", "open");
            let config =
                RelayConfig::load(Some(Path::new("new.toml")), RelayConfig::env(), &no_flags())
                    .unwrap();
            assert_eq!(config.admission, Some(Admission::Open), "the environment");
            let flags = TestFlags {
                admission: Some(Admission::Token),
                ..TestFlags::default()
            };
            let config =
                RelayConfig::load(Some(Path::new("new.toml")), RelayConfig::env(), &flags).unwrap();
            assert_eq!(config.admission, Some(Admission::Token), "the flag");
            Ok(())
        });
    }

    #[test]
    fn a_misspelt_admission_mode_is_refused_with_the_two_it_could_be() {
        Jail::expect_with(|jail| {
            jail.set_env("HEARTH_RELAY_ADMISSION", "tokens");
            let err = RelayConfig::load(None, RelayConfig::env(), &no_flags()).unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadValue { key, .. } if key == "admission"),
                "{err}"
            );
            assert!(err.to_string().contains("\"open\" or \"token\""), "{err}");
            Ok(())
        });
    }

    #[test]
    fn expiry_rate_limits_and_proxies_are_read_from_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "relay.toml",
                r#"
                    unjoined_space_ttl = "3days"
                    trusted_proxies = ["127.0.0.1", "::1"]
                    [per_address]
                    creations_per_hour = 2
                "#,
            )?;
            jail.set_env("HEARTH_RELAY_PER_ADDRESS__FAILED_LOGINS_PER_MINUTE", "5");
            let config = RelayConfig::load(
                Some(Path::new("relay.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap();
            assert_eq!(
                config.unjoined_space_ttl,
                Duration::from_secs(3 * 24 * 3600)
            );
            assert_eq!(
                config.trusted_proxies,
                vec![
                    IpAddr::from([127, 0, 0, 1]),
                    IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                ]
            );
            assert_eq!(
                config.per_address,
                PerAddress {
                    creations_per_hour: 2,
                    failed_logins_per_minute: 5,
                }
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_rate_limit_is_refused_by_its_full_name() {
        Jail::expect_with(|jail| {
            jail.create_file("relay.toml", "[per_address]\ncreations_per_day = 3\n")?;
            let err = RelayConfig::load(
                Some(Path::new("relay.toml")),
                RelayConfig::env(),
                &no_flags(),
            )
            .unwrap_err();
            assert!(
                matches!(&err, ConfigError::UnknownKey { key, .. } if key == "per_address.creations_per_day"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_store_quotas_are_the_announced_limits() {
        let config = RelayConfig {
            max_db_mib: Some(3),
            limits: Limits {
                max_spaces: 5,
                max_bytes_per_space: 999,
                ..Limits::default()
            },
            ..RelayConfig::default()
        };
        let store = config.store_limits();
        assert_eq!(store.max_spaces, 5);
        assert_eq!(store.max_bytes_per_space, 999);
        assert_eq!(store.max_db_bytes, Some(3 * 1024 * 1024));
    }
}
