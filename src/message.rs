//! Alert messages: a strategy's `message_template` (minijinja) rendered with the facts
//! of the trigger, or a clear default. A template that fails to render — syntax, a
//! runaway loop (bounded by fuel), anything — falls back to the default and the error
//! is reported: a broken template never drops an alert.

use chrono::{DateTime, Utc};
use minijinja::{Environment, context};
use serde::Serialize;

use crate::conditions::ConditionReport;

/// Longest message sent (Telegram allows 4,096 characters).
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Template execution budget (minijinja fuel): plenty for a message, not for a loop.
const FUEL: u64 = 50_000;

/// One condition as templates and trigger snapshots see it (`{{ conditions[0].value }}`):
/// a flat view of its [`ConditionReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionFacts {
    pub id: String,
    pub kind: String,
    pub source: String,
    pub symbol: String,
    pub interval: Option<String>,
    /// true, false or null (unknown).
    pub result: Option<bool>,
    pub value: Option<f64>,
    pub previous: Option<f64>,
    pub compare_to: Option<f64>,
    /// `BTCUSDT 1h RSI(14)`: what the condition is about.
    pub subject: String,
    /// `above`, `below`, `crossed above`, `crossed below`.
    pub relation: String,
    /// What the value was compared with when not a plain number (`EMA(50)`).
    pub compare_label: Option<String>,
    /// The whole condition as a trader writes it:
    /// `BTCUSDT 1h RSI(14) 26.88 below 30 (was 38.48)`.
    pub summary: String,
}

impl ConditionFacts {
    /// The facts of one condition as its evaluation reported it.
    pub fn from_report(report: &ConditionReport) -> Self {
        let shown = |value: Option<f64>| match value {
            Some(v) if report.percent => format!("{}%", number(Some(v))),
            other => number(other),
        };
        let compared = match &report.compare_label {
            Some(label) => format!("{label} {}", shown(report.observed.compare_to)),
            None => shown(report.observed.compare_to),
        };
        let mut summary = format!(
            "{} {} {} {compared}",
            report.subject,
            shown(report.observed.value),
            report.relation
        );
        // An indicator's previous value says where it came from; a price's is only
        // what the last evaluation saw.
        if report.kind == "technical_indicator" && report.observed.previous.is_some() {
            summary.push_str(&format!(" (was {})", shown(report.observed.previous)));
        }
        Self {
            subject: report.subject.clone(),
            relation: report.relation.clone(),
            compare_label: report.compare_label.clone(),
            summary,
            id: report.id.to_string(),
            kind: report.kind.clone(),
            source: report.source.clone(),
            symbol: report.symbol.clone(),
            interval: report.interval.clone(),
            result: report.result,
            value: report.observed.value,
            previous: report.observed.previous,
            compare_to: report.observed.compare_to,
        }
    }
}

/// What a message may say about a trigger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertFacts {
    pub strategy_id: String,
    pub strategy_name: String,
    /// The period (or candle close) the trigger belongs to: what cooldowns count from.
    pub triggered_at: DateTime<Utc>,
    /// When it fired: the evaluation's time, or the bar's close for a candle close.
    pub fired_at: DateTime<Utc>,
    /// It goes out more than a period after its time (a missed period caught up).
    pub late: bool,
    pub conditions: Vec<ConditionFacts>,
}

/// A rendered message and, when the template failed, why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub template_error: Option<String>,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env
}

