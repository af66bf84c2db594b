//! The fakes checked against the wire formats they emulate (no host needed:
//! `cargo test -p switchboard-tests --lib`).

use crate::fake_dify::{self, StreamError};
use crate::{FakeBitrix, FakeDify, Probe};
use serde_json::{Value, json};
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post_json(url: &str, key: Option<&str>, body: Value) -> (u16, String, String) {
    let mut request = client().post(url).json(&body);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn chat(query: &str, mode: &str, conversation_id: &str) -> Value {
    json!({"inputs": {"BOT_ID": "55"}, "query": query, "response_mode": mode, "conversation_id": conversation_id, "user": "a1b2c3:55:17"})
}

/// `data:` payloads of an SSE body, parsed.
fn sse_data(body: &str) -> Vec<Value> {
    body.split("\n\n").filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: "))).map(|d| serde_json::from_str(d).unwrap()).collect()
}

#[tokio::test]
async fn fake_bitrix_records_json_and_form_calls_and_fails_on_demand() {
    let bitrix = FakeBitrix::start().await;
    let url = format!("{}imbot.message.add", bitrix.client_endpoint());
    let (status, _, body) = post_json(&url, None, json!({"auth": "tok", "BOT_ID": 55, "DIALOG_ID": "17", "MESSAGE": "hi"})).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["result"].as_u64().unwrap() > 0);
    for key in ["start", "finish", "duration", "processing", "date_start", "date_finish"] {
        assert!(body["time"].get(key).is_some(), "time.{key} missing: {body}");
    }

    let form = client()
        .post(format!("{}imbot.command.answer.json", bitrix.client_endpoint()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("auth=tok&COMMAND_ID=12&MESSAGE_ID=9&MESSAGE=a+b&KEYBOARD%5B0%5D%5BTEXT%5D=Yes")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 200);

    bitrix.fail_next(1, 401, "expired_token", "The access token provided has expired.");
    let (status, _, body) = post_json(&url, None, json!({"auth": "old"})).await;
    assert_eq!(status, 401);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"error": "expired_token", "error_description": "The access token provided has expired."}));
    let (status, _, _) = post_json(&url, None, json!({"auth": "new"})).await;
    assert_eq!(status, 200);

    let calls = bitrix.wait_for_calls(4, Duration::from_secs(1)).await;
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].param("BOT_ID").as_deref(), Some("55"));
    assert_eq!(calls[1].method, "imbot.command.answer");
    assert_eq!(calls[1].param("MESSAGE").as_deref(), Some("a b"));
    assert_eq!(calls[1].body["KEYBOARD"]["0"]["TEXT"], "Yes");
    assert!(!calls[2].succeeded());
    assert_eq!(bitrix.calls_to("imbot.message.add").len(), 3);
    let download = client().get(bitrix.download_url("48")).send().await.unwrap();
    assert_eq!(download.status().as_u16(), 200);
}

async fn refresh(bitrix: &FakeBitrix, client_id: &str, secret: &str, refresh_token: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{}/oauth/token/", bitrix.oauth_url()))
        .query(&[("grant_type", "refresh_token"), ("client_id", client_id), ("client_secret", secret), ("refresh_token", refresh_token)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn fake_bitrix_expires_tokens_until_a_refreshed_one_is_used() {
    let bitrix = FakeBitrix::start().await;
    let add = format!("{}imbot.message.add", bitrix.client_endpoint());
    bitrix.expire_next("imbot.message.add", 5);
    let (status, _, body) = post_json(&add, None, json!({"auth": "event-token", "MESSAGE": "one"})).await;
    assert_eq!(status, 401);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"error": "expired_token", "error_description": "The access token provided has expired."}));
    // Other methods are not affected.
    let answer = format!("{}imbot.command.answer", bitrix.client_endpoint());
    assert_eq!(post_json(&answer, None, json!({"auth": "event-token", "MESSAGE": "answer"})).await.0, 200);

    // Wrong client credentials, then a good refresh in the documented shape.
    let (status, body) = refresh(&bitrix, FakeBitrix::CLIENT_ID, "wrong", "user-refresh-token-17").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body) = refresh(&bitrix, FakeBitrix::CLIENT_ID, FakeBitrix::CLIENT_SECRET, "user-refresh-token-17").await;
    assert_eq!(status, 200, "{body}");
    for key in ["access_token", "expires", "expires_in", "member_id", "client_endpoint", "refresh_token", "scope", "server_endpoint"] {
        assert!(body.get(key).is_some(), "{key} missing: {body}");
    }
    assert_eq!(body["member_id"], FakeBitrix::MEMBER_ID);
    assert_eq!(body["client_endpoint"], bitrix.client_endpoint().as_str());
    let fresh = body["access_token"].as_str().unwrap().to_string();
    assert!(bitrix.is_refreshed_token(&fresh));
    // A refresh token works once.
    let (status, body) = refresh(&bitrix, FakeBitrix::CLIENT_ID, FakeBitrix::CLIENT_SECRET, "user-refresh-token-17").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(bitrix.refresh_count(), 1);
    assert_eq!(bitrix.refreshes().len(), 3);

    // The refreshed token goes through and ends the scripted expiry.
    assert_eq!(post_json(&add, None, json!({"auth": fresh, "MESSAGE": "two"})).await.0, 200);
    assert_eq!(post_json(&add, None, json!({"auth": "event-token", "MESSAGE": "three"})).await.0, 200);
    assert_eq!(bitrix.delivered_texts(), ["answer", "two", "three"]);

    // Expired for good: a named token, or every unrefreshed token.
    bitrix.expire_token("event-token");
    assert_eq!(post_json(&add, None, json!({"auth": "event-token"})).await.0, 401);
    bitrix.expire_unrefreshed_tokens();
    assert_eq!(post_json(&add, None, json!({"auth": "other-token"})).await.0, 401);
    assert_eq!(post_json(&add, None, json!({"auth": fresh, "MESSAGE": "four"})).await.0, 200);
    assert_eq!(bitrix.call_count("imbot.message.add"), 6);
    assert_eq!(bitrix.call_counts().get("imbot.command.answer"), Some(&1));
    assert_eq!(bitrix.wait_for_delivered(4, Duration::from_secs(1)).await, ["answer", "two", "three", "four"]);
}

