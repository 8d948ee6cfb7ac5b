//! What a decision does to its schedule (DESIGN §14): `enter` → `in_position`,
//! `abandon` → `expired`, `continue` → wait for the next close, except that the
//! `max_reanalyses`-th analysis that is not `enter` expires it. A success resets the
//! error streak.

use serde::{Deserialize, Serialize};

use crate::storage::workflow_schedules::{Progress, ScheduleRow};

/// The llm-proxy's verdict on a signal at a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Enter,
    Abandon,
    Continue,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Enter => "enter",
            Decision::Abandon => "abandon",
            Decision::Continue => "continue",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "enter" => Some(Decision::Enter),
            "abandon" => Some(Decision::Abandon),
            "continue" => Some(Decision::Continue),
            _ => None,
        }
    }
}

/// The schedule after `decision` on the candle opened at `candle_open_time`.
pub fn progress(schedule: &ScheduleRow, decision: Decision, candle_open_time: i64) -> Progress {
    let reanalysis_count = schedule.reanalysis_count.saturating_add(1);
    let status = match decision {
        Decision::Enter => "in_position",
        Decision::Abandon => "expired",
        Decision::Continue if reanalysis_count >= schedule.max_reanalyses => "expired",
        Decision::Continue => "monitoring",
    };
    Progress {
        status: status.to_owned(),
        is_active: status == "monitoring",
        reanalysis_count,
        consecutive_errors: 0,
        last_candle_time: candle_open_time,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn schedule(reanalysis_count: i32, max_reanalyses: i32) -> ScheduleRow {
        ScheduleRow {
            id: Uuid::new_v4(),
            workflow_type: "signal_monitoring".into(),
            entity_id: Uuid::new_v4(),
            trader_id: Uuid::new_v4(),
            interval: "1m".into(),
            symbol: "BTCUSDT".into(),
            last_run_at: None,
            last_candle_time: None,
            consecutive_errors: 2,
            is_active: true,
            status: "monitoring".into(),
            reanalysis_count,
            max_reanalyses,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn each_decision_moves_the_schedule() {
        let enter = progress(&schedule(0, 5), Decision::Enter, 60_000);
        assert_eq!(
            (
                enter.status.as_str(),
                enter.is_active,
                enter.reanalysis_count
            ),
            ("in_position", false, 1)
        );
        assert_eq!(enter.consecutive_errors, 0, "a success resets the streak");
        assert_eq!(enter.last_candle_time, 60_000);
        let abandon = progress(&schedule(2, 5), Decision::Abandon, 0);
        assert_eq!(
            (abandon.status.as_str(), abandon.is_active),
            ("expired", false)
        );
        let wait = progress(&schedule(3, 5), Decision::Continue, 0);
        assert_eq!(
            (wait.status.as_str(), wait.is_active, wait.reanalysis_count),
            ("monitoring", true, 4)
        );
    }

    #[test]
    fn the_last_allowed_analysis_that_is_not_enter_expires_it() {
        let last = progress(&schedule(4, 5), Decision::Continue, 0);
        assert_eq!(
            (last.status.as_str(), last.reanalysis_count),
            ("expired", 5)
        );
        // An enter on the last one still enters.
        let entered = progress(&schedule(4, 5), Decision::Enter, 0);
        assert_eq!(entered.status, "in_position");
        assert_eq!(Decision::parse("hold"), None);
        assert_eq!(Decision::parse("continue"), Some(Decision::Continue));
    }
}
