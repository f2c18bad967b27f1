//! Quoting values into generated text: scripts (always single quotes, so a value is never
//! code whatever it holds) and XML.

/// `'text'` for POSIX sh: every `'` closed, escaped and reopened.
pub fn sh(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `'text'` for PowerShell. PowerShell ends a single-quoted string at any of four quote
/// characters (`'`, `‘`, `’`, `‚`, `‛` count as one), so each is doubled.
pub fn powershell(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Text for an XML element or attribute: markup escaped, characters XML 1.0 cannot hold
/// dropped (a header from an untrusted package can hold anything).
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quotes_close_escape_and_reopen() {
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh("$(x) `y`"), "'$(x) `y`'");
    }

    #[test]
    fn powershell_quotes_double_smart_single_quotes_too() {
        assert_eq!(powershell("it's"), "'it''s'");
        // U+2019 would end the string in PowerShell: `'a’; Remove-Item x; ’'`.
        assert_eq!(powershell("a\u{2019}; x"), "'a\u{2019}\u{2019}; x'");
        assert_eq!(
            powershell("\u{2018}\u{201A}\u{201B}"),
            "'\u{2018}\u{2018}\u{201A}\u{201A}\u{201B}\u{201B}'"
        );
        assert_eq!(powershell("$env:X \"y\""), "'$env:X \"y\"'");
    }
}
