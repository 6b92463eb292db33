//! Open311 GeoReport v2: the rules that map Minsheng onto the standard, with no HTTP and no SQL.
//!
//! - [`Document`] / [`Node`]: one answer, written once and rendered as XML (UTF-8 declaration, no
//!   namespace) or as JSON by the spec's "Spark convention" (a list is a top-level array).
//! - Statuses: `received`, `assigned`, `resolved` are `open`; `verified`, `closed` are `closed`.
//! - Datetimes: W3C (ISO 8601) with a timezone, in China Standard Time (`+08:00`).
//! - Reading the POST form and the `GET requests` query, and the attribute definitions of a
//!   service (a category) and the answers to them.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, FixedOffset, Offset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::input::{is_email, is_phone, is_web_url, parse_timestamp, Input, Query};
use super::types::{Outcome, Status};
use crate::error::{AppError, AppResult, FieldError};

/// The specification an endpoint implements, as discovery names it.
pub const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";
/// The longest span `GET requests` may cover, and its default window.
pub const MAX_SPAN_DAYS: i64 = 90;
/// The default and largest `page_size` (the spec's "first 1000 requests").
pub const MAX_PAGE_SIZE: i64 = 1000;
/// The most `service_request_id`s one `GET requests` may name.
pub const MAX_IDS: usize = 1000;
/// The longest description a request may carry (the spec's limit).
pub const MAX_DESCRIPTION: usize = 4000;
/// How much of the description becomes the case's title.
pub const TITLE_CHARS: usize = 50;
/// China Standard Time, in which every datetime is written.
const CST_SECS: i32 = 8 * 3600;

/// The two formats every endpoint answers in, chosen by the path's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`: `application/json; charset=utf-8`.
    Json,
    /// `.xml`: `text/xml; charset=utf-8`.
    Xml,
}

impl Format {
    /// The format named by a path extension (`json`, `xml`).
    pub fn parse(ext: &str) -> Option<Format> {
        match ext {
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }

    /// The `Content-Type` of an answer.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "text/xml; charset=utf-8",
        }
    }
}

/// A value in an Open311 answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An empty element; JSON `null`.
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Repeated `<item>` elements; a JSON array.
    List(&'static str, Vec<Node>),
    /// Child elements, in order; a JSON object.
    Object(Vec<(&'static str, Node)>),
}

impl Node {
    /// Text, or `Null` for `None`.
    pub fn text(value: Option<impl Into<String>>) -> Node {
        value.map_or(Node::Null, |v| Node::Text(v.into()))
    }
}

/// A whole answer: the XML root element's name and its content.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The XML root element (`services`, `service_requests`, `errors`, …); JSON has no root.
    pub root: &'static str,
    pub body: Node,
}

impl Document {
    /// The answer in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::with_capacity(1024);
        match format {
            Format::Json => json(&mut out, &self.body),
            Format::Xml => {
                out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
                element(&mut out, self.root, &self.body);
                out.push('\n');
            }
        }
        out
    }

    /// The errors document: `[{code, description}]`, one per problem.
    pub fn errors(status: u16, descriptions: &[String]) -> Document {
        let items = descriptions
            .iter()
            .map(|d| Node::Object(vec![("code", Node::Int(i64::from(status))), ("description", Node::Text(d.clone()))]))
            .collect();
        Document { root: "errors", body: Node::List("error", items) }
    }
}

fn number(f: f64) -> String {
    serde_json::Number::from_f64(f).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

fn json(out: &mut String, node: &Node) {
    match node {
        Node::Null => out.push_str("null"),
        Node::Text(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Node::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Node::Float(f) => out.push_str(&number(*f)),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::List(_, items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                json(out, item);
            }
            out.push(']');
        }
        Node::Object(fields) => {
            out.push('{');
            for (n, (name, value)) in fields.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*name).to_owned()).to_string());
                out.push(':');
                json(out, value);
            }
            out.push('}');
        }
    }
}

