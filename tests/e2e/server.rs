//! `ripcord serve` used as on-call, pipelines and attackers use it: over raw HTTP/1.1 from another process, every
//! endpoint with no token, a wrong one and each role; a pull and a check through the API on the simulator with
//! the audit record naming who and why; malformed, oversized, slow and path-tricking requests answered with JSON
//! errors while nothing changes on the platform.

use crate::support::{SimHarness, V2_FAILS, lambda_scenario, stderr};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;
pub const VIEWER: &str = "vera-7c1f0b2e";
pub const OPERATOR: &str = "otto-53ad90e1";
pub const APPROVER: &str = "ada-f00dd00d";

fn failing_canary() -> SimHarness {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h
}

fn hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A running `ripcord serve` over `h`'s guards, with a tokens file of three people; killed when dropped.
pub struct Served {
    child: Child,
    pub addr: String,
    /// Reads the server's log to its end: the lines holding a secret.
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Drop for Served {
    /// Stops the server; then its whole log must be free of every secret the test used.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let leaked = self.log.take().map(|log| log.join().unwrap_or_default()).unwrap_or_default();
        if !std::thread::panicking() {
            assert!(leaked.is_empty(), "a credential in the server's log: {leaked:?}");
        }
    }
}

fn tokens_file(h: &SimHarness, extra: &str) {
    let mut text = format!(
        "[[token]]\nname = \"vera\"\nrole = \"viewer\"\nsha256 = \"{}\"\n\n[[token]]\nname = \"otto\"\nrole = \"operator\"\nsha256 = \"{}\"\n\n[[token]]\nname = \"ada\"\nrole = \"approver\"\nsha256 = \"{}\"\n",
        hex(VIEWER),
        hex(OPERATOR),
        hex(APPROVER)
    );
    text.push_str(extra);
    std::fs::write(h.dir.path().join("tokens.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let config = h.dir.path().join("guards.toml");
    let mut guards = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    guards.push_str("\n[server]\ntokens_file = \"tokens.toml\"\n");
    std::fs::write(config, guards).unwrap_or_else(|e| panic!("{e}"));
}

pub fn serve(h: &SimHarness, args: &[&str]) -> Served {
    serve_with_tokens(h, "", args)
}

/// [`serve`] with `extra` appended to the tokens file (an `[oidc]` table).
pub fn serve_with_tokens(h: &SimHarness, extra: &str, args: &[&str]) -> Served {
    tokens_file(h, extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(h.dir.path().join("guards.toml"))
        .args(args)
        .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
        .env("RIPCORD_LOG", "ripcord::server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let addr = lines.by_ref().map_while(Result::ok).find_map(|l| {
        seen.push(l.clone());
        l.strip_prefix("ripcord serving at http://").map(String::from)
    });
    let Some(addr) = addr else { panic!("serve did not say where it listens: {seen:?}") };
    // Its log must never hold a credential: read to its end, checked when the server stops.
    let log = std::thread::spawn(move || {
        let lines = lines.map_while(Result::ok);
        lines.filter(|line| [VIEWER, OPERATOR, APPROVER].iter().any(|s| line.contains(s))).collect()
    });
    Served { child, addr, log: Some(log) }
}

/// One HTTP/1.1 request on its own connection, with a bearer token: (status, head, body).
pub fn request(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String, String) {
    let authorization = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("authorization", a.as_str())).collect();
    request_with(addr, method, path, &headers, body)
}

fn raw(addr: &str, bytes: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap_or_else(|e| panic!("{e}"));
    stream.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn every_endpoint_answers_each_credential_as_its_role_allows() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let served = serve(&h, &["--no-watch", "--dry-run"]);
    let pull = r#"{"reason": "matrix"}"#;
    // (method, path, body, the least role that may)
    let why = r#"{"reason": "matrix"}"#;
    let endpoints: [(&str, &str, Option<&str>, usize); 9] = [
        ("GET", "/metrics", None, 0),
        ("GET", "/api/v1/guards", None, 0),
        ("GET", "/api/v1/guards/checkout-api", None, 0),
        ("GET", "/api/v1/session", None, 0),
        ("GET", "/guards/checkout-api/report", None, 0),
        ("POST", "/api/v1/guards/checkout-api/check", None, 1),
        ("POST", "/api/v1/guards/checkout-api/pull", Some(pull), 1),
        // Nothing is pending (the guard is not in approve mode): let in, then 409.
        ("POST", "/api/v1/guards/checkout-api/approve", Some(why), 2),
        ("POST", "/api/v1/guards/checkout-api/reject", Some(why), 2),
    ];
    let (status, _, body) = request(&served.addr, "GET", "/healthz", None, None);
    assert_eq!((status, json(&body)["status"].as_str()), (200, Some("ok")));
    let digest = hex(OPERATOR);
    for (method, path, body, least) in endpoints {
        for token in [None, Some("wrong"), Some(digest.as_str()), Some("")] {
            let (status, head, answer) = request(&served.addr, method, path, token, body);
            assert_eq!(status, 401, "{method} {path} with {token:?}: {answer}");
            assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer"), "{head}");
            assert_eq!(json(&answer)["error"]["code"], "unauthorized");
        }
        for (rank, token) in [VIEWER, OPERATOR, APPROVER].into_iter().enumerate() {
            let (status, _, answer) = request(&served.addr, method, path, Some(token), body);
            if rank < least {
                assert_eq!(status, 403, "{method} {path} as rank {rank}: {answer}");
                let error = json(&answer);
                assert_eq!(error["error"]["code"], "forbidden");
                let role = ["viewer", "operator"][rank];
                let message = error["error"]["message"].as_str().unwrap_or_default().to_string();
                assert!(message.contains(&format!("has the role {role}; this needs")), "{message}");
            } else if path.ends_with("/approve") || path.ends_with("/reject") {
                assert_eq!(status, 409, "{method} {path} as rank {rank}: {answer}");
                assert_eq!(json(&answer)["error"]["code"], "nothing-pending");
            } else {
                assert_eq!(status, 200, "{method} {path} as rank {rank}: {answer}");
            }
        }
    }
    assert!(h.mutations().is_empty(), "dry-run: nothing changed: {:?}", h.mutations());
    // Every action is in the audit log under its caller's name.
    let by: Vec<Option<String>> = h.audit().into_iter().map(|r| r.by).collect();
    assert!(by.contains(&Some("token:otto".into())) && by.contains(&Some("token:ada".into())), "{by:?}");
    assert!(!by.contains(&Some("token:vera".into())), "the viewer acted: {by:?}");
}

#[test]
fn a_pull_through_the_api_pins_the_known_good_and_the_records_name_who_and_why() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let served = serve(&h, &["--no-watch"]);
    let (status, _, body) = request(&served.addr, "GET", "/api/v1/guards", Some(VIEWER), None);
    assert_eq!(status, 200, "{body}");
    let before = json(&body);
    assert_eq!(before["guards"][0]["candidate"], "2", "{before}");
    let asked = r#"{"reason": "checkout errors after the 14:00 deploy"}"#;
    let (status, _, body) =
        request(&served.addr, "POST", "/api/v1/guards/checkout-api/pull", Some(OPERATOR), Some(asked));
    assert_eq!(status, 200, "{body}");
    let answer = json(&body);
    assert_eq!(answer["exit_code"], 2, "{answer}");
    assert_eq!(h.alias(), (1, None), "v1 takes all traffic");
    let records: Vec<_> = h.audit().into_iter().filter(|r| r.id.ends_with("-pull") || r.id.contains("pull")).collect();
    assert!(!records.is_empty());
    for record in &records {
        assert_eq!(record.by.as_deref(), Some("token:otto"), "{record:?}");
        assert_eq!(record.actor, ripcord::record::audit::Actor::Manual);
    }
    let decision = h
        .audit()
        .into_iter()
        .find(|r| r.record == ripcord::record::audit::Kind::Decision)
        .unwrap_or_else(|| panic!("no decision"));
    assert!(decision.reason.contains("by token:otto (checkout errors after the 14:00 deploy)"), "{}", decision.reason);
    // The list is read afresh after an action; the guard's page shows the pull as its latest decision.
    let after = json(&request(&served.addr, "GET", "/api/v1/guards", Some(VIEWER), None).2);
    assert_eq!(after["guards"][0]["primary"], "1", "{after}");
    assert_eq!(after["guards"][0]["candidate"], "1", "one revision serves: {after}");
    let guard = json(&request(&served.addr, "GET", "/api/v1/guards/checkout-api", Some(VIEWER), None).2);
    assert_eq!((guard["verdict"].as_str(), guard["by"].as_str()), (Some("rollback"), Some("token:otto")), "{guard}");
}

