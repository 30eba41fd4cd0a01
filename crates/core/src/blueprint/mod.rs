//! Blueprints: the process definitions designers write, their validation and their versions.

pub mod diff;
mod load;
pub mod model;
mod validate;

pub use load::{MAX_SOURCE_BYTES, SourceMap, escape, parse};
pub use model::*;
pub use validate::{RESERVED_ROOTS, is_blueprint_id, is_node_id, output_fields, validate};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::diagnostic::Diagnostic;

/// The outcome of checking one blueprint source: the blueprint when it has no errors, and
/// every diagnostic (errors and warnings) with positions.
pub struct Checked {
    pub blueprint: Option<Blueprint>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse and validate a blueprint source in one go.
pub fn check(source: &str) -> Checked {
    let (blueprint, map, mut diagnostics) = parse(source);
    let Some(blueprint) = blueprint else {
        return Checked {
            blueprint: None,
            diagnostics,
        };
    };
    let mut semantic = validate(&blueprint);
    map.locate(&mut semantic);
    // In file order (a stable sort keeps problems at one position in pointer order).
    semantic.sort_by_key(|d| (d.line, d.column));
    diagnostics.extend(semantic);
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    Checked {
        blueprint: ok.then_some(blueprint),
        diagnostics,
    }
}

/// Content address of a blueprint: SHA-256 over its canonical JSON (keys sorted, no
/// whitespace), so formatting and comments in the YAML do not make a new version.
pub fn version_hash(bp: &Blueprint) -> String {
    hex::encode(Sha256::digest(canonical(bp).as_bytes()))
}

/// The canonical JSON a version's hash is taken of (sorted keys, no whitespace): what the hub
/// checks a shared version against.
pub fn canonical(bp: &Blueprint) -> String {
    let value = serde_json::to_value(bp).unwrap_or(Value::Null);
    let mut bytes = Vec::new();
    write_canonical(&value, &mut bytes);
    String::from_utf8(bytes).unwrap_or_default()
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(k).unwrap_or_default());
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => out.extend(serde_json::to_vec(other).unwrap_or_default()),
    }
}

/// Parse `30m`, `4h`, `2d`, `1w`, `45s` into a duration.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let d = match unit.trim() {
        "s" => chrono::Duration::try_seconds(n),
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => return Err(format!("`{text}` has no known unit")),
    };
    d.filter(|d| *d > chrono::Duration::zero())
        .ok_or_else(|| format!("`{text}` is out of range"))
}

/// The JSON Schema of the blueprint format (committed as `blueprints/schema.json`).
pub fn json_schema() -> Value {
    let schema = schemars::schema_for!(Blueprint);
    serde_json::to_value(schema).unwrap_or(Value::Null)
}