/// Escapes text for XML content, replacing characters XML 1.0 cannot carry with U+FFFD and
/// keeping carriage returns (which a parser would otherwise normalise away).
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn element(out: &mut String, name: &str, node: &Node) {
    let content = match node {
        Node::Null => None,
        Node::Text(s) => Some(xml_escape(s)),
        Node::Int(i) => Some(i.to_string()),
        Node::Float(f) => Some(number(*f)),
        Node::Bool(b) => Some(b.to_string()),
        Node::List(item, items) => {
            let mut inner = String::new();
            for i in items {
                element(&mut inner, item, i);
            }
            (!inner.is_empty()).then_some(inner)
        }
        Node::Object(fields) => {
            let mut inner = String::new();
            for (child, value) in fields {
                element(&mut inner, child, value);
            }
            (!inner.is_empty()).then_some(inner)
        }
    };
    match content {
        Some(c) => {
            let _ = write!(out, "<{name}>{c}</{name}>");
        }
        None => {
            let _ = write!(out, "<{name}/>");
        }
    }
}

/// A datetime as the spec writes it: W3C/ISO 8601 to the second, in China Standard Time
/// (`2026-11-22T17:44:18+08:00`).
pub fn w3c(t: DateTime<Utc>) -> String {
    let cst = FixedOffset::east_opt(CST_SECS).unwrap_or_else(|| Utc.fix());
    t.with_timezone(&cst).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// Reads a W3C datetime with a time and a timezone: `2026-11-01T00:00:00Z`,
/// `2026-11-01T08:00+08:00`, `2026-11-01T00:00:00.5-05:00`. A date alone, or a time without
/// a timezone, is refused: it would not name one instant.
pub fn parse_w3c(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_timestamp(s) {
        return Some(t);
    }
    // Minutes without seconds (allowed by the W3C note).
    let (body, zone) = if let Some(b) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        (b, "+00:00")
    } else {
        let at = s.len().checked_sub(6)?;
        (s.get(..at)?, s.get(at..)?)
    };
    let minutes = body.len() == 16 && body.as_bytes().get(13) == Some(&b':');
    if !minutes {
        return None;
    }
    parse_timestamp(&format!("{body}:00{zone}"))
}

/// The public status of a case: `open` until the citizen's answer is verified, then `closed`.
pub fn public_status(status: Status) -> &'static str {
    match status {
        Status::Received | Status::Assigned | Status::Resolved => "open",
        Status::Verified | Status::Closed => "closed",
    }
}

/// The Minsheng statuses behind a public status.
pub fn statuses_of(public: &str) -> &'static [Status] {
    match public {
        "open" => &[Status::Received, Status::Assigned, Status::Resolved],
        "closed" => &[Status::Verified, Status::Closed],
        _ => &[],
    }
}

/// The latest public note of a case: the department's answer (办结答复) once resolved, or why it
/// was closed without one. Internal notes (assignment instructions, return reasons, comments,
/// dismissal reasons as written) are never published.
pub fn status_notes(status: Status, outcome: Option<Outcome>, resolution: Option<&str>) -> Option<String> {
    match (status, outcome) {
        (Status::Closed, Some(Outcome::Duplicate)) => Some("重复诉求，已并入其他诉求办理。".to_owned()),
        (Status::Closed, Some(Outcome::Invalid)) => Some("经核实为无效诉求，不予受理。".to_owned()),
        (Status::Closed, Some(Outcome::Withdrawn)) => Some("诉求人已撤回。".to_owned()),
        (Status::Closed, Some(Outcome::OutOfScope)) => Some("不属于本级受理范围，已告知诉求人。".to_owned()),
        (Status::Resolved | Status::Verified | Status::Closed, _) => resolution.map(str::to_owned),
        (Status::Received | Status::Assigned, _) => None,
    }
}

/// Whether text contains something that looks like an HTML tag, comment or processing
/// instruction (`<b>`, `</p>`, `<!--`, `<?php`). A `<` followed by anything else (`水压 < 3`) is
/// plain text.
pub fn has_html(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|w| w.first() == Some(&b'<') && w.get(1).is_some_and(|c| c.is_ascii_alphabetic() || b"/!?".contains(c)))
}

/// The title of a case filed over Open311: the first line of its description, cut to
/// [`TITLE_CHARS`] characters (with `…` when cut), or the service's name when there is no
/// description.
pub fn title_from(description: Option<&str>, service_name: &str) -> String {
    let first_line = description.and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()));
    match first_line {
        None => service_name.to_owned(),
        Some(line) if line.chars().count() <= TITLE_CHARS => line.to_owned(),
        Some(line) => {
            let mut cut: String = line.chars().take(TITLE_CHARS).collect();
            cut.push('…');
            cut
        }
    }
}

