//! The device key file: the one place a device's secrets rest on disk.
//!
//! With a passphrase, the file is an age file encrypted to an scrypt recipient. The work
//! factor is set explicitly ([`SCRYPT_LOG_N`]: age's auto-calibration picked ~1 GiB and ~3 s
//! on our machines) and decryption refuses files that ask for more than
//! [`SCRYPT_MAX_LOG_N`], so a tampered file cannot make `hearth` spin for minutes.
//! Without a passphrase, the same secrets are written in the clear, protected only by the
//! file's 0600 permissions; the file says so in its first lines.
//!
//! Files are created atomically (written to a temporary name, synced, then linked into
//! place), and an existing key file is never overwritten.
//!
//! Unlocking once (`hearth unlock`) keeps the [`FileKey`] that scrypt unwraps from a
//! passphrase file ([`read_keeping_file_key`]); [`read_with_file_key`] opens the same file
//! with it and no scrypt. The file key opens this one file only: age checks it against the
//! header's MAC, so a key file written since (another profile, a new passphrase) refuses it.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use std::cell::RefCell;

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::{CryptoError, DeviceKeys, ProfileSecrets, StorageKey};

/// scrypt work factor used when writing a key file: N = 2^16 (64 MiB, a fraction of a second).
pub const SCRYPT_LOG_N: u8 = 16;
/// The largest scrypt work factor accepted when reading a key file.
pub const SCRYPT_MAX_LOG_N: u8 = 20;

const MAGIC: &str = "hearth-device-key v1";
const AGE_MAGIC: &[u8] = b"age-encryption.org/";
const PLAIN_NOTICE: &str = "# hearth device key. It is protected only by this file's permissions (0600),\n\
# not by a passphrase: anyone who can read it can read your hearth data.\n";

/// How the key file is protected.
#[derive(Debug)]
pub enum Protection {
    /// age-encrypted with this passphrase (scrypt).
    Passphrase(SecretString),
    /// Written in the clear, readable only by its owner (0600).
    None,
}

/// Whether the key file at `path` needs a passphrase to open.
///
/// # Errors
/// [`CryptoError::Io`] if the file cannot be read.
pub fn is_passphrase_protected(path: &Path) -> Result<bool, CryptoError> {
    let mut head = [0u8; 19];
    let mut file = fs::File::open(path).map_err(|e| io_err(path, e))?;
    let n = read_up_to(&mut file, &mut head).map_err(|e| io_err(path, e))?;
    Ok(head[..n] == *AGE_MAGIC)
}

/// Writes a new key file at `path`.
///
/// # Errors
/// [`CryptoError::KeyFileExists`] if a file is already there (it is left untouched);
/// [`CryptoError::Io`] if writing fails (nothing is left at `path`).
pub fn create(
    path: &Path,
    secrets: &ProfileSecrets,
    protection: &Protection,
) -> Result<(), CryptoError> {
    if path.exists() {
        return Err(CryptoError::KeyFileExists {
            path: path.to_owned(),
        });
    }
    let inner = encode(secrets);
    let bytes = match protection {
        Protection::None => Zeroizing::new([PLAIN_NOTICE.as_bytes(), inner.as_bytes()].concat()),
        Protection::Passphrase(passphrase) => {
            let mut recipient = age::scrypt::Recipient::new(passphrase.clone());
            recipient.set_work_factor(SCRYPT_LOG_N);
            let encryptor =
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                    .map_err(|e| corrupt(path, format!("cannot encrypt: {e}")))?;
            let mut out = Vec::new();
            let mut writer = encryptor
                .wrap_output(&mut out)
                .map_err(|e| io_err(path, e))?;
            writer
                .write_all(inner.as_bytes())
                .and_then(|()| writer.finish().map(|_| ()))
                .map_err(|e| io_err(path, e))?;
            Zeroizing::new(out)
        }
    };
    write_new_file(path, &bytes)
}

/// The key a passphrase key file's contents are encrypted under (age's 16-byte file key),
/// as scrypt unwraps it from the passphrase. Whoever holds it and the key file can open the
/// profile, so it lives only in memory: zeroed when dropped, never printed.
pub struct FileKey(Zeroizing<[u8; 16]>);

impl FileKey {
    /// The key from its bytes (as kept by `hearth unlock`).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        FileKey(Zeroizing::new(bytes))
    }

    /// The key's bytes, to hand to the keyring that keeps them.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(..)")
    }
}

