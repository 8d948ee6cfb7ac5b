//! Evaluation: three-valued logic, the compiled logic tree, and the per-batch context
//! in which conditions are evaluated (market snapshot plus indicators computed once),
//! and the validation error every part of a strategy reports with its JSON path.

mod batch_context;
mod tree;
mod tri;

pub use batch_context::{BatchContext, IndicatorKey};
pub use tree::{LogicTree, MAX_DEPTH, MAX_NODES};
pub use tri::Tri;
