//! Cloud Run Admin API v2 over REST JSON as its clients call it: enums as names, or as integers when the client asks
//! with `$alt=json;enum-encoding=int` (google-cloud-rust and the Python GAPIC clients do); Get and List of services
//! and revisions (`-` for every location or service), UpdateService with `updateMask` and `validateOnly`, GET of
//! long-running operations that report `done: false` a configurable number of times, a stale `etag` refused with
//! ABORTED (409, AIP-154), and tag URLs on loopback that route requests to the tagged revision.

use crate::cloudrun::{RunRevision, RunService, TrafficTarget};
use crate::http::{Request, Response, google_enum};
use crate::simulator::{ApiError, Simulator, State};
use serde_json::{Value, json};

const SERVICE_TYPE: &str = "type.googleapis.com/google.cloud.run.v2.Service";
/// google.cloud.run.v2.TrafficTargetAllocationType
const LATEST: i64 = 1;
const REVISION: i64 = 2;

pub(crate) fn handle(sim: &Simulator, request: &Request) -> Option<Response> {
    let path = request.path();
    let mut state = sim.lock();
    let numbers = request.enums_as_numbers();
    // Every read answers an injected fault or the project's read quota first (UpdateService checks its own, after
    // an external change scheduled before it).
    let read = match (request.method.as_str(), path.as_slice()) {
        ("GET", ["v2", "projects", _, "locations", _, "services"]) => Some("ListServices"),
        ("GET", ["v2", "projects", _, "locations", _, "services", _]) => Some("GetService"),
        ("GET", ["v2", "projects", _, "locations", _, "services", _, "revisions"]) => Some("ListRevisions"),
        ("GET", ["v2", "projects", _, "locations", _, "services", _, "revisions", _]) => Some("GetRevision"),
        ("GET", ["v2", "projects", _, "locations", _, "operations", _]) => Some("GetOperation"),
        _ => None,
    };
    let region = path.get(4).copied().unwrap_or_default();
    if let Some(operation) = read
        && let Some(error) = state.take_api_fault_in(operation, region)
    {
        let service = path.get(6).copied().unwrap_or_default().to_string();
        return state.answer(operation, &service, String::new(), error_response(&error));
    }
    let (operation, result) = match (request.method.as_str(), path.as_slice()) {
        ("GET", ["v2", "projects", p, "locations", l, "services"]) => {
            ("ListServices", list_services(&state, p, l, request, numbers))
        }
        ("GET", ["v2", "projects", p, "locations", l, "services", s]) => {
            ("GetService", find(&state, p, l, s).map(|svc| Response::json(200, &service_json(&state, svc, numbers))))
        }
        ("PATCH", ["v2", "projects", p, "locations", l, "services", s]) => {
            ("UpdateService", update(&mut state, p, l, s, request))
        }
        ("GET", ["v2", "projects", p, "locations", l, "services", s, "revisions"]) => {
            ("ListRevisions", revisions(&state, p, l, s, request))
        }
        ("GET", ["v2", "projects", p, "locations", l, "services", s, "revisions", r]) => {
            ("GetRevision", get_revision(&state, p, l, s, r, numbers))
        }
        ("GET", ["v2", "projects", p, "locations", l, "operations", id]) => {
            let name = format!("projects/{p}/locations/{l}/operations/{id}");
            ("GetOperation", operation(&mut state, &name, numbers))
        }
        (_, ["_run", "projects", p, "locations", l, "services", s, "tags", tag]) => {
            ("TagRequest", tag_request(&mut state, p, l, s, tag))
        }
        _ => return None,
    };
    let response = result.unwrap_or_else(|e| error_response(&e));
    let service = path.get(6).copied().unwrap_or_default().to_string();
    let detail = match operation {
        "UpdateService" => format!(
            "updateMask={} {}",
            request.query("updateMask").unwrap_or(""),
            String::from_utf8_lossy(&request.body)
        ),
        "TagRequest" => path.get(8).copied().unwrap_or_default().to_string(),
        _ => String::new(),
    };
    state.answer(operation, &service, detail, response)
}

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

pub(crate) fn error_response(error: &ApiError) -> Response {
    let status = if error.code.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        error.code.clone()
    } else {
        status_name(error.status).to_string()
    };
    Response::json(error.status, &json!({"error": {"code": error.status, "message": error.message, "status": status}}))
}

fn find<'a>(state: &'a State, p: &str, l: &str, s: &str) -> Result<&'a RunService, ApiError> {
    state.services.get(&format!("projects/{p}/locations/{l}/services/{s}")).ok_or_else(|| {
        ApiError::new(404, "NOT_FOUND", format!("Resource 'projects/{p}/locations/{l}/services/{s}' was not found"))
    })
}

