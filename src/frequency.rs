//! How often a strategy is evaluated: a fixed period aligned to the wall clock, on each
//! candle close of its bar interval, or a 6-field cron expression.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use croner::parser::{CronParser, Seconds, Year};

/// The fixed periods DESIGN.md §3 allows, in seconds.
const FIXED: [(&str, u32); 9] = [
    ("10s", 10),
    ("30s", 30),
    ("1m", 60),
    ("5m", 300),
    ("15m", 900),
    ("30m", 1800),
    ("1h", 3600),
    ("4h", 14_400),
    ("1d", 86_400),
];

/// The shortest period a strategy may have: what the price cache's lifetime and the
/// delivery budgets assume (DESIGN §5).
pub const MIN_PERIOD_SECONDS: i64 = 10;

/// A 6-field cron expression (seconds required, no year), as strategies write them.
fn parse_cron(text: &str) -> Result<croner::Cron, croner::errors::CronError> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .build()
        .parse(text)
}

/// Occurrences sampled to find a cron expression's shortest gap.
const GAP_SAMPLES: usize = 128;

/// The shortest gap, in seconds, between consecutive times of `cron` among its first
/// [`GAP_SAMPLES`] after a fixed minute boundary. Times within one minute come
/// consecutively, so every gap inside a minute is seen in the first matching minute;
/// gaps across a minute boundary are seen wherever two matching minutes follow each
/// other in the sample. A fixed anchor keeps the verdict the same on every replica.
fn shortest_gap(cron: &croner::Cron) -> Option<i64> {
    let mut at = DateTime::from_timestamp(1_767_225_600, 0)?; // 2026-01-01T00:00:00Z
    at = cron.find_next_occurrence(&at, true).ok()?;
    let mut shortest: Option<i64> = None;
    for _ in 1..GAP_SAMPLES {
        let Ok(next) = cron.find_next_occurrence(&at, false) else {
            break;
        };
        let gap = (next - at).num_seconds();
        shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
        if shortest.is_some_and(|s| s < MIN_PERIOD_SECONDS) {
            break;
        }
        at = next;
    }
    shortest
}

/// A strategy's evaluation frequency; strategies with equal frequencies form a batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Frequency {
    /// Every `n` seconds, aligned to wall-clock boundaries.
    Every(u32),
    /// On each close of the strategy's bar interval.
    CandleClose,
    /// At the times of a 6-field cron expression (`sec min hour dom month dow`).
    Cron(Arc<str>),
}

impl Frequency {
    /// Parses the `frequency` column.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some((_, seconds)) = FIXED.iter().find(|(name, _)| *name == text) {
            return Ok(Frequency::Every(*seconds));
        }
        if text == "candle_close" {
            return Ok(Frequency::CandleClose);
        }
        let fields = text.split_whitespace().count();
        if fields != 6 {
            return Err(format!(
                "must be one of {}, candle_close, or a 6-field cron expression (sec min hour day month weekday); `{text}` has {fields} field(s)",
                FIXED.map(|(n, _)| n).join(", "),
            ));
        }
        let cron = parse_cron(text).map_err(|err| format!("invalid cron expression: {err}"))?;
        if let Some(gap) = shortest_gap(&cron).filter(|gap| *gap < MIN_PERIOD_SECONDS) {
            return Err(format!(
                "a cron expression may fire at most every {MIN_PERIOD_SECONDS} s; `{text}` fires {gap} s apart"
            ));
        }
        Ok(Frequency::Cron(Arc::from(text)))
    }

    /// The first run strictly after `after`: the next multiple of the period since the
    /// Unix epoch (so `1d` runs at 00:00 UTC), or the next cron time. `None` for
    /// `candle_close`, which follows candle closes instead.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Frequency::Every(seconds) => {
                let period = i64::from(*seconds) * 1000;
                let next = (after.timestamp_millis().div_euclid(period) + 1) * period;
                DateTime::from_timestamp_millis(next)
            }
            Frequency::CandleClose => None,
            Frequency::Cron(expression) => {
                let cron = parse_cron(expression).ok()?;
                cron.find_next_occurrence(&after, false).ok()
            }
        }
    }

    /// The start of the period `at` falls in (a fixed frequency), or `at` to the second
    /// (cron): the instant every replica's run of that period shares.
    pub fn due_at_or_before(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let step = match self {
            Frequency::Every(seconds) => i64::from(*seconds) * 1000,
            _ => 1000,
        };
        DateTime::from_timestamp_millis(at.timestamp_millis().div_euclid(step) * step).unwrap_or(at)
    }

    /// The latest boundary at or before `at`: the start of its period (fixed), the last
    /// cron time; `None` for `candle_close`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Frequency::Every(_) => Some(self.due_at_or_before(at)),
            Frequency::CandleClose => None,
            Frequency::Cron(expression) => parse_cron(expression)
                .ok()?
                // Cron times are whole seconds: so is the boundary found.
                .find_previous_occurrence(&chrono::SubsecRound::trunc_subsecs(at, 0), true)
                .ok(),
        }
    }

    /// Every run in `[from, to)`, in order: what the live scheduler would have run over
    /// that span (the backtest's moments). Empty for `candle_close`, which follows
    /// candle closes instead. A cron expression is parsed once, not per run.
    pub fn due_times(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut times = Vec::new();
        match self {
            Frequency::Every(seconds) => {
                let period = i64::from(*seconds) * 1000;
                let from_ms = from.timestamp_millis();
                let mut at = from_ms.div_euclid(period) * period;
                if at < from_ms {
                    at += period;
                }
                while at < to.timestamp_millis() {
                    times.extend(DateTime::from_timestamp_millis(at));
                    at += period;
                }
            }
            Frequency::CandleClose => {}
            Frequency::Cron(expression) => {
                let Ok(cron) = parse_cron(expression) else {
                    return times;
                };
                let mut next = cron.find_next_occurrence(&from, true).ok();
                while let Some(at) = next.filter(|at| *at < to) {
                    times.push(at);
                    next = cron.find_next_occurrence(&at, false).ok();
                }
            }
        }
        times
    }

    /// The period in seconds, for fixed frequencies.
    pub fn period_seconds(&self) -> Option<u32> {
        match self {
            Frequency::Every(seconds) => Some(*seconds),
            _ => None,
        }
    }
}

