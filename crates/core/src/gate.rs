//! The prompt regression gate's arithmetic: how close a draft is to the text a person
//! approved, and how a candidate version's drafts compare with the drafts the approved
//! version produced for the same eval cases. Pure; the engine replays the cases.

use serde::{Deserialize, Serialize};

use crate::metrics::edit_distance;

/// The default similarity a draft needs to pass: at most a fifth of its words changed.
pub const DEFAULT_THRESHOLD: f64 = 0.8;

/// How close a draft is to the approved text: 1 − the word-level edit distance
/// (1 = what the person approved, 0 = nothing in common).
pub fn similarity(draft: &str, approved: &str) -> f64 {
    1.0 - edit_distance(draft, approved)
}

/// One eval case: a past review whose approved text is the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct GateCase {
    pub run_id: String,
    pub node: String,
    /// What the person approved (their edit, or the draft they approved as it was).
    pub approved: String,
    /// The draft the person was shown, from the version that ran.
    pub baseline_draft: String,
    /// The candidate's draft for the same input; `None` when its replay did not reach the
    /// review (the error says why).
    pub candidate_draft: Option<String>,
    pub baseline_score: f64,
    pub candidate_score: Option<f64>,
    pub baseline_passed: bool,
    pub candidate_passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl GateCase {
    /// Score a case against the threshold.
    pub fn judge(
        run_id: String,
        node: String,
        approved: String,
        baseline_draft: String,
        candidate: Result<String, String>,
        threshold: f64,
    ) -> Self {
        let baseline_score = similarity(&baseline_draft, &approved);
        let (candidate_draft, candidate_score, error) = match candidate {
            Ok(draft) => {
                let score = similarity(&draft, &approved);
                (Some(draft), Some(score), None)
            }
            Err(e) => (None, None, Some(e)),
        };
        Self {
            run_id,
            node,
            approved,
            baseline_draft,
            candidate_draft,
            baseline_score,
            candidate_score,
            baseline_passed: baseline_score >= threshold,
            candidate_passed: candidate_score.is_some_and(|s| s >= threshold),
            error,
        }
    }
}

/// The comparison a promotion shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct GateReport {
    pub blueprint: String,
    /// The version whose runs are the eval set (what ran).
    pub baseline_version: String,
    pub candidate_version: String,
    pub threshold: f64,
    /// When it ran (Unix ms) and who asked.
    pub at: i64,
    pub by: String,
    pub cases: Vec<GateCase>,
    pub baseline_passed: usize,
    pub candidate_passed: usize,
    /// The candidate passes as many cases as the baseline (or more) and every case replayed.
    pub passed: bool,
}

impl GateReport {
    /// Total the cases.
    pub fn new(
        blueprint: String,
        baseline_version: String,
        candidate_version: String,
        threshold: f64,
        at: i64,
        by: String,
        cases: Vec<GateCase>,
    ) -> Self {
        let baseline_passed = cases.iter().filter(|c| c.baseline_passed).count();
        let candidate_passed = cases.iter().filter(|c| c.candidate_passed).count();
        let replayed = cases.iter().all(|c| c.error.is_none());
        Self {
            blueprint,
            baseline_version,
            candidate_version,
            threshold,
            at,
            by,
            passed: replayed && candidate_passed >= baseline_passed,
            baseline_passed,
            candidate_passed,
            cases,
        }
    }

    /// One line for a promotion's audit entry and the terminal.
    pub fn summary(&self) -> String {
        let n = self.cases.len();
        if n == 0 {
            return "no eval cases: no approved reviews of this blueprint to compare against"
                .into();
        }
        format!(
            "{} of {n} cases within {:.0} % of the approved text (the version that ran: {} of {n}){}",
            self.candidate_passed,
            (1.0 - self.threshold) * 100.0,
            self.baseline_passed,
            if self.passed { "" } else { " — worse" }
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn case(baseline: &str, approved: &str, candidate: Result<&str, &str>) -> GateCase {
        GateCase::judge(
            "r".into(),
            "check".into(),
            approved.into(),
            baseline.into(),
            candidate.map(str::to_owned).map_err(str::to_owned),
            DEFAULT_THRESHOLD,
        )
    }

    #[test]
    fn similarity_is_one_minus_the_word_edit_distance() {
        let cases = [
            ("a b c d e", "a b c d e", 1.0),
            ("a b c d e", "v w x y z", 0.0),
            ("a b c d", "a b c d e f", 0.8),
            ("", "", 1.0),
        ];
        for (draft, approved, expected) in cases {
            let got = similarity(draft, approved);
            // `similar` computes the ratio in f32.
            assert!(
                (got - expected).abs() < 1e-6,
                "{draft:?} vs {approved:?}: {got}"
            );
        }
    }

    #[test]
    fn cases_pass_at_the_threshold() {
        let approved = "one two three four five six seven eight nine ten";
        let c = case(
            "one two three four five six seven eight nine ten",
            approved,
            Ok("one two three four five six seven eight nine"),
        );
        assert!(c.baseline_passed);
        // 9 of 10 words kept: 1 − (1 − 18/19) ≈ 0.947.
        assert!(c.candidate_passed, "{c:?}");
        let c = case(approved, approved, Ok("something else entirely"));
        assert!(!c.candidate_passed);
        assert_eq!(c.candidate_score, Some(0.0));
        let c = case(approved, approved, Err("the replay failed"));
        assert!(!c.candidate_passed && c.candidate_draft.is_none());
    }

    #[test]
    fn a_report_passes_when_the_candidate_is_no_worse() {
        let good = case("a b c", "a b c", Ok("a b c"));
        let bad = case("a b c", "a b c", Ok("x y z"));
        let failed = case("a b c", "a b c", Err("timeout"));
        let report = |cases: Vec<GateCase>| {
            GateReport::new(
                "bp".into(),
                "v1".into(),
                "v2".into(),
                DEFAULT_THRESHOLD,
                0,
                "gwen".into(),
                cases,
            )
        };
        let r = report(vec![good.clone(), good.clone()]);
        assert!(r.passed);
        assert_eq!((r.baseline_passed, r.candidate_passed), (2, 2));
        assert!(
            r.summary().starts_with("2 of 2 cases within 20 %"),
            "{}",
            r.summary()
        );
        let r = report(vec![good.clone(), bad]);
        assert!(!r.passed);
        assert!(r.summary().ends_with("— worse"));
        assert!(!report(vec![good, failed]).passed);
        let empty = report(vec![]);
        assert!(empty.passed);
        assert!(empty.summary().starts_with("no eval cases"));
    }
}
