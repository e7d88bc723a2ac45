//! `hull version`.

/// Prints the version.
pub fn main() -> i32 {
    println!("hull version {}", env!("CARGO_PKG_VERSION"));
    0
}
