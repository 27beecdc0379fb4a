//! The component's linear memory starts at 1 GiB (as a 1 GiB data segment would make it): no cap admits it.
fn main() {
    println!("cargo:rustc-link-arg-cdylib=--initial-memory=1073741824");
}
