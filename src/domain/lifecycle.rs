//! The case lifecycle: which action is allowed from which status, who may take it, and what it
//! changes. [`RULES`] is the whole state machine in one table; [`apply`] is what each action does.
//!
//! ```text
//! received ──assign──▶ assigned ──resolve──▶ resolved ──verify──▶ verified ──close──▶ closed
//!    ▲  ◀──return───────┘  ▲ ◀──────reject────────┘                                  │
//!    │                     └──────────────────────reopen─────────────────────────────┘
//!    └─ dismiss (received|assigned → closed), extend (received|assigned), comment (any)
//! ```

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::access::Principal;
use super::input::{need, Input};
use super::types::{Outcome, Role, Satisfaction, Scope, Status};
use crate::error::{AppError, AppResult};

pub use super::types::Action;

/// Who may take an action (on top of being able to read the case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Supervisors and admins of the case's jurisdiction.
    Supervisor,
    /// Caseworkers of the department the case is assigned to (and admins).
    AssignedDepartment,
    /// Anyone who can read the case, except read-only viewers (and API clients without the
    /// rule's `client_scope`).
    Reader,
}

/// One row of the state machine.
#[derive(Debug)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// Statuses it may be taken from.
    pub from: &'static [Status],
    /// The status it leads to; `None` keeps the current one.
    pub to: Option<Status>,
    /// Who may take it.
    pub who: Who,
    /// The scope an API client (role `integration`) needs to take it; `None`: clients never may.
    pub client_scope: Option<Scope>,
}

use Status::{Assigned, Closed, Received, Resolved, Verified};
const ANY: &[Status] = &[Received, Assigned, Resolved, Verified, Closed];

/// The lifecycle, one row per action (the brief's table).
pub const RULES: &[Rule] = &[
    Rule { action: Action::Assign, from: &[Received], to: Some(Assigned), who: Who::Supervisor, client_scope: None },
    Rule { action: Action::Reassign, from: &[Assigned], to: Some(Assigned), who: Who::Supervisor, client_scope: None },
    Rule { action: Action::Acknowledge, from: &[Assigned], to: None, who: Who::AssignedDepartment, client_scope: None },
    Rule {
        action: Action::Return,
        from: &[Assigned],
        to: Some(Received),
        who: Who::AssignedDepartment,
        client_scope: None,
    },
    Rule {
        action: Action::Resolve,
        from: &[Assigned],
        to: Some(Resolved),
        who: Who::AssignedDepartment,
        client_scope: None,
    },
    Rule { action: Action::Verify, from: &[Resolved], to: Some(Verified), who: Who::Supervisor, client_scope: None },
    Rule { action: Action::Reject, from: &[Resolved], to: Some(Assigned), who: Who::Supervisor, client_scope: None },
    Rule { action: Action::Close, from: &[Verified], to: Some(Closed), who: Who::Supervisor, client_scope: None },
    Rule {
        action: Action::Dismiss,
        from: &[Received, Assigned],
        to: Some(Closed),
        who: Who::Supervisor,
        client_scope: None,
    },
    Rule { action: Action::Reopen, from: &[Closed], to: Some(Assigned), who: Who::Supervisor, client_scope: None },
    Rule { action: Action::Extend, from: &[Received, Assigned], to: None, who: Who::Supervisor, client_scope: None },
    Rule { action: Action::Comment, from: ANY, to: None, who: Who::Reader, client_scope: Some(Scope::CasesComment) },
];

/// The rule for an action; `None` for `create`, which is not an action on an existing case.
pub fn rule(action: Action) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.action == action)
}

/// The actions the table allows from a status (regardless of who asks).
pub fn allowed_actions(status: Status) -> Vec<&'static str> {
    RULES.iter().filter(|r| r.from.contains(&status)).map(|r| r.action.as_str()).collect()
}

/// The lifecycle fields of a case: what actions read and change.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseState {
    pub id: String,
    pub status: Status,
    pub outcome: Option<Outcome>,
    pub department_id: Option<String>,
    pub assignee_id: Option<String>,
    pub due_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub satisfaction: Option<Satisfaction>,
    pub rework_count: i32,
    pub duplicate_of: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub first_assigned_at: Option<DateTime<Utc>>,
    pub first_acknowledged_at: Option<DateTime<Utc>>,
    /// The first acknowledgement came within the response window of the first assignment.
    pub responded: bool,
    /// The last resolution was on or before the deadline then in force.
    pub resolved_on_time: Option<bool>,
    /// Seconds from creation to the last resolution.
    pub resolution_secs: Option<i64>,
}

