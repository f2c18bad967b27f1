//! Words in messages, where every layer writes some.

/// `1 binary`, `2 binaries`: a count with the noun it takes.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
