//! The `connlog` binary.

fn main() -> std::process::ExitCode {
    connlog::cli::main()
}
