//! TOTP secrets sealed at rest. Anyone who can read the database or a backup of it could
//! otherwise compute every user's one-time codes; sealed, they also need the key file, which
//! lives apart from the database and its backups (docs/operations.md, Keys and secrets).
//!
//! A sealed secret is `v1:` and base64 of a random 96-bit nonce followed by the AES-256-GCM
//! ciphertext and tag. The user's login is the associated data, so a sealed secret copied onto
//! another user's row does not open.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The mark of a sealed secret; anything else in the column is a secret stored before sealing
/// (sealed when the server next starts, see `app::build_state`).
pub const SEALED_PREFIX: &str = "v1:";

pub struct TotpKey {
    key: LessSafeKey,
    /// Derived from the same key file: names unknown logins in the database (`login_tag`).
    login_tags: ring::hmac::Key,
}

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpKey(…)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("the TOTP secret is not sealed")]
    NotSealed,
    #[error(
        "the TOTP secret does not open with this key (another key, another user's row, or changed)"
    )]
    Refused,
}

impl TotpKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> TotpKey {
        let derived = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes),
            b"tsunagu: tags of unknown logins",
        );
        TotpKey {
            key: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key"),
            ),
            login_tags: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    /// Reads a key file: 64 hexadecimal digits (surrounding white space ignored).
    pub fn read(path: &Path) -> anyhow::Result<TotpKey> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the TOTP key file {}: {e}", path.display())
        })?;
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the TOTP key file {} must hold 64 hexadecimal digits",
                    path.display()
                )
            })?;
        Ok(TotpKey::from_bytes(&bytes))
    }

    /// Writes a new random key to `path`, readable by its owner only; refuses to overwrite.
    pub fn create(path: &Path) -> anyhow::Result<TotpKey> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("no randomness for a new TOTP key"))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path).map_err(|e| {
            anyhow::anyhow!("cannot create the TOTP key file {}: {e}", path.display())
        })?;
        writeln!(f, "{}", hex::encode(bytes))?;
        f.sync_all()?;
        Ok(TotpKey::from_bytes(&bytes))
    }

    /// What the database keeps of a login that is no account, to count its failures: an HMAC
    /// of it, so that what someone typed (a password in the login field, a name) is not kept
    /// readable, and one who reads the database cannot test guesses without the key file.
    pub fn login_tag(&self, login: &str) -> String {
        hex::encode(ring::hmac::sign(&self.login_tags, login.as_bytes()).as_ref())
    }

    /// Seals a base32 secret for `login`.
    pub fn seal(&self, login: &str, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random source works");
        let mut data = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(login.as_bytes()),
                &mut data,
            )
            .expect("AES-GCM sealing of a short secret cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        )
    }

    /// Opens what `seal` made for the same login.
    pub fn open(&self, login: &str, stored: &str) -> Result<String, OpenError> {
        let b64 = stored
            .strip_prefix(SEALED_PREFIX)
            .ok_or(OpenError::NotSealed)?;
        let mut raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| OpenError::Refused)?;
        if raw.len() < NONCE_LEN {
            return Err(OpenError::Refused);
        }
        let mut data = raw.split_off(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = raw.try_into().map_err(|_| OpenError::Refused)?;
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(login.as_bytes()),
                &mut data,
            )
            .map_err(|_| OpenError::Refused)?;
        String::from_utf8(plain.to_vec()).map_err(|_| OpenError::Refused)
    }
}

/// Where the key file is when the configuration names none: beside a SQLite database file
/// (`tsunagu.sqlite.totp-key`), else `tsunagu-totp.key` in the working directory.
pub fn default_path(database_url: &str) -> PathBuf {
    crate::config::beside_database(database_url, ".totp-key", "tsunagu-totp.key")
}

/// Where `tsunagu-server rotate-totp-key` writes the new key before it replaces `path`.
pub fn pending_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.new", path.display()))
}

/// Where the rotation keeps the key it replaced (backups from before it need that key).
pub fn retired_path(path: &Path, unix_secs: i64) -> PathBuf {
    PathBuf::from(format!("{}.retired-{unix_secs}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> TotpKey {
        TotpKey::from_bytes(&[n; 32])
    }

    #[test]
    fn login_tags_are_stable_per_key_and_hide_the_login() {
        let (a, b) = (key(1), key(2));
        assert_eq!(a.login_tag("no-such-login"), a.login_tag("no-such-login"));
        assert_ne!(a.login_tag("no-such-login"), a.login_tag("no-such-login2"));
        assert_ne!(a.login_tag("no-such-login"), b.login_tag("no-such-login"));
        assert_eq!(a.login_tag("x").len(), 64);
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_login() {
        let k = key(1);
        let sealed = k.seal("tanaka", "JBSWY3DPEHPK3PXP");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(k.open("tanaka", &sealed).as_deref(), Ok("JBSWY3DPEHPK3PXP"));
        assert_ne!(
            sealed,
            k.seal("tanaka", "JBSWY3DPEHPK3PXP"),
            "a fresh nonce each time"
        );
        assert_eq!(key(2).open("tanaka", &sealed), Err(OpenError::Refused));
        assert_eq!(k.open("suzuki", &sealed), Err(OpenError::Refused));
        assert_eq!(
            k.open("tanaka", "JBSWY3DPEHPK3PXP"),
            Err(OpenError::NotSealed)
        );
        // Any changed character of the sealed form is refused.
        for i in SEALED_PREFIX.len()..sealed.len() {
            let mut changed = sealed.clone().into_bytes();
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).unwrap();
            assert!(k.open("tanaka", &changed).is_err(), "position {i}");
        }
    }

    #[test]
    fn key_files_are_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let made = TotpKey::create(&path).unwrap();
        let sealed = made.seal("a", "SECRET");
        assert_eq!(
            TotpKey::read(&path).unwrap().open("a", &sealed).as_deref(),
            Ok("SECRET")
        );
        assert!(TotpKey::create(&path).is_err(), "never overwrites a key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner only");
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(TotpKey::read(&path)
            .unwrap_err()
            .to_string()
            .contains("64 hexadecimal"));
    }

    #[test]
    fn the_default_key_file_sits_beside_a_sqlite_database() {
        assert_eq!(
            default_path("sqlite:///var/lib/t.sqlite"),
            PathBuf::from("/var/lib/t.sqlite.totp-key")
        );
        assert_eq!(
            default_path("sqlite://t.sqlite?mode=rwc"),
            PathBuf::from("t.sqlite.totp-key")
        );
        assert_eq!(
            default_path("sqlite:data/t.sqlite"),
            PathBuf::from("data/t.sqlite.totp-key")
        );
        assert_eq!(
            default_path("postgres://db/t"),
            PathBuf::from("tsunagu-totp.key")
        );
        assert_eq!(
            default_path("sqlite::memory:"),
            PathBuf::from("tsunagu-totp.key")
        );
    }
}