impl std::fmt::Display for Frequency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frequency::Every(seconds) => {
                let name = FIXED
                    .iter()
                    .find(|(_, s)| s == seconds)
                    .map_or("?", |(n, _)| n);
                f.write_str(name)
            }
            Frequency::CandleClose => f.write_str("candle_close"),
            Frequency::Cron(expression) => f.write_str(expression),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_candle_close_and_cron_parse() {
        assert_eq!(Frequency::parse("5m").unwrap(), Frequency::Every(300));
        assert_eq!(
            Frequency::parse("candle_close").unwrap(),
            Frequency::CandleClose
        );
        assert_eq!(
            Frequency::parse("0 */5 * * * *").unwrap(),
            Frequency::Cron(Arc::from("0 */5 * * * *"))
        );
        assert_eq!(Frequency::parse("1h").unwrap().to_string(), "1h");
    }

    #[test]
    fn runs_fall_on_wall_clock_boundaries() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let now = at("2026-11-23T10:02:30Z");
        let next = |f: &str| Frequency::parse(f).unwrap().next_after(now).unwrap();
        assert_eq!(next("5m"), at("2026-11-23T10:05:00Z"));
        assert_eq!(next("10s"), at("2026-11-23T10:02:40Z"));
        assert_eq!(next("4h"), at("2026-11-23T12:00:00Z"));
        assert_eq!(next("1d"), at("2026-11-24T00:00:00Z"));
        assert_eq!(next("0 */15 * * * *"), at("2026-11-23T10:15:00Z"));
        // Strictly after: a boundary itself gives the next one.
        let five = Frequency::parse("5m").unwrap();
        assert_eq!(
            five.next_after(at("2026-11-23T10:05:00Z")).unwrap(),
            at("2026-11-23T10:10:00Z")
        );
        assert_eq!(Frequency::CandleClose.next_after(now), None);
    }

    #[test]
    fn due_times_are_the_runs_of_a_span_start_included_end_excluded() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let (from, to) = (at("2026-11-23T10:00:00Z"), at("2026-11-23T10:20:00Z"));
        let times = |f: &str| Frequency::parse(f).unwrap().due_times(from, to);
        assert_eq!(
            times("5m"),
            ["10:00", "10:05", "10:10", "10:15"].map(|t| at(&format!("2026-11-23T{t}:00Z")))
        );
        assert_eq!(
            times("0 */15 * * * *"),
            [at("2026-11-23T10:00:00Z"), at("2026-11-23T10:15:00Z")]
        );
        assert_eq!(
            Frequency::parse("5m")
                .unwrap()
                .due_times(at("2026-11-23T10:00:01Z"), to)[0],
            at("2026-11-23T10:05:00Z")
        );
        assert!(Frequency::CandleClose.due_times(from, to).is_empty());
        // The same runs next_after gives, one by one.
        let cron = Frequency::parse("0 7,31 * * * *").unwrap();
        let walked: Vec<_> =
            std::iter::successors(cron.next_after(from - chrono::Duration::seconds(1)), |t| {
                cron.next_after(*t)
            })
            .take_while(|t| *t < to + chrono::Duration::hours(3))
            .collect();
        assert_eq!(
            cron.due_times(from, to + chrono::Duration::hours(3)),
            walked
        );
    }

    #[test]
    fn bad_frequencies_are_explained() {
        assert!(Frequency::parse("2m").unwrap_err().contains("has 1 field"));
        assert!(
            Frequency::parse("*/5 * * * *")
                .unwrap_err()
                .contains("has 5 field")
        );
        assert!(
            Frequency::parse("0 61 * * * *")
                .unwrap_err()
                .starts_with("invalid cron")
        );
        assert!(Frequency::parse("").is_err());
    }

    #[test]
    fn cron_expressions_firing_under_ten_seconds_apart_are_refused() {
        for text in [
            "* * * * * *",
            "*/5 * * * * *",
            "0,9 * * * * *",
            "55,0 * * * * *",
            "0-3 0 12 * * *",
            "0,5 0 0 29 2 *",
        ] {
            let error = Frequency::parse(text).unwrap_err();
            assert!(error.contains("at most every 10 s"), "{text}: {error}");
        }
        for text in [
            "*/10 * * * * *",
            "0,30 * * * * *",
            "0 * * * * *",
            "0 0 12 * * 1",
        ] {
            assert!(Frequency::parse(text).is_ok(), "{text}");
        }
    }
}
