//! The Lambda Runtime API (`/2018-06-01/runtime/...`), the interface a Lambda custom runtime polls for events: so
//! `ripcord function` — ripcord deployed as a scheduled Lambda or a CodeDeploy hook — runs against the simulator
//! exactly as it runs inside Lambda, with `AWS_LAMBDA_RUNTIME_API` pointing here. Tests queue events with
//! [`Simulator::invoke_event`] and read what the function answered with [`Simulator::invocation_result`].

use crate::Simulator;
use crate::http::{Request, Response};
use serde_json::{Value, json};
use std::collections::VecDeque;

/// Time a function is given per event unless set otherwise: Lambda's largest timeout.
const FUNCTION_TIMEOUT_MS: u64 = 15 * 60_000;

/// Events waiting for the function, and what it answered.
#[derive(Debug, Default)]
pub(crate) struct Invocations {
    queued: VecDeque<(String, Vec<u8>)>,
    results: Vec<InvocationResult>,
    init_error: Option<Value>,
    next_id: u64,
    /// The function's timeout, announced with each event as `Lambda-Runtime-Deadline-Ms` (real time).
    timeout_ms: Option<u64>,
}

/// What the function answered to one event.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationResult {
    pub request_id: String,
    /// `true` for a response, `false` for an invocation error.
    pub ok: bool,
    pub body: Value,
}

impl Simulator {
    /// Queues `event` for the function polling the Runtime API; returns its request id.
    pub fn invoke_event(&self, event: &Value) -> String {
        let mut state = self.lock();
        let invocations = &mut state.invocations;
        invocations.next_id += 1;
        let id = format!("sim-request-{:04}", invocations.next_id);
        invocations.queued.push_back((id.clone(), serde_json::to_vec(event).unwrap_or_default()));
        id
    }

    /// The function's answer to request `id`, once it has answered.
    pub fn invocation_result(&self, id: &str) -> Option<InvocationResult> {
        self.lock().invocations.results.iter().find(|r| r.request_id == id).cloned()
    }

    /// Sets the function's timeout (real milliseconds per event; default 15 minutes).
    pub fn set_function_timeout(&self, ms: u64) {
        self.lock().invocations.timeout_ms = Some(ms);
    }

    /// The error the function reported while starting, if it did.
    pub fn init_error(&self) -> Option<Value> {
        self.lock().invocations.init_error.clone()
    }
}

pub(crate) fn handle(sim: &Simulator, request: &Request) -> Option<Response> {
    let path = request.path();
    let ["2018-06-01", "runtime", rest @ ..] = path.as_slice() else { return None };
    let mut state = sim.lock();
    let invocations = &mut state.invocations;
    let body = || {
        serde_json::from_slice::<Value>(&request.body)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&request.body)}))
    };
    Some(match (request.method.as_str(), rest) {
        ("GET", ["invocation", "next"]) => match invocations.queued.pop_front() {
            Some((id, event)) => {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64)
                    + invocations.timeout_ms.unwrap_or(FUNCTION_TIMEOUT_MS);
                let mut response = Response::empty(200);
                response.body = event;
                response.headers = vec![
                    ("content-type", "application/json".into()),
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:ripcord".into(),
                    ),
                    ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".into()),
                ];
                response
            }
            // Lambda holds `next` open until an event arrives.
            None => Response { long_poll: true, ..Response::empty(200) },
        },
        ("POST", ["invocation", id, outcome @ ("response" | "error")]) => {
            let ok = *outcome == "response";
            invocations.results.push(InvocationResult { request_id: id.to_string(), ok, body: body() });
            Response::json(202, &json!({"status": "OK"}))
        }
        ("POST", ["init", "error"]) => {
            invocations.init_error = Some(body());
            Response::json(202, &json!({"status": "OK"}))
        }
        _ => Response::json(404, &json!({"errorType": "InvalidRequest", "errorMessage": "unknown runtime route"})),
    })
}
