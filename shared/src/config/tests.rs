//! The configuration read from variables: defaults, each check naming its variable, no secret in Debug.

use std::net::IpAddr;
use std::time::Duration;

use rust_decimal::Decimal;

use super::*;
use std::collections::HashMap;

fn base() -> HashMap<&'static str, String> {
    HashMap::from([
        ("TRADINGVIEW_SECRET", "s".repeat(32)),
        ("ENCRYPTION_KEY_HEX", "ab".repeat(32)),
        ("ADMIN_TOKEN", "admin-token-0123456789".to_string()),
    ])
}

fn parse(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
    Config::from_lookup(&|name| vars.get(name).cloned())
}

#[test]
fn defaults() {
    let config = parse(&base()).unwrap();
    assert_eq!(config.http.port, 8000);
    assert_eq!(config.http.host.to_string(), "127.0.0.1");
    assert_eq!(config.bybit.env, BybitEnv::Paper);
    assert_eq!(config.executor.worker_poll_interval, Duration::from_secs(5));
    assert_eq!(
        config.symbols,
        SymbolPolicy::Listed(vec![Symbol::parse("AVAXUSDT").unwrap()])
    );
    assert_eq!(config.http.dedupe_window, Duration::from_secs(60));
    assert!(config.http.ip_policy.allowlist.is_none());
    assert_eq!(config.database.url.expose_secret(), DEFAULT_DATABASE_URL);
    assert!(config.database.direct_url.is_none());
    assert_eq!(config.database.direct().var(), "DATABASE_URL");
    assert_eq!(config.http.rate_limits, RateLimits::default());
    assert!(config.bybit.egress_ips.is_empty());
    assert_eq!(config.executor.key_recheck_interval, Duration::from_secs(86_400));
    assert_eq!(config.executor.lease, Duration::from_secs(10));
    assert_eq!(config.executor.stream_connects_per_minute, 100);
    assert_eq!(config.secrets.encryption_max_per_key, 1 << 30);
    assert_eq!(config.metrics.addr().to_string(), "127.0.0.1:9464");
}

#[test]
fn metrics_listener_is_configurable() {
    let mut vars = base();
    vars.insert("METRICS_HOST", "0.0.0.0".into());
    vars.insert("METRICS_PORT", "0".into());
    let config = parse(&vars).unwrap();
    assert_eq!(config.metrics.addr().to_string(), "0.0.0.0:0");
}

#[test]
fn key_hygiene_settings_are_read_and_checked() {
    let mut vars = base();
    vars.insert("BYBIT_EGRESS_IPS", "203.0.113.10, 2001:db8::1".into());
    vars.insert("KEY_RECHECK_INTERVAL_SECS", "60".into());
    vars.insert("ENCRYPTION_MAX_PER_KEY", "4".into());
    let config = parse(&vars).unwrap();
    assert_eq!(
        config.bybit.egress_ips,
        vec![
            "203.0.113.10".parse::<IpAddr>().unwrap(),
            "2001:db8::1".parse().unwrap()
        ]
    );
    assert_eq!(config.executor.key_recheck_interval, Duration::from_secs(60));
    assert_eq!(config.secrets.encryption_max_per_key, 4);
    for (var, value) in [
        ("BYBIT_EGRESS_IPS", "203.0.113.10,nope"),
        ("KEY_RECHECK_INTERVAL_SECS", "0"),
        ("KEY_RECHECK_INTERVAL_SECS", "daily"),
        ("ENCRYPTION_MAX_PER_KEY", "0"),
        ("ENCRYPTION_MAX_PER_KEY", "4294967297"),
    ] {
        let mut vars = base();
        vars.insert(var, value.into());
        let err = parse(&vars).unwrap_err();
        assert_eq!(err.var, var, "{value}: {err}");
    }
}