#[test]
fn a_check_through_the_api_judges_now_and_the_guard_reads_as_an_argo_web_metric() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let served = serve(&h, &["--no-watch"]);
    let guard = json(&request(&served.addr, "GET", "/api/v1/guards/checkout-api", Some(VIEWER), None).2);
    assert_eq!(guard["verdict"], Value::Null, "no decision yet: {guard}");
    let (status, _, body) = request(&served.addr, "POST", "/api/v1/guards/checkout-api/check", Some(OPERATOR), None);
    assert_eq!(status, 200, "{body}");
    let answer = json(&body);
    assert_eq!(answer["exit_code"], 2, "{answer}");
    assert_eq!(answer["guards"][0]["verdict"], "rollback", "{answer}");
    assert_eq!(h.alias(), (1, None));
    // Argo Rollouts' Web metric: jsonPath `{$.verdict}`, failureCondition `result == "rollback"`.
    let (status, head, body) = request(&served.addr, "GET", "/api/v1/guards/checkout-api", Some(VIEWER), None);
    assert!(status == 200 && head.contains("application/json"), "{head}");
    let guard = json(&body);
    assert_eq!(guard["verdict"], "rollback", "{guard}");
    assert_eq!(guard["actor"], "hook");
    assert_eq!(guard["by"], "token:otto");
    let checks = guard["policies"][0]["checks"].as_array().map(Vec::len).unwrap_or_default();
    assert!(checks > 0, "the checks behind the verdict: {guard}");
    // The metrics count the check made over the API.
    let metrics = request(&served.addr, "GET", "/metrics", Some(VIEWER), None).2;
    assert!(metrics.contains("ripcord_rollbacks_total{guard=\"checkout-api\"} 1"), "{metrics}");
}

