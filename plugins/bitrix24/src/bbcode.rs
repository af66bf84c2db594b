//! CommonMark → Bitrix24 chat BBCode.
//!
//! Bitrix24 chats understand `[B]`, `[I]`, `[S]`, `[URL=…]…[/URL]`,
//! `[CODE]…[/CODE]` and `>>` quote lines, and show everything else as
//! plain text. Lists become `• ` / `1. ` lines, headings bold lines, tables
//! ` | `-separated rows; paragraphs are separated by a blank line.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

const BULLET: &str = "• ";
const QUOTE_PREFIX: &str = ">> ";
const RULE: &str = "————————————";

/// Convert Markdown to Bitrix24 BBCode.
pub fn markdown_to_bbcode(markdown: &str) -> String {
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    let mut writer = BbWriter::new();
    for event in Parser::new_ext(markdown, options) {
        writer.event(event);
    }
    writer.finish()
}

struct ListState {
    next_number: Option<u64>,
}

struct LinkState {
    dest: String,
    text_start: usize,
}

struct BbWriter {
    out: String,
    at_line_start: bool,
    quote_depth: usize,
    lists: Vec<ListState>,
    /// A list item's marker was just written: its first block stays on that line.
    item_fresh: bool,
    in_code_block: bool,
    links: Vec<LinkState>,
    in_table_head: bool,
    first_cell: bool,
}

impl BbWriter {
    fn new() -> Self {
        Self {
            out: String::new(),
            at_line_start: true,
            quote_depth: 0,
            lists: Vec::new(),
            item_fresh: false,
            in_code_block: false,
            links: Vec::new(),
            in_table_head: false,
            first_cell: true,
        }
    }

