//! Validation of a review's SLA policy: reminders, breach actions and calendars.
#![allow(clippy::unwrap_used)]

use processops_core::blueprint::check;

fn review(extra: &str) -> String {
    format!(
        "id: p\nname: P\nstart: review\nnodes:\n  - kind: review\n    id: review\n    role: lead\n    draft: hello\n{extra}    on: {{ approved: done }}\n  - kind: transform\n    id: done\n    set: {{ x: y }}\n"
    )
}

#[test]
fn sla_policies_are_checked_with_positions_and_fixes() {
    let cases: &[(&str, &str, u32, &str)] = &[
        (
            "    remind_before: 1h\n",
            "schema",
            9,
            "`remind_before` needs an `sla`",
        ),
        (
            "    sla: 2h\n    remind_before: 3h\n",
            "invalid-duration",
            10,
            "the reminder (3h) would come before the task exists",
        ),
        (
            "    sla: 2h\n    remind_before: soon\n",
            "invalid-duration",
            10,
            "`soon` is not a duration",
        ),
        (
            "    sla: 2h\n    on_breach: escalate\n",
            "schema",
            10,
            "`on_breach: escalate` needs an escalation chain",
        ),
        (
            "    sla: 2h\n    on_breach: panic\n",
            "schema",
            10,
            "`panic` is not a valid value here",
        ),
        (
            "    sla: 2h\n    working_hours: { days: [mon], start: \"18:00\", end: \"09:00\" }\n",
            "invalid-calendar",
            10,
            "must start before it ends",
        ),
        (
            "    sla: 2h\n    working_hours: { days: [someday] }\n",
            "invalid-calendar",
            10,
            "`someday` is not a day",
        ),
    ];
    for (extra, code, line, message) in cases {
        let checked = check(&review(extra));
        let d = checked
            .diagnostics
            .iter()
            .find(|d| d.code == *code)
            .unwrap_or_else(|| panic_with(extra, &checked.diagnostics));
        assert_eq!(d.line, *line, "{extra}: {d:?}");
        assert!(d.message.contains(message), "{extra}: {}", d.message);
        assert!(d.help.is_some(), "{extra}: no help");
    }
    let ok = check(&review(
        "    sla: 1d\n    remind_before: 2h\n    escalation: [director]\n    on_breach: escalate\n    working_hours: { days: [mon, tue, wed, thu, fri] }\n",
    ));
    assert!(ok.diagnostics.is_empty(), "{:?}", ok.diagnostics);
}

fn panic_with(extra: &str, diagnostics: &[processops_core::Diagnostic]) -> ! {
    unreachable!("{extra}: expected diagnostic missing; got {diagnostics:#?}")
}
