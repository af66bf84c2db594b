//! Turn a Typebot chat response (`messages`, `input`, `clientSideActions`)
//! into outbound messages. Pure: no host calls.
//!
//! * Every bubble of `messages[]` becomes one message: text bubbles as
//!   Markdown ([`crate::richtext`]), image / video / audio bubbles as a file
//!   (URL, name from the URL), embed bubbles (and YouTube/Vimeo-style videos)
//!   as a link in the text.
//! * A `choice input` puts one button per item on the last message (label
//!   and value = the item's `content`), so a press comes back as the answer.
//! * A handoff request (see [`HandoffRules`]) puts `control: handoff(reason)`
//!   on the last message.
//! * An ended flow puts `control: close` on the last message (a handoff
//!   wins: there is one control per message).

use crate::richtext;
use serde_json::Value;
use switchboard_sdk::{Button, Control, OutboundFile, OutboundMessage};

/// How the bot asks for a human operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandoffRules {
    /// `handoff_variable`: a client-side script in the response calling
    /// `setVariable("<name>", value)` with this name requests a handoff.
    pub variable: Option<String>,
    /// `handoff_marker`: a text bubble containing this text requests a
    /// handoff; the marker is removed from the text.
    pub marker: Option<String>,
}

/// What one Typebot response means for the conversation.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The messages to deliver.
    pub messages: Vec<OutboundMessage>,
    /// The flow is over: forget the session.
    pub ended: bool,
    /// The bot asked for a human, with this reason.
    pub handoff: Option<String>,
    /// Bubbles or actions that were skipped (for the log).
    pub skipped: Vec<String>,
}

/// Build the reply for one startChat / continueChat response.
pub fn build(response: &Value, rules: &HandoffRules) -> Reply {
    let mut messages = Vec::new();
    let mut skipped = Vec::new();
    let mut handoff = None;
    let marker = rules.marker.as_deref().filter(|m| !m.is_empty());
    for bubble in response.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        match bubble_message(bubble) {
            Some(mut message) => {
                if let Some(marker) = marker
                    && message.text.contains(marker)
                {
                    message.text = message.text.replace(marker, "").trim().to_string();
                    handoff.get_or_insert_with(String::new);
                }
                if !message.text.is_empty() || !message.files.is_empty() {
                    messages.push(message);
                }
            }
            None => skipped.push(format!("bubble type `{}`", str_field(bubble, "type"))),
        }
    }
    let actions = response.get("clientSideActions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    if let Some(variable) = rules.variable.as_deref().filter(|v| !v.is_empty()) {
        for action in actions {
            if let Some(reason) = variable_handoff(action, variable) {
                // The last call wins, as it would when the script runs.
                handoff = Some(reason);
            }
        }
    }

    let buttons = choice_buttons(response.get("input"));
    let ended = is_ended(response);
    let control = match &handoff {
        Some(reason) => Some(Control::Handoff(reason.clone())),
        None if ended => Some(Control::Close),
        None => None,
    };
    if (!buttons.is_empty() || control.is_some()) && messages.is_empty() {
        messages.push(OutboundMessage::text(""));
    }
    if let Some(last) = messages.last_mut() {
        last.buttons = buttons;
        last.control = control;
    }
    Reply { messages, ended, handoff, skipped }
}

