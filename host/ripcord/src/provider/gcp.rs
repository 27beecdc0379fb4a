//! What every Google Cloud client of ripcord shares: credentials (application-default, checked once, or
//! anonymous for the simulator) and the client builders' settings (endpoint override, fast operation polling
//! against the simulator).

use super::ProviderError;
use crate::config::GcpSettings;
use std::time::Duration;

pub(super) fn fail(operation: &'static str, resource: &str, error: impl std::fmt::Display) -> ProviderError {
    let message = error.to_string();
    // Google's rate limits answer HTTP 429 with the status RESOURCE_EXHAUSTED.
    let throttled = message.contains("RESOURCE_EXHAUSTED") || message.contains("ResourceExhausted");
    ProviderError { operation, resource: resource.to_string(), message, throttled }
}

/// How long finding and using Google credentials may take before ripcord says there are none (the client
/// library's own search, ending at a metadata server that is not there, takes about a minute).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// Application-default credentials, checked by fetching a token once: missing credentials are one clear error
/// within seconds, not a minute of silence and then a retry message from inside the client library.
async fn application_default_credentials() -> Result<google_cloud_auth::credentials::Credentials, ProviderError> {
    const HOW: &str = "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, run `gcloud auth \
                       application-default login`, or run on Google Cloud with a service account (for the simulator, \
                       set [gcp] endpoint_url)";
    let fail = |why: String| ProviderError {
        operation: "credentials",
        resource: "Google Cloud".into(),
        message: format!("no usable Google credentials: {why}; {HOW}"),
        ..Default::default()
    };
    // Where the client library looks, in its order, so the message can say which source failed.
    let source = match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|v| !v.is_empty()) {
        Some(path) => format!("the key file GOOGLE_APPLICATION_CREDENTIALS names ({})", path.to_string_lossy()),
        None if gcloud_adc_file().is_some_and(|f| f.is_file()) => "gcloud's application-default credentials".into(),
        None => "no key file or gcloud credentials were found, and the metadata server".into(),
    };
    let credentials = google_cloud_auth::credentials::Builder::default()
        .build()
        .map_err(|e| fail(format!("{source} could not be used ({})", one_line(&e.to_string()))))?;
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, credentials.headers(Default::default())).await {
        Ok(Ok(_)) => Ok(credentials),
        Ok(Err(error)) => Err(fail(format!("{source} gave no token ({})", one_line(&error.to_string())))),
        Err(_) => Err(fail(format!("{source} gave no token within {}s", CREDENTIALS_TIMEOUT.as_secs()))),
    }
}

/// gcloud's application-default credentials file (`gcloud auth application-default login` writes it).
fn gcloud_adc_file() -> Option<std::path::PathBuf> {
    let config = std::env::var_os("CLOUDSDK_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".config/gcloud")))?;
    Some(config.join("application_default_credentials.json"))
}

/// An error message on one line, bounded.
fn one_line(text: &str) -> String {
    crate::model::text::truncate(&crate::model::text::one_line(text), 300).into_owned()
}

/// Builds a Google Cloud client of type `$client` for `$settings`, with `$credentials` (None: the simulator's
/// anonymous credentials at `endpoint_url`).
macro_rules! client {
    ($client:ty, $settings:expr, $credentials:expr) => {{
        let mut builder = <$client>::builder();
        if let Some(credentials) = $credentials {
            builder = builder.with_credentials(credentials.clone());
        }
        if let Some(endpoint) = &$settings.endpoint_url {
            builder = builder
                .with_endpoint(endpoint)
                .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
                .with_polling_backoff_policy($crate::provider::gcp::simulator_polling(endpoint)?);
        }
        builder.build().await.map_err(|e| $crate::provider::gcp::fail("connect", "Google Cloud", e))
    }};
}
pub(super) use client;

/// Credentials for `settings`: none (anonymous) with an endpoint override, else application-default ones.
pub(super) async fn credentials(
    settings: &GcpSettings,
) -> Result<Option<google_cloud_auth::credentials::Credentials>, ProviderError> {
    match &settings.endpoint_url {
        Some(_) => Ok(None),
        None => application_default_credentials().await.map(Some),
    }
}

/// Operation polling against the simulator: its operations finish in a few polls, so poll fast.
pub(super) fn simulator_polling(
    endpoint: &str,
) -> Result<google_cloud_gax::exponential_backoff::ExponentialBackoff, ProviderError> {
    google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder::new()
        .with_initial_delay(Duration::from_millis(5))
        .with_maximum_delay(Duration::from_millis(50))
        .build()
        .map_err(|e| fail("connect", endpoint, e))
}
