//! How the operator CLI prints: aligned tables (columns padded to their widest cell,
//! colour added after padding so it never breaks alignment), colour only when stdout
//! is a terminal and `NO_COLOR` is unset, and times as an age an operator reads at a
//! glance.

use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A colour for a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Warn,
    Bad,
    Faint,
}

impl Tone {
    fn code(self) -> &'static str {
        match self {
            Tone::Good => "32",
            Tone::Warn => "33",
            Tone::Bad => "31",
            Tone::Faint => "2",
        }
    }

    /// The tone of a cell by its first word: OK/ok/fresh green, DEGRADED/WARNING
    /// yellow, CRITICAL/DOWN/failed red.
    pub fn of(text: &str) -> Option<Tone> {
        let word = text.split([' ', '(']).next().unwrap_or_default();
        match word.to_ascii_lowercase().as_str() {
            "ok" | "fresh" | "true" | "delivered" | "sent" | "connected" => Some(Tone::Good),
            "degraded" | "warning" | "stale" | "partial" | "skipped" | "snoozed" | "lapsed"
            | "missing" => Some(Tone::Warn),
            "critical" | "down" | "failed" | "failing" | "error" | "tripped" | "lost" | "false"
            | "unreachable" => Some(Tone::Bad),
            "disabled" | "unreported" | "never" | "idle" | "info" => Some(Tone::Faint),
            _ => None,
        }
    }
}

/// Whether to colour: only on a terminal, never when `NO_COLOR` is set to anything
/// non-empty (<https://no-color.org>).
pub fn use_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Where output goes and how.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub colour: bool,
}

impl Output {
    /// Tables without colour (what a pipe gets).
    pub const PLAIN: Output = Output {
        json: false,
        colour: false,
    };

    /// For this process: `--json` as asked, colour as the terminal and `NO_COLOR` say.
    pub fn for_stdout(json: bool) -> Self {
        let colour = use_colour(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
        Self { json, colour }
    }

    /// `text` in `tone` when colouring.
    pub fn paint(&self, text: &str, tone: Option<Tone>) -> String {
        match tone {
            Some(tone) if self.colour => format!("\x1b[{}m{text}\x1b[0m", tone.code()),
            _ => text.to_owned(),
        }
    }

    /// Prints `value` as indented JSON.
    pub fn print_json(&self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }

    /// A heading line.
    pub fn heading(&self, text: &str) {
        if self.colour {
            println!("\x1b[1m{text}\x1b[0m");
        } else {
            println!("{text}");
        }
    }
}

/// A table: a header and rows of cells, each cell with an optional tone.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<(String, Option<Tone>)>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; each cell's tone is chosen by [`Tone::of`] on its text.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        self.rows.push(
            cells
                .iter()
                .map(|cell| {
                    let text = cell.as_ref().to_owned();
                    let tone = Tone::of(&text);
                    (text, tone)
                })
                .collect(),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, columns two spaces apart, the last column unpadded.
    pub fn render(&self, output: &Output) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (column, (text, _)) in row.iter().enumerate().take(columns) {
                widths[column] = widths[column].max(text.chars().count());
            }
        }
        let line = |cells: Vec<(String, Option<Tone>)>| {
            let mut out = String::new();
            for (column, (text, tone)) in cells.into_iter().enumerate().take(columns) {
                let last = column + 1 == columns;
                let pad = if last {
                    0
                } else {
                    widths[column] - text.chars().count() + 2
                };
                out.push_str(&output.paint(&text, tone));
                out.push_str(&" ".repeat(pad));
            }
            out.trim_end().to_owned()
        };
        let mut lines = vec![line(
            self.header.iter().map(|h| (h.clone(), None)).collect(),
        )];
        for row in &self.rows {
            lines.push(line(row.clone()));
        }
        lines.join("\n")
    }

    pub fn print(&self, output: &Output) {
        println!("{}", self.render(output));
    }
}

/// `text` of a JSON value for a cell: strings bare, null as `-`.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Number(number) => match number.as_f64() {
            Some(f) if number.is_f64() => format_number(f),
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

/// A number with at most four decimals, trailing zeros dropped.
pub fn format_number(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// `12.3 ms`.
pub fn milliseconds(ms: f64) -> String {
    format!("{ms:.1} ms")
}

/// An RFC 3339 value as an age relative to `now`: `5s ago`, `3m ago`, `in 2h`, or `-`.
pub fn age(value: &Value, now: DateTime<Utc>) -> String {
    let Some(at) = value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
    else {
        return "-".to_owned();
    };
    let seconds = (now - at.with_timezone(&Utc)).num_seconds();
    if seconds == 0 {
        "now".to_owned()
    } else if seconds > 0 {
        format!("{} ago", span(seconds))
    } else {
        format!("in {}", span(-seconds))
    }
}

/// Seconds as the largest whole unit or two: `45s`, `3m`, `2h5m`, `3d4h`.
pub fn span(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => match (s / 3600, s % 3600 / 60) {
            (h, 0) => format!("{h}h"),
            (h, m) => format!("{h}h{m}m"),
        },
        s => match (s / 86_400, s % 86_400 / 3600) {
            (d, 0) => format!("{d}d"),
            (d, h) => format!("{d}d{h}h"),
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    const PLAIN: Output = Output::PLAIN;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(std::ffi::OsStr::new(""))));
        assert!(!use_colour(true, Some(std::ffi::OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn columns_align_to_the_widest_cell_with_or_without_colour() {
        let mut table = Table::new(&["NAME", "STATUS", "NOTE"]);
        table.row(&["postgres", "OK", "-"]);
        table.row(&["reports_service", "DOWN", "connection refused"]);
        assert_eq!(
            table.render(&PLAIN),
            "NAME             STATUS  NOTE\n\
             postgres         OK      -\n\
             reports_service  DOWN    connection refused"
        );
        let coloured = table.render(&Output {
            json: false,
            colour: true,
        });
        assert!(coloured.contains("\x1b[31mDOWN\x1b[0m    connection refused"));
        assert!(coloured.contains("\x1b[32mOK\x1b[0m      -"));
    }

    #[test]
    fn ages_and_numbers_read_at_a_glance() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        assert_eq!(age(&json!("2026-12-03T11:59:15Z"), now), "45s ago");
        assert_eq!(age(&json!("2026-12-03T09:55:00Z"), now), "2h5m ago");
        assert_eq!(age(&json!("2026-12-03T12:03:00Z"), now), "in 3m");
        assert_eq!(age(&json!("2026-11-30T08:00:00Z"), now), "3d4h ago");
        assert_eq!(age(&Value::Null, now), "-");
        assert_eq!(cell(&json!(2.5)), "2.5");
        assert_eq!(cell(&json!(1.0 / 3.0)), "0.3333");
        assert_eq!(cell(&json!(12)), "12");
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(format_number(-0.00001), "0");
    }
}
