//! Typebot rich text (Plate/Slate JSON) → CommonMark.
//!
//! Typebot sends text bubbles as a list of block elements
//! (`{"type":"p","children":[...]}`) whose children are text leaves with
//! marks (`{"text":"Hi","bold":true}`), links (`{"type":"a","url":...}`) and
//! inline variables. The conversion follows Typebot's own
//! `convertRichTextToMarkdown`:
//!
//! * blocks are separated by one newline, so an empty paragraph
//!   (`{"type":"p","children":[{"text":""}]}`) leaves an empty line;
//! * bold → `**…**`, italic → `_…_`, strikethrough → `~~…~~`, code →
//!   `` `…` ``; whitespace at the edges of a marked leaf stays outside the
//!   markers (`**  x **` would not be bold);
//! * **underline is dropped** (kept as plain text): CommonMark has no
//!   underline and `__…__` means bold;
//! * links → `[text](url)`; headings, quotes and lists get their Markdown
//!   prefixes;
//! * text is *not* escaped: Markdown typed into a bubble, or coming from a
//!   variable (an AI answer, say), is rendered, as in Typebot's own
//!   Markdown output. HTML entities (`&amp;`, `&#x3C;`) are decoded.
//!
//! Pure: no host calls.

use serde_json::Value;

/// Render a bubble's `richText` array (or a single element) as Markdown.
pub fn to_markdown(rich_text: &Value) -> String {
    let mut lines: Vec<String> = Vec::new();
    match rich_text {
        Value::Array(blocks) => {
            for block in blocks {
                render_block(block, &mut lines, 0);
            }
        }
        other => render_block(other, &mut lines, 0),
    }
    let text = lines.join("\n");
    text.trim_end().trim_start_matches('\n').to_string()
}

fn node_type(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or("")
}

