//! Signed checkpoints of the chain heads, after Certificate Transparency's signed tree heads.
//!
//! Every few seconds (and when the server stops) the server signs the heads of the chains that
//! moved since its last checkpoint, stores the checkpoint in the database and appends it to a
//! file outside the database. A copy of that file kept elsewhere (a witness) then pins the log:
//! even someone holding the database and every key cannot rewrite an entry that a checkpoint
//! in the copy already covers. `verify-audit` requires each chain to pass through every
//! checkpoint exactly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::keys::{PublicKeys, SigningKey};
use crate::storage::Storage;

/// Domain separation for checkpoint signatures.
const SIGN_CONTEXT: &[u8] = b"tsunagu audit checkpoint v1\n";

/// What a checkpoint says: at `at`, chain `.0` had entry `.1` as its newest, with hash `.2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    v: u32,
    at: i64,
    key: String,
    heads: Vec<(i64, i64, String)>,
}

/// A signed checkpoint. `body` is kept exactly as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub at: i64,
    pub key_id: String,
    pub heads: Vec<(i64, i64, String)>,
    pub body: String,
    pub signature: String,
}

/// One line of a checkpoint file.
#[derive(Serialize, Deserialize)]
struct Line {
    body: String,
    signature: String,
}

fn signed_message(body: &str) -> Vec<u8> {
    let mut msg = SIGN_CONTEXT.to_vec();
    msg.extend_from_slice(body.as_bytes());
    msg
}

impl Checkpoint {
    pub fn sign(key: &SigningKey, at: i64, heads: Vec<(i64, i64, String)>) -> Checkpoint {
        let body = serde_json::to_string(&Body {
            v: 1,
            at,
            key: key.id().to_string(),
            heads: heads.clone(),
        })
        .expect("plain data serialises");
        let signature = key.sign(&signed_message(&body));
        Checkpoint {
            at,
            key_id: key.id().to_string(),
            heads,
            body,
            signature,
        }
    }

    /// Parses a stored body and signature without checking the signature.
    pub fn from_parts(body: &str, signature: &str) -> Result<Checkpoint, String> {
        let b: Body = serde_json::from_str(body).map_err(|e| format!("not a checkpoint: {e}"))?;
        if b.v != 1 {
            return Err(format!("unknown checkpoint version {}", b.v));
        }
        Ok(Checkpoint {
            at: b.at,
            key_id: b.key,
            heads: b.heads,
            body: body.to_string(),
            signature: signature.to_string(),
        })
    }

    pub fn verify(&self, keys: &PublicKeys) -> Result<(), String> {
        keys.verify(
            &self.key_id,
            self.at,
            &signed_message(&self.body),
            &self.signature,
        )
    }

    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(&Line {
            body: self.body.clone(),
            signature: self.signature.clone(),
        })
        .expect("plain data serialises");
        s.push('\n');
        s
    }
}

/// A checkpoint file read back: the checkpoints whose signatures verify, and every problem
/// (with its line number). An unfinished last line (a crash while appending) is a note, not a
/// problem: it was never complete, so nothing relied on it.
#[derive(Debug, Default)]
pub struct CheckpointFile {
    pub checkpoints: Vec<Checkpoint>,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

pub fn read_file(path: &Path, keys: &PublicKeys) -> anyhow::Result<CheckpointFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the checkpoint file {}: {e}", path.display()))?;
    let mut out = CheckpointFile::default();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let where_ = format!("{}:{}", path.display(), i + 1);
        let parsed = serde_json::from_str::<Line>(line)
            .map_err(|e| format!("not a checkpoint line: {e}"))
            .and_then(|l| Checkpoint::from_parts(&l.body, &l.signature));
        match parsed {
            Ok(cp) => match cp.verify(keys) {
                Ok(()) => out.checkpoints.push(cp),
                Err(e) => out.problems.push(format!("{where_}: {e}")),
            },
            Err(_) if i + 1 == lines.len() && !complete => out.notes.push(format!(
                "{where_}: the last line is unfinished (written when the server stopped abruptly); ignored"
            )),
            Err(e) => out.problems.push(format!("{where_}: {e}")),
        }
    }
    Ok(out)
}

/// Appends one checkpoint to the file and waits until it is on disk.
pub fn append_line(path: &Path, cp: &Checkpoint) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o640);
    let mut f = opts.open(path)?;
    f.write_all(cp.to_line().as_bytes())?;
    f.sync_data()
}

/// Copies to `to` every checkpoint of `from` that `to` does not have yet, in order, after
/// checking each signature. Returns how many were added. The witness's copy only grows.
pub fn copy_new(from: &Path, to: &Path, keys: &PublicKeys) -> anyhow::Result<usize> {
    let source = read_file(from, keys)?;
    anyhow::ensure!(
        source.problems.is_empty(),
        "the checkpoint file {} has problems, nothing copied: {}",
        from.display(),
        source.problems.join("; ")
    );
    let have: std::collections::HashSet<String> = if to.exists() {
        let dest = read_file(to, keys)?;
        anyhow::ensure!(
            dest.problems.is_empty(),
            "the copy {} has problems, nothing copied: {}",
            to.display(),
            dest.problems.join("; ")
        );
        dest.checkpoints.into_iter().map(|c| c.signature).collect()
    } else {
        Default::default()
    };
    let mut added = 0;
    for cp in source
        .checkpoints
        .iter()
        .filter(|c| !have.contains(&c.signature))
    {
        append_line(to, cp)?;
        added += 1;
    }
    Ok(added)
}

