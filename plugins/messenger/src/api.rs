//! The service's send API: the endpoint URL, the chat id we send, the request
//! body and the classification of its answers. Pure (no host calls).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_sdk::{PluginError, http};

/// Path of the send method below `base_url`.
pub const SEND_PATH: &str = "/api/1.1/wf/send_message_external";

/// Prefix of every chat id this plugin sends.
pub const CHAT_ID_PREFIX: &str = "sb-";

/// Hex digits of the SHA-256 digest kept in a chat id (128 bits).
pub const CHAT_ID_HEX_DIGITS: usize = 32;

/// `{base_url}/api/1.1/wf/send_message_external`. `base_url` may be the app's
/// root (`https://example.bubbleapps.io`, also with `/version-test`), or
/// already end with `/api/1.1/wf` or with the whole method path; a trailing
/// slash is fine.
pub fn send_url(base_url: &str) -> Result<String, PluginError> {
    let trimmed = base_url.trim().trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(PluginError::config(format!("setting `base_url` = `{trimmed}` is not an http(s) URL (expected e.g. `https://example.bubbleapps.io`)")));
    }
    let mut root = trimmed;
    for suffix in ["/send_message_external", "/api/1.1/wf"] {
        if root.to_ascii_lowercase().ends_with(suffix) {
            root = &root[..root.len() - suffix.len()];
        }
    }
    Ok(format!("{}{SEND_PATH}", root.trim_end_matches('/')))
}

