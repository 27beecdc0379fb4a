//! Serves the simulator over HTTP on a loopback port: the Lambda and CloudWatch wire APIs and the control API.
//! The server runs on its own thread and runtime, so callers need no async runtime of their own.

use crate::Simulator;
use crate::http::{Request, Response};
use crate::simulator::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// How often a long-polled request (the Runtime API's `next`) looks for work.
const LONG_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// A running server; dropping it stops the server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts serving `sim` on `addr` (port 0 picks a free port).
    pub fn start(sim: Simulator, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        sim.lock().endpoint = Some(format!("http://{addr}"));
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("ripcord-sim-http".into()).spawn(move || {
            runtime.block_on(accept_loop(sim, listener, stopped));
        })?;
        Ok(Self { addr, stop: Some(stop), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until the process is interrupted.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(sim: Simulator, listener: std::net::TcpListener, mut stopped: oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let sim = sim.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let sim = sim.clone();
                        async move { Ok::<_, std::convert::Infallible>(respond(&sim, request).await) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}

async fn respond(sim: &Simulator, request: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let request = Request::new(parts.method.as_str(), parts.uri.path(), parts.uri.query(), headers, body);
    let response = loop {
        let response = route(sim, &request);
        if !response.long_poll {
            break response;
        }
        tokio::time::sleep(LONG_POLL_INTERVAL).await;
    };
    if response.stall_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(response.stall_ms)).await;
    }
    tracing::debug!(target: "ripcord::sim", method = %request.method, path = %parts.uri.path(), status = response.status);
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(*name, value);
    }
    builder.body(Full::new(Bytes::from(response.body))).unwrap_or_else(|_| {
        let mut fallback = hyper::Response::new(Full::new(Bytes::new()));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

fn route(sim: &Simulator, request: &Request) -> Response {
    crate::control_api::handle(sim, request)
        .or_else(|| crate::lambda_api::handle(sim, request))
        .or_else(|| crate::runtime_api::handle(sim, request))
        .or_else(|| crate::codedeploy_api::handle(sim, request))
        .or_else(|| crate::cloudrun_api::handle(sim, request))
        .or_else(|| crate::monitoring_api::handle(sim, request))
        .or_else(|| crate::cloudwatch_api::handle(sim, request))
        .unwrap_or_else(|| unsimulated(request))
}

/// A request no handler serves, answered in the error shape of the API it was meant for, so the caller's client
/// reports "not simulated" instead of failing to parse the answer: Google APIs (`/v2/…`, `/v3/…`) with 501
/// UNIMPLEMENTED, Lambda's dated REST paths with 501 `NotImplemented` in `x-amzn-errortype`, anything else 404.
fn unsimulated(request: &Request) -> Response {
    let message = format!("not simulated by ripcord sim: {} /{}", request.method, request.segments.join("/"));
    let first = request.segments.first().map(String::as_str).unwrap_or_default();
    if first == "v2" || first == "v3" {
        return crate::cloudrun_api::error_response(&ApiError::new(501, "UNIMPLEMENTED", message));
    }
    let dated = first.len() == 10
        && first.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if dated {
        return crate::lambda_api::error_response(&ApiError::new(501, "NotImplemented", message));
    }
    Response::json(404, &serde_json::json!({"message": message}))
}
