//! The `hearth-relay` binary; see [`hearth_relay::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hearth_relay::cli::main()
}
