//! Wake-ups for the executor: a dedicated LISTEN connection on `humbex_signals` and
//! `humbex_accounts` (driven by `poll_message`, since a pooled connection drops notifications),
//! plus a sweep at start-up, after every reconnect and every poll interval (connected or not), so
//! a lost notification costs at most one interval.

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
/// backoff, started over once a connection was up), forward notifications, sweep on (re)connect,
/// and sweep every `poll_interval` whether or not the connection is up: while it is down (a
/// reconnect can take a second), the interval alone bounds how late a signal is claimed.
pub async fn run(pg: PgConfig, poll_interval: Duration, wakeups: mpsc::Sender<Wakeup>) {
    let _ticker = crate::AbortOnDrop(tokio::spawn(sweep_every(poll_interval, wakeups.clone())));
    let mut backoff = FIRST_BACKOFF;
    loop {
        match listen_once(&pg, &wakeups).await {
            ListenEnd::ReceiverGone => return,
            ListenEnd::ConnectionLost { error, was_up } => {
                if was_up {
                    backoff = FIRST_BACKOFF;
                }
                tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "LISTEN connection lost");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = wakeups.closed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);

async fn sweep_every(poll_interval: Duration, wakeups: mpsc::Sender<Wakeup>) {
    let mut interval = tokio::time::interval(poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await; // the first tick is immediate; the sweep on connect covers it
    loop {
        interval.tick().await;
        if wakeups.send(Wakeup::Sweep).await.is_err() {
            return;
        }
    }
}

enum ListenEnd {
    ReceiverGone,
    /// `was_up`: the connection was listening before it was lost (the backoff starts over).
    ConnectionLost {
        error: String,
        was_up: bool,
    },
}

fn lost_before_listening(error: String) -> ListenEnd {
    ListenEnd::ConnectionLost { error, was_up: false }
}

async fn listen_once(pg: &PgConfig, wakeups: &mpsc::Sender<Wakeup>) -> ListenEnd {
    let pg = humbex_shared::db::listen_config(pg, LISTEN_APPLICATION_NAME);
    let (client, mut connection) = match pg.connect().await {
        Ok(pair) => pair,
        Err(e) => return lost_before_listening(format!("{e:?}")),
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
        return lost_before_listening(format!("{e:?}"));
    }
    // Counted as up until this function returns (or its task is aborted).
    let _up = humbex_shared::metrics::ListenGauge::up();
    // Listening now: anything committed before this moment is found by the sweep.
    if wakeups.send(Wakeup::Sweep).await.is_err() {
        driver.abort();
        return ListenEnd::ReceiverGone;
    }
    let end = loop {
        match notes.recv().await {
            Some(Ok(wake)) => {
                if wakeups.send(wake).await.is_err() {
                    break ListenEnd::ReceiverGone;
                }
            }
            Some(Err(error)) => break ListenEnd::ConnectionLost { error, was_up: true },
            None => {
                break ListenEnd::ConnectionLost {
                    error: "driver ended".into(),
                    was_up: true,
                };
            }
        }
    };
    driver.abort();
    drop(client);
    end
}
