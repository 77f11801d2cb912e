//! Planning a v2 signal (one with `trade` fields) for one account: the spec with its defaults, the
//! stale check, what must be read from the exchange (position, equity, a price: only what the spec
//! needs), then the pure decisions of [`crate::trade`] turned into order rows: one row, or a
//! reduce-only and an opening leg for a target sync (docs/trading-v2-executor.md).

use anyhow::Context as _;
use chrono::Utc;
use humbex_bybit::{Credentials, Side};
use humbex_shared::domain::Action;
use humbex_shared::domain::trade::{MarginMode, OrderType, QuantityType, TradeSpec};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::claim::ClaimedSignal;
use crate::confirm::equity::{Cached, Reading};
use crate::instruments::RulesError;
use crate::orders::{OrderTerms, PlannedOrder, Target, TargetKey};
use crate::pipeline::Context;
use crate::trade::leverage;
use crate::trade::protection;
use crate::trade::rules::InstrumentRules;
use crate::trade::sizing::{self, Ask, Market, Scale};
use crate::trade::skip::SkipReason;
use crate::trade::stale;
use crate::trade::target::{self, LegKind};

/// One account's rows for a v2 signal.
pub async fn plan_account(
    ctx: &Context,
    signal: &ClaimedSignal,
    action: Action,
    stored: &TradeSpec,
    target: &Target,
    key: &TargetKey,
    rules: Result<InstrumentRules, RulesError>,
) -> anyhow::Result<Vec<PlannedOrder>> {
    let spec = stored
        .clone()
        .with_defaults(&signal.strategy_defaults, &target.defaults);
    let attached = protection::attachable(&spec);
    let terms = OrderTerms {
        leg: LegKind::Single,
        order_type: spec.order_type,
        limit_price: spec.limit_price.map(|p| p.get()),
        // A conditional entry; its direction is read from the price when it is sent (submit).
        trigger_price: spec.trigger_price.map(|p| p.get()),
        time_in_force: (spec.order_type == OrderType::Limit).then_some(spec.time_in_force),
        take_profit: attached.and_then(|p| p.take_profit),
        stop_loss: attached.and_then(|p| p.stop_loss),
        // Break-even is armed from the fill price too.
        protect_after_fill: protection::needs_trading_stop(&spec) || spec.break_even.is_some(),
        leverage: spec.leverage.map(|l| l.get()),
        cancel_after_secs: spec.cancel_after_secs.and_then(|s| i32::try_from(s).ok()),
        ..OrderTerms::default()
    };
    let nominal_buy = action == Action::Buy || spec.target_position.is_some_and(|t| t.get() > Decimal::ZERO);
    let row = |leg: LegKind, buy: bool, outcome: Result<(Decimal, bool), SkipReason>| {
        let (qty, reduce_only, skip) = match outcome {
            Ok((qty, reduce_only)) => (Some(qty), reduce_only, None),
            Err(reason) => (None, leg == LegKind::Reduce, Some(reason)),
        };
        PlannedOrder {
            user_id: target.user_id,
            api_key_id: Some(key.id),
            side: if buy { "buy" } else { "sell" },
            qty,
            reduce_only,
            skip_code: skip.as_ref().map(SkipReason::stored_code),
            skip_reason: skip.map(|r| r.to_string()),
            terms: OrderTerms { leg, ..terms.clone() },
        }
    };
    if let Err(reason) = stale::check(
        signal.signal_time,
        signal.received_at,
        Utc::now(),
        spec.max_lag_secs,
    ) {
        return Ok(vec![row(LegKind::Single, nominal_buy, Err(reason))]);
    }
    let rules = rules?;
    // equity_percent is "times leverage": the account's, read from its position slot.
    let needs_position = spec.target_position.is_some()
        || spec.leverage.is_some()
        || matches!(
            spec.quantity_type,
            QuantityType::PositionPercent | QuantityType::EquityPercent
        )
        || action == Action::Close;
    let needs_equity = matches!(
        spec.quantity_type,
        QuantityType::EquityPercent | QuantityType::RiskPercent
    );
    let needs_price = spec.target_position.is_none()
        && matches!(
            spec.quantity_type,
            QuantityType::Usdt | QuantityType::EquityPercent | QuantityType::RiskPercent
        );
    let credentials = if needs_position || needs_equity || spec.margin_mode.is_some() {
        let (row, stored) = key.sealed(target.user_id);
        Some(
            ctx.keys
                .credentials(row, stored)
                .map_err(|e| anyhow::anyhow!("API key {}: {e}", key.id))?,
        )
    } else {
        None
    };
    let account = read_account(
        ctx,
        signal,
        &spec,
        credentials.as_ref().map(|c| (key.id, c)),
        needs_position,
        needs_equity,
        needs_price,
    )
    .await?;
    // Leverage and margin mode before the order, only when they differ; a refusal is the row's
    // reason, with Bybit's code.
    if let Some(credentials) = credentials.as_ref()
        && let Err(reason) = account_settings(ctx, signal, &spec, &account, &rules, key, credentials).await
    {
        return Ok(vec![row(LegKind::Single, nominal_buy, Err(reason))]);
    }
    let scale = Scale {
        multiplier: target.size_multiplier,
        max_qty: target.max_qty,
    };
    let market_order = spec.order_type == OrderType::Market;
    // equity_percent sizes with the leverage the position will have.
    let account = Account {
        position_leverage: spec.leverage.map(|l| l.get()).or(account.position_leverage),
        ..account
    };
    if let Some(wanted) = spec.target_position {
        return Ok(
            match target::plan(
                account.position,
                wanted.get(),
                scale,
                &rules,
                account.price,
                market_order,
            ) {
                Ok(plan) => plan
                    .legs
                    .into_iter()
                    .map(|leg| {
                        let reduce_only = leg.reduce_only();
                        row(leg.kind, leg.buy, leg.qty.map(|q| (q, reduce_only)))
                    })
                    .collect(),
                Err(reason) => vec![row(LegKind::Single, nominal_buy, Err(reason))],
            },
        );
    }
    if action == Action::Close {
        // The whole position, reduce-only, as a limit when asked.
        let buy = account.position < Decimal::ZERO;
        let qty = rules.qty_down(account.position.abs());
        let outcome = if account.position.is_zero() {
            Err(SkipReason::NoPosition)
        } else {
            sizing::check_minimums(qty, true, account.price, &rules).map(|()| (qty, true))
        };
        return Ok(vec![row(LegKind::Single, buy, outcome)]);
    }
    let Some(quantity) = signal.quantity else {
        anyhow::bail!("a {action:?} signal without quantity or target_position passed the edge");
    };
    let ask = Ask {
        quantity_type: spec.quantity_type,
        quantity,
        buy: action == Action::Buy,
        market: market_order,
        stop_loss: spec.stop_loss,
    };
    let outcome = sizing::size(&ask, &account.market(), scale, &rules).map(|s| (s.qty, s.reduce_only));
    Ok(vec![row(LegKind::Single, ask.buy, outcome)])
}

