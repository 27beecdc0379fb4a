//! Function mode: ripcord deployed as an AWS Lambda function (custom runtime, `provided.al2023`) that an
//! EventBridge schedule, a CodeDeploy lifecycle hook or a person (`aws lambda invoke`) calls. This module is the
//! two things that mode adds to the commands: reading the events Lambda delivers, and the Runtime API client that
//! fetches them and hands the answers back (`AWS_LAMBDA_RUNTIME_API`, HTTP on the function's loopback).
//!
//! The answer to every event is the same JSON as `ripcord check --json`, so a pipeline invoking the function reads
//! what a pipeline running the CLI reads.

use crate::provider::codedeploy::HookStatus;
use serde_json::Value;
use std::time::Duration;

/// What an invocation asks ripcord to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An EventBridge schedule (`"detail-type": "Scheduled Event"`): one cycle over every guard.
    Scheduled,
    /// A CodeDeploy lifecycle hook (`BeforeAllowTraffic`, `AfterAllowTraffic`): judge the configuration's guards
    /// (one hook function per application) and report the hook's status to CodeDeploy.
    DeployHook { deployment_id: String, execution_id: String },
    /// `{"action": "check", "guards": [...], "dry_run": false}`: one cycle, like `ripcord check`.
    Check { guards: Vec<String>, dry_run: bool },
    /// `{"action": "pull", "guard": "NAME", "to": "VERSION", "reason": "TEXT"}`: a manual rollback, like `ripcord
    /// pull` (the records name the actor `invoke`: the invoker's IAM identity is in CloudTrail).
    Pull { guard: String, to: Option<String>, reason: Option<String> },
    /// The platform says a deployment changed: an alias updated (CloudTrail through EventBridge), a CodeDeploy
    /// deployment's state (every guard: the event names no function), a Cloud Run service updated (Cloud Audit
    /// Logs through Eventarc). The guards watching `resources` are checked at once, their views read afresh;
    /// none listed means every guard.
    Changed { resources: Vec<String>, what: String },
}

/// An event ripcord does not understand, or a Runtime API call that failed.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("unrecognised event: {0}")]
    Event(String),
    #[error(
        "AWS_LAMBDA_RUNTIME_API is not set: `ripcord function` runs inside AWS Lambda (custom runtime), where Lambda sets it"
    )]
    NoRuntimeApi,
    #[error("Lambda Runtime API {url}: {message}")]
    LambdaRuntimeApi { url: String, message: String },
}

impl Event {
    /// Reads an invocation's payload.
    pub fn parse(payload: &[u8]) -> Result<Self, FunctionError> {
        let value: Value = serde_json::from_slice(payload)
            .map_err(|e| FunctionError::Event(format!("the payload is not JSON ({e})")))?;
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        if let (Some(deployment_id), Some(execution_id)) = (text("DeploymentId"), text("LifecycleEventHookExecutionId"))
        {
            return Ok(Self::DeployHook { deployment_id, execution_id });
        }
        if text("detail-type").as_deref() == Some("Scheduled Event") {
            return Ok(Self::Scheduled);
        }
        if let Some(changed) = changed(&value) {
            return changed;
        }
        match text("action").as_deref() {
            Some("check") => {
                let guards = match value.get("guards").filter(|g| !g.is_null()) {
                    None => Vec::new(),
                    Some(names) => names
                        .as_array()
                        .and_then(|names| names.iter().map(|n| n.as_str().map(str::to_string)).collect())
                        .ok_or_else(|| {
                            FunctionError::Event(format!("`guards` must be a list of names, got {names}"))
                        })?,
                };
                let dry_run = value.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
                Ok(Self::Check { guards, dry_run })
            }
            Some("pull") => {
                let guard = text("guard").ok_or_else(|| {
                    FunctionError::Event("`pull` needs `guard`, the name of the guard to roll back".into())
                })?;
                Ok(Self::Pull { guard, to: text("to"), reason: text("reason") })
            }
            Some(other) => Err(FunctionError::Event(format!("`action` must be \"check\" or \"pull\", got {other:?}"))),
            None => {
                let keys: Vec<&str> =
                    value.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
                Err(FunctionError::Event(format!(
                    "expected an EventBridge scheduled event, a CodeDeploy lifecycle hook or {{\"action\": \"check\" | \"pull\"}}; got keys {keys:?}"
                )))
            }
        }
    }
}

