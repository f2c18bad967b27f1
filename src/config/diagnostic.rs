//! Configuration problems with source locations, rendered miette-style.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// One thing wrong with a pipeline file: what, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The headline, e.g. "unknown key `nedes` in stage `test`".
    pub message: String,
    /// Byte range in the pipeline file the problem points at.
    pub span: Option<Range<usize>>,
    /// Short text shown under the caret.
    pub label: Option<String>,
    /// A suggestion for the fix.
    pub help: Option<String>,
}

impl Problem {
    /// A problem at `span` with the given message.
    pub fn new(message: impl Into<String>, span: Option<Range<usize>>) -> Self {
        Problem {
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    /// Sets the text under the caret.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the hint when there is one.
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// Every problem found in one pipeline file. Reported all at once, exit code 2.
#[derive(Debug, Clone)]
pub struct ConfigError {
    source: Arc<NamedSource<String>>,
    problems: Vec<Problem>,
}

impl ConfigError {
    /// Wraps the problems found in `text`, read from the file called `name`.
    pub fn new(name: impl AsRef<str>, text: impl Into<String>, problems: Vec<Problem>) -> Self {
        ConfigError {
            source: Arc::new(NamedSource::new(name, text.into()).with_language("TOML")),
            problems,
        }
    }

    /// The problems, in file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// One diagnostic per problem, each able to render its own snippet.
    pub fn diagnostics(&self) -> impl Iterator<Item = ProblemDiagnostic<'_>> {
        self.problems.iter().map(|problem| ProblemDiagnostic {
            source: &self.source,
            problem,
        })
    }

    /// `file:line:col` of a problem, 1-based, for plain and machine output.
    pub fn location(&self, problem: &Problem) -> String {
        let name = self.source.name();
        match &problem.span {
            Some(span) => {
                let (line, col) = line_col(self.source.inner(), span.start);
                format!("{name}:{line}:{col}")
            }
            None => name.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.len() {
            1 => write!(f, "{} has a problem", self.source.name()),
            n => write!(f, "{} has {n} problems", self.source.name()),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A single problem bound to its source text, so miette can draw the caret.
pub struct ProblemDiagnostic<'a> {
    source: &'a NamedSource<String>,
    problem: &'a Problem,
}

impl fmt::Debug for ProblemDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.problem.fmt(f)
    }
}

impl fmt::Display for ProblemDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for ProblemDiagnostic<'_> {}

impl Diagnostic for ProblemDiagnostic<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        None
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.problem
            .span
            .as_ref()
            .map(|_| self.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.problem.span.clone()?;
        let len = span.end.saturating_sub(span.start);
        let label = LabeledSpan::new(self.problem.label.clone(), span.start, len);
        Some(Box::new(std::iter::once(label)))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

pub use crate::words::did_you_mean;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // `=` after a two-byte character is the fourth character on its line.
        assert_eq!(line_col(text, 10), (2, 4));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn suggestions_need_similarity() {
        let keys = ["needs", "run", "uses", "timeout"];
        assert_eq!(did_you_mean("nedes", keys), Some("needs"));
        assert_eq!(did_you_mean("timout", keys), Some("timeout"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }
}