fn endpoint(state: &State) -> String {
    state.endpoint.clone().unwrap_or_else(|| "http://127.0.0.1".into())
}

fn traffic_json(service: &RunService, target: &TrafficTarget, uri: Option<&str>, numbers: bool) -> Value {
    let kind = match target.latest {
        true => google_enum(numbers, LATEST, "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"),
        false => google_enum(numbers, REVISION, "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"),
    };
    let mut out = json!({"type": kind, "percent": target.percent});
    if !target.latest {
        out["revision"] = json!(target.revision);
    }
    if !target.tag.is_empty() {
        out["tag"] = json!(target.tag);
        if let Some(base) = uri {
            out["uri"] = json!(format!("{base}/_run/{}/tags/{}", service.full_name(), target.tag));
        }
    }
    out
}

/// google.cloud.run.v2.Condition.State
fn condition_state(numbers: bool, pending: bool) -> Value {
    match pending {
        true => google_enum(numbers, 2, "CONDITION_RECONCILING"),
        false => google_enum(numbers, 4, "CONDITION_SUCCEEDED"),
    }
}

pub(crate) fn service_json(state: &State, s: &RunService, numbers: bool) -> Value {
    let base = endpoint(state);
    let revision_name = |r: &str| format!("{}/revisions/{r}", s.full_name());
    let latest = s.latest_revision().map(revision_name).unwrap_or_default();
    json!({
        "name": s.full_name(),
        "uid": s.uid,
        "generation": s.generation.to_string(),
        "createTime": crate::format_time(s.created_ms),
        "annotations": s.annotations,
        "template": {"maxInstanceRequestConcurrency": 80, "containers": [{"image": format!("gcr.io/{}/{}", s.project, s.name)}]},
        "traffic": s.traffic.iter().map(|t| traffic_json(s, t, None, numbers)).collect::<Vec<_>>(),
        "scaling": {"minInstanceCount": s.min_instances},
        "observedGeneration": s.observed_generation.to_string(),
        "latestReadyRevision": latest,
        "latestCreatedRevision": latest,
        "trafficStatuses": s.statuses.iter().map(|t| traffic_json(s, t, Some(&base), numbers)).collect::<Vec<_>>(),
        "uri": format!("{base}/_run/{}", s.full_name()),
        "reconciling": s.pending.is_some(),
        "etag": s.etag,
        "terminalCondition": {"type": "Ready", "state": condition_state(numbers, s.pending.is_some())},
    })
}

fn revision_json(s: &RunService, r: &RunRevision, numbers: bool) -> Value {
    json!({
        "name": format!("{}/revisions/{}", s.full_name(), r.name),
        "uid": format!("{}-{}", s.uid, r.name),
        "generation": "1",
        "createTime": crate::format_time(r.created_ms),
        "service": s.full_name(),
        "scaling": {"minInstanceCount": r.min_instances},
        "maxInstanceRequestConcurrency": r.concurrency,
        "containers": [{"image": format!("gcr.io/{}/{}@{}", s.project, s.name, r.name)}],
        "conditions": [{"type": "Ready", "state": condition_state(numbers, false)}],
        "observedGeneration": "1",
    })
}

/// The services a parent names: one location, or every location of the project with `-`.
fn services_of<'a>(state: &'a State, p: &'a str, l: &'a str) -> impl Iterator<Item = &'a RunService> + 'a {
    state.services.values().filter(move |svc| svc.project == p && (l == "-" || svc.location == l))
}

fn list_services(state: &State, p: &str, l: &str, request: &Request, numbers: bool) -> Result<Response, ApiError> {
    let services: Vec<Value> = services_of(state, p, l).map(|svc| service_json(state, svc, numbers)).collect();
    Ok(Response::json(200, &page(services, "services", request)?))
}

/// ListRevisions of a service, or (with `-` for the location or the service) of every service the parent covers.
fn revisions(state: &State, p: &str, l: &str, s: &str, request: &Request) -> Result<Response, ApiError> {
    let numbers = request.enums_as_numbers();
    let services: Vec<&RunService> = if l == "-" || s == "-" {
        services_of(state, p, l).filter(|svc| s == "-" || svc.name == s).collect()
    } else {
        vec![find(state, p, l, s)?]
    };
    let mut all: Vec<(&RunService, &RunRevision)> =
        services.iter().flat_map(|svc| svc.revisions.values().map(move |r| (*svc, r))).collect();
    all.sort_by_key(|(_, r)| std::cmp::Reverse(r.created_ms));
    let revisions = all.into_iter().map(|(svc, r)| revision_json(svc, r, numbers)).collect();
    Ok(Response::json(200, &page(revisions, "revisions", request)?))
}

