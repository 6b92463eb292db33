//! Users: sign-in, creation by admins, listing, and the caller's own profile.

use serde::Serialize;
use serde_json::Value;

use super::reference::visible_jurisdiction;
use super::{new_id, paginate, Page, PageRequest};
use crate::auth::password::check_policy;
use crate::db::models::User;
use crate::db::{reference, users as q, write_tx, DbConn};
use crate::domain::access::{upper_bound, Principal, PrincipalKind};
use crate::domain::input::{need, Input};
use crate::domain::types::Role;
use crate::domain::util::{from_db, now, to_db, ts};
use crate::error::{AppError, AppResult};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub role: String,
    pub jurisdiction_code: Option<String>,
    pub department_id: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    #[serde(with = "ts")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "ts")]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            username: u.username,
            role: u.role,
            jurisdiction_code: u.jurisdiction_code,
            department_id: u.department_id,
            display_name: u.display_name,
            active: u.active,
            created_at: from_db(u.created_at),
            updated_at: from_db(u.updated_at),
        }
    }
}

/// Whether a username is acceptable: 3–64 of ASCII letters, digits, `_ . @ -`.
pub fn is_username(name: &str) -> bool {
    (3..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'))
}

/// Body of `POST /auth/login`.
pub struct Login {
    /// Username.
    pub username: String,
    /// Password, in clear only for as long as verifying takes.
    pub password: String,
}

impl Login {
    /// Validates the body.
    pub fn parse(body: &Value) -> AppResult<Self> {
        let mut i = Input::new(body);
        let username = i.text("username", 64, false);
        let password = i.secret("password", 128);
        i.finish()?;
        Ok(Login { username: need(username, "username")?, password: need(password, "password")? })
    }
}

/// The signed-in principal for a user row, with its scope path.
pub fn principal_for(conn: &mut DbConn, user: &User) -> AppResult<Principal> {
    let role =
        Role::parse_user(&user.role).ok_or_else(|| AppError::Internal(format!("user {} has unknown role", user.id)))?;
    let scope_path = match &user.jurisdiction_code {
        Some(code) => Some(
            reference::jurisdiction(conn, code)?
                .ok_or_else(|| AppError::Internal(format!("user {} has a missing jurisdiction", user.id)))?
                .path,
        ),
        None => None,
    };
    Ok(Principal {
        id: user.id.clone(),
        name: user.username.clone(),
        kind: PrincipalKind::User,
        role,
        jurisdiction_code: user.jurisdiction_code.clone(),
        scope_path,
        department_id: user.department_id.clone(),
        session_id: None,
        scopes: Vec::new(),
    })
}

/// Looks the user up for sign-in: the active user with that name and its principal, or `None`.
pub fn find_for_login(conn: &mut DbConn, username: &str) -> AppResult<Option<(String, Principal)>> {
    match q::by_username(conn, username)? {
        Some(user) if user.active => {
            let principal = principal_for(conn, &user)?;
            Ok(Some((user.password_hash, principal)))
        }
        _ => Ok(None),
    }
}

/// Body of `POST /users`, password checked against the policy.
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    pub jurisdiction_code: Option<String>,
    pub department_id: Option<String>,
    pub display_name: Option<String>,
}

impl NewUser {
    /// Validates the body.
    pub fn parse(body: &Value) -> AppResult<Self> {
        let mut i = Input::new(body);
        let username = i.text("username", 64, false);
        let password = i.secret("password", 128);
        let role = i.choice("role", Role::parse_user, Role::USER_ROLE_NAMES);
        let jurisdiction_code = i.opt_text("jurisdiction_code", 12, false);
        let department_id = i.opt_uuid("department_id");
        let display_name = i.opt_text("display_name", 100, false);
        if let Some(u) = &username {
            if !is_username(u) {
                i.error("username", "invalid_format", "3-64 characters: letters, digits, '_', '.', '@', '-'");
            }
            if let Some(pw) = &password {
                if let Err(why) = check_policy(pw, u) {
                    i.error("password", "weak_password", format!("the password {why}"));
                }
            }
        }
        if role == Some(Role::Caseworker) && department_id.is_none() && !i.has("department_id") {
            i.error("department_id", "required", "a caseworker belongs to a department");
        }
        i.finish()?;
        Ok(NewUser {
            username: need(username, "username")?,
            password: need(password, "password")?,
            role: need(role, "role")?,
            jurisdiction_code,
            department_id,
            display_name,
        })
    }
}

