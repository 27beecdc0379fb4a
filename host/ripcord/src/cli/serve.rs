//! `ripcord serve`: the guards' cycles (as `watch` runs them, unless `--no-watch`) and an authenticated HTTP API
//! for on-call and pipelines on one port: `GET /healthz`, `GET /metrics`, `GET /api/v1/guards`,
//! `GET /api/v1/guards/{name}`, `POST /api/v1/guards/{name}/check`, `POST /api/v1/guards/{name}/pull`.
//!
//! Everything but `/healthz` needs `Authorization: Bearer TOKEN` of the tokens file (`serve/tokens.rs`); the
//! routes and their roles are in `serve/api.rs`. This file holds the connection handling and its limits: a
//! request head within 16 KiB read within 10 s, a body within 64 KiB read within 10 s, at most 256 connections.

mod api;
mod dashboard;
mod oidc;
mod session;
pub(super) mod tokens;

use super::RuntimeArgs;
use super::output::Watched;
use super::setup::{async_runtime, controller};
use anyhow::Context;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use ripcord::cycle::controller::Controller;
use ripcord::record::telemetry::Registry;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take to send a request's head, and then its body.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;
/// Largest request head (hyper's read buffer).
const MAX_HEAD: usize = 16 * 1024;

/// What every request shares.
pub(crate) struct Server {
    controller: Controller,
    tokens: tokens::Tokens,
    sessions: session::Sessions,
    registry: Arc<Registry>,
    /// Held by a cycle and by an action asked for over the API: one change at a time per process.
    acting: tokio::sync::Mutex<()>,
    /// `GET /api/v1/guards`'s answer for a few seconds (it reads every deployment on the platform).
    snapshot: tokio::sync::Mutex<Option<(std::time::Instant, Arc<serde_json::Value>)>>,
}

pub(crate) struct ServeArgs<'a> {
    pub(crate) config: &'a Path,
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) watch: bool,
    pub(crate) runtime: &'a RuntimeArgs,
}

pub(crate) fn run(args: ServeArgs<'_>) -> anyhow::Result<ExitCode> {
    let controller = controller(args.config, args.runtime, args.dry_run)?;
    let settings = controller.config().server.clone();
    let tokens_file = settings.tokens_file.with_context(|| {
        format!(
            "{}: [server] tokens_file is needed: every request but /healthz is authenticated",
            args.config.display()
        )
    })?;
    let tokens = tokens::Tokens::load(&tokens_file)?;
    let listen = args.listen.or(settings.listen).unwrap_or_else(default_listen);
    let server = Arc::new(Server {
        controller,
        tokens,
        sessions: session::Sessions::default(),
        registry: Arc::new(Registry::default()),
        acting: tokio::sync::Mutex::new(()),
        snapshot: tokio::sync::Mutex::new(None),
    });
    let mut watched = Watched::default();
    // The connections are tasks of this thread: a cycle's future is not `Send` (rust-lang/rust#102211), so the
    // API's checks and pulls run beside the watch loop here, while the policies and the platform calls they
    // start run on the runtime's workers.
    let local = tokio::task::LocalSet::new();
    async_runtime()?.block_on(local.run_until(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        // Keys of an OIDC issuer read from its URL: before the first request, then every hour.
        if let Some(oidc) = server.tokens.oidc.as_ref().filter(|o| o.jwks_url.is_some()) {
            oidc.refresh().await.context("[oidc] jwks_url: cannot read the issuer's keys")?;
            let server = server.clone();
            tokio::task::spawn_local(async move {
                loop {
                    tokio::time::sleep(oidc::JWKS_REFRESH).await;
                    if let Some(oidc) = &server.tokens.oidc
                        && let Err(error) = oidc.refresh().await
                    {
                        tracing::warn!(target: "ripcord::server", %error, "cannot read the OIDC issuer's keys again; keeping the ones read before");
                    }
                }
            });
        }
        eprintln!("ripcord serving at http://{}", listener.local_addr()?);
        tokio::task::spawn_local(accept(listener, server.clone()));
        if args.watch {
            let cycles = super::watch::Cycles { json: args.json, limit: None, acting: Some(&server.acting) };
            super::watch::cycles(&server.controller, &server.registry, cycles, &mut watched).await
        } else {
            tokio::signal::ctrl_c().await.context("waiting for an interrupt")
        }
    }))?;
    Ok(ExitCode::from(watched.code()))
}

/// `0.0.0.0:$PORT` where the platform says which port (Cloud Run, Lambda web adapters), else `127.0.0.1:8080`.
fn default_listen() -> SocketAddr {
    match std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()) {
        Some(port) => SocketAddr::from(([0, 0, 0, 0], port)),
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
    }
}

async fn accept(listener: tokio::net::TcpListener, server: Arc<Server>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let server = server.clone();
        tokio::task::spawn_local(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(api::answer(&server, request, peer).await) }
            });
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(READ_TIMEOUT).max_buf_size(MAX_HEAD);
            if let Err(error) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(target: "ripcord::server", %peer, %error, "connection ended");
            }
        });
    }
}
