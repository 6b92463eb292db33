//! Reading untrusted JSON bodies and query strings into typed values while collecting *every*
//! problem, so a client sees all of its mistakes in one 422 answer.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::{AppError, AppResult, FieldError};

/// A JSON object being read field by field; errors accumulate until [`Input::finish`].
pub struct Input<'a> {
    obj: Option<&'a Map<String, Value>>,
    prefix: String,
    errors: Vec<FieldError>,
}

impl<'a> Input<'a> {
    /// Starts reading a request body, which must be a JSON object.
    pub fn new(body: &'a Value) -> Self {
        let mut input = Input { obj: body.as_object(), prefix: String::new(), errors: Vec::new() };
        if input.obj.is_none() {
            input.errors.push(FieldError::new("", "invalid_type", "the body must be a JSON object"));
        }
        input
    }

    fn path(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// Records an error on a field of this object.
    pub fn error(&mut self, name: &str, code: &'static str, message: impl Into<String>) {
        let field = self.path(name);
        self.errors.push(FieldError::new(field, code, message));
    }

    /// Whether the field is present and not `null`.
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    fn raw(&self, name: &str) -> Option<&'a Value> {
        self.obj.and_then(|o| o.get(name)).filter(|v| !v.is_null())
    }

    fn required<T>(&mut self, name: &str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.has(name) && self.obj.is_some() {
            self.error(name, "required", "this field is required");
        }
        value
    }

