//! Private-stream messages: the topics an account can subscribe to and one push already serialised.

use serde_json::Value;

/// A topic of the private stream. `data` holds the items already in Bybit's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Order,
    Execution,
    ExecutionFast,
    Position,
    Wallet,
}

impl Topic {
    pub fn base_name(self) -> &'static str {
        match self {
            Topic::Order => "order",
            Topic::Execution => "execution",
            Topic::ExecutionFast => "execution.fast",
            Topic::Position => "position",
            Topic::Wallet => "wallet",
        }
    }
    pub fn from_base_name(name: &str) -> Option<Topic> {
        Some(match name {
            "order" => Topic::Order,
            "execution" => Topic::Execution,
            "execution.fast" => Topic::ExecutionFast,
            "position" => Topic::Position,
            "wallet" => Topic::Wallet,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Push {
    pub topic: Topic,
    /// The `data` array, serialised once here rather than once per listening connection.
    pub data_json: String,
}

impl Push {
    pub fn new(topic: Topic, items: Vec<Value>) -> Push {
        Push {
            topic,
            data_json: Value::Array(items).to_string(),
        }
    }
}
