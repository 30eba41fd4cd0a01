//! Change control: which stage a blueprint version is in, who may move it, and which version
//! a run starts on. Pure: the store keeps the rows, the engine and the API ask these rules.
//!
//! The stages follow the product brief: a version is **proposed** (a draft with a change
//! note), **piloted** (only its cohort gets its tasks and triggers), **monitored** (still the
//! cohort's, watched against the approved version), then **approved & scaled** (everyone's),
//! and finally **retired**. A blueprint has at most one limited version (pilot or monitored)
//! and at most one approved version; moving a version into either place retires the one it
//! replaces. A blueprint nobody has proposed a version of is *unmanaged*: its file's version
//! runs, as before change control existed.

use std::fmt;

use crate::blueprint::{Cohort, Stage};
use crate::identity::Directory;

/// The role that promotes versions (never its own) and rolls them back.
pub const GOVERNANCE_ROLE: &str = "governance-lead";
/// The role that proposes versions and starts their pilots.
pub const DESIGNER_ROLE: &str = "workflow-designer";

/// A version under change control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionState {
    pub hash: String,
    pub stage: Stage,
    /// Who proposed it.
    pub author: String,
    /// When it was last approved (Unix ms), if ever.
    pub approved_at: Option<i64>,
    /// It was retired by a rollback: a later rollback never brings it back.
    pub rolled_back: bool,
}

impl VersionState {
    fn is_limited(&self) -> bool {
        matches!(self.stage, Stage::Pilot | Stage::Monitored)
    }
}

/// One row to write: `hash` goes from `from` to `to` (compare-and-set on `from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMove {
    pub hash: String,
    pub from: Stage,
    pub to: Stage,
    /// Why, when it is a consequence of another move (`superseded by …`, `rolled back`).
    pub reason: MoveReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveReason {
    /// What the person asked for.
    Asked,
    /// Retired because another version took its place.
    Superseded,
    /// Retired by a rollback.
    RolledBack,
    /// Approved again by a rollback.
    Restored,
}

/// Why a move is refused; `Display` says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The version was never proposed.
    NotProposed {
        hash: String,
    },
    /// Not a step of the lifecycle (e.g. draft straight to approved).
    Skips {
        from: Stage,
        to: Stage,
    },
    AlreadyThere {
        stage: Stage,
    },
    /// Retired versions stay retired (roll back or propose a new version).
    Retired,
    /// The actor lacks the role this move needs.
    MissingRole {
        message: String,
    },
    /// Promotion by the version's own author.
    OwnChange {
        actor: String,
    },
    /// Nothing to roll back to.
    NoPrevious {
        blueprint: String,
    },
    /// Rollback needs an approved version to roll back from.
    NothingApproved {
        blueprint: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotProposed { hash } => write!(
                f,
                "version {} was never proposed; propose it first with a change note (`processops versions propose`)",
                short(hash)
            ),
            Self::Skips { from, to } => {
                let next = next_stage(*from)
                    .map(|s| format!("; move it to {} first", stage_name(s)))
                    .unwrap_or_default();
                write!(
                    f,
                    "a {} version cannot go straight to {}{next}",
                    stage_name(*from),
                    stage_name(*to)
                )
            }
            Self::AlreadyThere { stage } => write!(f, "the version is already {}", stage_name(*stage)),
            Self::Retired => f.write_str(
                "a retired version stays retired; roll back (`processops versions rollback`) or propose a new version",
            ),
            Self::MissingRole { message } => f.write_str(message),
            Self::OwnChange { actor } => write!(
                f,
                "`{actor}` proposed this version and cannot promote it; another member of `{GOVERNANCE_ROLE}` must"
            ),
            Self::NoPrevious { blueprint } => write!(
                f,
                "`{blueprint}` has no earlier approved version to roll back to"
            ),
            Self::NothingApproved { blueprint } => write!(
                f,
                "`{blueprint}` has no approved version to roll back from"
            ),
        }
    }
}

/// The stage's name as people read it.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Draft => "draft",
        Stage::Pilot => "pilot",
        Stage::Monitored => "monitored",
        Stage::Approved => "approved",
        Stage::Retired => "retired",
    }
}

/// Parse a stage name (`scaled` is accepted for approved, as the brief says "approve & scale").
pub fn parse_stage(text: &str) -> Option<Stage> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "draft" | "proposed" => Stage::Draft,
        "pilot" => Stage::Pilot,
        "monitored" | "monitor" => Stage::Monitored,
        "approved" | "approve" | "scaled" => Stage::Approved,
        "retired" | "retire" => Stage::Retired,
        _ => return None,
    })
}