/// A platform's change event, if `value` is one: CloudTrail's record of an alias call (through EventBridge), a
/// CodeDeploy state change, or a Cloud Audit Log entry of a Cloud Run service update (as Eventarc delivers it, a
/// CloudEvent with the entry as `data`, or the entry alone).
fn changed(value: &Value) -> Option<Result<Event, FunctionError>> {
    let at = |path: &[&str]| path.iter().try_fold(value, |v, key| v.get(key)).and_then(Value::as_str);
    match at(&["detail-type"]) {
        Some("AWS API Call via CloudTrail") => {
            let name = at(&["detail", "eventName"]).unwrap_or_default();
            let function = at(&["detail", "requestParameters", "functionName"]);
            let alias = at(&["detail", "requestParameters", "name"]);
            let resource = match (function, alias) {
                (Some(function), Some(alias)) => format!("{function}:{alias}"),
                (Some(function), None) => function.to_string(),
                _ => {
                    let message = format!("a CloudTrail event of {name:?} without requestParameters.functionName");
                    return Some(Err(FunctionError::Event(message)));
                }
            };
            Some(Ok(Event::Changed { resources: vec![resource.clone()], what: format!("{name} on {resource}") }))
        }
        Some("CodeDeploy Deployment State-change Notification") => {
            let id = at(&["detail", "deploymentId"]).unwrap_or("?");
            let state = at(&["detail", "state"]).unwrap_or("?");
            Some(Ok(Event::Changed { resources: Vec::new(), what: format!("CodeDeploy deployment {id} {state}") }))
        }
        _ => {
            // A Cloud Audit Log entry, alone or as a CloudEvent's data.
            let entry = value.get("data").filter(|d| d.get("protoPayload").is_some()).unwrap_or(value);
            let payload = entry.get("protoPayload")?;
            let method = payload.get("methodName").and_then(Value::as_str).unwrap_or_default();
            let resource = payload.get("resourceName").and_then(Value::as_str)?;
            let resource = resource.trim_start_matches("namespaces/").to_string();
            Some(Ok(Event::Changed { resources: vec![resource.clone()], what: format!("{method} on {resource}") }))
        }
    }
}

/// What a deploy hook reports for a cycle: `Failed` when a guard's verdict is rollback or a guard could not be
/// judged (fail closed: a gate that cannot see must not wave a deploy through), `Succeeded` otherwise — promote,
/// hold, and inconclusive (too little traffic yet, e.g. in `BeforeAllowTraffic`). In dry-run the hook never fails a
/// deployment (failing it would make CodeDeploy change the platform); the answer says what it would have reported.
pub fn hook_status(reports: &[crate::record::effect::GuardResult], dry_run: bool) -> (HookStatus, Option<HookStatus>) {
    use crate::record::effect::Effect;
    let fails = reports.iter().any(|r| {
        r.verdict == crate::model::verdict::Verdict::Rollback
            || matches!(r.effect, Effect::Failed { .. } | Effect::Aborted { .. })
    });
    let status = if fails { HookStatus::Failed } else { HookStatus::Succeeded };
    if dry_run && status == HookStatus::Failed { (HookStatus::Succeeded, Some(status)) } else { (status, None) }
}

/// One event fetched from the Runtime API.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// When Lambda stops the function, in ms since the epoch.
    pub deadline_ms: Option<u64>,
    pub payload: Vec<u8>,
}

/// The Lambda Runtime API client: `next`, `response`, `error`, `init/error`.
#[derive(Debug, Clone)]
pub struct LambdaRuntimeApi {
    base: String,
    http: reqwest::Client,
}

/// How long an answer to the Runtime API may take (`next` itself is a long poll and has no bound).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

impl LambdaRuntimeApi {
    /// The API Lambda announces in `AWS_LAMBDA_RUNTIME_API` (`host:port`).
    pub fn from_env() -> Result<Self, FunctionError> {
        let address = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(|_| FunctionError::NoRuntimeApi)?;
        Ok(Self::at(&address))
    }

    pub fn at(address: &str) -> Self {
        let address = address.trim_start_matches("http://").trim_end_matches('/');
        Self { base: format!("http://{address}/2018-06-01/runtime"), http: reqwest::Client::new() }
    }

    fn failed(&self, url: &str, message: impl std::fmt::Display) -> FunctionError {
        FunctionError::LambdaRuntimeApi { url: url.to_string(), message: message.to_string() }
    }

