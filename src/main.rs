//! The `humbex` binary: every role of the product behind one command line.

fn main() -> std::process::ExitCode {
    humbex::cli::main()
}
