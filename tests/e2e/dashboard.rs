//! The dashboard in headless Chromium, driven over the DevTools protocol (`--remote-debugging-pipe`: the test
//! speaks it on the browser's fds 3 and 4, no extra tool): it loads, a person logs in with a token, every guard
//! shows with its split and last verdict, an operator's pull works from its button, a viewer sees no button, a
//! POST without the CSRF token is refused inside the browser, and a hostile reason stays text.

use crate::report::chromium;
use crate::server::{OPERATOR, VIEWER, request, serve};
use crate::support::{SimHarness, V2_FAILS, lambda_scenario};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;

/// A headless Chromium and one page of it, spoken to over the DevTools protocol.
struct Browser {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn start(chromium: &Path) -> Self {
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // The protocol runs over fds 3 (to the browser) and 4 (from it): the shell hands it our pipes there.
        let script = "exec \"$0\" --headless --no-sandbox --disable-gpu --no-first-run --remote-debugging-pipe \
                      --user-data-dir=\"$1\" about:blank 3<&0 4>&1 </dev/null >/dev/null 2>/dev/null";
        let mut child = Command::new("bash")
            .args(["-c", script])
            .arg(chromium)
            .arg(profile.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromium: {e}"));
        let input = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
        let output = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
        let mut browser = Self { child, input, output, next_id: 0, session: String::new(), _profile: profile };
        let targets = browser.call("Target.getTargets", json!({}), false);
        let page = targets["targetInfos"].as_array().into_iter().flatten().find(|t| t["type"] == "page");
        let target = page.map(|t| t["targetId"].clone()).unwrap_or_else(|| panic!("no page: {targets}"));
        let attached = browser.call("Target.attachToTarget", json!({"targetId": target, "flatten": true}), false);
        browser.session = attached["sessionId"].as_str().unwrap_or_else(|| panic!("{attached}")).to_string();
        browser
    }

