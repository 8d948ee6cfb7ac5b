//! Batches: evaluation on schedule and on demand, the paths simulate shares, and the indicators' golden values.

mod batch_runs;
mod evaluation_paths;
mod indicators_golden;
mod simulate;
