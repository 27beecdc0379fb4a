//! Who may use `ripcord serve`: the tokens file (`[server] tokens_file`), its roles, and the bearer-token check.
//!
//! The file holds the SHA-256 of each secret, never the secret, so it can be read by the service and kept in a
//! repository's secret store alike. A presented token is hashed and compared with every entry in constant time
//! (no early exit, no length leak: every digest is 32 bytes), so neither the answer's timing nor its content says
//! which part of a guess was right.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// What a caller may do. Each role may do everything the one before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Reads: the guards, their decisions, the metrics.
    Viewer,
    /// Also acts: a check now, a pull.
    Operator,
    /// Also decides pending rollbacks of guards that need a human.
    Approver,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
        }
    }
}

/// A caller the server let in: the records of what they do name them (`token:NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    pub(crate) name: String,
    pub(crate) role: Role,
    /// The kind of credential: `token` (the tokens file) or `oidc` (an ID token, `oidc.rs`).
    pub(crate) kind: &'static str,
}

impl Principal {
    /// How audit records name them: `token:NAME`, `oidc:SUBJECT`.
    pub(crate) fn actor(&self) -> String {
        format!("{}:{}", self.kind, self.name)
    }
}

/// The tokens file, loaded and checked.
#[derive(Debug)]
pub(crate) struct Tokens {
    entries: Vec<(Principal, [u8; 32])>,
    /// ID tokens of an OIDC issuer, when `[oidc]` says which.
    pub(crate) oidc: Option<super::oidc::Oidc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
    oidc: Option<super::oidc::OidcFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: Role,
    sha256: String,
}

/// Longest token name (it is written into every audit record of what the caller does).
const MAX_NAME: usize = 64;

impl Tokens {
    /// Loads `path`; every problem is reported at once, each naming the file, the field and the value (a digest
    /// is described by its length only, in case a secret was pasted in its place).
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the tokens file: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    pub(crate) fn parse(text: &str, path: &Path) -> anyhow::Result<Self> {
        let file: TokensFile = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            anyhow::anyhow!("{}{at}: {message}", path.display())
        })?;
        let mut problems = Vec::new();
        let mut entries: Vec<(Principal, [u8; 32])> = Vec::new();
        for (i, entry) in file.token.into_iter().enumerate() {
            let field = |name: &str| format!("{}: token[{i}].{name}", path.display());
            let name_ok = !entry.name.is_empty()
                && entry.name.len() <= MAX_NAME
                && entry.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
            if !name_ok {
                problems.push(format!(
                    "{}: must be 1 to {MAX_NAME} letters, digits, '-', '_', '.' or '@', got {:?}",
                    field("name"),
                    entry.name.chars().take(80).collect::<String>()
                ));
            }
            let digest = parse_digest(&entry.sha256);
            if digest.is_none() {
                problems.push(format!(
                    "{}: must be the SHA-256 of the secret as 64 hexadecimal digits (printf %s \"$SECRET\" | \
                     sha256sum), got {} characters",
                    field("sha256"),
                    entry.sha256.chars().count()
                ));
            }
            if entries.iter().any(|(p, _)| p.name == entry.name) {
                problems.push(format!("{}: {:?} is named twice", field("name"), entry.name));
            }
            if let Some(digest) = digest {
                if entries.iter().any(|(_, d)| *d == digest) {
                    problems.push(format!("{}: the same secret is given to two names", field("sha256")));
                }
                entries.push((Principal { name: entry.name, role: entry.role, kind: "token" }, digest));
            }
        }
        let oidc = file.oidc.and_then(|oidc| super::oidc::Oidc::new(oidc, path, &mut problems));
        if entries.is_empty() && oidc.is_none() && problems.is_empty() {
            problems.push(format!("{}: no [[token]] and no [oidc]: nobody could use the server", path.display()));
        }
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("\n"));
        }
        Ok(Self { entries, oidc })
    }

    /// The caller an `Authorization` header value names, if it is `Bearer SECRET` with a known secret.
    pub(crate) fn authenticate(&self, authorization: Option<&[u8]>) -> Option<Principal> {
        let secret = bearer(authorization?)?;
        let presented: [u8; 32] = Sha256::digest(secret).into();
        // Every entry is compared, whatever matched.
        let mut found = None;
        for (principal, digest) in &self.entries {
            if constant_time_eq(&presented, digest) {
                found = Some(principal);
            }
        }
        if let Some(principal) = found {
            return Some(principal.clone());
        }
        // An ID token has three dot-separated parts; a secret of the tokens file is checked above.
        let oidc = self.oidc.as_ref().filter(|_| secret.iter().filter(|b| **b == b'.').count() == 2)?;
        match oidc.verify(std::str::from_utf8(secret).ok()?) {
            Ok(principal) => Some(principal),
            Err(why) => {
                tracing::info!(target: "ripcord::server", %why, "an ID token was refused");
                None
            }
        }
    }
}

