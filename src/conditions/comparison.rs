//! The comparison operators shared by condition kinds, in three-valued logic.

use crate::indicators::LastTwo;
use crate::logic_tree::Tri;

/// `above`, `below`, or a cross between the previous and the current pair of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Above,
    Below,
    CrossesAbove,
    CrossesBelow,
}

impl Comparison {
    pub const NAMES: &'static str = "above, below, crosses_above, crosses_below";

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "above" => Comparison::Above,
            "below" => Comparison::Below,
            "crosses_above" => Comparison::CrossesAbove,
            "crosses_below" => Comparison::CrossesBelow,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Above => "above",
            Comparison::Below => "below",
            Comparison::CrossesAbove => "crosses_above",
            Comparison::CrossesBelow => "crosses_below",
        }
    }

    /// How a message says it held: `above`, `below`, `crossed above`, `crossed below`.
    pub fn wording(self) -> &'static str {
        match self {
            Comparison::Above => "above",
            Comparison::Below => "below",
            Comparison::CrossesAbove => "crossed above",
            Comparison::CrossesBelow => "crossed below",
        }
    }

    pub fn is_cross(self) -> bool {
        matches!(self, Comparison::CrossesAbove | Comparison::CrossesBelow)
    }

    /// Compares `left` with `right`. A cross needs both previous values: it is true when
    /// the previous pair was on or behind the line and the current pair is strictly past
    /// it. Any value it needs that is NaN makes the answer unknown.
    pub fn apply(self, left: LastTwo, right: LastTwo) -> Tri {
        let known = |values: &[f64]| values.iter().all(|v| v.is_finite());
        match self {
            Comparison::Above | Comparison::Below => {
                if !known(&[left.last, right.last]) {
                    return Tri::Unknown;
                }
                Tri::from_bool(if self == Comparison::Above {
                    left.last > right.last
                } else {
                    left.last < right.last
                })
            }
            Comparison::CrossesAbove | Comparison::CrossesBelow => {
                if !known(&[left.last, right.last, left.previous, right.previous]) {
                    return Tri::Unknown;
                }
                Tri::from_bool(if self == Comparison::CrossesAbove {
                    left.previous <= right.previous && left.last > right.last
                } else {
                    left.previous >= right.previous && left.last < right.last
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two(previous: f64, last: f64) -> LastTwo {
        LastTwo { last, previous }
    }

    #[test]
    fn crosses_need_both_sides_of_the_line() {
        let line = two(30.0, 30.0);
        assert_eq!(
            Comparison::CrossesBelow.apply(two(31.0, 29.0), line),
            Tri::True
        );
        assert_eq!(
            Comparison::CrossesBelow.apply(two(30.0, 29.0), line),
            Tri::True
        );
        assert_eq!(
            Comparison::CrossesBelow.apply(two(29.5, 29.0), line),
            Tri::False
        );
        assert_eq!(
            Comparison::CrossesAbove.apply(two(29.0, 30.0), line),
            Tri::False
        );
        assert_eq!(
            Comparison::CrossesAbove.apply(two(f64::NAN, 31.0), line),
            Tri::Unknown
        );
        assert_eq!(
            Comparison::Above.apply(two(f64::NAN, 31.0), line),
            Tri::True
        );
        assert_eq!(
            Comparison::Below.apply(two(1.0, f64::NAN), line),
            Tri::Unknown
        );
    }
}
