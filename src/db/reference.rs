//! Queries on reference data: jurisdictions, departments, categories, programmes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::*;
use super::schema::{categories, departments, jurisdictions, programmes};
use super::DbConn;

/// A jurisdiction by code.
pub fn jurisdiction(conn: &mut DbConn, code: &str) -> QueryResult<Option<Jurisdiction>> {
    super::on_backend!(conn, |c| jurisdictions::table.find(code).select(Jurisdiction::as_select()).first(c).optional())
}

/// Stores a jurisdiction.
pub fn insert_jurisdiction(conn: &mut DbConn, row: &Jurisdiction) -> QueryResult<()> {
    diesel::insert_into(jurisdictions::table).values(row).execute(conn).map(|_| ())
}

/// Renames a jurisdiction.
pub fn rename_jurisdiction(conn: &mut DbConn, code: &str, name: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(jurisdictions::table.find(code))
        .set((jurisdictions::name.eq(name), jurisdictions::updated_at.eq(now)))
        .execute(conn)
}

/// Jurisdictions in the path range `[from, to)` (a subtree), optionally children of `parent`,
/// ordered by code after `after`.
pub fn list_jurisdictions(
    conn: &mut DbConn,
    range: Option<(&str, &str)>,
    parent: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Jurisdiction>> {
    let mut q = jurisdictions::table
        .select(Jurisdiction::as_select())
        .order(jurisdictions::code.asc())
        .limit(limit)
        .into_boxed();
    if let Some((from, to)) = range {
        q = q.filter(jurisdictions::path.ge(from.to_owned())).filter(jurisdictions::path.lt(to.to_owned()));
    }
    if let Some(parent) = parent {
        q = q.filter(jurisdictions::parent_code.eq(parent.to_owned()));
    }
    if let Some(after) = after {
        q = q.filter(jurisdictions::code.gt(after.to_owned()));
    }
    q.load(conn)
}

/// A department by id.
pub fn department(conn: &mut DbConn, id: &str) -> QueryResult<Option<Department>> {
    super::on_backend!(conn, |c| departments::table.find(id).select(Department::as_select()).first(c).optional())
}

/// Stores a department.
pub fn insert_department(conn: &mut DbConn, row: &Department) -> QueryResult<()> {
    diesel::insert_into(departments::table).values(row).execute(conn).map(|_| ())
}

/// Changes a department.
pub fn update_department(conn: &mut DbConn, id: &str, changes: &DepartmentChanges) -> QueryResult<usize> {
    diesel::update(departments::table.find(id)).set(changes).execute(conn)
}

/// Departments of the jurisdictions whose codes are given (all when `None`), by id after `after`.
pub fn list_departments(
    conn: &mut DbConn,
    range: Option<(&str, &str)>,
    jurisdiction: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Department>> {
    let mut q = departments::table
        .inner_join(jurisdictions::table)
        .select(Department::as_select())
        .order(departments::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some((from, to)) = range {
        q = q.filter(jurisdictions::path.ge(from.to_owned())).filter(jurisdictions::path.lt(to.to_owned()));
    }
    if let Some(code) = jurisdiction {
        q = q.filter(departments::jurisdiction_code.eq(code.to_owned()));
    }
    if let Some(after) = after {
        q = q.filter(departments::id.gt(after.to_owned()));
    }
    q.load(conn)
}

/// A category by code.
pub fn category(conn: &mut DbConn, code: &str) -> QueryResult<Option<Category>> {
    super::on_backend!(conn, |c| categories::table.find(code).select(Category::as_select()).first(c).optional())
}

/// Stores a category.
pub fn insert_category(conn: &mut DbConn, row: &Category) -> QueryResult<()> {
    diesel::insert_into(categories::table).values(row).execute(conn).map(|_| ())
}

/// Changes a category.
pub fn update_category(conn: &mut DbConn, code: &str, changes: &CategoryChanges) -> QueryResult<usize> {
    diesel::update(categories::table.find(code)).set(changes).execute(conn)
}

/// Categories by code after `after`.
pub fn list_categories(conn: &mut DbConn, after: Option<&str>, limit: i64) -> QueryResult<Vec<Category>> {
    let mut q = categories::table.select(Category::as_select()).order(categories::code.asc()).limit(limit).into_boxed();
    if let Some(after) = after {
        q = q.filter(categories::code.gt(after.to_owned()));
    }
    q.load(conn)
}

/// The active categories, by code.
pub fn active_categories(conn: &mut DbConn) -> QueryResult<Vec<Category>> {
    categories::table
        .filter(categories::active.eq(true))
        .select(Category::as_select())
        .order(categories::code)
        .load(conn)
}

/// When a category last changed (or was created); `None` when there are none.
pub fn categories_changed_at(conn: &mut DbConn) -> QueryResult<Option<NaiveDateTime>> {
    categories::table.select(diesel::dsl::max(categories::updated_at)).first(conn)
}

/// `(code, name)` of the categories with these codes.
pub fn category_names(conn: &mut DbConn, codes: &[String]) -> QueryResult<Vec<(String, String)>> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    categories::table.filter(categories::code.eq_any(codes)).select((categories::code, categories::name)).load(conn)
}

/// A programme by id.
pub fn programme(conn: &mut DbConn, id: &str) -> QueryResult<Option<Programme>> {
    programmes::table.find(id).select(Programme::as_select()).first(conn).optional()
}

/// Stores a programme.
pub fn insert_programme(conn: &mut DbConn, row: &Programme) -> QueryResult<()> {
    diesel::insert_into(programmes::table).values(row).execute(conn).map(|_| ())
}

/// Changes a programme.
pub fn update_programme(conn: &mut DbConn, id: &str, changes: &ProgrammeChanges) -> QueryResult<usize> {
    diesel::update(programmes::table.find(id)).set(changes).execute(conn)
}

/// Programmes in a subtree, optionally of one year, by id after `after`.
pub fn list_programmes(
    conn: &mut DbConn,
    range: Option<(&str, &str)>,
    year: Option<i32>,
    jurisdiction: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Programme>> {
    let mut q = programmes::table
        .inner_join(jurisdictions::table)
        .select(Programme::as_select())
        .order(programmes::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some((from, to)) = range {
        q = q.filter(jurisdictions::path.ge(from.to_owned())).filter(jurisdictions::path.lt(to.to_owned()));
    }
    if let Some(year) = year {
        q = q.filter(programmes::year.eq(year));
    }
    if let Some(code) = jurisdiction {
        q = q.filter(programmes::jurisdiction_code.eq(code.to_owned()));
    }
    if let Some(after) = after {
        q = q.filter(programmes::id.gt(after.to_owned()));
    }
    q.load(conn)
}

/// The codes of the roots of the jurisdiction tree.
pub fn root_codes(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    jurisdictions::table
        .filter(jurisdictions::parent_code.is_null())
        .select(jurisdictions::code)
        .order(jurisdictions::code)
        .load(conn)
}

/// The roots of the jurisdiction tree.
pub fn roots(conn: &mut DbConn) -> QueryResult<Vec<Jurisdiction>> {
    jurisdictions::table
        .filter(jurisdictions::parent_code.is_null())
        .select(Jurisdiction::as_select())
        .order(jurisdictions::code)
        .load(conn)
}

/// The children of a jurisdiction.
pub fn children(conn: &mut DbConn, code: &str) -> QueryResult<Vec<Jurisdiction>> {
    jurisdictions::table
        .filter(jurisdictions::parent_code.eq(code))
        .select(Jurisdiction::as_select())
        .order(jurisdictions::code)
        .load(conn)
}

/// `(id, name)` of the departments with these ids.
pub fn department_names<S: AsRef<str>>(conn: &mut DbConn, ids: &[S]) -> QueryResult<Vec<(String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    departments::table.filter(departments::id.eq_any(ids)).select((departments::id, departments::name)).load(conn)
}

/// `(id, name)` of the programmes among `ids`.
pub fn programme_names<S: AsRef<str>>(conn: &mut DbConn, ids: &[S]) -> QueryResult<Vec<(String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    programmes::table.filter(programmes::id.eq_any(ids)).select((programmes::id, programmes::name)).load(conn)
}
