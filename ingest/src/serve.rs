//! Accepting and serving HTTP/1.1 connections with bounds: at most `max_connections` at once, a
//! deadline for each request's headers (which also ends idle kept-alive connections), and one for
//! its body. poem's own server sets none of these, so a few thousand slow clients could hold it.

use std::convert::Infallible;
use std::future::Future;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use humbex_shared::config::HttpLimits;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::endpoint::BoxEndpoint;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Body, Endpoint, Response};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// Lets a handler close the connection its request came on, at once and whatever is unsent. The
/// console's event stream needs it for a browser that stopped reading: hyper polls a response body
/// only when the socket takes more, so such a body can never end itself (docs/console.md).
/// Every request carries one in its extensions.
#[derive(Clone, Default)]
pub struct ConnectionCloser(Arc<Notify>);

impl ConnectionCloser {
    /// Close the connection (its task drops it: the socket closes, unsent data is abandoned).
    pub fn close(&self) {
        // A stored permit: the connection's task sees it even if it is not waiting yet.
        self.0.notify_one();
    }
}

/// The socket of the connection a request came on, for the handler of that request only: use it
/// borrowed from the request, while the request is being handled (its connection alive), never
/// from a task that may outlive the connection.
#[derive(Clone)]
pub(crate) struct ConnectionSocket(RawFd);

impl ConnectionSocket {
    /// Cap the kernel's send buffer of this connection near `bytes` (Linux doubles the value and
    /// stops tuning it, which could otherwise grow it to megabytes): for a long response whose
    /// client may stop reading, so that it is found out soon instead of buffered.
    pub(crate) fn limit_send_buffer(&self, bytes: usize) -> std::io::Result<()> {
        // SAFETY: the descriptor is the socket of the connection whose request holds `self`; that
        // connection's task owns the socket and is running the request's handler, which borrows
        // `self` from the request (the type's contract), so the descriptor is open for this call.
        let fd = unsafe { BorrowedFd::borrow_raw(self.0) };
        socket2::SockRef::from(&fd).set_send_buffer_size(bytes)
    }
}

/// How long in-flight requests may finish after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(5);

/// Serve `ep` on `listener` until `shutdown` completes, then let open connections finish their
/// current request (at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    ep: BoxEndpoint<'static, Response>,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let ep = Arc::new(ep);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // A connection over the cap waits in the listen queue until a slot frees; the header
        // deadline guarantees that slots free.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let ep = ep.clone();
        let mut stopping = stopping.clone();
        let closer = ConnectionCloser::default();
        let fd = stream.as_raw_fd();
        connections.spawn(async move {
            let service = hyper::service::service_fn({
                let closer = closer.clone();
                move |req| {
                    let ep = ep.clone();
                    let closer = closer.clone();
                    async move {
                        let req: poem::Request = (
                            req,
                            LocalAddr(local.into()),
                            RemoteAddr(peer.into()),
                            poem::http::uri::Scheme::HTTP,
                        )
                            .into();
                        let mut req = req;
                        req.extensions_mut().insert(closer);
                        req.extensions_mut().insert(ConnectionSocket(fd));
                        let body = req.take_body();
                        req.set_body(with_deadline(body, limits.body_read_timeout));
                        let resp: hyper::Response<
                            http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>,
                        > = ep.get_response(req).await.into();
                        Ok::<_, Infallible>(resp)
                    }
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let stop = tokio::select! {
                _ = conn.as_mut() => false,
                // Dropped below without a graceful end: the handler gave up on this client.
                () = closer.0.notified() => false,
                stopped = stopping.wait_for(|stop| *stop) => stopped.is_ok(),
            };
            if stop {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            drop(slot);
        });
    }
    let _ = stop.send(true);
    let drained =
        tokio::time::timeout(DRAIN, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain time; closing them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// `body`, failing with a timeout error if it has not all arrived within `limit`: a handler
/// reading it answers as for any unreadable body, and the connection is not kept.
fn with_deadline(body: Body, limit: Duration) -> Body {
    let deadline = Box::pin(tokio::time::sleep(limit));
    let stream = futures_util::stream::unfold(
        Some((body.into_bytes_stream(), deadline)),
        |state| async move {
            let (mut stream, mut deadline) = state?;
            tokio::select! {
                item = stream.next() => item.map(|item| (item, Some((stream, deadline)))),
                () = &mut deadline => Some((
                    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body did not arrive in time")),
                    None,
                )),
            }
        },
    );
    Body::from_bytes_stream(stream)
}
