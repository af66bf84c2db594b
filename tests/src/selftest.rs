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
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn chat(query: &str, mode: &str, conversation_id: &str) -> Value {
    json!({"inputs": {"BOT_ID": "55"}, "query": query, "response_mode": mode, "conversation_id": conversation_id, "user": "a1b2c3:55:17"})
}

/// `data:` payloads of an SSE body, parsed.
fn sse_data(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn fake_bitrix_records_json_and_form_calls_and_fails_on_demand() {
    let bitrix = FakeBitrix::start().await;
    let url = format!("{}imbot.message.add", bitrix.client_endpoint());
    let (status, _, body) =
        post_json(&url, None, json!({"auth": "tok", "BOT_ID": 55, "DIALOG_ID": "17", "MESSAGE": "hi"})).await;
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
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": "expired_token", "error_description": "The access token provided has expired."})
    );
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
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"code": "unauthorized", "message": "Access token is invalid", "status": 401})
    );

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
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": 404, "code": "not_found", "message": "Conversation Not Exists."})
    );

    let (status, _, body) =
        post_json(&url, Some("dify-key"), json!({"inputs": {"BOT_ID": 55}, "query": "x", "user": "u"})).await;
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["message"], "BOT_ID in input form must be a string");

    dify.set_max_input_length(Some(48));
    let long = "x".repeat(49);
    let (status, _, body) =
        post_json(&url, Some("dify-key"), json!({"inputs": {"access_token": long}, "query": "x", "user": "u"})).await;
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
    let answer: String =
        events.iter().filter(|e| e["event"] == "agent_message").map(|e| e["answer"].as_str().unwrap()).collect();
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
    let answer: String =
        events.iter().filter(|e| e["event"] == "message").map(|e| e["answer"].as_str().unwrap()).collect();
    assert_eq!(answer, "Dify says: stream me");
    assert!(events.iter().any(|e| e["event"] == "workflow_finished"));
    assert_eq!(events.last().unwrap()["event"], "message_end");
}

#[tokio::test]
async fn fake_dify_workflows() {
    let dify = FakeDify::start().await;
    let url = format!("{}/workflows/run", dify.base_url());
    dify.set_workflow_outputs(json!({"answer": "ok", "topic": "billing"}));
    let (status, _, body) = post_json(
        &url,
        Some("dify-key"),
        json!({"inputs": {"MESSAGE": "hi"}, "response_mode": "blocking", "user": "u"}),
    )
    .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["task_id"].is_string() && body["workflow_run_id"].is_string());
    assert_eq!(body["data"]["status"], "succeeded");
    assert_eq!(body["data"]["outputs"], json!({"answer": "ok", "topic": "billing"}));
    assert!(body["data"]["error"].is_null());
    for key in ["id", "workflow_id", "elapsed_time", "total_tokens", "total_steps", "created_at", "finished_at"] {
        assert!(body["data"].get(key).is_some(), "data.{key} missing");
    }

    let (status, _, body) =
        post_json(&url, Some("dify-key"), json!({"inputs": {}, "response_mode": "streaming", "user": "u"})).await;
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