fn get_revision(state: &State, p: &str, l: &str, s: &str, r: &str, numbers: bool) -> Result<Response, ApiError> {
    let service = find(state, p, l, s)?;
    let revision = service.revisions.get(r).ok_or_else(|| {
        let name = format!("{}/revisions/{r}", service.full_name());
        ApiError::new(404, "NOT_FOUND", format!("Resource '{name}' was not found"))
    })?;
    Ok(Response::json(200, &revision_json(service, revision, numbers)))
}

/// One page of a List method's `items` under `field`: `pageSize` (default 100) from `pageToken` on.
fn page(items: Vec<Value>, field: &str, request: &Request) -> Result<Value, ApiError> {
    let size = request.query("pageSize").and_then(|n| n.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(100);
    let start = match request.query("pageToken").filter(|t| !t.is_empty()) {
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| ApiError::new(400, "INVALID_ARGUMENT", format!("Invalid page token {token:?}")))?,
        None => 0,
    };
    let total = items.len();
    let mut out = json!({ field: items.into_iter().skip(start).take(size).collect::<Vec<_>>() });
    if start.saturating_add(size) < total {
        out["nextPageToken"] = json!((start + size).to_string());
    }
    Ok(out)
}

fn parse_traffic(service: &RunService, value: &Value) -> Result<Vec<TrafficTarget>, ApiError> {
    let invalid = |m: String| ApiError::new(400, "INVALID_ARGUMENT", m);
    let entries = value.as_array().ok_or_else(|| invalid("traffic must be a list".into()))?;
    let mut targets = Vec::new();
    for entry in entries {
        let kind = match entry.get("type") {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) if s == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST" => LATEST,
            Some(Value::String(s)) if s == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION" => REVISION,
            _ => 0,
        };
        let revision = entry.get("revision").and_then(Value::as_str).unwrap_or_default().to_string();
        let latest = kind == LATEST || (kind == 0 && revision.is_empty());
        if !latest && !service.revisions.contains_key(&revision) {
            return Err(invalid(format!("Revision '{revision}' does not exist or is deleted.")));
        }
        let percent = entry.get("percent").and_then(Value::as_u64).unwrap_or(0) as u32;
        let tag = entry.get("tag").and_then(Value::as_str).unwrap_or_default().to_string();
        targets.push(TrafficTarget { latest, revision, percent, tag });
    }
    let total: u32 = targets.iter().map(|t| t.percent).sum();
    if total != 100 {
        return Err(invalid(format!("The traffic percentages must add up to 100, got {total}.")));
    }
    let mut tags: Vec<&str> = targets.iter().map(|t| t.tag.as_str()).filter(|t| !t.is_empty()).collect();
    tags.sort_unstable();
    if tags.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid("Traffic tags must be unique.".into()));
    }
    Ok(targets)
}

/// The fields of an UpdateService body that `updateMask` lets through, applied to `service`.
fn apply_changes(service: &mut RunService, body: &Value, mask: &[String]) -> Result<(), ApiError> {
    let wants = |field: &str| mask.is_empty() || mask.iter().any(|m| m == field || m.starts_with(&format!("{field}.")));
    if wants("traffic")
        && let Some(traffic) = body.get("traffic")
    {
        service.traffic = parse_traffic(service, traffic)?;
    }
    if wants("annotations")
        && let Some(annotations) = body.get("annotations").and_then(Value::as_object)
    {
        service.annotations =
            annotations.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
    }
    if wants("scaling")
        && let Some(min) = body.pointer("/scaling/minInstanceCount").and_then(Value::as_u64)
    {
        service.min_instances = min as u32;
    }
    Ok(())
}

