//! Browser sessions of the dashboard: a person logs in once with their token (`POST /login`), gets an HttpOnly,
//! SameSite=Strict cookie naming a random session, and a CSRF token the page sends with every state-changing
//! request (`X-CSRF-Token`). A pipeline keeps sending its bearer token instead, which no browser sends on its own,
//! so it needs no CSRF token.
//!
//! Sessions live in the server's memory (a restart logs everyone out) for [`SESSION_TTL`]; their ids and CSRF
//! tokens are 32 random bytes from the operating system, compared in constant time.

use super::tokens::{Principal, constant_time_eq};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name.
pub(crate) const COOKIE: &str = "ripcord_session";
/// How long a session lasts after its login.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once (the oldest go first): a flood of logins cannot grow the server without bound.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
    expires: Instant,
}

impl Session {
    /// Whether `presented` is this session's CSRF token.
    pub(crate) fn csrf_matches(&self, presented: Option<&[u8]>) -> bool {
        let Some(presented) = presented else { return false };
        let (a, b): ([u8; 32], [u8; 32]) =
            (Sha256::digest(presented).into(), Sha256::digest(self.csrf.as_bytes()).into());
        constant_time_eq(&a, &b)
    }
}

/// The sessions, by the SHA-256 of their id (an id is never kept, so a memory dump holds no cookie).
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// A new session for `principal`: its id (the cookie's value) and the session.
    pub(crate) fn open(&self, principal: Principal) -> std::io::Result<(String, Session)> {
        let (id, csrf) = (random_hex()?, random_hex()?);
        let session = Session { principal, csrf, expires: Instant::now() + SESSION_TTL };
        let mut sessions = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(Sha256::digest(id.as_bytes()).into(), session.clone());
        Ok((id, session))
    }

    /// The live session the request's `Cookie` header names.
    pub(crate) fn find(&self, cookie_header: Option<&[u8]>) -> Option<Session> {
        let id = cookie_value(cookie_header?)?;
        let key: [u8; 32] = Sha256::digest(id).into();
        let sessions = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get(&key).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// Ends the session the `Cookie` header names.
    pub(crate) fn close(&self, cookie_header: Option<&[u8]>) {
        if let Some(id) = cookie_header.and_then(cookie_value) {
            let key: [u8; 32] = Sha256::digest(id).into();
            self.by_id.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        }
    }
}

/// The value of [`COOKIE`] in a `Cookie` header (`a=1; ripcord_session=…`).
fn cookie_value(header: &[u8]) -> Option<&[u8]> {
    header.split(|b| *b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let value = pair.strip_prefix(COOKIE.as_bytes())?.strip_prefix(b"=")?;
        (!value.is_empty()).then_some(value)
    })
}

/// 32 random bytes from the operating system, as hex.
fn random_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `Set-Cookie` value of a new session (`Secure` when the request came over HTTPS, as a proxy says).
pub(crate) fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_TTL.as_secs())
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::serve::tokens::Role;

    #[test]
    fn a_session_is_found_by_its_cookie_only_and_checks_its_csrf_token() {
        let sessions = Sessions::default();
        let principal = Principal { name: "ada".into(), role: Role::Approver, kind: "token" };
        let (id, session) = sessions.open(principal.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.len(), 64);
        let header = format!("theme=dark; {COOKIE}={id}; other=1");
        let found = sessions.find(Some(header.as_bytes())).map(|s| s.principal);
        assert_eq!(found, Some(principal));
        assert!(sessions.find(Some(format!("{COOKIE}={}", &id[..63]).as_bytes())).is_none());
        assert!(sessions.find(Some(b"ripcord_session_x=1")).is_none());
        assert!(sessions.find(None).is_none());
        assert!(session.csrf_matches(Some(session.csrf.as_bytes())));
        assert!(!session.csrf_matches(Some(id.as_bytes())) && !session.csrf_matches(None));
        sessions.close(Some(header.as_bytes()));
        assert!(sessions.find(Some(header.as_bytes())).is_none(), "logged out");
        assert!(
            set_cookie(&id, true).contains("HttpOnly; SameSite=Strict") && set_cookie(&id, true).ends_with("Secure")
        );
    }
}
