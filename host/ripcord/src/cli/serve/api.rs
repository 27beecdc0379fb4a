//! The routes of `ripcord serve`, who may use each, and their answers. Every answer is JSON (the metrics are
//! Prometheus text); every error is `{"error": {"code", "message"}}` with its HTTP status.
//!
//! | route | role |
//! |---|---|
//! | `GET /healthz` | none |
//! | `GET /metrics`, `GET /api/v1/guards`, `GET /api/v1/guards/{name}` | viewer |
//! | `POST /api/v1/guards/{name}/check`, `POST /api/v1/guards/{name}/pull` | operator |
//! | `POST /api/v1/guards/{name}/approve`, `POST /api/v1/guards/{name}/reject` | approver |
//! | `GET /`, `/dashboard.js`, `/dashboard.css`, `POST /login`, `POST /logout` | none (the dashboard's shell) |
//! | `GET /api/v1/session`, `GET /guards/{name}/report` | viewer |
//!
//! A caller is a bearer token, or a browser session (`session.rs`) whose state-changing requests carry its CSRF
//! token.
//!
//! A path is matched before anyone is authenticated (the routes are public; 404 and 405 say nothing about the
//! guards), a guard's name only after, so no caller without a token learns which guards exist.

use super::session::{self, Session};
use super::tokens::{Principal, Role};
use super::{READ_TIMEOUT, Server, dashboard};
use crate::cli::output::{exit_code, summary};
use crate::cli::status::Snapshot;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use ripcord::cycle::controller::Requester;
use ripcord::record::audit::{Actor, Audit, Kind};
use ripcord::record::effect::{Effect, GuardResult};
use ripcord::record::telemetry::CycleSample;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest request body.
const MAX_BODY: usize = 64 * 1024;
/// Longest reason a pull may give (it is written into the audit record and the notification).
const MAX_REASON: usize = 1000;
/// How long `GET /api/v1/guards` answers from what it read last (each answer reads every deployment).
const SNAPSHOT_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
enum Route {
    Page,
    Asset(&'static str),
    Login,
    Logout,
    Session,
    Report(String),
    Healthz,
    Metrics,
    Guards,
    Guard(String),
    Check(String),
    Pull(String),
    Approve(String),
    Reject(String),
}

impl Route {
    fn role(&self) -> Option<Role> {
        match self {
            Route::Healthz | Route::Page | Route::Asset(_) | Route::Login | Route::Logout => None,
            Route::Metrics | Route::Guards | Route::Guard(_) | Route::Session | Route::Report(_) => Some(Role::Viewer),
            Route::Check(_) | Route::Pull(_) => Some(Role::Operator),
            Route::Approve(_) | Route::Reject(_) => Some(Role::Approver),
        }
    }