/// UpdateService: checks the etag, applies the masked fields and starts a reconciliation, answered as a
/// long-running operation. With `validateOnly=true` it checks and answers the service as it would become, and
/// changes nothing (no generation, no etag, no traffic).
fn update(state: &mut State, p: &str, l: &str, s: &str, request: &Request) -> Result<Response, ApiError> {
    state.apply_service_interference("UpdateService");
    if let Some(error) = state.take_api_fault_in("UpdateService", l) {
        return Err(error);
    }
    let numbers = request.enums_as_numbers();
    let validate_only = request.query("validateOnly").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, "INVALID_ARGUMENT", format!("Invalid JSON payload: {e}")))?;
    let full = format!("projects/{p}/locations/{l}/services/{s}");
    let mask: Vec<String> =
        request.query("updateMask").map(|m| m.split(',').map(|p| p.trim().to_string()).collect()).unwrap_or_default();
    let current = state
        .services
        .get(&full)
        .ok_or_else(|| ApiError::new(404, "NOT_FOUND", format!("Resource '{full}' was not found")))?;
    if let Some(sent) = body.get("etag").and_then(Value::as_str).filter(|e| !e.is_empty())
        && sent != current.etag
    {
        return Err(ApiError::new(
            409,
            "ABORTED",
            format!("The etag {sent} does not match the current etag {} of {full}.", current.etag),
        ));
    }
    let mut changed = current.clone();
    apply_changes(&mut changed, &body, &mask)?;
    if validate_only {
        let value = service_json(state, &changed, numbers);
        let name = format!("projects/{p}/locations/{l}/operations/validate-only");
        return Ok(Response::json(200, &operation_json(&name, &value, Some(Ok(())))));
    }
    let now = state.now_ms;
    let etag = state.next_etag();
    let operation = format!("projects/{p}/locations/{l}/operations/{}", etag.trim_matches('"'));
    let (polls, reconcile_ms) = (state.settings.operation_polls, state.settings.reconcile_ms);
    let failure = match state.failing_operations.first_mut() {
        Some((count, message)) if *count > 0 => {
            *count -= 1;
            Some(message.clone())
        }
        _ => None,
    };
    let mut finished = None;
    let service = state
        .services
        .get_mut(&full)
        .ok_or_else(|| ApiError::new(404, "NOT_FOUND", format!("Resource '{full}' was not found")))?;
    // One reconciliation at a time: a new change first completes the one in flight.
    if let Some(pending) = service.pending.clone()
        && let Some(outcome) = service.settle(now, true)
    {
        finished = Some((pending.operation, outcome.map(|()| full.clone())));
    }
    let previous = service.statuses.clone();
    apply_changes(service, &body, &mask)?;
    service.generation += 1;
    service.etag = etag;
    service.pending = Some(crate::cloudrun::Pending {
        operation: operation.clone(),
        polls_left: polls,
        due_ms: now + reconcile_ms,
        previous,
        failure,
    });
    let snapshot = service.clone();
    if let Some((name, outcome)) = finished {
        state.finished_operations.insert(name, outcome);
    }
    let service_value = service_json(state, &snapshot, numbers);
    Ok(Response::json(200, &operation_json(&operation, &service_value, None)))
}

fn operation_json(name: &str, service: &Value, outcome: Option<Result<(), String>>) -> Value {
    let mut metadata = service.clone();
    metadata["@type"] = json!(SERVICE_TYPE);
    let mut out = json!({"name": name, "metadata": metadata, "done": outcome.is_some()});
    match outcome {
        Some(Ok(())) => out["response"] = metadata,
        Some(Err(message)) => out["error"] = json!({"code": 13, "message": message}),
        None => {}
    }
    out
}

fn operation(state: &mut State, name: &str, numbers: bool) -> Result<Response, ApiError> {
    let now = state.now_ms;
    let pending = state.services.values_mut().find(|s| s.pending.as_ref().is_some_and(|p| p.operation == name));
    if let Some(service) = pending {
        if let Some(p) = service.pending.as_mut() {
            p.polls_left = p.polls_left.saturating_sub(1);
        }
        let outcome = service.settle(now, false);
        let full = service.full_name();
        let snapshot = service.clone();
        if let Some(outcome) = &outcome {
            state.finished_operations.insert(name.to_string(), outcome.clone().map(|()| full));
        }
        let value = service_json(state, &snapshot, numbers);
        return Ok(Response::json(200, &operation_json(name, &value, outcome)));
    }
    match state.finished_operations.get(name).cloned() {
        Some(result) => {
            let service = result
                .as_ref()
                .ok()
                .and_then(|full| state.services.get(full))
                .map(|s| service_json(state, s, numbers))
                .unwrap_or(json!({}));
            Ok(Response::json(200, &operation_json(name, &service, Some(result.map(|_| ())))))
        }
        None => Err(ApiError::new(404, "NOT_FOUND", format!("Operation '{name}' was not found"))),
    }
}

fn tag_request(state: &mut State, p: &str, l: &str, s: &str, tag: &str) -> Result<Response, ApiError> {
    let full = format!("projects/{p}/locations/{l}/services/{s}");
    let reap = state.settings.reap_after_ms;
    let now = state.now_ms;
    let mut rng = std::mem::replace(&mut state.rng, crate::rng::Rng::new(0));
    let mut startups = Vec::new();
    let record = match state.services.get_mut(&full) {
        None => Err(ApiError::new(404, "NOT_FOUND", format!("no service {full}"))),
        Some(service) => match service.statuses.iter().find(|t| t.tag == tag).and_then(|t| service.resolve(t)) {
            None => Err(ApiError::new(404, "NOT_FOUND", format!("no tag {tag} serving on {full}"))),
            Some(revision) => Ok(service.execute(now, &revision, Some(tag), &mut rng, reap, &mut startups)),
        },
    };
    state.rng = rng;
    state.startups.extend(startups);
    let record = record?;
    let status = record.status;
    state.run_requests.push(record);
    Ok(Response::json(status, &json!({"served_by": tag})))
}
