//! # Switchboard host
//!
//! Receives chat-platform webhooks and runs sandboxed WebAssembly plugins:
//! `channel.translate-in` → `provider.call-provider` → `channel.translate-out`.
//!
//! Flow by file: [`http::webhooks`](crate::http) (webhook in) →
//! [`queue`] (hand-off) → [`pipeline`] (provider call, retries, fallback,
//! delivery) → [`runtime`] (sandboxed plugin calls) with state in [`store`].

pub mod app;
mod bindings;
pub mod config;
pub mod connector;
pub mod conversation;
pub mod http;
pub mod metrics;
pub mod pipeline;
pub mod queue;
pub mod runtime;
pub mod server;
pub mod store;

pub use config::Config;
pub use server::Server;
