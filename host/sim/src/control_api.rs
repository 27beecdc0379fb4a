//! The simulator's own control API under `/_sim/`, for tests, the demo and `ripcord`'s simulator clock: read and
//! advance the virtual clock, read the request and API-call logs, inject API faults (errors, answers held back, rate limits) and external alias changes.

use crate::http::{Request, Response};
use crate::simulator::{ApiError, Interference, RateLimit, Simulator};
use serde_json::{Value, json};

pub(crate) fn handle(sim: &Simulator, request: &Request) -> Option<Response> {
    let path = request.path();
    let ["_sim", rest @ ..] = path.as_slice() else { return None };
    let result = match (request.method.as_str(), rest) {
        ("GET", ["clock"]) => Ok(clock(sim)),
        ("POST", ["advance"]) => body(request).and_then(|b| {
            if let Some(to_ms) = b.get("to_ms").and_then(Value::as_i64) {
                sim.advance_to(to_ms);
                return Ok(clock(sim));
            }
            let ms = b
                .get("ms")
                .and_then(Value::as_i64)
                .filter(|ms| *ms >= 0)
                .ok_or("`ms` must be a non-negative integer (or `to_ms`, a time to advance to)")?;
            sim.advance(ms);
            Ok(clock(sim))
        }),
        ("GET", ["api-log"]) => Ok(json!(sim.api_log())),
        ("GET", ["requests"]) => requests(sim, request),
        ("GET", ["functions", name]) => {
            sim.function(name).map(|f| function(&f)).ok_or_else(|| format!("no function {name}"))
        }
        ("POST", ["faults"]) => body(request).and_then(|b| {
            let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
            if b.get("published").and_then(Value::as_bool) == Some(true) {
                for limit in RateLimit::published() {
                    sim.limit_rate(limit);
                }
                return Ok(json!({"limited": "published"}));
            }
            let operation = text("operation").ok_or("`operation` is required (or `published: true`)")?;
            let count = b.get("count").and_then(Value::as_u64).unwrap_or(1) as u32;
            if let Some(ms) = b.get("stall_ms").and_then(Value::as_u64) {
                sim.inject_api_stall(&operation, count, ms);
                return Ok(json!({"stalled": operation}));
            }
            let status = b.get("status").and_then(Value::as_u64).unwrap_or(500) as u16;
            let code = text("code").unwrap_or_else(|| "ServiceException".into());
            let message = text("message").unwrap_or_else(|| "injected by the simulator".into());
            sim.inject_api_fault(&operation, count, ApiError::new(status, &code, message));
            Ok(json!({"injected": operation}))
        }),
        ("POST", ["rate-limits"]) => body(request).and_then(|b| {
            let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
            let operation = text("operation").ok_or("`operation` is required")?;
            let per_second =
                b.get("per_second").and_then(Value::as_f64).ok_or("`per_second` is required (0 removes)")?;
            let code = text("code").unwrap_or_else(|| "TooManyRequestsException".into());
            let message = text("message").unwrap_or_else(|| "Rate exceeded".into());
            sim.limit_rate(RateLimit::new(&operation, per_second, ApiError::new(429, &code, message)));
            Ok(json!({"limited": operation, "per_second": per_second}))
        }),
        ("POST", ["interfere"]) => body(request).and_then(|b| {
            let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
            let routing = match (
                b.get("routing_version").and_then(Value::as_u64),
                b.get("routing_weight").and_then(Value::as_f64),
            ) {
                (Some(v), Some(w)) => Some((v as u32, w)),
                _ => None,
            };
            sim.interfere(Interference {
                operation: text("operation").ok_or("`operation` is required")?,
                function: text("function").ok_or("`function` is required")?,
                alias: text("alias").ok_or("`alias` is required")?,
                version: b.get("version").and_then(Value::as_u64).ok_or("`version` is required")? as u32,
                routing,
            });
            Ok(json!({"scheduled": true}))
        }),
        _ => Err(format!("no simulator route {} /_sim/{}", request.method, rest.join("/"))),
    };
    Some(match result {
        Ok(value) => Response::json(200, &value),
        Err(message) => Response::json(400, &json!({"error": message})),
    })
}

fn body(request: &Request) -> Result<Value, String> {
    serde_json::from_slice(&request.body).map_err(|e| format!("invalid JSON body: {e}"))
}

fn clock(sim: &Simulator) -> Value {
    let now_ms = sim.now_ms();
    json!({"now_ms": now_ms, "now": crate::format_time(now_ms)})
}

fn requests(sim: &Simulator, request: &Request) -> Result<Value, String> {
    let function = request.query("function").ok_or("`function` is required")?;
    let number = |k: &str, default: i64| request.query(k).and_then(|v| v.parse().ok()).unwrap_or(default);
    let records = sim.requests(function, number("from_ms", i64::MIN), number("until_ms", i64::MAX));
    let count = |f: &dyn Fn(&crate::lambda::RequestRecord) -> bool| records.iter().filter(|r| f(r)).count();
    Ok(json!({
        "requests": records.len(),
        "cold_starts": count(&|r| r.cold_start),
        "errors": count(&|r| r.error),
        "throttles": count(&|r| r.throttled),
    }))
}

fn function(f: &crate::lambda::Function) -> Value {
    json!({
        "name": f.name,
        "aliases": f.aliases.values().map(|a| json!({
            "name": a.name, "version": a.version, "revision_id": a.revision_id,
            "routing": a.routing.map(|(v, w)| json!({"version": v, "weight": w})),
        })).collect::<Vec<_>>(),
        "tags": f.tags,
        "provisioned": f.provisioned.iter().map(|(v, c)| json!({
            "version": v, "requested": c.requested, "status": c.status.as_str(),
        })).collect::<Vec<_>>(),
        "instances": f.versions.keys().map(|v| json!({"version": v, "count": f.instance_count(*v)})).collect::<Vec<_>>(),
    })
}