/// The secret of `Bearer SECRET` (the scheme in any case, one space or more).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = (value.get(..6)?, value.get(6..)?);
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first().is_none_or(|c| *c != b' ') {
        return None;
    }
    let secret = rest.trim_ascii();
    (!secret.is_empty()).then_some(secret)
}

pub(crate) fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(secret: &str) -> String {
        Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn tokens() -> Tokens {
        let text = format!(
            "[[token]]\nname = \"ci\"\nrole = \"operator\"\nsha256 = \"{}\"\n[[token]]\nname = \"alice\"\nrole = \"viewer\"\nsha256 = \"{}\"\n",
            hex("s3cret-ci"),
            hex("alice-pw").to_uppercase()
        );
        Tokens::parse(&text, Path::new("tokens.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_bearer_token_is_known_by_its_hash_and_nothing_else_lets_in() {
        let tokens = tokens();
        let ci = tokens.authenticate(Some(b"Bearer s3cret-ci"));
        assert_eq!(ci, Some(Principal { name: "ci".into(), role: Role::Operator, kind: "token" }));
        assert_eq!(tokens.authenticate(Some(b"bearer   alice-pw")).map(|p| p.role), Some(Role::Viewer));
        for refused in [&b"Bearer s3cret-c"[..], b"Bearer ", b"Basic s3cret-ci", b"Bearers3cret-ci", b"s3cret-ci", b""]
        {
            assert_eq!(tokens.authenticate(Some(refused)), None, "{}", String::from_utf8_lossy(refused));
        }
        let digest = hex("s3cret-ci");
        assert_eq!(tokens.authenticate(Some(format!("Bearer {digest}").as_bytes())), None, "the hash is no secret");
        assert_eq!(tokens.authenticate(None), None);
    }

    #[test]
    fn every_problem_of_a_tokens_file_names_its_field_and_never_echoes_a_digest() {
        let text = "[[token]]\nname = \"bad name\"\nrole = \"viewer\"\nsha256 = \"my-plain-secret\"\n[[token]]\nname = \"ok\"\nrole = \"viewer\"\nsha256 = \"00000000000000000000000000000000000000000000000000000000000000aa\"\n[[token]]\nname = \"ok\"\nrole = \"viewer\"\nsha256 = \"00000000000000000000000000000000000000000000000000000000000000aa\"\n";
        let error = Tokens::parse(text, Path::new("t.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("t.toml: token[0].name: must be") && error.contains("\"bad name\""), "{error}");
        assert!(
            error.contains("token[0].sha256: must be the SHA-256") && error.contains("got 15 characters"),
            "{error}"
        );
        assert!(!error.contains("my-plain-secret"), "{error}");
        assert!(error.contains("token[2].name: \"ok\" is named twice"), "{error}");
        assert!(error.contains("token[2].sha256: the same secret is given to two names"), "{error}");
        let role = Tokens::parse("[[token]]\nname = \"a\"\nrole = \"admin\"\nsha256 = \"\"\n", Path::new("t.toml"));
        let role = role.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(role.contains("t.toml (line 3)") && role.contains("admin"), "{role}");
        let empty = Tokens::parse("", Path::new("t.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(empty.contains("no [[token]] and no [oidc]"), "{empty}");
        let unknown =
            Tokens::parse("[[token]]\nname = \"a\"\nrole = \"viewer\"\nsecret = \"x\"\n", Path::new("t.toml"));
        assert!(unknown.err().map(|e| e.to_string()).unwrap_or_default().contains("secret"));
    }

    #[test]
    fn each_role_may_do_what_the_one_before_it_may() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Approver);
    }
}
