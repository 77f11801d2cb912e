//! `PaperExchange`: the shared handle over the engine, the fault board and the push channels.
//! REST, WebSocket and control handlers all go through it; embedders (tests, `humbex up`) may too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::Utc;
use rust_decimal::Decimal;
use tokio::sync::broadcast;

use crate::config::{AccountSpec, PaperExchangeConfig};
use crate::engine::{AccountExists, ExchangeState, Execution, Order, Position, Push, Topic};
use crate::faults::{ActiveFault, DropConnections, Fault, FaultBoard, FaultError, PushDecision};

/// Pushes an account may have in flight to one slow WebSocket reader before it starts losing them.
const PUSH_CHANNEL_CAPACITY: usize = 4096;

pub struct PaperExchange {
    pub(crate) config: PaperExchangeConfig,
    pub(crate) state: Mutex<ExchangeState>,
    pub(crate) faults: FaultBoard,
    push_senders: RwLock<HashMap<String, broadcast::Sender<Arc<Push>>>>,
    drop_sender: broadcast::Sender<DropConnections>,
    /// The symbol of every price change, for the public ticker stream.
    price_sender: broadcast::Sender<String>,
    /// Authenticated private REST requests per account and path, so a test can tell whether a
    /// client asked (say, for the wallet balance) or used what the stream pushed.
    requests: Mutex<HashMap<String, HashMap<String, u64>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown symbol {0}")]
pub struct UnknownSymbol(pub String);

#[derive(Debug, thiserror::Error)]
#[error("unknown api_key")]
pub struct UnknownAccount;

impl PaperExchange {
    pub fn new(config: PaperExchangeConfig) -> Arc<PaperExchange> {
        let state = ExchangeState::new(&config.symbols);
        let (drop_sender, _) = broadcast::channel(64);
        let (price_sender, _) = broadcast::channel(1024);
        let exchange = Arc::new(PaperExchange {
            state: Mutex::new(state),
            faults: FaultBoard::default(),
            push_senders: RwLock::new(HashMap::new()),
            drop_sender,
            price_sender,
            requests: Mutex::new(HashMap::new()),
            config,
        });
        for spec in exchange.config.accounts.clone() {
            // Duplicates in the configuration keep the first entry.
            let _ = exchange.create_account(spec);
        }
        exchange
    }

    pub fn config(&self) -> &PaperExchangeConfig {
        &self.config
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ExchangeState> {
        // A panic while holding the lock leaves state that is still usable for a test double.
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.emit_pushes = true;
        state
    }

    /// The state, set to build pushes only if a private WebSocket of this account is authenticated.
    pub(crate) fn lock_for_account(&self, api_key: &str) -> std::sync::MutexGuard<'_, ExchangeState> {
        let listening = self
            .push_senders
            .read()
            .expect("push senders lock")
            .get(api_key)
            .is_some_and(|tx| tx.receiver_count() > 0);
        let mut state = self.lock();
        state.emit_pushes = listening;
        state
    }

    /// How many accounts have an authenticated private WebSocket right now (benchmarks wait for
    /// every stream to be open before they start the clock).
    pub fn listening_accounts(&self) -> usize {
        self.push_senders
            .read()
            .expect("push senders lock")
            .values()
            .filter(|tx| tx.receiver_count() > 0)
            .count()
    }

    /// How many authenticated private WebSockets the account has right now (several executors
    /// must share one stream per account: their tests count them here).
    pub fn private_connections(&self, api_key: &str) -> usize {
        self.push_senders
            .read()
            .expect("push senders lock")
            .get(api_key)
            .map_or(0, |tx| tx.receiver_count())
    }

    pub fn create_account(&self, spec: AccountSpec) -> Result<u64, AccountExists> {
        let key = spec.api_key.clone();
        let user_id = self.lock().add_account(spec, Utc::now())?.user_id;
        let (tx, _) = broadcast::channel(PUSH_CHANNEL_CAPACITY);
        self.push_senders
            .write()
            .expect("push senders lock")
            .insert(key, tx);
        Ok(user_id)
    }

