//! The one outbound HTTP client builder.

use std::time::Duration;

/// Who we say we are.
pub const USER_AGENT: &str = concat!("monitoring-service/", env!("CARGO_PKG_VERSION"));

/// How long a connection may take to open, unless a caller's own limit is shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A client builder with what every outbound client of ours shares: no redirects
/// followed (a redirect could lead a request, and its secrets, anywhere), our user
/// agent, connections opened within `limit` (at most 3 s) and idle ones kept 90 s.
/// Callers add their own limits (`timeout`, `read_timeout`, pool size, a resolver).
pub fn client_builder(limit: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(limit))
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
}
