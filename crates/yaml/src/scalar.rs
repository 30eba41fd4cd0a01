//! Scalar resolution: the YAML 1.2 core schema for plain scalars, plus the
//! few explicit `!!` tags a blueprint may use.

use serde_json::{Number, Value};
use yaml_rust2::parser::Tag;
use yaml_rust2::scanner::TScalarStyle;

/// Prefix that `!!` expands to.
const CORE_PREFIX: &str = "tag:yaml.org,2002:";

/// A tag reduced to what we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `!!str`, `!!int`, ... (the part after `!!`).
    Core(String),
    /// The non-specific tag `!`: "not resolved", i.e. a string for scalars.
    NonSpecific,
    /// Anything else, as the user would write it.
    Other(String),
}

pub(crate) fn classify(tag: &Tag) -> Kind {
    let full = format!("{}{}", tag.handle, tag.suffix);
    if let Some(core) = full.strip_prefix(CORE_PREFIX) {
        Kind::Core(core.to_owned())
    } else if full == "!" {
        Kind::NonSpecific
    } else if full.starts_with('!') {
        Kind::Other(full)
    } else {
        // Verbatim or %TAG-expanded global tags have no short form.
        Kind::Other(format!("!<{full}>"))
    }
}

/// Name of a tag as the user wrote it (for messages).
pub(crate) fn display(kind: &Kind) -> String {
    match kind {
        Kind::Core(name) => format!("!!{name}"),
        Kind::NonSpecific => "!".to_owned(),
        Kind::Other(name) => name.clone(),
    }
}

pub(crate) fn unsupported_tag(kind: &Kind) -> String {
    format!(
        "unsupported tag `{}`; only !!str, !!int, !!float, !!bool and !!null are allowed here",
        excerpt(&display(kind))
    )
}

/// Converts one scalar to JSON. The error is a message; the caller adds the position.
pub(crate) fn convert(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    match tag.map(classify) {
        None if style == TScalarStyle::Plain => resolve_plain(text),
        None | Some(Kind::NonSpecific) => Ok(Value::String(text.to_owned())),
        Some(Kind::Core(name)) => match name.as_str() {
            "str" => Ok(Value::String(text.to_owned())),
            "null" if is_null(text) => Ok(Value::Null),
            "bool" => parse_bool(text)
                .map(Value::Bool)
                .ok_or_else(|| not_a("boolean", "!!bool", text)),
            "int" => match parse_int(text) {
                Some(result) => result.map(Value::Number),
                None => Err(not_a("integer", "!!int", text)),
            },
            // Integer syntax is a subset of float syntax, so this covers `!!float 1`.
            "float" => match parse_float(text) {
                Some(result) => result.map(Value::Number),
                None => Err(not_a("number", "!!float", text)),
            },
            "null" => Err(not_a("null", "!!null", text)),
            _ => Err(unsupported_tag(&Kind::Core(name))),
        },
        Some(other) => Err(unsupported_tag(&other)),
    }
}

/// User text for a message, shortened so a hostile value cannot make a huge one.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn not_a(what: &str, tag: &str, text: &str) -> String {
    let text = excerpt(text);
    format!("`{text}` is not a valid {what} (it is tagged {tag})")
}

/// Core schema resolution of an unquoted scalar.
fn resolve_plain(text: &str) -> Result<Value, String> {
    if is_null(text) {
        return Ok(Value::Null);
    }
    if let Some(b) = parse_bool(text) {
        return Ok(Value::Bool(b));
    }
    if let Some(result) = parse_int(text) {
        return result.map(Value::Number);
    }
    if let Some(result) = parse_float(text) {
        return result.map(Value::Number);
    }
    Ok(Value::String(text.to_owned()))
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// `None`: not integer syntax. `Some(Err)`: integer syntax that JSON cannot hold.
fn parse_int(text: &str) -> Option<Result<Number, String>> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = unsigned.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = unsigned.strip_prefix("0o") {
        (8, oct)
    } else {
        (10, unsigned)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let too_large = || {
        let text = excerpt(text);
        format!(
            "the integer `{text}` is too large (integers must fit in 64 bits); put it in quotes if it is meant as text"
        )
    };
    // u64 magnitude plus sign covers both i64 and u64 without overflow.
    let Ok(magnitude) = u64::from_str_radix(digits, radix) else {
        return Some(Err(too_large()));
    };
    if !negative {
        return Some(Ok(Number::from(magnitude)));
    }
    let value = i128::from(magnitude).checked_neg().map(i64::try_from);
    Some(match value {
        Some(Ok(v)) => Ok(Number::from(v)),
        _ => Err(too_large()),
    })
}

/// `None`: not float syntax. Infinity and NaN are rejected because JSON
/// cannot represent them, and turning them into strings would silently
/// change the type the author asked for.
fn parse_float(text: &str) -> Option<Result<Number, String>> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    // These are short, so quoting them whole is fine.
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Some(Err(format!(
            "`{text}` (infinity) cannot be used: numbers must be finite; put it in quotes if it is meant as text"
        )));
    }
    if unsigned == text && matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(Err(format!(
            "`{text}` (not-a-number) cannot be used: numbers must be finite; put it in quotes if it is meant as text"
        )));
    }
    if !is_float_syntax(unsigned) {
        return None;
    }
    // Rust's parser accepts a superset of the syntax checked above.
    let value: f64 = text.parse().ok()?;
    Some(Number::from_f64(value).ok_or_else(|| {
        let text = excerpt(text);
        format!("the number `{text}` is too large; put it in quotes if it is meant as text")
    }))
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` (sign already stripped).
fn is_float_syntax(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac_part {
        None => !int_part.is_empty() && all_digits(int_part),
        Some(frac) if int_part.is_empty() => !frac.is_empty() && all_digits(frac),
        Some(frac) => all_digits(int_part) && all_digits(frac),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
            !digits.is_empty() && all_digits(digits)
        }
    };
    mantissa_ok && exponent_ok
}