    pub fn account_spec(&self, api_key: &str) -> Option<AccountSpec> {
        self.lock().accounts.get(api_key).map(|a| a.spec.clone())
    }

    /// Sets a price and publishes everything it sets off (fills of crossed orders, triggers,
    /// stops, liquidations, position updates).
    pub fn set_price(&self, symbol: &str, price: Decimal) -> Result<Decimal, UnknownSymbol> {
        self.set_price_with(symbol, price, None)
    }

    /// As [`PaperExchange::set_price`], filling each crossed resting order by at most
    /// `max_fill_qty` (a partial fill; the rest waits for the next crossing price).
    pub fn set_price_with(
        &self,
        symbol: &str,
        price: Decimal,
        max_fill_qty: Option<Decimal>,
    ) -> Result<Decimal, UnknownSymbol> {
        let listening: std::collections::HashSet<String> = self
            .push_senders
            .read()
            .expect("push senders lock")
            .iter()
            .filter(|(_, tx)| tx.receiver_count() > 0)
            .map(|(key, _)| key.clone())
            .collect();
        let (fills, effective) = {
            let mut state = self.lock();
            let fills = state
                .set_price(
                    symbol,
                    price,
                    max_fill_qty,
                    &|key| listening.contains(key),
                    Utc::now(),
                )
                .ok_or_else(|| UnknownSymbol(symbol.into()))?;
            (fills, state.instruments[symbol].price)
        };
        for (api_key, pushes) in fills {
            self.publish(&api_key, pushes);
        }
        let _ = self.price_sender.send(symbol.to_string());
        Ok(effective)
    }

    pub fn price(&self, symbol: &str) -> Option<Decimal> {
        self.lock().instruments.get(symbol).map(|i| i.price)
    }

    pub fn orders(&self, api_key: &str) -> Result<Vec<Order>, UnknownAccount> {
        Ok(self
            .lock()
            .accounts
            .get(api_key)
            .ok_or(UnknownAccount)?
            .orders
            .clone())
    }

    pub fn executions(&self, api_key: &str) -> Result<Vec<Execution>, UnknownAccount> {
        Ok(self
            .lock()
            .accounts
            .get(api_key)
            .ok_or(UnknownAccount)?
            .executions
            .clone())
    }

    pub fn positions(&self, api_key: &str) -> Result<Vec<Position>, UnknownAccount> {
        let state = self.lock();
        let account = state.accounts.get(api_key).ok_or(UnknownAccount)?;
        Ok(account
            .positions
            .values()
            .map(|p| {
                let mut view = p.clone();
                if let Some(i) = state.instruments.get(&p.symbol) {
                    view.mark_price = i.price;
                    view.unrealised_pnl = p.unrealised_at(i.price);
                }
                view.liq_price = state.liq_price(account, p);
                view
            })
            .collect())
    }

    /// Sets an account's USDT wallet balance (a transfer in or out, as a user can make on Bybit's
    /// site) and pushes the `wallet` topic as a balance change does.
    pub fn set_balance(&self, api_key: &str, balance: Decimal) -> Result<(), UnknownAccount> {
        let pushes = {
            let mut state = self.lock_for_account(api_key);
            let account = state.accounts.get_mut(api_key).ok_or(UnknownAccount)?;
            account.wallet_balance = balance;
            let account = &state.accounts[api_key];
            let wallet = state.margin_summary(account).wallet_json();
            if state.emit_pushes {
                vec![Push::new(Topic::Wallet, vec![wallet])]
            } else {
                Vec::new()
            }
        };
        self.publish(api_key, pushes);
        Ok(())
    }

    /// Counts one authenticated private REST request of the account.
    pub(crate) fn count_request(&self, api_key: &str, path: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests
            .entry(api_key.to_owned())
            .or_default()
            .entry(path.to_owned())
            .or_default() += 1;
    }

