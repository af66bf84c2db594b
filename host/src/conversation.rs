//! The host's record of each conversation: who is answering it (the bot or
//! a human operator), who the customer is, and the recent transcript the
//! operator gets when a handoff starts.
//!
//! ```text
//!            handoff (bot control, user command, admin)
//!   ┌─────┐ ──────────────────────────────────────────► ┌───────┐
//!   │ Bot │                                             │ Human │
//!   └─────┘ ◄────────────────────────────────────────── └───────┘
//!            handoff-ended (help-desk), return command, admin,
//!            or the help-desk refusing a relayed message for good
//!   reset keyword / admin reset: provider forgets the conversation → Bot
//! ```
//!
//! `Human` exists only with a handoff plugin. Without one, a handoff is
//! passed to the channel (e.g. Bitrix24 Open Lines' operator queue) and the
//! conversation is `Platform`: the platform stops sending the bot messages
//! until its operator is done, so the next message the bot receives returns
//! the conversation to `Bot`.

use crate::bindings::{Author, ConversationRef, Sender, TranscriptEntry};
use crate::store::{Scope, StateStore, StoreError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who answers the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The provider (bot) answers.
    #[default]
    Bot,
    /// A human operator answers through the handoff plugin.
    Human,
    /// The platform's own operators took the chat (a handoff passed to the
    /// channel). The platform sends the bot nothing while they work, so the
    /// next message that reaches the bot means they are done.
    Platform,
}

/// What the host remembers about one conversation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub mode: Mode,
    /// Where replies go (kept for callbacks and admin actions).
    pub conversation: Option<ConversationRef>,
    /// The last known customer.
    pub customer: Option<Sender>,
    /// Recent lines, oldest first.
    pub transcript: Vec<TranscriptEntry>,
}

/// Longest transcript line kept, in characters.
const MAX_LINE_CHARS: usize = 1000;

impl ConversationRecord {
    /// Add a transcript line, keeping at most `keep` lines.
    pub fn note(&mut self, author: Author, text: &str, keep: usize) {
        if text.trim().is_empty() || keep == 0 {
            return;
        }
        let text: String = text.chars().take(MAX_LINE_CHARS).collect();
        self.transcript.push(TranscriptEntry { author, text, at: unix_now() });
        let excess = self.transcript.len().saturating_sub(keep);
        self.transcript.drain(..excess);
    }
}

/// Loads and saves [`ConversationRecord`]s in the state store.
pub struct Conversations<'a> {
    pub state: &'a dyn StateStore,
    pub scope: &'a Scope,
    pub ttl: Duration,
}

impl Conversations<'_> {
    /// The record, or a fresh one (mode `Bot`) when none is stored or it no longer parses.
    pub async fn load(&self, conversation_id: &str) -> Result<ConversationRecord, StoreError> {
        let key = self.key(conversation_id)?;
        Ok(self.state.get(&key).await?.and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default())
    }

    /// Store the record (refreshing its TTL).
    pub async fn save(&self, conversation_id: &str, record: &ConversationRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.state.set(&self.key(conversation_id)?, &bytes, self.ttl).await
    }

    fn key(&self, conversation_id: &str) -> Result<String, StoreError> {
        self.scope.key(&format!("conversation:{conversation_id}"))
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_keeps_the_most_recent_lines_and_skips_blank_ones() {
        let mut record = ConversationRecord::default();
        for n in 0..5 {
            record.note(Author::User, &format!("line {n}"), 3);
        }
        record.note(Author::Bot, "   ", 3);
        let lines: Vec<&str> = record.transcript.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(lines, ["line 2", "line 3", "line 4"]);
    }
}
