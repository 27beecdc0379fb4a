//! OIDC ID tokens as a second kind of credential (`[oidc]` in the tokens file), so the server can take the
//! identity a platform already proves — GitHub Actions' OIDC token, a Google-signed ID token behind Identity-Aware
//! Proxy, an ALB's OIDC — instead of a shared secret. A token is accepted when its signature verifies with a key of
//! the issuer's JWKS (RS256 for RSA keys, ES256 for P-256 keys; the algorithm comes from the key, never from the
//! token), its `iss` and `aud` are the configured ones and it has not expired (60 s of leeway); the configured
//! claim names the caller (`oidc:VALUE`) and `roles` maps that value to a role. Anything else is no credential.

use super::tokens::{Principal, Role};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

/// How often keys from a `jwks_url` are read again (issuers publish a new key before they sign with it).
pub(crate) const JWKS_REFRESH: Duration = Duration::from_secs(3600);
/// Longest caller name taken from a claim (it goes into every record of what the caller does).
const MAX_SUBJECT: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OidcFile {
    issuer: String,
    audience: String,
    jwks_file: Option<PathBuf>,
    jwks_url: Option<String>,
    #[serde(default = "default_claim")]
    claim: String,
    #[serde(default)]
    roles: BTreeMap<String, Role>,
}

fn default_claim() -> String {
    "email".into()
}

/// The verifier of one issuer's ID tokens.
#[derive(Debug)]
pub(crate) struct Oidc {
    issuer: String,
    audience: String,
    claim: String,
    roles: BTreeMap<String, Role>,
    /// Where the keys come from when they are read from the issuer.
    pub(crate) jwks_url: Option<String>,
    keys: RwLock<JwkSet>,
}

impl Oidc {
    /// The verifier `file` describes (`jwks_file` relative to `tokens_path`'s folder), or its problems.
    pub(super) fn new(file: OidcFile, tokens_path: &Path, problems: &mut Vec<String>) -> Option<Self> {
        let field = |name: &str| format!("{}: oidc.{name}", tokens_path.display());
        if file.issuer.is_empty() || file.audience.is_empty() {
            problems.push(format!("{}: issuer and audience must both be set", field("issuer")));
        }
        if file.roles.is_empty() {
            problems.push(format!("{}: map at least one {} value to a role", field("roles"), file.claim));
        }
        let keys = match (&file.jwks_file, &file.jwks_url) {
            (Some(jwks), None) => {
                let path = tokens_path.parent().unwrap_or(Path::new(".")).join(jwks);
                match std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|t| parse_jwks(&t)) {
                    Ok(keys) => keys,
                    Err(error) => {
                        problems.push(format!("{}: {}: {error}", field("jwks_file"), path.display()));
                        JwkSet { keys: Vec::new() }
                    }
                }
            }
            (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://127.0.0.1") => {
                JwkSet { keys: Vec::new() }
            }
            (None, Some(url)) => {
                problems.push(format!("{}: must be an https:// URL, got {url:?}", field("jwks_url")));
                JwkSet { keys: Vec::new() }
            }
            _ => {
                problems.push(format!("{}: set exactly one of jwks_file and jwks_url", field("jwks_file")));
                JwkSet { keys: Vec::new() }
            }
        };
        let OidcFile { issuer, audience, claim, roles, jwks_url, .. } = file;
        Some(Self { issuer, audience, claim, roles, jwks_url, keys: RwLock::new(keys) })
    }

    /// Reads the keys from `jwks_url` again (a failure keeps the keys there were).
    pub(crate) async fn refresh(&self) -> anyhow::Result<()> {
        let Some(url) = &self.jwks_url else { return Ok(()) };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let text = client.get(url).send().await?.error_for_status()?.text().await?;
        let keys = parse_jwks(&text).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }

    /// The caller `token` proves, if it is a valid ID token of the issuer whose claim has a role.
    pub(crate) fn verify(&self, token: &str) -> Result<Principal, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not an ID token: {e}"))?;
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid),
            None if keys.keys.len() == 1 => keys.keys.first(),
            None => None,
        }
        .ok_or_else(|| format!("no key {:?} in the issuer's JWKS", header.kid))?;
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
            _ => return Err("the key is neither RSA nor P-256".into()),
        };
        if header.alg != algorithm {
            return Err(format!("signed with {:?}, the key is for {algorithm:?}", header.alg));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("the issuer's key: {e}"))?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 60;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(|e| e.to_string())?;
        let subject = data.claims.get(&self.claim).and_then(|v| v.as_str()).unwrap_or_default();
        if subject.is_empty() || subject.len() > MAX_SUBJECT {
            return Err(format!("no {} claim", self.claim));
        }
        let role = self.roles.get(subject).ok_or_else(|| format!("{} {subject:?} has no role", self.claim))?;
        Ok(Principal { name: subject.to_string(), role: *role, kind: "oidc" })
    }
}

fn parse_jwks(text: &str) -> Result<JwkSet, String> {
    let keys: JwkSet = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
    if keys.keys.is_empty() { Err("a JWKS without keys".into()) } else { Ok(keys) }
}
