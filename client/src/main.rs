//! `kith`: the client binary. Everything lives in the library.
fn main() -> std::process::ExitCode {
    kith_app::main()
}