/// Stores a user created by an admin; `password_hash` was computed off the async workers.
/// A scoped admin creates users only in their subtree (defaulting to their own jurisdiction).
pub fn create_user(conn: &mut DbConn, p: &Principal, new: NewUser, password_hash: String) -> AppResult<UserView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let jurisdiction_code = match new.jurisdiction_code.clone().or_else(|| p.jurisdiction_code.clone()) {
            Some(code) => {
                visible_jurisdiction(conn, p, &code).map_err(|_| {
                    AppError::invalid("jurisdiction_code", "not_found", "no such jurisdiction in your scope")
                })?;
                Some(code)
            }
            None => None,
        };
        if let Some(dept_id) = &new.department_id {
            let dept = reference::department(conn, dept_id)?
                .ok_or_else(|| AppError::invalid("department_id", "not_found", "no such department"))?;
            let dept_path = visible_jurisdiction(conn, p, &dept.jurisdiction_code)
                .map_err(|_| AppError::invalid("department_id", "not_found", "no such department in your scope"))?
                .path;
            let user_path = match &jurisdiction_code {
                Some(code) => Some(visible_jurisdiction(conn, p, code)?.path),
                None => None,
            };
            if user_path.is_some_and(|up| !dept_path.starts_with(&up)) {
                return Err(AppError::invalid(
                    "department_id",
                    "out_of_scope",
                    "the department is outside the user's jurisdiction",
                ));
            }
        }
        let path = match &jurisdiction_code {
            Some(code) => reference::jurisdiction(conn, code)?.map(|j| j.path),
            None => None,
        };
        let user = create_unchecked(conn, &new, password_hash, jurisdiction_code)?;
        let details = serde_json::json!({ "username": user.username, "role": user.role, "jurisdiction_code": user.jurisdiction_code, "department_id": user.department_id });
        super::audit::record(conn, p, "user.created", "user", &user.id, path.as_deref(), details)?;
        Ok(user)
    })
}

fn create_unchecked(
    conn: &mut DbConn,
    new: &NewUser,
    password_hash: String,
    jurisdiction_code: Option<String>,
) -> AppResult<UserView> {
    if q::by_username(conn, &new.username)?.is_some() {
        return Err(AppError::conflict("username_taken", format!("the username {} is taken", new.username)));
    }
    let t = to_db(now());
    let user = User {
        id: new_id(),
        username: new.username.clone(),
        password_hash,
        role: new.role.as_str().to_owned(),
        jurisdiction_code,
        department_id: new.department_id.clone(),
        display_name: new.display_name.clone(),
        active: true,
        created_at: t,
        updated_at: t,
    };
    q::insert(conn, &user)?;
    tracing::info!(user_id = %user.id, role = %user.role, "user created");
    Ok(user.into())
}

/// `minsheng create-admin`: an admin of `jurisdiction_code`'s subtree, or of the whole tree.
pub fn create_admin(conn: &mut DbConn, new: NewUser, password_hash: String) -> AppResult<UserView> {
    write_tx(conn, |conn| {
        if let Some(code) = &new.jurisdiction_code {
            if reference::jurisdiction(conn, code)?.is_none() {
                return Err(AppError::invalid("jurisdiction_code", "not_found", format!("no jurisdiction {code}")));
            }
        }
        let code = new.jurisdiction_code.clone();
        create_unchecked(conn, &new, password_hash, code)
    })
}

/// Users in the caller's subtree (admins only).
pub fn list_users(conn: &mut DbConn, p: &Principal, page: PageRequest) -> AppResult<Page<UserView>> {
    p.require_admin()?;
    let range = p.scope_path.as_ref().map(|s| (s.clone(), upper_bound(s)));
    let rows =
        q::list(conn, range.as_ref().map(|(a, b)| (a.as_str(), b.as_str())), page.after.as_deref(), page.limit + 1)?;
    Ok(paginate(rows, page.limit, |u| u.username.clone(), UserView::from))
}

/// The caller's own user record.
pub fn me(conn: &mut DbConn, p: &Principal) -> AppResult<UserView> {
    q::by_id(conn, &p.id)?.map(Into::into).ok_or_else(|| AppError::not_found("user"))
}

/// A user in the caller's subtree, or 404.
pub fn get_user(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<UserView> {
    p.require_admin()?;
    let user = q::by_id(conn, id)?.ok_or_else(|| AppError::not_found("user"))?;
    let in_scope = match (&p.scope_path, &user.jurisdiction_code) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(_), Some(code)) => visible_jurisdiction(conn, p, code).is_ok(),
    };
    if in_scope {
        Ok(user.into())
    } else {
        Err(AppError::not_found("user"))
    }
}

/// The stored password hash of a user (to check a current password).
pub fn password_hash(conn: &mut DbConn, user_id: &str) -> AppResult<String> {
    q::by_id(conn, user_id)?.map(|u| u.password_hash).ok_or_else(|| AppError::not_found("user"))
}

fn user_path(conn: &mut DbConn, user: &User) -> AppResult<Option<String>> {
    Ok(match &user.jurisdiction_code {
        Some(code) => reference::jurisdiction(conn, code)?.map(|j| j.path),
        None => None,
    })
}

