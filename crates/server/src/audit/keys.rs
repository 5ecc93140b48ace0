//! The audit log's two keys, each in a file apart from the database (docs/operations.md, Keys):
//!
//! - `MacKey` (HMAC-SHA-256): every entry carries a MAC of its hash, so someone who can write
//!   rows but lacks this key cannot add, recompute or renumber entries unnoticed.
//! - `SigningKey` (Ed25519): signs checkpoints of the chain heads. Its public half, and those of
//!   the keys it replaced, are kept in a public-key file the verifier trusts; the database is
//!   never asked which keys to trust.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

/// Domain separation: a MAC made for an entry is never valid for anything else.
const MAC_CONTEXT: &[u8] = b"tsunagu audit entry v1\n";

pub struct MacKey {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(…)")
    }
}

impl MacKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> MacKey {
        MacKey {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes),
        }
    }

    /// The MAC of an entry's hash (which covers every other field), as 64 hex digits.
    pub fn mac(&self, entry_hash: &str) -> String {
        let mut msg = MAC_CONTEXT.to_vec();
        msg.extend_from_slice(entry_hash.as_bytes());
        hex::encode(ring::hmac::sign(&self.key, &msg).as_ref())
    }

    /// Constant-time check of a stored MAC.
    pub fn verify(&self, entry_hash: &str, mac: &str) -> bool {
        let Ok(tag) = hex::decode(mac) else {
            return false;
        };
        let mut msg = MAC_CONTEXT.to_vec();
        msg.extend_from_slice(entry_hash.as_bytes());
        ring::hmac::verify(&self.key, &msg, &tag).is_ok()
    }

    /// Reads a key file: 64 hexadecimal digits.
    pub fn read(path: &Path) -> anyhow::Result<MacKey> {
        let bytes = read_hex_key(path, "audit MAC key")?;
        Ok(MacKey::from_bytes(&bytes))
    }

    /// Writes a new random key to `path` (owner only); never overwrites.
    pub fn create(path: &Path) -> anyhow::Result<MacKey> {
        let bytes = random_bytes()?;
        write_new_file(path, format!("{}\n", hex::encode(bytes)).as_bytes())?;
        Ok(MacKey::from_bytes(&bytes))
    }
}

fn random_bytes() -> anyhow::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness for a new key"))?;
    Ok(bytes)
}

fn read_hex_key(path: &Path, what: &str) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the {what} file {}: {e}", path.display()))?;
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the {what} file {} must hold 64 hexadecimal digits",
                path.display()
            )
        })
}

/// Creates `path` with `contents`, readable by its owner only, synced; refuses to overwrite.
fn write_new_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// The id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public: &[u8]) -> String {
    hex::encode(&Sha256::digest(public)[..8])
}

/// The checkpoint signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

impl SigningKey {
    fn from_pkcs8(der: &[u8], path: &Path) -> anyhow::Result<SigningKey> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| {
            anyhow::anyhow!(
                "the audit signing key file {} does not hold an Ed25519 key",
                path.display()
            )
        })?;
        let id = key_id(pair.public_key().as_ref());
        Ok(SigningKey { pair, id })
    }

    /// Reads a key file: base64 of the PKCS#8 document.
    pub fn read(path: &Path) -> anyhow::Result<SigningKey> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the audit signing key file {}: {e}",
                path.display()
            )
        })?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                anyhow::anyhow!(
                    "the audit signing key file {} must hold base64",
                    path.display()
                )
            })?;
        SigningKey::from_pkcs8(&der, path)
    }

    /// Writes a new key to `path` (owner only; never overwrites).
    pub fn create(path: &Path) -> anyhow::Result<SigningKey> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("no randomness for a new signing key"))?;
        let text = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
        write_new_file(path, format!("{text}\n").as_bytes())?;
        SigningKey::from_pkcs8(doc.as_ref(), path)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// Base64 of the signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pair.sign(msg).as_ref())
    }
}

/// A public key the verifier trusts, and since when it no longer signs (a rotation retired it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub id: String,
    pub public: Vec<u8>,
    /// Microseconds since the epoch; a checkpoint this key signed later than this is refused.
    pub retired_at: Option<i64>,
}

/// The public-key file: one line per key, `<id> <base64 public key> [retired <µs>]`. Kept apart
/// from the database, and copied to wherever checkpoints are verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicKeys {
    pub keys: Vec<TrustedKey>,
}