    /// How many authenticated private REST requests the account has made to `path`
    /// (`/v5/account/wallet-balance`, say).
    pub fn requests(&self, api_key: &str, path: &str) -> u64 {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests
            .get(api_key)
            .and_then(|paths| paths.get(path))
            .copied()
            .unwrap_or(0)
    }

    /// Every path the account's authenticated private REST requests went to, with its count.
    pub fn request_counts(&self, api_key: &str) -> HashMap<String, u64> {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.get(api_key).cloned().unwrap_or_default()
    }

    /// Adds a fault; `drop_ws_connections` is applied at once instead of being kept.
    pub fn add_fault(&self, fault: Fault) -> Result<ActiveFault, FaultError> {
        fault.validate()?;
        if let Fault::DropWsConnections { api_key } = &fault {
            let _ = self.drop_sender.send(DropConnections {
                api_key: api_key.clone(),
            });
        }
        Ok(self.faults.add(fault))
    }

    pub fn faults(&self) -> Vec<ActiveFault> {
        self.faults.list()
    }

    pub fn clear_faults(&self) -> usize {
        self.faults.clear()
    }

    pub(crate) fn subscribe_pushes(&self, api_key: &str) -> Option<broadcast::Receiver<Arc<Push>>> {
        self.push_senders
            .read()
            .expect("push senders lock")
            .get(api_key)
            .map(|tx| tx.subscribe())
    }

    pub(crate) fn subscribe_prices(&self) -> broadcast::Receiver<String> {
        self.price_sender.subscribe()
    }

    pub(crate) fn subscribe_drops(&self) -> broadcast::Receiver<DropConnections> {
        self.drop_sender.subscribe()
    }

    /// Closes every private WebSocket connection (used at shutdown).
    pub(crate) fn drop_all_connections(&self) {
        let _ = self.drop_sender.send(DropConnections { api_key: None });
    }

    pub(crate) fn publish(&self, api_key: &str, mut pushes: Vec<Push>) {
        let Some(tx) = self
            .push_senders
            .read()
            .expect("push senders lock")
            .get(api_key)
            .cloned()
        else {
            return;
        };
        let has_fill = pushes.iter().any(|p| p.topic == Topic::Execution);
        if has_fill && self.faults.order_push_first(api_key) {
            move_order_pushes_before_executions(&mut pushes);
        }
        for push in pushes {
            match self.faults.push(api_key, push.topic) {
                PushDecision::Deliver => {
                    let _ = tx.send(Arc::new(push));
                }
                PushDecision::Withhold => {}
                PushDecision::Delay(delay) => {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(Arc::new(push));
                    });
                }
            }
        }
    }
}

/// Moves each `order` push ahead of the execution pushes directly before it (one fill's group).
fn move_order_pushes_before_executions(pushes: &mut [Push]) {
    for i in 0..pushes.len() {
        if pushes[i].topic == Topic::Order {
            let mut start = i;
            while start > 0 && matches!(pushes[start - 1].topic, Topic::Execution | Topic::ExecutionFast) {
                start -= 1;
            }
            pushes[start..=i].rotate_right(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_pushes_move_ahead_of_their_own_executions() {
        let topics = [
            Topic::Execution,
            Topic::ExecutionFast,
            Topic::Order,
            Topic::Position,
            Topic::Execution,
            Topic::Order,
            Topic::Wallet,
        ];
        let mut pushes: Vec<Push> = topics.iter().map(|&topic| Push::new(topic, Vec::new())).collect();
        move_order_pushes_before_executions(&mut pushes);
        let order: Vec<Topic> = pushes.iter().map(|p| p.topic).collect();
        assert_eq!(
            order,
            [
                Topic::Order,
                Topic::Execution,
                Topic::ExecutionFast,
                Topic::Position,
                Topic::Order,
                Topic::Execution,
                Topic::Wallet
            ]
        );
    }
}
