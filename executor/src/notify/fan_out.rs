//! From outbox row to deliveries: which destinations an event goes to. A user's destinations get
//! the events the user chose; the operator's (OPS_*) get the operational ones, and every event that
//! has no user. Written with the row marked fanned out, in one transaction.

use humbex_shared::config::OpsDestinations;
use humbex_shared::notify::{Channel, Event};
use humbex_shared::store::notifications as sql;
use uuid::Uuid;

use super::Notifier;

/// A user's destinations and chosen events, as stored.
#[derive(Debug, Default, Clone)]
pub struct UserDestinations {
    pub telegram_chat_id: Option<String>,
    pub webhook_url: Option<String>,
    pub email: Option<String>,
    pub events: Vec<String>,
}

/// Every (audience, channel, destination) an event goes to, given the channels this sender has.
pub fn route(
    event: Event,
    has_user: bool,
    user: &UserDestinations,
    ops: &OpsDestinations,
    enabled: impl Fn(Channel) -> bool,
) -> Vec<(&'static str, Channel, String)> {
    let mut out = Vec::new();
    if has_user && user.events.iter().any(|e| e == event.as_str()) {
        let mine = [
            (Channel::Telegram, &user.telegram_chat_id),
            (Channel::Webhook, &user.webhook_url),
            (Channel::Email, &user.email),
        ];
        for (channel, dest) in mine {
            if let Some(dest) = dest.as_ref().filter(|_| enabled(channel)) {
                out.push(("user", channel, dest.clone()));
            }
        }
    }
    if event.for_operator() || !has_user {
        let theirs = [
            (Channel::Telegram, ops.telegram_chat_id.clone()),
            (Channel::Webhook, ops.webhook.as_ref().map(|(url, _)| url.clone())),
            (Channel::Email, ops.email.clone()),
        ];
        for (channel, dest) in theirs {
            if let Some(dest) = dest.filter(|_| enabled(channel)) {
                out.push(("ops", channel, dest));
            }
        }
    }
    out
}

impl Notifier {
    fn channel_enabled(&self, channel: Channel) -> bool {
        match channel {
            Channel::Telegram => self.config.telegram.is_some(),
            Channel::Webhook => true,
            Channel::Email => self.mailer.is_some(),
        }
    }

    /// Fan out one batch of new outbox rows; the number fanned out.
    #[tracing::instrument(skip_all)]
    pub async fn fan_out(&self) -> anyhow::Result<usize> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = tx.query(sql::CLAIM_TO_FAN_OUT, &[&self.settings.batch]).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let (mut ids, mut audiences, mut channels, mut destinations) = (vec![], vec![], vec![], vec![]);
        let mut done: Vec<Uuid> = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.get("id");
            done.push(id);
            let event_text: String = row.get("event");
            let Some(event) = Event::parse(&event_text) else {
                tracing::error!(notification_id = %id, event = %event_text, "unknown event in the outbox; skipped");
                continue;
            };
            let user = UserDestinations {
                telegram_chat_id: row.get("telegram_chat_id"),
                webhook_url: row.get("webhook_url"),
                email: row.get("email"),
                events: row.get::<_, Option<Vec<String>>>("events").unwrap_or_default(),
            };
            let has_user = row.get::<_, Option<Uuid>>("user_id").is_some();
            for (audience, channel, dest) in route(event, has_user, &user, &self.config.ops, |c| {
                self.channel_enabled(c)
            }) {
                ids.push(id);
                audiences.push(audience.to_owned());
                channels.push(channel.as_str().to_owned());
                destinations.push(dest);
            }
        }
        tx.execute(
            sql::INSERT_DELIVERIES,
            &[&ids, &audiences, &channels, &destinations],
        )
        .await?;
        tx.execute(sql::MARK_FANNED_OUT, &[&done]).await?;
        tx.commit().await?;
        Ok(done.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_get_what_they_chose_and_the_operator_the_operational_events() {
        let user = UserDestinations {
            telegram_chat_id: Some("42".into()),
            webhook_url: Some("https://example.com/h".into()),
            email: None,
            events: vec!["order_filled".into(), "key_unusable".into()],
        };
        let ops = OpsDestinations {
            telegram_chat_id: Some("7".into()),
            webhook: None,
            email: Some("ops@example.com".into()),
        };
        let all = |_| true;
        assert_eq!(route(Event::OrderFilled, true, &user, &ops, all).len(), 2);
        let key = route(Event::KeyUnusable, true, &user, &ops, all);
        assert_eq!(key.iter().filter(|(a, _, _)| *a == "ops").count(), 2);
        assert_eq!(route(Event::SignalRejected, true, &user, &ops, all), vec![]);
        assert_eq!(route(Event::SignalRejected, false, &user, &ops, all).len(), 2);
        let no_telegram = route(Event::OrderFilled, true, &user, &ops, |c| c != Channel::Telegram);
        assert_eq!(
            no_telegram,
            vec![("user", Channel::Webhook, "https://example.com/h".into())]
        );
    }
}
