//! Assembling a streamed (`text/event-stream`) chat answer, as Dify Agent
//! apps send it. Pure: takes the whole body read until the server closed it.

use crate::api::{self, ChatAnswer, Envelope, Failure};
use serde::Deserialize;
use switchboard_sdk::{PluginError, http, sse};

/// The fields of a Dify stream event this plugin uses.
#[derive(Debug, Default, Deserialize)]
struct StreamEvent {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<u16>,
}

/// Assemble the answer from a complete event stream: `message` and
/// `agent_message` chunks are concatenated, `message_replace` replaces all so
/// far, pings and other events are ignored, an `error` event fails the call.
/// The conversation id is taken from any event that carries one.
pub fn assemble(body: &str) -> Result<ChatAnswer, Failure> {
    let events = sse::parse(body);
    if events.iter().all(|e| e.data.trim().is_empty()) && body.trim_start().starts_with('{') {
        // A JSON body where a stream was expected: a blocking-style answer.
        return api::parse_chat_response(body.as_bytes()).map_err(Failure::from);
    }
    let mut outcome = ChatAnswer::default();
    let mut parsed_any = false;
    for raw in events {
        if raw.event == "ping" || raw.data.trim().is_empty() {
            continue;
        }
        let Ok(event) = serde_json::from_str::<StreamEvent>(&raw.data) else {
            continue;
        };
        parsed_any = true;
        if let Some(id) = event.conversation_id.as_deref().filter(|id| !id.is_empty()) {
            outcome.conversation_id = id.to_string();
        }
        let kind = event.event.as_deref().filter(|k| !k.is_empty()).unwrap_or(raw.event.as_str());
        match kind {
            "message" | "agent_message" => outcome.answer.push_str(event.answer.as_deref().unwrap_or("")),
            "message_replace" => outcome.answer = event.answer.unwrap_or_default(),
            "error" => {
                return Err(api::classify_stream_error(&Envelope { code: event.code, message: event.message, status: event.status }));
            }
            _ => {}
        }
    }
    if !parsed_any && !body.trim().is_empty() {
        return Err(Failure::Error(PluginError::permanent(format!("Dify stream contained no JSON events: {}", http::snippet(body)))));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ErrorKind;

    #[test]
    fn concatenates_agent_message_chunks_and_skips_pings() {
        let body = concat!(
            "data: {\"event\": \"agent_thought\", \"conversation_id\": \"c-9\", \"thought\": \"\"}\n\n",
            "event: ping\n\n",
            "data: {\"event\": \"agent_message\", \"conversation_id\": \"c-9\", \"answer\": \"Hel\"}\n\n",
            "data: {\"event\":\"agent_message\",\"conversation_id\":\"c-9\",\"answer\":\"lo\"}\n\n",
            "data: {\"event\":\"message_end\",\"conversation_id\":\"c-9\",\"metadata\":{\"usage\":{}}}\n\n",
        );
        let answer = assemble(body).unwrap();
        assert_eq!(answer.answer, "Hello");
        assert_eq!(answer.conversation_id, "c-9");
    }

    #[test]
    fn message_chunks_and_crlf() {
        let body = "data: {\"event\":\"message\",\"answer\":\"a\",\"conversation_id\":\"c\"}\r\n\r\ndata: {\"event\":\"message\",\"answer\":\"b\"}\r\n\r\n";
        assert_eq!(assemble(body).unwrap().answer, "ab");
    }

    #[test]
    fn message_replace_replaces_everything_so_far() {
        let body = concat!(
            "data: {\"event\":\"agent_message\",\"answer\":\"bad words\"}\n\n",
            "data: {\"event\":\"message_replace\",\"answer\":\"[moderated]\"}\n\n",
            "data: {\"event\":\"agent_message\",\"answer\":\" ok\"}\n\n",
        );
        assert_eq!(assemble(body).unwrap().answer, "[moderated] ok");
    }

    #[test]
    fn error_event_inside_200_stream_fails() {
        let body = concat!(
            "data: {\"event\":\"agent_message\",\"answer\":\"partial\"}\n\n",
            "data: {\"event\": \"error\", \"message_id\": \"m\", \"conversation_id\": \"c\", \"status\": 400, \"code\": \"completion_request_error\", \"message\": \"model failed\"}\n\n",
        );
        match assemble(body) {
            Err(Failure::Error(e)) => {
                assert_eq!(e.kind, ErrorKind::Permanent);
                assert!(e.message.contains("completion_request_error") && e.message.contains("model failed"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let body = "data: {\"event\":\"error\",\"status\":500,\"code\":\"internal_server_error\",\"message\":\"boom\"}\n\n";
        assert!(matches!(assemble(body), Err(Failure::Error(e)) if e.kind == ErrorKind::Transient));
        let body = "data: {\"event\":\"error\",\"status\":404,\"code\":\"not_found\",\"message\":\"Conversation Not Exists.\"}\n\n";
        assert!(matches!(assemble(body), Err(Failure::ConversationGone)));
    }

    #[test]
    fn stream_without_trailing_blank_line_and_without_done() {
        let body = "data: {\"event\":\"agent_message\",\"answer\":\"x\"}\n\ndata: {\"event\":\"message_end\"}";
        assert_eq!(assemble(body).unwrap().answer, "x");
    }

    #[test]
    fn json_body_instead_of_stream() {
        let answer = assemble("{\"answer\":\"hi\",\"conversation_id\":\"c\"}").unwrap();
        assert_eq!(answer.answer, "hi");
        assert_eq!(answer.conversation_id, "c");
    }

    #[test]
    fn garbage_is_an_error_but_empty_is_empty() {
        assert!(matches!(assemble("<html>oops</html>"), Err(Failure::Error(e)) if e.kind == ErrorKind::Permanent));
        assert_eq!(assemble("").unwrap(), ChatAnswer::default());
    }
}
