//! Reference data: the jurisdiction tree, departments, categories, programmes. Admins change it
//! within their subtree; every signed-in user reads what is in their subtree.

use serde::Serialize;
use serde_json::{json, Value};

use super::audit;

use super::{new_id, paginate, Page, PageRequest};
use crate::db::models::{
    Category, CategoryChanges, Department, DepartmentChanges, Jurisdiction, Programme, ProgrammeChanges,
};
use crate::db::{reference as q, write_tx, DbConn};
use crate::domain::access::{upper_bound, Principal};
use crate::domain::input::{need, Input};
use crate::domain::open311::{read_attribute_defs, stored_defs, AttributeDef};
use crate::domain::util::{from_db, now, to_db, ts};
use crate::error::{AppError, AppResult};

/// A jurisdiction as the API shows it.
#[derive(Debug, Serialize)]
pub struct JurisdictionView {
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    pub depth: i32,
    #[serde(with = "ts")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "ts")]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Jurisdiction> for JurisdictionView {
    fn from(j: Jurisdiction) -> Self {
        JurisdictionView {
            code: j.code,
            name: j.name,
            parent_code: j.parent_code,
            depth: j.depth,
            created_at: from_db(j.created_at),
            updated_at: from_db(j.updated_at),
        }
    }
}

/// Whether `code` looks like a national administrative division code (6, 9 or 12 digits).
pub fn is_division_code(code: &str) -> bool {
    matches!(code.len(), 6 | 9 | 12) && code.bytes().all(|b| b.is_ascii_digit())
}

fn scope_range(p: &Principal) -> Option<(String, String)> {
    p.scope_path.as_ref().map(|s| (s.clone(), upper_bound(s)))
}

fn as_refs(range: &Option<(String, String)>) -> Option<(&str, &str)> {
    range.as_ref().map(|(a, b)| (a.as_str(), b.as_str()))
}

/// A jurisdiction the caller can see, or 404.
pub fn visible_jurisdiction(conn: &mut DbConn, p: &Principal, code: &str) -> AppResult<Jurisdiction> {
    q::jurisdiction(conn, code)?.filter(|j| p.in_scope(&j.path)).ok_or_else(|| AppError::not_found("jurisdiction"))
}

/// Body of `POST /jurisdictions`.
pub struct NewJurisdiction {
    code: String,
    name: String,
    parent_code: Option<String>,
}

impl NewJurisdiction {
    /// Validates the body.
    pub fn parse(body: &Value) -> AppResult<Self> {
        let mut i = Input::new(body);
        let code = i.text("code", 12, false);
        let name = i.text("name", 100, false);
        let parent_code = i.opt_text("parent_code", 12, false);
        if code.as_deref().is_some_and(|c| !is_division_code(c)) {
            i.error("code", "invalid_format", "must be a national division code of 6, 9 or 12 digits");
        }
        i.finish()?;
        Ok(NewJurisdiction { code: need(code, "code")?, name: need(name, "name")?, parent_code })
    }
}

/// Creates a jurisdiction under a parent in the caller's subtree (a root needs a whole-tree admin).
pub fn create_jurisdiction(conn: &mut DbConn, p: &Principal, new: NewJurisdiction) -> AppResult<JurisdictionView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let (path, depth) = match &new.parent_code {
            Some(parent) => {
                let parent = q::jurisdiction(conn, parent)?.filter(|j| p.in_scope(&j.path)).ok_or_else(|| {
                    AppError::invalid("parent_code", "not_found", "no such jurisdiction in your scope")
                })?;
                (format!("{}{}/", parent.path, new.code), parent.depth + 1)
            }
            None if p.scope_path.is_none() => (format!("/{}/", new.code), 0),
            None => {
                return Err(AppError::invalid("parent_code", "required", "only a whole-tree admin may create a root"))
            }
        };
        if q::jurisdiction(conn, &new.code)?.is_some() {
            return Err(AppError::conflict("already_exists", format!("jurisdiction {} already exists", new.code)));
        }
        let t = to_db(now());
        let row = Jurisdiction {
            code: new.code,
            name: new.name,
            parent_code: new.parent_code,
            path,
            depth,
            created_at: t,
            updated_at: t,
        };
        q::insert_jurisdiction(conn, &row)?;
        audit::record(
            conn,
            p,
            "jurisdiction.created",
            "jurisdiction",
            &row.code,
            Some(&row.path),
            json!({ "name": row.name, "parent_code": row.parent_code }),
        )?;
        Ok(row.into())
    })
}

