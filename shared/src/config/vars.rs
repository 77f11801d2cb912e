//! Every environment variable HUMBEX reads, in one table: name, default, the roles that read it and
//! what it means. `humbex config-vars` prints it as the markdown table of docs/configuration.md.

/// A command that reads configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Executor,
    Migrate,
    KeysRewrap,
    PaperExchange,
    /// `humbex up` itself (beyond the roles it runs).
    Up,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Executor => "executor",
            Role::Migrate => "migrate",
            Role::KeysRewrap => "keys rewrap",
            Role::PaperExchange => "paper-exchange",
            Role::Up => "up",
        }
    }
}

/// One variable. `default` and `description` are markdown.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    pub default: &'static str,
    pub roles: &'static [Role],
    pub description: &'static str,
}

const ALL: &[Role] = &[
    Role::Ingest,
    Role::Executor,
    Role::Migrate,
    Role::KeysRewrap,
    Role::PaperExchange,
];
const DATABASE: &[Role] = &[Role::Ingest, Role::Executor, Role::Migrate, Role::KeysRewrap];
const SERVICES: &[Role] = &[Role::Ingest, Role::Executor];

/// Every variable, in the order the docs list them.
pub const VARS: &[Var] = &[
    Var {
        name: "DATABASE_URL",
        default: r#"`postgres://postgres@127.0.0.1:5432/humbex`"#,
        roles: DATABASE,
        description: r#"PostgreSQL; `up` and `migrate` create the database if missing. libpq's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`), `sslrootcert` (a file, or `system`), `sslcert` and `sslkey` (a client certificate) are honoured, and several hosts with `target_session_attrs=read-write` ([deployment](deployment.md#postgresql-over-tls))"#,
    },
    Var {
        name: "DATABASE_DIRECT_URL",
        default: r#"`DATABASE_URL`"#,
        roles: &[Role::Executor, Role::Migrate, Role::Up],
        description: r#"a direct connection (not through a transaction pooler) for the executor's LISTEN and for migrations, when `DATABASE_URL` goes through PgBouncer in transaction mode ([deployment](deployment.md#connection-poolers))"#,
    },
    Var {
        name: "PGSSLMODE",
        default: r#"`prefer`"#,
        roles: DATABASE,
        description: r#"libpq's fallback for `sslmode` when `DATABASE_URL` (or `DATABASE_DIRECT_URL`) does not set it; the URL wins ([deployment](deployment.md#postgresql-over-tls))"#,
    },
    Var {
        name: "PGSSLROOTCERT",
        default: r#"`~/.postgresql/root.crt` if it exists"#,
        roles: DATABASE,
        description: r#"libpq's fallback for `sslrootcert` when the URL does not set it"#,
    },
    Var {
        name: "PGSSLCERT",
        default: r#"`~/.postgresql/postgresql.crt` if it and the key exist"#,
        roles: DATABASE,
        description: r#"libpq's fallback for `sslcert` (a PEM client certificate chain) when the URL does not set it; needs a key (`sslkey` or `PGSSLKEY`)"#,
    },
    Var {
        name: "PGSSLKEY",
        default: r#"`~/.postgresql/postgresql.key` if it and the certificate exist"#,
        roles: DATABASE,
        description: r#"libpq's fallback for `sslkey` (the client certificate's PEM private key, mode 0600 or less) when the URL does not set it"#,
    },
    Var {
        name: "BACKEND_HOST",
        default: r#"`127.0.0.1`"#,
        roles: &[Role::Ingest],
        description: r#"listen address (`0.0.0.0` in containers)"#,
    },
    Var {
        name: "BACKEND_PORT",
        default: r#"`8000`"#,
        roles: &[Role::Ingest],
        description: r#"listen port (`0` picks a free one)"#,
    },
    Var {
        name: "TRADINGVIEW_SECRET",
        default: r#"generated in paper mode"#,
        roles: &[Role::Ingest],
        description: r#"key of `X-Signature` (its bytes as given) and of Standard Webhooks (`whsec_…` base64 is decoded, else the bytes); at least 16 characters"#,
    },
    Var {
        name: "TRADINGVIEW_SECRET_PREVIOUS",
        default: r#"—"#,
        roles: &[Role::Ingest],
        description: r#"rotation: the previous signing secret, still accepted for `X-Signature` and Standard Webhooks while senders move to the new one"#,
    },
    Var {
        name: "TRADINGVIEW_SECRET_PREVIOUS_UNTIL",
        default: r#"—"#,
        roles: &[Role::Ingest],
        description: r#"RFC 3339 time after which the previous secret is refused (without it, it is accepted until removed)"#,
    },
    Var {
        name: "ENCRYPTION_KEY_HEX",
        default: r#"generated in paper mode"#,
        roles: &[Role::Ingest, Role::Executor, Role::KeysRewrap],
        description: r#"64 hex characters (32 bytes): the AES-256-GCM key with id 1. Before `ENCRYPTION_PUBLIC_KEY`, ingest sealed with it; now only the executor (and `keys rewrap`) should hold it, to open rows sealed with it until they are rewrapped. Ingest still seals with it when no public key is set (and warns)"#,
    },
    Var {
        name: "ENCRYPTION_KEYS",
        default: r#"—"#,
        roles: &[Role::Ingest, Role::Executor, Role::KeysRewrap],
        description: r#"rotation: `id:hex,id:hex` (ids are positive integers); may be combined with `ENCRYPTION_KEY_HEX` (= id 1)"#,
    },
    Var {
        name: "ENCRYPTION_PRIMARY_KEY_ID",
        default: r#"highest id"#,
        roles: &[Role::Ingest, Role::Executor, Role::KeysRewrap],
        description: r#"which key seals new values; every configured key opens old ones"#,
    },
    Var {
        name: "ENCRYPTION_PUBLIC_KEY",
        default: r#"generated in paper mode"#,
        roles: &[Role::Ingest, Role::KeysRewrap],
        description: r#"64 hex characters: the X25519 public key new API keys are sealed to (HPKE); it cannot open them. `humbex keys generate` prints a pair; its key id is derived from it"#,
    },
    Var {
        name: "ENCRYPTION_PRIVATE_KEY",
        default: r#"generated in paper mode"#,
        roles: &[Role::Executor, Role::KeysRewrap],
        description: r#"64 hex characters: the X25519 private key that opens what was sealed to `ENCRYPTION_PUBLIC_KEY`; during a rotation, a comma-separated list (every one opens). Give it to the executor only; at start-up the executor opens one stored key per key id and refuses to start if it cannot"#,
    },
    Var {
        name: "ADMIN_TOKEN",
        default: r#"generated in paper mode"#,
        roles: &[Role::Ingest],
        description: r#"bearer token of the admin API, at least 16 characters"#,
    },
    Var {
        name: "BYBIT_ENV",
        default: r#"`paper`"#,
        roles: SERVICES,
        description: r#"`paper`, `testnet`, `demo` or `mainnet`; outside paper every secret must be set"#,
    },
    Var {
        name: "BYBIT_REST_URL",
        default: r#"per `BYBIT_ENV`"#,
        roles: SERVICES,
        description: r#"overrides the REST base (`http(s)://…`): mainnet `https://api.bybit.com`, testnet `https://api-testnet.bybit.com`, demo `https://api-demo.bybit.com`, paper `http://PAPER_HOST:PAPER_PORT`"#,
    },
    Var {
        name: "BYBIT_WS_PRIVATE_URL",
        default: r#"per `BYBIT_ENV`"#,
        roles: SERVICES,
        description: r#"overrides the private WebSocket (`ws(s)://…`): `wss://stream(-testnet\|-demo).bybit.com/v5/private`, paper `ws://PAPER_HOST:PAPER_PORT/v5/private` (or derived from `BYBIT_REST_URL`)"#,
    },
    Var {
        name: "ALLOW_CUSTOM_BYBIT_URL",
        default: r#"`false`"#,
        roles: SERVICES,
        description: r#"`true` accepts any `BYBIT_REST_URL` / `BYBIT_WS_PRIVATE_URL` (and `PAPER_HOST`), with a warning; otherwise outside paper mode they must be `https://` / `wss://` on Bybit's hosts for `BYBIT_ENV` (mainnet also `api.bytick.com` and the regional sites), and in paper mode on loopback or `paper-exchange`"#,
    },
    Var {
        name: "PAPER_BALANCE_USDT",
        default: r#"`10000`"#,
        roles: &[Role::Ingest, Role::PaperExchange],
        description: r#"balance of the paper account made for every key added in paper mode, and of accounts the paper exchange creates without one"#,
    },
    Var {
        name: "ALLOW_UNBOUND_KEYS",
        default: r#"`false`"#,
        roles: SERVICES,
        description: r#"accept API keys with no IP restriction on mainnet (elsewhere they are accepted with a warning)"#,
    },
    Var {
        name: "BYBIT_EGRESS_IPS",
        default: r#"—"#,
        roles: SERVICES,
        description: r#"comma-separated addresses this deployment reaches Bybit from; when set, a key is accepted (and stays usable at each re-check) only if its IP restriction names at least one of them (`key_not_bound_to_egress_ip`)"#,
    },
    Var {
        name: "KEY_RECHECK_INTERVAL_SECS",
        default: r#"`86400`"#,
        roles: &[Role::Executor],
        description: r#"how often the executor asks Bybit again (`GET /v5/user/query-api`, signed with the key) what each usable key may do, and marks unusable a key the allow-list now refuses: a key is due once its `permissions_checked_at` is older than this, and the executor looks for due keys at start-up and every interval or hour, whichever is shorter (1 to 2592000)"#,
    },
    Var {
        name: "ENCRYPTION_MAX_PER_KEY",
        default: r#"`1073741824` (2^30)"#,
        roles: &[Role::Ingest, Role::KeysRewrap],
        description: r#"hard cap on encryptions per encryption key id, counted durably in `encryption_key_usage`; at the cap adding a key answers 503 `encryption_key_exhausted` and `keys rewrap` stops, until a new primary key is configured (1 to 2^32)"#,
    },
    Var {
        name: "WORKER_POLL_INTERVAL",
        default: r#"`5`"#,
        roles: &[Role::Executor],
        description: r#"seconds between the executor's catch-up sweeps"#,
    },
    Var {
        name: "EXECUTOR_LEASE_SECS",
        default: r#"`10`"#,
        roles: &[Role::Executor],
        description: r#"lease of an executor on a signal it works on and on each account it owns (2 to 600 s); renewed every third of it, so a dead executor's signals and accounts move to the others within it (plus one pass, a third of it); give every executor the same value"#,
    },
    Var {
        name: "EXECUTOR_STREAM_CONNECTS_PER_MINUTE",
        default: r#"`100`"#,
        roles: &[Role::Executor],
        description: r#"private streams an executor opens per minute at most when it takes accounts over (start-up, a takeover), evenly spaced; the default keeps within Bybit's 500 new connections per 5 minutes per IP (an account about to trade opens its own at once)"#,
    },
    Var {
        name: "SYMBOLS",
        default: r#"`AVAXUSDT`"#,
        roles: SERVICES,
        description: r#"comma-separated symbols signals may name, or `*` for any linear USDT perpetual (a name ending in USDT; the executor checks that the exchange lists it)"#,
    },
    Var {
        name: "DEDUPE_WINDOW_SECS",
        default: r#"`60`"#,
        roles: &[Role::Ingest],
        description: r#"how long an identical body (without `id` or `webhook-id`) counts as a duplicate; a body with a `timestamp` stays a duplicate for as long as that timestamp is accepted (at least 660 s)"#,
    },
    Var {
        name: "TRADINGVIEW_IP_ALLOWLIST",
        default: r#"off"#,
        roles: &[Role::Ingest],
        description: r#"`on` = TradingView's four published addresses; or a comma-separated list of addresses"#,
    },
    Var {
        name: "TRUSTED_PROXIES",
        default: r#"—"#,
        roles: &[Role::Ingest],
        description: r#"addresses whose `X-Forwarded-For` is believed (only then)"#,
    },
    Var {
        name: "CORS_ALLOWED_ORIGINS",
        default: r#"—"#,
        roles: &[Role::Ingest],
        description: r#"no CORS headers at all unless origins are listed"#,
    },
    Var {
        name: "RATE_LIMIT_AUTH_FAILURES_PER_MINUTE",
        default: r#"`20`"#,
        roles: &[Role::Ingest],
        description: r#"failed authentications (any 401: bad signature, bad webhook token, bad admin token) per source address; over it, every request from that address gets 429 until the budget refills. TradingView's published addresses (and `TRADINGVIEW_IP_ALLOWLIST`) are exempt, since they carry every user's alerts"#,
    },
    Var {
        name: "RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE",
        default: r#"`120`"#,
        roles: &[Role::Ingest],
        description: r#"webhook requests per token (well-formed tokens, counted before any database query)"#,
    },
    Var {
        name: "RATE_LIMIT_SIGNALS_PER_MINUTE",
        default: r#"`60`"#,
        roles: &[Role::Ingest],
        description: r#"new signals per user (user token) or per strategy (strategy token); duplicates are free. Each signal places at most one order per user"#,
    },
    Var {
        name: "RATE_LIMIT_UNKNOWN_TOKENS_PER_MINUTE",
        default: r#"`600`"#,
        roles: &[Role::Ingest],
        description: r#"database lookups of well-formed but unknown webhook tokens, all sources together (tokens already seen to work skip it); beyond it `429`"#,
    },
    Var {
        name: "HTTP_HEADER_READ_TIMEOUT_SECS",
        default: r#"`5`"#,
        roles: &[Role::Ingest],
        description: r#"time for a request's headers to arrive, and for the next request on a kept-alive connection (slowloris guard; TradingView gives up after 3 s anyway)"#,
    },
    Var {
        name: "HTTP_BODY_READ_TIMEOUT_SECS",
        default: r#"`10`"#,
        roles: &[Role::Ingest],
        description: r#"time for a request's body to arrive once its headers are in; past it `400 invalid_body` and the connection closes"#,
    },
    Var {
        name: "HTTP_MAX_CONNECTIONS",
        default: r#"`4096`"#,
        roles: &[Role::Ingest],
        description: r#"connections served at once; more wait in the kernel's listen queue (keep it below the open-files limit)"#,
    },
    Var {
        name: "DOCS_ENABLED",
        default: r#"on in paper mode, off otherwise"#,
        roles: &[Role::Ingest],
        description: r#"serve the Swagger UI at `/docs` (`/openapi.json` is always served)"#,
    },
    Var {
        name: "ALLOW_RUN_AS_ROOT",
        default: r#"`false`"#,
        roles: SERVICES,
        description: r#"let `humbex ingest` and `humbex executor` run as root (refused otherwise); `humbex up` started as root hands over to `postgres` or `nobody` by itself"#,
    },
    Var {
        name: "METRICS_HOST",
        default: r#"`127.0.0.1`"#,
        roles: SERVICES,
        description: r#"address of the metrics listener (`GET /metrics`, Prometheus text format); keep it off the internet"#,
    },
    Var {
        name: "METRICS_PORT",
        default: r#"`9464`"#,
        roles: SERVICES,
        description: r#"port of the metrics listener; `up` serves every role's metrics there, while `ingest` and `executor` each serve their own, so give them different ports on one host (`0` picks a free one)"#,
    },
    Var {
        name: "LOG_FORMAT",
        default: r#"`pretty`"#,
        roles: ALL,
        description: r#"`pretty` or `json`"#,
    },
    Var {
        name: "RUST_LOG",
        default: r#"`info`"#,
        roles: ALL,
        description: r#"log filter"#,
    },
    Var {
        name: "PAPER_HOST",
        default: r#"`127.0.0.1`"#,
        roles: &[Role::Ingest, Role::Executor, Role::PaperExchange],
        description: r#"address the paper exchange listens on; in paper mode the services reach it there (flag `--host`)"#,
    },
    Var {
        name: "PAPER_PORT",
        default: r#"`8001`"#,
        roles: &[Role::Ingest, Role::Executor, Role::PaperExchange],
        description: r#"port of the paper exchange (`humbex paper-exchange` alone: `0` = any free port, the address is printed); in paper mode the services reach it there (flag `--port`)"#,
    },
    Var {
        name: "PAPER_SYMBOLS",
        default: r#"`AVAXUSDT=25.00,BTCUSDT=60000,ETHUSDT=3000`"#,
        roles: &[Role::PaperExchange],
        description: r#"listed linear symbols and starting prices (flag `--symbols`)"#,
    },
    Var {
        name: "PAPER_ORDER_RATE_LIMIT",
        default: r#"`10`"#,
        roles: &[Role::PaperExchange],
        description: r#"order creates per rolling second per account (Bybit's default) (flag `--order-rate-limit`)"#,
    },
    Var {
        name: "PAPER_WS_SUBSCRIBE_ACK_DELAY_MS",
        default: r#"`50`"#,
        roles: &[Role::PaperExchange],
        description: r#"delay before subscribe acks (pybit 5.17 fails on instant acks) (flag `--ws-subscribe-ack-delay-ms`)"#,
    },
    Var {
        name: "PAPER_ACCOUNTS",
        default: r#"none"#,
        roles: &[Role::PaperExchange],
        description: r#"accounts created at start, `key:secret,key2:secret2` (use the env var: flags show in `ps`) (flag `--accounts`)"#,
    },
    Var {
        name: "PAPER_PRICE_WALK_BPS",
        default: r#"`0` (off)"#,
        roles: &[Role::PaperExchange],
        description: r#"random walk: largest step per tick, in basis points (flag `--price-walk-bps`)"#,
    },
    Var {
        name: "PAPER_PRICE_WALK_INTERVAL_MS",
        default: r#"`1000`"#,
        roles: &[Role::PaperExchange],
        description: r#"random walk: time between steps (flag `--price-walk-interval-ms`)"#,
    },
    Var {
        name: "TELEGRAM_BOT_TOKEN",
        default: r#"—"#,
        roles: &[Role::Ingest, Role::Executor],
        description: r#"the Telegram bot that sends notifications (from @BotFather); without it Telegram is off. Ingest uses it only to check a user's `telegram_chat_id` when it is set ([notifications](notifications.md))"#,
    },
    Var {
        name: "TELEGRAM_API_URL",
        default: r#"`https://api.telegram.org`"#,
        roles: &[Role::Ingest, Role::Executor],
        description: r#"where the Telegram Bot API answers (https, or http to localhost for tests)"#,
    },
    Var {
        name: "SMTP_URL",
        default: r#"—"#,
        roles: &[Role::Executor],
        description: r#"email relay: `smtp://[user:password@]host[:port]?tls=required` (STARTTLS, required: nothing is sent in clear), `?tls=opportunistic` (STARTTLS when offered, else in clear), no `tls` (in clear, for a relay on this machine), or `smtps://` (TLS from the start); a password is refused unless TLS is required or the host is this machine; without it email is off ([notifications](notifications.md#email))"#,
    },
    Var {
        name: "SMTP_CA_FILE",
        default: r#"the public roots"#,
        roles: &[Role::Executor],
        description: r#"a PEM file of the CA certificate(s) the SMTP server's certificate must chain to, trusted instead of the public roots (a relay with a private CA); needs TLS in `SMTP_URL`"#,
    },
    Var {
        name: "SMTP_FROM",
        default: r#"—"#,
        roles: &[Role::Executor],
        description: r#"the sender address of notification emails (required with `SMTP_URL`)"#,
    },
    Var {
        name: "OPS_TELEGRAM_CHAT_ID",
        default: r#"—"#,
        roles: &[Role::Executor],
        description: r#"the operator's Telegram chat for operational events (`key_unusable`, `executor_lagging`, `order_failed`, `liquidation`, across users)"#,
    },
    Var {
        name: "OPS_WEBHOOK_URL",
        default: r#"—"#,
        roles: &[Role::Executor],
        description: r#"the operator's JSON webhook for operational events (https, or http to localhost), signed with `OPS_WEBHOOK_SECRET`"#,
    },
    Var {
        name: "OPS_WEBHOOK_SECRET",
        default: r#"—"#,
        roles: &[Role::Executor],
        description: r#"the Standard Webhooks secret of `OPS_WEBHOOK_URL` (`whsec_…` base64, or at least 16 characters used as bytes)"#,
    },
    Var {
        name: "OPS_EMAIL",
        default: r#"—"#,
        roles: &[Role::Executor],
        description: r#"the operator's email address for operational events (needs `SMTP_URL`)"#,
    },
    Var {
        name: "DEMO_WEBHOOK_TOKEN",
        default: r#"written by `humbex up`"#,
        roles: &[Role::Up],
        description: r#"paper mode only, read from `./.humbex/secrets.env`: the demo user's webhook token, kept so `humbex up` creates the demo user once"#,
    },
];

