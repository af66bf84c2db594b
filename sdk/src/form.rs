//! `application/x-www-form-urlencoded` bodies, including PHP-style nested
//! keys (`data[PARAMS][MESSAGE]=Hi`), as PHP's `http_build_query` writes them.

use serde_json::{Map, Value};

/// How deep a key may nest, as PHP's default `max_input_nesting_level`.
pub const MAX_NESTING: usize = 64;

/// A form key nested deeper than [`MAX_NESTING`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    /// The key's first segment, e.g. `data`.
    pub key: String,
    /// How many levels it has.
    pub depth: usize,
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "form key `{}[…]` is nested {} levels deep; at most {MAX_NESTING} are accepted", self.key, self.depth)
    }
}

impl std::error::Error for TooDeep {}

/// Decode a form body into a JSON tree: `a[b][c]=v` becomes
/// `{"a":{"b":{"c":"v"}}}`. Brackets may be percent-encoded; `+` is a space.
/// All leaves are strings; numeric keys stay object keys (`data[BOT][55]`).
/// `a[]=x&a[]=y` collects into an array. A key that is both a leaf and a
/// parent keeps the nested form. Keys nested deeper than [`MAX_NESTING`]
/// are dropped, as PHP drops them; [`try_decode_nested`] refuses them.
pub fn decode_nested(body: &[u8]) -> Value {
    decode(body, |_| Ok(())).unwrap_or_else(|never: TooDeep| unreachable!("{never}"))
}

/// [`decode_nested`], but a key nested deeper than [`MAX_NESTING`] is an
/// error to answer with 400 (untrusted input must not drive the parser's
/// recursion).
pub fn try_decode_nested(body: &[u8]) -> Result<Value, TooDeep> {
    decode(body, Err)
}

fn decode(body: &[u8], too_deep: impl Fn(TooDeep) -> Result<(), TooDeep>) -> Result<Value, TooDeep> {
    let mut root = Map::new();
    for (key, value) in form_urlencoded::parse(body) {
        let path = split_key(&key);
        if path.len() > MAX_NESTING + 1 {
            too_deep(TooDeep { key: path[0].clone(), depth: path.len() - 1 })?;
            continue;
        }
        insert(&mut root, &path, Value::String(value.into_owned()));
    }
    Ok(Value::Object(root))
}

/// Encode flat pairs as a form body.
pub fn encode(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Read a nested value by path: `get(&tree, &["data", "PARAMS", "MESSAGE"])`.
pub fn get<'a>(tree: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |node, segment| node.get(segment))
}

/// Read a nested string by path; `None` when missing or not a string.
pub fn get_str<'a>(tree: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(tree, path).and_then(Value::as_str)
}

fn split_key(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else { return vec![key.to_string()] };
    let mut segments = vec![key[..open].to_string()];
    let mut rest = &key[open..];
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(close) = stripped.find(']') else {
            // PHP keeps an unterminated bracket literally in the last segment.
            segments.last_mut().expect("at least one segment").push_str(rest);
            return segments;
        };
        segments.push(stripped[..close].to_string());
        rest = &stripped[close + 1..];
    }
    segments
}

fn insert(node: &mut Map<String, Value>, path: &[String], value: Value) {
    let (head, tail) = path.split_first().expect("split_key yields at least one segment");
    if tail.is_empty() {
        node.entry(head.clone()).or_insert(value);
        return;
    }
    if tail.len() == 1 && tail[0].is_empty() {
        let slot = node.entry(head.clone()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = slot {
            items.push(value);
        }
        return;
    }
    let slot = node.entry(head.clone()).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(child) = slot {
        insert(child, tail, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_php_nested_keys_with_encoded_brackets_and_plus() {
        let body = b"event=ONIMBOTMESSAGEADD&data%5BPARAMS%5D%5BMESSAGE%5D=Hello+world&data[BOT][55][BOT_ID]=55&auth%5Bapplication_token%5D=abc";
        let tree = decode_nested(body);
        assert_eq!(get_str(&tree, &["event"]), Some("ONIMBOTMESSAGEADD"));
        assert_eq!(get_str(&tree, &["data", "PARAMS", "MESSAGE"]), Some("Hello world"));
        assert_eq!(get_str(&tree, &["data", "BOT", "55", "BOT_ID"]), Some("55"));
        assert_eq!(get_str(&tree, &["auth", "application_token"]), Some("abc"));
    }

    #[test]
    fn collects_empty_brackets_into_arrays() {
        let tree = decode_nested(b"a[]=x&a[]=y");
        assert_eq!(tree["a"], serde_json::json!(["x", "y"]));
    }

    #[test]
    fn deeply_nested_keys_are_refused_or_dropped() {
        let deep = format!("a{}=1&b=2", "[x]".repeat(5000));
        let error = try_decode_nested(deep.as_bytes()).unwrap_err();
        assert_eq!(error, TooDeep { key: "a".into(), depth: 5000 });
        assert!(error.to_string().contains("at most 64"), "{error}");
        assert_eq!(decode_nested(deep.as_bytes()), serde_json::json!({"b": "2"}));
        let ok = format!("a{}=1", "[x]".repeat(MAX_NESTING));
        assert!(try_decode_nested(ok.as_bytes()).is_ok());
    }

    #[test]
    fn encode_round_trips() {
        let body = encode(&[("data[X]".into(), "a b&c".into())]);
        assert_eq!(get_str(&decode_nested(body.as_bytes()), &["data", "X"]), Some("a b&c"));
    }
}
