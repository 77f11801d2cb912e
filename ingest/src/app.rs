//! Building and running the ingest HTTP service; tests start it on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use deadpool_postgres::Pool;
use humbex_shared::config::{Config, HttpLimits};
use poem::middleware::{CatchPanic, Cors};
use poem::{EndpointExt, Route};
use tokio::net::TcpListener;

use crate::middleware::{RouteTable, around};
use crate::state::AppState;

/// A bound, not yet running, ingest service.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    cors_origins: Vec<String>,
    http_limits: HttpLimits,
    docs_enabled: bool,
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
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen} ({e}); set BACKEND_HOST/BACKEND_PORT"))?;
        let addr = listener.local_addr()?;
        let (http_limits, docs_enabled) = (config.http.limits, config.http.docs_enabled);
        Ok(Application {
            listener,
            addr,
            state: Arc::new(AppState::new(config, pool)?),
            cors_origins,
            http_limits,
            docs_enabled,
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
        let docs_csp = Arc::new(crate::docs::DocsPage::new(service.swagger_ui_html()));
        let spec_text = crate::api::spec_json();
        let spec = poem::endpoint::make_sync(move |_| {
            poem::Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(spec_text.clone())
        });
        let app = Route::new()
            .nest("/", service)
            .at("/openapi.json", spec)
            .nest("/console", crate::console::routes());
        let app = if self.docs_enabled {
            app.nest("/docs", docs_csp.endpoint())
        } else {
            app
        };
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
            let docs_csp = docs_csp.clone();
            move |ep, req| around(ep, routes.clone(), state.clone(), docs_csp.clone(), req)
        });
        tracing::info!(addr = %self.addr, docs = self.docs_enabled, "ingest listening");
        let hub = self.state.console_events.clone();
        let listener = tokio::spawn(crate::console::events::listen(
            self.state.listen_config.clone(),
            hub.clone(),
        ));
        // Open event streams end with the accept loop, so draining never waits on them.
        let shutdown = async move {
            shutdown.await;
            hub.close();
        };
        let served = crate::serve::serve(
            self.listener,
            app.map_to_response().boxed(),
            self.http_limits,
            shutdown,
        )
        .await;
        listener.abort();
        served
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
