//! What `translate-out` needs to answer into a conversation; stored by the
//! host as the conversation's opaque `reply-context` (a JSON string).

use crate::session::Portal;
use serde::{Deserialize, Serialize};
use switchboard_sdk::PluginError;

/// `{"client_endpoint":"https://portal/rest/","bot_token":"…","bot_id":"55","dialog_id":"chat7","chat_id":"7",
/// "member_id":"…","refresh_token":"…","token_expires":1771932585}`
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
    /// The portal (`auth[member_id]`): whose stored, refreshed tokens apply.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub member_id: String,
    /// The refresh token that came with `bot_token`, for refreshing it when
    /// it expired (absent in events that carry none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
    /// When `bot_token` expires (Unix seconds), to tell whether a token
    /// refreshed later is newer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub token_expires: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl ReplyContext {
    /// Serialize for `conversation-ref.reply-context`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always serializes")
    }

    /// Read a reply-context written by [`ReplyContext::to_json`].
    pub fn from_json(text: &str) -> Result<Self, PluginError> {
        let context: Self = serde_json::from_str(text).map_err(|e| {
            PluginError::permanent(format!("reply-context is not a Bitrix24 reply context ({e}); was the conversation started by another channel?"))
        })?;
        if context.client_endpoint.is_empty() || context.dialog_id.is_empty() {
            return Err(PluginError::permanent("reply-context lacks client_endpoint or dialog_id"));
        }
        Ok(context)
    }

    /// Where and as whom to deliver. Contexts written before `member_id` was
    /// recorded take it from the conversation id (`{member_id}:{BOT_ID}:{DIALOG_ID}`).
    pub fn portal(&self, conversation_id: &str) -> Portal {
        let member_id = if self.member_id.is_empty() {
            match conversation_id.split(':').collect::<Vec<_>>().as_slice() {
                [member_id, _bot, _dialog] => member_id.to_string(),
                _ => String::new(),
            }
        } else {
            self.member_id.clone()
        };
        Portal {
            client_endpoint: self.client_endpoint.clone(),
            member_id,
            access_token: self.bot_token.clone(),
            refresh_token: self.refresh_token.clone(),
            expires: self.token_expires,
        }
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
            ..ReplyContext::default()
        };
        let json = context.to_json();
        assert_eq!(json, r#"{"client_endpoint":"https://p.bitrix24.com/rest/","bot_token":"tok","bot_id":"55","dialog_id":"chat7","chat_id":"7"}"#);
        assert_eq!(ReplyContext::from_json(&json).unwrap(), context);
        let refreshable = ReplyContext { member_id: "m1".into(), refresh_token: "rt".into(), token_expires: 1_771_932_585, ..context };
        let json = refreshable.to_json();
        assert!(json.ends_with(r#""member_id":"m1","refresh_token":"rt","token_expires":1771932585}"#), "{json}");
        assert_eq!(ReplyContext::from_json(&json).unwrap(), refreshable);
    }

    #[test]
    fn the_portal_comes_from_the_context_or_the_conversation_id() {
        let context = ReplyContext {
            client_endpoint: "https://p.bitrix24.com/rest/".into(),
            bot_token: "tok".into(),
            dialog_id: "chat7".into(),
            refresh_token: "rt".into(),
            token_expires: 5,
            ..ReplyContext::default()
        };
        let portal = context.portal("m0:55:chat7");
        assert_eq!(portal.member_id, "m0", "older contexts: from the conversation id");
        assert_eq!((portal.access_token.as_str(), portal.refresh_token.as_str(), portal.expires), ("tok", "rt", 5));
        assert_eq!(context.portal("not-a-bitrix-conversation").member_id, "");
        let with_member = ReplyContext { member_id: "m1".into(), ..context };
        assert_eq!(with_member.portal("m0:55:chat7").member_id, "m1");
    }

    #[test]
    fn rejects_foreign_contexts() {
        assert!(ReplyContext::from_json("not json").is_err());
        assert!(ReplyContext::from_json("{}").is_err());
    }
}