    /// An optional string of at most `max` characters as sent (JSON Schema's `maxLength`),
    /// then trimmed; no control characters inside unless `multiline` (which allows line breaks
    /// and tabs). An empty string counts as absent.
    pub fn opt_text(&mut self, name: &str, max: usize, multiline: bool) -> Option<String> {
        let value = self.raw(name)?;
        let Some(s) = value.as_str() else {
            self.error(name, "invalid_type", "must be a string");
            return None;
        };
        let len = s.chars().count();
        if len > max {
            self.error(name, "too_long", format!("must be at most {max} characters (got {len})"));
            return None;
        }
        let s = s.trim();
        if s.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))) {
            self.error(name, "invalid_characters", "must not contain control characters");
            return None;
        }
        (!s.is_empty()).then(|| s.to_owned())
    }

    /// A required string; see [`Input::opt_text`].
    pub fn text(&mut self, name: &str, max: usize, multiline: bool) -> Option<String> {
        let had = self.has(name);
        let before = self.errors.len();
        let v = self.opt_text(name, max, multiline);
        if v.is_none() && had && self.errors.len() == before {
            self.error(name, "required", "must not be empty");
        }
        self.required(name, v)
    }

    /// A required secret (a password), taken verbatim: never trimmed, at most `max` characters.
    pub fn secret(&mut self, name: &str, max: usize) -> Option<String> {
        let Some(value) = self.raw(name) else {
            return self.required(name, None);
        };
        let Some(s) = value.as_str() else {
            self.error(name, "invalid_type", "must be a string");
            return None;
        };
        if s.is_empty() {
            self.error(name, "required", "must not be empty");
            return None;
        }
        if s.chars().count() > max {
            self.error(name, "too_long", format!("must be at most {max} characters"));
            return None;
        }
        Some(s.to_owned())
    }

    /// An optional value from a closed vocabulary.
    pub fn opt_choice<T>(&mut self, name: &str, parse: fn(&str) -> Option<T>, names: &[&str]) -> Option<T> {
        let value = self.raw(name)?;
        let parsed = value.as_str().and_then(parse);
        if parsed.is_none() {
            self.error(name, "invalid_value", format!("must be one of: {}", names.join(", ")));
        }
        parsed
    }

    /// A required value from a closed vocabulary.
    pub fn choice<T>(&mut self, name: &str, parse: fn(&str) -> Option<T>, names: &[&str]) -> Option<T> {
        let v = self.opt_choice(name, parse, names);
        self.required(name, v)
    }

    /// An optional non-empty array of values from a closed vocabulary (duplicates kept; the
    /// caller normalises). Every unknown value is named in one error on the field.
    pub fn opt_choices<T>(&mut self, name: &str, parse: fn(&str) -> Option<T>, names: &[&str]) -> Option<Vec<T>> {
        let value = self.raw(name)?;
        let Some(items) = value.as_array() else {
            self.error(name, "invalid_type", "must be an array of strings");
            return None;
        };
        if items.is_empty() {
            self.error(name, "required", "must list at least one value");
            return None;
        }
        let mut parsed = Vec::with_capacity(items.len());
        let mut unknown = Vec::new();
        for item in items {
            match item.as_str().and_then(parse) {
                Some(v) => parsed.push(v),
                None => unknown.push(item.to_string()),
            }
        }
        if !unknown.is_empty() {
            self.error(
                name,
                "invalid_value",
                format!("unknown value(s) {}; each must be one of: {}", unknown.join(", "), names.join(", ")),
            );
            return None;
        }
        Some(parsed)
    }

    /// A required non-empty array of values from a closed vocabulary.
    pub fn choices<T>(&mut self, name: &str, parse: fn(&str) -> Option<T>, names: &[&str]) -> Option<Vec<T>> {
        let v = self.opt_choices(name, parse, names);
        self.required(name, v)
    }

    /// An optional UUID in its hyphenated form (JSON Schema's `format: uuid`), returned in its
    /// canonical lower-case form.
    pub fn opt_uuid(&mut self, name: &str) -> Option<String> {
        let value = self.raw(name)?;
        match value.as_str().and_then(parse_uuid) {
            Some(id) => Some(id.to_string()),
            None => {
                self.error(name, "invalid_format", "must be a UUID");
                None
            }
        }
    }

    /// A required UUID.
    pub fn uuid(&mut self, name: &str) -> Option<String> {
        let v = self.opt_uuid(name);
        self.required(name, v)
    }

    /// An optional RFC 3339 timestamp (any offset; returned in UTC).
    pub fn opt_timestamp(&mut self, name: &str) -> Option<DateTime<Utc>> {
        let value = self.raw(name)?;
        match value.as_str().and_then(parse_timestamp) {
            Some(t) => Some(t),
            None => {
                self.error(name, "invalid_format", "must be an RFC 3339 timestamp, e.g. 2026-12-31T18:00:00+08:00");
                None
            }
        }
    }

    /// A required timestamp.
    pub fn timestamp(&mut self, name: &str) -> Option<DateTime<Utc>> {
        let v = self.opt_timestamp(name);
        self.required(name, v)
    }

    /// An optional integer in `min..=max`. JSON does not tell `15` from `15.0` (nor does JSON
    /// Schema's `integer`), so a number with no fractional part is an integer; `15.5` and `"15"`
    /// are not.
    pub fn opt_int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.raw(name)?;
        let in_range = match (value.as_i64(), value.as_f64()) {
            (Some(n), _) => Some((min..=max).contains(&n).then_some(n)),
            (None, Some(f)) if f.is_finite() && f.fract() == 0.0 => {
                // The bounds are small, so they convert exactly; `f` lies within them when cast.
                let (lo, hi) = (min as f64, max as f64);
                Some((lo..=hi).contains(&f).then_some(f as i64))
            }
            _ => None,
        };
        match in_range {
            Some(Some(n)) => Some(n),
            Some(None) => {
                self.error(name, "out_of_range", format!("must be between {min} and {max}"));
                None
            }
            None => {
                self.error(name, "invalid_type", "must be an integer");
                None
            }
        }
    }

    /// A required integer in `min..=max`.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.opt_int(name, min, max);
        self.required(name, v)
    }

    /// An optional number in `min..=max`.
    pub fn opt_number(&mut self, name: &str, min: f64, max: f64) -> Option<f64> {
        let value = self.raw(name)?;
        match value.as_f64() {
            Some(n) if n.is_finite() && (min..=max).contains(&n) => Some(n),
            Some(_) => {
                self.error(name, "out_of_range", format!("must be between {min} and {max}"));
                None
            }
            None => {
                self.error(name, "invalid_type", "must be a number");
                None
            }
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&mut self, name: &str) -> Option<bool> {
        let value = self.raw(name)?;
        let b = value.as_bool();
        if b.is_none() {
            self.error(name, "invalid_type", "must be true or false");
        }
        b
    }

    /// Reads an optional nested object with `read`; its errors are reported as `name.field`.
    pub fn opt_object<T>(&mut self, name: &str, read: impl FnOnce(&mut Input<'a>) -> Option<T>) -> Option<T> {
        let value = self.raw(name)?;
        let Some(obj) = value.as_object() else {
            self.error(name, "invalid_type", "must be an object");
            return None;
        };
        let mut nested = Input { obj: Some(obj), prefix: format!("{}.", self.path(name)), errors: Vec::new() };
        let result = read(&mut nested);
        let ok = nested.errors.is_empty();
        self.errors.append(&mut nested.errors);
        if ok {
            result
        } else {
            None
        }
    }

    /// Reads an optional array of objects with `read`, one item at a time; an item's errors are
    /// reported as `name[i].field`. At most `max` items; an empty array is `Some(vec![])`.
    pub fn opt_array<T>(
        &mut self,
        name: &str,
        max: usize,
        mut read: impl FnMut(&mut Input<'a>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let value = self.raw(name)?;
        let Some(items) = value.as_array() else {
            self.error(name, "invalid_type", "must be an array of objects");
            return None;
        };
        if items.len() > max {
            self.error(name, "too_long", format!("must have at most {max} items (got {})", items.len()));
            return None;
        }
        let before = self.errors.len();
        let mut out = Vec::with_capacity(items.len());
        for (n, item) in items.iter().enumerate() {
            let path = format!("{}[{n}]", self.path(name));
            let Some(obj) = item.as_object() else {
                self.errors.push(FieldError::new(path, "invalid_type", "must be an object"));
                continue;
            };
            let mut nested = Input { obj: Some(obj), prefix: format!("{path}."), errors: Vec::new() };
            let result = read(&mut nested);
            if nested.errors.is_empty() {
                out.extend(result);
            }
            self.errors.append(&mut nested.errors);
        }
        (self.errors.len() == before).then_some(out)
    }

    /// An optional array of at most `max` single-line strings of at most `max_len` characters
    /// each, trimmed; empty strings are refused. An empty array is `Some(vec![])`.
    pub fn opt_strings(&mut self, name: &str, max: usize, max_len: usize) -> Option<Vec<String>> {
        let value = self.raw(name)?;
        let Some(items) = value.as_array() else {
            self.error(name, "invalid_type", "must be an array of strings");
            return None;
        };
        if items.len() > max {
            self.error(name, "too_long", format!("must have at most {max} items (got {})", items.len()));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str().map(str::trim) {
                Some(s) if !s.is_empty() && s.chars().count() <= max_len && !s.chars().any(char::is_control) => {
                    out.push(s.to_owned())
                }
                _ => {
                    self.error(
                        name,
                        "invalid_value",
                        format!("each item must be a non-empty single-line string of at most {max_len} characters"),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// Ends reading: `Err(Validation)` with every recorded problem, or `Ok`.
    pub fn finish(self) -> AppResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self.errors))
        }
    }
}

/// Whether a phone number looks like one: digits with an optional leading `+`, spaces and dashes,
/// 5 to 20 characters.
pub fn is_phone(phone: &str) -> bool {
    let len = phone.chars().count();
    (5..=20).contains(&len)
        && phone.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || c == ' ' || c == '-' || (i == 0 && c == '+'))
        && phone.chars().filter(char::is_ascii_digit).count() >= 5
}

/// Whether an email address looks like one: `local@domain.tld`, at most 254 characters, no
/// spaces or control characters.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    email.chars().count() <= 254
        && !local.is_empty()
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether a URL is an absolute `http://` or `https://` URL with a host, without spaces or
/// control characters, at most 2000 characters.
pub fn is_web_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        url.get(8..)
    } else if lower.starts_with("http://") {
        url.get(7..)
    } else {
        None
    };
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && url.chars().count() <= 2000
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Unwraps a field that [`Input::finish`] has already vouched for.
pub fn need<T>(value: Option<T>, field: &str) -> AppResult<T> {
    value.ok_or_else(|| AppError::Internal(format!("validated field {field} is missing")))
}

/// Parses a UUID in the hyphenated form only (`8-4-4-4-12` hex digits, RFC 9562), the one the
/// contract's `format: uuid` names; the `uuid` crate would also take braces, URNs and bare hex.
pub fn parse_uuid(s: &str) -> Option<uuid::Uuid> {
    (s.len() == 36).then(|| uuid::Uuid::parse_str(s).ok()).flatten()
}

/// Parses an RFC 3339 timestamp into UTC, truncated to microseconds.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    use chrono::SubsecRound;
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
}

