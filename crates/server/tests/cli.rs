//! The `tsunagu-server` command as an operator uses it: seed, verify, tamper, refuse, users,
//! master loading. Runs the real binary on SQLite files.

use std::process::Command;

fn server(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tsunagu-server"))
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .args(args)
        .env("TSUNAGU_LOG", "warn")
        .output()
        .expect("run tsunagu-server")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn seed_verify_tamper_and_refuse_to_seed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ops.sqlite");
    let out = server(&db, &["seed-demo", "--records", "50"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("demo-cgc"));
    // The command closed the store as it ended: SQLite folded the WAL back into the file.
    let wal = dir.path().join("ops.sqlite-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "{} bytes left in the WAL",
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0)
    );

    let out = server(&db, &["verify-audit"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("intact"));

    // Seeding again would add published demo credentials to a database in use: refused.
    let out = server(&db, &["seed-demo", "--records", "5"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("empty database"), "{}", text(&out));

    // Someone with file access edits one entry: the command names it and exits 1.
    let conn = Command::new("sqlite3")
        .arg(&db)
        .arg("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET detail = '{}' WHERE pref_code = 13 AND seq = 5;")
        .status();
    match conn {
        Ok(s) if s.success() => {
            let out = server(&db, &["verify-audit"]);
            assert_eq!(out.status.code(), Some(1), "{}", text(&out));
            assert!(text(&out).contains("chain 13, entry 5"), "{}", text(&out));
        }
        _ => eprintln!("SKIPPED tamper step: the sqlite3 command is not installed"),
    }

    // A database that cannot be opened is not reported as a broken chain.
    let out = Command::new(env!("CARGO_BIN_EXE_tsunagu-server"))
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "verify-audit",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn users_are_created_and_reset_by_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.sqlite");
    let master = dir.path().join("orgs.csv");
    std::fs::write(
        &master,
        "id,kind,name,pref_code,lgcode,phone,cgc_id\n\
         cgc-13-01,cgc,（架空）東京都第1児童相談所,13,,000-1130-0001,\n\
         muni-131016,municipality,千代田区,13,131016,000-2131-0160,cgc-13-01\n",
    )
    .unwrap();
    let out = server(&db, &["load-orgs", master.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let out = server(
        &db,
        &[
            "user",
            "create-admin",
            "--org",
            "cgc-13-01",
            "--login",
            "admin01",
            "--name",
            "管理者",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("otpauth://totp/"), "{t}");
    let out = server(
        &db,
        &[
            "user",
            "create-admin",
            "--org",
            "cgc-13-01",
            "--login",
            "admin01",
            "--name",
            "x",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("already exists"));
    let out = server(
        &db,
        &[
            "user",
            "create-admin",
            "--org",
            "nowhere",
            "--login",
            "a2",
            "--name",
            "x",
        ],
    );
    assert!(text(&out).contains("no organisation"));

    let out = server(&db, &["user", "reset-password", "--login", "admin01"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("new password"));

    // A lost phone: a new secret, stored sealed under the database's key file.
    let secret_in = |t: &str| {
        let start = t.find("secret=").expect("a secret in the enrolment URL") + "secret=".len();
        t[start..].split(['&', '\n']).next().unwrap().to_string()
    };
    let first = secret_in(&t);
    let out = server(&db, &["user", "reset-totp", "--login", "admin01"]);
    assert!(out.status.success(), "{}", text(&out));
    let second = secret_in(&text(&out));
    assert_ne!(first, second);
    let (_, stored) = stored_secrets(&db)
        .into_iter()
        .find(|(login, _)| login == "admin01")
        .unwrap();
    let key =
        tsunagu_server::totp_key::TotpKey::read(&dir.path().join("users.sqlite.totp-key")).unwrap();
    assert_eq!(key.open("admin01", &stored).unwrap(), second);
    assert!(!server(&db, &["user", "reset-totp", "--login", "nobody"])
        .status
        .success());
    let out = server(&db, &["verify-audit"]);
    assert!(text(&out).contains("intact"), "{}", text(&out));
}

#[test]
fn a_bad_master_file_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.sqlite");
    let master = dir.path().join("bad.csv");
    std::fs::write(
        &master,
        "id,kind,name,pref_code,lgcode,phone,cgc_id\n\
         cgc-13-01,centre,A,13,,000-1130-0001,\n\
         muni-131017,municipality,B,13,131017,000-2131-0160,cgc-13-01\n",
    )
    .unwrap();
    let out = server(&db, &["load-orgs", master.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(t.contains("2行目") && t.contains("3行目"), "{t}");
    let out = server(&db, &["verify-audit"]);
    assert!(text(&out).contains("intact"));
}

#[test]
fn demo_code_needs_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.sqlite");
    let out = server(&db, &["demo-code", "demo-cgc"]);
    assert!(out.status.success());
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        "{code}"
    );
    assert!(!db.exists());
}

#[test]
fn demo_code_refuses_a_login_that_is_not_a_demo_account() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.sqlite");
    for login in ["cgc", "admin", "demo-cgc ", "DEMO-CGC"] {
        let out = server(&db, &["demo-code", login]);
        assert_eq!(out.status.code(), Some(1), "{login:?}");
        assert!(out.stdout.is_empty(), "{login:?}: no code is printed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not a demo account") && err.contains("demo-cgc"),
            "{err}"
        );
    }
    assert!(!db.exists());
}

#[test]
fn logs_carry_no_colour_codes_when_not_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite");
    let out = Command::new(env!("CARGO_BIN_EXE_tsunagu-server"))
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .args(["seed-demo", "--records", "1"])
        .env("TSUNAGU_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .expect("run tsunagu-server");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARN") || err.contains("INFO"),
        "no log lines: {err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a piped log: {err:?}"
    );
}

/// Runs `work` on the SQLite file directly, as someone with access to the file would.
fn with_pool<T>(db: &std::path::Path, work: impl AsyncFnOnce(&sqlx::SqlitePool) -> T) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let out = work(&pool).await;
        pool.close().await;
        out
    })
}

