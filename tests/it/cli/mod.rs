//! The operator CLI against a running service.

mod cli_operations;
mod commands;
