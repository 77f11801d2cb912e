//! Group commit of new signals: webhooks ready to be stored at the same moment share one
//! transaction, so they share one WAL flush and one NOTIFY commit instead of paying for one each.
//!
//! Writer tasks take whatever queued while their previous batch was in flight (`recv_many`: no
//! timer ever holds a request back to fill a batch), at most `MAX_BATCH`. A batch of one runs the
//! fast statement in autocommit, exactly as without grouping. A larger batch pipelines every
//! request's own fast statement inside one BEGIN … COMMIT on one connection, and every request is
//! answered only once COMMIT has returned, so no 202 leaves before its signal is durable. If any
//! statement of a batch fails, the batch rolls back and each request runs alone, so one bad
//! request costs the others a second round trip, never their answer.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use futures_util::future::join_all;
use humbex_shared::db::statements::Prepared;
use humbex_shared::token::TokenKind;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::store::{self, NewSignal, Submission};

/// Largest batch. It bounds how long one transaction holds its locks and how long the last
/// request of a batch waits for the statements ahead of it.
pub const MAX_BATCH: usize = 64;

/// Writer tasks, each with at most one batch in flight on one pooled connection. One: commits
/// queue behind PostgreSQL's NOTIFY commit lock anyway, and a second writer halves the batches
/// (measured: one writer stored more at 8 connections in three A/B rounds out of three, the same
/// at 32).
pub const WRITERS: usize = 1;

/// Everything one batch may take once it has a connection; past it the connection is dropped,
/// never returned to the pool in the middle of a transaction.
const BATCH_BUDGET: Duration = Duration::from_secs(2);

/// Requests waiting for a writer; a full queue makes new requests wait (inside their own budget).
const QUEUE_DEPTH: usize = 1024;

/// Why a signal's fast statement has no outcome; the client gets a 503 and may resend.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("database error: {0:?}")]
    Db(#[from] tokio_postgres::Error),
    /// COMMIT failed for the whole batch: whether it took effect is unknown, a resend is safe.
    #[error("the batch's COMMIT failed: {0:?}")]
    Commit(Arc<tokio_postgres::Error>),
    #[error("no database connection: {0}")]
    Pool(Arc<deadpool_postgres::PoolError>),
    #[error("the batch did not finish within {BATCH_BUDGET:?}")]
    TimedOut,
    #[error("the group committer has stopped")]
    Stopped,
}

/// One request waiting for its batch.
struct Job {
    kind: TokenKind,
    digest: [u8; 32],
    signal: Arc<NewSignal>,
    reply: oneshot::Sender<Result<Submission, SubmitError>>,
}

/// The queue in front of the writer tasks. Dropping it stops the writers once the queue drains.
pub struct GroupCommitter {
    queue: mpsc::Sender<Job>,
}

impl GroupCommitter {
    /// Start `writers` writer tasks on the current Tokio runtime.
    pub fn start(pool: Pool, writers: usize, max_batch: usize) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..writers.max(1) {
            tokio::spawn(writer(pool.clone(), jobs.clone(), max_batch.max(1)));
        }
        GroupCommitter { queue }
    }

    /// Run the fast statement for this signal in the next batch, and return its outcome once the
    /// batch has committed.
    pub async fn submit(
        &self,
        kind: TokenKind,
        digest: [u8; 32],
        signal: Arc<NewSignal>,
    ) -> Result<Submission, SubmitError> {
        if kind == TokenKind::Admin {
            return Ok(Submission::UnknownToken);
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            kind,
            digest,
            signal,
            reply,
        };
        self.queue.send(job).await.map_err(|_| SubmitError::Stopped)?;
        answer.await.map_err(|_| SubmitError::Stopped)?
    }
}

async fn writer(pool: Pool, jobs: Arc<Mutex<mpsc::Receiver<Job>>>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        // Only the writer holding the lock waits for work; the others are busy committing or
        // queue behind it, so a request arriving at an idle moment is taken at once.
        let received = jobs.lock().await.recv_many(&mut batch, max_batch).await;
        if received == 0 {
            return; // every sender is gone: the service is shutting down
        }
        // A request whose handler already gave up (and answered 503) is not stored behind its back.
        batch.retain(|job| !job.reply.is_closed());
        if !batch.is_empty() {
            commit_batch(&pool, std::mem::take(&mut batch)).await;
        }
    }
}

