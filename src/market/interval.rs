//! Candle intervals, as Binance names them.

use serde::{Deserialize, Serialize};

/// A candle interval. Binance's, except the calendar month (whose length varies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "3m")]
    M3,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "30m")]
    M30,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "2h")]
    H2,
    #[serde(rename = "4h")]
    H4,
    #[serde(rename = "6h")]
    H6,
    #[serde(rename = "8h")]
    H8,
    #[serde(rename = "12h")]
    H12,
    #[serde(rename = "1d")]
    D1,
    #[serde(rename = "3d")]
    D3,
    #[serde(rename = "1w")]
    W1,
}

impl Interval {
    pub const ALL: [Interval; 14] = [
        Interval::M1,
        Interval::M3,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H2,
        Interval::H4,
        Interval::H6,
        Interval::H8,
        Interval::H12,
        Interval::D1,
        Interval::D3,
        Interval::W1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M3 => "3m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H2 => "2h",
            Interval::H4 => "4h",
            Interval::H6 => "6h",
            Interval::H8 => "8h",
            Interval::H12 => "12h",
            Interval::D1 => "1d",
            Interval::D3 => "3d",
            Interval::W1 => "1w",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.as_str() == text)
    }

    /// The interval's length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Interval::M1 => 60,
            Interval::M3 => 180,
            Interval::M5 => 300,
            Interval::M15 => 900,
            Interval::M30 => 1800,
            Interval::H1 => 3600,
            Interval::H2 => 7200,
            Interval::H4 => 14_400,
            Interval::H6 => 21_600,
            Interval::H8 => 28_800,
            Interval::H12 => 43_200,
            Interval::D1 => 86_400,
            Interval::D3 => 259_200,
            Interval::W1 => 604_800,
        }
    }

    /// The length in milliseconds.
    pub fn millis(self) -> i64 {
        self.seconds() as i64 * 1000
    }

    /// The open time of the candle containing `t_ms`. Weekly candles open on Mondays
    /// (Binance's convention; the Unix epoch was a Thursday).
    pub fn open_time(self, t_ms: i64) -> i64 {
        let step = self.millis();
        let offset = if self == Interval::W1 {
            3 * 86_400_000
        } else {
            0
        };
        (t_ms + offset).div_euclid(step) * step - offset
    }

    /// The open time of the last candle closed at `now_ms`.
    pub fn last_closed_open(self, now_ms: i64) -> i64 {
        self.open_time(now_ms) - self.millis()
    }

    /// The interval whose length is exactly `seconds`, if any.
    pub fn from_seconds(seconds: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.seconds() == seconds)
    }

    /// All names, for error messages.
    pub fn names() -> String {
        Self::ALL.map(Interval::as_str).join(", ")
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candles_open_on_their_boundaries_and_weeks_on_mondays() {
        // 2026-11-25T12:34:56Z, a Wednesday.
        let t = 1_795_610_096_000;
        assert_eq!(Interval::M1.open_time(t), 1_795_610_040_000);
        assert_eq!(Interval::H4.open_time(t), 1_795_608_000_000);
        // Monday 2026-11-23T00:00:00Z.
        assert_eq!(Interval::W1.open_time(t), 1_795_392_000_000);
        assert_eq!(Interval::W1.open_time(1_795_392_000_000), 1_795_392_000_000);
        assert_eq!(Interval::H1.last_closed_open(t), 1_795_604_400_000);
    }
}
