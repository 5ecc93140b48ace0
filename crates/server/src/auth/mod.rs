//! Passwords (Argon2id), one-time codes (TOTP, RFC 6238, with replay refused) and opaque session
//! tokens (random, stored only as their SHA-256).

pub mod routes;
pub mod service;
pub(crate) mod sql;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Secret, TOTP};

/// Argon2id cost. The default follows OWASP's minimum (19 MiB, 2 passes); tests lower it.
#[derive(Debug, Clone, Copy)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        PasswordCost {
            memory_kib: 19 * 1024,
            iterations: 2,
        }
    }
}

fn argon2(cost: PasswordCost) -> Argon2<'static> {
    let params =
        Params::new(cost.memory_kib, cost.iterations, 1, None).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str, cost: PasswordCost) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2(cost)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid params")
        .to_string()
}

/// Verifies against the parameters stored in the hash itself.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random password for a new account or a reset, shown once to the operator.
pub fn random_password() -> String {
    let mut b = [0u8; 15];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A new TOTP secret, base32 as authenticator apps expect.
pub fn new_totp_secret() -> String {
    let mut b = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut b);
    Secret::Raw(b.to_vec()).to_encoded().to_string()
}

fn totp(secret_b32: &str, login: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string()).to_bytes().ok()?;
    TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        Some("tsunagu".to_string()),
        login.to_string(),
    )
    .ok()
}

/// The `otpauth://` URL to enrol the secret in an authenticator app.
pub fn totp_url(secret_b32: &str, login: &str) -> Option<String> {
    Some(totp(secret_b32, login)?.get_url())
}

/// The code for a given time (for the demo client and tests).
pub fn totp_code(secret_b32: &str, unix_secs: u64) -> Option<String> {
    Some(totp(secret_b32, "x")?.generate(unix_secs))
}

/// Checks a code against the current 30 s step and one step either side. Returns the step the
/// code belongs to, which must be later than `last_step` (a used code is refused).
pub fn check_totp(secret_b32: &str, code: &str, unix_secs: u64, last_step: i64) -> Option<i64> {
    let t = totp(secret_b32, "x")?;
    let code = code.trim();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let now_step = (unix_secs / 30) as i64;
    for step in [now_step - 1, now_step, now_step + 1] {
        if step <= last_step || step < 0 {
            continue;
        }
        let expected = t.generate(step as u64 * 30);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            return Some(step);
        }
    }
    None
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new session token (what the client holds) and its hash (what the server stores).
pub fn new_token() -> (String, String) {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Minutes of a lockout left, to the nearest, at least one, for the message ("about N
/// minutes"). To the nearest, so that every answer of a burst names the same number: an
/// attempt that began a moment before the one that locked sees a few milliseconds more.
pub fn minutes_left(locked_until: i64, now: i64) -> i64 {
    ((locked_until - now + 30_000_000) / 60_000_000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: PasswordCost = PasswordCost {
        memory_kib: 256,
        iterations: 1,
    };

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse battery", CHEAP);
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn totp_accepts_near_steps_and_refuses_replay() {
        let s = new_totp_secret();
        let now = 1_800_000_000u64;
        let code = totp_code(&s, now).unwrap();
        let step = check_totp(&s, &code, now, 0).expect("fresh code accepted");
        assert_eq!(step, (now / 30) as i64);
        // The same code again: refused.
        assert_eq!(check_totp(&s, &code, now, step), None);
        // The previous step's code still works once, 30 s later it is too old.
        let prev = totp_code(&s, now - 30).unwrap();
        assert!(check_totp(&s, &prev, now, 0).is_some());
        assert_eq!(check_totp(&s, &prev, now + 60, 0), None);
        assert_eq!(check_totp(&s, "12345", now, 0), None);
        assert_eq!(check_totp(&s, "abcdef", now, 0), None);
    }

    #[test]
    fn minutes_left_to_the_nearest() {
        let m = 60_000_000;
        assert_eq!(minutes_left(15 * m, 0), 15);
        assert_eq!(minutes_left(15 * m, 1), 15);
        assert_eq!(minutes_left(15 * m, -1000), 15);
        assert_eq!(minutes_left(15 * m, m / 2 + 1), 14);
        assert_eq!(minutes_left(1, 0), 1);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (t1, h1) = new_token();
        let (t2, _) = new_token();
        assert_ne!(t1, t2);
        assert_eq!(token_hash(&t1), h1);
        assert_eq!(h1.len(), 64);
    }
}
