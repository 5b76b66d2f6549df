//! Unlocking a passphrase profile once (`hearth unlock`) instead of on every command.
//!
//! Opening a passphrase profile costs scrypt: ~140 ms of CPU and 64 MiB, every command,
//! and a timer cannot type the passphrase at all. [`unlock`] pays that once and hands the
//! key file's [`FileKey`] (what scrypt unwraps) to the Linux kernel keyring for a while;
//! [`open`] then opens the profile with it, no scrypt and no prompt, until the entry expires
//! or [`lock`] removes it.
//!
//! The entry is one `user` key in the user's keyring (`@u`): kernel memory, never a file,
//! never swapped, gone at reboot. It is readable by this user's processes only (and by
//! root), whatever their session, so a systemd user timer sees it too. It expires twice
//! over: the kernel removes it at its timeout, and the deadline stored inside it is checked
//! on every use, so a clock the kernel does not share (or a timeout that failed to set)
//! never keeps a profile open longer than asked.
//!
//! An entry belongs to one profile: it is named after the profile directory's canonical
//! path, holds that path and the device id, and its file key opens only the key file it
//! came from (age checks it against the file's MAC). An entry that fails any of this, or has
//! expired, is removed and the profile opens the usual way: a stale entry is never an error.
//!
//! Without a kernel keyring (another OS, or a container whose seccomp profile blocks
//! `keyctl`), [`unlock`] fails with [`Error::KeyringUnavailable`] and everything else
//! behaves as if nothing were unlocked.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_crypto::keyfile::{self, FileKey};
use hearth_crypto::{DeviceId, ProfileSecrets, SecretString};
use zeroize::Zeroizing;

use crate::Error;
use crate::profile::{self, Profile};

/// How long [`unlock`] keeps a profile unlocked when the caller does not say: a working day.
pub const DEFAULT_UNLOCK_FOR: Duration = Duration::from_secs(8 * 60 * 60);

/// The longest a profile may stay unlocked: a month. Longer is a profile without a
/// passphrase, which `hearth init --no-passphrase` makes honestly.
pub const MAX_UNLOCK_FOR: Duration = Duration::from_secs(31 * 24 * 60 * 60);

const ENTRY_MAGIC: &str = "hearth-unlock v1";

/// An unlocked profile and the moment it locks again.
#[derive(Debug)]
pub struct Unlocked {
    /// The profile, opened with the passphrase.
    pub profile: Profile,
    /// When the keyring forgets the key.
    pub until: SystemTime,
}

/// Opens the profile in `home` with `passphrase` and keeps its file key in the kernel
/// keyring for `duration` from `now`, replacing any earlier entry for this profile.
///
/// # Errors
/// [`Error::NoPassphrase`] if the profile has none; the errors of [`Profile::open`] for a
/// wrong passphrase or a damaged profile (nothing is stored then);
/// [`Error::UnlockDuration`] for a duration of zero or above [`MAX_UNLOCK_FOR`];
/// [`Error::KeyringUnavailable`] if the kernel keyring cannot hold it.
pub fn unlock(
    home: &Path,
    passphrase: &SecretString,
    duration: Duration,
    now: SystemTime,
) -> Result<Unlocked, Error> {
    if duration.is_zero() || duration > MAX_UNLOCK_FOR {
        return Err(Error::UnlockDuration {
            max_days: MAX_UNLOCK_FOR.as_secs() / 86_400,
        });
    }
    let paths = profile::existing_paths(home)?;
    if !keyfile::is_passphrase_protected(&paths.key_file)? {
        return Err(Error::NoPassphrase {
            home: home.to_owned(),
        });
    }
    let (secrets, key) = keyfile::read_keeping_file_key(&paths.key_file, passphrase)?;
    let device = secrets.device.device_id();
    let profile = Profile::open_with(paths, secrets)?;
    let entry = Entry {
        home: canonical(home)?,
        device,
        until_ms: unix_ms(now + duration),
        key,
    };
    keyring::put(&description(&entry.home), &entry.encode(), duration)
        .map_err(|reason| Error::KeyringUnavailable { reason })?;
    tracing::info!(device = %device.short(), seconds = duration.as_secs(), "profile unlocked");
    Ok(Unlocked {
        profile,
        until: from_unix_ms(entry.until_ms),
    })
}

/// Opens the profile in `home` with the key [`unlock`] kept, if it is unlocked at `now`.
/// `None` if it is not: never unlocked, locked, expired, or an entry that does not belong
/// to it (which is removed), or no keyring to ask.
///
/// # Errors
/// [`Error::NoProfile`]; a damaged key file or database, as [`Profile::open`].
pub fn open(home: &Path, now: SystemTime) -> Result<Option<Profile>, Error> {
    let paths = profile::existing_paths(home)?;
    match held(&paths, now)? {
        Some((_, secrets)) => Profile::open_with(paths, secrets).map(Some),
        None => Ok(None),
    }
}