/// A query string read parameter by parameter, collecting every problem like [`Input`].
pub struct Query<'a> {
    pairs: &'a [(String, String)],
    errors: Vec<FieldError>,
}

impl<'a> Query<'a> {
    /// Starts reading decoded `name=value` pairs.
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Query { pairs, errors: Vec::new() }
    }

    /// The last value given for `name`, if not empty.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// Records an error on a parameter.
    pub fn error(&mut self, name: &str, code: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, code, message));
    }

    /// A string parameter of at most `max` characters.
    pub fn text(&mut self, name: &str, max: usize) -> Option<String> {
        let v = self.get(name)?;
        if v.chars().count() > max || v.chars().any(char::is_control) {
            self.error(name, "invalid_value", format!("must be at most {max} printable characters"));
            return None;
        }
        Some(v.to_owned())
    }

    /// A parameter from a closed vocabulary.
    pub fn choice<T>(&mut self, name: &str, parse: fn(&str) -> Option<T>, names: &[&str]) -> Option<T> {
        let v = self.get(name)?;
        let parsed = parse(v);
        if parsed.is_none() {
            self.error(name, "invalid_value", format!("must be one of: {}", names.join(", ")));
        }
        parsed
    }

    /// A UUID parameter, hyphenated.
    pub fn uuid(&mut self, name: &str) -> Option<String> {
        let v = self.get(name)?;
        match parse_uuid(v) {
            Some(id) => Some(id.to_string()),
            None => {
                self.error(name, "invalid_format", "must be a UUID");
                None
            }
        }
    }

    /// A timestamp parameter (RFC 3339).
    pub fn timestamp(&mut self, name: &str) -> Option<DateTime<Utc>> {
        let v = self.get(name)?;
        let parsed = parse_timestamp(v);
        if parsed.is_none() {
            self.error(name, "invalid_format", "must be an RFC 3339 timestamp");
        }
        parsed
    }

    /// A boolean parameter (`true` / `false`).
    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.get(name)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.error(name, "invalid_value", "must be true or false");
                None
            }
        }
    }

    /// An integer parameter in `min..=max`.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.get(name)?;
        match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(name, "out_of_range", format!("must be an integer between {min} and {max}"));
                None
            }
        }
    }

    /// Ends reading.
    pub fn finish(self) -> AppResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self.errors))
        }
    }
}
