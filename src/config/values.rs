//! Typed values of the pipeline file, parsed and bounded while the file is read: a bad one is
//! a located problem of `shipit check`, never a surprise later.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::bounds::{MAX_DURATION, MAX_SIZE};

/// A length of time written as `90s`, `10m`, `1h30m` or `500ms`, at most
/// [`MAX_DURATION`]. `0` and `0s` are zero; each key says what zero means (or refuses it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

/// A number of bytes written as `16MiB`, `512k` or `1048576`: more than zero, at most
/// [`MAX_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(u64);

/// Why a written value is not a [`Duration`] or a [`Size`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a {kind} ({reason})")]
pub struct ValueError {
    /// `duration` or `size`.
    pub kind: &'static str,
    /// The value as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What the diagnostic says under a value's problem, and its hint, when `message` is a
/// [`ValueError`]'s.
pub(super) fn hint(message: &str) -> Option<(&'static str, &'static str)> {
    if message.contains(" is not a duration (") {
        Some((
            "not a duration",
            "write a number with a unit, like `90s`, `10m` or `1h30m`, at most 7 days",
        ))
    } else if message.contains(" is not a size (") {
        Some((
            "not a size",
            "write a number of bytes with a unit, like `16MiB` or `512KiB`",
        ))
    } else {
        None
    }
}

impl Duration {
    /// Zero.
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    /// A duration from the standard one; `None` past [`MAX_DURATION`].
    pub const fn new(value: std::time::Duration) -> Option<Duration> {
        if value.as_secs() > MAX_DURATION.as_secs()
            || (value.as_secs() == MAX_DURATION.as_secs() && value.subsec_nanos() > 0)
        {
            None
        } else {
            Some(Duration(value))
        }
    }

    /// Parses a duration as the pipeline file writes it.
    pub fn parse(text: &str) -> Result<Duration, ValueError> {
        let error = |reason: String| ValueError {
            kind: "duration",
            text: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        if matches!(trimmed, "0" | "0s") {
            return Ok(Duration::ZERO);
        }
        let value = humantime::parse_duration(trimmed).map_err(|e| error(e.to_string()))?;
        Duration::new(value).ok_or_else(|| {
            error(format!(
                "longer than the longest allowed, {}",
                humantime::format_duration(MAX_DURATION)
            ))
        })
    }

    /// The standard duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whether it is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for std::time::Duration {
    fn from(value: Duration) -> Self {
        value.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            f.write_str("0s")
        } else {
            write!(f, "{}", humantime::format_duration(self.0))
        }
    }
}

impl Size {
    /// Parses a size as the pipeline file writes it.
    pub fn parse(text: &str) -> Result<Size, ValueError> {
        let error = |reason: String| ValueError {
            kind: "size",
            text: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| error("expected a number of bytes".into()))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            other => return Err(error(format!("unknown unit `{other}`"))),
        };
        match number.checked_mul(factor) {
            Some(0) => Err(error("must be more than zero".into())),
            Some(bytes) if bytes <= MAX_SIZE => Ok(Size(bytes)),
            _ => Err(error(format!(
                "more than the largest allowed, {}",
                Size(MAX_SIZE)
            ))),
        }
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, factor) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0.is_multiple_of(factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// Both are written as strings; the file may hold anything there.
fn from_text<'de, D, T>(
    deserializer: D,
    parse: fn(&str) -> Result<T, ValueError>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let text = Cow::<str>::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_text(deserializer, Duration::parse)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_text(deserializer, Size::parse)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with a unit: `90s`, `10m`, `1h30m`, `500ms`; at most 7 days.",
            "examples": ["30s", "10m"]
        })
    }
}

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A number of bytes with an optional unit: `16MiB`, `512KiB`, `1048576`.",
            "examples": ["16MiB"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_stay_in_bounds() {
        assert_eq!(Duration::parse("90s").unwrap().get().as_secs(), 90);
        assert_eq!(Duration::parse(" 1h30m ").unwrap().get().as_secs(), 5400);
        assert!(Duration::parse("0").unwrap().is_zero());
        assert!(Duration::parse("0s").unwrap().is_zero());
        assert_eq!(Duration::parse("7days").unwrap().get(), MAX_DURATION);
        let long = Duration::parse("100000000000000s").unwrap_err();
        assert!(long.to_string().contains("longest allowed"), "{long}");
        let bad = Duration::parse("soon").unwrap_err();
        assert!(
            bad.to_string().starts_with("`soon` is not a duration ("),
            "{bad}"
        );
        assert!(hint(&bad.to_string()).is_some());
        assert_eq!(Duration::parse("1m30s").unwrap().to_string(), "1m 30s");
    }

    #[test]
    fn sizes_parse_with_units_and_stay_in_bounds() {
        assert_eq!(Size::parse("16MiB").unwrap().bytes(), 16 << 20);
        assert_eq!(Size::parse("512k").unwrap().bytes(), 512 << 10);
        assert_eq!(Size::parse("1048576").unwrap().bytes(), 1 << 20);
        assert!(Size::parse("0").is_err());
        assert!(Size::parse("12 parsecs").is_err());
        assert_eq!(Size::parse("64KiB").unwrap().to_string(), "64KiB");
    }

    /// Regression: `18446744073709551615G` overflowed the multiplication (a panic in debug
    /// builds, a wrapped chunk size in release builds).
    #[test]
    fn a_size_whose_unit_overflows_is_an_error_not_a_panic() {
        let error = Size::parse("18446744073709551615G").unwrap_err();
        assert!(error.reason.contains("largest allowed"), "{error}");
        assert!(Size::parse("5GiB").is_err());
    }
}

/// Where a signing key is: `{ file = "...", password_env = "..." }` or `{ env = "...",
/// password_env = "..." }`. The key's text never enters the file, only where to find it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct KeyConfig {
    /// A secret key file, relative to the pipeline file.
    pub file: Option<String>,
    /// An environment variable holding the key file's text.
    pub env: Option<String>,
    /// An environment variable holding the key's password (unencrypted keys need none).
    pub password_env: Option<String>,
    /// Keyless signing through Sigstore (sign stages only): `true` for the public-good
    /// instance, or `{ fulcio = "...", rekor = "...", trusted_root = "..." }` for another.
    pub sigstore: Option<SigstoreKey>,
}

impl KeyConfig {
    /// The Sigstore instance when keyless signing is on.
    pub fn keyless(&self) -> Option<SigstoreInstance> {
        match &self.sigstore {
            Some(SigstoreKey::On(true)) => Some(SigstoreInstance::default()),
            Some(SigstoreKey::Instance(instance)) => Some(instance.clone()),
            _ => None,
        }
    }
}

/// `sigstore = true`, or the instance to use.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SigstoreKey {
    /// The public-good instance (`true`), or off.
    On(bool),
    /// Another instance.
    Instance(SigstoreInstance),
}

/// A Sigstore instance: its Fulcio and Rekor, and the trusted root that checks what they
/// answer (the public-good ones when unset).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigstoreInstance {
    /// Fulcio's address. Default: `https://fulcio.sigstore.dev`.
    pub fulcio: Option<String>,
    /// Rekor's address. Default: `https://rekor.sigstore.dev`.
    pub rekor: Option<String>,
    /// The instance's `trusted_root.json`, relative to the pipeline file; each bundle is
    /// checked against it once written. Default: the public-good root shipit ships.
    pub trusted_root: Option<String>,
}