/// Reads and unlocks the key file at `path`.
///
/// # Errors
/// [`CryptoError::PassphraseRequired`] if the file is protected and `passphrase` is `None`;
/// [`CryptoError::WrongPassphrase`] if the passphrase does not unlock it;
/// [`CryptoError::ExcessiveWork`] if it asks for too much scrypt work;
/// [`CryptoError::CorruptKeyFile`] if it is damaged; [`CryptoError::Io`] if it cannot be read.
pub fn read(path: &Path, passphrase: Option<&SecretString>) -> Result<ProfileSecrets, CryptoError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| io_err(path, e))?);
    if !bytes.starts_with(AGE_MAGIC) {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| corrupt(path, "it is neither an age file nor hearth's text format"))?;
        return decode(path, text);
    }
    let passphrase = passphrase.ok_or_else(|| CryptoError::PassphraseRequired {
        path: path.to_owned(),
    })?;
    decrypt(path, &bytes, &scrypt_identity(passphrase))
}

/// Unlocks the passphrase key file at `path` like [`read`], and also returns the file key
/// scrypt unwrapped, for [`read_with_file_key`] to open the file again without scrypt.
///
/// # Errors
/// As [`read`]; [`CryptoError::PassphraseRequired`] too if the file has no passphrase (it
/// has no file key to keep).
pub fn read_keeping_file_key(
    path: &Path,
    passphrase: &SecretString,
) -> Result<(ProfileSecrets, FileKey), CryptoError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| io_err(path, e))?);
    if !bytes.starts_with(AGE_MAGIC) {
        return Err(corrupt(
            path,
            "it has no passphrase, so there is no file key to keep",
        ));
    }
    let keeping = Keeping {
        inner: scrypt_identity(passphrase),
        kept: RefCell::new(None),
    };
    let secrets = decrypt(path, &bytes, &keeping)?;
    let key = keeping
        .kept
        .into_inner()
        .ok_or_else(|| corrupt(path, "age opened it without unwrapping a file key"))?;
    Ok((secrets, key))
}

/// Opens the passphrase key file at `path` with a file key [`read_keeping_file_key`] kept.
/// `None` if the key does not open this file: it was kept from another file, or the file
/// was written again since (the header's MAC tells).
///
/// # Errors
/// [`CryptoError::CorruptKeyFile`] if the key opens the header but the contents are damaged;
/// [`CryptoError::Io`] if the file cannot be read.
pub fn read_with_file_key(
    path: &Path,
    key: &FileKey,
) -> Result<Option<ProfileSecrets>, CryptoError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| io_err(path, e))?);
    if !bytes.starts_with(AGE_MAGIC) {
        return Ok(None);
    }
    let opened = age::Decryptor::new_buffered(&bytes[..])
        .and_then(|d| d.decrypt(std::iter::once(&Held(key) as &dyn age::Identity)));
    match opened {
        Ok(reader) => read_contents(path, reader).map(Some),
        // A file key from another file fails the header's MAC.
        Err(age::DecryptError::InvalidMac | age::DecryptError::NoMatchingKeys) => Ok(None),
        Err(e) => Err(age_err(path, e)),
    }
}

fn scrypt_identity(passphrase: &SecretString) -> age::scrypt::Identity {
    let mut identity = age::scrypt::Identity::new(passphrase.clone());
    identity.set_max_work_factor(SCRYPT_MAX_LOG_N);
    identity
}

fn decrypt(
    path: &Path,
    bytes: &[u8],
    identity: &dyn age::Identity,
) -> Result<ProfileSecrets, CryptoError> {
    let reader = age::Decryptor::new_buffered(bytes)
        .and_then(|d| d.decrypt(std::iter::once(identity)))
        .map_err(|e| age_err(path, e))?;
    read_contents(path, reader)
}

fn read_contents(path: &Path, mut reader: impl Read) -> Result<ProfileSecrets, CryptoError> {
    let mut inner = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut inner)
        .map_err(|_| corrupt(path, "its encrypted contents are damaged"))?;
    let text = std::str::from_utf8(&inner).map_err(|_| corrupt(path, "not UTF-8 inside"))?;
    decode(path, text)
}

/// The scrypt identity, noting the file key it unwraps. The note is kept only by a caller
/// whose decryption then succeeds, that is once age has checked the key against the MAC.
struct Keeping {
    inner: age::scrypt::Identity,
    kept: RefCell<Option<FileKey>>,
}

impl Keeping {
    fn keep(
        &self,
        unwrapped: Option<Result<age_core::format::FileKey, age::DecryptError>>,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        if let Some(Ok(key)) = &unwrapped {
            *self.kept.borrow_mut() = Some(FileKey::from_bytes(*key.expose_secret()));
        }
        unwrapped
    }
}