    fn guard(&self) -> Option<&str> {
        match self {
            Route::Guard(name)
            | Route::Report(name)
            | Route::Check(name)
            | Route::Pull(name)
            | Route::Approve(name)
            | Route::Reject(name) => Some(name),
            _ => None,
        }
    }
}

/// A failed request: its status, a stable code and a message for people.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

/// The route `method` and `path` ask for: 404 for a path ripcord does not serve, 405 (with the methods it takes)
/// for a method it does not.
fn route(method: &Method, path: &str) -> Result<Route, (Refusal, &'static str)> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let (route, allowed) = match segments.as_slice() {
        [""] => (Some(Route::Page), "GET"),
        ["dashboard.js"] => (Some(Route::Asset("dashboard.js")), "GET"),
        ["dashboard.css"] => (Some(Route::Asset("dashboard.css")), "GET"),
        ["login"] => (Some(Route::Login), "POST"),
        ["logout"] => (Some(Route::Logout), "POST"),
        ["api", "v1", "session"] => (Some(Route::Session), "GET"),
        ["guards", name, "report"] => (decode(name).map(Route::Report), "GET"),
        ["healthz"] => (Some(Route::Healthz), "GET"),
        ["metrics"] => (Some(Route::Metrics), "GET"),
        ["api", "v1", "guards"] => (Some(Route::Guards), "GET"),
        ["api", "v1", "guards", name] => (decode(name).map(Route::Guard), "GET"),
        ["api", "v1", "guards", name, "check"] => (decode(name).map(Route::Check), "POST"),
        ["api", "v1", "guards", name, "pull"] => (decode(name).map(Route::Pull), "POST"),
        ["api", "v1", "guards", name, "approve"] => (decode(name).map(Route::Approve), "POST"),
        ["api", "v1", "guards", name, "reject"] => (decode(name).map(Route::Reject), "POST"),
        _ => (None, ""),
    };
    let not_found = || refuse(StatusCode::NOT_FOUND, "not-found", format!("ripcord serves no {path}"));
    let route = route.ok_or_else(|| (not_found(), ""))?;
    let wanted = if allowed == "GET" { [Method::GET, Method::HEAD].contains(method) } else { method == Method::POST };
    if !wanted {
        let message = format!("{path} takes {allowed}, not {method}");
        return Err((refuse(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", message), allowed));
    }
    Ok(route)
}

/// A path segment's percent-encoding undone; `None` for an empty name, a bad escape or bytes that are not UTF-8.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|name| !name.is_empty())
}

/// Answers one request; logs its method, path, status and caller (never a credential).
pub(super) async fn answer(server: &Server, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let mut by = None;
    let response = match handle(server, request, &mut by).await {
        Ok(response) => response,
        Err((refusal, allowed)) => {
            let mut response =
                json(refusal.status, &json!({"error": {"code": refusal.code, "message": refusal.message}}));
            if refusal.status == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"ripcord\""));
            }
            if let Ok(allow) = header::HeaderValue::from_str(allowed)
                .map_err(drop)
                .and_then(|v| (!allowed.is_empty()).then_some(v).ok_or(()))
            {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            response
        }
    };
    let status = response.status().as_u16();
    tracing::info!(target: "ripcord::server", %peer, %method, path = %path, status, by = by.as_deref().unwrap_or("-"), "request");
    response
}

async fn handle(
    server: &Server,
    request: Request<Incoming>,
    by: &mut Option<String>,
) -> Result<Response<Full<Bytes>>, (Refusal, &'static str)> {
    let route = route(request.method(), request.uri().path())?;
    match &route {
        Route::Page => return Ok(page(dashboard::PAGE, "text/html; charset=utf-8", dashboard::PAGE_POLICY)),
        Route::Asset(name) => return Ok(dashboard::asset(name)),
        Route::Login => return login(server, request, by).await.map_err(|r| (r, "")),
        Route::Logout => {
            server.sessions.close(request.headers().get(header::COOKIE).map(|v| v.as_bytes()));
            let mut response = json(StatusCode::OK, &json!({"status": "logged out"}));
            set_cookie(&mut response, &session::clear_cookie());
            return Ok(response);
        }
        _ => {}
    }
    let Some(needed) = route.role() else {
        return Ok(json(StatusCode::OK, &json!({"status": "ok"})));
    };
    let (principal, session) = caller(server, &request).ok_or_else(|| {
        let message = "this needs Authorization: Bearer TOKEN with a token of the server's tokens file, or a session";
        (refuse(StatusCode::UNAUTHORIZED, "unauthorized", message), "")
    })?;
    *by = Some(principal.actor());
    // A browser sends its cookie with any request, also one another site makes it send: a state-changing request
    // of a session must prove it comes from the dashboard.
    if request.method() == Method::POST
        && let Some(session) = &session
        && !session.csrf_matches(request.headers().get("x-csrf-token").map(|v| v.as_bytes()))
    {
        let message = "a session's POST needs its X-CSRF-Token (GET /api/v1/session gives it)";
        return Err((refuse(StatusCode::FORBIDDEN, "csrf", message), ""));
    }
    if principal.role < needed {
        let message =
            format!("{} has the role {}; this needs {}", principal.actor(), principal.role.as_str(), needed.as_str());
        return Err((refuse(StatusCode::FORBIDDEN, "forbidden", message), ""));
    }
    if let Some(name) = route.guard()
        && !server.controller.config().guard_names().any(|known| known == name)
    {
        return Err((refuse(StatusCode::NOT_FOUND, "no-such-guard", format!("no guard named {name:?}")), ""));
    }
    let body = if request.method() == Method::POST { Some(body(request).await.map_err(|r| (r, ""))?) } else { None };
    let answer = match route {
        Route::Healthz | Route::Page | Route::Asset(_) | Route::Login | Route::Logout => unreachable_route(),
        Route::Session => Ok(json(StatusCode::OK, &session_json(&principal, session.as_ref()))),
        Route::Report(name) => report(server, &name).await,
        Route::Metrics => Ok(text(server.registry.prometheus())),
        Route::Guards => guards(server).await,
        Route::Guard(name) => guard(server, &name).await,
        Route::Check(name) => check(server, &name, &principal).await,
        Route::Pull(name) => pull(server, &name, &principal, body.as_deref().unwrap_or_default()).await,
        Route::Approve(name) => {
            answer_approval(server, &name, true, &principal, body.as_deref().unwrap_or_default()).await
        }
        Route::Reject(name) => {
            answer_approval(server, &name, false, &principal, body.as_deref().unwrap_or_default()).await
        }
    };
    answer.map_err(|r| (r, ""))
}

