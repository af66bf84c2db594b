//! Remove Bitrix24 chat BBCode from incoming messages, so providers see the
//! text the user typed (`[USER=55]Bot[/USER], hi` → `Bot, hi`).

/// Tags Bitrix24 chats use. Anything else in brackets is kept verbatim.
const MARKUP_TAGS: &[&str] =
    &["B", "I", "U", "S", "URL", "USER", "CHAT", "QUOTE", "CODE", "SIZE", "COLOR", "FONT", "SEND", "PUT", "CALL", "ICON", "DISK", "DATE", "CONTEXT", "BR"];

/// The text with known BBCode tags removed; `[BR]` becomes a line break.
pub fn strip_bbcode(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        plain.push_str(&rest[..open]);
        let candidate = &rest[open..];
        match candidate.find(']').map(|close| (close, tag_name(&candidate[1..close]))) {
            Some((close, name)) if MARKUP_TAGS.contains(&name.as_str()) => {
                if name == "BR" {
                    plain.push('\n');
                }
                rest = &candidate[close + 1..];
            }
            _ => {
                plain.push('[');
                rest = &candidate[1..];
            }
        }
    }
    plain.push_str(rest);
    plain
}

/// `/URL=https://x` → `URL`.
fn tag_name(inside: &str) -> String {
    inside.trim_start_matches('/').split(['=', ' ']).next().unwrap_or_default().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_mentions_and_formatting() {
        assert_eq!(strip_bbcode("[USER=55]Bot[/USER], [b]hi[/b]"), "Bot, hi");
        assert_eq!(strip_bbcode("see [URL=https://x.y]docs[/URL]"), "see docs");
        assert_eq!(strip_bbcode("a[br]b"), "a\nb");
    }

    #[test]
    fn keeps_brackets_that_are_not_markup() {
        assert_eq!(strip_bbcode("array[0] = [x]"), "array[0] = [x]");
        assert_eq!(strip_bbcode("unclosed [B"), "unclosed [B");
        assert_eq!(strip_bbcode("[a [B]b[/B]"), "[a b");
    }
}
