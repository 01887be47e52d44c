//! Embedded migrations are read with `include_str!`; rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
