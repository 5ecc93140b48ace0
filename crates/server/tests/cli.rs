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
    let stored: String = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let v = sqlx::query_scalar("SELECT totp_secret FROM users WHERE login = 'admin01'")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        v
    });
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