fn children(node: &Value) -> &[Value] {
    node.get("children").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn is_leaf(node: &Value) -> bool {
    node.get("text").is_some_and(Value::is_string) && node.get("children").is_none()
}

fn is_list(kind: &str) -> bool {
    matches!(kind, "ul" | "ol")
}

/// Block-level element types whose children are themselves blocks.
fn is_block_container(node: &Value) -> bool {
    children(node).iter().any(|child| {
        let kind = node_type(child);
        is_list(kind) || matches!(kind, "p" | "li" | "lic" | "blockquote" | "code_block" | "code_line") || heading_level(kind).is_some()
    })
}

fn heading_level(kind: &str) -> Option<usize> {
    match kind {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn render_block(node: &Value, lines: &mut Vec<String>, depth: usize) {
    if is_leaf(node) {
        lines.push(render_inline(std::slice::from_ref(node)));
        return;
    }
    let kind = node_type(node);
    match kind {
        "ul" | "ol" => render_list(node, lines, depth),
        "blockquote" => {
            let mut inner = Vec::new();
            if is_block_container(node) {
                for child in children(node) {
                    render_block(child, &mut inner, depth);
                }
            } else {
                inner.push(render_inline(children(node)));
            }
            for line in inner {
                lines.push(if line.is_empty() { ">".to_string() } else { format!("> {line}") });
            }
        }
        "code_block" => {
            lines.push("```".to_string());
            for child in children(node) {
                lines.push(plain_text(child));
            }
            lines.push("```".to_string());
        }
        "hr" | "thematic_break" => lines.push("---".to_string()),
        _ => {
            if let Some(level) = heading_level(kind) {
                lines.push(format!("{} {}", "#".repeat(level), render_inline(children(node)).trim()));
            } else if is_block_container(node) {
                for child in children(node) {
                    render_block(child, lines, depth);
                }
            } else {
                // `p`, `lic` and anything unknown: one line of inline content.
                lines.push(render_inline(children(node)));
            }
        }
    }
}

fn render_list(list: &Value, lines: &mut Vec<String>, depth: usize) {
    let ordered = node_type(list) == "ol";
    let indent = "   ".repeat(depth);
    let mut number = 0;
    for item in children(list) {
        if is_list(node_type(item)) {
            render_list(item, lines, depth + 1);
            continue;
        }
        number += 1;
        let marker = if ordered { format!("{number}. ") } else { "- ".to_string() };
        // An item holds its content (`lic` / `p` / leaves) and maybe a nested list.
        let mut content = Vec::new();
        let mut nested = Vec::new();
        if is_leaf(item) || !is_block_container(item) {
            content.push(render_inline(if is_leaf(item) { std::slice::from_ref(item) } else { children(item) }));
        } else {
            for child in children(item) {
                if is_list(node_type(child)) {
                    render_list(child, &mut nested, depth + 1);
                } else {
                    render_block(child, &mut content, depth + 1);
                }
            }
        }
        let first = content.first().cloned().unwrap_or_default();
        lines.push(format!("{indent}{marker}{first}"));
        for line in content.iter().skip(1) {
            lines.push(format!("{indent}   {line}"));
        }
        lines.extend(nested);
    }
}

/// The marks a leaf carries, in nesting order (outermost first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Marks {
    strike: bool,
    bold: bool,
    italic: bool,
    code: bool,
}

impl Marks {
    fn of(leaf: &Value) -> Self {
        let flag = |key: &str| leaf.get(key).and_then(Value::as_bool).unwrap_or(false);
        Marks { strike: flag("strikethrough") || flag("strikeThrough"), bold: flag("bold"), italic: flag("italic"), code: flag("code") }
    }

    fn wrap(self, text: &str) -> String {
        let core = text.trim();
        if core.is_empty() || self == Marks::default() {
            return text.to_string();
        }
        let mut inner = core.to_string();
        if self.code {
            inner = format!("`{inner}`");
        }
        if self.italic {
            inner = format!("_{inner}_");
        }
        if self.bold {
            inner = format!("**{inner}**");
        }
        if self.strike {
            inner = format!("~~{inner}~~");
        }
        let start = text.len() - text.trim_start().len();
        let end = start + core.len();
        format!("{}{inner}{}", &text[..start], &text[end..])
    }
}

/// Inline content: consecutive leaves with the same marks are merged before
/// the markers are applied (`**a****b**` is not valid bold).
fn render_inline(nodes: &[Value]) -> String {
    let mut out = String::new();
    let mut run: Option<(Marks, String)> = None;
    let flush = |run: &mut Option<(Marks, String)>, out: &mut String| {
        if let Some((marks, text)) = run.take() {
            out.push_str(&marks.wrap(&text));
        }
    };
    for node in nodes {
        if is_leaf(node) {
            let marks = Marks::of(node);
            let text = decode_entities(node.get("text").and_then(Value::as_str).unwrap_or(""));
            match &mut run {
                Some((current, buffer)) if *current == marks => buffer.push_str(&text),
                _ => {
                    flush(&mut run, &mut out);
                    run = Some((marks, text));
                }
            }
            continue;
        }
        flush(&mut run, &mut out);
        match node_type(node) {
            "a" | "link" => {
                let label = render_inline(children(node));
                let url = node.get("url").and_then(Value::as_str).unwrap_or("").trim();
                out.push_str(&link(&label, url));
            }
            // `inline-variable` and anything unknown: its children, inline.
            _ => out.push_str(&render_inline(children(node))),
        }
    }
    flush(&mut run, &mut out);
    out
}

fn link(label: &str, url: &str) -> String {
    if url.is_empty() {
        return label.to_string();
    }
    let target = if url.contains([' ', '(', ')', '<', '>']) { format!("<{}>", url.replace(['<', '>'], "")) } else { url.to_string() };
    let label = if label.trim().is_empty() { url.to_string() } else { label.to_string() };
    format!("[{label}]({target})")
}

fn plain_text(node: &Value) -> String {
    if let Some(text) = node.get("text").and_then(Value::as_str) {
        return decode_entities(text);
    }
    children(node).iter().map(plain_text).collect()
}

/// Decode the HTML entities rich text may carry (`&amp;`, `&lt;`, `&#x3C;`, ...).
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let decoded = tail.find(';').filter(|end| *end <= 10).and_then(|end| {
            let entity = &tail[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse::<u32>().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(children: Value) -> Value {
        json!({"type": "p", "children": children})
    }

    #[test]
    fn paragraphs_and_blank_lines() {
        let rich = json!([p(json!([{"text": "Hello"}])), p(json!([{"text": ""}])), p(json!([{"text": "World"}]))]);
        assert_eq!(to_markdown(&rich), "Hello\n\nWorld");
        let rich = json!([p(json!([{"text": "Line one"}])), p(json!([{"text": "Line two"}]))]);
        assert_eq!(to_markdown(&rich), "Line one\nLine two");
        // Trailing empty paragraphs do not leave blank lines at the end.
        let rich = json!([p(json!([{"text": "Hi there! "}])), p(json!([{"text": ""}]))]);
        assert_eq!(to_markdown(&rich), "Hi there!");
    }

    #[test]
    fn marks() {
        let rich = json!([p(json!([
            {"text": "1) "},
            {"text": "Hello world", "bold": true},
            {"text": " and "},
            {"text": "slanted", "italic": true},
            {"text": ", "},
            {"text": "both", "bold": true, "italic": true},
            {"text": ", "},
            {"text": "gone", "strikethrough": true},
            {"text": ", "},
            {"text": "x = 1", "code": true},
            {"text": ", "},
            {"text": "underlined", "underline": true},
            {"text": "."}
        ]))]);
        assert_eq!(to_markdown(&rich), "1) **Hello world** and _slanted_, **_both_**, ~~gone~~, `x = 1`, underlined.");
    }

    #[test]
    fn whitespace_stays_outside_markers_and_runs_merge() {
        let rich = json!([p(json!([{"text": "a"}, {"text": " bold ", "bold": true}, {"text": "b"}]))]);
        assert_eq!(to_markdown(&rich), "a **bold** b");
        let rich = json!([p(json!([{"text": "Big", "bold": true}, {"text": " deal", "bold": true}]))]);
        assert_eq!(to_markdown(&rich), "**Big deal**");
        // A marked leaf of spaces only is left alone.
        let rich = json!([p(json!([{"text": "x"}, {"text": "  ", "bold": true}, {"text": "y"}]))]);
        assert_eq!(to_markdown(&rich), "x  y");
    }

    #[test]
    fn links() {
        let rich = json!([
            p(json!([{"text": "Welcome to "}, {"text": "AA", "bold": true}, {"text": " (Awesome Agency)"}])),
            p(json!([{"text": ""}])),
            p(json!([
                {"text": ""},
                {"type": "a", "url": "https://example.com", "children": [{"text": "Yo"}]},
                {"text": ""}
            ])),
            p(json!([
                {"text": "See "},
                {"type": "a", "url": "https://example.com/a b", "children": [{"text": "docs", "bold": true}]},
                {"text": " or "},
                {"type": "a", "url": "https://example.com/x", "children": [{"text": ""}]}
            ]))
        ]);
        assert_eq!(
            to_markdown(&rich),
            "Welcome to **AA** (Awesome Agency)\n\n[Yo](https://example.com)\nSee [**docs**](<https://example.com/a b>) or [https://example.com/x](https://example.com/x)"
        );
    }

    #[test]
    fn inline_variables_and_markdown_in_text_pass_through() {
        let rich = json!([p(json!([
            {"text": "Answer: "},
            {"type": "inline-variable", "children": [p(json!([{"text": "**42**"}]))]}
        ]))]);
        assert_eq!(to_markdown(&rich), "Answer: **42**");
    }

    #[test]
    fn entities_are_decoded() {
        let rich = json!([p(json!([{"text": "Text with [ and &amp; &#x3C; &#62; &bogus; & done"}]))]);
        assert_eq!(to_markdown(&rich), "Text with [ and & < > &bogus; & done");
    }

    #[test]
    fn headings_quotes_and_lists() {
        let rich = json!([
            {"type": "h2", "children": [{"text": "Title"}]},
            {"type": "blockquote", "children": [{"text": "Quoted"}]},
            {"type": "ul", "children": [
                {"type": "li", "children": [{"type": "lic", "children": [{"text": "One"}]}]},
                {"type": "li", "children": [
                    {"type": "lic", "children": [{"text": "Two", "bold": true}]},
                    {"type": "ol", "children": [
                        {"type": "li", "children": [{"type": "lic", "children": [{"text": "Sub"}]}]}
                    ]}
                ]}
            ]},
            {"type": "ol", "children": [
                {"type": "li", "children": [{"type": "lic", "children": [{"text": "First"}]}]},
                {"type": "li", "children": [{"type": "lic", "children": [{"text": "Second"}]}]}
            ]}
        ]);
        assert_eq!(to_markdown(&rich), "## Title\n> Quoted\n- One\n- **Two**\n   1. Sub\n1. First\n2. Second");
    }

    #[test]
    fn odd_input_does_not_panic() {
        assert_eq!(to_markdown(&json!([])), "");
        assert_eq!(to_markdown(&json!(null)), "");
        assert_eq!(to_markdown(&json!([{"text": "bare leaf"}])), "bare leaf");
        assert_eq!(to_markdown(&json!([{"type": "p"}, 5, "x"])), "");
        assert_eq!(to_markdown(&json!([p(json!([{"text": "é🙂", "bold": true}]))])), "**é🙂**");
    }
}
