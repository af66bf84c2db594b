//! What `translate-out` needs to answer into a conversation; stored by the
//! host as the conversation's opaque `reply-context` (a JSON string).

use serde::{Deserialize, Serialize};
use switchboard_sdk::PluginError;

/// `{"client_endpoint":"https://portal/rest/","bot_token":"…","bot_id":"55","dialog_id":"chat7","chat_id":"7"}`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyContext {
    /// The portal's REST base URL, ending with `/`.
    pub client_endpoint: String,
    /// OAuth token used as `auth` on REST calls: the bot's own token from
    /// the event, or the event author's token when the event had none.
    pub bot_token: String,
    /// `BOT_ID` for `imbot.message.add`.
    pub bot_id: String,
    /// `DIALOG_ID`: a user id for private chats, `chat{N}` for group chats.
    pub dialog_id: String,
    /// `CHAT_ID` of the chat, when the event carried one (Open Lines need it
    /// to hand the chat to an operator).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chat_id: String,
}

impl ReplyContext {
    /// Serialize for `conversation-ref.reply-context`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always serializes")
    }

    /// Read a reply-context written by [`ReplyContext::to_json`].
    pub fn from_json(text: &str) -> Result<Self, PluginError> {
        let context: Self = serde_json::from_str(text).map_err(|e| {
            PluginError::permanent(format!(
                "reply-context is not a Bitrix24 reply context ({e}); was the conversation started by another channel?"
            ))
        })?;
        if context.client_endpoint.is_empty() || context.dialog_id.is_empty() {
            return Err(PluginError::permanent(
                "reply-context lacks client_endpoint or dialog_id",
            ));
        }
        Ok(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_the_documented_field_names() {
        let context = ReplyContext {
            client_endpoint: "https://p.bitrix24.com/rest/".into(),
            bot_token: "tok".into(),
            bot_id: "55".into(),
            dialog_id: "chat7".into(),
            chat_id: "7".into(),
        };
        let json = context.to_json();
        assert_eq!(
            json,
            r#"{"client_endpoint":"https://p.bitrix24.com/rest/","bot_token":"tok","bot_id":"55","dialog_id":"chat7","chat_id":"7"}"#
        );
        assert_eq!(ReplyContext::from_json(&json).unwrap(), context);
    }

    #[test]
    fn rejects_foreign_contexts() {
        assert!(ReplyContext::from_json("not json").is_err());
        assert!(ReplyContext::from_json("{}").is_err());
    }
}
