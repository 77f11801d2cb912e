//! Sending on each channel: Telegram's Bot API, a JSON webhook signed with Standard Webhooks
//! headers, and email over SMTP. Each answer is classified by what to do next (delivered, retry,
//! refused for good); an error never carries the bot token or a password (reqwest errors are
//! stripped of their URL, which holds the token).

use std::time::Duration;

use humbex_shared::config::{SmtpConfig, SmtpTls, TelegramConfig};
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

pub use humbex_shared::notify::{SendError, telegram_outcome};

fn transport_error(e: reqwest::Error) -> SendError {
    let e = e.without_url();
    let kind = if e.is_timeout() {
        "timed out"
    } else {
        "could not connect or send"
    };
    SendError::Retry {
        detail: format!("{kind}: {e}"),
        after: None,
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(3600)))
}

/// The HTTP client every HTTP channel shares: no redirects (a redirect would carry a signed body or
/// the bot's token elsewhere), a deadline per request.
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(humbex_bybit::tls::rest_config())
        .build()?)
}

/// `sendMessage` to `chat_id`.
#[tracing::instrument(skip_all, fields(chat_id))]
pub async fn telegram_send(
    http: &reqwest::Client,
    telegram: &TelegramConfig,
    chat_id: &str,
    text: &str,
) -> Result<(), SendError> {
    let body = json!({"chat_id": chat_id, "text": text, "disable_web_page_preview": true});
    telegram_call(http, telegram, "sendMessage", &body).await
}

/// `getChat`: whether the bot can reach `chat_id` (the user wrote to it, or it is in the group).
/// `Err(Refused)` names Telegram's reason ("chat not found").
#[tracing::instrument(skip_all, fields(chat_id))]
pub async fn telegram_check_chat(
    http: &reqwest::Client,
    telegram: &TelegramConfig,
    chat_id: &str,
) -> Result<(), SendError> {
    telegram_call(http, telegram, "getChat", &json!({"chat_id": chat_id})).await
}

/// One Bot API call, judged by `telegram_outcome` from Telegram's status and JSON answer (an
/// answer that is not JSON is read as null, so a 2xx without `"ok": true` is retried).
async fn telegram_call(
    http: &reqwest::Client,
    telegram: &TelegramConfig,
    method: &str,
    body: &Value,
) -> Result<(), SendError> {
    let response = http
        .post(telegram.method_url(method))
        .json(body)
        .send()
        .await
        .map_err(transport_error)?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    telegram_outcome(status.as_u16(), &answer)
}

/// POST `body` to `url` with Standard Webhooks headers: `webhook-id` is the notification's id, the
/// same on every retry, so the receiver can drop a repeat.
#[tracing::instrument(skip_all, fields(webhook_id = id))]
pub async fn webhook_send(
    http: &reqwest::Client,
    url: &str,
    key: &[u8],
    id: &str,
    body: &[u8],
) -> Result<(), SendError> {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = humbex_shared::standard_webhooks::sign(key, id, timestamp, body);
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .map_err(transport_error)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let detail = format!("the webhook answered {}", status.as_u16());
    match status.as_u16() {
        408 | 425 | 429 | 500..=599 => Err(SendError::Retry {
            detail,
            after: retry_after(response.headers()),
        }),
        _ => Err(SendError::Refused(detail)),
    }
}

/// An SMTP relay: STARTTLS or TLS as `SMTP_URL` says, trusting `SMTP_CA_FILE` instead of the
/// public roots when it is set, a deadline per send.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Mailer {
    pub fn new(smtp: &SmtpConfig, timeout: Duration) -> anyhow::Result<Self> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url().expose_secret())
            .map_err(|_| anyhow::anyhow!("SMTP_URL: lettre cannot read it as an SMTP URL"))?
            .timeout(Some(timeout));
        // lettre's URL reading builds its TLS with the public roots; ours replaces it whenever the
        // URL asks for TLS, so the mode is the one the config read and the roots are the operator's.
        if let Some(tls) = smtp_tls(smtp)? {
            builder = builder.tls(tls);
        }
        if smtp.tls() == SmtpTls::Opportunistic {
            tracing::warn!(
                "SMTP_URL has tls=opportunistic: mail goes in clear when the server offers no STARTTLS"
            );
        }
        let from = smtp
            .from()
            .parse()
            .map_err(|_| anyhow::anyhow!("SMTP_FROM: not a mailbox"))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// Send one plain-text message; `message_id` is stable across retries.
    #[tracing::instrument(skip_all, fields(message_id))]
    pub async fn send(&self, to: &str, subject: &str, text: &str, message_id: &str) -> Result<(), SendError> {
        let to = to
            .parse()
            .map_err(|_| SendError::Refused("the address is not a mailbox".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{message_id}@humbex>")))
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned())
            .map_err(|e| SendError::Refused(format!("cannot build the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Refused(format!("the mail server refused it: {e}"))),
            Err(e) => Err(SendError::Retry {
                detail: format!("the mail server did not take it: {e}"),
                after: None,
            }),
        }
    }
}

/// The TLS of `smtp`'s mode with its roots: `SMTP_CA_FILE`'s certificates alone when set, else the
/// public roots (webpki-roots); `None` for a URL without TLS.
fn smtp_tls(smtp: &SmtpConfig) -> anyhow::Result<Option<Tls>> {
    let parameters = || -> anyhow::Result<TlsParameters> {
        let mut builder = TlsParameters::builder(smtp.host().to_owned());
        if let Some(roots) = smtp.roots() {
            builder = builder.certificate_store(CertificateStore::None);
            for root in roots {
                let cert =
                    Certificate::from_der(root.to_vec()).map_err(|e| anyhow::anyhow!("SMTP_CA_FILE: {e}"))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| anyhow::anyhow!("SMTP_CA_FILE: cannot build TLS with it: {e}"))
    };
    Ok(match smtp.tls() {
        SmtpTls::None => None,
        SmtpTls::Opportunistic => Some(Tls::Opportunistic(parameters()?)),
        SmtpTls::Required => Some(Tls::Required(parameters()?)),
        SmtpTls::Wrapper => Some(Tls::Wrapper(parameters()?)),
    })
}
