//! Who is asking, and what their role and place in the jurisdiction tree let them see.

use super::types::{Role, Scope};
use crate::error::{AppError, AppResult};

/// Whether the caller is a person or an integrating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A signed-in user (JWT).
    User,
    /// An integration client (API key).
    ApiClient,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User or API client id.
    pub id: String,
    /// Username or client name, recorded on events.
    pub name: String,
    /// Person or system.
    pub kind: PrincipalKind,
    /// The role.
    pub role: Role,
    /// Home jurisdiction; `None` for a whole-tree admin.
    pub jurisdiction_code: Option<String>,
    /// Materialised path of the home jurisdiction (`/530000/530600/`); `None` = the whole tree.
    pub scope_path: Option<String>,
    /// The caseworker's department.
    pub department_id: Option<String>,
    /// The sign-in session the access token belongs to (users only).
    pub session_id: Option<String>,
    /// What an API client's key allows (role `integration`); empty for users.
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Whether a jurisdiction (by its materialised path) is in the caller's subtree.
    pub fn in_scope(&self, path: &str) -> bool {
        self.scope_path.as_deref().is_none_or(|scope| path.starts_with(scope))
    }

    /// Whether the caller may read a case in `path`, created by `created_by`, held by `department_id`.
    /// Caseworkers see what they created and what their department holds; integration clients
    /// see what they created, and only with `cases:read_own`; the others see their subtree.
    pub fn can_read_case(&self, path: &str, created_by: &str, department_id: Option<&str>) -> bool {
        if !self.in_scope(path) {
            return false;
        }
        match self.role {
            Role::Caseworker => {
                created_by == self.id || (department_id.is_some() && department_id == self.department_id.as_deref())
            }
            Role::Integration => created_by == self.id && self.has_scope(Scope::CasesReadOwn),
            Role::Admin | Role::Supervisor | Role::Viewer => true,
        }
    }

    /// Whether the caller's API key carries `scope` (always false for users, who have none).
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Refuses an API client whose key lacks `scope` (403 `scope_missing`).
    pub fn require_scope(&self, scope: Scope) -> AppResult<()> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden { code: "scope_missing", detail: format!("this API key lacks the scope {scope}") })
        }
    }

    /// Refuses an API client what only people have: a password and a sign-in session
    /// (403 `role_not_permitted`).
    pub fn require_user(&self) -> AppResult<()> {
        match self.kind {
            PrincipalKind::User => Ok(()),
            PrincipalKind::ApiClient => Err(AppError::Forbidden {
                code: "role_not_permitted",
                detail: "an API key has no password and no session: rotate or revoke the client instead".to_owned(),
            }),
        }
    }

    /// Refuses anyone but an admin.
    pub fn require_admin(&self) -> AppResult<()> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::Forbidden { code: "admin_only", detail: "only administrators may do this".to_owned() })
        }
    }

    /// Refuses those who may not log cases: viewers (who only read), and API clients without
    /// `cases:create`.
    pub fn require_case_intake(&self) -> AppResult<()> {
        match self.role {
            Role::Viewer => Err(AppError::Forbidden {
                code: "role_not_permitted",
                detail: "viewers have read-only access".to_owned(),
            }),
            Role::Integration => self.require_scope(Scope::CasesCreate),
            Role::Admin | Role::Supervisor | Role::Caseworker => Ok(()),
        }
    }
}

/// The exclusive upper bound of a materialised-path prefix range: every path that starts with
/// `prefix` (which ends in `/`) is `>= prefix` and `< upper_bound(prefix)`. Lets a subtree filter
/// use a B-tree index on both databases.
pub fn upper_bound(prefix: &str) -> String {
    let mut upper = prefix.trim_end_matches('/').to_owned();
    upper.push('0'); // '0' is the byte after '/'
    upper
}