impl age::Identity for Keeping {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.keep(self.inner.unwrap_stanza(stanza))
    }

    // The scrypt identity's own check that its stanza is the header's only one is kept.
    fn unwrap_stanzas(
        &self,
        stanzas: &[age_core::format::Stanza],
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.keep(self.inner.unwrap_stanzas(stanzas))
    }
}

/// A kept file key, offered for the file's scrypt stanza in place of the passphrase.
struct Held<'a>(&'a FileKey);

impl age::Identity for Held<'_> {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        (stanza.tag == "scrypt")
            .then(|| Ok(age_core::format::FileKey::new(Box::new(*self.0.as_bytes()))))
    }
}

fn encode(secrets: &ProfileSecrets) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{MAGIC}\nsigning {}\nage {}\nstorage {}\n",
        hex::encode(*secrets.device.signing_seed()),
        secrets.device.age_secret().as_str(),
        hex::encode(secrets.storage.as_bytes()),
    ))
}

fn decode(path: &Path, text: &str) -> Result<ProfileSecrets, CryptoError> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    if lines.next() != Some(MAGIC) {
        return Err(corrupt(path, format!("it does not start with {MAGIC:?}")));
    }
    let (mut signing, mut age, mut storage) = (None, None, None);
    for line in lines {
        let (name, value) = line
            .split_once(' ')
            .ok_or_else(|| corrupt(path, "a line has no value"))?;
        match name {
            "signing" => signing = Some(hex32(path, value)?),
            "age" => age = Some(value),
            "storage" => storage = Some(hex32(path, value)?),
            // Later versions may add keys; ignoring them keeps older builds working.
            _ => {}
        }
    }
    let missing = |what: &str| corrupt(path, format!("the {what} key is missing"));
    let signing = signing.ok_or_else(|| missing("signing"))?;
    let age = age.ok_or_else(|| missing("age"))?;
    let storage = storage.ok_or_else(|| missing("storage"))?;
    Ok(ProfileSecrets {
        device: DeviceKeys::from_parts(&signing, age).map_err(|e| corrupt(path, e))?,
        storage: StorageKey::from_bytes(*storage),
    })
}

fn hex32(path: &Path, value: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(value, &mut *out)
        .map_err(|_| corrupt(path, "a key is not 64 hex digits"))?;
    Ok(out)
}