/// The complainant's name from the form's `first_name` (given) and `last_name` (family): a
/// Chinese name is family then given, unspaced (`张` + `三丰` → `张三丰`); a name with Latin
/// letters is given then family (`John Smith`).
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (Some(f), Some(l)) if (f.chars().chain(l.chars())).any(|c| c.is_ascii_alphabetic()) => Some(format!("{f} {l}")),
        (Some(f), Some(l)) => Some(format!("{l}{f}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

// ------------------------------------------------------------------ service definitions

/// The kind of input an attribute takes (the spec's `datatype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    /// One line of text.
    String,
    /// A number.
    Number,
    /// A W3C datetime.
    Datetime,
    /// Text that may span lines.
    Text,
    /// One of `values`.
    Singlevaluelist,
    /// Any of `values`.
    Multivaluelist,
}

impl Datatype {
    /// Every wire name.
    pub const NAMES: &'static [&'static str] =
        &["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"];

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Datatype> {
        Some(match s {
            "string" => Datatype::String,
            "number" => Datatype::Number,
            "datetime" => Datatype::Datetime,
            "text" => Datatype::Text,
            "singlevaluelist" => Datatype::Singlevaluelist,
            "multivaluelist" => Datatype::Multivaluelist,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::String => "string",
            Datatype::Number => "number",
            Datatype::Datetime => "datetime",
            Datatype::Text => "text",
            Datatype::Singlevaluelist => "singlevaluelist",
            Datatype::Multivaluelist => "multivaluelist",
        }
    }

    fn is_list(self) -> bool {
        matches!(self, Datatype::Singlevaluelist | Datatype::Multivaluelist)
    }
}

/// One option of a list attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueDef {
    pub key: String,
    pub name: String,
}

/// One extra question of a service (an attribute of its service definition), as stored with the
/// category and shown by `/api/v1/categories`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeDef {
    /// Unique within the service; letters, digits, `_`, `-`, `.`.
    pub code: String,
    pub datatype: Datatype,
    /// An answer is needed to file a request.
    pub required: bool,
    /// `false`: information shown to the citizen only, no answer taken.
    pub variable: bool,
    /// Position in the form, from 1; unique within the service.
    pub order: i64,
    /// The question.
    pub description: String,
    pub datatype_description: Option<String>,
    /// The options of a list attribute; empty otherwise.
    pub values: Vec<ValueDef>,
}

/// The most attributes a service may have.
pub const MAX_ATTRIBUTES: usize = 50;
/// The most options a list attribute may have.
pub const MAX_VALUES: usize = 200;

fn is_attribute_code(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Reads the `attributes` of a category body: an array of attribute definitions (an empty array
/// means none). Problems are recorded on `i` as `attributes[n].field`.
pub fn read_attribute_defs(i: &mut Input<'_>) -> Option<Vec<AttributeDef>> {
    let mut position = 0;
    let defs = i.opt_array("attributes", MAX_ATTRIBUTES, |a| {
        position += 1;
        let code = a.text("code", 64, false);
        if code.as_deref().is_some_and(|c| !is_attribute_code(c)) {
            a.error("code", "invalid_format", "letters, digits, '_', '-' and '.' only; 1-64 characters");
        }
        let datatype = a.choice("datatype", Datatype::parse, Datatype::NAMES);
        let required = a.opt_bool("required").unwrap_or(false);
        let variable = a.opt_bool("variable").unwrap_or(true);
        let order = a.opt_int("order", 1, 1000).unwrap_or(position);
        let description = a.text("description", 500, false);
        let datatype_description = a.opt_text("datatype_description", 500, false);
        let values = a.opt_array("values", MAX_VALUES, |v| {
            let key = v.text("key", 100, false);
            let name = v.text("name", 200, false);
            Some(ValueDef { key: key?, name: name? })
        });
        if required && !variable {
            a.error("required", "not_allowed", "an attribute that takes no answer (variable false) cannot be required");
        }
        let values = values.unwrap_or_default();
        match datatype {
            Some(d) if d.is_list() && values.is_empty() && !a.has("values") => {
                a.error("values", "required", "a list attribute needs its values")
            }
            Some(d) if d.is_list() && values.is_empty() => a.error("values", "required", "list at least one value"),
            Some(d) if !d.is_list() && !values.is_empty() => {
                a.error("values", "not_allowed", "only list attributes have values")
            }
            _ => {}
        }
        let mut keys: Vec<&str> = values.iter().map(|v| v.key.as_str()).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w.first() == w.get(1)) {
            a.error("values", "invalid_value", "each value's key must be unique");
        }
        Some(AttributeDef {
            code: code?,
            datatype: datatype?,
            required,
            variable,
            order,
            description: description?,
            datatype_description,
            values,
        })
    })?;
    let mut codes: Vec<&str> = defs.iter().map(|d| d.code.as_str()).collect();
    codes.sort_unstable();
    if codes.windows(2).any(|w| w.first() == w.get(1)) {
        i.error("attributes", "invalid_value", "each attribute's code must be unique");
    }
    let mut orders: Vec<i64> = defs.iter().map(|d| d.order).collect();
    orders.sort_unstable();
    if orders.windows(2).any(|w| w.first() == w.get(1)) {
        i.error("attributes", "invalid_value", "each attribute's order must be unique");
    }
    Some(defs)
}

/// Attribute definitions as stored (a JSON array); unreadable text is an internal error.
pub fn stored_defs(stored: Option<&str>) -> AppResult<Vec<AttributeDef>> {
    match stored {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| AppError::Internal(format!("stored attributes: {e}"))),
    }
}

