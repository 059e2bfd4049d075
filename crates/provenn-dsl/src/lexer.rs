//! Tokens with positions.
use crate::error::{DslError, Span};

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Identifier or keyword.
    Ident(String),
    /// Numeric literal, kept as written (converted exactly later).
    Num(String),
    /// Double-quoted string.
    Str(String),
    /// Punctuation or operator.
    Sym(&'static str),
    /// End of input.
    Eof,
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Kind.
    pub tok: Tok,
    /// Position.
    pub span: Span,
}

const SYMS: &[&str] = &[
    "<=>", "=>", "<=", ">=", "==", "!=", "..", "(", ")", "[", "]", "{", "}", ",", ":", ";", ".",
    "+", "-", "*", "/", "^", "<", ">", "=",
];

/// Appends a token of `len` characters starting at `span`; returns `len` (columns consumed).
fn push(out: &mut Vec<Token>, tok: Tok, span: Span, len: usize) -> usize {
    out.push(Token {
        tok,
        span: Span { len, ..span },
    });
    len
}

/// Splits `src` into tokens. Comments run from `#` or `//` to the end of the line.
pub fn lex(src: &str) -> Result<Vec<Token>, DslError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    while i < chars.len() {
        let c = chars[i];
        let span = Span { line, col, len: 1 };
        if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        if c == '#' || (c == '/' && chars.get(i + 1) == Some(&'/')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_digit()
            || (c == '.'
                && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())
                && !matches!(
                    out.last(),
                    Some(Token {
                        tok: Tok::Ident(_),
                        ..
                    }) | Some(Token {
                        tok: Tok::Sym(")" | "]"),
                        ..
                    })
                ))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (chars[i] == '.' && chars.get(i + 1) != Some(&'.')))
            {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let save = i;
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                if i < chars.len() && chars[i].is_ascii_digit() {
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = save;
                }
            }
            let text: String = chars[start..i].iter().collect();
            col += push(&mut out, Tok::Num(text), span, i - start);
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            col += push(&mut out, Tok::Ident(text), span, i - start);
            continue;
        }
        if c == '"' {
            let start = i;
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\n' {
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() || chars[i] != '"' {
                return Err(DslError::new(
                    span,
                    "unterminated string",
                    "a closing `\"` on the same line",
                    &chars[start..i].iter().collect::<String>(),
                ));
            }
            i += 1;
            col += push(&mut out, Tok::Str(s), span, i - start);
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
        match SYMS.iter().find(|s| rest.starts_with(*s)) {
            Some(s) => {
                i += s.len(); // symbols are ASCII
                col += push(&mut out, Tok::Sym(s), span, s.len());
            }
            None => {
                return Err(DslError::new(
                    span,
                    "unexpected character",
                    "an operator, name, number or string",
                    &c.to_string(),
                ));
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        span: Span { line, col, len: 0 },
    });
    Ok(out)
}