/// The `chat_id` sent to the service for a conversation: `sb-` followed by
/// the first 32 lowercase hex digits of SHA-256 of the conversation id.
///
/// Stable (the same conversation always gets the same id, so the service
/// keeps one dialog per platform conversation), opaque (portal ids and
/// dialog ids are not disclosed to the service), URL-safe (`[a-z0-9-]`) and
/// short. It is one-way: the plugin finds the conversation again through the
/// state entry `chat:{chat_id}`.
pub fn chat_id(conversation_id: &str) -> String {
    let digest = Sha256::digest(conversation_id.as_bytes());
    let mut id = String::with_capacity(CHAT_ID_PREFIX.len() + CHAT_ID_HEX_DIGITS);
    id.push_str(CHAT_ID_PREFIX);
    for byte in digest.iter().take(CHAT_ID_HEX_DIGITS / 2) {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// The state key mapping a chat id back to its conversation.
pub fn state_key(chat_id: &str) -> String {
    format!("chat:{chat_id}")
}

/// Body of `POST send_message_external`.
#[derive(Debug, Serialize)]
pub struct SendRequest<'a> {
    /// The service's task (from the `task_id` setting).
    pub task_id: &'a str,
    /// [`chat_id`] of the conversation.
    pub chat_id: &'a str,
    /// The user's message.
    pub message: &'a str,
}

/// What a success looks like: `{"status":"success","response":{}}`.
#[derive(Debug, Deserialize)]
struct SendResponse {
    #[serde(default)]
    status: Option<serde_json::Value>,
}

/// Check the service's answer to a send. A 2xx is a success unless its JSON
/// body names a `status` other than `success`.
pub fn check_response(status: u16, body: &[u8]) -> Result<(), PluginError> {
    if !(200..300).contains(&status) {
        return Err(classify_http(status, body));
    }
    match serde_json::from_slice::<SendResponse>(body) {
        Ok(SendResponse { status: Some(serde_json::Value::String(s)) }) if !s.eq_ignore_ascii_case("success") => {
            Err(PluginError::permanent(format!("messenger service answered HTTP {status} with status `{s}`: {}", describe_body(body))))
        }
        _ => Ok(()),
    }
}

/// Classify a non-2xx answer: 401/403 → config (token), 408/429/5xx →
/// transient, any other 4xx → permanent.
pub fn classify_http(status: u16, body: &[u8]) -> PluginError {
    let detail = describe_body(body);
    match status {
        401 | 403 => PluginError::config(format!("messenger service rejected the request with HTTP {status} (check setting `token`): {detail}")),
        status if switchboard_sdk::http::is_transient_status(status) => PluginError::transient(format!("messenger service answered HTTP {status}: {detail}")),
        404 => PluginError::permanent(format!("messenger service answered HTTP 404 (check settings `base_url` and `task_id`): {detail}")),
        _ => PluginError::permanent(format!("messenger service answered HTTP {status}: {detail}")),
    }
}

fn describe_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() { "(empty body)".to_string() } else { http::snippet(text.trim()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ErrorKind;

    #[test]
    fn send_url_accepts_root_and_wf_bases() {
        let expected = "https://example.bubbleapps.io/api/1.1/wf/send_message_external";
        for base in [
            "https://example.bubbleapps.io",
            "https://example.bubbleapps.io/",
            " https://example.bubbleapps.io/api/1.1/wf ",
            "https://example.bubbleapps.io/api/1.1/wf/",
            "https://example.bubbleapps.io/api/1.1/wf/send_message_external",
        ] {
            assert_eq!(send_url(base).unwrap(), expected, "base {base:?}");
        }
        assert_eq!(
            send_url("https://example.bubbleapps.io/version-test").unwrap(),
            "https://example.bubbleapps.io/version-test/api/1.1/wf/send_message_external"
        );
        assert_eq!(send_url("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080/api/1.1/wf/send_message_external");
        assert_eq!(send_url("example.bubbleapps.io").unwrap_err().kind, ErrorKind::Config);
    }

    #[test]
    fn chat_id_is_stable_opaque_and_url_safe() {
        let conversation = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4:55:chat7";
        let id = chat_id(conversation);
        assert_eq!(id, chat_id(conversation), "same conversation, same chat id");
        assert_eq!(id.len(), CHAT_ID_PREFIX.len() + CHAT_ID_HEX_DIGITS);
        assert!(id.starts_with(CHAT_ID_PREFIX));
        assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{id}");
        assert!(!id.contains("chat7") && !id.contains(':'), "the conversation id must not leak: {id}");
        // Known value (SHA-256 of "a:1:2" starts with these 16 bytes).
        assert_eq!(chat_id("a:1:2"), format!("sb-{}", &sha256_hex("a:1:2")[..32]));
        // Different conversations (dialogs, bots, portals) get different ids.
        let others = [
            "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4:55:chat8",
            "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4:56:chat7",
            "ffffffffffffffffffffffffffffffff:55:chat7",
            "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4:55:17",
        ];
        for other in others {
            assert_ne!(chat_id(other), id, "{other}");
        }
        assert_eq!(state_key(&id), format!("chat:{id}"));
    }

    fn sha256_hex(s: &str) -> String {
        Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn chat_id_matches_a_published_sha256_vector() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(chat_id("abc"), "sb-ba7816bf8f01cfea414140de5dae2223");
    }

    #[test]
    fn request_body_has_the_documented_fields() {
        let body = serde_json::to_value(SendRequest { task_id: "1721129985149x478019552540622850", chat_id: "sb-1", message: "Hi" }).unwrap();
        assert_eq!(body, serde_json::json!({"task_id":"1721129985149x478019552540622850","chat_id":"sb-1","message":"Hi"}));
    }

    #[test]
    fn responses_are_classified() {
        assert!(check_response(200, br#"{"status":"success","response":{}}"#).is_ok());
        assert!(check_response(200, b"").is_ok());
        assert!(check_response(204, b"").is_ok());
        let e = check_response(200, br#"{"status":"error","message":"no task"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("no task"));
        for (status, kind) in [
            (401, ErrorKind::Config),
            (403, ErrorKind::Config),
            (408, ErrorKind::Transient),
            (429, ErrorKind::Transient),
            (500, ErrorKind::Transient),
            (503, ErrorKind::Transient),
            (400, ErrorKind::Permanent),
            (404, ErrorKind::Permanent),
            (422, ErrorKind::Permanent),
        ] {
            let e = check_response(status, br#"{"statusCode":400,"body":{"status":"MISSING_DATA","message":"Missing parameter"}}"#).unwrap_err();
            assert_eq!(e.kind, kind, "HTTP {status}");
            assert!(e.message.contains(&format!("HTTP {status}")), "{}", e.message);
        }
        assert!(classify_http(401, b"").message.contains("`token`"));
        assert!(classify_http(502, b"").message.contains("(empty body)"));
    }
}
