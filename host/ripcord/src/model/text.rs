//! Text that came from somewhere ripcord does not control — a plugin's reason, a configuration value, a cloud's
//! error — made safe to show: cut to a bound, and with control characters escaped before it reaches a terminal.

use std::borrow::Cow;

/// At most `max` bytes of `text`, cut at a character boundary, with a marker saying how much was cut.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let end = (0..=max).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    format!("{}… [{} bytes cut]", &text[..end], text.len() - end).into()
}

/// A multi-line message (a parser's byte dump, a client library's nested error) as one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` with every character that could forge terminal output escaped: C0 and C1 controls (escape sequences,
/// NUL, carriage return, newline), DEL, and the Unicode bidirectional overrides and isolates (which reorder what
/// follows them). Newlines become `\n`, so one record stays one line.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.into()
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A revision for people: Lambda versions as `v7`, Cloud Run revisions by name.
pub fn revision_label(revision: &str) -> String {
    if revision.chars().all(|c| c.is_ascii_digit()) { format!("v{revision}") } else { revision.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_characters_whole_and_says_what_was_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééé", 3), "é… [4 bytes cut]");
    }

    #[test]
    fn terminal_forgeries_are_escaped() {
        assert_eq!(terminal_safe("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(terminal_safe("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(terminal_safe("\u{1b}[31mred\u{1b}[0m"), "\\u{1b}[31mred\\u{1b}[0m");
        assert_eq!(terminal_safe("nul\0"), "nul\\u{0}");
        assert_eq!(terminal_safe("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(terminal_safe("c1\u{9b}"), "c1\\u{9b}");
    }
}
