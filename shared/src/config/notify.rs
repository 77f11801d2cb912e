//! Where notifications go and how they are sent: the Telegram bot, the SMTP relay (`super::smtp`), and the
//! operator's own destinations (docs/notifications.md). Each destination is checked by the rule the
//! admin API applies to users' destinations (`crate::notify`), so a bad one stops start-up with the
//! variable named.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::parse::{ConfigError, Get, bad};
use super::secrets::WebhookSecret;
use super::smtp::SmtpConfig;
use crate::notify;

pub const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// The Telegram Bot API: the bot's token and where its API answers.
#[derive(Clone)]
pub struct TelegramConfig {
    pub bot_token: SecretString,
    /// Without a trailing `/`; tests point it at a local stand-in.
    pub api_url: String,
}

impl fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("bot_token", &"[REDACTED]")
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl TelegramConfig {
    /// `<api>/bot<token>/<method>`: the token is part of the path, so this URL is never logged.
    pub fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.api_url, self.bot_token.expose_secret())
    }
}

/// The operator's destinations (each optional).
#[derive(Debug, Clone, Default)]
pub struct OpsDestinations {
    pub telegram_chat_id: Option<String>,
    pub webhook: Option<(String, WebhookSecret)>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub telegram: Option<TelegramConfig>,
    pub smtp: Option<SmtpConfig>,
    pub ops: OpsDestinations,
}

pub(crate) fn telegram(get: Get) -> Result<Option<TelegramConfig>, ConfigError> {
    let api_url = match get("TELEGRAM_API_URL") {
        None => DEFAULT_TELEGRAM_API_URL.to_owned(),
        Some(v) => {
            // The same rule as a webhook destination: https, or http to this machine (tests).
            let url = notify::parse_webhook_url(&v).map_err(|p| bad("TELEGRAM_API_URL", p))?;
            url.trim_end_matches('/').to_owned()
        }
    };
    let Some(token) = get("TELEGRAM_BOT_TOKEN") else {
        return Ok(None);
    };
    let token = token.trim();
    // BotFather's tokens are `<bot id>:<35 characters>`; the shape is checked, never printed.
    let ok = token.split_once(':').is_some_and(|(id, rest)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && rest.len() >= 20
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if !ok {
        return Err(bad(
            "TELEGRAM_BOT_TOKEN",
            "is not a bot token as BotFather gives it (<digits>:<letters, digits, _ or ->)",
        ));
    }
    Ok(Some(TelegramConfig {
        bot_token: SecretString::from(token.to_owned()),
        api_url,
    }))
}

pub(crate) fn notify(get: Get) -> Result<NotifyConfig, ConfigError> {
    let telegram = telegram(get)?;
    let smtp = super::smtp::smtp(get)?;
    let telegram_chat_id = get("OPS_TELEGRAM_CHAT_ID")
        .map(|v| notify::parse_telegram_chat_id(&v).map_err(|p| bad("OPS_TELEGRAM_CHAT_ID", p)))
        .transpose()?;
    if telegram_chat_id.is_some() && telegram.is_none() {
        return Err(bad(
            "TELEGRAM_BOT_TOKEN",
            "is required when OPS_TELEGRAM_CHAT_ID is set",
        ));
    }
    let webhook = match (get("OPS_WEBHOOK_URL"), get("OPS_WEBHOOK_SECRET")) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(bad(
                "OPS_WEBHOOK_SECRET",
                "is required when OPS_WEBHOOK_URL is set",
            ));
        }
        (None, Some(_)) => {
            return Err(bad(
                "OPS_WEBHOOK_URL",
                "is required when OPS_WEBHOOK_SECRET is set",
            ));
        }
        (Some(url), Some(secret)) => Some((
            notify::parse_webhook_url(&url).map_err(|p| bad("OPS_WEBHOOK_URL", p))?,
            WebhookSecret::parse(&secret).map_err(|p| bad("OPS_WEBHOOK_SECRET", p))?,
        )),
    };
    let email = get("OPS_EMAIL")
        .map(|v| notify::parse_email(&v).map_err(|p| bad("OPS_EMAIL", p)))
        .transpose()?;
    if email.is_some() && smtp.is_none() {
        return Err(bad("SMTP_URL", "is required when OPS_EMAIL is set"));
    }
    Ok(NotifyConfig {
        telegram,
        smtp,
        ops: OpsDestinations {
            telegram_chat_id,
            webhook,
            email,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<NotifyConfig, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let get = move |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        notify(&get)
    }

    const TOKEN: &str = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ012345678";

    #[test]
    fn defaults_are_off_and_telegram_points_at_telegram() {
        let c = with(&[]).unwrap();
        assert!(c.telegram.is_none() && c.smtp.is_none() && c.ops.webhook.is_none());
        let c = with(&[("TELEGRAM_BOT_TOKEN", TOKEN)]).unwrap();
        assert_eq!(c.telegram.unwrap().api_url, DEFAULT_TELEGRAM_API_URL);
    }

    #[test]
    fn bad_values_name_their_variable_and_never_print_the_token() {
        let e = with(&[("TELEGRAM_BOT_TOKEN", "nope-secret-looking")]).unwrap_err();
        assert_eq!(e.var, "TELEGRAM_BOT_TOKEN");
        assert!(!e.to_string().contains("nope-secret-looking"));
        assert_eq!(
            with(&[("OPS_WEBHOOK_URL", "ftp://x")]).unwrap_err().var,
            "OPS_WEBHOOK_SECRET"
        );
        let e = with(&[
            ("OPS_WEBHOOK_URL", "http://example.com/x"),
            ("OPS_WEBHOOK_SECRET", &"s".repeat(32)),
        ]);
        assert_eq!(e.unwrap_err().var, "OPS_WEBHOOK_URL");
        assert_eq!(
            with(&[("OPS_TELEGRAM_CHAT_ID", "12x")]).unwrap_err().var,
            "OPS_TELEGRAM_CHAT_ID"
        );
        assert_eq!(
            with(&[("OPS_TELEGRAM_CHAT_ID", "12")]).unwrap_err().var,
            "TELEGRAM_BOT_TOKEN"
        );
        assert_eq!(
            with(&[("SMTP_URL", "smtp://127.0.0.1:25")]).unwrap_err().var,
            "SMTP_FROM"
        );
        assert_eq!(
            with(&[("SMTP_URL", "http://x"), ("SMTP_FROM", "a@b.c")])
                .unwrap_err()
                .var,
            "SMTP_URL"
        );
        assert_eq!(
            with(&[("TELEGRAM_API_URL", "http://example.com")])
                .unwrap_err()
                .var,
            "TELEGRAM_API_URL"
        );
        let debug = format!(
            "{:?}",
            with(&[
                ("TELEGRAM_BOT_TOKEN", TOKEN),
                ("SMTP_URL", "smtp://u:pw@h:25?tls=required"),
                ("SMTP_FROM", "a@b.c")
            ])
            .unwrap()
        );
        assert!(!debug.contains("ABCdef") && !debug.contains("pw@"), "{debug}");
    }
}
