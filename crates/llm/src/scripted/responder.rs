//! The scripted server's default replies: deterministic, cheap, and readable
//! enough for a manager looking at the offline demo.
//!
//! Rules:
//! - **JSON** when the request sets `response_format: json_object`, or when
//!   the system and user messages together mention both "json" and "respond"
//!   (case-insensitive). The object has the keys listed on a `keys: a, b, c`
//!   line (first such line wins; quotes, backticks and a leading "and" are
//!   stripped), in that order, or a single `summary` key when none are listed.
//!   Values: keys containing `confidence`, `score` or `probability` get `0.9`;
//!   keys named `approved`, `valid`, or starting with `is_`/`has_` get `true`;
//!   every other key gets a short string naming the key and the subject.
//! - **Draft** otherwise: a `Draft (scripted model):` header, a `Regarding:`
//!   line from the first line of the last user message, a sentence naming up
//!   to three key words of it, up to three of its following lines quoted back,
//!   and a closing line asking for review.

use crate::Role;
use crate::wire::WireChatRequest;

const SUBJECT_CHARS: usize = 80;
const LINE_CHARS: usize = 100;

const STOPWORDS: &[&str] = &[
    "about",
    "above",
    "after",
    "again",
    "against",
    "because",
    "before",
    "below",
    "being",
    "between",
    "could",
    "doing",
    "during",
    "further",
    "having",
    "other",
    "please",
    "should",
    "their",
    "there",
    "these",
    "those",
    "through",
    "under",
    "until",
    "which",
    "while",
    "would",
    "write",
    "reply",
    "draft",
    "following",
    "message",
    "thanks",
    "thank",
    "hello",
];

/// The responder [`super::ScriptedConfig::default`] uses.
pub fn default_responder(req: &WireChatRequest) -> String {
    let prompt = last_user_message(req);
    if let Some(schema) = req.json_schema() {
        let value = instance(schema, "result", &subject(prompt), 0);
        return serde_json::to_string(&value).unwrap_or_else(|_| "{}".to_owned());
    }
    if wants_json(req) {
        json_reply(req, prompt)
    } else {
        draft_reply(prompt)
    }
}

