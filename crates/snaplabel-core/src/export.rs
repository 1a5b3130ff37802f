//! The guest's labels as downloads: CSV (one row per label of each photo: file, label,
//! confidence, parents) and NDJSON (one result document per line), made from the result
//! documents the page shows, rows in the page's order (highest confidence first).

use crate::result::ResultDocument;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

/// The CSV's first line.
pub const CSV_HEADER: &str = "file,label,confidence,parents,categories,upload_id\r\n";

impl ExportFormat {
    pub fn parse(name: &str) -> Option<ExportFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(ExportFormat::Csv),
            "ndjson" | "jsonl" => Some(ExportFormat::Ndjson),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Ndjson => "application/x-ndjson",
        }
    }

    /// The file name offered to the browser, dated (`2026-12-04`).
    pub fn file_name(self, date: &str) -> String {
        format!("snaplabel-labels-{date}.{}", self.extension())
    }

    /// The start of the file, before any photo.
    pub fn header(self) -> &'static str {
        match self {
            ExportFormat::Csv => CSV_HEADER,
            ExportFormat::Ndjson => "",
        }
    }

    /// Appends one photo: its CSV rows, or its document as one line.
    pub fn append(self, out: &mut String, file: &str, id: &str, doc: &ResultDocument) {
        match self {
            ExportFormat::Csv => csv_rows(out, file, id, doc),
            ExportFormat::Ndjson => {
                out.push_str(&serde_json::to_string(doc).expect("result documents serialize"));
                out.push('\n');
            }
        }
    }
}

/// One row per label, highest confidence first; parents and categories joined with `; `.
pub fn csv_rows(out: &mut String, file: &str, id: &str, doc: &ResultDocument) {
    let mut labels: Vec<_> = doc
        .detection
        .labels
        .iter()
        .filter(|l| l.confidence.is_finite())
        .collect();
    labels.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    for label in labels {
        let join = |items: &[crate::detect::NamedItem]| {
            items
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let cells = [
            file.to_string(),
            label.name.clone(),
            format!("{:.1}", label.confidence),
            join(&label.parents),
            join(&label.categories),
            id.to_string(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
}

/// A CSV cell (RFC 4180): quoted when it holds a comma, quote or line break. A cell a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@` first: a file name is the guest's own
/// text) gets a leading `'` so that it is shown, never evaluated.
pub fn csv_cell(text: &str) -> String {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let text = if formula {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> ResultDocument {
        serde_json::from_str(
            r#"{"schema_version":1,"status":"ok","source":{"bucket":"b","key":"uploads/o/x.jpg","size":42},
            "Labels":[{"Name":"Animal","Confidence":91.0},
                      {"Name":"Dog","Confidence":97.04,"Parents":[{"Name":"Animal"},{"Name":"Canine"}],"Categories":[{"Name":"Animals and Pets"}]}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn csv_has_one_row_per_label_in_the_pages_order() {
        let mut out = String::from(ExportFormat::Csv.header());
        ExportFormat::Csv.append(&mut out, "rex, \"good\".jpg", "ID1", &doc());
        assert_eq!(
            out,
            "file,label,confidence,parents,categories,upload_id\r\n\
             \"rex, \"\"good\"\".jpg\",Dog,97.0,Animal; Canine,Animals and Pets,ID1\r\n\
             \"rex, \"\"good\"\".jpg\",Animal,91.0,,,ID1\r\n"
        );
    }

    #[test]
    fn formulas_are_shown_not_run() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1.jpg"), "'-1.jpg");
        assert_eq!(csv_cell("plain.jpg"), "plain.jpg");
    }

    #[test]
    fn ndjson_is_one_document_per_line_that_reads_back() {
        let mut out = String::new();
        ExportFormat::Ndjson.append(&mut out, "a.jpg", "ID1", &doc());
        ExportFormat::Ndjson.append(&mut out, "b.jpg", "ID2", &doc());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: ResultDocument = serde_json::from_str(lines[1]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, doc());
        assert_eq!(ExportFormat::parse("NDJSON"), Some(ExportFormat::Ndjson));
        assert_eq!(ExportFormat::parse("xml"), None);
    }
}