/// What the account and the market look like, read only as far as the spec needs.
struct Account {
    position: Decimal,
    position_leverage: Option<Decimal>,
    equity: Option<Decimal>,
    price: Option<Decimal>,
}

impl Account {
    fn market(&self) -> Market {
        Market {
            price: self.price,
            equity: self.equity,
            leverage: self.position_leverage.unwrap_or(Decimal::ONE),
            position: self.position,
        }
    }
}

async fn read_account(
    ctx: &Context,
    signal: &ClaimedSignal,
    spec: &TradeSpec,
    // The account's key id and opened credentials.
    account_key: Option<(Uuid, &Credentials)>,
    needs_position: bool,
    needs_equity: bool,
    needs_price: bool,
) -> anyhow::Result<Account> {
    let mut account = Account {
        position: Decimal::ZERO,
        position_leverage: None,
        equity: None,
        // The order's own price values it; else the alert's price.
        price: spec.limit_price.map(|p| p.get()).or(signal.price),
    };
    if needs_position || needs_equity {
        let (api_key_id, credentials) = account_key.context("credentials for an account read")?;
        if needs_position {
            let positions = ctx.rest.position_list(credentials, &signal.symbol).await?.value;
            for p in &positions {
                account.position += match p.side {
                    Some(Side::Buy) => p.size,
                    Some(Side::Sell) => -p.size,
                    None => Decimal::ZERO,
                };
                account.position_leverage = account.position_leverage.or(p.leverage);
            }
        }
        if needs_equity {
            account.equity = equity(ctx, api_key_id, credentials).await?;
        }
    }
    if needs_price && account.price.is_none() {
        account.price = ctx.rest.ticker(&signal.symbol).await?.value.map(|t| t.last_price);
    }
    Ok(account)
}

