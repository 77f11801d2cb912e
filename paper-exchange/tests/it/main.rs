//! Integration tests over real HTTP and WebSocket on 127.0.0.1 (port 0).

mod common;
mod faults;
mod orders;
mod rest;
mod stops;
mod ws;
