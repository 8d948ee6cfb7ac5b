//! Three-valued (Kleene) truth: a condition whose data is missing is `Unknown`.

use serde::{Serialize, Serializer};

/// True, false, or unknown (missing data). Only `True` can fire a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tri {
    False,
    Unknown,
    True,
}

impl Tri {
    pub fn from_bool(value: bool) -> Self {
        if value { Tri::True } else { Tri::False }
    }

    /// `Some(bool)` when known.
    pub fn known(self) -> Option<bool> {
        match self {
            Tri::True => Some(true),
            Tri::False => Some(false),
            Tri::Unknown => None,
        }
    }
}

/// Kleene negation: not unknown is unknown.
impl std::ops::Not for Tri {
    type Output = Tri;

    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

/// `true`, `false`, or `null` for unknown — the JSON of DESIGN.md §4.
impl Serialize for Tri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.known() {
            Some(value) => serializer.serialize_bool(value),
            None => serializer.serialize_none(),
        }
    }
}