/// The service definition's `attributes`, in their order.
pub fn definition_node(mut defs: Vec<AttributeDef>) -> Node {
    defs.sort_by_key(|d| d.order);
    Node::List(
        "attribute",
        defs.into_iter()
            .map(|d| {
                Node::Object(vec![
                    ("variable", Node::Bool(d.variable)),
                    ("code", Node::Text(d.code)),
                    ("datatype", Node::Text(d.datatype.as_str().to_owned())),
                    ("required", Node::Bool(d.required)),
                    ("datatype_description", Node::text(d.datatype_description)),
                    ("order", Node::Int(d.order)),
                    ("description", Node::Text(d.description)),
                    (
                        "values",
                        Node::List(
                            "value",
                            d.values
                                .into_iter()
                                .map(|v| Node::Object(vec![("key", Node::Text(v.key)), ("name", Node::Text(v.name))]))
                                .collect(),
                        ),
                    ),
                ])
            })
            .collect(),
    )
}

/// Checks a request's answers against the service's attributes and returns them as stored
/// (`{"CODE": "value" | ["a", "b"]}`; `None` when there are none). Problems are added to `errors`
/// as `attribute[CODE]`.
pub fn check_answers(
    defs: &[AttributeDef],
    answers: &[(String, Vec<String>)],
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    let mut stored = Map::new();
    for (code, values) in answers {
        let field = format!("attribute[{code}]");
        let Some(def) = defs.iter().find(|d| d.code == *code && d.variable) else {
            errors.push(FieldError::new(field, "not_found", "this service has no such attribute"));
            continue;
        };
        if def.datatype != Datatype::Multivaluelist && values.len() > 1 {
            errors.push(FieldError::new(field, "invalid_value", "takes one value"));
            continue;
        }
        let mut bad = None;
        for v in values {
            let problem = match def.datatype {
                Datatype::String if v.chars().count() > 500 || v.chars().any(char::is_control) => {
                    Some("must be one line of at most 500 characters")
                }
                Datatype::Text
                    if v.chars().count() > MAX_DESCRIPTION
                        || v.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
                {
                    Some("must be text of at most 4000 characters")
                }
                Datatype::Text if has_html(v) => Some("must not contain HTML"),
                Datatype::Number if !v.parse::<f64>().is_ok_and(f64::is_finite) => Some("must be a number"),
                Datatype::Datetime
                    if parse_w3c(v).is_none() && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err() =>
                {
                    Some("must be a W3C date or datetime, e.g. 2026-11-22 or 2026-11-22T09:30:00+08:00")
                }
                Datatype::Singlevaluelist | Datatype::Multivaluelist if !def.values.iter().any(|k| k.key == *v) => {
                    Some("must be the key of one of the attribute's values")
                }
                _ => None,
            };
            if problem.is_some() {
                bad = problem;
                break;
            }
        }
        if let Some(message) = bad {
            errors.push(FieldError::new(field, "invalid_value", message));
            continue;
        }
        let value = if def.datatype == Datatype::Multivaluelist {
            let mut unique: Vec<String> = Vec::new();
            for v in values {
                if !unique.contains(v) {
                    unique.push(v.clone());
                }
            }
            Value::Array(unique.into_iter().map(Value::String).collect())
        } else {
            values.first().cloned().map_or(Value::Null, Value::String)
        };
        stored.insert(code.clone(), value);
    }
    for def in defs.iter().filter(|d| d.required && d.variable) {
        if !stored.contains_key(&def.code) && !answers.iter().any(|(c, _)| *c == def.code) {
            errors.push(FieldError::new(format!("attribute[{}]", def.code), "required", "this attribute is required"));
        }
    }
    (!stored.is_empty()).then_some(Value::Object(stored))
}