impl PublicKeys {
    /// Reads the file; a missing file is an empty set.
    pub fn read(path: &Path) -> anyhow::Result<PublicKeys> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PublicKeys::default()),
            Err(e) => anyhow::bail!("cannot read the public key file {}: {e}", path.display()),
        };
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || anyhow::anyhow!("{}:{}: not a public key line", path.display(), n + 1);
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (id, public, retired_at) = match parts.as_slice() {
                [id, b64] => (id, b64, None),
                [id, b64, "retired", at] => (id, b64, Some(at.parse::<i64>().map_err(|_| bad())?)),
                _ => return Err(bad()),
            };
            let public = base64::engine::general_purpose::STANDARD
                .decode(public)
                .map_err(|_| bad())?;
            anyhow::ensure!(
                key_id(&public) == *id,
                "{}:{}: the key id does not match the key",
                path.display(),
                n + 1
            );
            keys.push(TrustedKey {
                id: id.to_string(),
                public,
                retired_at,
            });
        }
        Ok(PublicKeys { keys })
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = String::from(
            "# tsunagu audit checkpoint public keys: <id> <base64 Ed25519 public key> [retired <µs since epoch>]\n",
        );
        for k in &self.keys {
            text.push_str(&format!(
                "{} {}",
                k.id,
                base64::engine::general_purpose::STANDARD.encode(&k.public)
            ));
            if let Some(at) = k.retired_at {
                text.push_str(&format!(" retired {at}"));
            }
            text.push('\n');
        }
        let tmp = PathBuf::from(format!("{}.tmp", path.display()));
        std::fs::write(&tmp, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
            .map_err(|e| anyhow::anyhow!("cannot replace {}: {e}", path.display()))?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Adds the key if it is not there yet.
    pub fn trust(&mut self, key: &SigningKey) {
        if self.get(key.id()).is_none() {
            self.keys.push(TrustedKey {
                id: key.id().to_string(),
                public: key.public_key(),
                retired_at: None,
            });
        }
    }

    /// Checks a base64 signature by key `id` at time `at`.
    pub fn verify(&self, id: &str, at: i64, msg: &[u8], signature: &str) -> Result<(), String> {
        let key = self
            .get(id)
            .ok_or_else(|| format!("signed by key {id}, which is not in the public key file"))?;
        if key.retired_at.is_some_and(|r| at > r) {
            return Err(format!(
                "signed by key {id} after that key was retired by a rotation"
            ));
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .map_err(|_| "the signature is not base64".to_string())?;
        UnparsedPublicKey::new(&ED25519, &key.public)
            .verify(msg, &sig)
            .map_err(|_| format!("the signature does not verify with key {id}"))
    }
}

/// Where the public keys of a signing key file are: `<signing key file>.pub`.
pub fn public_keys_path(signing_key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", signing_key.display()))
}

/// The signing key at `path`, created if missing, and its public half added to the public-key
/// file. A lost signing key is not dangerous (checkpoints already signed stay verifiable with
/// the public file); a new one is made and trusted beside the old.
pub fn signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let key = if path.exists() {
        SigningKey::read(path)?
    } else {
        let key = SigningKey::create(path)?;
        tracing::warn!(path = %path.display(), key = key.id(), "created a new audit signing key: back it up apart from the database");
        key
    };
    let pub_path = public_keys_path(path);
    let mut trusted = PublicKeys::read(&pub_path)?;
    if trusted.get(key.id()).is_none() {
        trusted.trust(&key);
        trusted.write(&pub_path)?;
    }
    Ok(key)
}

/// What `rotate_signing_key` did.
#[derive(Debug)]
pub struct SigningRotation {
    pub old_id: Option<String>,
    pub new_id: String,
}

/// Replaces the signing key with a new one. The old key's public half stays trusted for the
/// checkpoints it signed until now (`retired <now>`); the old private key is gone.
pub fn rotate_signing_key(path: &Path, now: i64) -> anyhow::Result<SigningRotation> {
    let pub_path = public_keys_path(path);
    let mut trusted = PublicKeys::read(&pub_path)?;
    let old = if path.exists() {
        Some(SigningKey::read(path)?)
    } else {
        None
    };
    let pending = PathBuf::from(format!("{}.new", path.display()));
    let _ = std::fs::remove_file(&pending);
    let new = SigningKey::create(&pending)?;
    if let Some(old) = &old {
        trusted.trust(old);
        for k in trusted.keys.iter_mut().filter(|k| k.id == old.id()) {
            k.retired_at.get_or_insert(now);
        }
    }
    trusted.trust(&new);
    // The public file first: a key whose checkpoints cannot be verified is never in use.
    trusted.write(&pub_path)?;
    std::fs::rename(&pending, path)
        .map_err(|e| anyhow::anyhow!("cannot replace {}: {e}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(SigningRotation {
        old_id: old.map(|k| k.id().to_string()),
        new_id: new.id().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_verifies_only_for_its_hash_and_key() {
        let k = MacKey::from_bytes(&[7; 32]);
        let m = k.mac("abc");
        assert!(k.verify("abc", &m));
        assert!(!k.verify("abd", &m));
        assert!(!MacKey::from_bytes(&[8; 32]).verify("abc", &m));
        assert!(!k.verify("abc", "zz"));
        assert!(!k.verify("abc", ""));
    }

    #[test]
    fn signatures_verify_with_the_public_file_and_retired_keys_stop_at_retirement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sign.key");
        let first = signing_key(&path).unwrap();
        let sig = first.sign(b"heads");
        let trusted = PublicKeys::read(&public_keys_path(&path)).unwrap();
        assert_eq!(trusted.verify(first.id(), 10, b"heads", &sig), Ok(()));
        assert!(trusted.verify(first.id(), 10, b"other", &sig).is_err());

        let r = rotate_signing_key(&path, 100).unwrap();
        assert_eq!(r.old_id.as_deref(), Some(first.id()));
        let second = SigningKey::read(&path).unwrap();
        assert_eq!(second.id(), r.new_id);
        let trusted = PublicKeys::read(&public_keys_path(&path)).unwrap();
        assert_eq!(trusted.keys.len(), 2);
        // Checkpoints the old key signed before the rotation still verify; later ones do not.
        assert_eq!(trusted.verify(first.id(), 99, b"heads", &sig), Ok(()));
        assert!(trusted
            .verify(first.id(), 101, b"heads", &sig)
            .unwrap_err()
            .contains("retired"));
        let sig2 = second.sign(b"heads");
        assert_eq!(trusted.verify(second.id(), 1000, b"heads", &sig2), Ok(()));
        assert!(!dir.path().join("sign.key.new").exists());
    }

    #[test]
    fn a_public_key_line_whose_id_does_not_match_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pub");
        let key = SigningKey::create(&dir.path().join("k")).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.public_key());
        std::fs::write(&path, format!("0000000000000000 {b64}\n")).unwrap();
        assert!(PublicKeys::read(&path)
            .unwrap_err()
            .to_string()
            .contains("does not match"));
    }
}