/// An action with its validated payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Assign { department_id: String, assignee_id: Option<String>, note: Option<String> },
    Reassign { department_id: String, assignee_id: Option<String>, note: Option<String> },
    Acknowledge,
    Return { reason: String },
    Resolve { resolution: String },
    Verify { satisfaction: Satisfaction, note: Option<String> },
    Reject { reason: String, satisfaction: Option<Satisfaction> },
    Close { note: Option<String> },
    Dismiss { outcome: Outcome, reason: String, duplicate_of: Option<String> },
    Reopen { reason: String, department_id: String, due_at: Option<DateTime<Utc>> },
    Extend { due_at: DateTime<Utc>, reason: String },
    Comment { text: String },
}

/// Longest free text accepted in an action (reason, resolution, note, comment).
pub const MAX_NOTE: usize = 4000;

impl Command {
    /// Reads and validates the body of `POST /cases/{id}/actions/<action>`.
    pub fn parse(action: Action, body: &Value) -> AppResult<Command> {
        let mut i = Input::new(body);
        let cmd = match action {
            Action::Create => return Err(AppError::not_found("action")),
            Action::Assign | Action::Reassign => {
                let department_id = i.uuid("department_id");
                let assignee_id = i.opt_uuid("assignee_id");
                let note = i.opt_text("note", MAX_NOTE, true);
                i.finish()?;
                let department_id = need(department_id, "department_id")?;
                if action == Action::Assign {
                    Command::Assign { department_id, assignee_id, note }
                } else {
                    Command::Reassign { department_id, assignee_id, note }
                }
            }
            Action::Acknowledge => {
                i.finish()?;
                Command::Acknowledge
            }
            Action::Return => {
                let reason = i.text("reason", MAX_NOTE, true);
                i.finish()?;
                Command::Return { reason: need(reason, "reason")? }
            }
            Action::Resolve => {
                let resolution = i.text("resolution", MAX_NOTE, true);
                i.finish()?;
                Command::Resolve { resolution: need(resolution, "resolution")? }
            }
            Action::Verify => {
                let satisfaction = i.choice("satisfaction", Satisfaction::parse, Satisfaction::NAMES);
                let note = i.opt_text("note", MAX_NOTE, true);
                if satisfaction == Some(Satisfaction::Unsatisfied) {
                    i.error(
                        "satisfaction",
                        "invalid_value",
                        "an unsatisfied citizen means rework: use the reject action",
                    );
                }
                i.finish()?;
                Command::Verify { satisfaction: need(satisfaction, "satisfaction")?, note }
            }
            Action::Reject => {
                let reason = i.text("reason", MAX_NOTE, true);
                let satisfaction = i.opt_choice("satisfaction", Satisfaction::parse, Satisfaction::NAMES);
                i.finish()?;
                Command::Reject { reason: need(reason, "reason")?, satisfaction }
            }
            Action::Close => {
                let note = i.opt_text("note", MAX_NOTE, true);
                i.finish()?;
                Command::Close { note }
            }
            Action::Dismiss => {
                let outcome = i.choice("outcome", Outcome::parse, Outcome::NAMES);
                let reason = i.text("reason", MAX_NOTE, true);
                let duplicate_of = i.opt_uuid("duplicate_of");
                match outcome {
                    Some(Outcome::Completed) => {
                        i.error("outcome", "invalid_value", "a dismissal cannot be completed: use verify and close")
                    }
                    Some(Outcome::Duplicate) if duplicate_of.is_none() && !i.has("duplicate_of") => {
                        i.error("duplicate_of", "required", "required when the outcome is duplicate")
                    }
                    Some(o) if o != Outcome::Duplicate && i.has("duplicate_of") => {
                        i.error("duplicate_of", "not_allowed", "only allowed when the outcome is duplicate")
                    }
                    _ => {}
                }
                i.finish()?;
                Command::Dismiss { outcome: need(outcome, "outcome")?, reason: need(reason, "reason")?, duplicate_of }
            }
            Action::Reopen => {
                let reason = i.text("reason", MAX_NOTE, true);
                let department_id = i.uuid("department_id");
                let due_at = i.opt_timestamp("due_at");
                i.finish()?;
                Command::Reopen {
                    reason: need(reason, "reason")?,
                    department_id: need(department_id, "department_id")?,
                    due_at,
                }
            }
            Action::Extend => {
                let due_at = i.timestamp("due_at");
                let reason = i.text("reason", MAX_NOTE, true);
                i.finish()?;
                Command::Extend { due_at: need(due_at, "due_at")?, reason: need(reason, "reason")? }
            }
            Action::Comment => {
                let text = i.text("text", MAX_NOTE, true);
                i.finish()?;
                Command::Comment { text: need(text, "text")? }
            }
        };
        Ok(cmd)
    }