/// Checks a template's syntax (strategy validation).
pub fn check_template(template: &str) -> Result<(), String> {
    environment()
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A value rounded for its magnitude, with thousands separators: `65,481.77`,
/// `65,000`, `26.88`, `0.0001234`.
fn number(value: Option<f64>) -> String {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return "n/a".to_owned();
    };
    let magnitude = v.abs();
    // Two decimals from 1 up; below 1, four significant digits.
    let decimals = if magnitude >= 1.0 || magnitude == 0.0 {
        2
    } else {
        (3 - magnitude.log10().floor() as i32).clamp(2, 12) as usize
    };
    let text = format!("{v:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

/// The default message: the strategy, each condition that held as a trader writes it,
/// and the time it fired in UTC.
pub fn default_message(facts: &AlertFacts) -> String {
    let mut lines = vec![format!("🔔 {}", facts.strategy_name)];
    lines.extend(
        facts
            .conditions
            .iter()
            .filter(|c| c.result == Some(true))
            .map(|c| c.summary.clone()),
    );
    lines.push(facts.fired_at.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    lines.join("\n")
}

fn truncate(text: String) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Renders `template` (or the default) with the facts. Variables: `strategy_name`,
/// `strategy_id`, `triggered_at` (the period or candle close, RFC 3339, UTC),
/// `fired_at` (when it fired), `symbol` and `value` (of the first condition), and
/// `conditions` (id, kind, source, symbol, interval, result, value, previous,
/// compare_to, and the wording: subject, relation, compare_label, summary).
pub fn render(template: Option<&str>, facts: &AlertFacts) -> Rendered {
    let mut rendered = render_text(template, facts);
    if facts.late {
        // Whatever the template says, a late alert says it is late.
        rendered.text = truncate(format!("{}\n{}", rendered.text, late_line(facts)));
    }
    rendered
}

/// The line a late alert ends with: which period it is for and how late it goes out.
pub fn late_line(facts: &AlertFacts) -> String {
    format!(
        "⏱ late: for {}, sent {} s after",
        facts.triggered_at.format("%Y-%m-%d %H:%M:%S UTC"),
        (facts.fired_at - facts.triggered_at).num_seconds()
    )
}

fn render_text(template: Option<&str>, facts: &AlertFacts) -> Rendered {
    let Some(template) = template.filter(|t| !t.trim().is_empty()) else {
        return Rendered {
            text: truncate(default_message(facts)),
            template_error: None,
        };
    };
    let first = facts.conditions.first();
    let rendered = environment().render_str(
        template,
        context! {
            strategy_name => &facts.strategy_name,
            strategy_id => &facts.strategy_id,
            triggered_at => facts.triggered_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            fired_at => facts.fired_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            late => facts.late,
            symbol => first.map(|c| c.symbol.as_str()),
            value => first.and_then(|c| c.value),
            conditions => &facts.conditions,
        },
    );
    match rendered {
        Ok(text) if !text.trim().is_empty() => Rendered {
            text: truncate(text),
            template_error: None,
        },
        Ok(_) => Rendered {
            text: truncate(default_message(facts)),
            template_error: Some("the template rendered an empty message".into()),
        },
        Err(error) => Rendered {
            text: truncate(default_message(facts)),
            template_error: Some(error.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AlertFacts {
        AlertFacts {
            strategy_id: "7f0c".into(),
            strategy_name: "BTC oversold".into(),
            triggered_at: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            fired_at: DateTime::parse_from_rfc3339("2026-11-23T10:57:12Z")
                .unwrap()
                .with_timezone(&Utc),
            late: false,
            conditions: vec![
                ConditionFacts {
                    id: "c1".into(),
                    kind: "technical_indicator".into(),
                    source: "binance".into(),
                    symbol: "BTCUSDT".into(),
                    interval: Some("1h".into()),
                    result: Some(true),
                    value: Some(28.41),
                    previous: Some(31.02),
                    compare_to: Some(30.0),
                    subject: "BTCUSDT 1h RSI(14)".into(),
                    relation: "below".into(),
                    compare_label: None,
                    summary: "BTCUSDT 1h RSI(14) 28.41 below 30 (was 31.02)".into(),
                },
                ConditionFacts {
                    id: "c2".into(),
                    kind: "price_alert".into(),
                    source: "binance".into(),
                    symbol: "BTCUSDT".into(),
                    interval: None,
                    result: Some(false),
                    value: Some(64_210.5),
                    previous: None,
                    compare_to: Some(65_000.0),
                    subject: "BTCUSDT".into(),
                    relation: "crossed above".into(),
                    compare_label: None,
                    summary: "BTCUSDT 64,210.5 crossed above 65,000".into(),
                },
            ],
        }
    }

    #[test]
    fn the_default_message_names_the_values_that_fired_and_the_time() {
        let rendered = render(None, &facts());
        assert_eq!(
            rendered.text,
            "🔔 BTC oversold\nBTCUSDT 1h RSI(14) 28.41 below 30 (was 31.02)\n2026-11-23 10:57:12 UTC"
        );
        assert_eq!(rendered.template_error, None);
    }

    #[test]
    fn numbers_are_rounded_for_their_magnitude_and_grouped() {
        let cases = [
            (65_481.771, "65,481.77"),
            (65_000.0, "65,000"),
            (1_234_567.0, "1,234,567"),
            (26.876_139, "26.88"),
            (30.0, "30"),
            (-5.25, "-5.25"),
            (0.000_123_456, "0.0001235"),
            (0.5, "0.5"),
            (0.0, "0"),
            (-1_500.5, "-1,500.5"),
        ];
        for (value, shown) in cases {
            assert_eq!(number(Some(value)), shown, "{value}");
        }
        assert_eq!(number(None), "n/a");
        assert_eq!(number(Some(f64::NAN)), "n/a");
    }

    #[test]
    fn conditions_are_worded_as_traders_write_them() {
        use crate::conditions::{ConditionReport, Observed};
        let report = |kind: &str, subject: &str, relation: &str, label: Option<&str>, observed| {
            ConditionFacts::from_report(&ConditionReport {
                id: uuid::Uuid::nil(),
                kind: kind.into(),
                result: Some(true),
                source: "binance".into(),
                symbol: "BTCUSDT".into(),
                interval: None,
                bar_open_time: None,
                observed,
                subject: subject.into(),
                relation: relation.into(),
                compare_label: label.map(Into::into),
                percent: false,
            })
            .summary
        };
        let seen = |value, previous, compare_to| Observed {
            value: Some(value),
            previous,
            compare_to: Some(compare_to),
            ..Observed::default()
        };
        assert_eq!(
            report(
                "technical_indicator",
                "BTCUSDT 1h RSI(14)",
                "below",
                None,
                seen(26.876_139, Some(38.475_516), 30.0)
            ),
            "BTCUSDT 1h RSI(14) 26.88 below 30 (was 38.48)"
        );
        assert_eq!(
            report(
                "price_alert",
                "BTCUSDT",
                "crossed above",
                None,
                seen(65_481.77, Some(64_990.0), 65_000.0)
            ),
            "BTCUSDT 65,481.77 crossed above 65,000"
        );
        assert_eq!(
            report(
                "technical_indicator",
                "ETHUSDT 4h EMA(20)",
                "crossed above",
                Some("EMA(50)"),
                seen(3_012.456, Some(3_009.1), 3_010.0)
            ),
            "ETHUSDT 4h EMA(20) 3,012.46 crossed above EMA(50) 3,010 (was 3,009.1)"
        );
    }

    #[test]
    fn templates_use_the_documented_variables() {
        let rendered = render(
            Some(
                "{{ strategy_name }}: {{ symbol }} RSI {{ value }} at {{ triggered_at }} ({{ conditions | length }} conditions, 2nd {{ conditions[1].value }})",
            ),
            &facts(),
        );
        assert_eq!(
            rendered.text,
            "BTC oversold: BTCUSDT RSI 28.41 at 2026-11-23T10:00:00Z (2 conditions, 2nd 64210.5)"
        );
    }

    #[test]
    fn broken_or_runaway_templates_fall_back_to_the_default() {
        let default = default_message(&facts());
        for template in [
            "{{ unclosed",
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "{{ \"x\" + 1 }}",
            "   ",
        ] {
            let rendered = render(Some(template), &facts());
            assert_eq!(rendered.text, default, "{template}");
        }
        assert!(
            render(Some("{{ unclosed"), &facts())
                .template_error
                .is_some()
        );
        assert!(check_template("{{ unclosed").is_err());
        assert!(check_template("{{ symbol }} {% if value < 30 %}low{% endif %}").is_ok());
        let long = render(Some("{% for i in range(3000) %}xy{% endfor %}"), &facts());
        assert_eq!(long.text.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn a_late_alert_says_so_whatever_its_template() {
        let late = AlertFacts {
            late: true,
            ..facts()
        };
        let line = "⏱ late: for 2026-11-23 10:00:00 UTC, sent 3432 s after";
        assert!(render(None, &late).text.ends_with(line));
        let templated = render(
            Some("{{ strategy_name }}{% if late %} (late){% endif %}"),
            &late,
        )
        .text;
        assert_eq!(templated, format!("BTC oversold (late)\n{line}"));
        assert!(!render(None, &facts()).text.contains("late"));
    }
}
