fn main() {
    std::process::exit(shipit::commands::main().code());
}