/// Every user's (login, stored TOTP secret), by login.
fn stored_secrets(db: &std::path::Path) -> Vec<(String, String)> {
    with_pool(db, async |pool| {
        sqlx::query_as("SELECT login, totp_secret FROM users ORDER BY login")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

fn sql(db: &std::path::Path, statement: &str) {
    with_pool(db, async |pool| {
        sqlx::query(statement).execute(pool).await.unwrap();
    })
}

fn count(db: &std::path::Path, query: &str) -> i64 {
    with_pool(db, async |pool| {
        sqlx::query_scalar(query).fetch_one(pool).await.unwrap()
    })
}

#[test]
fn the_totp_key_rotates_and_the_old_one_is_kept() {
    use tsunagu_server::totp_key::TotpKey;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.sqlite");
    let key_file = dir.path().join("keys.sqlite.totp-key");
    let pending = dir.path().join("keys.sqlite.totp-key.new");
    let rotated = "SELECT COUNT(*) FROM audit_log WHERE action = 'user.totp_key_rotated'";
    assert!(server(&db, &["seed-demo", "--records", "5"])
        .status
        .success());
    let old_text = std::fs::read_to_string(&key_file).unwrap();
    let old = TotpKey::read(&key_file).unwrap();
    let before = stored_secrets(&db);
    let secrets: Vec<String> = before
        .iter()
        .map(|(login, stored)| old.open(login, stored).unwrap())
        .collect();
    assert!(before.len() >= 5, "{} users", before.len());

    // One secret that does not open (copied from another user's row): the rotation is refused,
    // and the key file, every secret and the log are as they were, with no key left over.
    let (victim, victim_stored) = &before[0];
    sql(
        &db,
        &format!(
            "UPDATE users SET totp_secret = '{}' WHERE login = '{victim}'",
            before[1].1
        ),
    );
    let out = server(&db, &["rotate-totp-key"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("nothing changed"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), old_text);
    assert!(!pending.exists());
    assert_eq!(count(&db, rotated), 0);
    sql(
        &db,
        &format!("UPDATE users SET totp_secret = '{victim_stored}' WHERE login = '{victim}'"),
    );
    assert_eq!(stored_secrets(&db), before);

    // A `.new` key left by a rotation stopped before its commit opens nothing: discarded.
    TotpKey::create(&pending).unwrap();
    let out = server(&db, &["rotate-totp-key"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("TOTP secrets of {} users", before.len())),
        "{}",
        text(&out)
    );
    assert!(!pending.exists());
    let new_text = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_text, old_text);
    let new = TotpKey::read(&key_file).unwrap();
    let after = stored_secrets(&db);
    for ((login, stored), secret) in after.iter().zip(&secrets) {
        assert_eq!(new.open(login, stored).as_ref(), Ok(secret), "{login}");
        assert!(old.open(login, stored).is_err(), "{login}");
    }
    let retired: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".totp-key.retired-"))
        .collect();
    assert_eq!(retired.len(), 1, "{retired:?}");
    assert_eq!(std::fs::read_to_string(&retired[0]).unwrap(), old_text);
    assert_eq!(count(&db, rotated), 1);
    let out = server(&db, &["verify-audit"]);
    assert!(text(&out).contains("intact"), "{}", text(&out));

    // Stopped after its commit, before the new key replaced the file: commands that need the
    // key say so, and running the rotation again finishes it.
    std::fs::rename(&key_file, &pending).unwrap();
    std::fs::copy(&retired[0], &key_file).unwrap();
    let out = server(&db, &["user", "reset-totp", "--login", "demo-cgc"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("rotate-totp-key"), "{}", text(&out));
    let out = server(&db, &["rotate-totp-key"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("finished the interrupted rotation"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), new_text);
    assert!(!pending.exists());
    assert_eq!(count(&db, rotated), 1, "finishing seals nothing again");
    assert_eq!(stored_secrets(&db), after);
}

/// Starts `serve` on the database, lets it write its first checkpoint, and stops it with
/// SIGTERM (which writes one more).
fn serve_briefly(db: &std::path::Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tsunagu-server"))
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TSUNAGU_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start serve");
    let checkpoints = std::path::PathBuf::from(format!("{}.audit-checkpoints", db.display()));
    let started = std::time::Instant::now();
    while !checkpoints.exists() && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(
        child.wait().unwrap().success(),
        "serve ends cleanly on SIGTERM"
    );
    assert!(
        checkpoints.exists(),
        "serve wrote {}",
        checkpoints.display()
    );
}

#[test]
fn checkpoints_leave_the_database_and_pin_the_chains_for_a_witness() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.sqlite");
    let out = server(&db, &["seed-demo", "--records", "30"]);
    assert!(out.status.success(), "{}", text(&out));
    // No server has run yet: no checkpoint, and the command says what that means.
    let out = server(&db, &["verify-audit"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no checkpoint file"), "{}", text(&out));

    serve_briefly(&db);
    let out = server(&db, &["verify-audit"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("checkpoints checked"), "{}", text(&out));
    assert!(
        !text(&out).contains("not yet checkpointed"),
        "{}",
        text(&out)
    );

    let witness = dir.path().join("witness.jsonl");
    let witness_arg = witness.display().to_string();
    let out = server(&db, &["copy-checkpoints", "--to", &witness_arg]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).starts_with("0 "), "{}", text(&out));
    let out = server(&db, &["copy-checkpoints", "--to", &witness_arg]);
    assert!(
        text(&out).starts_with("0 checkpoints copied"),
        "{}",
        text(&out)
    );

    // A rotation keeps the old public key for the checkpoints it signed.
    let out = server(&db, &["rotate-audit-signing-key"]);
    assert!(out.status.success(), "{}", text(&out));
    let public =
        std::fs::read_to_string(dir.path().join("cp.sqlite.audit-signing-key.pub")).unwrap();
    assert_eq!(
        public.lines().filter(|l| !l.starts_with('#')).count(),
        2,
        "{public}"
    );
    assert!(public.contains(" retired "), "{public}");
    let out = server(&db, &["verify-audit", "--witness", &witness_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A checkpoint row of the database changed under its old signature is reported; so is a
    // checkpoint of the file that the database no longer holds.
    with_pool(&db, async |pool| {
        sqlx::raw_sql(
            "DROP TRIGGER audit_checkpoints_no_update; \
             UPDATE audit_checkpoints SET body = replace(body, '\"at\":', '\"at\":1') WHERE id = (SELECT MIN(id) FROM audit_checkpoints);",
        )
        .execute(pool)
        .await
        .unwrap();
    });
    let out = server(&db, &["verify-audit"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("stored in the database"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("missing from the database"),
        "{}",
        text(&out)
    );

    // Someone with the file cuts chain 13's newest entries and moves its head back, and also
    // removes the local checkpoint file and the checkpoints in the database: the witness's
    // copy still shows it.
    with_pool(&db, async |pool| {
        sqlx::raw_sql(
            "DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_checkpoints_no_delete; \
             DELETE FROM audit_checkpoints; \
             DELETE FROM audit_log WHERE pref_code = 13 AND seq > (SELECT seq - 2 FROM audit_head WHERE pref_code = 13); \
             UPDATE audit_head SET seq = (SELECT MAX(seq) FROM audit_log WHERE pref_code = 13), \
                 hash = (SELECT hash FROM audit_log WHERE pref_code = 13 ORDER BY seq DESC LIMIT 1) WHERE pref_code = 13;",
        )
        .execute(pool)
        .await
        .unwrap();
    });
    std::fs::remove_file(dir.path().join("cp.sqlite.audit-checkpoints")).unwrap();
    let out = server(&db, &["verify-audit"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without any checkpoint the cut cannot show: {}",
        text(&out)
    );
    let out = server(&db, &["verify-audit", "--witness", &witness_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("chain 13, entry"), "{}", text(&out));
    assert!(text(&out).contains("checkpoint"), "{}", text(&out));

    // A forged line in the witness's copy is reported, not trusted.
    let copy = std::fs::read_to_string(&witness).unwrap();
    std::fs::write(&witness, copy.replacen("\\\"at\\\":", "\\\"at\\\":1", 1)).unwrap();
    let out = server(&db, &["verify-audit", "--witness", &witness_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("checkpoint BROKEN"), "{}", text(&out));

    // Without the MAC key nothing can be checked: exit 2, not a verdict.
    std::fs::rename(
        dir.path().join("cp.sqlite.audit-mac-key"),
        dir.path().join("elsewhere"),
    )
    .unwrap();
    let out = server(&db, &["verify-audit"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