    /// The action this command performs.
    pub fn action(&self) -> Action {
        match self {
            Command::Assign { .. } => Action::Assign,
            Command::Reassign { .. } => Action::Reassign,
            Command::Acknowledge => Action::Acknowledge,
            Command::Return { .. } => Action::Return,
            Command::Resolve { .. } => Action::Resolve,
            Command::Verify { .. } => Action::Verify,
            Command::Reject { .. } => Action::Reject,
            Command::Close { .. } => Action::Close,
            Command::Dismiss { .. } => Action::Dismiss,
            Command::Reopen { .. } => Action::Reopen,
            Command::Extend { .. } => Action::Extend,
            Command::Comment { .. } => Action::Comment,
        }
    }

    /// The department the command hands the case to, which the caller must check exists and is
    /// in scope before applying.
    pub fn target_department(&self) -> Option<&str> {
        match self {
            Command::Assign { department_id, .. }
            | Command::Reassign { department_id, .. }
            | Command::Reopen { department_id, .. } => Some(department_id),
            _ => None,
        }
    }
}

/// What an applied action records in the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub action: Action,
    pub from_status: Status,
    pub to_status: Status,
    pub note: Option<String>,
    pub data: Value,
}

/// Refuses roles that may never take `action` (403 `role_not_permitted`), and API clients whose key
/// lacks the action's scope (403 `scope_missing`), before anything about the case is looked at.
pub fn check_role(action: Action, actor: &Principal) -> AppResult<()> {
    let rule = rule(action).ok_or_else(|| AppError::not_found("action"))?;
    let role_ok = match (actor.role, rule.who) {
        // API clients take only the actions the table grants a scope for.
        (Role::Integration, _) => rule.client_scope.is_some(),
        (role, Who::Supervisor) => role.supervises(),
        (role, Who::AssignedDepartment) => matches!(role, Role::Admin | Role::Caseworker),
        (role, Who::Reader) => role != Role::Viewer,
    };
    if !role_ok {
        return Err(AppError::Forbidden {
            code: "role_not_permitted",
            detail: format!("the {} role may not {action} a case", actor.role),
        });
    }
    match rule.client_scope {
        Some(scope) if actor.role == Role::Integration => actor.require_scope(scope),
        _ => Ok(()),
    }
}