/// Store one batch and answer each of its requests.
#[tracing::instrument(skip_all, fields(batch = batch.len()))]
async fn commit_batch(pool: &Pool, mut batch: Vec<Job>) {
    // Concurrent batches take their idempotency keys in one global order, so two of them
    // waiting on each other's keys can never deadlock.
    batch.sort_by(|a, b| (a.digest, a.signal.key.parts()).cmp(&(b.digest, b.signal.key.parts())));
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(e) => {
            let e = Arc::new(e);
            for job in batch {
                let _ = job.reply.send(Err(SubmitError::Pool(e.clone())));
            }
            return;
        }
    };
    match tokio::time::timeout(BATCH_BUDGET, run(&mut client, &batch)).await {
        Ok(outcomes) => {
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
        }
        Err(_) => {
            // Possibly stuck inside the transaction: this connection must not serve anyone else.
            drop(Object::take(client));
            for job in batch {
                let _ = job.reply.send(Err(SubmitError::TimedOut));
            }
        }
    }
}

/// One outcome per job, in the batch's order.
async fn run(client: &mut Object, batch: &[Job]) -> Vec<Result<Submission, SubmitError>> {
    if let [job] = batch {
        let outcome = store::submit(client, job.kind, &job.digest, &job.signal).await;
        return vec![outcome.map_err(SubmitError::from)];
    }
    match together(client, batch).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(Failed::Commit(e)) => {
            tracing::warn!(error = ?e, batch = batch.len(), "batch COMMIT failed");
            let e = Arc::new(e);
            batch
                .iter()
                .map(|_| Err(SubmitError::Commit(e.clone())))
                .collect()
        }
        Err(Failed::Statement(e)) => {
            tracing::info!(error = ?e, batch = batch.len(), "batch rolled back; storing each signal alone");
            alone(client, batch).await
        }
    }
}

enum Failed {
    /// Before COMMIT: the transaction was rolled back, nothing of it is stored.
    Statement(tokio_postgres::Error),
    /// COMMIT itself: the outcome is unknown.
    Commit(tokio_postgres::Error),
}

/// Every job's fast statement, pipelined inside one transaction, then COMMIT.
#[tracing::instrument(skip_all, fields(batch = batch.len()))]
async fn together(client: &mut Object, batch: &[Job]) -> Result<Vec<Submission>, Failed> {
    // Prepared (or, behind a transaction pooler, described) before the pipeline below, so that
    // nothing in it waits for anything but its own answer.
    let user = Prepared::new(client, store::fast_sql(TokenKind::User))
        .await
        .map_err(Failed::Statement)?;
    let strategy = Prepared::new(client, store::fast_sql(TokenKind::Strategy))
        .await
        .map_err(Failed::Statement)?;
    let plain: &tokio_postgres::Client = client;
    // BEGIN, every statement and COMMIT are all sent before the first answer comes back (one
    // connection, one backend, in the batch's sorted order): one round trip for the whole batch.
    // Tokio-postgres sends a request when its future is first polled, and `join!` and `join_all`
    // poll in order. Sending COMMIT before knowing the statements' outcomes is safe: after a
    // failed statement the transaction is aborted, the rest fail, and PostgreSQL turns COMMIT into
    // a rollback, so either every statement succeeded and COMMIT decides, or nothing is stored.
    let (begun, outcomes, committed) = tokio::join!(
        plain.batch_execute("BEGIN"),
        join_all(batch.iter().map(|job| {
            let stmt = if job.kind == TokenKind::User {
                &user
            } else {
                &strategy
            };
            store::run_fast(plain, stmt, job.kind, &job.digest, &job.signal)
        })),
        plain.batch_execute("COMMIT"),
    );
    begun.map_err(Failed::Statement)?;
    let outcomes: Result<Vec<_>, _> = outcomes.into_iter().collect();
    match outcomes {
        Ok(outcomes) => {
            committed.map_err(Failed::Commit)?;
            Ok(outcomes)
        }
        // The COMMIT above was a rollback; a failed one leaves a broken connection, which the
        // solo attempts will report.
        Err(e) => Err(Failed::Statement(e)),
    }
}