/// The account's equity: what its private stream's `wallet` topic keeps fresh, else one REST read
/// (which then seeds the cache while the stream is subscribed).
async fn equity(
    ctx: &Context,
    api_key_id: Uuid,
    credentials: &Credentials,
) -> anyhow::Result<Option<Decimal>> {
    let ticket = match ctx.confirmer.equity().get(api_key_id) {
        Cached::Fresh(equity) => return Ok(Some(equity)),
        Cached::Missing(ticket) => ticket,
    };
    let wallets = wallet_balance(ctx, api_key_id, credentials).await?;
    let reading = Reading::of_answer(&wallets);
    if let (Some(ticket), Some(reading)) = (ticket, reading) {
        ctx.confirmer.equity().seed(ticket, reading);
    }
    Ok(reading.map(|r| r.equity))
}

#[tracing::instrument(skip_all, fields(%api_key_id))]
async fn wallet_balance(
    ctx: &Context,
    api_key_id: Uuid,
    credentials: &Credentials,
) -> anyhow::Result<Vec<humbex_bybit::WalletAccount>> {
    Ok(ctx.rest.wallet_balance(credentials).await?.value)
}

/// Margin modes this executor set per account, so an unchanged mode costs no call.
static MARGIN_MODES: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<uuid::Uuid, MarginMode>>,
> = std::sync::LazyLock::new(Default::default);

/// Set the leverage (when it differs from the position's) and the margin mode (when this executor
/// has not set it yet); 110043 and its kin count as set (the client says `AlreadySet`).
async fn account_settings(
    ctx: &Context,
    signal: &ClaimedSignal,
    spec: &TradeSpec,
    account: &Account,
    rules: &InstrumentRules,
    key: &TargetKey,
    credentials: &Credentials,
) -> Result<(), SkipReason> {
    let known_mode = MARGIN_MODES.lock().ok().and_then(|m| m.get(&key.id).copied());
    let change = leverage::change(
        spec.leverage,
        account.position_leverage,
        spec.margin_mode,
        known_mode,
        rules,
    )?;
    let refused = |e: humbex_bybit::BybitError| SkipReason::Exchange {
        code: e
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "exchange_error".into()),
        message: e.to_string(),
    };
    if let Some(mode) = change.margin_mode {
        let wire = match mode {
            MarginMode::Cross => humbex_bybit::MarginMode::RegularMargin,
            MarginMode::Isolated => humbex_bybit::MarginMode::IsolatedMargin,
        };
        ctx.rest
            .set_margin_mode(credentials, wire)
            .await
            .map_err(refused)?;
        if let Ok(mut modes) = MARGIN_MODES.lock() {
            modes.insert(key.id, mode);
        }
    }
    if let Some(leverage) = change.leverage {
        ctx.rest
            .set_leverage(credentials, &signal.symbol, leverage)
            .await
            .map_err(refused)?;
    }
    Ok(())
}
