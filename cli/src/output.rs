//! Printing records: one JSON object per line, or an aligned table.

use serde_json::Value;

use crate::args::OutputFormat;

/// Prints records in the format the user asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    format: OutputFormat,
}

impl Printer {
    /// A printer for `format`.
    pub(crate) fn new(format: OutputFormat) -> Self {
        Self { format }
    }

    /// Whether records are printed as JSON lines.
    pub(crate) fn is_json(self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Prints records: as JSON lines, or as a table of `columns` (JSON key,
    /// header) when the format is a table.
    pub(crate) fn records(self, records: &[Value], columns: &[(&str, &str)]) {
        if self.is_json() {
            records.iter().for_each(|r| println!("{r}"));
            return;
        }
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| columns.iter().map(|(key, _)| cell(&r[*key])).collect())
            .collect();
        let headers: Vec<&str> = columns.iter().map(|(_, h)| *h).collect();
        print!("{}", table(&headers, &rows));
    }

    /// Prints one record: a JSON line, or `key: value` lines.
    pub(crate) fn record(self, record: &Value) {
        if self.is_json() {
            println!("{record}");
            return;
        }
        let Some(map) = record.as_object() else {
            println!("{record}");
            return;
        };
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in map {
            println!("{key:width$}  {}", cell(value));
        }
    }
}

/// A value as a table cell: strings bare, null empty, the rest as JSON.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(map) if map.contains_key("message") => {
            map["message"].as_str().unwrap_or_default().to_owned()
        }
        other => other.to_string(),
    }
}

/// An aligned text table with a header row.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = line(headers.iter().map(|h| h.to_string()), &widths);
    for row in rows {
        out.push_str(&line(row.iter().cloned(), &widths));
    }
    out
}

fn line(cells: impl Iterator<Item = String>, widths: &[usize]) -> String {
    let padded: Vec<String> = cells.zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
    format!("{}\n", padded.join("  ").trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_align_to_the_widest_cell() {
        let rows = vec![
            vec!["1".into(), "queued".into()],
            vec!["10".into(), "dead".into()],
        ];
        let text = table(&["ID", "STATE"], &rows);
        assert_eq!(text, "ID  STATE\n1   queued\n10  dead\n");
    }

    #[test]
    fn errors_show_their_message_in_a_cell() {
        let v = serde_json::json!({"kind": "exception", "message": "boom"});
        assert_eq!(cell(&v), "boom");
    }
}