#[test]
fn executor_fleet_settings_are_read_and_checked() {
    let mut vars = base();
    vars.insert("EXECUTOR_LEASE_SECS", " 4 ".into());
    vars.insert("EXECUTOR_STREAM_CONNECTS_PER_MINUTE", "12000".into());
    let config = parse(&vars).unwrap();
    assert_eq!(config.executor.lease, Duration::from_secs(4));
    assert_eq!(config.executor.stream_connects_per_minute, 12_000);
    for (var, value) in [
        ("EXECUTOR_LEASE_SECS", "1"),
        ("EXECUTOR_LEASE_SECS", "601"),
        ("EXECUTOR_LEASE_SECS", "2.5"),
        ("EXECUTOR_STREAM_CONNECTS_PER_MINUTE", "0"),
        ("EXECUTOR_STREAM_CONNECTS_PER_MINUTE", "fast"),
    ] {
        let mut vars = base();
        vars.insert(var, value.into());
        let err = parse(&vars).unwrap_err();
        assert_eq!(err.var, var, "{value}: {err}");
    }
}

#[test]
fn rate_limits_are_read_and_checked() {
    let mut vars = base();
    vars.insert("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "3".into());
    vars.insert("RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE", "4".into());
    vars.insert("RATE_LIMIT_SIGNALS_PER_MINUTE", " 5 ".into());
    let limits = parse(&vars).unwrap().http.rate_limits;
    assert_eq!(
        (
            limits.auth_failures_per_ip,
            limits.requests_per_token,
            limits.signals_per_owner
        ),
        (3, 4, 5)
    );
    for bad_value in ["0", "-1", "many", "1000001"] {
        vars.insert("RATE_LIMIT_SIGNALS_PER_MINUTE", bad_value.into());
        let err = parse(&vars).unwrap_err().to_string();
        assert!(err.contains("RATE_LIMIT_SIGNALS_PER_MINUTE"), "{err}");
    }
}

#[test]
fn symbols_are_a_list_or_a_star() {
    let with = |value: &str| {
        let mut vars = base();
        vars.insert("SYMBOLS", value.to_string());
        parse(&vars).unwrap().symbols
    };
    assert_eq!(with(" * "), SymbolPolicy::AnyUsdt);
    assert_eq!(
        with("avaxusdt, BYBIT:BTCUSDT.P,AVAXUSDT"),
        SymbolPolicy::Listed(vec![
            Symbol::parse("AVAXUSDT").unwrap(),
            Symbol::parse("BTCUSDT").unwrap()
        ])
    );
}

#[test]
fn bad_values_name_their_variable() {
    let cases: &[(&'static str, &str)] = &[
        ("ENCRYPTION_KEY_HEX", &"a".repeat(63)),
        ("BYBIT_ENV", "live"),
        ("BACKEND_PORT", "abc"),
        ("BACKEND_HOST", "localhost:80"),
        ("METRICS_PORT", "http"),
        ("METRICS_PORT", "65536"),
        ("METRICS_HOST", "localhost"),
        ("WORKER_POLL_INTERVAL", "soon"),
        ("SYMBOLS", "AVAX-USDT"),
        ("SYMBOLS", "AVAXUSDT,*"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_URL", "postgres://host:notaport/db"),
        ("DATABASE_URL", "postgres://host/db?sslmode=verify-everything"),
        (
            "DATABASE_URL",
            "postgres://host/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ),
        ("DATABASE_DIRECT_URL", "postgres://host:notaport/db"),
        (
            "DATABASE_DIRECT_URL",
            "postgres://host/db?sslmode=require&sslrootcert=system",
        ),
        ("TRADINGVIEW_IP_ALLOWLIST", "1.2.3.4,nope"),
        ("TRADINGVIEW_SECRET", "short"),
        ("ADMIN_TOKEN", "short"),
        ("BYBIT_REST_URL", "api.bybit.com"),
        ("BYBIT_REST_URL", "wss://stream.bybit.com"),
        ("BYBIT_REST_URL", "https://user:pw@api.bybit.com"),
        ("BYBIT_REST_URL", "https://api.bybit.com/?x=1"),
        ("BYBIT_WS_PRIVATE_URL", "https://stream.bybit.com/v5/private"),
        ("BYBIT_WS_PRIVATE_URL", "not a url"),
        ("PAPER_PORT", "80000"),
        ("PAPER_PORT", "0"),
        ("PAPER_BALANCE_USDT", "lots"),
        ("PAPER_BALANCE_USDT", "-1"),
        ("ALLOW_UNBOUND_KEYS", "maybe"),
        ("ALLOW_CUSTOM_BYBIT_URL", "maybe"),
    ];
    for (var, value) in cases {
        let mut vars = base();
        vars.insert(var, value.to_string());
        let err = parse(&vars).unwrap_err();
        assert_eq!(err.var, *var, "{err}");
        assert!(err.to_string().starts_with(var), "{err}");
    }
}

#[test]
fn bybit_env_picks_the_endpoints() {
    let config = parse(&base()).unwrap();
    assert_eq!(config.bybit.env, BybitEnv::Paper);
    assert_eq!(config.bybit.rest_url, "http://127.0.0.1:8001");
    assert_eq!(config.bybit.ws_private_url, "ws://127.0.0.1:8001/v5/private");
    assert_eq!(config.bybit.paper_control_url(), Some("http://127.0.0.1:8001"));
    assert_eq!(config.bybit.paper_balance_usdt, Decimal::from(10_000));
    assert!(!config.bybit.allow_unbound_keys);

    for (env, rest, ws) in [
        (
            "mainnet",
            "https://api.bybit.com",
            "wss://stream.bybit.com/v5/private",
        ),
        (
            "testnet",
            "https://api-testnet.bybit.com",
            "wss://stream-testnet.bybit.com/v5/private",
        ),
        (
            "demo",
            "https://api-demo.bybit.com",
            "wss://stream-demo.bybit.com/v5/private",
        ),
    ] {
        let mut vars = base();
        vars.insert("BYBIT_ENV", env.into());
        // Paper settings are irrelevant off paper, even broken ones.
        vars.insert("PAPER_PORT", "0".into());
        let config = parse(&vars).unwrap();
        assert_eq!(config.bybit.rest_url, rest);
        assert_eq!(config.bybit.ws_private_url, ws);
        assert_eq!(config.bybit.paper_control_url(), None);
    }
}

#[test]
fn paper_host_and_port_and_overrides() {
    let mut vars = base();
    vars.insert("PAPER_HOST", "0.0.0.0".into());
    vars.insert("PAPER_PORT", "9100".into());
    vars.insert("PAPER_BALANCE_USDT", "2500.5".into());
    vars.insert("ALLOW_UNBOUND_KEYS", "true".into());
    let config = parse(&vars).unwrap();
    assert_eq!(config.bybit.rest_url, "http://127.0.0.1:9100");
    assert_eq!(config.bybit.ws_private_url, "ws://127.0.0.1:9100/v5/private");
    assert_eq!(
        config.bybit.paper_balance_usdt,
        "2500.5".parse::<Decimal>().unwrap()
    );
    assert!(config.bybit.allow_unbound_keys);

    let mut vars = base();
    vars.insert("BYBIT_REST_URL", "http://127.0.0.1:4321/".into());
    let config = parse(&vars).unwrap();
    assert_eq!(config.bybit.rest_url, "http://127.0.0.1:4321");
    assert_eq!(config.bybit.ws_private_url, "ws://127.0.0.1:4321/v5/private");

    let mut vars = base();
    vars.insert("BYBIT_ENV", "mainnet".into());
    vars.insert("BYBIT_REST_URL", "http://127.0.0.1:4321".into());
    vars.insert("BYBIT_WS_PRIVATE_URL", "ws://127.0.0.1:4321/v5/private".into());
    vars.insert("ALLOW_CUSTOM_BYBIT_URL", "true".into());
    let config = parse(&vars).unwrap();
    assert_eq!(config.bybit.env, BybitEnv::Mainnet);
    assert_eq!(config.bybit.rest_url, "http://127.0.0.1:4321");
    assert_eq!(config.bybit.ws_private_url, "ws://127.0.0.1:4321/v5/private");
}

#[test]
fn secrets_are_required_outside_paper() {
    let mut vars = base();
    vars.insert("BYBIT_ENV", "mainnet".into());
    vars.remove("ADMIN_TOKEN");
    let err = parse(&vars).unwrap_err();
    assert_eq!(err.var, "ADMIN_TOKEN");
    assert!(err.problem.contains("mainnet"));
}

#[test]
fn debug_prints_no_secret() {
    let mut vars = base();
    vars.insert(
        "DATABASE_URL",
        "postgres://app:hunter2hunter2@db:5432/humbex".into(),
    );
    let config = parse(&vars).unwrap();
    let debug = format!("{config:?}");
    for secret in [
        &"s".repeat(32),
        &"ab".repeat(32),
        "admin-token-0123456789",
        "hunter2hunter2",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    assert!(debug.contains("REDACTED"));
}

#[test]
fn whsec_secrets_decode_for_standard_webhooks() {
    let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    assert_eq!(secret.standard_webhooks_key().len(), 24);
    assert_eq!(
        secret.x_signature_key(),
        b"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    );
}

#[test]
fn allowlist_on_means_tradingview() {
    let mut vars = base();
    vars.insert("TRADINGVIEW_IP_ALLOWLIST", "on".into());
    vars.insert("TRUSTED_PROXIES", "10.0.0.1".into());
    let config = parse(&vars).unwrap();
    assert_eq!(config.http.ip_policy.allowlist.unwrap().len(), 4);
    assert_eq!(config.http.ip_policy.trusted_proxies.len(), 1);
}

#[test]
fn http_limits_and_the_docs_switch_are_read_and_checked() {
    let config = parse(&base()).unwrap();
    assert_eq!(config.http.limits, HttpLimits::default());
    assert!(
        config.http.docs_enabled,
        "paper mode serves /docs unless DOCS_ENABLED=false"
    );
    let mut vars = base();
    vars.insert("HTTP_HEADER_READ_TIMEOUT_SECS", "3".into());
    vars.insert("HTTP_BODY_READ_TIMEOUT_SECS", "7".into());
    vars.insert("HTTP_MAX_CONNECTIONS", "100".into());
    vars.insert("DOCS_ENABLED", "false".into());
    vars.insert("RATE_LIMIT_UNKNOWN_TOKENS_PER_MINUTE", "9".into());
    let config = parse(&vars).unwrap();
    assert_eq!(
        config.http.limits,
        HttpLimits {
            header_read_timeout: Duration::from_secs(3),
            body_read_timeout: Duration::from_secs(7),
            max_connections: 100,
        }
    );
    assert!(!config.http.docs_enabled);
    assert_eq!(config.http.rate_limits.unknown_tokens, 9);
    // Outside paper mode the docs page is off unless asked for.
    let mut vars = base();
    vars.insert("BYBIT_ENV", "testnet".into());
    assert!(!parse(&vars).unwrap().http.docs_enabled);
    vars.insert("DOCS_ENABLED", "true".into());
    assert!(parse(&vars).unwrap().http.docs_enabled);
    for (var, value) in [
        ("HTTP_HEADER_READ_TIMEOUT_SECS", "0"),
        ("HTTP_BODY_READ_TIMEOUT_SECS", "soon"),
        ("HTTP_MAX_CONNECTIONS", "-1"),
        ("DOCS_ENABLED", "maybe"),
    ] {
        let mut vars = base();
        vars.insert(var, value.into());
        let err = parse(&vars).unwrap_err().to_string();
        assert!(err.contains(var), "{err}");
    }
}

/// Each row: the variables set over [`base`], then `Ok` or the variable the error names and a
/// word of its reason.
#[test]
fn bybit_urls_stay_on_bybit_or_on_this_machine() {
    type Row = (
        &'static [(&'static str, &'static str)],
        Result<(), (&'static str, &'static str)>,
    );
    let rows: &[Row] = &[
        // Bybit's own hosts, per environment, including the alternative and regional sites.
        (&[("BYBIT_ENV", "mainnet")], Ok(())),
        (&[("BYBIT_ENV", "testnet")], Ok(())),
        (&[("BYBIT_ENV", "demo")], Ok(())),
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "https://api.bytick.com"),
            ],
            Ok(()),
        ),
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "https://api.bybit.nl/"),
                ("BYBIT_WS_PRIVATE_URL", "wss://stream.bybit.nl/v5/private"),
            ],
            Ok(()),
        ),
        (
            &[
                ("BYBIT_ENV", "testnet"),
                ("BYBIT_REST_URL", "https://api-testnet.bybit.com"),
            ],
            Ok(()),
        ),
        (
            &[
                ("BYBIT_ENV", "demo"),
                ("BYBIT_WS_PRIVATE_URL", "wss://stream-demo.bybit.com/v5/private"),
            ],
            Ok(()),
        ),
        // Plain text, other hosts, look-alikes, other ports, another environment's host.
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "http://api.bybit.com"),
            ],
            Err(("BYBIT_REST_URL", "https://")),
        ),
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_WS_PRIVATE_URL", "ws://stream.bybit.com/v5/private"),
            ],
            Err(("BYBIT_WS_PRIVATE_URL", "wss://")),
        ),
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "https://api.bybit.com.evil.example"),
            ],
            Err(("BYBIT_REST_URL", "Bybit's mainnet hosts")),
        ),
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "https://evilapi.bybit.com"),
            ],
            Err(("BYBIT_REST_URL", "Bybit's mainnet hosts")),
        ),
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "https://api.bybit.com:8443"),
            ],
            Err(("BYBIT_REST_URL", "Bybit's mainnet hosts")),
        ),
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "https://127.0.0.1:4321"),
            ],
            Err(("BYBIT_REST_URL", "Bybit's mainnet hosts")),
        ),
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "https://stream.bybit.com"),
            ],
            Err(("BYBIT_REST_URL", "Bybit's mainnet hosts")),
        ),
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "https://api-testnet.bybit.com"),
            ],
            Err(("BYBIT_REST_URL", "Bybit's mainnet hosts")),
        ),
        (
            &[
                ("BYBIT_ENV", "testnet"),
                ("BYBIT_REST_URL", "https://api.bybit.com"),
            ],
            Err(("BYBIT_REST_URL", "Bybit's testnet hosts")),
        ),
        (
            &[
                ("BYBIT_ENV", "demo"),
                ("BYBIT_WS_PRIVATE_URL", "wss://stream.example.com/v5/private"),
            ],
            Err(("BYBIT_WS_PRIVATE_URL", "Bybit's demo hosts")),
        ),
        // The opt-in accepts anything well-formed.
        (
            &[
                ("BYBIT_ENV", "mainnet"),
                ("BYBIT_REST_URL", "http://127.0.0.1:4321"),
                ("ALLOW_CUSTOM_BYBIT_URL", "true"),
            ],
            Ok(()),
        ),
        // Paper mode: loopback, localhost or compose's service, however the address is given.
        (&[("BYBIT_REST_URL", "http://127.0.0.1:9000")], Ok(())),
        (&[("BYBIT_REST_URL", "http://[::1]:9000")], Ok(())),
        (&[("BYBIT_REST_URL", "http://localhost:9000")], Ok(())),
        (&[("BYBIT_REST_URL", "http://paper-exchange:8001")], Ok(())),
        (&[("PAPER_HOST", "paper-exchange")], Ok(())),
        (&[("PAPER_HOST", "0.0.0.0")], Ok(())),
        (&[("PAPER_HOST", "::")], Ok(())),
        (
            &[("BYBIT_REST_URL", "http://10.0.0.5:8001")],
            Err(("BYBIT_REST_URL", "loopback")),
        ),
        (
            &[("BYBIT_REST_URL", "https://api.bybit.com")],
            Err(("BYBIT_REST_URL", "loopback")),
        ),
        (&[("PAPER_HOST", "10.0.0.5")], Err(("PAPER_HOST", "loopback"))),
        (
            &[("PAPER_HOST", "paper.example.com")],
            Err(("PAPER_HOST", "loopback")),
        ),
        (
            &[("BYBIT_WS_PRIVATE_URL", "ws://203.0.113.9:8001/v5/private")],
            Err(("BYBIT_WS_PRIVATE_URL", "loopback")),
        ),
        (
            &[
                ("BYBIT_REST_URL", "http://10.0.0.5:8001"),
                ("ALLOW_CUSTOM_BYBIT_URL", "true"),
            ],
            Ok(()),
        ),
    ];
    for (set, expected) in rows {
        let mut vars = base();
        for (name, value) in *set {
            vars.insert(name, (*value).to_owned());
        }
        match (parse(&vars), expected) {
            (Ok(_), Ok(())) => {}
            (Err(err), Err((var, reason))) => {
                assert_eq!(err.var, *var, "{set:?}: {err}");
                assert!(err.problem.contains(reason), "{set:?}: {err}");
            }
            (got, expected) => panic!("{set:?}: expected {expected:?}, got {:?}", got.map(|_| ())),
        }
    }
}

