fn main() {
    // The triple shipit was compiled for: the fallback host when `rustc` is not on PATH.
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=SHIPIT_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
