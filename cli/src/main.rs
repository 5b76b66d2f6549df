//! The `hearth` binary: everything lives in the `hearth_cli` library so the tests can build
//! the very same program.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hearth_cli::main()
}
