//! The relay's settings in one struct, so that the binary, the tests (a temporary database,
//! small limits, short timeouts) and any embedding program configure the same thing the same
//! way. The binary builds it in layers, each overriding the one before: the defaults, a TOML
//! file (`--config`), `HEARTH_RELAY_*` environment variables, then command-line flags
//! ([`RelayConfig::load`]). One serde shape serves every layer, and a key no layer knows is
//! refused rather than ignored, so that a misspelt setting cannot silently leave a default
//! in force. docs/self-hosting.md lists every key.

use std::net::SocketAddr;
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

/// Who may create a space on this relay (see docs/self-hosting.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Creation {
    /// Anyone with a valid Genesis record may create a space, bounded by the quotas.
    #[default]
    Open,
    /// Only holders of a one-time creation token minted by the operator. Token minting is
    /// not built yet, so a relay in this mode refuses every `CreateSpace`.
    Token,
}

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
    /// Who may create spaces.
    pub creation: Creation,
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
    /// The relay's wall clock (the system's unless an embedding program shifts it, as
    /// tests do to play a relay whose clock is off); never read from a file. The relay id
    /// is not a setting: it is the fingerprint of the relay's key, kept in the database.
    #[serde(skip)]
    pub clock: RelayClock,
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
            creation: Creation::Open,
            request_timeout: crate::listener::REQUEST_DEADLINE,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            clock: RelayClock::default(),
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
        figment
            .extract::<RelayConfig>()
            .map_err(|e| explain(&figment, e))
    }

    /// The environment layer: every `HEARTH_RELAY_*` variable but [`CONFIG_ENV`], with `__`
    /// between nested keys.
    pub fn env() -> Env {
        Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"])
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
        "max_db_mib" => "give a whole number of MiB, like 1024",
        "creation" => "give \"open\" or \"token\"",
        "request_timeout" | "handshake_timeout" | "idle_timeout" => {
            "give a duration with its unit, like \"60s\" or \"500ms\""
        }
        _ if key.starts_with("limits.") => "give a whole number, in the unit the key names",
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
                max_db_mib: None,
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
                idle_timeout: Duration::from_millis(1500),
                creation: Creation::Token,
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