/// A reply that a structured-output check rejects: JSON of a type the
/// request's schema does not allow, or text that is not JSON at all when the
/// schema names no type (or there is no schema).
pub(crate) fn off_schema_reply(req: &WireChatRequest) -> String {
    use serde_json::Value;
    const NOT_JSON: &str = "This reply is not JSON (scripted fault: off-schema reply).";
    let Some(schema) = req.json_schema() else {
        return NOT_JSON.to_owned();
    };
    let allowed: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ if schema.get("properties").is_some() => vec!["object"],
        _ => Vec::new(),
    };
    if allowed.is_empty() {
        return NOT_JSON.to_owned();
    }
    [
        ("string", r#""off-schema reply""#),
        ("array", r#"["off-schema reply"]"#),
        ("object", r#"{"off_schema": true}"#),
        ("boolean", "true"),
    ]
    .iter()
    .find(|(kind, _)| !allowed.contains(kind))
    .map_or(NOT_JSON, |(_, value)| value)
    .to_owned()
}

/// The scripted server's token count: whitespace-separated words.
pub fn count_tokens(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

fn last_user_message(req: &WireChatRequest) -> &str {
    req.messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str())
}

fn instructions(req: &WireChatRequest) -> impl Iterator<Item = &str> {
    req.messages
        .iter()
        .filter(|m| m.role != Role::Assistant)
        .map(|m| m.content.as_str())
}

fn wants_json(req: &WireChatRequest) -> bool {
    if req.json_mode() {
        return true;
    }
    let text = instructions(req)
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    text.contains("json") && text.contains("respond")
}

/// A value that satisfies a JSON Schema (the common keywords), so structured-output prompts
/// get a reply the engine accepts: the first enum value, a number inside its bounds, every
/// declared property, one item per list, strings that mention the subject.
fn instance(
    schema: &serde_json::Value,
    name: &str,
    subject: &str,
    depth: u32,
) -> serde_json::Value {
    use serde_json::{Value, json};
    if depth > 8 {
        return Value::Null;
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return instance(first, name, subject, depth + 1);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    match kind {
        "object" => {
            let mut out = serde_json::Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, sub) in props {
                    out.insert(key.clone(), instance(sub, key, subject, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let items = schema
                .get("items")
                .cloned()
                .unwrap_or(json!({"type": "string"}));
            let n = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1);
            Value::Array(
                (0..n.min(5))
                    .map(|_| instance(&items, name, subject, depth + 1))
                    .collect(),
            )
        }
        "integer" => json!(
            bound("minimum")
                .unwrap_or(0.0)
                .max(bound("exclusiveMinimum").map_or(f64::MIN, |m| m + 1.0)) as i64
        ),
        "number" => {
            let lo = bound("minimum")
                .or(bound("exclusiveMinimum"))
                .unwrap_or(0.0);
            let hi = bound("maximum")
                .or(bound("exclusiveMaximum"))
                .unwrap_or(1.0)
                .max(lo);
            json!(lo + (hi - lo) * 0.9)
        }
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => match schema.get("format").and_then(Value::as_str) {
            Some("date") => json!("2026-01-05"),
            Some("date-time") => json!("2026-01-05T09:00:00Z"),
            Some("email") => json!("someone@example.com"),
            Some("uri") => json!("https://example.com/"),
            _ => json!(format!("Scripted {name} for: {subject}")),
        },
    }
}

fn json_reply(req: &WireChatRequest, prompt: &str) -> String {
    let subject = subject(prompt);
    let mut keys = listed_keys(req);
    if keys.is_empty() {
        keys.push("summary".to_owned());
    }
    let fields: Vec<String> = keys
        .iter()
        .map(|key| {
            let lower = key.to_lowercase();
            let value = if ["confidence", "score", "probability"]
                .iter()
                .any(|w| lower.contains(w))
            {
                "0.9".to_owned()
            } else if lower == "approved"
                || lower == "valid"
                || lower.starts_with("is_")
                || lower.starts_with("has_")
            {
                "true".to_owned()
            } else {
                json_string(&format!("Scripted {key} for: {subject}"))
            };
            format!("{}: {value}", json_string(key))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn json_string(s: &str) -> String {
    // Serialising a &str cannot fail; the fallback only keeps this total.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

fn listed_keys(req: &WireChatRequest) -> Vec<String> {
    for text in instructions(req) {
        for line in text.lines() {
            let lower = line.to_lowercase();
            let Some(pos) = lower.find("keys:") else {
                continue;
            };
            // `to_lowercase` can change byte lengths for non-ASCII text, so
            // only slice the original when the offsets still line up.
            let rest = if lower.len() == line.len() {
                &line[pos + "keys:".len()..]
            } else {
                &lower[pos + "keys:".len()..]
            };
            let mut keys: Vec<String> = Vec::new();
            for raw in rest.split(',') {
                let key = raw
                    .trim()
                    .trim_start_matches("and ")
                    .trim_matches(|c: char| {
                        c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '.' | ';' | '[' | ']')
                    });
                let valid = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
                if valid && !keys.iter().any(|k| k == key) {
                    keys.push(key.to_owned());
                }
            }
            if !keys.is_empty() {
                return keys;
            }
        }
    }
    Vec::new()
}

fn draft_reply(prompt: &str) -> String {
    let mut lines = prompt
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return "Draft (scripted model):\nNo request text was provided, so there is nothing to draft yet.".to_owned();
    };
    let phrases = key_phrases(prompt);
    let topic = match phrases.as_slice() {
        [] => "your request".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let mut out = format!(
        "Draft (scripted model):\nRegarding: {}\n\nThank you for your message. We have reviewed it, in particular {topic}.",
        shorten(first.trim_end_matches([':', '.']), SUBJECT_CHARS)
    );
    for line in lines.take(3) {
        out.push_str("\nNoted: ");
        out.push_str(&shorten(line, LINE_CHARS));
    }
    out.push_str("\nWe will confirm the next steps once a reviewer has checked the points above.");
    out
}

fn subject(prompt: &str) -> String {
    prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map_or_else(|| "your request".to_owned(), |l| shorten(l, SUBJECT_CHARS))
}

/// Up to three distinctive words (the longest, ties by first appearance),
/// returned in the order they appear.
fn key_phrases(prompt: &str) -> Vec<String> {
    let mut words: Vec<(usize, String)> = Vec::new();
    for word in prompt.split(|c: char| !c.is_alphanumeric() && c != '-') {
        let word = word.trim_matches('-');
        let lower = word.to_lowercase();
        if word.chars().count() < 5
            || !word.chars().any(char::is_alphabetic)
            || STOPWORDS.contains(&lower.as_str())
            || words.iter().any(|(_, w)| w.to_lowercase() == lower)
        {
            continue;
        }
        words.push((words.len(), word.to_owned()));
    }
    let mut ranked = words.clone();
    ranked.sort_by(|a, b| {
        b.1.chars()
            .count()
            .cmp(&a.1.chars().count())
            .then(a.0.cmp(&b.0))
    });
    ranked.truncate(3);
    ranked.sort_by_key(|(pos, _)| *pos);
    ranked.into_iter().map(|(_, w)| w).collect()
}

/// Cuts at a word boundary and marks the cut.
fn shorten(text: &str, max_chars: usize) -> String {
    let Some((cut, _)) = text.char_indices().nth(max_chars) else {
        return text.to_owned();
    };
    let head = &text[..cut];
    let head = head.rsplit_once(' ').map_or(head, |(h, _)| h);
    format!("{}…", head.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatMessage;

    fn request(messages: Vec<ChatMessage>) -> WireChatRequest {
        WireChatRequest {
            model: "m".to_owned(),
            messages,
            temperature: None,
            max_tokens: None,
            stream: false,
            stream_options: None,
            response_format: None,
        }
    }

    #[test]
    fn draft_is_deterministic_and_depends_on_prompt() {
        let a = request(vec![ChatMessage::user(
            "Invoice 4411 is overdue\nThe customer disputes the shipping charge.\nThey want a refund by Friday.",
        )]);
        let b = request(vec![ChatMessage::user(
            "Onboarding for the new warehouse manager",
        )]);
        let draft = default_responder(&a);
        assert_eq!(draft, default_responder(&a));
        assert_ne!(draft, default_responder(&b));
        assert!(draft.starts_with("Draft (scripted model):\nRegarding: Invoice 4411 is overdue"));
        assert!(draft.contains("Noted: They want a refund by Friday."));
        assert!(draft.contains("customer"));
    }

    #[test]
    fn json_keys_are_listed_in_order() {
        let req = request(vec![
            ChatMessage::system(
                "Respond with JSON only. keys: category, confidence, `is_urgent`, and reason.",
            ),
            ChatMessage::user("Printer on floor 3 is on fire"),
        ]);
        let reply = default_responder(&req);
        let value: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
        assert_eq!(value["confidence"], 0.9);
        assert_eq!(value["is_urgent"], true);
        assert!(
            value["category"]
                .as_str()
                .is_some_and(|s| s.contains("Printer"))
        );
        let order: Vec<usize> = ["category", "confidence", "is_urgent", "reason"]
            .iter()
            .filter_map(|k| reply.find(&format!("\"{k}\"")))
            .collect();
        assert_eq!(order.len(), 4);
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn structured_output_requests_get_a_reply_that_fits_the_schema() {
        let schema = serde_json::json!({
            "type": "object",
            "required": ["category", "urgency", "confidence", "tags", "needs_human"],
            "properties": {
                "category": { "enum": ["billing", "technical", "other"] },
                "urgency": { "type": "string", "enum": ["high", "low"] },
                "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
                "tags": { "type": "array", "items": { "type": "string" }, "minItems": 2 },
                "needs_human": { "type": "boolean" },
                "amount": { "type": ["null", "integer"], "minimum": 10 },
            }
        });
        let mut req = request(vec![ChatMessage::user("Refund for order 7")]);
        req.response_format = Some(crate::wire::ResponseFormat {
            kind: "json_schema".to_owned(),
            json_schema: Some(crate::wire::JsonSchemaFormat {
                name: "output".to_owned(),
                schema,
                strict: false,
            }),
        });
        let value: serde_json::Value =
            serde_json::from_str(&default_responder(&req)).unwrap_or_default();
        assert_eq!(value["category"], "billing");
        assert_eq!(value["urgency"], "high");
        assert!(
            (0.0..=1.0).contains(&value["confidence"].as_f64().unwrap_or(-1.0)),
            "{value}"
        );
        assert_eq!(value["tags"].as_array().map(Vec::len), Some(2));
        assert_eq!(value["needs_human"], true);
        assert_eq!(value["amount"], 10);
    }

    #[test]
    fn off_schema_replies_break_the_schema() {
        let with_schema = |schema: serde_json::Value| {
            let mut req = request(vec![ChatMessage::user("x")]);
            req.response_format = Some(crate::wire::ResponseFormat {
                kind: "json_schema".to_owned(),
                json_schema: Some(crate::wire::JsonSchemaFormat {
                    name: "output".to_owned(),
                    schema,
                    strict: false,
                }),
            });
            off_schema_reply(&req)
        };
        let object = with_schema(serde_json::json!({"type": "object"}));
        assert!(serde_json::from_str::<serde_json::Value>(&object).is_ok_and(|v| v.is_string()));
        let string = with_schema(serde_json::json!({"type": ["string", "null"]}));
        assert!(serde_json::from_str::<serde_json::Value>(&string).is_ok_and(|v| v.is_array()));
        let implicit = with_schema(serde_json::json!({"properties": {"a": {}}}));
        assert!(serde_json::from_str::<serde_json::Value>(&implicit).is_ok_and(|v| !v.is_object()));
        let anything = with_schema(serde_json::json!({}));
        assert!(serde_json::from_str::<serde_json::Value>(&anything).is_err());
        let plain = off_schema_reply(&request(vec![ChatMessage::user("x")]));
        assert!(serde_json::from_str::<serde_json::Value>(&plain).is_err());
    }

    #[test]
    fn json_mode_without_keys_gives_summary() {
        let mut req = request(vec![ChatMessage::user("Summarise the week")]);
        req.response_format = Some(crate::wire::ResponseFormat {
            kind: "json_object".to_owned(),
            json_schema: None,
        });
        let value: serde_json::Value =
            serde_json::from_str(&default_responder(&req)).unwrap_or_default();
        assert!(value["summary"].is_string());
    }

    #[test]
    fn empty_prompt_and_long_lines_are_fine() {
        assert!(default_responder(&request(vec![])).starts_with("Draft (scripted model):"));
        let long = "word ".repeat(100);
        let draft = default_responder(&request(vec![ChatMessage::user(long)]));
        assert!(draft.lines().all(|l| l.chars().count() < 200));
        assert_eq!(count_tokens(" a  b\tc\n"), 3);
    }
}
