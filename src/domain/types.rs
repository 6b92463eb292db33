//! The closed vocabularies of the domain (status, kind, channel, …) as enums with stable wire names.

use serde::Serialize;

/// Declares a string-backed enum with its wire names, `as_str`, `parse` and the list of all names.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every wire name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a wire name.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Where a case is in its lifecycle.
    Status {
        /// Logged, waiting for dispatch.
        Received = "received",
        /// With a department.
        Assigned = "assigned",
        /// The department says it is done.
        Resolved = "resolved",
        /// A supervisor checked with the citizen.
        Verified = "verified",
        /// Ticked off (or dismissed).
        Closed = "closed",
    }
);

impl Status {
    /// Received or assigned: the case still waits on someone.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Received | Status::Assigned)
    }
}

wire_enum!(
    /// Complaint or livelihood project.
    Kind { Complaint = "complaint", Project = "project" }
);

wire_enum!(
    /// How the case came in.
    Channel {
        Hotline = "hotline",
        WalkIn = "walk_in",
        Petition = "petition",
        Online = "online",
        Integration = "integration",
        Other = "other",
    }
);

wire_enum!(
    /// Urgency.
    Priority { Normal = "normal", Urgent = "urgent", Emergency = "emergency" }
);

wire_enum!(
    /// How a closed case ended.
    Outcome {
        Completed = "completed",
        Duplicate = "duplicate",
        Invalid = "invalid",
        Withdrawn = "withdrawn",
        OutOfScope = "out_of_scope",
    }
);

wire_enum!(
    /// The citizen's rating at verification (or at rejection).
    Satisfaction {
        Satisfied = "satisfied",
        BasicallySatisfied = "basically_satisfied",
        Unsatisfied = "unsatisfied",
        NotRated = "not_rated",
    }
);

wire_enum!(
    /// The caller's role: a user's, or `integration` for an API client.
    Role {
        Admin = "admin",
        Supervisor = "supervisor",
        Caseworker = "caseworker",
        Viewer = "viewer",
        /// An integrating system calling with an API key; never a user's role.
        Integration = "integration",
    }
);

impl Role {
    /// The roles a user may have: every role but `integration`, which only API clients have.
    pub const USER_ROLE_NAMES: &'static [&'static str] = &["admin", "supervisor", "caseworker", "viewer"];

    /// Parses a user's role; `integration` (or anything else) is `None`.
    pub fn parse_user(s: &str) -> Option<Role> {
        Role::USER_ROLE_NAMES.contains(&s).then(|| Role::parse(s)).flatten()
    }

    /// Admins and supervisors dispatch and verify.
    pub fn supervises(self) -> bool {
        matches!(self, Role::Admin | Role::Supervisor)
    }
}

wire_enum!(
    /// What an API client's key allows. Users have no scopes: their role decides.
    /// Declared in wire-name order, which is the order they are stored and shown in.
    Scope {
        /// Comment on the cases the client created (needs `cases:read_own` to reach them).
        CasesComment = "cases:comment",
        /// Log new cases.
        CasesCreate = "cases:create",
        /// Read the cases the client created, and their events.
        CasesReadOwn = "cases:read_own",
        /// Manage the client's webhook subscriptions.
        WebhooksManage = "webhooks:manage",
    }
);

impl Scope {
    /// Sorts and de-duplicates a set of scopes.
    pub fn normalise(mut scopes: Vec<Scope>) -> Vec<Scope> {
        scopes.sort_by_key(|s| s.as_str());
        scopes.dedup();
        scopes
    }

    /// The stored form: wire names, sorted, separated by single spaces.
    pub fn join(scopes: &[Scope]) -> String {
        Scope::normalise(scopes.to_vec()).iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// Reads the stored form; `None` if it names an unknown scope.
    pub fn split(stored: &str) -> Option<Vec<Scope>> {
        stored.split_whitespace().map(Scope::parse).collect()
    }
}

wire_enum!(
    /// What an event records: the case's creation or one of the lifecycle actions.
    Action {
        Create = "create",
        Assign = "assign",
        Reassign = "reassign",
        Acknowledge = "acknowledge",
        Return = "return",
        Resolve = "resolve",
        Verify = "verify",
        Reject = "reject",
        Close = "close",
        Dismiss = "dismiss",
        Reopen = "reopen",
        Extend = "extend",
        Comment = "comment",
    }
);
