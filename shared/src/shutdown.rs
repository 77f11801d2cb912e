//! Stopping on SIGINT or SIGTERM: one future for a single task, one cloneable handle for several.

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    listen().await
}

/// Registers the SIGINT and SIGTERM handlers now, not at the first poll: a signal that arrives
/// between this call and the wait then ends the wait instead of killing the process by default
/// (which would leave `humbex up`'s private PostgreSQL running).
fn listen() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    }
}

/// A shutdown that many roles can wait on: resolves for all once SIGINT or SIGTERM arrives.
#[derive(Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// Must run inside a Tokio runtime: it starts the task that waits for the signal.
    pub fn on_signal() -> Shutdown {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let signalled = listen();
        tokio::spawn(async move {
            signalled.await;
            let _ = tx.send(true);
        });
        Shutdown(rx)
    }

    /// A shutdown requested by sending `true` on the returned sender (tests, embedding).
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Shutdown(rx))
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}
