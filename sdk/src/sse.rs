//! Server-sent events (`text/event-stream`) parsing.

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field; empty when absent (the default "message" type).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field, if any.
    pub id: Option<String>,
}

/// Parse a complete event stream. Comments (`:`) are skipped; an event with
/// neither data nor a type (a bare blank line) is dropped. CRLF and LF line
/// endings are both accepted.
pub fn parse(stream: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut current = Event::default();
    let mut data_lines: Vec<&str> = Vec::new();
    for raw in stream.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            flush(&mut current, &mut data_lines, &mut events);
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => current.event = value.to_string(),
            "data" => data_lines.push(value),
            "id" => current.id = Some(value.to_string()),
            _ => {}
        }
    }
    flush(&mut current, &mut data_lines, &mut events);
    events
}

fn flush(current: &mut Event, data_lines: &mut Vec<&str>, events: &mut Vec<Event>) {
    if !data_lines.is_empty() || !current.event.is_empty() {
        current.data = data_lines.join("\n");
        events.push(std::mem::take(current));
    }
    data_lines.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_data_events_pings_and_crlf() {
        let stream = "data: {\"a\":1}\n\nevent: ping\n\n: comment\r\ndata: x\r\ndata: y\r\n\r\n";
        let events = parse(stream);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].data, "{\"a\":1}");
        assert_eq!(events[1].event, "ping");
        assert_eq!(events[2].data, "x\ny");
    }

    #[test]
    fn last_event_without_blank_line_is_kept() {
        assert_eq!(parse("data: tail").len(), 1);
    }
}
