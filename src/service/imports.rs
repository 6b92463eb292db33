//! Bulk import of cases from JSON lines or CSV, run as a job with progress and a per-row result.
//!
//! Every row must name its source system's id (`external.source` + `external.id`, or the CSV
//! columns `external_source`, `external_id`): a row whose external id exists already is reported
//! `existing` with that case's id, so running the same file again creates nothing new. Each row is
//! validated and created on its own, in its own transaction: a broken row is `rejected` with its
//! reasons and never touches the rows before or after it.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{cases, new_id};
use crate::db::schema::import_jobs::dsl as j;
use crate::db::DbConn;
use crate::domain::access::Principal;
use crate::domain::util::{from_db, now, to_db, ts};
use crate::error::{AppError, AppResult, FieldError};
use diesel::prelude::*;

/// The most rows one import takes.
pub const MAX_ROWS: usize = 50_000;

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

impl Format {
    /// The format a content type names.
    pub fn from_content_type(ct: &str) -> Option<Format> {
        match ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" | "application/jsonlines" => {
                Some(Format::JsonLines)
            }
            "text/csv" => Some(Format::Csv),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::JsonLines => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// A row as read: a JSON object like the body of `POST /cases`, or why it could not be read.
pub type RawRow = Result<Value, String>;

/// CSV columns and where they go in a case body.
const CSV_COLUMNS: &[&str] = &[
    "kind",
    "title",
    "description",
    "category_code",
    "jurisdiction_code",
    "channel",
    "priority",
    "programme_id",
    "due_at",
    "complainant_name",
    "complainant_phone",
    "location_address",
    "location_lat",
    "location_lon",
    "external_source",
    "external_id",
];

fn csv_row_to_case(headers: &[String], record: &csv::StringRecord) -> Value {
    let mut body = Map::new();
    let mut complainant = Map::new();
    let mut location = Map::new();
    let mut external = Map::new();
    for (name, value) in headers.iter().zip(record.iter()) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let v = Value::String(value.to_owned());
        match name.as_str() {
            "complainant_name" => complainant.insert("name".into(), v),
            "complainant_phone" => complainant.insert("phone".into(), v),
            "location_address" => location.insert("address".into(), v),
            "location_lat" | "location_lon" => {
                let n =
                    value.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(v);
                location.insert(name.trim_start_matches("location_").into(), n)
            }
            "external_source" => external.insert("source".into(), v),
            "external_id" => external.insert("id".into(), v),
            other => body.insert(other.to_owned(), v),
        };
    }
    for (key, part) in [("complainant", complainant), ("location", location), ("external", external)] {
        if !part.is_empty() {
            body.insert(key.into(), Value::Object(part));
        }
    }
    Value::Object(body)
}

/// Reads the rows of an upload (UTF-8, a leading byte-order mark allowed).
pub fn read(format: Format, bytes: &[u8]) -> AppResult<Vec<RawRow>> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| AppError::bad_request("invalid_encoding", "the file must be UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows: Vec<RawRow> = match format {
        Format::JsonLines => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Value>(l).map_err(|e| format!("not valid JSON: {e}")))
            .collect(),
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
            let headers: Vec<String> = reader
                .headers()
                .map_err(|e| AppError::bad_request("invalid_csv", format!("the header line cannot be read: {e}")))?
                .iter()
                .map(|h| h.trim().to_owned())
                .collect();
            let unknown: Vec<&String> = headers.iter().filter(|h| !CSV_COLUMNS.contains(&h.as_str())).collect();
            if !unknown.is_empty() {
                return Err(AppError::invalid(
                    "header",
                    "unknown_column",
                    format!("unknown columns {unknown:?}; the columns are: {}", CSV_COLUMNS.join(",")),
                ));
            }
            reader
                .records()
                .map(|r| r.map(|rec| csv_row_to_case(&headers, &rec)).map_err(|e| format!("not a valid CSV row: {e}")))
                .collect()
        }
    };
    if rows.is_empty() {
        return Err(AppError::invalid("body", "required", "the file has no rows"));
    }
    if rows.len() > MAX_ROWS {
        return Err(AppError::invalid(
            "body",
            "too_long",
            format!("at most {MAX_ROWS} rows per import (got {})", rows.len()),
        ));
    }
    Ok(rows)
}

