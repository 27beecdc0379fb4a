//! CodeDeploy, for ripcord as a lifecycle hook of Lambda deployments: the one call a hook must make, reporting
//! whether the deployment may go on (`PutLifecycleEventHookExecutionStatus`), through aws-sdk-codedeploy.

use super::ProviderError;
use super::aws::{fail, sdk_config};
use crate::config::AwsSettings;
use aws_sdk_codedeploy::types::LifecycleEventStatus;

/// The hook's answer to CodeDeploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum HookStatus {
    /// The deployment may go on.
    Succeeded,
    /// Stop it: CodeDeploy marks the deployment failed and, when configured to, shifts the alias back.
    Failed,
}

/// A CodeDeploy client.
#[derive(Debug, Clone)]
pub struct CodeDeploy {
    client: aws_sdk_codedeploy::Client,
}

impl CodeDeploy {
    pub async fn connect(settings: &AwsSettings) -> Self {
        Self { client: aws_sdk_codedeploy::Client::new(&sdk_config(settings, None).await) }
    }

    /// Reports the status of hook execution `execution_id` of deployment `deployment_id`.
    pub async fn report(
        &self,
        deployment_id: &str,
        execution_id: &str,
        status: HookStatus,
    ) -> Result<(), ProviderError> {
        let status = match status {
            HookStatus::Succeeded => LifecycleEventStatus::Succeeded,
            HookStatus::Failed => LifecycleEventStatus::Failed,
        };
        self.client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(deployment_id)
            .lifecycle_event_hook_execution_id(execution_id)
            .status(status)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| fail("PutLifecycleEventHookExecutionStatus", deployment_id, e))
    }
}