/// The markdown table of docs/configuration.md (its generated block).
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | default | read by | meaning |\n|---|---|---|---|\n");
    for var in VARS {
        let roles = var
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            var.name, var.default, roles, var.description
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once() {
        for (i, var) in VARS.iter().enumerate() {
            assert!(
                VARS[i + 1..].iter().all(|other| other.name != var.name),
                "{} listed twice",
                var.name
            );
        }
    }

    #[test]
    fn every_variable_the_configuration_reads_is_listed() {
        use std::cell::RefCell;
        let read = RefCell::new(Vec::new());
        let base = [
            ("TRADINGVIEW_SECRET", "s".repeat(32)),
            ("ENCRYPTION_KEY_HEX", "ab".repeat(32)),
            ("ENCRYPTION_PRIVATE_KEY", "cd".repeat(32)),
            ("ADMIN_TOKEN", "admin-token-0123456789".to_string()),
            ("TRADINGVIEW_SECRET_PREVIOUS", "p".repeat(32)),
        ];
        super::super::Config::from_lookup(&|name| {
            read.borrow_mut().push(name.to_owned());
            base.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
        })
        .expect("config");
        for name in read.into_inner() {
            assert!(
                VARS.iter().any(|v| v.name == name),
                "{name} is read but not in VARS"
            );
        }
        for name in super::super::lookup::FILE_SUPPLIED {
            assert!(VARS.iter().any(|v| v.name == name), "{name} is not in VARS");
        }
    }
}
