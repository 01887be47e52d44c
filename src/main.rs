fn main() -> std::process::ExitCode {
    feedfold::cli::main()
}
