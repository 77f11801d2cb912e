//! Wake-ups for the executor: a dedicated LISTEN connection on `humbex_signals` and
//! `humbex_accounts` (driven by `poll_message`, since a pooled connection drops notifications),
//! plus a sweep at start-up, after every reconnect and every poll interval, so a lost notification
//! costs at most one interval.

use std::time::Duration;

use futures_util::StreamExt;
use humbex_shared::db::PgConfig;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

/// Why the executor should look for work now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// A notification named this signal.
    Signal(Uuid),
    /// Look at everything claimable (start-up, reconnect, interval).
    Sweep,
    /// Accounts changed hands (`humbex_accounts`): the payload names the executor that should
    /// place its accounts' pending orders now, or is `*` for the whole fleet.
    Accounts(String),
}

/// application_name of the LISTEN connection, so an operator can find it in pg_stat_activity.
pub const LISTEN_APPLICATION_NAME: &str = "humbex-executor-listen";
pub use humbex_shared::channels::{ACCOUNTS as ACCOUNTS_CHANNEL, SIGNALS as SIGNALS_CHANNEL};

/// Run until `wakeups` is closed: keep one LISTEN connection alive (reconnecting with capped
/// backoff), forward notifications, and sweep on (re)connect and every `poll_interval`.
pub async fn run(pg: PgConfig, poll_interval: Duration, wakeups: mpsc::Sender<Wakeup>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(&pg, poll_interval, &wakeups).await {
            ListenEnd::ReceiverGone => return,
            ListenEnd::ConnectionLost(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "LISTEN connection lost");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = wakeups.closed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

enum ListenEnd {
    ReceiverGone,
    ConnectionLost(String),
}

async fn listen_once(pg: &PgConfig, poll_interval: Duration, wakeups: &mpsc::Sender<Wakeup>) -> ListenEnd {
    let mut pg = pg.clone();
    pg.application_name(LISTEN_APPLICATION_NAME);
    pg.connect_timeout(Duration::from_secs(3));
    pg.keepalives_idle(Duration::from_secs(10));
    let (client, mut connection) = match pg.connect().await {
        Ok(pair) => pair,
        Err(e) => return ListenEnd::ConnectionLost(format!("{e:?}")),
    };
    let (notes_tx, mut notes) = mpsc::unbounded_channel::<Result<Wakeup, String>>();
    // The connection must be polled before LISTEN itself can complete, so the driver starts first.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) if n.channel() == ACCOUNTS_CHANNEL => {
                    let _ = notes_tx.send(Ok(Wakeup::Accounts(n.payload().to_owned())));
                }
                Ok(AsyncMessage::Notification(n)) => match n.payload().parse::<Uuid>() {
                    Ok(id) => {
                        let _ = notes_tx.send(Ok(Wakeup::Signal(id)));
                    }
                    Err(_) => tracing::warn!(
                        payload = n.payload(),
                        "notification with a payload that is not an id"
                    ),
                },
                Ok(_) => {}
                Err(e) => {
                    let _ = notes_tx.send(Err(format!("{e:?}")));
                    return;
                }
            }
        }
        let _ = notes_tx.send(Err("connection closed".into()));
    });
    if let Err(e) = client
        .batch_execute(&format!("LISTEN {SIGNALS_CHANNEL}; LISTEN {ACCOUNTS_CHANNEL}"))
        .await
    {
        driver.abort();
        return ListenEnd::ConnectionLost(format!("{e:?}"));
    }
    // Counted as up until this function returns (or its task is aborted).
    let _up = humbex_shared::metrics::ListenGauge::up();
    // Listening now: anything committed before this moment is found by the sweep.
    if wakeups.send(Wakeup::Sweep).await.is_err() {
        driver.abort();
        return ListenEnd::ReceiverGone;
    }
    let mut interval = tokio::time::interval(poll_interval);
    interval.tick().await; // the first tick is immediate; the sweep above covered it
    let end = loop {
        tokio::select! {
            note = notes.recv() => match note {
                Some(Ok(wake)) => {
                    if wakeups.send(wake).await.is_err() {
                        break ListenEnd::ReceiverGone;
                    }
                }
                Some(Err(e)) => break ListenEnd::ConnectionLost(e),
                None => break ListenEnd::ConnectionLost("driver ended".into()),
            },
            _ = interval.tick() => {
                if wakeups.send(Wakeup::Sweep).await.is_err() {
                    break ListenEnd::ReceiverGone;
                }
            }
        }
    };
    driver.abort();
    drop(client);
    end
}
