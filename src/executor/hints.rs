//! What a failure's output says that the user can act on: known failures of the tools shipit
//! runs, recognised in the last lines of output, each with the fix in one sentence. The raw
//! output stays beside it; a hint only adds.

/// A recognised failure: lines that mark it (any of them), and the fix.
struct Known {
    marks: &'static [&'static str],
    hint: &'static str,
}

const KNOWN: &[Known] = &[Known {
    // zig's and ld64's words for a framework or Apple library it cannot find.
    marks: &[
        "unable to find framework",
        "framework not found",
        "library not found for -lobjc",
        "unable to find dynamic system library 'objc'",
        "unable to find dynamic system library 'System'",
        "-framework",
    ],
    hint: "this macOS target links Apple frameworks or libraries (`-framework …`, `-lobjc`), \
           which are in the macOS SDK, not on this machine: point `SDKROOT` at a MacOSX.sdk \
           folder (on a Mac, `xcrun --sdk macosx --show-sdk-path`; the SDK's license allows \
           using it only on Apple hardware) and build again; `shipit build --keep-going` \
           builds, packages and releases the other targets meanwhile",
}];

/// The hint for a unit that failed with `tail` as its last lines of output, for `target`.
pub fn for_failure(target: Option<&str>, tail: &[String]) -> Option<&'static str> {
    let darwin = target.is_some_and(|t| t.contains("darwin") || t.contains("apple"));
    KNOWN
        .iter()
        .filter(|_| darwin)
        .find(|known| {
            tail.iter()
                .any(|line| known.marks.iter().any(|mark| line.contains(mark)))
        })
        .map(|known| known.hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_framework_on_a_darwin_target_points_at_sdkroot() {
        let tail = vec![
            "error: linking with `cargo-zigbuild` failed: exit status: 1".to_string(),
            "  = note: error: unable to find framework 'Foundation'".to_string(),
        ];
        let hint = for_failure(Some("aarch64-apple-darwin"), &tail).unwrap();
        assert!(
            hint.contains("SDKROOT") && hint.contains("--keep-going"),
            "{hint}"
        );
        assert_eq!(for_failure(Some("x86_64-unknown-linux-musl"), &tail), None);
        assert_eq!(
            for_failure(Some("aarch64-apple-darwin"), &["ok".into()]),
            None
        );
    }
}
