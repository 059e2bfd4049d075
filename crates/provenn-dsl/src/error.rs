use std::fmt;

/// A position in constraint text (1-based line and column, length in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Span {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
    /// Length.
    pub len: usize,
}

/// A parse or type error: where, what was found, what was expected, and a suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DslError {
    /// Position.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// What would have been accepted.
    pub expected: String,
    /// The offending text.
    pub found: String,
    /// "did you mean …" for unknown names.
    pub suggestion: Option<String>,
}

impl DslError {
    pub(crate) fn new(
        span: Span,
        message: impl Into<String>,
        expected: impl Into<String>,
        found: &str,
    ) -> Self {
        DslError {
            span,
            message: message.into(),
            expected: expected.into(),
            found: found.to_string(),
            suggestion: None,
        }
    }

    pub(crate) fn suggest(mut self, s: Option<String>) -> Self {
        self.suggestion = s;
        self
    }
}

impl fmt::Display for DslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.span.line, self.span.col, self.message)?;
        if !self.found.is_empty() {
            write!(f, " at `{}`", self.found)?;
        }
        if !self.expected.is_empty() {
            write!(f, "; expected {}", self.expected)?;
        }
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        }
        Ok(())
    }
}

impl std::error::Error for DslError {}

/// Levenshtein distance, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `name`, if close enough to be a plausible typo.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(name.chars().count()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}