    /// Sends one command (to the page's session when `on_page`) and returns its result; events are skipped.
    fn call(&mut self, method: &str, params: Value, on_page: bool) -> Value {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if on_page {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.input.write_all(&bytes).unwrap_or_else(|e| panic!("chromium went away: {e}"));
        self.input.flush().unwrap_or_else(|e| panic!("{e}"));
        loop {
            let mut reply = Vec::new();
            let read = self.output.read_until(0, &mut reply).unwrap_or_else(|e| panic!("{e}"));
            assert!(read > 0, "chromium closed the protocol pipe");
            reply.pop();
            let reply: Value = serde_json::from_slice(&reply).unwrap_or_else(|e| panic!("{e}"));
            if reply["id"] == self.next_id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    fn eval(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
        let result = self.call("Runtime.evaluate", params, true);
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy in the page (the page works in its own time; the test only waits).
    fn wait_for(&mut self, expression: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.eval(expression);
            if !(value.is_null() || value == false || value == "" || value == 0) {
                return value;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "never true: {expression}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}), true);
        self.wait_for("document.readyState === 'complete' && !!document.getElementById('login')");
    }

    fn log_in(&mut self, token: &str) {
        self.wait_for("!document.getElementById('login').hidden");
        self.eval(&format!(
            "document.getElementById('token').value = {}; document.getElementById('login').requestSubmit(); true",
            json!(token)
        ));
        self.wait_for("document.getElementById('who').textContent !== ''");
        self.wait_for("document.querySelectorAll('#guards tr').length > 0");
    }
}

#[test]
fn the_dashboard_shows_the_guards_and_pulls_for_an_operator_only() {
    let Some(chromium) = chromium() else { return };
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"off\"");
    let served = serve(&h, &["--no-watch"]);
    let url = format!("http://{}/", served.addr);
    // A judgement with a hostile reason in the log: the dashboard must show it as text.
    let hostile = r#"{"reason": "<img src=x onerror=\"window.pwned=1\"><b>bold</b>"}"#;
    let (status, _, body) =
        request(&served.addr, "POST", "/api/v1/guards/checkout-api/pull", Some(OPERATOR), Some(hostile));
    assert_eq!(status, 200, "{body}");
    // Put the canary back, so the operator has something to pull.
    h.sim.set_alias("checkout", "live", 1, Some((2, 0.1))).unwrap_or_else(|e| panic!("{e:?}"));
    let mut browser = Browser::start(&chromium);
    browser.open(&url);
    // Not logged in: the login form, and no data.
    assert_eq!(browser.eval("document.getElementById('board').hidden"), true);
    browser.log_in(VIEWER);
    let row = browser.wait_for("document.querySelector('tr[data-guard=\"checkout-api\"]').innerText");
    let row = row.as_str().unwrap_or_default().to_string();
    assert!(row.contains("checkout-api") && row.contains("v1 90% / v2 10%"), "{row}");
    assert!(row.contains("rollback at") && row.contains("<img src=x"), "the reason as text: {row}");
    assert_eq!(browser.eval("document.querySelectorAll('#guards img, #guards b').length"), 0);
    assert_eq!(browser.eval("window.pwned === undefined"), true);
    assert_eq!(browser.eval("document.getElementById('who').textContent"), "vera (viewer)");
    assert_eq!(browser.eval("document.querySelectorAll('button[data-action]').length"), 0, "a viewer gets no button");
    // A POST from the page without the CSRF token is refused, even with the session's cookie.
    let refused = "fetch('/api/v1/guards/checkout-api/check', {method: 'POST'}).then(r => r.status)";
    assert_eq!(browser.eval(refused), 403);
    // The operator.
    browser.eval("document.getElementById('logout').click(); true");
    browser.wait_for("document.getElementById('who').textContent === '' && !document.querySelector('#guards tr')");
    browser.log_in(OPERATOR);
    assert_eq!(browser.eval("document.getElementById('who').textContent"), "otto (operator)");
    browser.wait_for("!!document.querySelector('tr[data-guard=\"checkout-api\"] button[data-action=\"pull\"]')");
    browser.eval(
        "window.prompt = () => 'pulled from the dashboard'; \
         document.querySelector('tr[data-guard=\"checkout-api\"] button[data-action=\"pull\"]').click(); true",
    );
    let said = browser.wait_for("document.getElementById('action-result').textContent");
    assert!(said.as_str().is_some_and(|s| s.contains("pull checkout-api: rolled-back")), "{said}");
    assert_eq!(h.alias(), (1, None), "the button pulled");
    let pull = h.audit().into_iter().rfind(|r| r.reason.contains("pulled from the dashboard"));
    assert_eq!(pull.and_then(|r| r.by).as_deref(), Some("token:otto"));
    browser.wait_for("document.querySelector('tr[data-guard=\"checkout-api\"]').innerText.includes('v1 100%')");
}

#[test]
fn an_approver_approves_a_pending_rollback_from_the_dashboard() {
    let Some(chromium) = chromium() else { return };
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"off\"\nmode = \"approve\"");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
    assert_eq!(h.alias(), (1, Some((2, 0.1))), "pending, not made");
    let served = serve(&h, &["--no-watch"]);
    let mut browser = Browser::start(&chromium);
    browser.open(&format!("http://{}/", served.addr));
    browser.log_in(crate::server::APPROVER);
    let row = browser.wait_for("document.querySelector('tr[data-guard=\"checkout-api\"]').innerText");
    assert!(row.as_str().is_some_and(|r| r.contains("ROLLBACK TO v1 AWAITS APPROVAL")), "{row}");
    assert_eq!(browser.eval("document.querySelector('tr.pending button[data-action=\"reject\"]') !== null"), true);
    browser.eval(
        "window.prompt = () => 'approved on the bridge call'; \
         document.querySelector('tr.pending button[data-action=\"approve\"]').click(); true",
    );
    let said = browser.wait_for("document.getElementById('action-result').textContent");
    assert!(said.as_str().is_some_and(|s| s.contains("approve checkout-api: rolled-back")), "{said}");
    assert_eq!(h.alias(), (1, None));
    let approved = h.audit().into_iter().rfind(|r| r.reason.contains("approved on the bridge call"));
    assert_eq!(approved.and_then(|r| r.by).as_deref(), Some("token:ada"));
}
