//! When a true evaluation may fire (DESIGN.md §5).

/// A strategy's trigger mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerMode {
    /// Every true evaluation, at most once per cooldown.
    EveryTime,
    /// Once, then the strategy is `completed`.
    Once,
    /// At most once per candle of the bar interval.
    OncePerBar,
    /// Evaluated only when the bar closes; at most once per bar.
    OncePerBarClose,
    /// When the tree goes from not-true to true.
    OnRisingEdge,
}

impl TriggerMode {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "every_time" => TriggerMode::EveryTime,
            "once" => TriggerMode::Once,
            "once_per_bar" => TriggerMode::OncePerBar,
            "once_per_bar_close" => TriggerMode::OncePerBarClose,
            "on_rising_edge" => TriggerMode::OnRisingEdge,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerMode::EveryTime => "every_time",
            TriggerMode::Once => "once",
            TriggerMode::OncePerBar => "once_per_bar",
            TriggerMode::OncePerBarClose => "once_per_bar_close",
            TriggerMode::OnRisingEdge => "on_rising_edge",
        }
    }

    /// Whether the mode is defined by a bar interval.
    pub fn needs_bar_interval(self) -> bool {
        matches!(self, TriggerMode::OncePerBar | TriggerMode::OncePerBarClose)
    }
}