/// Checks that `actor` may take `cmd` on the case now, then changes `case` accordingly and returns
/// the event to record. References (department, assignee, duplicate) must have been checked by the
/// caller; this function knows only the lifecycle rules.
pub fn apply(
    case: &mut CaseState,
    cmd: Command,
    actor: &Principal,
    now: DateTime<Utc>,
    response_window: chrono::Duration,
) -> AppResult<EventDraft> {
    let action = cmd.action();
    let rule = rule(action).ok_or_else(|| AppError::Internal(format!("no lifecycle rule for {action}")))?;
    // 1. Can this role ever take the action?
    check_role(action, actor)?;
    // 2. Does the lifecycle allow it from here?
    if !rule.from.contains(&case.status) {
        return Err(AppError::InvalidTransition {
            action: action.as_str().to_owned(),
            status: case.status.as_str().to_owned(),
            allowed_actions: allowed_actions(case.status).into_iter().map(str::to_owned).collect(),
        });
    }
    // 3. Department work is done by the department holding the case.
    if rule.who == Who::AssignedDepartment
        && actor.role != Role::Admin
        && (actor.department_id.is_none() || actor.department_id != case.department_id)
    {
        return Err(AppError::Forbidden {
            code: "not_assigned_department",
            detail: "only the department the case is assigned to may do this".to_owned(),
        });
    }
    // 4. Whoever resolved a case does not verify their own work.
    if matches!(action, Action::Verify | Action::Reject) && case.resolved_by.as_deref() == Some(actor.id.as_str()) {
        return Err(AppError::Forbidden {
            code: "separation_of_duties",
            detail: "the person who resolved a case may not verify or reject it".to_owned(),
        });
    }

    let from = case.status;
    let (note, data) = match cmd {
        Command::Assign { department_id, assignee_id, note }
        | Command::Reassign { department_id, assignee_id, note } => {
            let previous = case.department_id.replace(department_id.clone());
            if previous.as_deref() != Some(department_id.as_str()) {
                case.acknowledged_at = None;
            }
            case.first_assigned_at.get_or_insert(now);
            case.assignee_id = assignee_id.clone();
            (
                note,
                json!({ "department_id": department_id, "assignee_id": assignee_id, "previous_department_id": previous }),
            )
        }
        Command::Acknowledge => {
            if case.acknowledged_at.is_some() {
                return Err(AppError::conflict("already_acknowledged", "the case has already been acknowledged"));
            }
            case.acknowledged_at = Some(now);
            if case.first_acknowledged_at.is_none() {
                case.first_acknowledged_at = Some(now);
                case.responded = case.first_assigned_at.is_some_and(|assigned| now - assigned <= response_window);
            }
            (None, json!({ "department_id": case.department_id }))
        }
        Command::Return { reason } => {
            let department = case.department_id.take();
            case.assignee_id = None;
            case.acknowledged_at = None;
            (Some(reason), json!({ "department_id": department }))
        }
        Command::Resolve { resolution } => {
            case.resolved_at = Some(now);
            case.resolved_by = Some(actor.id.clone());
            case.resolution = Some(resolution.clone());
            case.resolved_on_time = Some(now <= case.due_at);
            case.resolution_secs = Some((now - case.created_at).num_seconds().max(0));
            (
                Some(resolution),
                json!({ "on_time": now <= case.due_at, "due_at": crate::domain::util::rfc3339(case.due_at) }),
            )
        }
        Command::Verify { satisfaction, note } => {
            case.verified_at = Some(now);
            case.satisfaction = Some(satisfaction);
            (note, json!({ "satisfaction": satisfaction }))
        }
        Command::Reject { reason, satisfaction } => {
            case.rework_count += 1;
            if satisfaction.is_some() {
                case.satisfaction = satisfaction;
            }
            case.resolved_at = None;
            case.resolved_by = None;
            case.resolution = None;
            case.resolved_on_time = None;
            case.resolution_secs = None;
            (Some(reason), json!({ "satisfaction": satisfaction, "rework_count": case.rework_count }))
        }
        Command::Close { note } => {
            case.closed_at = Some(now);
            case.outcome = Some(Outcome::Completed);
            (note, json!({ "outcome": Outcome::Completed }))
        }
        Command::Dismiss { outcome, reason, duplicate_of } => {
            if duplicate_of.as_deref() == Some(case.id.as_str()) {
                return Err(AppError::invalid("duplicate_of", "invalid_value", "a case cannot duplicate itself"));
            }
            case.closed_at = Some(now);
            case.outcome = Some(outcome);
            case.duplicate_of = duplicate_of.clone();
            (Some(reason), json!({ "outcome": outcome, "duplicate_of": duplicate_of }))
        }
        Command::Reopen { reason, department_id, due_at } => {
            if let Some(due) = due_at {
                if due <= now {
                    return Err(AppError::invalid("due_at", "not_in_future", "a new deadline must be in the future"));
                }
                case.due_at = due;
            }
            let previous_outcome = case.outcome.take();
            // Reopening hands the case to a department: it is an assignment.
            case.first_assigned_at.get_or_insert(now);
            case.department_id = Some(department_id.clone());
            case.assignee_id = None;
            case.acknowledged_at = None;
            case.resolved_at = None;
            case.resolved_by = None;
            case.resolution = None;
            case.resolved_on_time = None;
            case.resolution_secs = None;
            case.verified_at = None;
            case.closed_at = None;
            case.satisfaction = None;
            case.duplicate_of = None;
            (
                Some(reason),
                json!({ "department_id": department_id, "previous_outcome": previous_outcome,
                        "due_at": crate::domain::util::rfc3339(case.due_at) }),
            )
        }
        Command::Extend { due_at, reason } => {
            if due_at <= case.due_at {
                return Err(AppError::invalid(
                    "due_at",
                    "not_later",
                    format!("must be later than the current deadline {}", crate::domain::util::rfc3339(case.due_at)),
                ));
            }
            let previous = std::mem::replace(&mut case.due_at, due_at);
            (
                Some(reason),
                json!({ "previous_due_at": crate::domain::util::rfc3339(previous),
                        "due_at": crate::domain::util::rfc3339(due_at) }),
            )
        }
        Command::Comment { text } => (Some(text), json!({})),
    };
    if let Some(to) = rule.to {
        case.status = to;
    }
    case.version += 1;
    Ok(EventDraft { action, from_status: from, to_status: case.status, note, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::PrincipalKind;

    fn actor(role: Role, department: Option<&str>) -> Principal {
        Principal {
            id: "u1".to_owned(),
            name: "u1".to_owned(),
            kind: PrincipalKind::User,
            role,
            jurisdiction_code: None,
            scope_path: None,
            department_id: department.map(str::to_owned),
            session_id: None,
            scopes: Vec::new(),
        }
    }

    fn case(status: Status) -> CaseState {
        CaseState {
            id: "c1".to_owned(),
            status,
            outcome: None,
            department_id: Some("d1".to_owned()),
            assignee_id: None,
            due_at: Utc::now() + chrono::Duration::days(3),
            acknowledged_at: None,
            resolved_at: None,
            resolved_by: None,
            resolution: None,
            verified_at: None,
            closed_at: None,
            satisfaction: None,
            rework_count: 0,
            duplicate_of: None,
            version: 4,
            created_at: Utc::now() - chrono::Duration::days(1),
            first_assigned_at: None,
            first_acknowledged_at: None,
            responded: false,
            resolved_on_time: None,
            resolution_secs: None,
        }
    }

    #[test]
    fn every_action_but_create_has_exactly_one_rule() {
        for action in Action::ALL {
            let n = RULES.iter().filter(|r| r.action == *action).count();
            assert_eq!(n, usize::from(*action != Action::Create), "{action}");
        }
    }

    #[test]
    fn every_status_allows_comment_and_closed_only_reopen_besides() {
        for status in Status::ALL {
            assert!(allowed_actions(*status).contains(&"comment"));
        }
        assert_eq!(allowed_actions(Status::Closed), vec!["reopen", "comment"]);
        assert_eq!(allowed_actions(Status::Verified), vec!["close", "comment"]);
    }

    #[test]
    fn apply_bumps_version_and_moves_status() {
        let mut c = case(Status::Assigned);
        let ev = apply(
            &mut c,
            Command::Resolve { resolution: "done".into() },
            &actor(Role::Caseworker, Some("d1")),
            Utc::now(),
            chrono::Duration::hours(24),
        )
        .expect("resolve");
        assert_eq!(c.resolved_on_time, Some(true));
        assert!(c.resolution_secs.is_some_and(|s| s >= 86_399));
        assert_eq!((ev.from_status, ev.to_status, c.version), (Status::Assigned, Status::Resolved, 5));
        assert_eq!(c.resolved_by.as_deref(), Some("u1"));
    }

    #[test]
    fn refused_actions_change_nothing() {
        let before = case(Status::Received);
        let mut c = before.clone();
        let err = apply(
            &mut c,
            Command::Close { note: None },
            &actor(Role::Supervisor, None),
            Utc::now(),
            chrono::Duration::hours(24),
        );
        assert!(matches!(err, Err(AppError::InvalidTransition { .. })));
        let err = apply(
            &mut c,
            Command::Acknowledge,
            &actor(Role::Caseworker, Some("other")),
            Utc::now(),
            chrono::Duration::hours(24),
        );
        assert!(matches!(err, Err(AppError::InvalidTransition { .. })));
        assert_eq!(c, before);
    }
}