/// Until when the profile in `home` is unlocked, as of `now`; `None` if it is not (a stale
/// entry is removed, as by [`open`]).
///
/// # Errors
/// As [`open`].
pub fn unlocked_until(home: &Path, now: SystemTime) -> Result<Option<SystemTime>, Error> {
    let paths = profile::existing_paths(home)?;
    Ok(held(&paths, now)?.map(|(until, _)| until))
}

/// Forgets the kept key of the profile in `home`. Whether there was one to forget.
///
/// # Errors
/// [`Error::NoProfile`] if there is no profile in `home`.
pub fn lock(home: &Path) -> Result<bool, Error> {
    profile::existing_paths(home)?;
    let removed = keyring::remove(&description(&canonical(home)?)).unwrap_or_else(|reason| {
        tracing::debug!(%reason, "no keyring, so nothing was unlocked");
        false
    });
    if removed {
        tracing::info!("profile locked");
    }
    Ok(removed)
}

/// The name of the kernel keyring entry that holds the profile in `home` unlocked: a
/// `user` key in the user keyring, as in `keyctl search @u user NAME`.
///
/// # Errors
/// [`Error::Io`] if `home` cannot be resolved (it does not exist, say).
pub fn entry_name(home: &Path) -> Result<String, Error> {
    Ok(description(&canonical(home)?))
}

/// The entry for the profile at `paths`, checked against it and against `now`, with the
/// secrets its file key opens.
fn held(
    paths: &profile::ProfilePaths,
    now: SystemTime,
) -> Result<Option<(SystemTime, ProfileSecrets)>, Error> {
    let home = canonical(&paths.home)?;
    let name = description(&home);
    let payload = match keyring::get(&name) {
        Ok(Some(payload)) => payload,
        Ok(None) => return Ok(None),
        Err(reason) => {
            tracing::debug!(%reason, "no keyring to look for an unlocked key in");
            return Ok(None);
        }
    };
    let stale = |why: &str| {
        tracing::debug!(
            why,
            "an unlocked-key entry does not fit this profile; removed"
        );
        let _ = keyring::remove(&name);
        Ok(None)
    };
    let Some(entry) = Entry::decode(&payload) else {
        return stale("it does not parse");
    };
    if entry.home != home {
        return stale("it names another profile directory");
    }
    if unix_ms(now) >= entry.until_ms {
        return stale("it has expired");
    }
    let Some(secrets) = keyfile::read_with_file_key(&paths.key_file, &entry.key)? else {
        return stale("its key does not open this key file");
    };
    if secrets.device.device_id() != entry.device {
        return stale("it was kept for another device");
    }
    Ok(Some((from_unix_ms(entry.until_ms), secrets)))
}

/// What the keyring holds for one unlocked profile.
struct Entry {
    home: PathBuf,
    device: DeviceId,
    until_ms: u64,
    key: FileKey,
}

impl Entry {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            format!(
                "{ENTRY_MAGIC}\nhome {}\ndevice {}\nuntil {}\nkey {}\n",
                hex::encode(path_bytes(&self.home)),
                self.device,
                self.until_ms,
                hex::encode(self.key.as_bytes()),
            )
            .into_bytes(),
        )
    }

    fn decode(payload: &[u8]) -> Option<Entry> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut lines = text.lines();
        if lines.next()? != ENTRY_MAGIC {
            return None;
        }
        let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ');
        let home = path_from_bytes(hex::decode(field("home")?).ok()?);
        let device = field("device")?.parse().ok()?;
        let until_ms = field("until")?.parse().ok()?;
        let mut key = Zeroizing::new([0u8; 16]);
        hex::decode_to_slice(field("key")?, &mut *key).ok()?;
        Some(Entry {
            home,
            device,
            until_ms,
            key: FileKey::from_bytes(*key),
        })
    }
}

/// The keyring name of the entry for the profile directory `home`: a hash, so the path
/// itself is not in the name (`/proc/keys`).
fn description(home: &Path) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("hearth 2026 unlock entry name");
    hasher.update(&path_bytes(home));
    format!("hearth:unlock:{}", &hasher.finalize().to_hex()[..32])
}

