//! Alertmanager's API v2 (DESIGN §18), spoken over our one alert model so Prometheus,
//! amtool, Grafana and Karma work against the service unchanged: the wire format of
//! Alertmanager 0.25's `api/v2/openapi.yaml` (a copy under `tests/alertmanager/`) and
//! its translation to and from our episodes and silences. The routes are in
//! `http::alertmanager`; the lifecycle is `ops_alerts`'.

pub mod alerts;
pub mod posted;
pub mod query;
pub mod silences;
pub mod status;

pub use alerts::{AlertGroup, GettableAlert, Receiver, gettable, groups, labels_of, wanted};
pub use posted::parse_alerts;
pub use query::{ListQuery, parse as parse_query};
pub use silences::{GettableSilence, matches_filter, parse_postable};
pub use status::{AlertmanagerStatus, Routing, render_config};
