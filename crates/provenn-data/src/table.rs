//! Raw tables: delimited text files (optionally gzip-compressed) as string cells, with the
//! preprocessing steps the papers use — NA row dropping, numeric columns, one-hot encoding
//! (optionally drop-first, categories in sorted order as pandas' `get_dummies`).
use std::io::Read;
use std::path::Path;

use crate::DataError;

/// Cells of a delimited file, with the 1-based line of each row for error messages.
#[derive(Debug, Clone)]
pub struct RawTable {
    /// File name, for messages.
    pub file: String,
    /// Header cells, if the file has a header.
    pub header: Option<Vec<String>>,
    /// Data rows.
    pub rows: Vec<Vec<String>>,
    /// Source line of each row.
    pub lines: Vec<usize>,
}

/// A categorical column encoded as indicator columns.
#[derive(Debug, Clone, PartialEq)]
pub struct OneHotEncoding {
    /// The encoded categories, one indicator column each (row values 0/1).
    pub categories: Vec<String>,
    /// Indicator columns, parallel to `categories`.
    pub columns: Vec<Vec<f64>>,
    /// The category represented by all-zero indicators (drop-first), if any.
    pub dropped: Option<String>,
}

/// Reads a text file, decompressing `.gz`.
pub fn read_text(path: &Path) -> Result<String, DataError> {
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

/// The file name of a path, for messages.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Parses CSV text (RFC 4180 quoting); with `header`, the first record is the header.
pub fn parse_csv(
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

    /// Drops the rows with a missing value ([`is_na`]) in any of `columns`; returns how many.
    pub fn drop_na(&mut self, columns: &[usize]) -> usize {
        let before = self.rows.len();
        self.retain(|row| {
            columns
                .iter()
                .all(|&c| row.get(c).is_some_and(|v| !is_na(v)))
        });
        before - self.rows.len()
    }

    /// Column `c` as numbers.
    pub fn numeric(&self, c: usize) -> Result<Vec<f64>, DataError> {
        (0..self.rows.len()).map(|r| self.num(r, c)).collect()
    }

    /// One-hot encoding of column `c`, categories sorted; with `drop_first`, the first
    /// category gets no indicator (pandas' `get_dummies(drop_first=True)`).
    pub fn one_hot(&self, c: usize, drop_first: bool) -> OneHotEncoding {
        let cats: Vec<String> = self
            .rows
            .iter()
            .map(|r| r.get(c).cloned().unwrap_or_default())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let (dropped, kept) = if drop_first && !cats.is_empty() {
            (Some(cats[0].clone()), cats[1..].to_vec())
        } else {
            (None, cats)
        };
        let columns = kept
            .iter()
            .map(|cat| {
                self.rows
                    .iter()
                    .map(|r| f64::from(u8::from(r.get(c) == Some(cat))))
                    .collect()
            })
            .collect();
        OneHotEncoding {
            categories: kept,
            columns,
            dropped,
        }
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
pub fn is_na(cell: &str) -> bool {
    matches!(cell.trim(), "" | "NA" | "?" | "NaN" | "nan")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_sorts_categories_and_drops_the_first() {
        let t = parse_csv(
            "t.csv",
            "a,b\nUrban,1\nRural,NA\nSemiurban,3\nUrban,4\n",
            true,
            b',',
        )
        .unwrap();
        let e = t.one_hot(0, true);
        assert_eq!(e.dropped.as_deref(), Some("Rural"));
        assert_eq!(e.categories, vec!["Semiurban", "Urban"]);
        assert_eq!(
            e.columns,
            vec![vec![0.0, 0.0, 1.0, 0.0], vec![1.0, 0.0, 0.0, 1.0]]
        );
        let full = t.one_hot(0, false);
        assert_eq!(full.categories.len(), 3);
        let mut t2 = t.clone();
        assert_eq!(t2.drop_na(&[1]), 1);
        assert_eq!(t2.numeric(1).unwrap(), vec![1.0, 3.0, 4.0]);
        assert!(t.numeric(1).unwrap_err().to_string().contains("line 3"));
    }
}