/// Lists the caller's subtree, optionally only the children of `parent`.
pub fn list_jurisdictions(
    conn: &mut DbConn,
    p: &Principal,
    parent: Option<String>,
    page: PageRequest,
) -> AppResult<Page<JurisdictionView>> {
    let range = scope_range(p);
    let rows = q::list_jurisdictions(conn, as_refs(&range), parent.as_deref(), page.after.as_deref(), page.limit + 1)?;
    Ok(paginate(rows, page.limit, |j| j.code.clone(), JurisdictionView::from))
}

/// One jurisdiction.
pub fn get_jurisdiction(conn: &mut DbConn, p: &Principal, code: &str) -> AppResult<JurisdictionView> {
    visible_jurisdiction(conn, p, code).map(Into::into)
}

/// Reads a PATCH body: `{name}`.
pub fn parse_rename(body: &Value) -> AppResult<String> {
    let mut i = Input::new(body);
    let name = i.text("name", 100, false);
    i.finish()?;
    need(name, "name")
}

/// Renames a jurisdiction in the caller's subtree.
pub fn rename_jurisdiction(conn: &mut DbConn, p: &Principal, code: &str, name: String) -> AppResult<JurisdictionView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let j = visible_jurisdiction(conn, p, code)?;
        q::rename_jurisdiction(conn, code, &name, to_db(now()))?;
        audit::record(
            conn,
            p,
            "jurisdiction.renamed",
            "jurisdiction",
            code,
            Some(&j.path),
            json!({ "from": j.name, "to": name }),
        )?;
        visible_jurisdiction(conn, p, code).map(Into::into)
    })
}

/// A department as the API shows it.
#[derive(Debug, Serialize)]
pub struct DepartmentView {
    pub id: String,
    pub name: String,
    pub jurisdiction_code: String,
    pub active: bool,
    #[serde(with = "ts")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "ts")]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Department> for DepartmentView {
    fn from(d: Department) -> Self {
        DepartmentView {
            id: d.id,
            name: d.name,
            jurisdiction_code: d.jurisdiction_code,
            active: d.active,
            created_at: from_db(d.created_at),
            updated_at: from_db(d.updated_at),
        }
    }
}

/// A department the caller can see (its jurisdiction is in scope), or 404.
pub fn visible_department(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<Department> {
    let dept = q::department(conn, id)?.ok_or_else(|| AppError::not_found("department"))?;
    visible_jurisdiction(conn, p, &dept.jurisdiction_code).map_err(|_| AppError::not_found("department"))?;
    Ok(dept)
}

/// Body of `POST /departments`.
pub struct NewDepartment {
    name: String,
    jurisdiction_code: String,
}

impl NewDepartment {
    /// Validates the body.
    pub fn parse(body: &Value) -> AppResult<Self> {
        let mut i = Input::new(body);
        let name = i.text("name", 100, false);
        let jurisdiction_code = i.text("jurisdiction_code", 12, false);
        i.finish()?;
        Ok(NewDepartment {
            name: need(name, "name")?,
            jurisdiction_code: need(jurisdiction_code, "jurisdiction_code")?,
        })
    }
}

/// Creates a department in a jurisdiction of the caller's subtree.
pub fn create_department(conn: &mut DbConn, p: &Principal, new: NewDepartment) -> AppResult<DepartmentView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        visible_jurisdiction(conn, p, &new.jurisdiction_code)
            .map_err(|_| AppError::invalid("jurisdiction_code", "not_found", "no such jurisdiction in your scope"))?;
        let t = to_db(now());
        let row = Department {
            id: new_id(),
            name: new.name,
            jurisdiction_code: new.jurisdiction_code,
            active: true,
            created_at: t,
            updated_at: t,
        };
        q::insert_department(conn, &row).map_err(|e| match AppError::from(e) {
            AppError::Conflict { .. } => {
                AppError::conflict("already_exists", "a department of that name exists in this jurisdiction")
            }
            other => other,
        })?;
        let path = visible_jurisdiction(conn, p, &row.jurisdiction_code)?.path;
        audit::record(
            conn,
            p,
            "department.created",
            "department",
            &row.id,
            Some(&path),
            json!({ "name": row.name, "jurisdiction_code": row.jurisdiction_code }),
        )?;
        Ok(row.into())
    })
}

/// Departments in the caller's subtree.
pub fn list_departments(
    conn: &mut DbConn,
    p: &Principal,
    jurisdiction: Option<String>,
    page: PageRequest,
) -> AppResult<Page<DepartmentView>> {
    let range = scope_range(p);
    let rows =
        q::list_departments(conn, as_refs(&range), jurisdiction.as_deref(), page.after.as_deref(), page.limit + 1)?;
    Ok(paginate(rows, page.limit, |d| d.id.clone(), DepartmentView::from))
}

