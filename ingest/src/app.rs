//! Building and running the ingest HTTP service; tests start it on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use humbex_shared::config::Config;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::middleware::{CatchPanic, Cors};
use poem::{EndpointExt, Route, Server};

use crate::middleware::{RouteTable, around};
use crate::state::AppState;

/// A bound, not yet running, ingest service.
pub struct Application {
    acceptor: poem::listener::TcpAcceptor,
    addr: SocketAddr,
    state: Arc<AppState>,
    cors_origins: Vec<String>,
}

impl Application {
    /// Bind to the configured address (port 0 picks a free one) with a fresh pool.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = humbex_shared::db::pool(&config.database.url, humbex_shared::config::POOL_SIZE)?;
        Self::build_with_pool(config, pool).await
    }

    pub async fn build_with_pool(config: Config, pool: Pool) -> anyhow::Result<Self> {
        let listen = SocketAddr::new(config.http.host, config.http.port);
        let cors_origins = config.http.cors_origins.clone();
        let acceptor = TcpListener::bind(listen)
            .into_acceptor()
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen} ({e}); set BACKEND_HOST/BACKEND_PORT"))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| anyhow::anyhow!("listener has no TCP address"))?;
        Ok(Application {
            acceptor,
            addr,
            state: Arc::new(AppState::new(config, pool)?),
            cors_origins,
        })
    }

    /// Replace the clock used for anti-replay windows (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>) -> Self {
        Arc::get_mut(&mut self.state)
            .expect("state not shared before run")
            .clock = clock;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serve until `shutdown` completes, then finish in-flight requests (at most 5 s).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let service = crate::api::service();
        let routes = Arc::new(RouteTable::from_spec(&service.spec()));
        let docs = service.swagger_ui();
        let spec_text = crate::api::spec_json();
        let spec = poem::endpoint::make_sync(move |_| {
            poem::Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(spec_text.clone())
        });
        let app = Route::new()
            .nest("/", service)
            .nest("/docs", docs)
            .at("/openapi.json", spec);
        #[cfg(feature = "test-hooks")]
        let app = app.at("/__test/panic", poem::post(crate::test_hooks::panic));
        // Inside `around`, so a panic's 500 still gets the security headers and the request log.
        let app = app
            .data(self.state.clone())
            .with(CatchPanic::new().with_handler(panic_response));
        let cors =
            (!self.cors_origins.is_empty()).then(|| Cors::new().allow_origins(self.cors_origins.clone()));
        let app = app.with_if(cors.is_some(), cors.unwrap_or_default()).around({
            let state = self.state.clone();
            move |ep, req| around(ep, routes.clone(), state.clone(), req)
        });
        tracing::info!(addr = %self.addr, "ingest listening");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(5)))
            .await
    }
}

/// A handler that panicked gets the JSON 500 of every other server error. The panic hook has
/// already reported where and why; neither the message nor the request reaches the client.
fn panic_response(_payload: Box<dyn std::any::Any + Send>) -> poem::Response {
    use poem::IntoResponse;
    tracing::error!("a request handler panicked; answered 500");
    poem::web::Json(serde_json::json!({
        "error": "internal_error",
        "message": "the server failed to handle the request",
    }))
    .with_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
    .into_response()
}