/// Issue 16, item 5: each role reads only the secrets it uses.
#[test]
fn each_role_needs_only_its_own_secrets() {
    let (private_hex, public) = crate::crypto::public_key::generate();
    let of = |pairs: &[(&'static str, String)]| -> HashMap<&'static str, String> {
        pairs.iter().cloned().collect()
    };
    let read = |role, vars: &HashMap<&'static str, String>| Config::for_role(role, &|n| vars.get(n).cloned());

    // The executor: the private key alone; no webhook secret, no admin token, nothing that seals.
    let executor = read(
        Role::Executor,
        &of(&[("ENCRYPTION_PRIVATE_KEY", private_hex.to_string())]),
    )
    .unwrap();
    assert!(executor.secrets.ingest.is_none() && executor.secrets.sealer.is_none());
    assert!(
        executor
            .secrets
            .opener()
            .unwrap()
            .has_private_key(public.key_id())
    );
    let err = read(Role::Executor, &of(&[])).unwrap_err();
    assert_eq!(err.var, "ENCRYPTION_PRIVATE_KEY", "{err}");

    // Ingest: the webhook secret, the admin token and the public key; nothing that opens.
    let ingest_vars = of(&[
        ("TRADINGVIEW_SECRET", "s".repeat(32)),
        ("ADMIN_TOKEN", "admin-token-0123456789".into()),
        ("ENCRYPTION_PUBLIC_KEY", public.to_hex()),
    ]);
    let ingest = read(Role::Ingest, &ingest_vars).unwrap();
    assert!(ingest.secrets.opener.is_none() && ingest.secrets.ingest.is_some());
    let sealer = ingest.secrets.sealer().unwrap();
    assert!(!sealer.can_open());
    assert_eq!(sealer.key_id(), public.key_id());
    for missing in ["TRADINGVIEW_SECRET", "ADMIN_TOKEN", "ENCRYPTION_PUBLIC_KEY"] {
        let mut vars = ingest_vars.clone();
        vars.remove(missing);
        assert_eq!(read(Role::Ingest, &vars).unwrap_err().var, missing);
    }

    // `up` needs all, and a public key that belongs to the private key.
    let mut all = ingest_vars.clone();
    assert_eq!(read(Role::Up, &all).unwrap_err().var, "ENCRYPTION_PRIVATE_KEY");
    let (other_private, _) = crate::crypto::public_key::generate();
    all.insert("ENCRYPTION_PRIVATE_KEY", other_private.to_string());
    assert_eq!(read(Role::Up, &all).unwrap_err().var, "ENCRYPTION_PUBLIC_KEY");
    all.insert("ENCRYPTION_PRIVATE_KEY", private_hex.to_string());
    let up = read(Role::Up, &all).unwrap();
    assert!(up.secrets.ingest.is_some() && up.secrets.sealer.is_some() && up.secrets.opener.is_some());
    assert!(!format!("{up:?}").contains(private_hex.as_str()));
}

/// DATABASE_DIRECT_URL, when set, is where sessions go; DATABASE_URL stays the pool's.
#[test]
fn direct_url_is_read_apart_from_the_pool_url() {
    let mut vars = base();
    vars.insert(
        "DATABASE_URL",
        "postgres://app@pooler:6543/db?sslmode=require".into(),
    );
    vars.insert(
        "DATABASE_DIRECT_URL",
        "postgres://app@db:5432/db?sslmode=require".into(),
    );
    let config = parse(&vars).unwrap();
    assert_eq!(config.database.direct().var(), "DATABASE_DIRECT_URL");
    assert_eq!(config.database.direct().pg_config().get_ports(), &[5432]);
    assert_eq!(config.database.url.pg_config().get_ports(), &[6543]);
    assert_eq!(config.database.url.tls().mode, libpq::SslMode::Require);
    // An empty value is unset.
    vars.insert("DATABASE_DIRECT_URL", " ".into());
    assert!(parse(&vars).unwrap().database.direct_url.is_none());
}
