//! Operational alerts: lifecycle, silences, streams and notifications.

mod lifecycle;
mod ops_alert_notifications;