fn unreachable_route() -> Result<Response<Full<Bytes>>, Refusal> {
    Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no handler"))
}

/// Who the request comes from: a bearer token, else the session its cookie names.
fn caller(server: &Server, request: &Request<Incoming>) -> Option<(Principal, Option<Session>)> {
    let authorization = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if let Some(principal) = server.tokens.authenticate(authorization) {
        return Some((principal, None));
    }
    let session = server.sessions.find(request.headers().get(header::COOKIE).map(|v| v.as_bytes()))?;
    Some((session.principal.clone(), Some(session)))
}

fn session_json(principal: &Principal, session: Option<&Session>) -> Value {
    json!({"name": principal.name, "role": principal.role.as_str(), "csrf": session.map(|s| s.csrf.as_str())})
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    token: String,
}

/// `POST /login` with `{"token"}`: a session for the token's holder — the cookie, and `{"name", "role", "csrf"}`.
async fn login(
    server: &Server,
    request: Request<Incoming>,
    by: &mut Option<String>,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let secure =
        request.headers().get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    let body = body(request).await?;
    let asked: LoginBody = serde_json::from_slice(&body).map_err(|e| {
        refuse(StatusCode::BAD_REQUEST, "bad-request", format!("the body must be {{\"token\": TEXT}}: {e}"))
    })?;
    let bearer = format!("Bearer {}", asked.token);
    let principal = server
        .tokens
        .authenticate(Some(bearer.as_bytes()))
        .ok_or_else(|| refuse(StatusCode::UNAUTHORIZED, "unauthorized", "not a token of the server's tokens file"))?;
    *by = Some(principal.actor());
    let (id, session) = server
        .sessions
        .open(principal.clone())
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("cannot start a session: {e}")))?;
    let mut response = json(StatusCode::OK, &session_json(&principal, Some(&session)));
    set_cookie(&mut response, &session::set_cookie(&id, secure));
    Ok(response)
}

fn set_cookie(response: &mut Response<Full<Bytes>>, value: &str) {
    if let Ok(value) = header::HeaderValue::from_str(value) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
}

/// `GET /guards/{name}/report`: the report's page (`ripcord report`) of one guard, charts included.
async fn report(server: &Server, name: &str) -> Result<Response<Full<Bytes>>, Refusal> {
    let log = read_log(server).await?;
    let records: Vec<_> = log.records.into_iter().filter(|r| r.guard == name).collect();
    let html = ripcord::record::report::render(&records, &format!("guard {name}"), 50);
    Ok(page(html, "text/html; charset=utf-8", dashboard::REPORT_POLICY))
}

/// A page, with the Content-Security-Policy `policy` and no framing by other sites.
fn page(body: impl Into<String>, content_type: &'static str, policy: &'static str) -> Response<Full<Bytes>> {
    let mut response = respond(StatusCode::OK, content_type, body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(policy));
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    response
}

