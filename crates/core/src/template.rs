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
    // Booleans print as JSON does (`true`, not Python's `True`), so a flag rendered into a
    // JSON body or a dataset record stays valid JSON.
    env.set_formatter(|out, state, value| {
        if value.kind() == minijinja::value::ValueKind::Bool {
            out.write_str(if value.is_true() { "true" } else { "false" })
                .map_err(minijinja::Error::from)
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
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
/// A filter or test the sandbox does not have is an error here, as it would be at run time.
pub fn referenced_variables(source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let env = environment();
    let tmpl = env.template_from_str(source)?;
    check_filters_and_tests(&env, source)?;
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

/// minijinja looks filters and tests up only when a template runs, so a misspelt `| defualt`
/// would pass validation and fail the run. This finds the names a template applies (`| name`,
/// `{% filter name %}`, `is [not] name`) outside string literals and asks the environment.
fn check_filters_and_tests(env: &Environment<'_>, source: &str) -> Result<(), TemplateError> {
    let state = env.empty_state();
    let unknown = |kind: minijinja::ErrorKind, name: &str, what: &str, at: usize| {
        let line = source[..at].matches('\n').count() + 1;
        let message = format!("{}: `{name}` is not a {what} here", kind_text(kind));
        Err(TemplateError {
            line: Some(line),
            message,
        })
    };
    for (start, block) in expression_blocks(source) {
        let tokens = tokens(block);
        for (i, &(token, at)) in tokens.iter().enumerate() {
            let next = |k: usize| tokens.get(i + k).map(|t| t.0);
            let first = tokens[..i].iter().all(|t| t.0.is_empty());
            let filter = match (token, next(1)) {
                ("|", Some(name)) => Some(name),
                ("filter", Some(name)) if first => Some(name),
                _ => None,
            };
            if let Some(name) = filter.filter(|n| is_identifier(n))
                && let Err(err) = state.apply_filter(name, &[])
                && err.kind() == minijinja::ErrorKind::UnknownFilter
            {
                return unknown(err.kind(), name, "filter", start + at);
            }
            if token == "is" {
                let name = if next(1) == Some("not") {
                    next(2)
                } else {
                    next(1)
                };
                if let Some(name) = name.filter(|n| is_identifier(n))
                    && let Err(err) = state.perform_test(name, &[])
                    && err.kind() == minijinja::ErrorKind::UnknownTest
                {
                    return unknown(err.kind(), name, "test", start + at);
                }
            }
        }
    }
    Ok(())
}

fn is_identifier(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// The insides of `{{ … }}` and `{% … %}` with their byte offsets; comments and
/// `{% raw %}` sections are skipped.
fn expression_blocks(source: &str) -> Vec<(usize, &str)> {
    let mut blocks = Vec::new();
    let mut i = 0;
    let mut raw = false;
    while let Some(found) = source[i..].find('{') {
        let open = i + found;
        let kind = source[open + 1..].chars().next();
        let close = match kind {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => "#}",
            _ => {
                i = open + 1;
                continue;
            }
        };
        let start = open + 2;
        let end = if kind == Some('#') {
            source[start..].find(close).map(|e| start + e)
        } else {
            block_end(source, start, close)
        };
        let end = end.unwrap_or(source.len());
        let inner = &source[start..end];
        let tag = inner.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if kind == Some('%') && tag == "endraw" {
            raw = false;
        } else if !raw && kind != Some('#') {
            if kind == Some('%') && tag == "raw" {
                raw = true;
            } else {
                blocks.push((start, inner));
            }
        }
        i = (end + close.len()).min(source.len());
    }
    blocks
}

/// Where a block closes, not counting a closing delimiter inside a string literal.
fn block_end(source: &str, start: usize, close: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (k, c) in source[start..].char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            None if source[start + k..].starts_with(close) => return Some(start + k),
            None => {}
        }
    }
    None
}

/// Identifiers and `|` of an expression with their offsets; string literals are dropped and
/// other symbols become empty tokens.
fn tokens(block: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut chars = block.char_indices().peekable();
    while let Some((k, c)) = chars.next() {
        if c == '\'' || c == '"' {
            let mut escaped = false;
            for (_, d) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
        } else if c == '|' {
            out.push(("|", k));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut end = k + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !(d.is_ascii_alphanumeric() || d == '_') {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            out.push((&block[k..end], k));
        } else if !c.is_whitespace() {
            out.push(("", k));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn booleans_render_as_json() {
        let env = environment();
        let out = env
            .render_str(
                "{\"edited\": {{ a }}, \"ok\": {{ b }}, \"n\": {{ n }}}",
                minijinja::context! { a => true, b => false, n => 3 },
            )
            .unwrap();
        assert_eq!(out, r#"{"edited": true, "ok": false, "n": 3}"#);
    }

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
