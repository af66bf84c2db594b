//! # Switchboard plugin SDK
//!
//! A Switchboard plugin is a WebAssembly component that adapts one chat
//! platform (a **channel**) or one bot service (a **provider**). Implement
//! [`Channel`] or [`Provider`] and register the type with
//! [`export_channel!`] or [`export_provider!`]:
//!
//! ```
//! use switchboard_sdk::prelude::*;
//!
//! struct Echo;
//!
//! impl Provider for Echo {
//!     fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
//!         Ok(vec![OutboundMessage::text(format!("You said: {}", message.text))])
//!     }
//! }
//!
//! switchboard_sdk::export_provider!(Echo);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2`. The helpers cover what
//! adapters need: [`http`] (outbound JSON/form requests through the host's
//! policy-checked `wasi:http`), [`sse`] (server-sent events), [`form`]
//! (PHP-style nested form bodies), [`state`] (per-conversation state with a
//! TTL), [`config`] (connector settings and secrets) and [`log`]. Declare
//! the hosts the plugin calls with [`manifest!`].
#![deny(missing_docs)]

#[doc(hidden)]
pub mod bindings;
pub mod config;
pub mod form;
pub mod http;
pub mod log;
pub mod manifest;
pub mod sse;
pub mod state;
mod types_ext;

use bindings::channel::exports::switchboard::plugin::channel as channel_exports;
use bindings::provider::exports::switchboard::plugin::provider as provider_exports;

pub use bindings::channel::switchboard::plugin::types::{
    AddressedReply, Attachment, Author, Button, CallbackResult, Command, Control, ConversationEvent, ConversationRef, ErrorKind, HttpRequest, HttpResponse,
    InboundMessage, OutboundFile, OutboundMessage, PluginError, RequestError, Sender, TranscriptEntry, Translated,
};

/// Ordered string pairs, as used for variables, headers and action arguments.
pub type Pairs = Vec<(String, String)>;

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::{
        AddressedReply, Attachment, Author, Button, CallbackResult, Channel, Command, Control, ConversationEvent, ConversationRef, ErrorKind, Handoff,
        HttpRequest, HttpResponse, InboundMessage, OutboundFile, OutboundMessage, Pairs, PluginError, Provider, RequestError, Sender, TranscriptEntry,
        Translated, config, form, http, log, sse, state,
    };
}

/// A platform adapter: turns webhooks into [`InboundMessage`]s and replies
/// into platform API calls.
pub trait Channel {
    /// Verify and parse one webhook. Runs while the platform waits for the
    /// HTTP answer: do not call slow APIs here. Return
    /// [`RequestError::Forbidden`] when authentication fails and
    /// [`RequestError::BadRequest`] for malformed payloads.
    fn translate_in(request: HttpRequest) -> Result<Translated, RequestError>;

    /// Deliver replies to the platform. `reply.conversation.reply_context` is
    /// exactly what [`Channel::translate_in`] put there.
    fn translate_out(reply: AddressedReply) -> Result<(), PluginError>;

    /// Run an administrative action (for example registering the bot).
    /// The default knows no actions.
    fn run_action(name: String, args: Pairs) -> Result<String, PluginError> {
        let _ = args;
        Err(PluginError::permanent(format!("unknown action `{name}`: this plugin has no actions")))
    }
}

/// A bot-service adapter: answers [`InboundMessage`]s.
pub trait Provider {
    /// Ask the bot for its answer to one user message. Return
    /// [`ErrorKind::Transient`] errors for failures worth retrying; the host
    /// retries them and finally sends the connector's fallback text.
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError>;

    /// Handle a request the bot service sent to
    /// `POST /hooks/{connector}/{plugin}`. The default rejects it with 404.
    fn handle_callback(request: HttpRequest) -> Result<CallbackResult, RequestError> {
        let _ = request;
        Err(RequestError::NotFound("this provider accepts no callbacks".into()))
    }

    /// Learn about a conversation event (handoff started/ended, operator
    /// message, reset). The default ignores it; providers with
    /// per-conversation state should at least forget it on
    /// [`ConversationEvent::Reset`].
    fn on_event(conversation: ConversationRef, event: ConversationEvent) -> Result<(), PluginError> {
        let _ = (conversation, event);
        Ok(())
    }
}

/// A human-handoff adapter (a help-desk such as LiveChat): while a
/// conversation is handed off, the host relays the user's messages here
/// instead of to the bot. Register it with [`export_handoff!`].
pub trait Handoff {
    /// Open an operator chat for `conversation` with the reason and the
    /// recent transcript.
    fn start_handoff(conversation: ConversationRef, customer: Sender, reason: String, transcript: Vec<TranscriptEntry>) -> Result<(), PluginError>;

    /// Pass one user message to the operator chat.
    fn relay_message(message: InboundMessage) -> Result<(), PluginError>;