// ------------------------------------------------------------------ POST requests

/// The fields of `POST requests` (after the `api_key`, which is checked first).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestForm {
    pub jurisdiction_id: Option<String>,
    pub service_code: String,
    pub lat_long: Option<(f64, f64)>,
    pub address_string: Option<String>,
    pub address_id: Option<String>,
    /// `attribute[CODE]` (or `attribute[CODE][]`) values, by code, in the order given.
    pub answers: Vec<(String, Vec<String>)>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    pub media_url: Option<String>,
}

/// The last non-empty value of a form field, trimmed.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

/// A single-line form field of at most `max` characters.
fn line(pairs: &[(String, String)], name: &str, max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = field(pairs, name)?;
    if v.chars().count() > max {
        errors.push(FieldError::new(name, "too_long", format!("must be at most {max} characters")));
        return None;
    }
    if v.chars().any(char::is_control) {
        errors.push(FieldError::new(name, "invalid_characters", "must be one line without control characters"));
        return None;
    }
    Some(v.to_owned())
}

fn coordinate(pairs: &[(String, String)], name: &str, limit: f64, errors: &mut Vec<FieldError>) -> Option<f64> {
    let v = field(pairs, name)?;
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() && (-limit..=limit).contains(&n) => Some(n),
        _ => {
            errors.push(FieldError::new(
                name,
                "invalid_value",
                format!("must be a number between -{limit} and {limit}"),
            ));
            None
        }
    }
}

/// The attribute code of a form key: `attribute[CODE]` or `attribute[CODE][]`.
fn attribute_key(key: &str) -> Option<Option<&str>> {
    let rest = key.strip_prefix("attribute[")?;
    let code = rest.strip_suffix("][]").or_else(|| rest.strip_suffix(']'));
    Some(code.filter(|c| is_attribute_code(c)))
}

