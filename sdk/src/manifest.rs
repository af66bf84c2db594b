//! What a plugin declares about itself, for the host to read when it loads
//! the component (before any call). Declare it once per plugin crate with
//! [`manifest!`](crate::manifest):
//!
//! ```
//! switchboard_sdk::manifest!(r#"{
//!     "outbound_hosts": ["https://api.dify.ai"],
//!     "outbound_host_settings": ["base_url"]
//! }"#);
//! ```
//!
//! The manifest is JSON in the component's custom section
//! [`SECTION`]. Fields (all optional):
//!
//! * `name`, `version`: the plugin's, for reports and the admin API.
//! * `kind`: `channel`, `provider` or `handoff`; the host refuses a
//!   component whose exports say otherwise.
//! * `contract`: the `switchboard:plugin` version it was built against
//!   (`0.1.0`); the host refuses versions it cannot run.
//! * `settings`: `[{"name", "required", "secret", "description"}]`, the
//!   settings it reads. A connector that lacks a required one is refused at
//!   start with the description; secret ones are never shown back.
//! * `outbound_hosts`: host patterns (`[scheme://]host[:port]`, `*.` for
//!   subdomains) the plugin always calls, such as a service's cloud default.
//! * `outbound_host_settings`: names of settings whose value is a URL the
//!   plugin calls (`base_url`); the host allows that URL's
//!   `scheme://host:port` for the connector that sets it.
//! * `secret_variables` (channels): names of [`InboundMessage`] variables
//!   that carry platform credentials (OAuth tokens). The host blanks their
//!   values (the names stay) before a provider or the queue sees the
//!   message, unless the connector lists them in `forward_secret_variables`.
//!
//! [`InboundMessage`]: crate::InboundMessage
//!
//! Nothing else is inferred: a plugin without a manifest may reach only the
//! hosts its connector lists in `allowed_hosts`. The host refuses to load a
//! component whose manifest is not valid JSON of this shape.

/// The custom section that holds the manifest.
pub const SECTION: &str = "switchboard-manifest";

/// The bytes of `json`, as a fixed-size array for a `static` in a custom
/// section (used by [`manifest!`](crate::manifest)).
#[doc(hidden)]
pub const fn bytes<const N: usize>(json: &str) -> [u8; N] {
    let source = json.as_bytes();
    assert!(source.len() == N, "the manifest's length must match its array");
    let mut out = [0u8; N];
    let mut at = 0;
    while at < N {
        out[at] = source[at];
        at += 1;
    }
    out
}

/// Embed the plugin's manifest (a constant JSON string, e.g. a literal or a
/// `concat!` with `env!("CARGO_PKG_VERSION")`; see the
/// [`manifest`](crate::manifest) module for its fields) in the component.
#[macro_export]
macro_rules! manifest {
    ($json:expr) => {
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "switchboard-manifest")]
        static SWITCHBOARD_MANIFEST: [u8; $json.len()] = $crate::manifest::bytes::<{ $json.len() }>($json);
    };
}
