//! [`Invalid`]: a value from the pipeline file, the command line or an answer that breaks its
//! grammar (a name, an image reference, a tag, an address), with why. Callers place it: a
//! located problem of `shipit check`, or a usage error (exit 2).

use std::fmt;

/// A value that breaks its grammar, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

impl Invalid {
    /// Why the value is not valid, as a sentence part (`it is empty`).
    pub fn new(why: impl fmt::Display) -> Invalid {
        Invalid(why.to_string())
    }
}

impl From<String> for Invalid {
    fn from(why: String) -> Self {
        Invalid(why)
    }
}

impl From<&str> for Invalid {
    fn from(why: &str) -> Self {
        Invalid(why.to_string())
    }
}