/// The outcome of one row.
#[derive(Debug, Serialize)]
pub struct RowResult {
    /// 1-based row number (for CSV, not counting the header line).
    pub row: usize,
    /// `created`, `existing` or `rejected`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub case_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

fn rejected(row: usize, errors: Vec<FieldError>) -> RowResult {
    RowResult { row, status: "rejected", id: None, case_ref: None, errors: Some(errors) }
}

/// Imports one row: validate, then create unless its external id exists.
pub fn import_row(conn: &mut DbConn, p: &Principal, row: usize, raw: RawRow) -> AppResult<RowResult> {
    let body = match raw {
        Ok(b) => b,
        Err(why) => return Ok(rejected(row, vec![FieldError::new("", "unreadable", why)])),
    };
    let has_external = body.get("external").and_then(|e| e.get("id")).is_some_and(|v| !v.is_null());
    let new = match cases::NewCase::parse(&body) {
        Ok(n) if has_external => n,
        Ok(_) => {
            return Ok(rejected(
                row,
                vec![FieldError::new("external", "required", "an imported row needs external.source and external.id")],
            ))
        }
        Err(AppError::Validation(errors)) => return Ok(rejected(row, errors)),
        Err(e) => return Err(e),
    };
    match cases::create(conn, p, new) {
        Ok(case) => Ok(RowResult {
            row,
            status: "created",
            id: Some(case.id.clone()),
            case_ref: Some(case.case_ref.clone()),
            errors: None,
        }),
        Err(AppError::Conflict { code: "external_id_exists", existing_id, .. }) => {
            Ok(RowResult { row, status: "existing", id: existing_id, case_ref: None, errors: None })
        }
        Err(AppError::Validation(errors)) => Ok(rejected(row, errors)),
        Err(AppError::Forbidden { code, detail }) => Ok(rejected(row, vec![FieldError::new("", code, detail)])),
        Err(e) => Err(e),
    }
}

/// An import job as the API shows it.
#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: String,
    pub format: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub total_rows: i64,
    pub processed: i64,
    pub created: i64,
    pub existing: i64,
    pub rejected: i64,
    #[serde(with = "ts")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "ts")]
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// One result per processed row, in row order.
    pub results: Vec<Value>,
}

type JobRow =
    (String, String, String, String, i64, i64, i64, i64, i64, String, chrono::NaiveDateTime, chrono::NaiveDateTime);

/// Starts a job record.
pub fn start(conn: &mut DbConn, p: &Principal, format: Format, total: usize) -> AppResult<String> {
    let id = new_id();
    let t = to_db(now());
    diesel::insert_into(j::import_jobs)
        .values((
            j::id.eq(&id),
            j::principal_id.eq(&p.id),
            j::format.eq(format.name()),
            j::state.eq("running"),
            j::total_rows.eq(total as i64),
            j::processed.eq(0_i64),
            j::created.eq(0_i64),
            j::existing.eq(0_i64),
            j::rejected.eq(0_i64),
            j::results.eq(""),
            j::created_at.eq(t),
            j::updated_at.eq(t),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Adds a chunk's results to a job; `done` closes it.
pub fn progress(conn: &mut DbConn, id: &str, results: &[RowResult], done: bool) -> AppResult<()> {
    let count = |s: &str| results.iter().filter(|r| r.status == s).count() as i64;
    let lines: String = results.iter().map(|r| format!("{}\n", json!(r))).collect();
    let current: String = j::import_jobs.find(id).select(j::results).first(conn)?;
    diesel::update(j::import_jobs.find(id))
        .set((
            j::processed.eq(j::processed + results.len() as i64),
            j::created.eq(j::created + count("created")),
            j::existing.eq(j::existing + count("existing")),
            j::rejected.eq(j::rejected + count("rejected")),
            j::results.eq(current + &lines),
            j::state.eq(if done { "done" } else { "running" }),
            j::updated_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks a job failed (the rows done so far stay done).
pub fn fail(conn: &mut DbConn, id: &str) -> AppResult<()> {
    diesel::update(j::import_jobs.find(id))
        .set((j::state.eq("failed"), j::updated_at.eq(to_db(now()))))
        .execute(conn)?;
    Ok(())
}

/// A job of the caller's (only the caller who started it sees it: its results name cases).
pub fn get(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<JobView> {
    let row: Option<JobRow> = j::import_jobs
        .find(id)
        .select((
            j::id,
            j::principal_id,
            j::format,
            j::state,
            j::total_rows,
            j::processed,
            j::created,
            j::existing,
            j::rejected,
            j::results,
            j::created_at,
            j::updated_at,
        ))
        .first(conn)
        .optional()?;
    let row = row.filter(|r| r.1 == p.id).ok_or_else(|| AppError::not_found("import"))?;
    Ok(JobView {
        id: row.0,
        format: row.2,
        state: row.3,
        total_rows: row.4,
        processed: row.5,
        created: row.6,
        existing: row.7,
        rejected: row.8,
        results: row.9.lines().filter_map(|l| serde_json::from_str(l).ok()).collect(),
        created_at: from_db(row.10),
        updated_at: from_db(row.11),
    })
}