/// One department.
pub fn get_department(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<DepartmentView> {
    visible_department(conn, p, id).map(Into::into)
}

/// Reads a department PATCH body: `{name?, active?}`.
pub fn parse_department_changes(body: &Value) -> AppResult<DepartmentChanges> {
    let mut i = Input::new(body);
    let changes = DepartmentChanges {
        name: i.opt_text("name", 100, false),
        active: i.opt_bool("active"),
        updated_at: Some(to_db(now())),
    };
    i.finish()?;
    Ok(changes)
}

/// Changes a department in the caller's subtree.
pub fn update_department(
    conn: &mut DbConn,
    p: &Principal,
    id: &str,
    changes: DepartmentChanges,
) -> AppResult<DepartmentView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let dept = visible_department(conn, p, id)?;
        q::update_department(conn, id, &changes)?;
        let path = visible_jurisdiction(conn, p, &dept.jurisdiction_code)?.path;
        audit::record(
            conn,
            p,
            "department.updated",
            "department",
            id,
            Some(&path),
            json!({ "name": changes.name, "active": changes.active }),
        )?;
        visible_department(conn, p, id).map(Into::into)
    })
}

/// A category as the API shows it. It is also an Open311 service: `description`, `group`,
/// `keywords` and `attributes` are what the service list and definition publish.
#[derive(Debug, Serialize)]
pub struct CategoryView {
    pub code: String,
    pub name: String,
    pub deadline_days: i32,
    pub active: bool,
    pub description: Option<String>,
    pub group: Option<String>,
    pub keywords: Vec<String>,
    pub attributes: Vec<AttributeDef>,
    #[serde(with = "ts")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "ts")]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The keywords of a category as stored (comma-separated).
pub fn keywords_of(c: &Category) -> Vec<String> {
    c.keywords
        .as_deref()
        .map(|k| k.split(',').filter(|w| !w.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn category_view(c: Category) -> AppResult<CategoryView> {
    let attributes = stored_defs(c.attributes.as_deref())?;
    Ok(CategoryView {
        keywords: keywords_of(&c),
        code: c.code,
        name: c.name,
        deadline_days: c.deadline_days,
        active: c.active,
        description: c.description,
        group: c.service_group,
        attributes,
        created_at: from_db(c.created_at),
        updated_at: from_db(c.updated_at),
    })
}

/// The Open311 fields of a category body: `description`, `group`, `keywords`, `attributes`.
/// For a change, `Some(None)` clears a field (`""` for the texts, `[]` for the lists).
struct ServiceFields {
    description: Option<Option<String>>,
    group: Option<Option<String>>,
    keywords: Option<Option<String>>,
    attributes: Option<Option<String>>,
}

/// The longest category description.
pub const MAX_CATEGORY_DESCRIPTION: usize = 1000;

fn read_service_fields(i: &mut Input<'_>) -> AppResult<ServiceFields> {
    let clearable = |i: &mut Input<'_>, name: &str, max: usize, multiline: bool| {
        i.has(name).then(|| i.opt_text(name, max, multiline))
    };
    let description = clearable(i, "description", MAX_CATEGORY_DESCRIPTION, true);
    let group = clearable(i, "group", 100, false);
    let keywords = i.opt_strings("keywords", 20, 50);
    if keywords.as_ref().is_some_and(|k| k.iter().any(|w| w.contains(','))) {
        i.error("keywords", "invalid_value", "a keyword must not contain a comma");
    }
    let attributes = read_attribute_defs(i);
    let attributes = match attributes {
        None => None,
        Some(defs) if defs.is_empty() => Some(None),
        Some(defs) => Some(Some(serde_json::to_string(&defs).map_err(AppError::internal)?)),
    };
    let keywords = keywords.map(|k| {
        let mut unique: Vec<String> = Vec::with_capacity(k.len());
        for word in k {
            if !unique.contains(&word) {
                unique.push(word);
            }
        }
        (!unique.is_empty()).then(|| unique.join(","))
    });
    Ok(ServiceFields { description, group, keywords, attributes })
}

/// Whether a category code is acceptable: lower-case ASCII letters, digits, `_`, `-`, `.`; 1–32.
pub fn is_category_code(code: &str) -> bool {
    (1..=32).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
}

/// Longest default deadline, in days.
pub const MAX_DEADLINE_DAYS: i64 = 3650;

/// Body of `POST /categories`.
pub struct NewCategory {
    code: String,
    name: String,
    deadline_days: i32,
    service: ServiceFields,
}

impl NewCategory {
    /// Validates the body.
    pub fn parse(body: &Value) -> AppResult<Self> {
        let mut i = Input::new(body);
        let code = i.text("code", 32, false);
        let name = i.text("name", 100, false);
        let deadline_days = i.int("deadline_days", 1, MAX_DEADLINE_DAYS);
        if code.as_deref().is_some_and(|c| !is_category_code(c)) {
            i.error("code", "invalid_format", "lower-case letters, digits, '_', '-' and '.' only");
        }
        let service = read_service_fields(&mut i)?;
        i.finish()?;
        Ok(NewCategory {
            code: need(code, "code")?,
            name: need(name, "name")?,
            deadline_days: need(deadline_days, "deadline_days")? as i32,
            service,
        })
    }
}

/// Categories are shared by the whole tree, so only a whole-tree admin changes them.
fn require_tree_admin(p: &Principal) -> AppResult<()> {
    p.require_admin()?;
    if p.scope_path.is_some() {
        return Err(AppError::forbidden(
            "categories are shared by the whole tree; only a whole-tree admin may change them",
        ));
    }
    Ok(())
}

/// Creates a category.
pub fn create_category(conn: &mut DbConn, p: &Principal, new: NewCategory) -> AppResult<CategoryView> {
    require_tree_admin(p)?;
    write_tx(conn, |conn| {
        if q::category(conn, &new.code)?.is_some() {
            return Err(AppError::conflict("already_exists", format!("category {} already exists", new.code)));
        }
        let t = to_db(now());
        let row = Category {
            code: new.code,
            name: new.name,
            deadline_days: new.deadline_days,
            active: true,
            created_at: t,
            updated_at: t,
            description: new.service.description.flatten(),
            service_group: new.service.group.flatten(),
            keywords: new.service.keywords.flatten(),
            attributes: new.service.attributes.flatten(),
        };
        q::insert_category(conn, &row)?;
        audit::record(
            conn,
            p,
            "category.created",
            "category",
            &row.code,
            None,
            json!({ "name": row.name, "deadline_days": row.deadline_days, "description": row.description,
                    "group": row.service_group, "keywords": row.keywords, "attributes": row.attributes }),
        )?;
        category_view(row)
    })
}

/// All categories.
pub fn list_categories(conn: &mut DbConn, page: PageRequest) -> AppResult<Page<CategoryView>> {
    let rows = q::list_categories(conn, page.after.as_deref(), page.limit + 1)?;
    let page = paginate(rows, page.limit, |c| c.code.clone(), category_view);
    Ok(Page { items: page.items.into_iter().collect::<AppResult<_>>()?, next_cursor: page.next_cursor })
}

/// One category.
pub fn get_category(conn: &mut DbConn, code: &str) -> AppResult<CategoryView> {
    category_view(q::category(conn, code)?.ok_or_else(|| AppError::not_found("category"))?)
}

/// Reads a category PATCH body: `{name?, deadline_days?, active?, description?, group?,
/// keywords?, attributes?}`; `""` clears a text, `[]` a list.
pub fn parse_category_changes(body: &Value) -> AppResult<CategoryChanges> {
    let mut i = Input::new(body);
    let name = i.opt_text("name", 100, false);
    let deadline_days = i.opt_int("deadline_days", 1, MAX_DEADLINE_DAYS).map(|d| d as i32);
    let active = i.opt_bool("active");
    let service = read_service_fields(&mut i)?;
    i.finish()?;
    Ok(CategoryChanges {
        name,
        deadline_days,
        active,
        updated_at: Some(to_db(now())),
        description: service.description,
        service_group: service.group,
        keywords: service.keywords,
        attributes: service.attributes,
    })
}

/// Changes a category.
pub fn update_category(
    conn: &mut DbConn,
    p: &Principal,
    code: &str,
    changes: CategoryChanges,
) -> AppResult<CategoryView> {
    require_tree_admin(p)?;
    write_tx(conn, |conn| {
        if q::update_category(conn, code, &changes)? == 0 {
            return Err(AppError::not_found("category"));
        }
        audit::record(
            conn,
            p,
            "category.updated",
            "category",
            code,
            None,
            json!({ "name": changes.name, "deadline_days": changes.deadline_days, "active": changes.active,
                    "description": changes.description, "group": changes.service_group,
                    "keywords": changes.keywords, "attributes": changes.attributes }),
        )?;
        get_category(conn, code)
    })
}

/// A programme as the API shows it.
#[derive(Debug, Serialize)]
pub struct ProgrammeView {
    pub id: String,
    pub name: String,
    pub year: i32,
    pub jurisdiction_code: String,
    pub description: Option<String>,
    #[serde(with = "ts")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "ts")]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Programme> for ProgrammeView {
    fn from(p: Programme) -> Self {
        ProgrammeView {
            id: p.id,
            name: p.name,
            year: p.year,
            jurisdiction_code: p.jurisdiction_code,
            description: p.description,
            created_at: from_db(p.created_at),
            updated_at: from_db(p.updated_at),
        }
    }
}

/// A programme the caller can see, or 404.
pub fn visible_programme(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<Programme> {
    let prog = q::programme(conn, id)?.ok_or_else(|| AppError::not_found("programme"))?;
    visible_jurisdiction(conn, p, &prog.jurisdiction_code).map_err(|_| AppError::not_found("programme"))?;
    Ok(prog)
}

/// Body of `POST /programmes`.
pub struct NewProgramme {
    name: String,
    year: i32,
    jurisdiction_code: String,
    description: Option<String>,
}

impl NewProgramme {
    /// Validates the body.
    pub fn parse(body: &Value) -> AppResult<Self> {
        let mut i = Input::new(body);
        let name = i.text("name", 200, false);
        let year = i.int("year", 2000, 2100);
        let jurisdiction_code = i.text("jurisdiction_code", 12, false);
        let description = i.opt_text("description", 4000, true);
        i.finish()?;
        Ok(NewProgramme {
            name: need(name, "name")?,
            year: need(year, "year")? as i32,
            jurisdiction_code: need(jurisdiction_code, "jurisdiction_code")?,
            description,
        })
    }
}

/// Creates a programme in a jurisdiction of the caller's subtree.
pub fn create_programme(conn: &mut DbConn, p: &Principal, new: NewProgramme) -> AppResult<ProgrammeView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        visible_jurisdiction(conn, p, &new.jurisdiction_code)
            .map_err(|_| AppError::invalid("jurisdiction_code", "not_found", "no such jurisdiction in your scope"))?;
        let t = to_db(now());
        let row = Programme {
            id: new_id(),
            name: new.name,
            year: new.year,
            jurisdiction_code: new.jurisdiction_code,
            description: new.description,
            created_at: t,
            updated_at: t,
        };
        q::insert_programme(conn, &row).map_err(|e| match AppError::from(e) {
            AppError::Conflict { .. } => {
                AppError::conflict("already_exists", "a programme of that name and year exists in this jurisdiction")
            }
            other => other,
        })?;
        let path = visible_jurisdiction(conn, p, &row.jurisdiction_code)?.path;
        audit::record(
            conn,
            p,
            "programme.created",
            "programme",
            &row.id,
            Some(&path),
            json!({ "name": row.name, "year": row.year }),
        )?;
        Ok(row.into())
    })
}

/// Programmes in the caller's subtree.
pub fn list_programmes(
    conn: &mut DbConn,
    p: &Principal,
    year: Option<i32>,
    jurisdiction: Option<String>,
    page: PageRequest,
) -> AppResult<Page<ProgrammeView>> {
    let range = scope_range(p);
    let rows = q::list_programmes(
        conn,
        as_refs(&range),
        year,
        jurisdiction.as_deref(),
        page.after.as_deref(),
        page.limit + 1,
    )?;
    Ok(paginate(rows, page.limit, |p| p.id.clone(), ProgrammeView::from))
}

/// One programme.
pub fn get_programme(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<ProgrammeView> {
    visible_programme(conn, p, id).map(Into::into)
}

/// Reads a programme PATCH body: `{name?, description?}`.
pub fn parse_programme_changes(body: &Value) -> AppResult<ProgrammeChanges> {
    let mut i = Input::new(body);
    let changes = ProgrammeChanges {
        name: i.opt_text("name", 200, false),
        description: i.opt_text("description", 4000, true),
        updated_at: Some(to_db(now())),
    };
    i.finish()?;
    Ok(changes)
}

/// Changes a programme in the caller's subtree.
pub fn update_programme(
    conn: &mut DbConn,
    p: &Principal,
    id: &str,
    changes: ProgrammeChanges,
) -> AppResult<ProgrammeView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let prog = visible_programme(conn, p, id)?;
        q::update_programme(conn, id, &changes)?;
        let path = visible_jurisdiction(conn, p, &prog.jurisdiction_code)?.path;
        audit::record(
            conn,
            p,
            "programme.updated",
            "programme",
            id,
            Some(&path),
            json!({ "name": changes.name, "description": changes.description }),
        )?;
        visible_programme(conn, p, id).map(Into::into)
    })
}