/// Each job in autocommit, pipelined on the same connection: one failure stays with its job.
async fn alone(client: &Object, batch: &[Job]) -> Vec<Result<Submission, SubmitError>> {
    join_all(
        batch
            .iter()
            .map(|job| store::submit(client, job.kind, &job.digest, &job.signal)),
    )
    .await
    .into_iter()
    .map(|r| r.map_err(SubmitError::from))
    .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use humbex_shared::db::TestDatabase;
    use humbex_shared::domain::SignalSource;
    use rust_decimal::Decimal;
    use tokio::sync::oneshot::error::TryRecvError;
    use uuid::Uuid;

    use super::*;
    use crate::webhook::store::IdempotencyKey;

    const ACTIVE: [u8; 32] = [1; 32];
    const NO_SUBSCRIPTION: [u8; 32] = [2; 32];
    const STRATEGY: [u8; 32] = [3; 32];
    const UNKNOWN: [u8; 32] = [9; 32];

    /// A fresh database with an active user, a user without a subscription and a strategy.
    async fn setup() -> (TestDatabase, Pool, tokio_postgres::Client) {
        let db = TestDatabase::create().await.expect("test database");
        let pool = humbex_shared::db::pool(&db.url, 4).expect("pool");
        let sql = humbex_shared::db::connect(&db.url.pg_config())
            .await
            .expect("connect");
        let (active, idle, strategy) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        sql.execute(
            "INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) \
             VALUES ($1, 'a@example.com', $2, 'hbxu_a'), ($3, 'b@example.com', $4, 'hbxu_b')",
            &[&active, &ACTIVE.as_slice(), &idle, &NO_SUBSCRIPTION.as_slice()],
        )
        .await
        .expect("users");
        sql.execute(
            "INSERT INTO subscriptions (id, user_id, status) VALUES ($1, $2, 'active')",
            &[&Uuid::now_v7(), &active],
        )
        .await
        .expect("subscription");
        sql.execute(
            "INSERT INTO strategies (id, name, webhook_token_digest, webhook_token_prefix) \
             VALUES ($1, 's', $2, 'hbxs_s')",
            &[&strategy, &STRATEGY.as_slice()],
        )
        .await
        .expect("strategy");
        (db, pool, sql)
    }

    fn signal(client_id: &str) -> Arc<NewSignal> {
        Arc::new(NewSignal {
            source: SignalSource::Signed,
            action: "buy",
            symbol: "AVAXUSDT".into(),
            quantity: Some(Decimal::ONE),
            client_id: Some(client_id.into()),
            price: None,
            signal_time: None,
            comment: None,
            raw_body: format!(r#"{{"id":"{client_id}"}}"#),
            key: IdempotencyKey::Client(client_id.into()),
            trade: None,
        })
    }

    type Answer = oneshot::Receiver<Result<Submission, SubmitError>>;

    fn jobs(items: Vec<(TokenKind, [u8; 32], Arc<NewSignal>)>) -> (Vec<Job>, Vec<Answer>) {
        items
            .into_iter()
            .map(|(kind, digest, signal)| {
                let (reply, answer) = oneshot::channel();
                (
                    Job {
                        kind,
                        digest,
                        signal,
                        reply,
                    },
                    answer,
                )
            })
            .unzip()
    }

    async fn count(sql: &tokio_postgres::Client, query: &str) -> i64 {
        let row = sql.query_one(query, &[]).await.expect("count");
        assert_eq!(row.len(), 1, "a count query answers one column: {query}");
        row.get(0)
    }

    #[tokio::test]
    async fn a_mixed_batch_answers_each_request_as_if_alone_in_one_commit() {
        let (_db, pool, sql) = setup().await;
        let (batch, answers) = jobs(vec![
            (TokenKind::User, ACTIVE, signal("a")),
            (TokenKind::User, ACTIVE, signal("a")), // the same key again, inside the batch
            (TokenKind::User, ACTIVE, signal("b")),
            (TokenKind::User, NO_SUBSCRIPTION, signal("c")),
            (TokenKind::User, UNKNOWN, signal("d")),
            (TokenKind::Strategy, STRATEGY, signal("e")),
        ]);
        commit_batch(&pool, batch).await;
        let mut outcomes = Vec::new();
        for answer in answers {
            outcomes.push(answer.await.expect("answered").expect("no database error"));
        }
        let new = outcomes
            .iter()
            .filter(|o| matches!(o, Submission::New { .. }))
            .count();
        assert_eq!(new, 3, "{outcomes:?}");
        // Which of the two copies of "a" wins depends on the batch's order; exactly one does.
        assert!(
            matches!(
                (&outcomes[0], &outcomes[1]),
                (Submission::New { .. }, Submission::KeyTaken { .. })
                    | (Submission::KeyTaken { .. }, Submission::New { .. })
            ),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[2], Submission::New { .. }), "{outcomes:?}");
        assert!(
            matches!(&outcomes[3], Submission::Refused { reason, .. } if reason.contains("no subscription")),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[4], Submission::UnknownToken), "{outcomes:?}");
        assert!(
            matches!(
                outcomes[5],
                Submission::New {
                    owner: store::Owner::Strategy(_),
                    ..
                }
            ),
            "{outcomes:?}"
        );
        assert_eq!(count(&sql, "SELECT count(*) FROM signals").await, 3);
        // One transaction wrote all three rows.
        assert_eq!(
            count(&sql, "SELECT count(DISTINCT xmin::text) FROM signals").await,
            1
        );
    }

    #[tokio::test]
    async fn a_failing_statement_sends_the_batch_back_one_by_one() {
        let (_db, pool, sql) = setup().await;
        // A buy without a quantity passes no webhook parser, but the table's CHECK refuses it:
        // a statement that fails inside the database.
        let mut broken = Arc::try_unwrap(signal("bad")).expect("sole owner");
        broken.quantity = None;
        let (batch, answers) = jobs(vec![
            (TokenKind::User, ACTIVE, signal("good-1")),
            (TokenKind::User, ACTIVE, Arc::new(broken)),
            (TokenKind::User, ACTIVE, signal("good-2")),
        ]);
        commit_batch(&pool, batch).await;
        let mut outcomes = Vec::new();
        for answer in answers {
            outcomes.push(answer.await.expect("answered"));
        }
        assert!(matches!(outcomes[0], Ok(Submission::New { .. })), "{outcomes:?}");
        assert!(
            matches!(&outcomes[1], Err(SubmitError::Db(e))
                if e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[2], Ok(Submission::New { .. })), "{outcomes:?}");
        assert_eq!(count(&sql, "SELECT count(*) FROM signals").await, 2);
        // Stored alone after the rollback: two transactions.
        assert_eq!(
            count(&sql, "SELECT count(DISTINCT xmin::text) FROM signals").await,
            2
        );
    }

    #[tokio::test]
    async fn no_request_is_answered_before_its_batch_commits() {
        let (db, pool, sql) = setup().await;
        // A deferred trigger runs inside COMMIT; it waits for an advisory lock this test holds,
        // so COMMIT cannot return until the test lets it.
        sql.batch_execute(
            "CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON signals \
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION gate();",
        )
        .await
        .expect("gate");
        let keeper = humbex_shared::db::connect(&db.url.pg_config())
            .await
            .expect("connect");
        keeper
            .execute("SELECT pg_advisory_lock(4242)", &[])
            .await
            .expect("lock");
        let (batch, mut answers) = jobs(
            ["x", "y", "z"]
                .into_iter()
                .map(|id| (TokenKind::User, ACTIVE, signal(id)))
                .collect(),
        );
        let running = tokio::spawn({
            let pool = pool.clone();
            async move { commit_batch(&pool, batch).await }
        });
        // Wait until the batch's COMMIT is blocked on the gate.
        tokio::time::timeout(Duration::from_secs(10), async {
            while count(
                &sql,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
            .await
                == 0
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the batch reaches COMMIT");
        for answer in &mut answers {
            assert!(
                matches!(answer.try_recv(), Err(TryRecvError::Empty)),
                "answered before COMMIT returned"
            );
        }
        assert_eq!(count(&sql, "SELECT count(*) FROM signals").await, 0);
        keeper
            .execute("SELECT pg_advisory_unlock(4242)", &[])
            .await
            .expect("unlock");
        running.await.expect("batch task");
        for answer in answers {
            assert!(matches!(answer.await, Ok(Ok(Submission::New { .. }))));
        }
        assert_eq!(count(&sql, "SELECT count(*) FROM signals").await, 3);
    }
}