fn canonical(home: &Path) -> Result<PathBuf, Error> {
    std::fs::canonicalize(home).map_err(|source| Error::Io {
        path: home.to_owned(),
        source,
    })
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The kernel keyring, as three operations on named entries in the user's keyring.
/// Each failure that means "no keyring here" comes back as the reason, in words.
#[cfg(target_os = "linux")]
mod keyring {
    use std::time::Duration;

    use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};
    use zeroize::Zeroizing;

    /// Far more than an entry needs (its path is at most 4 KiB, as hex 8 KiB).
    const MAX_PAYLOAD: usize = 16 * 1024;

    /// Stores `payload` as `name` in the user keyring for `timeout`, replacing an entry of
    /// that name. The key is made in this process's own keyring, where this process may set
    /// its permissions and timeout whatever its session, and only then linked into the
    /// user keyring, so it is never there without its timeout.
    pub(super) fn put(name: &str, payload: &[u8], timeout: Duration) -> Result<(), String> {
        let user = KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(unavailable)?;
        let process =
            KeyRing::from_special_id(KeyRingIdentifier::Process, true).map_err(unavailable)?;
        let key = process.add_key(name, payload).map_err(unavailable)?;
        let placed = (|| {
            // This user's processes, in any session, may read it; nobody else.
            key.set_perms(
                KeyPermissionsBuilder::builder()
                    .posessor(Permission::ALL)
                    .user(Permission::ALL)
                    .build(),
            )?;
            let seconds = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
            key.set_timeout(usize::try_from(seconds).unwrap_or(usize::MAX))?;
            user.link_key(key)
        })();
        let _ = process.unlink_key(key);
        if placed.is_err() {
            let _ = key.invalidate();
        }
        placed.map_err(unavailable)
    }

    /// The payload stored as `name`, if there is one.
    pub(super) fn get(name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        let Some(key) = find(name)? else {
            return Ok(None);
        };
        let mut buffer = Zeroizing::new(vec![0u8; MAX_PAYLOAD]);
        match key.read(&mut *buffer) {
            Ok(len) if len <= MAX_PAYLOAD => {
                buffer.truncate(len);
                Ok(Some(buffer))
            }
            // Not one of ours: too big to be an entry. Garbage to the caller.
            Ok(_) => Ok(Some(Zeroizing::new(Vec::new()))),
            Err(e) if gone(e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Removes the entry `name`; whether there was one.
    pub(super) fn remove(name: &str) -> Result<bool, String> {
        let Some(key) = find(name)? else {
            return Ok(false);
        };
        match key.invalidate() {
            Ok(()) => Ok(true),
            Err(e) if gone(e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn find(name: &str) -> Result<Option<linux_keyutils::Key>, String> {
        let user = match KeyRing::from_special_id(KeyRingIdentifier::User, false) {
            Ok(user) => user,
            Err(e) if gone(e) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        match user.search(name) {
            Ok(key) => Ok(Some(key)),
            Err(e) if gone(e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The entry is not there (any more): never stored, expired, removed.
    fn gone(e: KeyError) -> bool {
        matches!(
            e,
            KeyError::KeyDoesNotExist
                | KeyError::KeyExpired
                | KeyError::KeyRevoked
                | KeyError::KeyringDoesNotExist
        )
    }

    fn unavailable(e: KeyError) -> String {
        match e {
            KeyError::PermissionDenied | KeyError::OperationNotSupported => {
                "this system does not let programs use the kernel keyring (keyctl was refused; \
                 containers often block it)"
                    .to_owned()
            }
            KeyError::Unknown(code)
                if std::io::Error::from_raw_os_error(code).kind()
                    == std::io::ErrorKind::Unsupported =>
            {
                "this kernel has no keyring support (keyctl does not exist)".to_owned()
            }
            KeyError::QuotaExceeded => {
                "your kernel keyring is full (its quota in /proc/sys/kernel/keys is reached)"
                    .to_owned()
            }
            KeyError::AccessDenied => {
                "the kernel keyring would not let this program use your keyring".to_owned()
            }
            KeyError::Unknown(code) => format!(
                "the kernel keyring failed: {}",
                std::io::Error::from_raw_os_error(code)
            ),
            other => format!("the kernel keyring failed ({other:?})"),
        }
    }
}

/// No kernel keyring on this system: nothing can be unlocked, nothing ever is.
#[cfg(not(target_os = "linux"))]
mod keyring {
    use std::time::Duration;

    use zeroize::Zeroizing;

    const WHY: &str = "hearth keeps an unlocked key only in the Linux kernel keyring, which \
                       this system does not have";

    pub(super) fn put(_name: &str, _payload: &[u8], _timeout: Duration) -> Result<(), String> {
        Err(WHY.to_owned())
    }

    pub(super) fn get(_name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        Ok(None)
    }

    pub(super) fn remove(_name: &str) -> Result<bool, String> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_and_garbage_does_not() {
        let entry = Entry {
            home: PathBuf::from("/home/sam/our\nhearth"),
            device: DeviceId::from_bytes([7; 32]),
            until_ms: 1_700_000_000_000,
            key: FileKey::from_bytes([9; 16]),
        };
        let back = Entry::decode(&entry.encode()).expect("it parses");
        assert_eq!(back.home, entry.home);
        assert_eq!(back.device, entry.device);
        assert_eq!(back.until_ms, entry.until_ms);
        assert_eq!(back.key.as_bytes(), entry.key.as_bytes());
        for garbage in [
            &b""[..],
            b"hearth-unlock v1\n",
            b"\xff\xfe",
            b"other v1\nhome 00\n",
        ] {
            assert!(Entry::decode(garbage).is_none(), "{garbage:?}");
        }
    }

    #[test]
    fn two_directories_have_two_entry_names() {
        let a = description(Path::new("/home/sam/hearth"));
        assert_eq!(a, description(Path::new("/home/sam/hearth")));
        assert_ne!(a, description(Path::new("/home/sam/hearth2")));
        assert!(!a.contains("sam"), "{a}");
    }
}
