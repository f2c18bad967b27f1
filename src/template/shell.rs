//! Template values in `run` command lines, kept out of the shell's parser.
//!
//! Quoting a value is right only in the one context the quoting was written for: a value quoted
//! as a bare word runs as code inside `"..."`, in an unquoted heredoc or in the script of
//! `sh -c`. So a printed value never becomes shell text at all. Rendering prints a marker in its
//! place; each marker becomes a reference to an environment variable (`"${SHIPIT_VALUE_0}"`), and
//! the value travels in that variable, which the shell expands without parsing it.
//!
//! A reference means what the author meant only as a word, or part of one, outside quotes; so a
//! marker anywhere else (quotes, heredocs, backticks, `${...}`, `$((...))`, the script of `sh -c`,
//! `eval`, `ssh`) is refused: from the template's source in `shipit check`, and again from the
//! rendered text when the plan is made, which also sees through `{% if %}` and loops.

use std::fmt;

/// What stands for a printed value in rendered text, before it becomes a variable reference.
/// Refused in the template's own text, so every occurrence is a value.
pub(super) const MARKER: char = '\u{1}';

/// The environment variable that carries the `index`th value of a command.
pub fn variable(index: usize) -> String {
    format!("SHIPIT_VALUE_{index}")
}

/// Where a value stood that a shell would parse, or that only means something as a bare word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `'...'` or `$'...'`.
    SingleQuotes,
    /// `"..."`.
    DoubleQuotes,
    /// The body of a heredoc.
    Heredoc,
    /// The delimiter word after `<<`.
    HeredocDelimiter,
    /// `` `...` ``.
    Backticks,
    /// `${...}`.
    Parameter,
    /// `$((...))`.
    Arithmetic,
    /// Right after `\` or `$`, which would change what the reference means.
    Escaped,
    /// The script argument of `sh -c` (or another shell's).
    ShellScript,
    /// An argument of `eval`.
    Eval,
    /// An argument of `ssh`, which joins them into a remote shell's command line.
    Ssh,
}

impl Refusal {
    /// How to write the command instead.
    pub fn hint(self) -> &'static str {
        match self {
            Refusal::SingleQuotes | Refusal::DoubleQuotes => {
                "put the value outside the quotes, where it stays one word: `echo \"building \"{{ branch }}`"
            }
            Refusal::Heredoc | Refusal::HeredocDelimiter => {
                "write the value with printf instead: `printf '%s\\n' {{ branch }} > notes.txt`"
            }
            Refusal::Backticks => "use `$(...)`, where a value may stand as a word",
            Refusal::Parameter | Refusal::Arithmetic | Refusal::Escaped => {
                "give the value its own word, outside quotes and expansions"
            }
            Refusal::ShellScript => {
                "pass the value as an argument after the script: `sh -c 'echo \"$1\"' sh {{ branch }}`"
            }
            Refusal::Eval => "eval parses its arguments as code; run the command without eval",
            Refusal::Ssh => {
                "ssh hands its arguments to the remote shell as code; send the value on stdin or in a file"
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::SingleQuotes => "a template value inside single quotes",
            Refusal::DoubleQuotes => "a template value inside double quotes",
            Refusal::Heredoc => "a template value inside a heredoc",
            Refusal::HeredocDelimiter => "a template value as a heredoc delimiter",
            Refusal::Backticks => "a template value inside backticks",
            Refusal::Parameter => "a template value inside `${...}`",
            Refusal::Arithmetic => "a template value inside `$((...))`",
            Refusal::Escaped => "a template value right after `\\` or `$`",
            Refusal::ShellScript => "a template value in the script of a shell's `-c`",
            Refusal::Eval => "a template value given to `eval`",
            Refusal::Ssh => {
                "a template value in an `ssh` command, which runs it on the remote shell"
            }
        })
    }
}

