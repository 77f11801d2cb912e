//! Binding, routing and lifetime of a running paper exchange, and the `humbex paper-exchange` entry.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Route, Server, get, post, put};
use rust_decimal::Decimal;
use tokio::sync::oneshot;

use crate::config::{PaperExchangeConfig, PriceWalk};
use crate::exchange::PaperExchange;
use crate::{control, rest, ws, ws_public};

/// A paper exchange serving on [`RunningPaperExchange::local_addr`] until shut down or dropped.
pub struct RunningPaperExchange {
    local_addr: SocketAddr,
    exchange: Arc<PaperExchange>,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningPaperExchange {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    /// `http://host:port`, the REST base URL for Bybit clients and the control API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }
    /// `ws://host:port/v5/public/linear` (tickers only).
    pub fn public_ws_url(&self) -> String {
        format!("ws://{}/v5/public/linear", self.local_addr)
    }
    /// `ws://host:port/v5/private`.
    pub fn private_ws_url(&self) -> String {
        format!("ws://{}/v5/private", self.local_addr)
    }
    pub fn exchange(&self) -> &Arc<PaperExchange> {
        &self.exchange
    }
    /// Stops accepting, closes WebSocket connections and waits (at most 5 s) for requests in flight.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.exchange.drop_all_connections();
        (&mut self.server)
            .await
            .context("paper exchange server task")?
            .context("paper exchange server")
    }
}

impl Drop for RunningPaperExchange {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
            self.exchange.drop_all_connections();
        }
    }
}

fn app(exchange: Arc<PaperExchange>) -> impl poem::Endpoint {
    Route::new()
        .at("/v5/private", get(ws::private_ws))
        .at("/v5/public/linear", get(ws_public::public_linear_ws))
        .at("/v5/*path", get(rest::v5).post(rest::v5))
        .at("/paper/accounts", post(control::create_account))
        .at(
            "/paper/accounts/:api_key",
            get(control::get_account).patch(control::modify_account),
        )
        .at("/paper/accounts/:api_key/orders", get(control::account_orders))
        .at(
            "/paper/accounts/:api_key/executions",
            get(control::account_executions),
        )
        .at(
            "/paper/accounts/:api_key/positions",
            get(control::account_positions),
        )
        .at("/paper/prices", get(control::list_prices))
        .at("/paper/prices/:symbol", put(control::set_price))
        .at(
            "/paper/faults",
            post(control::add_fault)
                .get(control::list_faults)
                .delete(control::clear_faults),
        )
        .data(exchange)
}

/// Binds (port 0 picks a free port) and serves in the background.
pub async fn spawn(config: PaperExchangeConfig) -> anyhow::Result<RunningPaperExchange> {
    let bind = format!("{}:{}", config.host, config.port);
    let acceptor = TcpListener::bind(bind.clone())
        .into_acceptor()
        .await
        .with_context(|| format!("paper exchange cannot listen on {bind}"))?;
    let local_addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .context("paper exchange listener has no socket address")?;
    let price_walk = config.price_walk;
    let exchange = PaperExchange::new(config);
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let endpoint = app(exchange.clone());
    let server = tokio::spawn(async move {
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                endpoint,
                async move {
                    let _ = shutdown_rx.await;
                },
                Some(Duration::from_secs(5)),
            )
            .await
    });
    if let Some(walk) = price_walk {
        tokio::spawn(random_walk(Arc::downgrade(&exchange), walk));
    }
    tracing::info!(%local_addr, "paper exchange listening");
    Ok(RunningPaperExchange {
        local_addr,
        exchange,
        shutdown: Some(shutdown_tx),
        server,
    })
}

/// Serves until `shutdown` completes; for embedding (e.g. `humbex up` in paper mode).
pub async fn serve_until(
    config: PaperExchangeConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let running = spawn(config).await?;
    shutdown.await;
    running.shutdown().await
}

/// xorshift64*: enough randomness for a price walk without another dependency.
struct WalkRng(u64);

impl WalkRng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

async fn random_walk(exchange: std::sync::Weak<PaperExchange>, walk: PriceWalk) {
    let seed = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
    let mut rng = WalkRng(seed);
    let mut ticker = tokio::time::interval(walk.interval);
    loop {
        ticker.tick().await;
        let Some(exchange) = exchange.upgrade() else {
            return;
        };
        let symbols: Vec<(String, Decimal)> = exchange
            .lock()
            .instruments
            .values()
            .map(|i| (i.symbol.clone(), i.price))
            .collect();
        for (symbol, price) in symbols {
            let span = u64::from(walk.max_step_bps) * 2 + 1;
            let step_bps = (rng.next() % span) as i64 - i64::from(walk.max_step_bps);
            let next = price * (Decimal::ONE + Decimal::new(step_bps, 4));
            let _ = exchange.set_price(&symbol, next);
        }
    }
}