    /// Handle a request the help-desk sent to `POST /hooks/{connector}/{plugin}`:
    /// operator messages become replies; when the operator chat ends, reply
    /// with a message carrying [`Control::HandoffEnded`].
    fn handle_callback(request: HttpRequest) -> Result<CallbackResult, RequestError>;

    /// Close the operator chat: the conversation returns to the bot.
    fn end_handoff(conversation: ConversationRef) -> Result<(), PluginError>;
}

/// Register a [`Channel`] implementation as the component's export.
#[macro_export]
macro_rules! export_channel {
    ($plugin:ty) => {
        // Component exports only link for wasm targets; native builds (unit
        // tests of a plugin crate) skip them.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SwitchboardChannelExport;
            impl $crate::__private::ChannelGuest for SwitchboardChannelExport {
                fn translate_in(request: $crate::HttpRequest) -> ::core::result::Result<$crate::Translated, $crate::RequestError> {
                    <$plugin as $crate::Channel>::translate_in(request)
                }
                fn translate_out(reply: $crate::AddressedReply) -> ::core::result::Result<(), $crate::PluginError> {
                    <$plugin as $crate::Channel>::translate_out(reply)
                }
                fn run_action(name: ::std::string::String, args: $crate::Pairs) -> ::core::result::Result<::std::string::String, $crate::PluginError> {
                    <$plugin as $crate::Channel>::run_action(name, args)
                }
            }
            $crate::__private::bindings::channel::export_channel_world!(SwitchboardChannelExport);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            #[allow(dead_code)]
            fn exported() {
                let _ = <$plugin as $crate::Channel>::translate_in;
                let _ = <$plugin as $crate::Channel>::translate_out;
                let _ = <$plugin as $crate::Channel>::run_action;
            }
        };
    };
}

/// Register a [`Provider`] implementation as the component's export.
#[macro_export]
macro_rules! export_provider {
    ($plugin:ty) => {
        // Component exports only link for wasm targets; native builds (unit
        // tests of a plugin crate) skip them.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SwitchboardProviderExport;
            impl $crate::__private::ProviderGuest for SwitchboardProviderExport {
                fn call_provider(message: $crate::InboundMessage) -> ::core::result::Result<::std::vec::Vec<$crate::OutboundMessage>, $crate::PluginError> {
                    <$plugin as $crate::Provider>::call_provider(message)
                }
                fn handle_callback(request: $crate::HttpRequest) -> ::core::result::Result<$crate::CallbackResult, $crate::RequestError> {
                    <$plugin as $crate::Provider>::handle_callback(request)
                }
                fn on_event(conversation: $crate::ConversationRef, event: $crate::ConversationEvent) -> ::core::result::Result<(), $crate::PluginError> {
                    <$plugin as $crate::Provider>::on_event(conversation, event)
                }
            }
            $crate::__private::bindings::provider::export_provider_world!(SwitchboardProviderExport);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            #[allow(dead_code)]
            fn exported() {
                let _ = <$plugin as $crate::Provider>::call_provider;
                let _ = <$plugin as $crate::Provider>::handle_callback;
                let _ = <$plugin as $crate::Provider>::on_event;
            }
        };
    };
}

/// Register a [`Handoff`] implementation as the component's export.
#[macro_export]
macro_rules! export_handoff {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SwitchboardHandoffExport;
            impl $crate::__private::HandoffGuest for SwitchboardHandoffExport {
                fn start_handoff(
                    conversation: $crate::ConversationRef,
                    customer: $crate::Sender,
                    reason: ::std::string::String,
                    transcript: ::std::vec::Vec<$crate::TranscriptEntry>,
                ) -> ::core::result::Result<(), $crate::PluginError> {
                    <$plugin as $crate::Handoff>::start_handoff(conversation, customer, reason, transcript)
                }
                fn relay_message(message: $crate::InboundMessage) -> ::core::result::Result<(), $crate::PluginError> {
                    <$plugin as $crate::Handoff>::relay_message(message)
                }
                fn handle_callback(request: $crate::HttpRequest) -> ::core::result::Result<$crate::CallbackResult, $crate::RequestError> {
                    <$plugin as $crate::Handoff>::handle_callback(request)
                }
                fn end_handoff(conversation: $crate::ConversationRef) -> ::core::result::Result<(), $crate::PluginError> {
                    <$plugin as $crate::Handoff>::end_handoff(conversation)
                }
            }
            $crate::__private::bindings::handoff::export_handoff_world!(SwitchboardHandoffExport);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            #[allow(dead_code)]
            fn exported() {
                let _ = <$plugin as $crate::Handoff>::start_handoff;
                let _ = <$plugin as $crate::Handoff>::relay_message;
                let _ = <$plugin as $crate::Handoff>::handle_callback;
                let _ = <$plugin as $crate::Handoff>::end_handoff;
            }
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::bindings::handoff::exports::switchboard::plugin::handoff::Guest as HandoffGuest;
    pub use crate::channel_exports::Guest as ChannelGuest;
    pub use crate::provider_exports::Guest as ProviderGuest;
}
