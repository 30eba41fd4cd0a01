//! Prompt and value templates: Jinja syntax through minijinja, sandboxed.
//!
//! The environment has no loader (a template cannot include or read files), no access to the
//! process environment, strict undefined variables (a typo is an error, not an empty string)
//! and a fuel limit so a hostile template cannot loop forever.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};

/// Upper bound on template instructions per render; generous for real prompts, fatal for loops.
pub const FUEL: u64 = 200_000;

/// A sandboxed template environment.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    // Templates produce plain text (prompts, JSON bodies), never HTML.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_keep_trailing_newline(true);
    env
}

/// A template problem with its 1-based line within the template, if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<minijinja::Error> for TemplateError {
    fn from(err: minijinja::Error) -> Self {
        // minijinja's Display includes the template name and line; keep only the plain detail.
        let message = match err.detail() {
            Some(detail) => format!("{}: {detail}", kind_text(err.kind())),
            None => kind_text(err.kind()).to_owned(),
        };
        Self {
            line: err.line(),
            message,
        }
    }
}

fn kind_text(kind: minijinja::ErrorKind) -> &'static str {
    use minijinja::ErrorKind as K;
    match kind {
        K::SyntaxError => "syntax error",
        K::UndefinedError => "undefined value",
        K::UnknownFilter => "unknown filter",
        K::UnknownFunction => "unknown function",
        K::UnknownTest => "unknown test",
        K::UnknownMethod => "unknown method",
        K::InvalidOperation => "invalid operation",
        K::OutOfFuel => "template ran too long (possible infinite loop)",
        K::TemplateNotFound => "templates cannot include other files",
        K::BadSerialization => "value cannot be rendered",
        _ => "template error",
    }
}

/// The variables a template reads from its context, as dotted paths (`trigger.name`).
pub fn referenced_variables(source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let env = environment();
    let tmpl = env.template_from_str(source)?;
    // Globals such as `range`, `dict` and `namespace` are functions, not context variables.
    let globals: BTreeSet<&str> = env.globals().map(|(name, _)| name).collect();
    Ok(tmpl
        .undeclared_variables(true)
        .into_iter()
        .filter(|var| !globals.contains(var.split('.').next().unwrap_or(var)))
        .collect())
}

/// The variables a condition expression reads.
pub fn expression_variables(expr: &str) -> Result<BTreeSet<String>, TemplateError> {
    let env = environment();
    env.compile_expression(expr)?;
    // Expressions have no introspection API of their own; as `{{ (expr) }}` they parse the same.
    referenced_variables(&format!("{{{{ ({expr}) }}}}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strict_undefined_is_an_error() {
        let env = environment();
        let err = env
            .render_str("Hello {{ nme }}", minijinja::context! { name => "x" })
            .unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::UndefinedError);
    }

    #[test]
    fn infinite_loops_run_out_of_fuel() {
        let env = environment();
        let err = env
            .render_str(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                (),
            )
            .unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::OutOfFuel);
    }

    #[test]
    fn templates_cannot_include_files_or_read_the_environment() {
        let env = environment();
        let err = env
            .render_str("{% include '/etc/passwd' %}", ())
            .unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::TemplateNotFound);
        // No `env` global or function exists, so reading a variable like HOME is just undefined.
        let err = env.render_str("{{ env.HOME }}", ()).unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::UndefinedError);
    }

    #[test]
    fn lists_dotted_variables() {
        let vars = referenced_variables(
            "{{ trigger.name }} {% for p in retrieve.passages %}{{ p.text }}{% endfor %}",
        )
        .unwrap();
        assert!(vars.contains("trigger.name"), "{vars:?}");
        assert!(vars.contains("retrieve.passages"), "{vars:?}");
        assert!(!vars.iter().any(|v| v.starts_with('p')), "{vars:?}");
        let vars = expression_variables("trigger.amount > 1000 and vars.tier == 'gold'").unwrap();
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            vec!["trigger.amount", "vars.tier"]
        );
    }
}
