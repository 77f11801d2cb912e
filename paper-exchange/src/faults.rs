//! Fault injection: the switches tests and benchmarks flip through `POST /paper/faults` to prove a
//! client's reliability (latency, 5xx/timeouts around order create, 10006 bursts, dropped or late pushes).
//!
//! One fault per `POST /paper/faults`; the body is one of these JSON objects (`kind` selects the variant,
//! every `api_key` is optional and limits the fault to that account; `count` says how many matching
//! events the fault applies to before it removes itself; without `count` it stays until
//! `DELETE /paper/faults`):
//!
//! ```json
//! {"kind": "latency", "ms": 250, "path": "/v5/order/create", "api_key": "k", "count": 3}
//! {"kind": "order_create_http_error", "count": 2, "status": 503, "after_placing": true}
//! {"kind": "order_create_timeout", "count": 1, "hold_ms": 30000, "after_placing": true}
//! {"kind": "order_create_ret_code", "count": 1, "ret_code": 10016, "ret_msg": "System error.", "after_placing": false}
//! {"kind": "rate_limit_burst", "count": 5}
//! {"kind": "drop_ws_connections"}
//! {"kind": "delay_pushes", "ms": 500, "topics": ["order", "execution"], "count": 4}
//! {"kind": "withhold_pushes", "topics": ["execution.fast"], "count": 2}
//! {"kind": "order_push_first", "count": 1}
//! ```
//!
//! * `latency` adds `ms` before any `/v5/...` REST request (or only `path`) is processed.
//! * `order_create_http_error` answers the next `count` order creates with HTTP `status` (default 500)
//!   and a plain-text body; with `after_placing: true` the order was really placed first (the ambiguous
//!   case a client must resolve by querying its orderLinkId).
//! * `order_create_timeout` holds the next `count` order creates for `hold_ms` (default 30000) and then
//!   answers 504, so the client times out first; `after_placing` as above.
//! * `order_create_ret_code` answers with HTTP 200 and the given Bybit retCode (e.g. 10016).
//! * `rate_limit_burst` answers the next `count` order creates with retCode 10006, nothing placed.
//! * `drop_ws_connections` closes the matching private WebSocket connections now (applied at once,
//!   not kept).
//! * `delay_pushes` holds each matching push for `ms` before it is sent; `withhold_pushes` never sends
//!   the matching pushes. `topics` takes `order`, `execution`, `execution.fast`, `position`, `wallet`
//!   (all when absent); `count` counts pushes (one topic message each).
//! * `order_push_first` sends a fill's `order` push before its `execution`/`execution.fast` pushes
//!   (normally they come after), since Bybit does not document the relative order; `count` counts the
//!   requests or price moves whose fills it reorders.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::engine::Topic;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    Latency {
        ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    OrderCreateHttpError {
        count: u32,
        #[serde(default = "default_http_error_status")]
        status: u16,
        #[serde(default)]
        after_placing: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
    },
    OrderCreateTimeout {
        count: u32,
        #[serde(default = "default_hold_ms")]
        hold_ms: u64,
        #[serde(default)]
        after_placing: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
    },
    OrderCreateRetCode {
        count: u32,
        ret_code: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ret_msg: Option<String>,
        #[serde(default)]
        after_placing: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
    },
    RateLimitBurst {
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
    },
    DropWsConnections {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
    },
    DelayPushes {
        ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topics: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    WithholdPushes {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topics: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    OrderPushFirst {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
}

fn default_http_error_status() -> u16 {
    500
}
fn default_hold_ms() -> u64 {
    30_000
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultError {
    #[error("count must be at least 1")]
    ZeroCount,
    #[error("status must be between 500 and 599")]
    StatusNot5xx,
    #[error("topics: {0:?} is not one of order, execution, execution.fast, position, wallet")]
    UnknownTopic(String),
}

impl Fault {
    pub fn validate(&self) -> Result<(), FaultError> {
        let count = self.count();
        if count == Some(0) {
            return Err(FaultError::ZeroCount);
        }
        if let Fault::OrderCreateHttpError { status, .. } = self
            && !(500..=599).contains(status)
        {
            return Err(FaultError::StatusNot5xx);
        }
        if let Fault::DelayPushes {
            topics: Some(topics), ..
        }
        | Fault::WithholdPushes {
            topics: Some(topics), ..
        } = self
        {
            for t in topics {
                if Topic::from_base_name(t).is_none() {
                    return Err(FaultError::UnknownTopic(t.clone()));
                }
            }
        }
        Ok(())
    }

    fn api_key(&self) -> Option<&str> {
        match self {
            Fault::Latency { api_key, .. }
            | Fault::OrderCreateHttpError { api_key, .. }
            | Fault::OrderCreateTimeout { api_key, .. }
            | Fault::OrderCreateRetCode { api_key, .. }
            | Fault::RateLimitBurst { api_key, .. }
            | Fault::DropWsConnections { api_key }
            | Fault::DelayPushes { api_key, .. }
            | Fault::WithholdPushes { api_key, .. }
            | Fault::OrderPushFirst { api_key, .. } => api_key.as_deref(),
        }
    }

    /// How many events the fault applies to as given (None: until cleared, or, for dropping the
    /// WebSocket connections, no count at all).
    fn count(&self) -> Option<u32> {
        match self {
            Fault::Latency { count, .. }
            | Fault::DelayPushes { count, .. }
            | Fault::WithholdPushes { count, .. }
            | Fault::OrderPushFirst { count, .. } => *count,
            Fault::OrderCreateHttpError { count, .. }
            | Fault::OrderCreateTimeout { count, .. }
            | Fault::OrderCreateRetCode { count, .. }
            | Fault::RateLimitBurst { count, .. } => Some(*count),
            Fault::DropWsConnections { .. } => None,
        }
    }

    fn initial_remaining(&self) -> Option<u32> {
        match self {
            // Acts once, when installed: nothing remains.
            Fault::DropWsConnections { .. } => Some(0),
            _ => self.count(),
        }
    }
}

/// A stored fault and how many more events it applies to (None = until cleared).
#[derive(Clone, Debug, Serialize)]
pub struct ActiveFault {
    pub id: Uuid,
    #[serde(flatten)]
    pub fault: Fault,
    pub remaining: Option<u32>,
}

/// What an order create must suffer, taken from the first matching fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderCreateFault {
    HttpError {
        status: u16,
        after_placing: bool,
    },
    Timeout {
        hold: Duration,
        after_placing: bool,
    },
    RetCode {
        code: i64,
        msg: String,
        after_placing: bool,
    },
    RateLimited,
}

impl OrderCreateFault {
    /// Whether the order is really placed before the failure is shown.
    pub fn after_placing(&self) -> bool {
        match self {
            OrderCreateFault::HttpError { after_placing, .. }
            | OrderCreateFault::Timeout { after_placing, .. }
            | OrderCreateFault::RetCode { after_placing, .. } => *after_placing,
            OrderCreateFault::RateLimited => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushDecision {
    Deliver,
    Delay(Duration),
    Withhold,
}

#[derive(Default)]
pub struct FaultBoard {
    active: Mutex<Vec<ActiveFault>>,
}

fn key_matches(filter: Option<&str>, api_key: Option<&str>) -> bool {
    match filter {
        None => true,
        Some(f) => api_key == Some(f),
    }
}

impl FaultBoard {
    /// Stores a fault (not `drop_ws_connections`, which the caller applies at once).
    pub fn add(&self, fault: Fault) -> ActiveFault {
        let active = ActiveFault {
            id: Uuid::new_v4(),
            remaining: fault.initial_remaining(),
            fault,
        };
        if !matches!(active.fault, Fault::DropWsConnections { .. }) {
            self.active.lock().expect("fault lock").push(active.clone());
        }
        active
    }

    pub fn list(&self) -> Vec<ActiveFault> {
        self.active.lock().expect("fault lock").clone()
    }

    pub fn clear(&self) -> usize {
        let mut active = self.active.lock().expect("fault lock");
        let n = active.len();
        active.clear();
        n
    }

    pub fn is_empty(&self) -> bool {
        self.active.lock().expect("fault lock").is_empty()
    }

    /// Finds the first fault `select` accepts, uses one of its count, and drops it when used up.
    fn take<T>(&self, mut select: impl FnMut(&Fault) -> Option<T>) -> Option<T> {
        let mut active = self.active.lock().expect("fault lock");
        let mut found = None;
        for (i, f) in active.iter_mut().enumerate() {
            if let Some(value) = select(&f.fault) {
                if let Some(r) = f.remaining.as_mut() {
                    *r -= 1;
                }
                found = Some((i, value, f.remaining == Some(0)));
                break;
            }
        }
        let (i, value, used_up) = found?;
        if used_up {
            active.remove(i);
        }
        Some(value)
    }

    /// Sum of every matching latency fault.
    pub fn latency(&self, path: &str, api_key: Option<&str>) -> Option<Duration> {
        let mut active = self.active.lock().expect("fault lock");
        let mut total = 0u64;
        active.retain_mut(|f| {
            if let Fault::Latency { ms, path: p, .. } = &f.fault
                && p.as_deref().is_none_or(|p| p == path)
                && key_matches(f.fault.api_key(), api_key)
            {
                total += ms;
                if let Some(r) = f.remaining.as_mut() {
                    *r -= 1;
                    return *r > 0;
                }
            }
            true
        });
        (total > 0).then(|| Duration::from_millis(total))
    }

    pub fn order_create(&self, api_key: &str) -> Option<OrderCreateFault> {
        self.take(|fault| {
            if !key_matches(fault.api_key(), Some(api_key)) {
                return None;
            }
            match fault {
                Fault::OrderCreateHttpError {
                    status,
                    after_placing,
                    ..
                } => Some(OrderCreateFault::HttpError {
                    status: *status,
                    after_placing: *after_placing,
                }),
                Fault::OrderCreateTimeout {
                    hold_ms,
                    after_placing,
                    ..
                } => Some(OrderCreateFault::Timeout {
                    hold: Duration::from_millis(*hold_ms),
                    after_placing: *after_placing,
                }),
                Fault::OrderCreateRetCode {
                    ret_code,
                    ret_msg,
                    after_placing,
                    ..
                } => Some(OrderCreateFault::RetCode {
                    code: *ret_code,
                    msg: ret_msg
                        .clone()
                        .unwrap_or_else(|| "System error. Please try again later.".into()),
                    after_placing: *after_placing,
                }),
                Fault::RateLimitBurst { .. } => Some(OrderCreateFault::RateLimited),
                _ => None,
            }
        })
    }

    /// Whether this batch of pushes should carry each fill's order update before its executions.
    pub fn order_push_first(&self, api_key: &str) -> bool {
        self.take(|fault| match fault {
            Fault::OrderPushFirst { .. } if key_matches(fault.api_key(), Some(api_key)) => Some(()),
            _ => None,
        })
        .is_some()
    }

    pub fn push(&self, api_key: &str, topic: Topic) -> PushDecision {
        let topic_matches = |topics: &Option<Vec<String>>| {
            topics
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|t| t == topic.base_name()))
        };
        self.take(|fault| {
            if !key_matches(fault.api_key(), Some(api_key)) {
                return None;
            }
            match fault {
                Fault::WithholdPushes { topics, .. } if topic_matches(topics) => Some(PushDecision::Withhold),
                Fault::DelayPushes { ms, topics, .. } if topic_matches(topics) => {
                    Some(PushDecision::Delay(Duration::from_millis(*ms)))
                }
                _ => None,
            }
        })
        .unwrap_or(PushDecision::Deliver)
    }
}

/// Which connections a `drop_ws_connections` fault closes.
#[derive(Clone, Debug)]
pub struct DropConnections {
    pub api_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_examples() {
        let examples = [
            r#"{"kind": "latency", "ms": 250, "path": "/v5/order/create", "api_key": "k", "count": 3}"#,
            r#"{"kind": "order_create_http_error", "count": 2, "status": 503, "after_placing": true}"#,
            r#"{"kind": "order_create_timeout", "count": 1, "hold_ms": 30000, "after_placing": true}"#,
            r#"{"kind": "order_create_ret_code", "count": 1, "ret_code": 10016, "ret_msg": "System error.", "after_placing": false}"#,
            r#"{"kind": "rate_limit_burst", "count": 5}"#,
            r#"{"kind": "drop_ws_connections"}"#,
            r#"{"kind": "delay_pushes", "ms": 500, "topics": ["order", "execution"], "count": 4}"#,
            r#"{"kind": "withhold_pushes", "topics": ["execution.fast"], "count": 2}"#,
            r#"{"kind": "order_push_first", "count": 1}"#,
        ];
        for e in examples {
            let f: Fault = serde_json::from_str(e).unwrap_or_else(|err| panic!("{e}: {err}"));
            f.validate().unwrap();
        }
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"rate_limit_burst","count":1,"typo":1}"#).is_err());
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"nope"}"#).is_err());
    }

    #[test]
    fn counts_down_and_removes() {
        let board = FaultBoard::default();
        board.add(Fault::RateLimitBurst {
            count: 2,
            api_key: Some("a".into()),
        });
        assert_eq!(board.order_create("b"), None);
        assert_eq!(board.order_create("a"), Some(OrderCreateFault::RateLimited));
        assert_eq!(board.order_create("a"), Some(OrderCreateFault::RateLimited));
        assert_eq!(board.order_create("a"), None);
        assert!(board.is_empty());
    }

    #[test]
    fn push_filters_by_topic() {
        let board = FaultBoard::default();
        board.add(Fault::WithholdPushes {
            topics: Some(vec!["order".into()]),
            api_key: None,
            count: Some(1),
        });
        assert_eq!(board.push("a", Topic::Execution), PushDecision::Deliver);
        assert_eq!(board.push("a", Topic::Order), PushDecision::Withhold);
        assert_eq!(board.push("a", Topic::Order), PushDecision::Deliver);
    }
}
