//! The `monitoring-service` binary: see `monitoring_service::cli`.

fn main() -> std::process::ExitCode {
    monitoring_service::cli::main()
}