    fn finish(self) -> String {
        self.out.trim_end().to_string()
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => self.write(&text),
            Event::Code(code) => self.write(&format!("[CODE]{code}[/CODE]")),
            Event::InlineMath(math) | Event::DisplayMath(math) => self.write(&math),
            Event::Html(html) | Event::InlineHtml(html) => self.html(&html),
            Event::FootnoteReference(label) => self.write(&format!("[{label}]")),
            Event::SoftBreak | Event::HardBreak => self.line_break(),
            Event::Rule => {
                self.begin_block();
                self.write(RULE);
            }
            Event::TaskListMarker(done) => self.write(if done { "☑ " } else { "☐ " }),
        }
    }

    fn start(&mut self, tag: Tag) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock | Tag::DefinitionList | Tag::Table(_) => self.begin_block(),
            Tag::Heading { .. } => {
                self.begin_block();
                self.write("[B]");
            }
            Tag::BlockQuote(_) => {
                self.begin_block();
                self.quote_depth += 1;
            }
            Tag::CodeBlock(_) => {
                self.begin_block();
                self.write("[CODE]");
                self.in_code_block = true;
            }
            Tag::List(first_number) => {
                if self.lists.is_empty() {
                    self.begin_block();
                }
                self.lists.push(ListState { next_number: first_number });
            }
            Tag::Item => self.start_item(),
            Tag::FootnoteDefinition(label) => {
                self.begin_block();
                self.write(&format!("[{label}]: "));
            }
            Tag::DefinitionListTitle => {
                self.ensure_line_start();
                self.write("[B]");
            }
            Tag::DefinitionListDefinition => {
                self.ensure_line_start();
                self.write("  ");
            }
            Tag::TableHead => {
                self.in_table_head = true;
                self.first_cell = true;
            }
            Tag::TableRow => self.first_cell = true,
            Tag::TableCell => self.start_cell(),
            Tag::Emphasis => self.write("[I]"),
            Tag::Strong => self.write("[B]"),
            Tag::Strikethrough => self.write("[S]"),
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => self.start_link(&dest_url),
            Tag::Superscript | Tag::Subscript | Tag::MetadataBlock(_) => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) | TagEnd::Strong | TagEnd::DefinitionListTitle => self.write("[/B]"),
            TagEnd::BlockQuote(_) => self.quote_depth = self.quote_depth.saturating_sub(1),
            TagEnd::CodeBlock => self.end_code_block(),
            TagEnd::List(_) => {
                self.lists.pop();
            }
            TagEnd::Item => self.item_fresh = false,
            TagEnd::TableCell if self.in_table_head => self.write("[/B]"),
            TagEnd::TableHead => {
                self.in_table_head = false;
                self.line_break();
            }
            TagEnd::TableRow => self.line_break(),
            TagEnd::Emphasis => self.write("[/I]"),
            TagEnd::Strikethrough => self.write("[/S]"),
            TagEnd::Link | TagEnd::Image => self.end_link(),
            _ => {}
        }
    }

    /// Write text, prefixing quoted lines and keeping line structure.
    fn write(&mut self, text: &str) {
        for (index, line) in text.split('\n').enumerate() {
            if index > 0 {
                self.line_break();
            }
            if line.is_empty() {
                continue;
            }
            if self.at_line_start {
                if self.quote_depth > 0 && !self.in_code_block {
                    self.out.push_str(QUOTE_PREFIX);
                }
                self.at_line_start = false;
            }
            self.out.push_str(line);
            self.item_fresh = false;
        }
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.at_line_start = true;
    }

    fn ensure_line_start(&mut self) {
        if !self.at_line_start {
            self.line_break();
        }
    }

    /// Separate a new block from what came before: a blank line, or a plain
    /// line break inside lists; nothing right after a list marker.
    fn begin_block(&mut self) {
        if self.out.is_empty() {
            return;
        }
        if self.item_fresh {
            self.item_fresh = false;
            return;
        }
        self.ensure_line_start();
        if self.lists.is_empty() && !self.out.ends_with("\n\n") {
            self.line_break();
        }
    }

    fn start_item(&mut self) {
        self.ensure_line_start();
        let depth = self.lists.len().saturating_sub(1);
        let marker = match self.lists.last_mut() {
            Some(ListState { next_number: Some(number) }) => {
                let marker = format!("{number}. ");
                *number += 1;
                marker
            }
            _ => BULLET.to_string(),
        };
        self.write(&format!("{}{marker}", "  ".repeat(depth)));
        self.item_fresh = true;
    }

    fn start_cell(&mut self) {
        if !self.first_cell {
            self.write(" | ");
        }
        self.first_cell = false;
        if self.in_table_head {
            self.write("[B]");
        }
    }

    fn end_code_block(&mut self) {
        while self.out.ends_with('\n') {
            self.out.pop();
        }
        self.out.push_str("[/CODE]");
        self.at_line_start = false;
        self.in_code_block = false;
    }

    fn start_link(&mut self, dest: &str) {
        let dest = dest.replace(']', "%5D");
        self.write(&format!("[URL={dest}]"));
        self.links.push(LinkState { dest, text_start: self.out.len() });
    }

    fn end_link(&mut self) {
        let Some(link) = self.links.pop() else { return };
        if self.out.len() == link.text_start {
            self.write(&link.dest);
        }
        self.write("[/URL]");
    }

    fn html(&mut self, html: &str) {
        let tag = html.trim().to_ascii_lowercase();
        if matches!(tag.as_str(), "<br>" | "<br/>" | "<br />") {
            self.line_break();
        } else {
            self.write(html.trim_end_matches('\n'));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::markdown_to_bbcode as convert;

    #[test]
    fn bold_italic_strike() {
        assert_eq!(convert("**bold**, *italic* and ~~gone~~"), "[B]bold[/B], [I]italic[/I] and [S]gone[/S]");
        assert_eq!(convert("__b__ _i_"), "[B]b[/B] [I]i[/I]");
    }

    #[test]
    fn links_and_autolinks() {
        assert_eq!(convert("See [the docs](https://x.y/a?b=1)."), "See [URL=https://x.y/a?b=1]the docs[/URL].");
        assert_eq!(convert("<https://x.y>"), "[URL=https://x.y]https://x.y[/URL]");
        assert_eq!(convert("![](https://x.y/p.png)"), "[URL=https://x.y/p.png]https://x.y/p.png[/URL]");
    }

    #[test]
    fn paragraphs_are_separated_by_a_blank_line() {
        assert_eq!(convert("first\n\nsecond\n\n\nthird"), "first\n\nsecond\n\nthird");
        assert_eq!(convert("line one\nline two"), "line one\nline two");
    }

    #[test]
    fn bullet_and_numbered_lists() {
        assert_eq!(convert("Intro:\n\n- one\n- **two**\n\nAfter"), "Intro:\n\n• one\n• [B]two[/B]\n\nAfter");
        assert_eq!(convert("3. c\n4. d"), "3. c\n4. d");
        assert_eq!(convert("- a\n  - nested\n- b"), "• a\n  • nested\n• b");
        assert_eq!(convert("- a\n\n- loose"), "• a\n• loose");
    }

    #[test]
    fn inline_code_and_code_blocks() {
        assert_eq!(convert("run `cargo test`"), "run [CODE]cargo test[/CODE]");
        assert_eq!(convert("Example:\n\n```rust\nfn main() {}\nlet x = 1;\n```\nDone"), "Example:\n\n[CODE]fn main() {}\nlet x = 1;[/CODE]\n\nDone");
    }

    #[test]
    fn headings_quotes_rules_tables() {
        assert_eq!(convert("# Title\nBody"), "[B]Title[/B]\n\nBody");
        assert_eq!(convert("> quoted\n> more\n\nafter"), ">> quoted\n>> more\n\nafter");
        assert_eq!(convert("a\n\n---\n\nb"), "a\n\n————————————\n\nb");
        assert_eq!(convert("| A | B |\n|---|---|\n| 1 | 2 |"), "[B]A[/B] | [B]B[/B]\n1 | 2");
        assert_eq!(convert("- [x] done\n- [ ] todo"), "• ☑ done\n• ☐ todo");
    }

    #[test]
    fn plain_text_and_html_breaks_pass_through() {
        assert_eq!(convert("Just text."), "Just text.");
        assert_eq!(convert("a<br>b"), "a\nb");
        assert_eq!(convert(""), "");
    }
}
