//! The metrics listener: `GET /metrics` (Prometheus text format) on its own address
//! (METRICS_HOST, METRICS_PORT), apart from the webhook port so it need never face the internet.
//! Anything else is a JSON 404 (405 for another method on /metrics).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A bound, not yet serving, metrics listener.
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Bind `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({e}); set METRICS_HOST/METRICS_PORT"))?;
        let addr = listener.local_addr()?;
        Ok(MetricsServer { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until `shutdown` completes. Each connection is its own task; a scrape is cheap.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tracing::info!(addr = %self.addr, "metrics listening");
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of descriptors and the like: keep serving once it passes.
                        tracing::warn!(error = %e, "metrics listener could not accept");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let served = hyper::server::conn::http1::Builder::new()
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "metrics connection ended with an error");
                }
            });
        }
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let json = |status: StatusCode, code: &str, message: &str| {
        let body = serde_json::json!({ "error": code, "message": message }).to_string();
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("static response parts")
    };
    Ok(match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => Response::builder()
            .header(header::CONTENT_TYPE, super::CONTENT_TYPE)
            .header(header::CACHE_CONTROL, "no-store")
            .body(Full::new(Bytes::from(super::metrics().encode())))
            .expect("static response parts"),
        (_, "/metrics") => {
            let mut r = json(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "/metrics answers GET only",
            );
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            r
        }
        _ => json(
            StatusCode::NOT_FOUND,
            "not_found",
            "this listener serves GET /metrics only",
        ),
    })
}
