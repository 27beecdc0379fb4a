//! The HTTPS client every AWS SDK client of ripcord uses: the SDK's own default (rustls with aws-lc, proxy from the
//! environment), with a bound on the requests in flight. Without it, a fleet-wide bad release opened one
//! connection per rollback — 1,000 rollbacks polling provisioned concurrency at once held ~1,000 connections and
//! their buffers (about 65 MiB of a 134 MiB peak, measured with heaptrack). A request beyond the bound waits for a
//! slot inside the operation's timeout; the connection pool then holds at most that many connections.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Most AWS requests in flight per SDK configuration (one per region).
pub const MAX_REQUESTS_IN_FLIGHT: usize = 64;

/// The SDK's default HTTPS client, bounded to [`MAX_REQUESTS_IN_FLIGHT`] requests at a time.
pub fn bounded_https_client() -> SharedHttpClient {
    let inner = Builder::new().build_with_connector_fn(|settings, components| {
        let mut builder =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    });
    Bounded { inner, slots: Arc::new(Semaphore::new(MAX_REQUESTS_IN_FLIGHT)) }.into_shared()
}

#[derive(Debug, Clone)]
struct Bounded {
    inner: SharedHttpClient,
    slots: Arc<Semaphore>,
}

impl HttpClient for Bounded {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        BoundedConnector { inner, slots: self.slots.clone() }.into_shared()
    }
}

#[derive(Debug, Clone)]
struct BoundedConnector {
    inner: SharedHttpConnector,
    slots: Arc<Semaphore>,
}

impl HttpConnector for BoundedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, slots) = (self.inner.clone(), self.slots.clone());
        HttpConnectorFuture::new(async move {
            // The semaphore is never closed; an error here would be a bug, reported as a failed request.
            let _slot = slots.acquire_owned().await.map_err(|e| ConnectorError::other(Box::new(e), None))?;
            inner.call(request).await
        })
    }
}