impl RequestForm {
    /// Reads the form, reporting every problem at once (each answers 400).
    pub fn parse(pairs: &[(String, String)]) -> AppResult<RequestForm> {
        let mut errors = Vec::new();
        let jurisdiction_id = line(pairs, "jurisdiction_id", 12, &mut errors);
        let service_code = line(pairs, "service_code", 32, &mut errors);
        if field(pairs, "service_code").is_none() {
            errors.push(FieldError::new("service_code", "required", "service_code was not provided"));
        }
        let lat = coordinate(pairs, "lat", 90.0, &mut errors);
        let long = coordinate(pairs, "long", 180.0, &mut errors);
        let has = |name: &str| field(pairs, name).is_some();
        if has("lat") != has("long") {
            let missing = if has("lat") { "long" } else { "lat" };
            errors.push(FieldError::new(missing, "required", "lat and long are sent together"));
        }
        let address_string = line(pairs, "address_string", 500, &mut errors);
        let address_id = line(pairs, "address_id", 100, &mut errors);
        if !has("lat") && !has("long") && !has("address_string") && !has("address_id") {
            errors.push(FieldError::new(
                "lat",
                "required",
                "a location was not provided: send lat and long, address_string or address_id",
            ));
        }
        let mut answers: Vec<(String, Vec<String>)> = Vec::new();
        for (key, value) in pairs {
            let Some(code) = attribute_key(key) else { continue };
            let Some(code) = code else {
                errors.push(FieldError::new(
                    key.as_str(),
                    "invalid_format",
                    "attributes are sent as attribute[CODE]=value or attribute[CODE][]=value",
                ));
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match answers.iter_mut().find(|(c, _)| c == code) {
                Some((_, values)) => values.push(value.to_owned()),
                None => answers.push((code.to_owned(), vec![value.to_owned()])),
            }
        }
        let email = line(pairs, "email", 254, &mut errors);
        if email.as_deref().is_some_and(|e| !is_email(e)) {
            errors.push(FieldError::new("email", "invalid_format", "not an email address"));
        }
        let first_name = line(pairs, "first_name", 50, &mut errors);
        let last_name = line(pairs, "last_name", 50, &mut errors);
        let phone = line(pairs, "phone", 20, &mut errors);
        if phone.as_deref().is_some_and(|p| !is_phone(p)) {
            errors.push(FieldError::new(
                "phone",
                "invalid_format",
                "digits, spaces, '-' and a leading '+' only; 5-20 characters",
            ));
        }
        let description = field(pairs, "description").map(str::to_owned);
        if let Some(d) = &description {
            let len = d.chars().count();
            if len > MAX_DESCRIPTION {
                errors.push(FieldError::new(
                    "description",
                    "too_long",
                    format!("must be at most {MAX_DESCRIPTION} characters (got {len})"),
                ));
            } else if d.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
                errors.push(FieldError::new(
                    "description",
                    "invalid_characters",
                    "must not contain control characters",
                ));
            } else if has_html(d) {
                errors.push(FieldError::new("description", "invalid_value", "must be plain text, not HTML"));
            }
        }
        let media_url = line(pairs, "media_url", 2000, &mut errors);
        if media_url.as_deref().is_some_and(|u| !is_web_url(u)) {
            errors.push(FieldError::new("media_url", "invalid_format", "must be an http:// or https:// URL"));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        Ok(RequestForm {
            jurisdiction_id,
            service_code: service_code.unwrap_or_default(),
            lat_long: lat.zip(long),
            address_string,
            address_id,
            answers,
            email,
            first_name,
            last_name,
            phone,
            description,
            media_url,
        })
    }
}

// ------------------------------------------------------------------ GET requests

/// The parameters of `GET requests`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestsQuery {
    pub jurisdiction_id: Option<String>,
    /// `service_request_id`s (case refs); when given, every other filter is ignored.
    pub ids: Option<Vec<String>>,
    pub service_codes: Option<Vec<String>>,
    /// The Minsheng statuses the `status` filter stands for.
    pub statuses: Option<Vec<Status>>,
    /// `requested_datetime` from, inclusive.
    pub from: DateTime<Utc>,
    /// `requested_datetime` to, inclusive.
    pub to: DateTime<Utc>,
    /// From 1.
    pub page: i64,
    pub page_size: i64,
    /// `extensions=true`: add `extended_attributes`.
    pub extensions: bool,
}

/// A comma-delimited list parameter; `None` when absent or empty.
fn list(q: &Query<'_>, name: &str) -> Option<Vec<String>> {
    let items: Vec<String> =
        q.get(name)?.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    (!items.is_empty()).then_some(items)
}