fn next_stage(stage: Stage) -> Option<Stage> {
    match stage {
        Stage::Draft => Some(Stage::Pilot),
        Stage::Pilot => Some(Stage::Monitored),
        Stage::Monitored => Some(Stage::Approved),
        Stage::Approved | Stage::Retired => None,
    }
}

/// The first 12 characters of a version hash, as people read and type it.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The role a move to `to` needs, and whether the version's author may make it.
/// Starting a pilot is the designer's step (it only reaches the cohort); every promotion past
/// it is governed: the governance role, never the author. Retiring takes governance too.
pub fn rule(to: Stage) -> (&'static [&'static str], bool) {
    match to {
        Stage::Draft => (&[DESIGNER_ROLE, GOVERNANCE_ROLE], true),
        Stage::Pilot => (&[DESIGNER_ROLE, GOVERNANCE_ROLE], true),
        Stage::Monitored | Stage::Approved => (&[GOVERNANCE_ROLE], false),
        Stage::Retired => (&[GOVERNANCE_ROLE], true),
    }
}

/// Whether `actor` holds one of `roles`; the refusal names them all.
pub fn check_roles(
    directory: &Directory,
    actor: &str,
    roles: &[&str],
    doing: &str,
) -> Result<(), Refusal> {
    let mut last = None;
    for role in roles {
        match directory.check_role(actor, role, doing) {
            Ok(()) => return Ok(()),
            Err(message) => last = Some(message),
        }
    }
    match last {
        None => Ok(()),
        Some(message) => Err(Refusal::MissingRole {
            message: if roles.len() > 1 {
                format!(
                    "`{actor}` cannot {doing}: that needs one of the roles {}; add one to `[users.{actor}]` in processops.toml",
                    roles.join(", ")
                )
            } else {
                message
            },
        }),
    }
}

/// Plan moving `hash` to `to`, with the moves it causes (the version it replaces retires).
/// The author rule holds even in a single-user installation: nobody approves their own change.
pub fn plan_move(
    versions: &[VersionState],
    hash: &str,
    to: Stage,
    actor: &str,
    directory: &Directory,
) -> Result<Vec<StageMove>, Refusal> {
    let Some(version) = versions.iter().find(|v| v.hash == hash) else {
        return Err(Refusal::NotProposed {
            hash: hash.to_owned(),
        });
    };
    let from = version.stage;
    if from == to {
        return Err(Refusal::AlreadyThere { stage: to });
    }
    if from == Stage::Retired {
        return Err(Refusal::Retired);
    }
    if to != Stage::Retired && next_stage(from) != Some(to) {
        return Err(Refusal::Skips { from, to });
    }
    let (roles, author_may) = rule(to);
    let doing = match to {
        Stage::Pilot => "start a pilot",
        Stage::Retired => "retire a version",
        _ => "promote a version",
    };
    check_roles(directory, actor, roles, doing)?;
    if !author_may && version.author == actor {
        return Err(Refusal::OwnChange {
            actor: actor.to_owned(),
        });
    }
    let mut moves = Vec::new();
    // The version this one replaces: the other limited one (a new pilot), or the approved one.
    let replaced = versions
        .iter()
        .filter(|v| v.hash != hash)
        .find(|v| match to {
            Stage::Pilot => v.is_limited(),
            Stage::Approved => v.stage == Stage::Approved,
            _ => false,
        });
    if let Some(old) = replaced {
        moves.push(StageMove {
            hash: old.hash.clone(),
            from: old.stage,
            to: Stage::Retired,
            reason: MoveReason::Superseded,
        });
    }
    moves.push(StageMove {
        hash: hash.to_owned(),
        from,
        to,
        reason: MoveReason::Asked,
    });
    Ok(moves)
}

/// Plan a one-step rollback: the approved version retires and the one approved before it
/// (not itself rolled back) is approved again.
pub fn plan_rollback(
    blueprint: &str,
    versions: &[VersionState],
    actor: &str,
    directory: &Directory,
) -> Result<Vec<StageMove>, Refusal> {
    check_roles(directory, actor, &[GOVERNANCE_ROLE], "roll back a version")?;
    let current = versions
        .iter()
        .find(|v| v.stage == Stage::Approved)
        .ok_or_else(|| Refusal::NothingApproved {
            blueprint: blueprint.to_owned(),
        })?;
    let previous = versions
        .iter()
        .filter(|v| v.hash != current.hash && v.stage == Stage::Retired && !v.rolled_back)
        .filter_map(|v| v.approved_at.map(|at| (at, v)))
        .filter(|(at, _)| current.approved_at.is_none_or(|c| *at <= c))
        .max_by_key(|(at, _)| *at)
        .map(|(_, v)| v)
        .ok_or_else(|| Refusal::NoPrevious {
            blueprint: blueprint.to_owned(),
        })?;
    Ok(vec![
        StageMove {
            hash: current.hash.clone(),
            from: Stage::Approved,
            to: Stage::Retired,
            reason: MoveReason::RolledBack,
        },
        StageMove {
            hash: previous.hash.clone(),
            from: Stage::Retired,
            to: Stage::Approved,
            reason: MoveReason::Restored,
        },
    ])
}