    /// Waits for the next event.
    pub async fn next(&self) -> Result<Invocation, FunctionError> {
        let url = format!("{}/invocation/next", self.base);
        let response = self.http.get(&url).send().await.map_err(|e| self.failed(&url, e))?;
        if !response.status().is_success() {
            return Err(self.failed(&url, format!("HTTP {}", response.status())));
        }
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let request_id = header("lambda-runtime-aws-request-id")
            .ok_or_else(|| self.failed(&url, "no Lambda-Runtime-Aws-Request-Id"))?;
        let deadline_ms = header("lambda-runtime-deadline-ms").and_then(|v| v.parse().ok());
        let payload = response.bytes().await.map_err(|e| self.failed(&url, e))?.to_vec();
        Ok(Invocation { request_id, deadline_ms, payload })
    }

    /// Answers invocation `request_id`.
    pub async fn respond(&self, request_id: &str, body: &Value) -> Result<(), FunctionError> {
        self.post(&format!("{}/invocation/{request_id}/response", self.base), body).await
    }

    /// Fails invocation `request_id` (the invoker sees `errorType` and `errorMessage`).
    pub async fn fail(&self, request_id: &str, error_type: &str, message: &str) -> Result<(), FunctionError> {
        let body = serde_json::json!({"errorType": error_type, "errorMessage": message});
        self.post(&format!("{}/invocation/{request_id}/error", self.base), &body).await
    }

    /// Reports that the function could not start (Lambda then fails the invocation with this error).
    pub async fn init_error(&self, error_type: &str, message: &str) -> Result<(), FunctionError> {
        let body = serde_json::json!({"errorType": error_type, "errorMessage": message});
        self.post(&format!("{}/init/error", self.base), &body).await
    }

    async fn post(&self, url: &str, body: &Value) -> Result<(), FunctionError> {
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .timeout(ANSWER_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.failed(url, e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.failed(url, format!("HTTP {}", response.status())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::verdict::Verdict;
    use crate::record::effect::{Effect, GuardResult};

    fn parse(text: &str) -> Result<Event, String> {
        Event::parse(text.as_bytes()).map_err(|e| e.to_string())
    }

    fn error(text: &str) -> String {
        match Event::parse(text.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(event) => panic!("{text} parsed as {event:?}"),
        }
    }

    #[test]
    fn the_events_lambda_delivers_are_recognised() {
        let scheduled = r#"{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#;
        assert_eq!(parse(scheduled), Ok(Event::Scheduled));
        let hook = r#"{"DeploymentId":"d-ABC","LifecycleEventHookExecutionId":"eyJ..."}"#;
        assert_eq!(parse(hook), Ok(Event::DeployHook { deployment_id: "d-ABC".into(), execution_id: "eyJ...".into() }));
        assert_eq!(parse(r#"{"action":"check"}"#), Ok(Event::Check { guards: vec![], dry_run: false }));
        assert_eq!(
            parse(r#"{"action":"check","guards":["a"],"dry_run":true}"#),
            Ok(Event::Check { guards: vec!["a".into()], dry_run: true })
        );
        assert_eq!(
            parse(r#"{"action":"pull","guard":"a","to":"3"}"#),
            Ok(Event::Pull { guard: "a".into(), to: Some("3".into()), reason: None })
        );
    }

    #[test]
    fn a_bad_event_says_what_was_expected_and_what_came() {
        let err = error(r#"{"hello":1}"#);
        assert!(err.contains("CodeDeploy lifecycle hook") && err.contains("hello"), "{err}");
        assert!(error(r#"{"action":"pull"}"#).contains("needs `guard`"));
        assert!(error(r#"{"action":"stop"}"#).contains("\"stop\""));
        assert!(error(r#"{"action":"check","guards":"a"}"#).contains("list of names"));
        assert!(error("not json").contains("not JSON"));
    }

    fn report(verdict: Verdict, effect: Effect) -> GuardResult {
        GuardResult::bare("g", verdict, effect)
    }

    #[test]
    fn a_hook_fails_on_rollback_or_error_and_never_in_dry_run() {
        let healthy = [report(Verdict::Promote, Effect::NoAction), report(Verdict::Inconclusive, Effect::NoAction)];
        assert_eq!(hook_status(&healthy, false), (HookStatus::Succeeded, None));
        let rollback = [report(Verdict::Promote, Effect::NoAction), report(Verdict::Rollback, Effect::NoAction)];
        assert_eq!(hook_status(&rollback, false), (HookStatus::Failed, None));
        let failed = [report(Verdict::Inconclusive, Effect::Failed { error: "GetAlias".into() })];
        assert_eq!(hook_status(&failed, false), (HookStatus::Failed, None));
        assert_eq!(hook_status(&rollback, true), (HookStatus::Succeeded, Some(HookStatus::Failed)));
    }
}