/// Whether the flow is over, as Typebot itself decides it: no `input`, no
/// client-side action waiting for a dedicated reply, no embed waiting for an
/// event.
pub fn is_ended(response: &Value) -> bool {
    let has_input = response.get("input").is_some_and(|input| !input.is_null());
    let waits_for_reply = response
        .get("clientSideActions")
        .and_then(Value::as_array)
        .is_some_and(|actions| actions.iter().any(|a| a.get("expectsDedicatedReply").and_then(Value::as_bool) == Some(true)));
    let waits_for_event = response.get("messages").and_then(Value::as_array).is_some_and(|bubbles| {
        bubbles.iter().any(|b| str_field(b, "type") == "custom-embed" || b.pointer("/content/waitForEvent/isEnabled").and_then(Value::as_bool) == Some(true))
    });
    !has_input && !waits_for_reply && !waits_for_event
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// One bubble as a message; `None` for bubbles the plugin cannot show.
fn bubble_message(bubble: &Value) -> Option<OutboundMessage> {
    let content = bubble.get("content").unwrap_or(&Value::Null);
    match str_field(bubble, "type") {
        "text" => Some(OutboundMessage::text(text_content(content))),
        "image" | "audio" => media(content),
        "video" => match str_field(content, "type") {
            "" | "url" => media(content),
            // YouTube, Vimeo, TikTok, Gumlet: a page, not a file.
            _ => link_message(content),
        },
        "embed" => link_message(content),
        _ => None,
    }
}

/// A text bubble's content: `richText` (rendered), `markdown`, or the older
/// `plainText`.
fn text_content(content: &Value) -> String {
    if let Some(rich) = content.get("richText").filter(|r| !r.is_null()) {
        return richtext::to_markdown(rich);
    }
    for key in ["markdown", "plainText"] {
        if let Some(text) = content.get(key).and_then(Value::as_str) {
            return text.trim().to_string();
        }
    }
    String::new()
}

fn url_of(content: &Value) -> Option<String> {
    content.get("url").and_then(Value::as_str).map(str::trim).filter(|u| !u.is_empty()).map(str::to_string)
}

fn media(content: &Value) -> Option<OutboundMessage> {
    let url = url_of(content)?;
    let mut message = OutboundMessage::text("");
    message.files.push(OutboundFile { name: file_name(&url), url });
    Some(message)
}

fn link_message(content: &Value) -> Option<OutboundMessage> {
    let url = url_of(content)?;
    Some(OutboundMessage::text(format!("[{url}]({url})")))
}

/// The last path segment of `url`, without query or fragment.
pub fn file_name(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
    let (_, path) = after_scheme.split_once('/')?;
    let segment = path.trim_end_matches('/').rsplit('/').next()?;
    (!segment.is_empty()).then(|| segment.to_string())
}

/// Buttons for a `choice input` (label = value = the item's `content`).
pub fn choice_buttons(input: Option<&Value>) -> Vec<Button> {
    let Some(input) = input.filter(|i| str_field(i, "type") == "choice input") else {
        return Vec::new();
    };
    input
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|item| item.get("content").and_then(Value::as_str))
        .map(str::trim)
        .filter(|content| !content.is_empty())
        .map(|content| Button { label: content.to_string(), value: content.to_string() })
        .collect()
}

/// The script text of a client-side action (`scriptToExecute`, the script of
/// a client-side `setVariable`, or `codeToExecute`) and its arguments.
fn action_script(action: &Value) -> Option<(&str, &[Value])> {
    let script = match str_field(action, "type") {
        "scriptToExecute" => action.get("scriptToExecute"),
        "setVariable" => action.pointer("/setVariable/scriptToExecute"),
        "codeToExecute" => action.get("codeToExecute"),
        _ => None,
    }?;
    let content = script.get("content").and_then(Value::as_str)?;
    let args = script.get("args").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    Some((content, args))
}

/// If the action's script calls `setVariable("<variable>", value)`, the
/// handoff reason: the value when it is a string / number literal or a
/// variable Typebot passed as an argument; empty for `true`, `"yes"`, `1`
/// or an expression. Falsy values (`false`, `""`, `"no"`, `0`, `null`) are
/// not a handoff.
pub fn variable_handoff(action: &Value, variable: &str) -> Option<String> {
    let (content, args) = action_script(action)?;
    let mut found = None;
    for call in set_variable_calls(content) {
        if call.name != variable {
            continue;
        }
        let value = match call.value {
            Arg::Literal(text) => Some(text),
            Arg::Ident(id) => args.iter().find(|a| a.get("id").and_then(Value::as_str) == Some(id.as_str())).map(|a| match a.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            }),
            Arg::Other => None,
        };
        found = Some(match value {
            None => Some(String::new()),
            Some(v) if matches!(v.trim().to_ascii_lowercase().as_str(), "" | "false" | "no" | "0" | "null" | "undefined") => None,
            Some(v) if matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1") => Some(String::new()),
            Some(v) => Some(v.trim().to_string()),
        });
    }
    found.flatten()
}

#[derive(Debug, PartialEq)]
enum Arg {
    Literal(String),
    Ident(String),
    Other,
}

#[derive(Debug, PartialEq)]
struct SetVariableCall {
    name: String,
    value: Arg,
}