#[tokio::test]
async fn fake_bitrix_rate_limits_and_fails_the_kth_call() {
    let bitrix = FakeBitrix::start().await;
    let add = format!("{}imbot.message.add", bitrix.client_endpoint());
    bitrix.limit_next(2);
    for _ in 0..2 {
        let (status, _, body) = post_json(&add, None, json!({"auth": "t"})).await;
        assert_eq!(status, 503);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}));
    }
    bitrix.throttle_next(1, 7);
    let response = client().post(&add).json(&json!({"auth": "t"})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers().get("retry-after").unwrap(), "7");

    // Calls 4, 5, 6 of imbot.message.add: the 5th fails.
    bitrix.fail_message_add_at(5);
    let mut statuses = Vec::new();
    for text in ["a", "b", "c"] {
        statuses.push(post_json(&add, None, json!({"auth": "t", "MESSAGE": text})).await.0);
    }
    assert_eq!(statuses, [200, 500, 200]);
    assert_eq!(bitrix.delivered_texts(), ["a", "c"]);

    // Method-scoped failures leave other methods alone.
    bitrix.fail_next_of("imbot.command.answer", 1, 400, "COMMAND_ANSWER_FAILED", "x");
    assert_eq!(post_json(&add, None, json!({"auth": "t"})).await.0, 200);
    let answer = format!("{}imbot.command.answer", bitrix.client_endpoint());
    assert_eq!(post_json(&answer, None, json!({"auth": "t"})).await.0, 400);

    // Scripted refresh failures.
    bitrix.fail_next_refresh(1, 503, "temporarily_unavailable", "try later");
    let (status, _) = refresh(&bitrix, FakeBitrix::CLIENT_ID, FakeBitrix::CLIENT_SECRET, "rt").await;
    assert_eq!(status, 503);
    bitrix.revoke_refresh_token("rt");
    let (status, body) = refresh(&bitrix, FakeBitrix::CLIENT_ID, FakeBitrix::CLIENT_SECRET, "rt").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(bitrix.refresh_count(), 0);
}

#[tokio::test]
#[should_panic(expected = "expected at least 1 `imbot.message.add` call")]
async fn fake_bitrix_wait_panics_with_what_it_saw() {
    let bitrix = FakeBitrix::start().await;
    bitrix.wait_for_method("imbot.message.add", 1, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn fake_dify_blocking_chat_and_conversations() {
    let dify = FakeDify::start().await;
    let url = format!("{}/chat-messages", dify.base_url());

    let (status, _, body) = post_json(&url, Some("wrong"), chat("hi", "blocking", "")).await;
    assert_eq!(status, 401);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"code": "unauthorized", "message": "Access token is invalid", "status": 401}));

    let (status, _, body) = post_json(&url, Some("dify-key"), chat("hi", "blocking", "")).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["event"], "message");
    assert_eq!(body["mode"], "advanced-chat");
    assert_eq!(body["answer"], "Dify says: hi");
    for key in ["task_id", "id", "message_id", "conversation_id", "created_at"] {
        assert!(body.get(key).is_some(), "{key} missing");
    }
    assert!(body["metadata"]["usage"]["total_tokens"].is_number());
    let conversation = body["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(dify.issued_conversations(), vec![conversation.clone()]);

    let (status, _, body) = post_json(&url, Some("dify-key"), chat("again", "blocking", &conversation)).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["conversation_id"], conversation.as_str());

    dify.forget_conversations();
    let (status, _, body) = post_json(&url, Some("dify-key"), chat("again", "blocking", &conversation)).await;
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"status": 404, "code": "not_found", "message": "Conversation Not Exists."}));

    let (status, _, body) = post_json(&url, Some("dify-key"), json!({"inputs": {"BOT_ID": 55}, "query": "x", "user": "u"})).await;
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["message"], "BOT_ID in input form must be a string");

    dify.set_max_input_length(Some(48));
    let long = "x".repeat(49);
    let (status, _, body) = post_json(&url, Some("dify-key"), json!({"inputs": {"access_token": long}, "query": "x", "user": "u"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"code": "invalid_param", "message": "access_token in input form must be less than 48 characters", "status": 400})
    );

    dify.fail_next(1, 500, fake_dify::error_body(500, "internal_server_error", "Internal Server Error."));
    let (status, _, _) = post_json(&url, Some("dify-key"), chat("x", "blocking", "")).await;
    assert_eq!(status, 500);

    let requests = dify.requests();
    assert_eq!(requests.len(), 7);
    assert_eq!(requests[1].header("Authorization"), Some("Bearer dify-key"));
    assert_eq!(requests[2].conversation_id(), conversation);
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), vec![401, 200, 200, 404, 400, 400, 500]);
}

