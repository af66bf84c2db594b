//! Workflow runs: the blocking `/workflows/run` response and how its outputs
//! become one text message (`name: value` lines, as BitBot does).

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use switchboard_sdk::{PluginError, http};

/// A JSON object with its keys in document order (the workspace's
/// `serde_json::Map` sorts keys; Dify's End node order is more natural).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Ordered(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    entries.push((key, value));
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}

#[derive(Debug, Deserialize)]
struct RunResponse {
    data: RunData,
}

#[derive(Debug, Deserialize)]
struct RunData {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    outputs: Option<Ordered>,
    #[serde(default)]
    error: Option<String>,
}

/// Format outputs as `name: value` lines joined by `\n`: strings as-is,
/// other JSON values serialized.
pub fn format_outputs(outputs: &[(String, Value)]) -> String {
    outputs
        .iter()
        .map(|(name, value)| match value {
            Value::String(s) => format!("{name}: {s}"),
            other => format!("{name}: {other}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Turn a successful (2xx) `/workflows/run` body into the reply text; a
/// `failed` or `stopped` run is a permanent error carrying Dify's `data.error`.
pub fn parse_run_response(body: &[u8]) -> Result<String, PluginError> {
    let response: RunResponse = serde_json::from_slice(body).map_err(|e| {
        PluginError::permanent(format!("Dify workflow response is not the expected JSON ({e}): {}", http::snippet(&String::from_utf8_lossy(body))))
    })?;
    let data = response.data;
    match data.status.as_deref() {
        Some(status @ ("failed" | "stopped")) => Err(PluginError::permanent(format!(
            "Dify workflow run {status}: {}",
            data.error.as_deref().filter(|e| !e.is_empty()).unwrap_or("(no error message)")
        ))),
        _ => Ok(format_outputs(&data.outputs.unwrap_or_default().0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ErrorKind;

    #[test]
    fn formats_outputs_in_document_order() {
        let body = br#"{"task_id":"t","workflow_run_id":"r","data":{"id":"r","status":"succeeded",
            "outputs":{"result":"Hello\nthere","score":0.5,"tags":["a","b"],"ok":true,"none":null,"obj":{"k":1}},
            "error":null,"elapsed_time":1.2}}"#;
        assert_eq!(parse_run_response(body).unwrap(), "result: Hello\nthere\nscore: 0.5\ntags: [\"a\",\"b\"]\nok: true\nnone: null\nobj: {\"k\":1}");
    }

    #[test]
    fn failed_run_is_an_error_with_dify_message() {
        let body = br#"{"data":{"status":"failed","outputs":null,"error":"Node LLM run failed: quota"}}"#;
        let e = parse_run_response(body).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("Node LLM run failed: quota"));
    }

    #[test]
    fn empty_or_missing_outputs_give_empty_text() {
        assert_eq!(parse_run_response(br#"{"data":{"status":"succeeded","outputs":{}}}"#).unwrap(), "");
        assert_eq!(parse_run_response(br#"{"data":{"status":"succeeded"}}"#).unwrap(), "");
        assert!(parse_run_response(b"{}").is_err());
    }
}
