fn main() {
    // cargo runs shipit as its rustc in shipit's builds, to keep paths out of binaries.
    if let Some(code) = shipit::remap::run_shim() {
        std::process::exit(code);
    }
    std::process::exit(shipit::commands::main().code());
}