#[tokio::test]
async fn fake_dify_agent_streams() {
    let dify = FakeDify::start().await;
    let url = format!("{}/chat-messages", dify.base_url());
    dify.set_agent_mode(true);
    dify.set_answer(Some("Hello from the agent."));

    let (status, _, body) = post_json(&url, Some("dify-key"), chat("hi", "blocking", "")).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"code": "invalid_param", "message": "Agent Chat App does not support blocking mode", "status": 400})
    );

    let (status, content_type, body) = post_json(&url, Some("dify-key"), chat("hi", "streaming", "")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    assert!(body.starts_with("event: ping\n\n"), "{body}");
    assert!(body.contains("data: {\"event\": \"agent_message\""), "spaced JSON expected: {body}");
    assert!(body.contains("data: {\"event\":\"agent_message\","), "compact JSON expected: {body}");
    let events = sse_data(&body);
    let answer: String = events.iter().filter(|e| e["event"] == "agent_message").map(|e| e["answer"].as_str().unwrap()).collect();
    assert_eq!(answer, "Hello from the agent.");
    assert!(events.iter().filter(|e| e["event"] == "agent_message").count() >= 3);
    assert!(events.iter().any(|e| e["event"] == "agent_thought"));
    assert_eq!(events.last().unwrap()["event"], "message_end");

    dify.set_stream_error(Some(StreamError::new(400, "completion_request_error", "Model is overloaded")));
    let (status, _, body) = post_json(&url, Some("dify-key"), chat("hi", "streaming", "")).await;
    assert_eq!(status, 200);
    let events = sse_data(&body);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "error");
    assert_eq!(last["code"], "completion_request_error");
    assert_eq!(last["status"], 400);
}

#[tokio::test]
async fn fake_dify_chatflow_streams_message_events() {
    let dify = FakeDify::start().await;
    let url = format!("{}/chat-messages", dify.base_url());
    let (status, _, body) = post_json(&url, Some("dify-key"), chat("stream me", "streaming", "")).await;
    assert_eq!(status, 200);
    let events = sse_data(&body);
    let answer: String = events.iter().filter(|e| e["event"] == "message").map(|e| e["answer"].as_str().unwrap()).collect();
    assert_eq!(answer, "Dify says: stream me");
    assert!(events.iter().any(|e| e["event"] == "workflow_finished"));
    assert_eq!(events.last().unwrap()["event"], "message_end");
}

#[tokio::test]
async fn fake_dify_workflows() {
    let dify = FakeDify::start().await;
    let url = format!("{}/workflows/run", dify.base_url());
    dify.set_workflow_outputs(json!({"answer": "ok", "topic": "billing"}));
    let (status, _, body) = post_json(&url, Some("dify-key"), json!({"inputs": {"MESSAGE": "hi"}, "response_mode": "blocking", "user": "u"})).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["task_id"].is_string() && body["workflow_run_id"].is_string());
    assert_eq!(body["data"]["status"], "succeeded");
    assert_eq!(body["data"]["outputs"], json!({"answer": "ok", "topic": "billing"}));
    assert!(body["data"]["error"].is_null());
    for key in ["id", "workflow_id", "elapsed_time", "total_tokens", "total_steps", "created_at", "finished_at"] {
        assert!(body["data"].get(key).is_some(), "data.{key} missing");
    }

    let (status, _, body) = post_json(&url, Some("dify-key"), json!({"inputs": {}, "response_mode": "streaming", "user": "u"})).await;
    assert_eq!(status, 200);
    let events = sse_data(&body);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "workflow_finished");
    assert_eq!(last["data"]["outputs"]["topic"], "billing");
}

#[tokio::test]
async fn probe_counts_hits() {
    let probe = Probe::start().await;
    let response = client().get(format!("http://{}/probe?x=1", probe.host_port())).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(probe.hits(), vec![crate::probe::Hit { method: "GET".into(), path: "/probe?x=1".into() }]);
}
