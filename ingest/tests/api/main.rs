//! Ingest over real HTTP and a real PostgreSQL: every test gets its own fresh database.

mod admin;
mod api_keys;
mod bad_input;
mod console;
mod group_commit;
mod harness;
mod listen_notify;
mod rate_limits;
mod slow_clients;
mod webhook;
