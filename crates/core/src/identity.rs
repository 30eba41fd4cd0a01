//! Local identity: who may decide which task. Pure, so the rules are tested as tables.

use std::collections::BTreeMap;

/// The roles of the product brief. Blueprints add approver roles of their own (`hr-manager`).
pub const BUILT_IN_ROLES: &[&str] = &[
    "processops-pm",
    "promptops-engineer",
    "agent-developer",
    "workflow-designer",
    "evaluator",
    "governance-lead",
];

/// People and their roles, from `[users.<name>] roles = [...]` in `processops.toml`.
/// An empty directory means a single-user installation: whoever uses it may decide anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    users: BTreeMap<String, Vec<String>>,
}

impl Directory {
    pub fn new(users: BTreeMap<String, Vec<String>>) -> Self {
        Self { users }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Everyone, by name, with their roles.
    pub fn users(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.users.iter().map(|(n, r)| (n.as_str(), r.as_slice()))
    }

    pub fn roles(&self, user: &str) -> Option<&[String]> {
        self.users.get(user).map(Vec::as_slice)
    }

    /// Whether `user` holds `role` (anyone does in a single-user installation).
    pub fn check_role(&self, user: &str, role: &str, doing: &str) -> Result<(), String> {
        if self.is_empty() {
            return Ok(());
        }
        match self.roles(user) {
            None => Err(format!(
                "`{user}` is not a known user; add `[users.{user}]` with their `roles` to processops.toml"
            )),
            Some(roles) if roles.iter().any(|r| r == role) => Ok(()),
            Some(_) => Err(format!(
                "`{user}` cannot {doing}: that needs the `{role}` role; add it to `[users.{user}]` in processops.toml"
            )),
        }
    }

    /// Whether `user` may decide a task assigned to `role` (or to the named `users`).
    /// The error says who lacks what, and how to fix it.
    pub fn check_decide(&self, user: &str, role: &str, named: &[String]) -> Result<(), String> {
        if self.is_empty() || named.iter().any(|u| u == user) {
            return Ok(());
        }
        let Some(roles) = self.roles(user) else {
            return Err(format!(
                "`{user}` is not a known user; add `[users.{user}]` with their `roles` to processops.toml"
            ));
        };
        if roles.iter().any(|r| r == role) {
            return Ok(());
        }
        let theirs = if roles.is_empty() {
            "none".to_owned()
        } else {
            roles.join(", ")
        };
        let others = if named.is_empty() {
            String::new()
        } else {
            format!(" or to {}", named.join(", "))
        };
        Err(format!(
            "`{user}` cannot decide this task: it is assigned to role `{role}`{others} (`{user}` has: {theirs})"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn directory() -> Directory {
        Directory::new(BTreeMap::from([
            (
                "dana".to_owned(),
                vec!["hr-manager".to_owned(), "evaluator".to_owned()],
            ),
            ("grace".to_owned(), vec!["hr-director".to_owned()]),
            ("ivo".to_owned(), vec![]),
        ]))
    }

    #[test]
    fn roles_gate_other_actions() {
        assert!(
            Directory::default()
                .check_role("anyone", "evaluator", "tag outputs")
                .is_ok()
        );
        assert!(
            directory()
                .check_role("dana", "evaluator", "tag outputs")
                .is_ok()
        );
        assert_eq!(
            directory()
                .check_role("grace", "evaluator", "tag outputs")
                .unwrap_err(),
            "`grace` cannot tag outputs: that needs the `evaluator` role; add it to `[users.grace]` in processops.toml"
        );
        assert!(
            directory()
                .check_role("zed", "evaluator", "tag outputs")
                .unwrap_err()
                .contains("not a known user")
        );
    }

    #[test]
    fn who_may_decide() {
        let named = vec!["ivo".to_owned()];
        // (directory, user, role, named users, Ok or the start of the error)
        type Case<'a> = (
            Directory,
            &'a str,
            &'a str,
            &'a [String],
            Result<(), &'a str>,
        );
        let cases: &[Case<'_>] = &[
            (Directory::default(), "anyone", "hr-manager", &[], Ok(())),
            (directory(), "dana", "hr-manager", &[], Ok(())),
            (directory(), "grace", "hr-director", &[], Ok(())),
            (directory(), "ivo", "hr-manager", &named, Ok(())),
            (
                directory(),
                "dana",
                "hr-director",
                &[],
                Err(
                    "`dana` cannot decide this task: it is assigned to role `hr-director` (`dana` has: hr-manager, evaluator)",
                ),
            ),
            (
                directory(),
                "ivo",
                "hr-manager",
                &[],
                Err(
                    "`ivo` cannot decide this task: it is assigned to role `hr-manager` (`ivo` has: none)",
                ),
            ),
            (
                directory(),
                "grace",
                "hr-manager",
                &named,
                Err(
                    "`grace` cannot decide this task: it is assigned to role `hr-manager` or to ivo",
                ),
            ),
            (
                directory(),
                "mallory",
                "hr-manager",
                &[],
                Err("`mallory` is not a known user; add `[users.mallory]`"),
            ),
        ];
        for (dir, user, role, named, expected) in cases {
            let got = dir.check_decide(user, role, named);
            match (expected, &got) {
                (Ok(()), Ok(())) => {}
                (Err(prefix), Err(message)) => {
                    assert!(message.starts_with(prefix), "{user}/{role}: {message}")
                }
                _ => unreachable!("{user}/{role}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}