/// A POST's body: at most [`MAX_BODY`] bytes within [`READ_TIMEOUT`]; JSON when there is one.
async fn body(request: Request<Incoming>) -> Result<Bytes, Refusal> {
    let too_large =
        || refuse(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", format!("a body takes at most {MAX_BODY} bytes"));
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let collected = tokio::time::timeout(READ_TIMEOUT, Limited::new(request.into_body(), MAX_BODY).collect()).await;
    let bytes = match collected {
        Err(_) => {
            return Err(refuse(StatusCode::REQUEST_TIMEOUT, "request-timeout", "the body did not arrive in time"));
        }
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Ok(Err(error)) => {
            return Err(refuse(StatusCode::BAD_REQUEST, "bad-request", format!("reading the body: {error}")));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let json_type = content_type.as_deref().is_some_and(|t| {
        t.split(';').next().is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    });
    if !bytes.is_empty() && !json_type {
        let message = "a body must be JSON, sent with Content-Type: application/json";
        return Err(refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", message));
    }
    Ok(bytes)
}

/// `GET /api/v1/guards`: `ripcord status --json`'s object, read at most [`SNAPSHOT_TTL`] ago.
async fn guards(server: &Server) -> Result<Response<Full<Bytes>>, Refusal> {
    let mut cached = server.snapshot.lock().await;
    if let Some((at, value)) = cached.as_ref()
        && at.elapsed() < SNAPSHOT_TTL
    {
        return Ok(json(StatusCode::OK, value));
    }
    let log = read_log(server).await?;
    let value = Arc::new(Snapshot::read(server.controller.config(), &log).await.json());
    *cached = Some((Instant::now(), value.clone()));
    Ok(json(StatusCode::OK, &value))
}

/// `GET /api/v1/guards/{name}`: the guard's latest decision record (verdict, reason, every policy's checks, the
/// evidence); `verdict` null before its first.
async fn guard(server: &Server, name: &str) -> Result<Response<Full<Bytes>>, Refusal> {
    let log = read_log(server).await?;
    let last = log.records.into_iter().rev().find(|r| r.guard == name && r.record == Kind::Decision);
    let value = match last {
        Some(record) => serde_json::to_value(record).unwrap_or_default(),
        None => json!({"guard": name, "verdict": null, "reason": "no decision recorded yet"}),
    };
    Ok(json(StatusCode::OK, &value))
}

async fn read_log(server: &Server) -> Result<ripcord::record::audit::AuditLog, Refusal> {
    let path = server.controller.audit_path().to_path_buf();
    let read = tokio::task::spawn_blocking(move || Audit::load(&path)).await;
    match read {
        Ok(Ok(log)) => Ok(log),
        Ok(Err(error)) => {
            Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "audit-log", format!("reading the audit log: {error}")))
        }
        Err(error) => Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string())),
    }
}

