//! CodeDeploy's `PutLifecycleEventHookExecutionStatus`, the call a lifecycle hook function makes to let a Lambda
//! deployment go on or stop it, in the AWS JSON 1.1 protocol aws-sdk-codedeploy speaks (`POST /` with
//! `X-Amz-Target: CodeDeploy_20141006.OPERATION`). Tests open a hook execution with [`Simulator::open_hook`] —
//! what CodeDeploy does before invoking the hook — and read the reported status with [`Simulator::hook_status`].

use crate::Simulator;
use crate::http::{Request, Response};
use crate::simulator::ApiError;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const TARGET_PREFIX: &str = "CodeDeploy_20141006.";
const OPERATION: &str = "PutLifecycleEventHookExecutionStatus";
/// The statuses CodeDeploy accepts from a hook.
const STATUSES: [&str; 6] = ["Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Unknown"];

/// Hook executions by (deployment id, execution id), with the status reported (None until the hook reports).
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    executions: BTreeMap<(String, String), Option<String>>,
}

impl Simulator {
    /// Opens hook execution `execution_id` of deployment `deployment_id`, as CodeDeploy does before it invokes
    /// the hook function.
    pub fn open_hook(&self, deployment_id: &str, execution_id: &str) {
        self.lock().hooks.executions.insert((deployment_id.into(), execution_id.into()), None);
    }

    /// The status the hook reported for the execution, once it did.
    pub fn hook_status(&self, deployment_id: &str, execution_id: &str) -> Option<String> {
        self.lock().hooks.executions.get(&(deployment_id.to_string(), execution_id.to_string())).cloned().flatten()
    }
}

pub(crate) fn handle(sim: &Simulator, request: &Request) -> Option<Response> {
    let operation = request.header("x-amz-target")?.strip_prefix(TARGET_PREFIX)?.to_string();
    let mut state = sim.lock();
    let request_id = state.request_id();
    let outcome = if operation != OPERATION {
        Err(ApiError::new(400, "UnknownOperationException", format!("{operation} is not simulated")))
    } else if let Some(error) = state.take_api_fault(OPERATION) {
        Err(error)
    } else {
        put_status(&mut state.hooks, &request.body)
    };
    let (mut response, detail) = match outcome {
        Ok((body, detail)) => (Response::json(200, &body), detail),
        Err(error) => {
            let body = json!({"__type": error.code, "message": error.message});
            (Response::json(error.status, &body), error.code)
        }
    };
    response.headers.push(("x-amzn-RequestId", request_id));
    state.answer(&operation, "", detail, response)
}

fn put_status(hooks: &mut Hooks, body: &[u8]) -> Result<(Value, String), ApiError> {
    let input: Value = serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("not JSON: {e}")))?;
    let text = |key: &str| input.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let (deployment, execution, status) = (text("deploymentId"), text("lifecycleEventHookExecutionId"), text("status"));
    if !STATUSES.contains(&status.as_str()) {
        return Err(ApiError::new(
            400,
            "InvalidLifecycleEventHookExecutionStatusException",
            format!("status {status:?}"),
        ));
    }
    if !hooks.executions.keys().any(|(d, _)| *d == deployment) {
        return Err(ApiError::new(400, "DeploymentDoesNotExistException", format!("deployment {deployment:?}")));
    }
    let slot = hooks.executions.get_mut(&(deployment.clone(), execution.clone())).ok_or_else(|| {
        ApiError::new(400, "InvalidLifecycleEventHookExecutionIdException", format!("execution {execution:?}"))
    })?;
    if slot.is_some() {
        return Err(ApiError::new(400, "LifecycleEventAlreadyCompletedException", format!("execution {execution:?}")));
    }
    *slot = Some(status.clone());
    Ok((json!({"lifecycleEventHookExecutionId": execution}), format!("{deployment} {status}")))
}
