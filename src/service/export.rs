//! CSV exports — a programme's ledger (台账) and any filtered case list — produced batch by batch,
//! so however many rows there are only one batch is ever in memory.
//!
//! UTF-8 with a byte-order mark (spreadsheet programs then open Chinese text correctly), CRLF line
//! ends, RFC 4180 quoting. A cell that a spreadsheet would run as a formula (starting with `=`,
//! `+`, `-`, `@`, tab or carriage return) is prefixed with `'`. No personal data is exported.

use std::collections::HashMap;

use crate::db::cases::{self as q, CaseFilter};
use crate::db::models::Case;
use crate::db::{reference, DbConn};
use crate::domain::util::{from_db, rfc3339};
use crate::error::AppResult;

/// The byte-order mark and header line that open every export.
pub const PREAMBLE: &str = "\u{feff}ref,title,kind,category_code,jurisdiction_code,department,status,due_at,resolved_at,verified_at,closed_at,outcome,satisfaction,rework_count,created_at\r\n";

/// One CSV cell.
pub fn cell(value: &str) -> String {
    let guarded =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn time(t: Option<chrono::NaiveDateTime>) -> String {
    t.map(|t| rfc3339(from_db(t))).unwrap_or_default()
}

/// The next batch after `filter.after`: the CSV text of its rows, and the position to continue
/// from (`None` when this was the last batch).
pub fn batch(
    conn: &mut DbConn,
    filter: &CaseFilter,
    size: i64,
) -> AppResult<(String, Option<(chrono::NaiveDateTime, String)>)> {
    let rows: Vec<Case> = q::list(conn, filter, size)?;
    let ids: Vec<String> = rows.iter().filter_map(|c| c.department_id.clone()).collect();
    let names: HashMap<String, String> = reference::department_names(conn, &ids)?.into_iter().collect();
    let mut out = String::with_capacity(rows.len() * 160);
    for c in &rows {
        let department = c.department_id.as_ref().and_then(|d| names.get(d)).map(String::as_str).unwrap_or("");
        let fields = [
            cell(&c.case_ref),
            cell(&c.title),
            cell(&c.kind),
            cell(&c.category_code),
            cell(&c.jurisdiction_code),
            cell(department),
            cell(&c.status),
            time(Some(c.due_at)),
            time(c.resolved_at),
            time(c.verified_at),
            time(c.closed_at),
            cell(c.outcome.as_deref().unwrap_or("")),
            cell(c.satisfaction.as_deref().unwrap_or("")),
            c.rework_count.to_string(),
            time(Some(c.created_at)),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    let next = if rows.len() as i64 == size { rows.last().map(super::cases::position_of) } else { None };
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("自来水"), "自来水");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
    }
}