impl RequestsQuery {
    /// Reads the query string. Dates: neither given → the 90 days up to `now`; only
    /// `start_date` → the 90 days from it; only `end_date` → the 90 days up to it; both → that
    /// range, which may not be longer than 90 days.
    pub fn parse(pairs: &[(String, String)], now: DateTime<Utc>) -> AppResult<RequestsQuery> {
        let mut q = Query::new(pairs);
        let jurisdiction_id = q.text("jurisdiction_id", 12);
        let ids = list(&q, "service_request_id");
        if ids.as_ref().is_some_and(|i| i.len() > MAX_IDS || i.iter().any(|id| id.chars().count() > 64)) {
            q.error("service_request_id", "too_long", format!("at most {MAX_IDS} ids of at most 64 characters"));
        }
        let service_codes = list(&q, "service_code");
        if service_codes.as_ref().is_some_and(|c| c.len() > 100 || c.iter().any(|code| code.chars().count() > 32)) {
            q.error("service_code", "too_long", "at most 100 codes of at most 32 characters");
        }
        let statuses = list(&q, "status").map(|names| {
            let mut statuses = Vec::new();
            for name in &names {
                let mapped = statuses_of(name);
                if mapped.is_empty() {
                    q.error("status", "invalid_value", format!("unknown status {name}: must be open or closed"));
                }
                statuses.extend_from_slice(mapped);
            }
            statuses
        });
        let date = |q: &mut Query<'_>, name: &str| {
            let v = q.get(name)?;
            let t = parse_w3c(v);
            if t.is_none() {
                q.error(
                    name,
                    "invalid_format",
                    "must be a W3C datetime with a timezone, e.g. 2026-11-01T00:00:00Z or 2026-11-01T08:00:00+08:00",
                );
            }
            t
        };
        let start = date(&mut q, "start_date");
        let end = date(&mut q, "end_date");
        let span = Duration::days(MAX_SPAN_DAYS);
        let (from, to) = match (start, end) {
            (None, None) => (now - span, now),
            (Some(s), None) => (s, s + span),
            (None, Some(e)) => (e - span, e),
            (Some(s), Some(e)) => {
                if e < s {
                    q.error("end_date", "not_later", "end_date must not be before start_date");
                } else if e - s > span {
                    q.error(
                        "end_date",
                        "out_of_range",
                        format!("the range may not span more than {MAX_SPAN_DAYS} days"),
                    );
                }
                (s, e)
            }
        };
        let page = q.int("page", 1, 100_000).unwrap_or(1);
        let page_size = q.int("page_size", 1, MAX_PAGE_SIZE).unwrap_or(MAX_PAGE_SIZE);
        let extensions = q.boolean("extensions").unwrap_or(false);
        let ids_given = ids.is_some();
        q.finish()?;
        Ok(RequestsQuery {
            jurisdiction_id,
            ids,
            service_codes: service_codes.filter(|_| !ids_given),
            statuses: statuses.filter(|_| !ids_given),
            from,
            to,
            page,
            page_size,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn documents_render_as_xml_and_json() {
        let doc = Document {
            root: "service_requests",
            body: Node::List(
                "request",
                vec![Node::Object(vec![
                    ("service_request_id", Node::Text("530602-2026-000001".into())),
                    ("status_notes", Node::Null),
                    ("description", Node::Text("a < b & \"c\" 'd'\r\n".into())),
                    ("lat", Node::Float(27.32)),
                    ("metadata", Node::Bool(true)),
                    ("values", Node::List("value", vec![])),
                ])],
            ),
        };
        assert_eq!(
            doc.render(Format::Xml),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service_requests><request>\
             <service_request_id>530602-2026-000001</service_request_id><status_notes/>\
             <description>a &lt; b &amp; &quot;c&quot; &apos;d&apos;&#xD;\n</description><lat>27.32</lat>\
             <metadata>true</metadata><values/></request></service_requests>\n"
        );
        assert_eq!(
            doc.render(Format::Json),
            "[{\"service_request_id\":\"530602-2026-000001\",\"status_notes\":null,\
             \"description\":\"a < b & \\\"c\\\" 'd'\\r\\n\",\"lat\":27.32,\"metadata\":true,\"values\":[]}]"
        );
        assert_eq!(xml_escape("a\u{1}b\u{FFFF}"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn datetimes_carry_china_standard_time() {
        let t = parse_w3c("2026-11-22T09:44:18.5Z").expect("parses");
        assert_eq!(w3c(t), "2026-11-22T17:44:18+08:00");
        assert_eq!(parse_w3c("2026-11-22T17:44+08:00"), parse_w3c("2026-11-22T09:44:00Z"));
        assert!(parse_w3c("2026-11-22").is_none());
        assert!(parse_w3c("2026-11-22T09:44:18").is_none());
        assert!(parse_w3c("yesterday").is_none());
    }

    #[test]
    fn statuses_map_to_open_and_closed() {
        assert_eq!(public_status(Status::Received), "open");
        assert_eq!(public_status(Status::Assigned), "open");
        assert_eq!(public_status(Status::Resolved), "open");
        assert_eq!(public_status(Status::Verified), "closed");
        assert_eq!(public_status(Status::Closed), "closed");
        for s in Status::ALL {
            assert!(statuses_of(public_status(*s)).contains(s));
        }
        assert_eq!(status_notes(Status::Assigned, None, None), None);
        assert_eq!(status_notes(Status::Resolved, None, Some("已修复")), Some("已修复".to_owned()));
        assert!(status_notes(Status::Closed, Some(Outcome::Duplicate), Some("x")).is_some_and(|n| n.contains("重复")));
    }

    #[test]
    fn html_titles_and_names() {
        assert!(has_html("<b>停水</b>"));
        assert!(has_html("x <!-- y -->"));
        assert!(has_html("<script>alert(1)</script>"));
        assert!(!has_html("水压 < 3 且 > 1"));
        assert!(!has_html("a<3"));
        assert_eq!(title_from(Some("\n  村里停水三天\n详情"), "饮水安全"), "村里停水三天");
        assert_eq!(title_from(None, "饮水安全"), "饮水安全");
        let long = "水".repeat(60);
        assert_eq!(title_from(Some(&long), "x").chars().count(), TITLE_CHARS + 1);
        assert_eq!(full_name(Some("三丰"), Some("张")), Some("张三丰".to_owned()));
        assert_eq!(full_name(Some("John"), Some("Smith")), Some("John Smith".to_owned()));
        assert_eq!(full_name(None, Some("张")), Some("张".to_owned()));
    }

    #[test]
    fn the_form_is_read_with_every_problem_at_once() {
        let form = RequestForm::parse(&pairs(&[
            ("service_code", "drinking_water"),
            ("lat", "27.32"),
            ("long", "103.72"),
            ("attribute[COLOUR]", "yellow"),
            ("attribute[SMELL][]", "a"),
            ("attribute[SMELL][]", "b"),
            ("description", "停水\n三天"),
        ]))
        .expect("valid");
        assert_eq!(form.lat_long, Some((27.32, 103.72)));
        assert_eq!(
            form.answers,
            vec![("COLOUR".to_owned(), vec!["yellow".to_owned()]), ("SMELL".to_owned(), vec!["a".into(), "b".into()])]
        );
        let Err(AppError::Validation(errors)) = RequestForm::parse(&pairs(&[
            ("lat", "95"),
            ("attribute[bad code]", "x"),
            ("email", "nobody"),
            ("description", "<p>hi</p>"),
            ("media_url", "ftp://x"),
        ])) else {
            panic!("refused")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["service_code", "lat", "long", "attribute[bad code]", "email", "description", "media_url"]);
    }

    #[test]
    fn answers_are_checked_against_the_definition() {
        let defs = vec![
            AttributeDef {
                code: "COLOUR".into(),
                datatype: Datatype::Singlevaluelist,
                required: true,
                variable: true,
                order: 1,
                description: "颜色".into(),
                datatype_description: None,
                values: vec![ValueDef { key: "yellow".into(), name: "黄".into() }],
            },
            AttributeDef {
                code: "DEPTH".into(),
                datatype: Datatype::Number,
                required: false,
                variable: true,
                order: 2,
                description: "深度".into(),
                datatype_description: None,
                values: vec![],
            },
        ];
        let mut errors = Vec::new();
        let stored = check_answers(&defs, &[("COLOUR".into(), vec!["yellow".into()])], &mut errors);
        assert!(errors.is_empty());
        assert_eq!(stored, Some(serde_json::json!({"COLOUR": "yellow"})));
        let stored = check_answers(
            &defs,
            &[("COLOUR".into(), vec!["red".into()]), ("DEPTH".into(), vec!["deep".into()]), ("X".into(), vec![])],
            &mut errors,
        );
        assert_eq!(stored, None);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["attribute[COLOUR]", "attribute[DEPTH]", "attribute[X]"]);
        errors.clear();
        check_answers(&defs, &[], &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors.first().map(|e| e.code), Some("required"));
    }

    #[test]
    fn request_queries_default_to_ninety_days() {
        let now = parse_w3c("2026-11-22T00:00:00Z").expect("now");
        let q = RequestsQuery::parse(&[], now).expect("valid");
        assert_eq!((q.to - q.from).num_days(), 90);
        assert_eq!((q.page, q.page_size, q.extensions), (1, 1000, false));
        let q = RequestsQuery::parse(&pairs(&[("status", "open,closed"), ("service_code", "a,b")]), now).expect("ok");
        assert_eq!(q.statuses.map(|s| s.len()), Some(5));
        let q = RequestsQuery::parse(&pairs(&[("service_request_id", "x,y"), ("status", "open")]), now).expect("ok");
        assert_eq!(q.ids, Some(vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!(q.statuses, None);
        let span = pairs(&[("start_date", "2026-01-01T00:00:00Z"), ("end_date", "2026-06-01T00:00:00Z")]);
        assert!(RequestsQuery::parse(&span, now).is_err());
        assert!(RequestsQuery::parse(&pairs(&[("status", "pending")]), now).is_err());
        assert!(RequestsQuery::parse(&pairs(&[("start_date", "2026-01-01")]), now).is_err());
    }
}