#[test]
fn bad_requests_get_json_errors_and_change_nothing() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let served = serve(&h, &["--no-watch"]);
    let addr = served.addr.as_str();
    let pull = "/api/v1/guards/checkout-api/pull";
    // (method, path, token, body, status, error code)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("GET", "/api/v1/guards/nope", Some(VIEWER), None, 404, "no-such-guard"),
        ("POST", "/api/v1/guards/nope/pull", Some(OPERATOR), Some(r#"{"reason":"x"}"#), 404, "no-such-guard"),
        ("GET", "/api/v1/guards/nope", None, None, 401, "unauthorized"),
        ("POST", pull, Some(OPERATOR), None, 400, "bad-request"),
        ("POST", pull, Some(OPERATOR), Some("{}"), 400, "bad-request"),
        ("POST", pull, Some(OPERATOR), Some(r#"{"reason":"   "}"#), 400, "bad-request"),
        ("POST", pull, Some(OPERATOR), Some(r#"{"reason":"x","by":"token:ada"}"#), 400, "bad-request"),
        ("POST", pull, Some(OPERATOR), Some("not json"), 400, "bad-request"),
        ("GET", pull, Some(OPERATOR), None, 405, "method-not-allowed"),
        ("DELETE", "/api/v1/guards", Some(OPERATOR), None, 405, "method-not-allowed"),
        ("GET", "/api/v1/guards/../../metrics", Some(VIEWER), None, 404, "not-found"),
        ("GET", "/api/v1/guards/%2e%2e/pull", Some(VIEWER), None, 405, "method-not-allowed"),
        ("GET", "/api/v1/guards/%zz", Some(VIEWER), None, 404, "not-found"),
        ("GET", "/etc/passwd", None, None, 404, "not-found"),
    ];
    for (method, path, token, body, status, code) in cases {
        let (got, head, answer) = request(addr, method, path, token, body);
        assert_eq!(got, status, "{method} {path} {body:?}: {answer}");
        assert!(head.contains("application/json"), "{head}");
        assert_eq!(json(&answer)["error"]["code"], code, "{method} {path}: {answer}");
    }
    // A form post (what a browser sends across sites without asking) is not JSON.
    let form = format!(
        "POST {pull} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {OPERATOR}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 8\r\n\r\nreason=x"
    );
    let (status, _, answer) = raw(addr, form.as_bytes());
    assert_eq!((status, json(&answer)["error"]["code"].as_str()), (415, Some("unsupported-media-type")));
    // Too large, as declared and as sent without a length (chunked).
    let big = format!("{{\"reason\": \"{}\"}}", "x".repeat(100_000));
    let (status, _, answer) = request(addr, "POST", pull, Some(OPERATOR), Some(&big));
    assert_eq!((status, json(&answer)["error"]["code"].as_str()), (413, Some("body-too-large")));
    let chunk = "x".repeat(8192);
    let mut chunked = format!(
        "POST {pull} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {OPERATOR}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    for _ in 0..10 {
        chunked.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    chunked.push_str("0\r\n\r\n");
    let (status, _, answer) = raw(addr, chunked.as_bytes());
    assert_eq!((status, json(&answer)["error"]["code"].as_str()), (413, Some("body-too-large")), "{answer}");
    // A head larger than the server reads is refused, not buffered.
    let huge = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-filler: {}\r\n\r\n", "y".repeat(64 * 1024));
    let (status, _, _) = raw(addr, huge.as_bytes());
    assert!(status == 431 || status == 0, "a 64 KiB header: {status}");
    assert!(h.mutations().is_empty(), "{:?}", h.mutations());
    assert!(h.audit().is_empty(), "no request was acted on: {:?}", h.audit());
}

#[test]
fn a_slow_client_is_cut_off_and_never_holds_up_the_others() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let served = serve(&h, &["--no-watch"]);
    // Half a request head, then silence.
    let mut slow = TcpStream::connect(&served.addr).unwrap_or_else(|e| panic!("{e}"));
    slow.write_all(b"GET /api/v1/guards HTTP/1.1\r\nhost: x\r\n").unwrap_or_else(|e| panic!("{e}"));
    let mut others = Vec::new();
    for _ in 0..20 {
        others.push(request(&served.addr, "GET", "/healthz", None, None).0);
    }
    assert!(others.iter().all(|s| *s == 200), "{others:?}");
    // The server closes it (after its 10 s head timeout); the test only waits for that, however long it takes.
    slow.set_read_timeout(Some(Duration::from_secs(120))).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = slow.read_to_end(&mut answer);
    assert!(read.is_ok(), "the slow client was never cut off ({:?}): {read:?}", started.elapsed());
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[test]
fn serve_runs_the_cycles_and_rolls_a_failing_canary_back() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"\ninterval = \"1m\"");
    let served = serve(&h, &[]);
    let started = Instant::now();
    loop {
        let metrics = request(&served.addr, "GET", "/metrics", Some(VIEWER), None).2;
        if metrics.contains("ripcord_rollbacks_total{guard=\"checkout-api\"} 1") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no rollback counted: {metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(h.alias(), (1, None));
    let rollback = h.audit().into_iter().find(|r| r.verdict == ripcord::model::verdict::Verdict::Rollback);
    let rollback = rollback.unwrap_or_else(|| panic!("no rollback record"));
    assert_eq!((rollback.actor, rollback.by), (ripcord::record::audit::Actor::Schedule, None));
}

#[test]
fn serve_refuses_to_start_without_a_valid_tokens_file() {
    let h = failing_canary();
    let config = h.guards("prewarm = \"off\"");
    let run = |extra: &str| {
        let mut text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
        text.push_str(extra);
        let path = h.dir.path().join("serve.toml");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let output = Command::new(env!("CARGO_BIN_EXE_ripcord"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-watch", "--config"])
            .arg(&path)
            .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        stderr(&output)
    };
    let none = run("");
    assert!(none.contains("serve.toml: [server] tokens_file is needed"), "{none}");
    std::fs::write(h.dir.path().join("bad-tokens.toml"), "[[token]]\nname = \"a\"\nrole = \"root\"\nsha256 = \"x\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let bad = run("\n[server]\ntokens_file = \"bad-tokens.toml\"\n");
    assert!(bad.contains("bad-tokens.toml (line 3)") && bad.contains("root"), "{bad}");
    let listen = run("\n[server]\nlisten = \"everywhere\"\n");
    assert!(listen.contains("server.listen") && listen.contains("\"everywhere\""), "{listen}");
    // `validate` finds the tokens file's problems before a configuration ships.
    let path = h.dir.path().join("serve.toml");
    let mut text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    text.push_str("\n[server]\ntokens_file = \"bad-tokens.toml\"\n");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(["validate", "--no-cache", "--config"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let said = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("server.tokens_file: ") && said.contains("root"), "{said}");
}

/// A request with extra headers (a browser's cookie, a CSRF token): (status, head, body).
fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or_default());
    raw(addr, head.as_bytes())
}

/// The value of a response header, by its lowercase name.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
    })
}

/// Logs in with `token`: the `Cookie` header value and the CSRF token.
pub fn login(addr: &str, token: &str) -> (String, String) {
    let (status, head, body) = request(addr, "POST", "/login", None, Some(&format!("{{\"token\": \"{token}\"}}")));
    assert_eq!(status, 200, "{body}");
    let cookie = header(&head, "set-cookie").unwrap_or_else(|| panic!("no cookie: {head}"));
    let pair = cookie.split(';').next().unwrap_or_default().to_string();
    (pair, json(&body)["csrf"].as_str().unwrap_or_default().to_string())
}

#[test]
fn a_browser_session_acts_only_with_its_csrf_token_and_pages_load_nothing_foreign() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let served = serve(&h, &["--no-watch"]);
    let addr = served.addr.as_str();
    // The dashboard's shell: no data, no inline script, a policy that allows only its own origin.
    let (status, head, page) = request(addr, "GET", "/", None, None);
    assert_eq!(status, 200, "{page}");
    let policy = header(&head, "content-security-policy").unwrap_or_default();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(page.contains("<script src=\"/dashboard.js\" defer></script>") && !page.contains("<script>"), "{page}");
    assert!(!page.contains("checkout-api"), "the shell holds no data: {page}");
    let (status, head, _) = request(addr, "GET", "/dashboard.js", None, None);
    assert!(status == 200 && header(&head, "content-type").is_some_and(|t| t.starts_with("text/javascript")));
    // A wrong token is no session.
    assert_eq!(request(addr, "POST", "/login", None, Some(r#"{"token": "guess"}"#)).0, 401);
    let (status, head, _) = request(addr, "POST", "/login", None, Some(&format!("{{\"token\": \"{OPERATOR}\"}}")));
    assert_eq!(status, 200);
    let cookie = header(&head, "set-cookie").unwrap_or_default();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert!(!cookie.contains(OPERATOR), "{cookie}");
    let behind_tls = request_with(
        addr,
        "POST",
        "/login",
        &[("x-forwarded-proto", "https")],
        Some(&format!("{{\"token\": \"{OPERATOR}\"}}")),
    );
    assert!(header(&behind_tls.1, "set-cookie").is_some_and(|c| c.contains("; Secure")), "{}", behind_tls.1);
    let (session, csrf) = login(addr, OPERATOR);
    assert_eq!(csrf.len(), 64);
    let me = json(&request_with(addr, "GET", "/api/v1/session", &[("cookie", &session)], None).2);
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str(), me["csrf"].as_str()),
        (Some("otto"), Some("operator"), Some(csrf.as_str()))
    );
    assert_eq!(request_with(addr, "GET", "/api/v1/guards", &[("cookie", &session)], None).0, 200);
    // A state change with the cookie alone — what another site can make a browser send — is refused.
    let pull = "/api/v1/guards/checkout-api/pull";
    let why = Some(r#"{"reason": "from the dashboard"}"#);
    for headers in [vec![("cookie", session.as_str())], vec![("cookie", session.as_str()), ("x-csrf-token", "0000")]] {
        let (status, _, body) = request_with(addr, "POST", pull, &headers, why);
        assert_eq!((status, json(&body)["error"]["code"].as_str()), (403, Some("csrf")), "{body}");
    }
    assert!(h.mutations().is_empty(), "{:?}", h.mutations());
    let (status, _, body) = request_with(addr, "POST", pull, &[("cookie", &session), ("x-csrf-token", &csrf)], why);
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.alias(), (1, None));
    assert!(h.audit().iter().all(|r| r.by.as_deref() == Some("token:otto")));
    // A viewer's session reads, and may not act even with its CSRF token.
    let (viewer, viewer_csrf) = login(addr, VIEWER);
    let (status, _, body) =
        request_with(addr, "POST", pull, &[("cookie", &viewer), ("x-csrf-token", &viewer_csrf)], why);
    assert_eq!((status, json(&body)["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    // The guard's report page: the report, without any script, for a session or a token only.
    let (status, head, report) = request_with(addr, "GET", "/guards/checkout-api/report", &[("cookie", &viewer)], None);
    assert_eq!(status, 200);
    assert!(report.contains("<h2>checkout-api</h2>") && !report.contains("<script"), "{report}");
    assert!(header(&head, "content-security-policy").is_some_and(|p| !p.contains("script-src")), "{head}");
    assert_eq!(request(addr, "GET", "/guards/checkout-api/report", None, None).0, 401);
    // Logged out, the cookie is worth nothing.
    let (status, head, _) = request_with(addr, "POST", "/logout", &[("cookie", &session)], None);
    assert!(status == 200 && header(&head, "set-cookie").is_some_and(|c| c.contains("Max-Age=0")), "{head}");
    assert_eq!(request_with(addr, "GET", "/api/v1/guards", &[("cookie", &session)], None).0, 401);
}
