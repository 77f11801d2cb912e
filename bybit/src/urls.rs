//! Where Bybit lives: REST and private WebSocket base URLs per environment
//! (docs/bybit.md#base-urls).

/// A Bybit environment. Paper mode has no variant: its URLs come from the paper exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BybitEnvironment {
    Mainnet,
    Testnet,
    /// Demo trading (a separate mainnet account); keys only work on these hosts.
    Demo,
}

impl BybitEnvironment {
    pub fn rest_url(self) -> &'static str {
        match self {
            BybitEnvironment::Mainnet => "https://api.bybit.com",
            BybitEnvironment::Testnet => "https://api-testnet.bybit.com",
            BybitEnvironment::Demo => "https://api-demo.bybit.com",
        }
    }

    pub fn private_ws_url(self) -> &'static str {
        match self {
            BybitEnvironment::Mainnet => "wss://stream.bybit.com/v5/private",
            BybitEnvironment::Testnet => "wss://stream-testnet.bybit.com/v5/private",
            BybitEnvironment::Demo => "wss://stream-demo.bybit.com/v5/private",
        }
    }
}
