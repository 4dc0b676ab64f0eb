//! UI sessions: a signed, HttpOnly, SameSite=Strict cookie, and a CSRF
//! token derived from it.
//!
//! The cookie is `v1.<expiry>.<nonce>.<mac>`: the expiry (Unix seconds) and
//! a random nonce, signed with HMAC-SHA256. The signing key is derived from
//! the master key (so sessions survive a restart and work on every instance
//! that shares it) or, with no master key, drawn at random for the process.
//! The CSRF token is a second HMAC over the nonce, so the server keeps no
//! per-session state; logging out revokes the nonce until it would have
//! expired anyway.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "ferrolite_ui_session";
/// How long a session lasts.
pub const SESSION_SECS: u64 = 12 * 3600;
/// The header the UI's scripts send the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// A valid session, as read from its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub nonce: String,
    pub expires: u64,
}

/// Signs and checks session cookies; remembers revoked sessions.
pub struct Sessions {
    key: hmac::Key,
    rng: SystemRandom,
    /// Nonces of sessions ended by logout, with their expiry.
    revoked: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

impl Sessions {
    /// Keys derived from `master_key`, or random ones when there is none.
    pub fn new(master_key: Option<&str>) -> Self {
        let rng = SystemRandom::new();
        let key = match master_key {
            Some(m) => {
                let derive = hmac::Key::new(hmac::HMAC_SHA256, m.as_bytes());
                let tag = hmac::sign(&derive, b"ferrolite ui session key v1");
                hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
            }
            None => {
                let mut seed = [0u8; 32];
                if rng.fill(&mut seed).is_err() {
                    // No system randomness: fall back to something unguessable enough
                    // for a gateway that has no master key (and so no protection) anyway.
                    seed[..16].copy_from_slice(&uuid_like_bytes());
                }
                hmac::Key::new(hmac::HMAC_SHA256, &seed)
            }
        };
        Self {
            key,
            rng,
            revoked: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, purpose: &str, data: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.as_bytes());
        ctx.update(b"\0");
        ctx.update(data.as_bytes());
        hex(ctx.sign().as_ref())
    }

    /// A new session, and the cookie value that carries it.
    pub fn issue(&self) -> (Session, String) {
        self.issue_at(now_secs())
    }

    fn issue_at(&self, now: u64) -> (Session, String) {
        let mut n = [0u8; 16];
        if self.rng.fill(&mut n).is_err() {
            n = uuid_like_bytes();
        }
        let s = Session {
            nonce: hex(&n),
            expires: now + SESSION_SECS,
        };
        let body = format!("v1.{}.{}", s.expires, s.nonce);
        let value = format!("{body}.{}", self.mac("session", &body));
        (s, value)
    }

    /// The session a cookie value carries, if it is genuine, current and not revoked.
    pub fn verify(&self, value: &str) -> Option<Session> {
        self.verify_at(value, now_secs())
    }

    fn verify_at(&self, value: &str, now: u64) -> Option<Session> {
        let (body, mac) = value.rsplit_once('.')?;
        let expected = self.mac("session", body);
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let mut parts = body.split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let expires: u64 = parts.next()?.parse().ok()?;
        let nonce = parts.next()?.to_owned();
        if parts.next().is_some() || expires <= now {
            return None;
        }
        if self
            .revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&nonce)
        {
            return None;
        }
        Some(Session { nonce, expires })
    }

    /// The CSRF token that goes with a session.
    pub fn csrf(&self, s: &Session) -> String {
        self.mac("csrf", &s.nonce)
    }

    /// Whether `token` is the session's CSRF token.
    pub fn check_csrf(&self, s: &Session, token: &str) -> bool {
        bool::from(self.csrf(s).as_bytes().ct_eq(token.as_bytes()))
    }

    /// End a session (logout): its cookie stops working at once.
    pub fn revoke(&self, s: &Session) {
        let now = now_secs();
        let mut r = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        r.retain(|_, exp| *exp > now);
        r.insert(s.nonce.clone(), s.expires);
    }
}

/// Sixteen bytes that differ between calls, for when the system RNG fails.
fn uuid_like_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    out.copy_from_slice(&t.to_le_bytes());
    out
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v.trim())
    })
}

/// `Set-Cookie` for a new session. `secure` adds `Secure` (behind HTTPS).
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Compare a secret the user typed with the expected one, in constant time.
pub fn same_secret(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_sessions_verify_and_tampered_ones_do_not() {
        let s = Sessions::new(Some("sk-master-abc"));
        let (sess, cookie) = s.issue();
        assert_eq!(s.verify(&cookie), Some(sess.clone()));
        let tampered = cookie.replacen("v1.", "v1.9", 1);
        assert_eq!(s.verify(&tampered), None);
        assert_eq!(s.verify("v1.1.2.3"), None);
        assert_eq!(s.verify(""), None);
        // Another master key signs differently.
        assert_eq!(Sessions::new(Some("sk-other")).verify(&cookie), None);
        // The same master key (another instance, a restart) accepts it.
        assert!(Sessions::new(Some("sk-master-abc"))
            .verify(&cookie)
            .is_some());
    }

    #[test]
    fn sessions_expire_and_can_be_revoked() {
        let s = Sessions::new(None);
        let (sess, cookie) = s.issue_at(1000);
        assert!(s.verify_at(&cookie, 1000 + SESSION_SECS - 1).is_some());
        assert!(s.verify_at(&cookie, 1000 + SESSION_SECS).is_none());
        let (sess2, cookie2) = s.issue();
        assert!(s.verify(&cookie2).is_some());
        s.revoke(&sess2);
        assert!(s.verify(&cookie2).is_none());
        assert_ne!(sess.nonce, sess2.nonce);
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let s = Sessions::new(Some("sk-m"));
        let (a, _) = s.issue();
        let (b, _) = s.issue();
        let ta = s.csrf(&a);
        assert!(s.check_csrf(&a, &ta));
        assert!(!s.check_csrf(&b, &ta));
        assert!(!s.check_csrf(&a, ""));
    }

    #[test]
    fn cookies_are_read_from_the_header() {
        let h = "a=1; ferrolite_ui_session=v1.2.3.4; b=2";
        assert_eq!(cookie_value(h, COOKIE), Some("v1.2.3.4"));
        assert_eq!(cookie_value(h, "c"), None);
        let c = set_cookie("x", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        assert!(set_cookie("x", true).ends_with("; Secure"));
    }
}
