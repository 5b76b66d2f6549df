//! `hearth-relay`, exactly as sync-server/ builds it, under a name the end-to-end tests can
//! locate.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hearth_relay::cli::main()
}
