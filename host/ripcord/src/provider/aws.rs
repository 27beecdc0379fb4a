//! What every AWS client of ripcord shares: one SDK configuration (endpoint override and test credentials for the
//! simulator or moto, timeouts) and one way to turn an SDK error into a line a person reads.

use super::ProviderError;
use crate::config::{AwsSettings, Guard, Target};
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::time::Duration;

/// A failed SDK call as one line a person reads: the service's error code and message with the HTTP status; for
/// an answer that is not the service's protocol (a wrong endpoint), the status and what was expected; for
/// transport failures, the root cause. The SDK's full error chain goes to the debug log.
pub(crate) fn fail<E>(operation: &'static str, resource: &str, error: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    tracing::debug!(operation, resource, error = %DisplayErrorContext(&error), "AWS call failed");
    let answer = error.raw_response().map(|r| {
        let content_type = r.headers().get("content-type").unwrap_or("none").to_string();
        (r.status().as_u16(), content_type)
    });
    let message = match &error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message(), answer) {
                (code, message, Some((status, _))) if code.is_some() || message.is_some() => format!(
                    "{}: {} (HTTP {status})",
                    code.unwrap_or("error"),
                    message.map_or_else(|| "no message".into(), |m| crate::model::text::truncate(m, 300).into_owned())
                ),
                (_, _, Some((status, content_type))) => not_the_protocol(operation, status, &content_type),
                _ => "the service answered with an error and no details".to_string(),
            }
        }
        SdkError::ResponseError(_) => match answer {
            Some((status, content_type)) => not_the_protocol(operation, status, &content_type),
            None => "the answer could not be read".to_string(),
        },
        SdkError::TimeoutError(_) => "no answer in time (the request may still have taken effect)".to_string(),
        SdkError::DispatchFailure(_) => format!("cannot reach the endpoint: {}", root_cause(&error)),
        SdkError::ConstructionFailure(_) => format!("the request could not be built: {}", root_cause(&error)),
        _ => root_cause(&error),
    };
    ProviderError { operation, resource: resource.to_string(), message, throttled: is_throttle(&error) }
}

/// Whether the service refused the call for its rate limit (it was not carried out).
fn is_throttle<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    const THROTTLES: &[&str] = &[
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "ThrottledException",
    ];
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    };
    status == Some(429) || code.is_some_and(|c| THROTTLES.contains(&c))
}

/// An answer that is not in the protocol the operation speaks: what came, and what was expected.
fn not_the_protocol(operation: &str, status: u16, content_type: &str) -> String {
    let expected = match operation {
        "GetMetricData" => "CloudWatch's Smithy RPC v2 CBOR (application/cbor)",
        _ => "the AWS REST JSON protocol (application/json)",
    };
    format!(
        "HTTP {status} with content-type {content_type}, which is not {expected}: is the endpoint the right service?"
    )
}

/// The innermost error of a chain: the cause a person can act on ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    crate::model::text::truncate(&cause.to_string(), 300).into_owned()
}

/// The SDK configuration every AWS client of ripcord shares. With an endpoint override (the simulator, moto)
/// static test credentials are used; otherwise the default credential chain (environment, profile, SSO,
/// instance/container role). Standard retries; 10 s per attempt, 30 s per operation; at most
/// [`super::aws_http::MAX_REQUESTS_IN_FLIGHT`] requests at a time.
pub async fn sdk_config(settings: &AwsSettings, region: Option<String>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(super::aws_http::bounded_https_client());
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint).credentials_provider(aws_credential_types::Credentials::new(
            "test",
            "test",
            None,
            None,
            "ripcord-endpoint-override",
        ));
    }
    let region = region
        .or_else(|| settings.region.clone())
        .or_else(|| settings.endpoint_url.as_ref().map(|_| "us-east-1".to_string()));
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    loader.timeout_config(timeouts).load().await
}

/// The function and alias a Lambda guard watches (shared by the Lambda and CloudWatch clients).
pub(super) fn target(guard: &Guard) -> (&str, &str) {
    match &guard.target {
        Target::Lambda { function, alias, .. } => (function, alias),
        Target::CloudRun { service, .. } => (service, ""),
    }
}