/// Whether `user` belongs to a pilot cohort. A single-user installation's one user does;
/// an empty cohort holds nobody (the pilot then reaches no one until it names people).
pub fn in_cohort(cohort: &Cohort, user: &str, directory: &Directory) -> bool {
    if directory.is_empty() || cohort.users.iter().any(|u| u == user) {
        return true;
    }
    directory
        .roles(user)
        .is_some_and(|roles| roles.iter().any(|r| cohort.roles.contains(r)))
}

/// Whether a version's tasks are only for its cohort: it is limited now, or it was retired
/// without ever being approved (a superseded pilot's open tasks stay the cohort's).
pub fn cohort_only(stage: Stage, approved_at: Option<i64>) -> bool {
    match stage {
        Stage::Pilot | Stage::Monitored => true,
        Stage::Retired => approved_at.is_none(),
        Stage::Draft | Stage::Approved => false,
    }
}

/// Which version a run of a managed blueprint starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Nobody proposed a version: the file's version runs.
    Unmanaged,
    Version(String),
    /// Nothing is live for this starter.
    Refused(String),
}

/// Choose the version a run starts on. A cohort member starting a run by hand gets the
/// limited version; everyone else the approved one; an automatic trigger (no starter) the
/// approved one, or the limited one while nothing is approved (its tasks stay the cohort's).
/// `cohort` gives a version's pilot cohort.
pub fn choose(
    blueprint: &str,
    versions: &[VersionState],
    starter: Option<&str>,
    directory: &Directory,
    cohort: impl Fn(&str) -> Option<Cohort>,
) -> Choice {
    if versions.is_empty() {
        return Choice::Unmanaged;
    }
    let limited = versions.iter().find(|v| v.is_limited());
    let approved = versions.iter().find(|v| v.stage == Stage::Approved);
    if let (Some(l), Some(user)) = (limited, starter)
        && cohort(&l.hash).is_some_and(|c| in_cohort(&c, user, directory))
    {
        return Choice::Version(l.hash.clone());
    }
    if let Some(a) = approved {
        return Choice::Version(a.hash.clone());
    }
    match (limited, starter) {
        (Some(l), None) => Choice::Version(l.hash.clone()),
        (Some(l), Some(user)) => Choice::Refused(format!(
            "`{blueprint}` has no approved version yet and `{user}` is not in the cohort of its {} version {}",
            stage_name(l.stage),
            short(&l.hash)
        )),
        (None, _) => Choice::Refused(format!(
            "`{blueprint}` has no live version: its versions are proposed or retired; start a pilot (`processops versions pilot {blueprint}`) or roll back"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::collections::BTreeMap;

    use super::*;

    fn directory() -> Directory {
        Directory::new(BTreeMap::from([
            ("dee".to_owned(), vec![DESIGNER_ROLE.to_owned()]),
            (
                "gil".to_owned(),
                vec![GOVERNANCE_ROLE.to_owned(), DESIGNER_ROLE.to_owned()],
            ),
            ("gwen".to_owned(), vec![GOVERNANCE_ROLE.to_owned()]),
            ("max".to_owned(), vec!["hr-manager".to_owned()]),
            ("pia".to_owned(), vec!["support-agent".to_owned()]),
        ]))
    }

    fn v(hash: &str, stage: Stage, author: &str) -> VersionState {
        VersionState {
            hash: hash.to_owned(),
            stage,
            author: author.to_owned(),
            approved_at: (stage == Stage::Approved).then_some(100),
            rolled_back: false,
        }
    }

    /// Each transition, allowed or refused, by role and by authorship.
    #[test]
    fn transitions_by_role_and_author() {
        use Stage::*;
        // (from, to, author, actor, Ok(()) or the refusal's kind)
        type Case<'a> = (Stage, Stage, &'a str, &'a str, Result<(), &'a str>);
        let cases: &[Case<'_>] = &[
            (Draft, Pilot, "gil", "gil", Ok(())),
            (Draft, Pilot, "gil", "dee", Ok(())),
            (Draft, Pilot, "dee", "dee", Ok(())),
            (Draft, Pilot, "dee", "max", Err("role")),
            (Draft, Monitored, "dee", "gwen", Err("skips")),
            (Draft, Approved, "dee", "gwen", Err("skips")),
            (Pilot, Monitored, "dee", "gwen", Ok(())),
            (Pilot, Monitored, "dee", "dee", Err("role")),
            (Pilot, Monitored, "gil", "gil", Err("own")),
            (Pilot, Approved, "dee", "gwen", Err("skips")),
            (Monitored, Approved, "dee", "gwen", Ok(())),
            (Monitored, Approved, "gil", "gil", Err("own")),
            (Monitored, Approved, "dee", "max", Err("role")),
            (Monitored, Pilot, "dee", "gwen", Err("skips")),
            (Approved, Retired, "dee", "gwen", Ok(())),
            (Approved, Retired, "gil", "gil", Ok(())),
            (Pilot, Retired, "dee", "dee", Err("role")),
            (Retired, Approved, "dee", "gwen", Err("retired")),
            (Retired, Pilot, "dee", "gil", Err("retired")),
            (Approved, Approved, "dee", "gwen", Err("already")),
        ];
        for (from, to, author, actor, expected) in cases {
            let versions = [v("h1", *from, author)];
            let got = plan_move(&versions, "h1", *to, actor, &directory());
            let kind = got.as_ref().map(|_| ()).map_err(|r| match r {
                Refusal::MissingRole { .. } => "role",
                Refusal::Skips { .. } => "skips",
                Refusal::OwnChange { .. } => "own",
                Refusal::Retired => "retired",
                Refusal::AlreadyThere { .. } => "already",
                other => panic!("unexpected {other:?}"),
            });
            assert_eq!(
                &kind, expected,
                "{from:?} → {to:?} by {actor} (author {author}): {got:?}"
            );
        }
    }

    #[test]
    fn a_single_user_installation_still_cannot_approve_its_own_change() {
        let open = Directory::default();
        let versions = [v("h1", Stage::Monitored, "me")];
        assert_eq!(
            plan_move(&versions, "h1", Stage::Approved, "me", &open),
            Err(Refusal::OwnChange { actor: "me".into() })
        );
        assert!(plan_move(&versions, "h1", Stage::Approved, "you", &open).is_ok());
        let message = Refusal::OwnChange { actor: "me".into() }.to_string();
        assert!(message.contains("cannot promote") && message.contains(GOVERNANCE_ROLE));
    }

    #[test]
    fn unknown_versions_are_refused_with_a_way_forward() {
        let r = plan_move(&[], "abcdef0123456789", Stage::Pilot, "dee", &directory());
        assert_eq!(
            r.unwrap_err().to_string(),
            "version abcdef012345 was never proposed; propose it first with a change note (`processops versions propose`)"
        );
        let skip = Refusal::Skips {
            from: Stage::Draft,
            to: Stage::Approved,
        };
        assert_eq!(
            skip.to_string(),
            "a draft version cannot go straight to approved; move it to pilot first"
        );
    }

    #[test]
    fn a_new_pilot_or_approval_retires_the_version_it_replaces() {
        let versions = [
            v("old-pilot", Stage::Monitored, "dee"),
            v("live", Stage::Approved, "dee"),
            v("new", Stage::Draft, "dee"),
        ];
        let moves = plan_move(&versions, "new", Stage::Pilot, "dee", &directory()).unwrap();
        assert_eq!(
            moves
                .iter()
                .map(|m| (m.hash.as_str(), m.to, m.reason))
                .collect::<Vec<_>>(),
            [
                ("old-pilot", Stage::Retired, MoveReason::Superseded),
                ("new", Stage::Pilot, MoveReason::Asked)
            ]
        );
        let moves = plan_move(
            &versions,
            "old-pilot",
            Stage::Approved,
            "gwen",
            &directory(),
        )
        .unwrap();
        assert_eq!(
            moves
                .iter()
                .map(|m| (m.hash.as_str(), m.from, m.to))
                .collect::<Vec<_>>(),
            [
                ("live", Stage::Approved, Stage::Retired),
                ("old-pilot", Stage::Monitored, Stage::Approved)
            ]
        );
        // Monitoring moves nothing else.
        let versions = [
            v("p", Stage::Pilot, "dee"),
            v("live", Stage::Approved, "dee"),
        ];
        assert_eq!(
            plan_move(&versions, "p", Stage::Monitored, "gwen", &directory())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn rollback_restores_the_previous_approved_version_once() {
        let mut a = v("a", Stage::Retired, "dee");
        a.approved_at = Some(10);
        let mut b = v("b", Stage::Retired, "dee");
        b.approved_at = Some(20);
        let mut c = v("c", Stage::Approved, "dee");
        c.approved_at = Some(30);
        let never = v("never", Stage::Retired, "dee");
        let versions = vec![a.clone(), b.clone(), c.clone(), never];
        let moves = plan_rollback("bp", &versions, "gwen", &directory()).unwrap();
        assert_eq!(
            moves
                .iter()
                .map(|m| (m.hash.as_str(), m.to, m.reason))
                .collect::<Vec<_>>(),
            [
                ("c", Stage::Retired, MoveReason::RolledBack),
                ("b", Stage::Approved, MoveReason::Restored)
            ]
        );
        // After it: c is rolled back, b approved; a second rollback goes to a, never to c.
        c.stage = Stage::Retired;
        c.rolled_back = true;
        b.stage = Stage::Approved;
        b.approved_at = Some(40);
        let moves = plan_rollback("bp", &[a, b, c], "gwen", &directory()).unwrap();
        assert_eq!(moves[1].hash, "a");
        assert!(matches!(
            plan_rollback("bp", &versions, "dee", &directory()),
            Err(Refusal::MissingRole { .. })
        ));
        assert_eq!(
            plan_rollback(
                "bp",
                &[v("x", Stage::Approved, "dee")],
                "gwen",
                &directory()
            ),
            Err(Refusal::NoPrevious {
                blueprint: "bp".into()
            })
        );
        assert_eq!(
            plan_rollback("bp", &[v("x", Stage::Pilot, "dee")], "gwen", &directory()),
            Err(Refusal::NothingApproved {
                blueprint: "bp".into()
            })
        );
    }

    fn cohort(roles: &[&str], users: &[&str]) -> Cohort {
        Cohort {
            roles: roles.iter().map(|s| (*s).to_owned()).collect(),
            users: users.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn cohort_membership_by_role_or_name() {
        let d = directory();
        let c = cohort(&["hr-manager"], &["pia"]);
        assert!(in_cohort(&c, "max", &d));
        assert!(in_cohort(&c, "pia", &d));
        assert!(!in_cohort(&c, "gwen", &d));
        assert!(!in_cohort(&c, "stranger", &d));
        assert!(!in_cohort(&Cohort::default(), "max", &d));
        assert!(in_cohort(
            &Cohort::default(),
            "anyone",
            &Directory::default()
        ));
        // Whose tasks are cohort-only.
        assert!(cohort_only(Stage::Pilot, None));
        assert!(cohort_only(Stage::Monitored, None));
        assert!(cohort_only(Stage::Retired, None));
        assert!(!cohort_only(Stage::Retired, Some(1)));
        assert!(!cohort_only(Stage::Approved, Some(1)));
        assert!(!cohort_only(Stage::Draft, None));
    }

    #[test]
    fn the_version_a_run_starts_on() {
        let d = directory();
        let pilot = cohort(&["hr-manager"], &[]);
        let cohorts = |h: &str| (h == "p").then(|| pilot.clone());
        let both = [v("p", Stage::Pilot, "dee"), v("a", Stage::Approved, "dee")];
        let only_pilot = [v("p", Stage::Pilot, "dee")];
        let only_drafts = [v("d", Stage::Draft, "dee")];
        let cases: &[(&[VersionState], Option<&str>, Choice)] = &[
            (&[], Some("max"), Choice::Unmanaged),
            (&both, Some("max"), Choice::Version("p".into())),
            (&both, Some("pia"), Choice::Version("a".into())),
            (&both, None, Choice::Version("a".into())),
            (&only_pilot, Some("max"), Choice::Version("p".into())),
            (&only_pilot, None, Choice::Version("p".into())),
        ];
        for (versions, starter, expected) in cases {
            assert_eq!(
                &choose("bp", versions, *starter, &d, cohorts),
                expected,
                "{starter:?} over {versions:?}"
            );
        }
        assert!(matches!(
            choose("bp", &only_pilot, Some("pia"), &d, cohorts),
            Choice::Refused(m) if m.contains("not in the cohort")
        ));
        assert!(matches!(
            choose("bp", &only_drafts, None, &d, cohorts),
            Choice::Refused(m) if m.contains("no live version")
        ));
    }

    #[test]
    fn stage_names_round_trip() {
        for s in [
            Stage::Draft,
            Stage::Pilot,
            Stage::Monitored,
            Stage::Approved,
            Stage::Retired,
        ] {
            assert_eq!(parse_stage(stage_name(s)), Some(s));
        }
        assert_eq!(parse_stage("Scaled"), Some(Stage::Approved));
        assert_eq!(parse_stage("live"), None);
    }
}