/// `setVariable(<string literal>, <arg>)` calls in a script, in order.
fn set_variable_calls(script: &str) -> Vec<SetVariableCall> {
    let mut calls = Vec::new();
    let mut rest = script;
    while let Some(pos) = rest.find("setVariable") {
        let before = rest[..pos].chars().next_back();
        rest = &rest[pos + "setVariable".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let Some(args) = rest.trim_start().strip_prefix('(') else { continue };
        let Some((name, after_name)) = string_literal(args.trim_start()) else { continue };
        let Some(after_comma) = after_name.trim_start().strip_prefix(',') else { continue };
        let value_src = after_comma.trim_start();
        let value = if let Some((text, tail)) = string_literal(value_src) {
            if tail.trim_start().starts_with(')') { Arg::Literal(text) } else { Arg::Other }
        } else {
            let token: String = value_src.chars().take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '.' | '-')).collect();
            let tail = value_src[token.len()..].trim_start();
            if token.is_empty() || !tail.starts_with(')') {
                Arg::Other
            } else if token.parse::<f64>().is_ok() || matches!(token.as_str(), "true" | "false" | "null" | "undefined") {
                Arg::Literal(token)
            } else {
                Arg::Ident(token)
            }
        };
        calls.push(SetVariableCall { name, value });
    }
    calls
}

