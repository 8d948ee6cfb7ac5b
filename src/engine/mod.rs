//! Evaluation: three-valued logic, the compiled logic tree, and the per-batch context
//! in which conditions are evaluated (market snapshot plus indicators computed once).

mod batch_context;
mod tree;
mod tri;

pub use batch_context::{BatchContext, IndicatorKey};
pub use tree::{LogicTree, MAX_DEPTH, MAX_NODES};
pub use tri::Tri;
