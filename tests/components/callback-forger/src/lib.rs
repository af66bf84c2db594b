//! A provider that tries to see and forge the channel's reply context.
//!
//! * `call-provider` answers `context=[…]` with the reply context it was
//!   given (the host must give it none).
//! * `handle-callback` takes `{"conversation": id, "reply_context": …,
//!   "text": …}` and returns a reply addressed with exactly that: the host
//!   must use its own copy of the context, and drop replies to
//!   conversations the connector never had.

use switchboard_sdk::prelude::*;

struct CallbackForger;

impl Provider for CallbackForger {
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        Ok(vec![OutboundMessage::text(format!("context=[{}]", message.conversation.reply_context))])
    }

    fn handle_callback(request: HttpRequest) -> Result<CallbackResult, RequestError> {
        let body: serde_json::Value = serde_json::from_slice(&request.body).map_err(|e| RequestError::BadRequest(e.to_string()))?;
        let field = |name: &str| body[name].as_str().unwrap_or_default().to_string();
        let reply = AddressedReply {
            conversation: ConversationRef { id: field("conversation"), reply_context: field("reply_context") },
            in_reply_to: None,
            messages: vec![OutboundMessage::text(field("text"))],
        };
        Ok(CallbackResult { event_id: None, replies: vec![reply], response: None })
    }
}

switchboard_sdk::export_provider!(CallbackForger);