/// `POST /api/v1/guards/{name}/check`: one cycle of the guard now (actor `hook`, by the caller); the answer is
/// `check --json`'s object.
async fn check(server: &Server, name: &str, principal: &Principal) -> Result<Response<Full<Bytes>>, Refusal> {
    let reports = {
        let _acting = server.acting.lock().await;
        let started = Instant::now();
        let guards = [name.to_string()];
        let reports = server.controller.check_requested(&guards, Actor::Hook, Some(principal.actor())).await;
        record(server, &reports, started).await;
        reports
    };
    Ok(json(StatusCode::OK, &summary(&reports, exit_code(&reports))))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PullBody {
    to: Option<String>,
    reason: String,
}

/// `POST /api/v1/guards/{name}/pull` with `{"to"?, "reason"}`: a manual rollback as `ripcord pull` makes it,
/// the records naming the caller and their reason. 200 when the target serves (or, in dry-run, would);
/// 409 `pull-failed` with the result when it could not be made.
async fn pull(
    server: &Server,
    name: &str,
    principal: &Principal,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, Refusal> {
    let bad = |message: String| refuse(StatusCode::BAD_REQUEST, "bad-request", message);
    let asked: PullBody = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body must be {{\"reason\": TEXT, \"to\"?: REVISION}}: {e}")))?;
    let requester = Requester { by: principal.actor(), reason: Some(reason(&asked.reason)?) };
    let report = {
        let _acting = server.acting.lock().await;
        let started = Instant::now();
        let report = server.controller.pull(name, asked.to.as_deref(), &requester).await;
        record(server, std::slice::from_ref(&report), started).await;
        report
    };
    let reports = [report];
    let mut value = summary(&reports, exit_code(&reports));
    if let Effect::Failed { error } | Effect::Aborted { reason: error } = &reports[0].effect {
        value["error"] = json!({"code": "pull-failed", "message": error});
        return Ok(json(StatusCode::CONFLICT, &value));
    }
    Ok(json(StatusCode::OK, &value))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

/// `POST /api/v1/guards/{name}/approve` or `/reject` with `{"reason"}`: the approver's answer to the guard's
/// pending rollback (approved: made now, as a pull; rejected: the candidate's rollbacks are not acted on). 409
/// `nothing-pending` when no rollback of the guard awaits approval, `approval-failed` when the answer could not be
/// carried out.
async fn answer_approval(
    server: &Server,
    name: &str,
    approve: bool,
    principal: &Principal,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, Refusal> {
    let asked: ReasonBody = serde_json::from_slice(body).map_err(|e| {
        refuse(StatusCode::BAD_REQUEST, "bad-request", format!("the body must be {{\"reason\": TEXT}}: {e}"))
    })?;
    let requester = Requester { by: principal.actor(), reason: Some(reason(&asked.reason)?) };
    let report = {
        let _acting = server.acting.lock().await;
        let started = Instant::now();
        let report = server.controller.answer_approval(name, approve, &requester).await;
        record(server, std::slice::from_ref(&report), started).await;
        report
    };
    let reports = [report];
    let mut value = summary(&reports, exit_code(&reports));
    if let Effect::Failed { error } | Effect::Aborted { reason: error } = &reports[0].effect {
        let code = if error.starts_with("no rollback of") { "nothing-pending" } else { "approval-failed" };
        value["error"] = json!({"code": code, "message": error});
        return Ok(json(StatusCode::CONFLICT, &value));
    }
    Ok(json(StatusCode::OK, &value))
}

/// A reason given for an action, trimmed: 1 to [`MAX_REASON`] characters.
fn reason(given: &str) -> Result<String, Refusal> {
    let reason = given.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        let message = format!("reason: say why in 1 to {MAX_REASON} characters");
        return Err(refuse(StatusCode::BAD_REQUEST, "bad-request", message));
    }
    Ok(reason.to_string())
}

/// An action's results in the metrics, and the guards' answer read afresh next time.
async fn record(server: &Server, reports: &[GuardResult], started: Instant) {
    let sample = CycleSample::of(reports, started.elapsed().as_millis() as u64);
    sample.log();
    server.registry.record(&sample, server.controller.clock().now_ms().await.unwrap_or(0));
    *server.snapshot.lock().await = None;
}

fn json(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    respond(status, "application/json", format!("{value}\n"))
}

fn text(body: String) -> Response<Full<Bytes>> {
    respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", body)
}

pub(super) fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_matched_by_segment_and_names_decoded() {
        assert_eq!(route(&Method::GET, "/healthz").ok(), Some(Route::Healthz));
        assert_eq!(
            route(&Method::GET, "/api/v1/guards/checkout%20api").ok(),
            Some(Route::Guard("checkout api".into()))
        );
        assert_eq!(route(&Method::POST, "/api/v1/guards/a%2Fb/pull").ok(), Some(Route::Pull("a/b".into())));
        assert_eq!(route(&Method::GET, "/").ok(), Some(Route::Page));
        assert_eq!(route(&Method::GET, "/guards/a%20b/report").ok(), Some(Route::Report("a b".into())));
        for missing in [
            "/index.html",
            "/dashboard.js/",
            "/api/v1/guards/",
            "/api/v1/guards//check",
            "/api/v1/guards/a/../b",
            "/healthz/",
            "/api/v1/guards/%zz",
            "/api/v1/guards/%ff",
        ] {
            let refused = route(&Method::GET, missing).err().map(|(r, _)| r.status);
            assert_eq!(refused, Some(StatusCode::NOT_FOUND), "{missing}");
        }
        let (refusal, allowed) =
            route(&Method::GET, "/api/v1/guards/a/pull").err().unwrap_or_else(|| panic!("allowed"));
        assert_eq!((refusal.status, allowed), (StatusCode::METHOD_NOT_ALLOWED, "POST"));
        assert!(route(&Method::DELETE, "/api/v1/guards").is_err());
    }
}
