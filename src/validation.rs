//! Why a strategy cannot run, with the JSON path of the problem.

/// A validation failure: `path` locates the problem in the strategy
/// (`logic_tree.and[2].condition`, `conditions[1].params.period`), `message` says what
/// is wrong in words a strategy author understands. Stored in `strategies.error` as
/// `path: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error under a parent path: `period` → `conditions[1].params.period`.
    pub fn under(mut self, parent: &str) -> Self {
        self.path = if self.path.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.path)
        };
        self
    }
}
