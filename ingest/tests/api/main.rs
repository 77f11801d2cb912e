//! Ingest over real HTTP and a real PostgreSQL: every test gets its own fresh database.

mod admin;
mod admin_v2;
mod api_keys;
mod bad_input;
mod bad_input_v2;
mod console;
mod console_live;
mod console_notify;
mod console_strategies;
mod group_commit;
mod harness;
mod listen_notify;
mod notifications;
mod rate_limits;
mod readme_templates;
mod slow_clients;
mod webhook;
mod webhook_v2;
