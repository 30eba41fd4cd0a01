//! `$NAME` references to environment variables in secret header values. Secrets are
//! substituted only at the moment of use, so they never reach the journal.

/// Length of the variable name at the start of `text`: an upper-case letter or `_`, then
/// upper-case letters, digits and `_` (so `$5` is just text).
fn name_len(text: &str) -> usize {
    let starts = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_');
    if !starts {
        return 0;
    }
    text.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len())
}

/// The variable names a value refers to, in order.
pub fn env_refs(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        let end = name_len(after);
        if end > 0 {
            out.push(&after[..end]);
        }
        rest = &after[end..];
    }
    out
}

/// Replace every `$NAME` with `lookup(NAME)`; a missing variable is an error naming it.
pub fn expand(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = name_len(after);
        if end == 0 {
            out.push('$');
        } else {
            let name = &after[..end];
            out.push_str(
                &lookup(name)
                    .ok_or_else(|| format!("the environment variable `{name}` is not set"))?,
            );
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn references_are_found_and_expanded() {
        assert_eq!(env_refs("Bearer $NOTES_TOKEN"), vec!["NOTES_TOKEN"]);
        assert_eq!(env_refs("$A:$B_2 and $lower $"), vec!["A", "B_2"]);
        let env = |n: &str| match n {
            "NOTES_TOKEN" => Some("s3cr3t".to_owned()),
            _ => None,
        };
        assert_eq!(expand("Bearer $NOTES_TOKEN", env).unwrap(), "Bearer s3cr3t");
        assert_eq!(expand("costs $5", env).unwrap(), "costs $5");
        assert_eq!(
            expand("$MISSING", env).unwrap_err(),
            "the environment variable `MISSING` is not set"
        );
    }
}
