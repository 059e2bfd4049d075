//! Reading delimited text files (optionally gzip-compressed) into string cells.
use std::io::Read;
use std::path::Path;

use crate::DataError;

/// Cells of a delimited file, with the 1-based line of each row for error messages.
#[derive(Debug, Clone)]
pub(crate) struct RawTable {
    pub file: String,
    pub header: Option<Vec<String>>,
    pub rows: Vec<Vec<String>>,
    pub lines: Vec<usize>,
}

pub(crate) fn read_text(path: &Path) -> Result<String, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let raw = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        bytes
    };
    String::from_utf8(raw)
        .map_err(|e| DataError::parse(&file_name(path), 0, format!("not UTF-8 text ({e})")))
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Parses CSV text (RFC 4180 quoting). With `header`, the first record is the header.
pub(crate) fn parse_csv(
    file: &str,
    text: &str,
    header: bool,
    delimiter: u8,
) -> Result<RawTable, DataError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            DataError::parse(file, line, e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push(rec.iter().map(|c| c.trim().to_string()).collect::<Vec<_>>());
        lines.push(line);
    }
    let header = if header && !rows.is_empty() {
        lines.remove(0);
        Some(rows.remove(0))
    } else {
        None
    };
    Ok(RawTable {
        file: file.to_string(),
        header,
        rows,
        lines,
    })
}

impl RawTable {
    /// Requires every row to have `n` cells.
    pub fn expect_width(&self, n: usize) -> Result<(), DataError> {
        for (r, row) in self.rows.iter().enumerate() {
            if row.len() != n {
                return Err(DataError::parse(
                    &self.file,
                    self.lines[r],
                    format!("expected {n} fields, found {}", row.len()),
                ));
            }
        }
        Ok(())
    }

    /// Parses cell `(r, c)` as a finite number.
    pub fn num(&self, r: usize, c: usize) -> Result<f64, DataError> {
        let cell = self.rows[r].get(c).map_or("", String::as_str);
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(DataError::parse(
                &self.file,
                self.lines[r],
                format!("field {}: expected a number, found `{cell}`", c + 1),
            )),
        }
    }

    /// Parses cell `(r, c)` as a class index `< n`.
    pub fn class(&self, r: usize, c: usize, n: usize) -> Result<usize, DataError> {
        let v = self.num(r, c)?;
        if v < 0.0 || v.fract() != 0.0 || v >= n as f64 {
            return Err(DataError::parse(
                &self.file,
                self.lines[r],
                format!("field {}: expected a class in 0..{n}, found {v}", c + 1),
            ));
        }
        Ok(v as usize)
    }

    /// Column index by header name.
    pub fn col(&self, name: &str) -> Result<usize, DataError> {
        self.header
            .as_ref()
            .and_then(|h| h.iter().position(|c| c == name))
            .ok_or_else(|| {
                DataError::parse(&self.file, 1, format!("no column `{name}` in the header"))
            })
    }

    /// Keeps only the rows for which `keep(row)` holds.
    pub fn retain(&mut self, keep: impl Fn(&[String]) -> bool) {
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for (row, line) in self.rows.drain(..).zip(self.lines.drain(..)) {
            if keep(&row) {
                rows.push(row);
                lines.push(line);
            }
        }
        self.rows = rows;
        self.lines = lines;
    }
}

/// Whether a cell is a missing value (`""`, `NA`, `?`, `NaN`).
pub(crate) fn is_na(cell: &str) -> bool {
    matches!(cell.trim(), "" | "NA" | "?" | "NaN" | "nan")
}