fn age_err(path: &Path, err: age::DecryptError) -> CryptoError {
    match err {
        age::DecryptError::DecryptionFailed
        | age::DecryptError::KeyDecryptionFailed
        | age::DecryptError::NoMatchingKeys => CryptoError::WrongPassphrase {
            path: path.to_owned(),
        },
        age::DecryptError::ExcessiveWork { required, target } => CryptoError::ExcessiveWork {
            path: path.to_owned(),
            required,
            limit: target,
        },
        age::DecryptError::Io(e) => io_err(path, e),
        other => corrupt(path, other.to_string()),
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> CryptoError {
    CryptoError::CorruptKeyFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> CryptoError {
    CryptoError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_up_to(file: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Writes `bytes` to a new file at `path`, owner-only, atomically: a crash leaves either no
/// file or the whole file, and an existing file is never replaced.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), CryptoError> {
    let tmp = temp_name(path);
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        // hard_link fails if `path` exists, unlike rename: never clobber a key.
        fs::hard_link(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    result.map_err(|e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::AlreadyExists && path.exists() {
            CryptoError::KeyFileExists {
                path: path.to_owned(),
            }
        } else {
            io_err(path, e)
        }
    })
}

fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn passphrase_file_unlocks_with_the_right_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let secrets = ProfileSecrets::generate().unwrap();
        create(
            &path,
            &secrets,
            &Protection::Passphrase(pass("s3cret words")),
        )
        .unwrap();
        assert!(is_passphrase_protected(&path).unwrap());

        let back = read(&path, Some(&pass("s3cret words"))).unwrap();
        assert_eq!(back.device.device_id(), secrets.device.device_id());
        assert_eq!(back.storage.as_bytes(), secrets.storage.as_bytes());

        assert!(matches!(
            read(&path, Some(&pass("wrong"))),
            Err(CryptoError::WrongPassphrase { .. })
        ));
        assert!(matches!(
            read(&path, None),
            Err(CryptoError::PassphraseRequired { .. })
        ));
    }

    #[test]
    fn a_kept_file_key_opens_its_own_file_without_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let secrets = ProfileSecrets::generate().unwrap();
        create(&path, &secrets, &Protection::Passphrase(pass("pw"))).unwrap();
        let (opened, key) = read_keeping_file_key(&path, &pass("pw")).unwrap();
        assert_eq!(opened.device.device_id(), secrets.device.device_id());
        let again = read_with_file_key(&path, &key).unwrap().unwrap();
        assert_eq!(again.device.device_id(), secrets.device.device_id());
        assert_eq!(again.storage.as_bytes(), secrets.storage.as_bytes());
        assert_eq!(format!("{key:?}"), "FileKey(..)");
    }

    #[test]
    fn a_kept_file_key_does_not_open_another_file_and_a_wrong_passphrase_keeps_none() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one.key"), dir.path().join("two.key"));
        for path in [&one, &two] {
            let secrets = ProfileSecrets::generate().unwrap();
            create(path, &secrets, &Protection::Passphrase(pass("same pw"))).unwrap();
        }
        let (_, key) = read_keeping_file_key(&one, &pass("same pw")).unwrap();
        assert!(read_with_file_key(&two, &key).unwrap().is_none());
        let mut flipped = *key.as_bytes();
        flipped[0] ^= 1;
        assert!(
            read_with_file_key(&one, &FileKey::from_bytes(flipped))
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            read_keeping_file_key(&one, &pass("wrong")),
            Err(CryptoError::WrongPassphrase { .. })
        ));

        let plain = dir.path().join("plain.key");
        create(
            &plain,
            &ProfileSecrets::generate().unwrap(),
            &Protection::None,
        )
        .unwrap();
        assert!(read_keeping_file_key(&plain, &pass("pw")).is_err());
        assert!(read_with_file_key(&plain, &key).unwrap().is_none());
    }

    #[test]
    fn passphrase_file_holds_no_secret_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let secrets = ProfileSecrets::generate().unwrap();
        create(&path, &secrets, &Protection::Passphrase(pass("pw"))).unwrap();
        let bytes = fs::read(&path).unwrap();
        let storage_hex = hex::encode(secrets.storage.as_bytes());
        assert!(!String::from_utf8_lossy(&bytes).contains(&storage_hex));
        assert!(!String::from_utf8_lossy(&bytes).contains("AGE-SECRET-KEY"));
    }

    #[test]
    fn unprotected_file_is_owner_only_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let secrets = ProfileSecrets::generate().unwrap();
        create(&path, &secrets, &Protection::None).unwrap();
        assert!(!is_passphrase_protected(&path).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = read(&path, None).unwrap();
        assert_eq!(back.device.device_id(), secrets.device.device_id());
        // A passphrase given for an unprotected file is simply not needed.
        assert!(read(&path, Some(&pass("x"))).is_ok());
    }

    #[test]
    fn existing_key_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        create(
            &path,
            &ProfileSecrets::generate().unwrap(),
            &Protection::None,
        )
        .unwrap();
        let before = fs::read(&path).unwrap();
        let err = create(
            &path,
            &ProfileSecrets::generate().unwrap(),
            &Protection::None,
        );
        assert!(matches!(err, Err(CryptoError::KeyFileExists { .. })));
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn damaged_files_give_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let secrets = ProfileSecrets::generate().unwrap();
        create(&path, &secrets, &Protection::Passphrase(pass("pw"))).unwrap();
        let good = fs::read(&path).unwrap();

        // Damage in the encrypted payload.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        fs::write(&path, &bad).unwrap();
        assert!(read(&path, Some(&pass("pw"))).is_err());

        // Truncation.
        fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(read(&path, Some(&pass("pw"))).is_err());

        // Garbage and an empty file.
        fs::write(&path, b"\xff\xfe garbage").unwrap();
        assert!(matches!(
            read(&path, None),
            Err(CryptoError::CorruptKeyFile { .. })
        ));
        fs::write(&path, b"").unwrap();
        assert!(matches!(
            read(&path, None),
            Err(CryptoError::CorruptKeyFile { .. })
        ));

        // A missing file.
        assert!(matches!(
            read(&dir.path().join("nope"), None),
            Err(CryptoError::Io { .. })
        ));
    }

    #[test]
    fn excessive_work_factor_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        // Rewrite the scrypt stanza's work factor (the "16" after the salt) to 40.
        create(
            &path,
            &ProfileSecrets::generate().unwrap(),
            &Protection::Passphrase(pass("pw")),
        )
        .unwrap();
        let text = fs::read(&path).unwrap();
        let needle = b" 16\n";
        let at = text
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        let mut bad = text.clone();
        bad.splice(at..at + needle.len(), b" 40\n".iter().copied());
        fs::write(&path, &bad).unwrap();
        assert!(matches!(
            read(&path, Some(&pass("pw"))),
            Err(CryptoError::ExcessiveWork { required: 40, .. })
        ));
    }
}