/// A JS string literal (`"…"`, `'…'` or `` `…` `` without `${`) at the start
/// of `src`: its value and the text after it.
fn string_literal(src: &str) -> Option<(String, &str)> {
    let quote = src.chars().next().filter(|c| matches!(c, '"' | '\'' | '`'))?;
    let mut value = String::new();
    let mut chars = src[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, escaped) = chars.next()?;
                value.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
            }
            '$' if quote == '`' && src[1 + i..].starts_with("${") => return None,
            c if c == quote => return Some((value, &src[1 + i + 1..])),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rich(text: &str) -> Value {
        json!({"id": "b1", "type": "text", "content": {"type": "richText", "richText": [{"type": "p", "children": [{"text": text}]}]}})
    }

    fn no_rules() -> HandoffRules {
        HandoffRules::default()
    }

    /// `none`, `close`, `handoff:<reason>`, ...
    fn ctl(message: &OutboundMessage) -> String {
        match &message.control {
            None => "none".into(),
            Some(Control::Close) => "close".into(),
            Some(Control::Handoff(reason)) => format!("handoff:{reason}"),
            Some(other) => format!("{other:?}"),
        }
    }

    fn buttons(message: &OutboundMessage) -> Vec<(String, String)> {
        message.buttons.iter().map(|b| (b.label.clone(), b.value.clone())).collect()
    }

    fn files(message: &OutboundMessage) -> Vec<(String, Option<String>)> {
        message.files.iter().map(|f| (f.url.clone(), f.name.clone())).collect()
    }

    /// `(text, buttons, files, control)` of each message.
    fn summary(messages: &[OutboundMessage]) -> Vec<(String, usize, usize, String)> {
        messages.iter().map(|m| (m.text.clone(), m.buttons.len(), m.files.len(), ctl(m))).collect()
    }

    #[test]
    fn bubbles_become_messages_and_choice_becomes_buttons_on_the_last() {
        let response = json!({
            "sessionId": "s1", "resultId": "r1", "typebot": {"id": "t1", "version": "6"},
            "messages": [
                {"id": "b1", "type": "text", "content": {"type": "richText", "richText": [
                    {"type": "p", "children": [{"text": "Hi "}, {"text": "there", "bold": true}, {"text": "!"}]}
                ]}},
                {"id": "b2", "type": "image", "content": {"url": "https://s3.typebot.io/public/pic.png?v=2"}},
                {"id": "b3", "type": "text", "content": {"type": "markdown", "markdown": "Pick _one_:\n"}}
            ],
            "input": {"id": "i1", "type": "choice input", "items": [
                {"id": "c1", "content": "Yes"}, {"id": "c2", "content": " No "}, {"id": "c3"}
            ], "options": {"isMultipleChoice": false}},
            "progress": 42
        });
        let reply = build(&response, &no_rules());
        assert!(!reply.ended);
        assert_eq!(reply.messages.len(), 3);
        assert_eq!(reply.messages[0].text, "Hi **there**!");
        assert!(reply.messages[0].buttons.is_empty());
        assert_eq!(reply.messages[1].text, "");
        assert_eq!(files(&reply.messages[1]), vec![("https://s3.typebot.io/public/pic.png?v=2".to_string(), Some("pic.png".to_string()))]);
        assert_eq!(reply.messages[2].text, "Pick _one_:");
        assert_eq!(buttons(&reply.messages[2]), vec![("Yes".to_string(), "Yes".to_string()), ("No".to_string(), "No".to_string())]);
        assert!(reply.messages.iter().all(|m| m.control.is_none()));
    }

    #[test]
    fn buttons_without_bubbles_get_an_empty_message() {
        let response = json!({"messages": [], "input": {"id": "i", "type": "choice input", "items": [{"id": "a", "content": "A"}]}});
        let reply = build(&response, &no_rules());
        assert_eq!(reply.messages.len(), 1);
        assert_eq!(reply.messages[0].text, "");
        assert_eq!(reply.messages[0].buttons.len(), 1);
    }

    #[test]
    fn ended_flow_closes_on_the_last_message() {
        let response = json!({"messages": [rich("Thanks!"), rich("Bye.")], "progress": 100});
        let reply = build(&response, &no_rules());
        assert!(reply.ended);
        assert_eq!(reply.messages.len(), 2);
        assert_eq!(ctl(&reply.messages[0]), "none");
        assert_eq!(ctl(&reply.messages[1]), "close");
        // Nothing to say, but still over.
        let reply = build(&json!({"messages": []}), &no_rules());
        assert!(reply.ended);
        assert_eq!(summary(&reply.messages), vec![(String::new(), 0, 0, "close".to_string())]);
    }

    #[test]
    fn waiting_flows_are_not_ended() {
        let text_input = json!({"messages": [rich("Your name?")], "input": {"id": "i", "type": "text input", "options": {}}});
        assert!(!is_ended(&text_input));
        assert_eq!(ctl(&build(&text_input, &no_rules()).messages[0]), "none");
        let pending = json!({"messages": [], "clientSideActions": [
            {"type": "setVariable", "setVariable": {"scriptToExecute": {"content": "new Date()", "args": []}}, "expectsDedicatedReply": true}
        ]});
        assert!(!is_ended(&pending));
        assert!(build(&pending, &no_rules()).messages.is_empty());
        let embed = json!({"messages": [{"id": "e", "type": "embed", "content": {"url": "https://cal.com/x", "waitForEvent": {"isEnabled": true}}}]});
        assert!(!is_ended(&embed));
        assert!(is_ended(&json!({"messages": [], "clientSideActions": [{"type": "wait", "wait": {"secondsToWaitFor": 2}}]})));
    }

    #[test]
    fn media_and_embeds() {
        let response = json!({"messages": [
            {"id": "v", "type": "video", "content": {"url": "https://cdn.x/clip.mp4", "type": "url"}},
            {"id": "y", "type": "video", "content": {"url": "https://www.youtube.com/watch?v=abc", "id": "abc", "type": "youtube"}},
            {"id": "a", "type": "audio", "content": {"url": "https://cdn.x/voice.mp3"}},
            {"id": "e", "type": "embed", "content": {"url": "https://calendly.com/me", "height": 400}},
            {"id": "i", "type": "image", "content": {"url": ""}},
            {"id": "c", "type": "custom-embed", "content": {"initFunction": {"args": {}, "content": ""}}}
        ], "input": {"id": "t", "type": "text input"}});
        let reply = build(&response, &no_rules());
        let summary: Vec<(String, Vec<String>)> = reply
            .messages
            .iter()
            .map(|m| (m.text.clone(), m.files.iter().map(|f| format!("{}|{}", f.url, f.name.clone().unwrap_or_default())).collect()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (String::new(), vec!["https://cdn.x/clip.mp4|clip.mp4".to_string()]),
                ("[https://www.youtube.com/watch?v=abc](https://www.youtube.com/watch?v=abc)".to_string(), vec![]),
                (String::new(), vec!["https://cdn.x/voice.mp3|voice.mp3".to_string()]),
                ("[https://calendly.com/me](https://calendly.com/me)".to_string(), vec![]),
            ]
        );
        assert_eq!(reply.skipped, vec!["bubble type `image`".to_string(), "bubble type `custom-embed`".to_string()]);
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name("https://x.y/a/b/photo.jpg?sig=1#f"), Some("photo.jpg".into()));
        assert_eq!(file_name("https://x.y/a/dir/"), Some("dir".into()));
        assert_eq!(file_name("https://x.y"), None);
        assert_eq!(file_name("https://x.y/"), None);
    }

    #[test]
    fn handoff_marker_is_removed_and_signalled() {
        let rules = HandoffRules { variable: None, marker: Some("[[handoff]]".into()) };
        let response = json!({"messages": [rich("Connecting you to an operator. [[handoff]]"), rich("Please wait.")]});
        let reply = build(&response, &rules);
        assert_eq!(reply.handoff, Some(String::new()));
        assert_eq!(reply.messages.len(), 2);
        assert_eq!(reply.messages[0].text, "Connecting you to an operator.");
        assert_eq!(ctl(&reply.messages[0]), "none");
        // Handoff wins over close on the last message.
        assert!(reply.ended);
        assert_eq!(ctl(&reply.messages[1]), "handoff:");

        // A bubble that is only the marker disappears; the control stays.
        let reply = build(&json!({"messages": [rich("[[handoff]]")], "input": {"type": "text input"}}), &rules);
        assert_eq!(summary(&reply.messages), vec![(String::new(), 0, 0, "handoff:".to_string())]);
        // Without the setting the marker is plain text.
        let reply = build(&json!({"messages": [rich("[[handoff]]")], "input": {"type": "text input"}}), &no_rules());
        assert_eq!(reply.messages[0].text, "[[handoff]]");
        assert_eq!(reply.handoff, None);
    }

    #[test]
    fn handoff_variable_set_by_a_client_side_script() {
        let rules = HandoffRules { variable: Some("handoff".into()), marker: None };
        let response = json!({
            "messages": [rich("An operator will join you shortly.")],
            "clientSideActions": [
                {"type": "wait", "wait": {"secondsToWaitFor": 1}},
                {"type": "scriptToExecute", "scriptToExecute": {
                    "content": "setVariable('handoff', 'Customer asked for a human')", "args": []
                }, "lastBubbleBlockId": "b1"}
            ]
        });
        let reply = build(&response, &rules);
        assert_eq!(reply.handoff.as_deref(), Some("Customer asked for a human"));
        assert_eq!(reply.messages.len(), 1);
        assert_eq!(ctl(&reply.messages[0]), "handoff:Customer asked for a human");

        // Another variable, or no setting: no handoff.
        let other = HandoffRules { variable: Some("other".into()), marker: None };
        assert_eq!(build(&response, &other).handoff, None);
        assert_eq!(build(&response, &no_rules()).handoff, None);
        assert_eq!(ctl(&build(&response, &no_rules()).messages[0]), "close");
    }

    #[test]
    fn handoff_variable_values() {
        let action = |content: &str, args: Value| json!({"type": "scriptToExecute", "scriptToExecute": {"content": content, "args": args}});
        let h = |content: &str, args: Value| variable_handoff(&action(content, args), "handoff");
        assert_eq!(h(r#"setVariable("handoff", true)"#, json!([])), Some(String::new()));
        assert_eq!(h(r#"setVariable("handoff", "yes")"#, json!([])), Some(String::new()));
        assert_eq!(h(r#"setVariable( "handoff" , `Billing question` );"#, json!([])), Some("Billing question".into()));
        assert_eq!(h(r#"setVariable("handoff", "It\"s urgent")"#, json!([])), Some("It\"s urgent".into()));
        assert_eq!(h("if (vabc) { setVariable('handoff', vabc) }", json!([{"id": "vabc", "value": "Refund request"}])), Some("Refund request".into()));
        assert_eq!(h("setVariable('handoff', {{reason}} + '!')", json!([])), Some(String::new()), "an expression still hands off");
        assert_eq!(h("setVariable('handoff', false)", json!([])), None);
        assert_eq!(h("setVariable('handoff', '')", json!([])), None);
        assert_eq!(h("setVariable('handoff', 'yes'); setVariable('handoff', 'no')", json!([])), None, "the last call wins");
        assert_eq!(h("setVariable('handoff2', 'x'); mysetVariable('handoff', 'x')", json!([])), None);
        assert_eq!(h("console.log('handoff')", json!([])), None);
        // The script of a client-side Set variable block is scanned too.
        let set = json!({"type": "setVariable", "setVariable": {"scriptToExecute": {"content": "setVariable('handoff', 'x'); return 1", "args": []}}, "expectsDedicatedReply": true});
        assert_eq!(variable_handoff(&set, "handoff"), Some("x".into()));
        let code = json!({"type": "codeToExecute", "codeToExecute": {"content": "setVariable(\"handoff\", 1)", "args": {}}});
        assert_eq!(variable_handoff(&code, "handoff"), Some(String::new()));
        assert_eq!(variable_handoff(&json!({"type": "redirect", "redirect": {"url": "x"}}), "handoff"), None);
    }
}