/// Replaces each marker in `rendered` with a quoted reference to its variable, or says which
/// marker (counting from 0) stands where a shell would parse it.
pub fn substitute(rendered: &str) -> Result<String, (usize, Refusal)> {
    scan(rendered)?;
    let mut out = String::with_capacity(rendered.len());
    let mut index = 0;
    for c in rendered.chars() {
        if c == MARKER {
            out.push_str(&format!("\"${{{}}}\"", variable(index)));
            index += 1;
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A nesting level of the shell's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// The script itself, `$(...)` (`substitution`), counting plain `(` inside.
    Code {
        substitution: bool,
        parens: u32,
    },
    Double,
    Parameter {
        braces: u32,
    },
    Arithmetic {
        parens: u32,
    },
}

/// The words of the simple command being read, for the commands that parse their arguments.
#[derive(Default)]
struct Command {
    words: Vec<String>,
    word: String,
    in_word: bool,
    value_in_word: Option<usize>,
}

impl Command {
    fn push(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    /// Ends the current word; a value in it is refused when the command re-parses it.
    fn end_word(&mut self) -> Result<(), (usize, Refusal)> {
        if !self.in_word {
            return Ok(());
        }
        if let Some((index, refusal)) = self.value_in_word.take().zip(reparsed(&self.words)) {
            return Err((index, refusal));
        }
        self.words.push(std::mem::take(&mut self.word));
        self.in_word = false;
        Ok(())
    }

    fn end_command(&mut self) -> Result<(), (usize, Refusal)> {
        self.end_word()?;
        self.words.clear();
        Ok(())
    }
}

const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "su",
];

/// Whether a word after `before` in one simple command is parsed again as shell code.
fn reparsed(before: &[String]) -> Option<Refusal> {
    let base = |w: &String| w.rsplit('/').next().unwrap_or(w).to_string();
    if before.iter().any(|w| w == "eval") {
        return Some(Refusal::Eval);
    }
    if before.iter().any(|w| base(w) == "ssh") {
        return Some(Refusal::Ssh);
    }
    let script_flag = before
        .last()
        .is_some_and(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('c'));
    if script_flag && before.iter().any(|w| SHELLS.contains(&base(w).as_str())) {
        return Some(Refusal::ShellScript);
    }
    None
}

/// A heredoc whose body starts at the next line.
struct Pending {
    delimiter: String,
    strip_tabs: bool,
}

/// Reads `text` as `sh` would, and finds the first marker that stands anywhere but as (part of)
/// a bare word.
fn scan(text: &str) -> Result<(), (usize, Refusal)> {
    let chars: Vec<char> = text.chars().collect();
    let mut stack = vec![Frame::Code {
        substitution: false,
        parens: 0,
    }];
    let mut commands = vec![Command::default()];
    let mut heredocs: Vec<Pending> = Vec::new();
    let mut value = 0usize;
    let mut i = 0;
    // Counts markers in a stretch the scanner skips, refusing the first one.
    let refuse_in = |from: usize, to: usize, value: usize, why: Refusal| {
        if chars[from..to].contains(&MARKER) {
            Err((value, why))
        } else {
            Ok(())
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let Some(&frame) = stack.last() else { break };
        match frame {
            Frame::Code {
                substitution,
                parens,
            } => {
                let Some(command) = commands.last_mut() else {
                    break;
                };
                match c {
                    MARKER => {
                        command.in_word = true;
                        command.value_in_word.get_or_insert(value);
                        value += 1;
                    }
                    '\\' => match next {
                        Some(MARKER) => return Err((value, Refusal::Escaped)),
                        Some('\n') => i += 1,
                        Some(n) => {
                            command.push(n);
                            i += 1;
                        }
                        None => {}
                    },
                    '#' if !command.in_word => {
                        while i + 1 < chars.len() && chars[i + 1] != '\n' {
                            if chars[i + 1] == MARKER {
                                value += 1;
                            }
                            i += 1;
                        }
                    }
                    '\'' => {
                        let end = closing_single(&chars, i + 1, false);
                        refuse_in(i + 1, end, value, Refusal::SingleQuotes)?;
                        command.in_word = true;
                        command.word.extend(&chars[i + 1..end]);
                        i = end;
                    }
                    '"' => {
                        command.in_word = true;
                        stack.push(Frame::Double);
                    }
                    '`' => {
                        let end = closing_backtick(&chars, i + 1);
                        refuse_in(i + 1, end, value, Refusal::Backticks)?;
                        command.in_word = true;
                        i = end;
                    }
                    '$' => {
                        command.in_word = true;
                        i = dollar(&chars, i, value, &mut stack, &mut commands, true)?;
                    }
                    '(' => {
                        command.end_command()?;
                        set_parens(&mut stack, parens + 1);
                    }
                    ')' => {
                        command.end_command()?;
                        if parens > 0 {
                            set_parens(&mut stack, parens - 1);
                        } else if substitution {
                            stack.pop();
                            commands.pop();
                        }
                    }
                    // `<<<` is a here-string: the word after it is a word like any other.
                    '<' if next == Some('<') && chars.get(i + 2) == Some(&'<') => {
                        command.end_word()?;
                        i += 2;
                    }
                    '<' if next == Some('<') => {
                        command.end_word()?;
                        let (pending, end) = heredoc_operator(&chars, i + 2, value)?;
                        heredocs.push(pending);
                        i = end;
                        continue;
                    }
                    '\n' => {
                        command.end_command()?;
                        for pending in heredocs.drain(..) {
                            i = heredoc_body(&chars, i + 1, &pending, value)?;
                        }
                    }
                    ';' | '&' | '|' => command.end_command()?,
                    ' ' | '\t' | '<' | '>' => command.end_word()?,
                    c => command.push(c),
                }
            }
            Frame::Double => match c {
                MARKER => return Err((value, Refusal::DoubleQuotes)),
                '\\' => i += 1,
                '"' => {
                    stack.pop();
                }
                '`' => {
                    let end = closing_backtick(&chars, i + 1);
                    refuse_in(i + 1, end, value, Refusal::Backticks)?;
                    i = end;
                }
                '$' => i = dollar(&chars, i, value, &mut stack, &mut commands, false)?,
                c => {
                    if let Some(command) = commands.last_mut() {
                        command.word.push(c);
                    }
                }
            },
            Frame::Parameter { braces } => match c {
                MARKER => return Err((value, Refusal::Parameter)),
                '\\' => i += 1,
                '{' => set_braces(&mut stack, braces + 1),
                '}' if braces == 0 => {
                    stack.pop();
                }
                '}' => set_braces(&mut stack, braces - 1),
                '"' => stack.push(Frame::Double),
                '\'' => {
                    let end = closing_single(&chars, i + 1, false);
                    refuse_in(i + 1, end, value, Refusal::Parameter)?;
                    i = end;
                }
                '$' => i = dollar(&chars, i, value, &mut stack, &mut commands, false)?,
                _ => {}
            },
            Frame::Arithmetic { parens } => match c {
                MARKER => return Err((value, Refusal::Arithmetic)),
                '(' => set_parens(&mut stack, parens + 1),
                ')' if parens == 0 && next == Some(')') => {
                    stack.pop();
                    i += 1;
                }
                ')' => set_parens(&mut stack, parens.saturating_sub(1)),
                '$' => i = dollar(&chars, i, value, &mut stack, &mut commands, false)?,
                _ => {}
            },
        }
        i += 1;
    }
    for command in commands.iter_mut().rev() {
        command.end_word()?;
    }
    Ok(())
}

/// Reads what follows a `$` at `at`, pushing the frame it opens; returns the last index read.
fn dollar(
    chars: &[char],
    at: usize,
    value: usize,
    stack: &mut Vec<Frame>,
    commands: &mut Vec<Command>,
    bare: bool,
) -> Result<usize, (usize, Refusal)> {
    let next = chars.get(at + 1).copied();
    match next {
        Some(MARKER) => Err((value, Refusal::Escaped)),
        Some('(') if chars.get(at + 2) == Some(&'(') => {
            stack.push(Frame::Arithmetic { parens: 0 });
            Ok(at + 2)
        }
        Some('(') => {
            stack.push(Frame::Code {
                substitution: true,
                parens: 0,
            });
            commands.push(Command::default());
            Ok(at + 1)
        }
        Some('{') => {
            stack.push(Frame::Parameter { braces: 0 });
            Ok(at + 1)
        }
        Some('\'') if bare => {
            let end = closing_single(chars, at + 2, true);
            if chars[at + 2..end].contains(&MARKER) {
                return Err((value, Refusal::SingleQuotes));
            }
            Ok(end)
        }
        Some('"') if bare => {
            stack.push(Frame::Double);
            Ok(at + 1)
        }
        _ => Ok(at),
    }
}

/// The index of the `'` closing a quote that starts at `from` (or the end of the text).
fn closing_single(chars: &[char], from: usize, escapes: bool) -> usize {
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '\\' if escapes => i += 1,
            '\'' => return i,
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

/// The index of the `` ` `` closing a command substitution that starts at `from`.
fn closing_backtick(chars: &[char], from: usize) -> usize {
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '`' => return i,
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

fn set_parens(stack: &mut [Frame], to: u32) {
    if let Some(Frame::Code { parens, .. } | Frame::Arithmetic { parens }) = stack.last_mut() {
        *parens = to;
    }
}

fn set_braces(stack: &mut [Frame], to: u32) {
    if let Some(Frame::Parameter { braces }) = stack.last_mut() {
        *braces = to;
    }
}

/// Reads the delimiter after `<<` (or `<<-`) from `from`; returns it and the index after it.
fn heredoc_operator(
    chars: &[char],
    from: usize,
    value: usize,
) -> Result<(Pending, usize), (usize, Refusal)> {
    let mut i = from;
    let strip_tabs = chars.get(i) == Some(&'-');
    if strip_tabs {
        i += 1;
    }
    while matches!(chars.get(i), Some(' ' | '\t')) {
        i += 1;
    }
    let mut delimiter = String::new();
    let mut quote: Option<char> = None;
    while let Some(&c) = chars.get(i) {
        match (quote, c) {
            (_, MARKER) => return Err((value, Refusal::HeredocDelimiter)),
            (None, ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')') => break,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '\\') => {
                i += 1;
                if let Some(&n) = chars.get(i) {
                    delimiter.push(n);
                }
            }
            (_, c) => delimiter.push(c),
        }
        i += 1;
    }
    Ok((
        Pending {
            delimiter,
            strip_tabs,
        },
        i,
    ))
}

/// Skips a heredoc body starting at `from`; returns the index of the newline ending its
/// delimiter line (or the end of the text). Any marker in the body is refused: quoted or not, a heredoc is
/// no place for a reference to mean the value.
fn heredoc_body(
    chars: &[char],
    from: usize,
    pending: &Pending,
    value: usize,
) -> Result<usize, (usize, Refusal)> {
    let mut start = from;
    while start < chars.len() {
        let end = chars[start..]
            .iter()
            .position(|&c| c == '\n')
            .map_or(chars.len(), |p| start + p);
        let line: String = chars[start..end].iter().collect();
        let line = if pending.strip_tabs {
            line.trim_start_matches('\t')
        } else {
            line.as_str()
        };
        if line == pending.delimiter {
            return Ok(end);
        }
        if line.contains(MARKER) {
            return Err((value, Refusal::Heredoc));
        }
        start = end + 1;
    }
    Ok(chars.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(text: &str) -> Result<(), Refusal> {
        scan(&text.replace("{}", &MARKER.to_string())).map_err(|(_, why)| why)
    }

    #[test]
    fn bare_words_and_substitutions_are_fine() {
        for ok in [
            "echo {}",
            "echo v{}-x {}",
            "FOO={} cargo build > dist/{}.txt",
            "echo \"$(git log {})\"",
            "echo $(echo {})",
            "if [ {} = main ]; then echo 'on main' {}; fi",
            "cat <<'EOT'\nliteral\nEOT\necho {}",
            "echo hi # {} in a comment",
            "sh -c 'echo \"$1\"' sh {}",
            "echo ${HOME} {} $((1 + 2)) {}",
            "(cd sub && make {})",
            "tr a-z A-Z <<< {}",
        ] {
            assert_eq!(verdict(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn every_parsed_context_is_refused() {
        for (text, why) in [
            ("echo \"building {}\"", Refusal::DoubleQuotes),
            ("echo 'building {}'", Refusal::SingleQuotes),
            ("echo $'x{}'", Refusal::SingleQuotes),
            ("sh -c 'echo {}'", Refusal::SingleQuotes),
            ("sh -c {}", Refusal::ShellScript),
            ("bash -ec {}", Refusal::ShellScript),
            ("eval echo {}", Refusal::Eval),
            ("ssh host echo {}", Refusal::Ssh),
            ("cat <<EOT\n{}\nEOT", Refusal::Heredoc),
            ("cat <<-'EOT'\n\tx {}\n\tEOT", Refusal::Heredoc),
            ("cat <<{}\nx\n", Refusal::HeredocDelimiter),
            ("echo `echo {}`", Refusal::Backticks),
            ("echo ${X:-{}}", Refusal::Parameter),
            ("echo $(( {} + 1 ))", Refusal::Arithmetic),
            ("echo \\{}", Refusal::Escaped),
            ("echo ${}", Refusal::Escaped),
            ("echo \"$(echo \"{}\")\"", Refusal::DoubleQuotes),
        ] {
            assert_eq!(verdict(text), Err(why), "{text}");
        }
    }

    #[test]
    fn a_heredoc_ends_at_its_delimiter() {
        assert_eq!(verdict("cat <<EOT\nbody\nEOT\necho {}"), Ok(()));
        assert_eq!(verdict("cat <<EOT; echo {}\nbody\nEOT"), Ok(()));
        assert_eq!(verdict("cat <<EOT\nEOTX {}\nEOT"), Err(Refusal::Heredoc));
    }

    #[test]
    fn markers_become_quoted_references_in_order() {
        let text = format!("echo v{MARKER} {MARKER}");
        assert_eq!(
            substitute(&text).unwrap(),
            r#"echo v"${SHIPIT_VALUE_0}" "${SHIPIT_VALUE_1}""#
        );
        assert_eq!(
            substitute(&format!("echo '{MARKER}'")).unwrap_err(),
            (0, Refusal::SingleQuotes)
        );
    }
}
