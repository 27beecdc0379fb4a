//! OIDC ID tokens at `ripcord serve`: signed by a test issuer's RSA key (`fixtures/oidc/`, a key made for these
//! tests only), a token whose claim maps to a role acts and is named `oidc:SUBJECT`; an expired one, one for
//! another audience or issuer, one signed by another key, with `alg: none` or HS256 keyed with the public key, one
//! without a role, and a tampered one are no credential.

use crate::server::{json, request, serve_with_tokens};
use crate::support::{SimHarness, V2_FAILS, lambda_scenario, repo_root};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json as object;

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const PIPELINE: &str = "repo:acme/checkout:ref:refs/heads/main";

fn fixture(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/e2e/fixtures/oidc").join(name)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn sign(claims: &serde_json::Value, alg: Algorithm, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some("test-key-1".into());
    jsonwebtoken::encode(&header, claims, key).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn an_id_token_of_the_issuer_acts_under_its_subject_and_nothing_else_gets_in() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"off\"");
    std::fs::copy(fixture("jwks.json"), h.dir.path().join("jwks.json")).unwrap_or_else(|e| panic!("{e}"));
    let oidc = format!(
        "\n[oidc]\nissuer = \"{ISSUER}\"\naudience = \"ripcord\"\njwks_file = \"jwks.json\"\nclaim = \"sub\"\n\n[oidc.roles]\n\"{PIPELINE}\" = \"operator\"\n\"watcher\" = \"viewer\"\n"
    );
    let served = serve_with_tokens(&h, &oidc, &["--no-watch"]);
    let addr = served.addr.as_str();
    let der = std::fs::read(fixture("signing-key.der")).unwrap_or_else(|e| panic!("{e}"));
    let key = EncodingKey::from_rsa_der(&der);
    let claims = |sub: &str, aud: &str, iss: &str, exp: i64| object!({"sub": sub, "aud": aud, "iss": iss, "exp": exp, "iat": now()});
    let good = sign(&claims(PIPELINE, "ripcord", ISSUER, now() + 600), Algorithm::RS256, &key);
    let check = "/api/v1/guards/checkout-api/check";
    // Refused: each is no credential at all.
    let mut tampered = good.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    let (head, body, _) = {
        let mut parts = good.split('.');
        (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string(), ())
    };
    let none_header = base64url(br#"{"alg":"none","typ":"JWT","kid":"test-key-1"}"#);
    let jwks = std::fs::read(fixture("jwks.json")).unwrap_or_default();
    let refused = [
        ("expired", sign(&claims(PIPELINE, "ripcord", ISSUER, now() - 3600), Algorithm::RS256, &key)),
        ("another audience", sign(&claims(PIPELINE, "other", ISSUER, now() + 600), Algorithm::RS256, &key)),
        (
            "another issuer",
            sign(&claims(PIPELINE, "ripcord", "https://evil.example", now() + 600), Algorithm::RS256, &key),
        ),
        (
            "no role",
            sign(
                &claims("repo:acme/other:ref:refs/heads/main", "ripcord", ISSUER, now() + 600),
                Algorithm::RS256,
                &key,
            ),
        ),
        ("tampered", tampered),
        ("alg none", format!("{none_header}.{body}.")),
        (
            "HS256 keyed with the public JWKS",
            sign(&claims(PIPELINE, "ripcord", ISSUER, now() + 600), Algorithm::HS256, &EncodingKey::from_secret(&jwks)),
        ),
        ("header of another token", format!("{head}.{body}")),
    ];
    for (what, token) in refused {
        let (status, _, answer) = request(addr, "POST", check, Some(&token), None);
        assert_eq!(status, 401, "{what}: {answer}");
    }
    assert!(h.audit().is_empty(), "nothing was acted on: {:?}", h.audit());
    // A viewer's token reads and may not act.
    let viewer = sign(&claims("watcher", "ripcord", ISSUER, now() + 600), Algorithm::RS256, &key);
    assert_eq!(request(addr, "GET", "/api/v1/guards", Some(&viewer), None).0, 200);
    assert_eq!(request(addr, "POST", check, Some(&viewer), None).0, 403);
    // The pipeline's token acts, and the records name it.
    let (status, _, answer) = request(addr, "POST", check, Some(&good), None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json(&answer)["exit_code"], 2);
    assert_eq!(h.alias(), (1, None));
    let by: Vec<_> = h.audit().into_iter().map(|r| r.by).collect();
    assert!(by.iter().all(|b| b.as_deref() == Some(&format!("oidc:{PIPELINE}") as &str)), "{by:?}");
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