/// Signs the heads that moved, at an interval and when the server stops.
pub struct Checkpointer {
    store: Arc<dyn Storage>,
    key: SigningKey,
    file: PathBuf,
    /// The heads of the last checkpoint, so an idle server writes none.
    last: tokio::sync::Mutex<std::collections::BTreeMap<i64, (i64, String)>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Checkpointer({})", self.file.display())
    }
}

impl Checkpointer {
    pub fn new(store: Arc<dyn Storage>, key: SigningKey, file: PathBuf) -> Checkpointer {
        Checkpointer {
            store,
            key,
            file,
            last: Default::default(),
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Signs and writes a checkpoint of the heads that moved since the last one; `None` when
    /// none moved. Stored in the database, then appended to the file.
    pub async fn checkpoint(&self, now: i64) -> anyhow::Result<Option<Checkpoint>> {
        let mut last = self.last.lock().await;
        let heads = self.store.audit_heads().await?;
        let moved: Vec<(i64, i64, String)> = heads
            .into_iter()
            .filter(|(pref, seq, hash)| {
                *seq > 0 && last.get(pref).is_none_or(|(s, h)| s != seq || h != hash)
            })
            .collect();
        if moved.is_empty() {
            return Ok(None);
        }
        let cp = Checkpoint::sign(&self.key, now, moved);
        self.store
            .append_checkpoint(cp.at, &cp.key_id, &cp.body, &cp.signature)
            .await?;
        let (file, line) = (self.file.clone(), cp.clone());
        tokio::task::spawn_blocking(move || append_line(&file, &line))
            .await
            .map_err(|e| anyhow::anyhow!("checkpoint writer: {e}"))?
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot append to the checkpoint file {}: {e}",
                    self.file.display()
                )
            })?;
        for (pref, seq, hash) in &cp.heads {
            last.insert(*pref, (*seq, hash.clone()));
        }
        Ok(Some(cp))
    }

    /// Checkpoints every `interval` until `stop` resolves, then once more.
    pub async fn run(
        self: Arc<Self>,
        interval: std::time::Duration,
        clock: crate::clock::Clock,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.checkpoint(clock.now()).await {
                        tracing::error!(error = %e, "audit checkpoint failed");
                    }
                }
                _ = &mut stop => break,
            }
        }
        if let Err(e) = self.checkpoint(clock.now()).await {
            tracing::error!(error = %e, "audit checkpoint at shutdown failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::keys::{public_keys_path, signing_key};

    #[test]
    fn a_checkpoint_file_reads_back_and_a_changed_line_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let key = signing_key(&dir.path().join("s.key")).unwrap();
        let keys = PublicKeys::read(&public_keys_path(&dir.path().join("s.key"))).unwrap();
        let file = dir.path().join("cp");
        let a = Checkpoint::sign(&key, 1, vec![(13, 5, "aa".into())]);
        let b = Checkpoint::sign(&key, 2, vec![(13, 9, "bb".into()), (0, 2, "cc".into())]);
        append_line(&file, &a).unwrap();
        append_line(&file, &b).unwrap();
        let read = read_file(&file, &keys).unwrap();
        assert_eq!(read.checkpoints, vec![a.clone(), b.clone()]);
        assert!(read.problems.is_empty());

        // A forged line (changed seq, old signature) is refused with its line number.
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replacen("[13,9,", "[13,8,", 1)).unwrap();
        let read = read_file(&file, &keys).unwrap();
        assert_eq!(read.checkpoints, vec![a.clone()]);
        assert_eq!(read.problems.len(), 1);
        assert!(read.problems[0].contains(":2:"), "{:?}", read.problems);

        // An unfinished last line is a note only.
        std::fs::write(&file, format!("{}{{\"body\":\"x", a.to_line())).unwrap();
        let read = read_file(&file, &keys).unwrap();
        assert_eq!(read.checkpoints, vec![a]);
        assert!(read.problems.is_empty());
        assert_eq!(read.notes.len(), 1);
    }

    #[test]
    fn copying_adds_only_what_the_witness_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let key = signing_key(&dir.path().join("s.key")).unwrap();
        let keys = PublicKeys::read(&public_keys_path(&dir.path().join("s.key"))).unwrap();
        let (src, dst) = (dir.path().join("cp"), dir.path().join("witness"));
        for at in 1..=3 {
            append_line(&src, &Checkpoint::sign(&key, at, vec![(1, at, "h".into())])).unwrap();
        }
        assert_eq!(copy_new(&src, &dst, &keys).unwrap(), 3);
        assert_eq!(copy_new(&src, &dst, &keys).unwrap(), 0);
        append_line(&src, &Checkpoint::sign(&key, 4, vec![(1, 4, "h".into())])).unwrap();
        assert_eq!(copy_new(&src, &dst, &keys).unwrap(), 1);
        assert_eq!(read_file(&dst, &keys).unwrap().checkpoints.len(), 4);
    }
}