/// Sets a user's password (their own, or as an admin in scope) and ends all their sessions;
/// returns the ended session ids.
pub fn set_password(conn: &mut DbConn, p: &Principal, user_id: &str, password_hash: String) -> AppResult<Vec<String>> {
    write_tx(conn, |conn| {
        let user = q::by_id(conn, user_id)?.ok_or_else(|| AppError::not_found("user"))?;
        let changes = crate::db::models::UserChangeset {
            password_hash: Some(password_hash),
            updated_at: Some(to_db(now())),
            ..Default::default()
        };
        q::update(conn, user_id, &changes)?;
        let ended = super::sessions::revoke_all(conn, user_id, "password_changed", now())?;
        let action = if p.id == user_id { "user.password_changed" } else { "user.password_reset" };
        let path = user_path(conn, &user)?;
        super::audit::record(
            conn,
            p,
            action,
            "user",
            user_id,
            path.as_deref(),
            serde_json::json!({ "sessions_ended": ended.len() }),
        )?;
        Ok(ended)
    })
}

/// Body of `PATCH /users/{id}`.
pub struct UserChanges {
    role: Option<Role>,
    jurisdiction_code: Option<String>,
    department_id: Option<String>,
    display_name: Option<String>,
    active: Option<bool>,
}

impl UserChanges {
    /// Validates the body.
    pub fn parse(body: &Value) -> AppResult<Self> {
        let mut i = Input::new(body);
        let changes = UserChanges {
            role: i.opt_choice("role", Role::parse_user, Role::USER_ROLE_NAMES),
            jurisdiction_code: i.opt_text("jurisdiction_code", 12, false),
            department_id: i.opt_uuid("department_id"),
            display_name: i.opt_text("display_name", 100, false),
            active: i.opt_bool("active"),
        };
        i.finish()?;
        Ok(changes)
    }
}

/// Changes a user in the caller's subtree. Changing what they may do (role, jurisdiction,
/// department, active) ends their sessions, so no token outlives the rights it was issued for.
pub fn update_user(conn: &mut DbConn, p: &Principal, id: &str, c: UserChanges) -> AppResult<(UserView, Vec<String>)> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let current = get_user(conn, p, id)?;
        if id == p.id && (c.role.is_some_and(|r| r.as_str() != current.role) || c.active == Some(false)) {
            return Err(AppError::Forbidden {
                code: "self_modification",
                detail: "you cannot change your own role or disable yourself".to_owned(),
            });
        }
        let jurisdiction_code = c.jurisdiction_code.clone().or(current.jurisdiction_code.clone());
        let jurisdiction_path = match &c.jurisdiction_code {
            Some(code) => Some(
                visible_jurisdiction(conn, p, code)
                    .map_err(|_| {
                        AppError::invalid("jurisdiction_code", "not_found", "no such jurisdiction in your scope")
                    })?
                    .path,
            ),
            None => match &jurisdiction_code {
                Some(code) => reference::jurisdiction(conn, code)?.map(|j| j.path),
                None => None,
            },
        };
        let role = c.role.map_or(current.role.clone(), |r| r.as_str().to_owned());
        let department_id = c.department_id.clone().or(current.department_id.clone());
        if let Some(dept_id) =
            department_id.as_ref().filter(|_| c.department_id.is_some() || c.jurisdiction_code.is_some())
        {
            let dept = reference::department(conn, dept_id)?
                .filter(|d| d.active)
                .ok_or_else(|| AppError::invalid("department_id", "not_found", "no such active department"))?;
            let dept_path = visible_jurisdiction(conn, p, &dept.jurisdiction_code)
                .map_err(|_| {
                    AppError::invalid("department_id", "not_found", "no such active department in your scope")
                })?
                .path;
            if jurisdiction_path.as_ref().is_some_and(|up| !dept_path.starts_with(up.as_str())) {
                return Err(AppError::invalid(
                    "department_id",
                    "out_of_scope",
                    "the department is outside the user's jurisdiction",
                ));
            }
        }
        if role == Role::Caseworker.as_str() && department_id.is_none() {
            return Err(AppError::invalid("department_id", "required", "a caseworker belongs to a department"));
        }
        let rights_changed = role != current.role
            || jurisdiction_code != current.jurisdiction_code
            || department_id != current.department_id
            || c.active.is_some_and(|a| a != current.active);
        let changes = crate::db::models::UserChangeset {
            role: c.role.map(|r| r.as_str().to_owned()),
            jurisdiction_code: c.jurisdiction_code.clone(),
            department_id: c.department_id.clone(),
            display_name: c.display_name.clone(),
            active: c.active,
            password_hash: None,
            updated_at: Some(to_db(now())),
        };
        q::update(conn, id, &changes)?;
        let ended =
            if rights_changed { super::sessions::revoke_all(conn, id, "rights_changed", now())? } else { Vec::new() };
        let details = serde_json::json!({
            "role": c.role.map(Role::as_str), "jurisdiction_code": c.jurisdiction_code, "department_id": c.department_id,
            "display_name": c.display_name, "active": c.active, "sessions_ended": ended.len(),
        });
        super::audit::record(conn, p, "user.updated", "user", id, jurisdiction_path.as_deref(), details)?;
        let user = q::by_id(conn, id)?.ok_or_else(|| AppError::not_found("user"))?;
        Ok((user.into(), ended))
    })
}
