//! Turning a dropped file into a run payload: JSON as is, CSV as rows, e-mail (.eml) as
//! headers and body, anything else as text.

use std::path::Path;

use serde_json::{Map, Value, json};

/// Largest file a folder-drop trigger reads.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Decode a file's bytes by its extension. The error says what is wrong with the file.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Value, String> {
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let mut payload = match ext.as_str() {
        "json" => {
            let v: Value = serde_json::from_slice(bytes)
                .map_err(|e| format!("{name} is not valid JSON: {e}"))?;
            match v {
                Value::Object(m) => m,
                other => Map::from_iter([("data".to_owned(), other)]),
            }
        }
        "csv" => {
            let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
            let headers = reader
                .headers()
                .map_err(|e| format!("{name}: cannot read the CSV header row: {e}"))?
                .clone();
            let mut rows = Vec::new();
            for (i, record) in reader.records().enumerate() {
                let record =
                    record.map_err(|e| format!("{name}: CSV row {} is malformed: {e}", i + 2))?;
                let row: Map<String, Value> = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.to_owned(), csv_value(v)))
                    .collect();
                rows.push(Value::Object(row));
            }
            // A one-row CSV is one record (an invoice); several rows stay a list.
            let mut m = match rows.as_slice() {
                [Value::Object(only)] => only.clone(),
                _ => Map::new(),
            };
            m.insert("rows".into(), Value::Array(rows));
            m
        }
        "eml" => email(name, bytes)?,
        _ => {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                format!("{name} is not UTF-8 text; drop JSON, CSV, .eml or text files")
            })?;
            Map::from_iter([("content".to_owned(), Value::String(text.to_owned()))])
        }
    };
    payload.insert("file".into(), Value::String(name.to_owned()));
    Ok(Value::Object(payload))
}

fn csv_value(v: &str) -> Value {
    if let Ok(n) = v.parse::<i64>() {
        return json!(n);
    }
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        return json!(f);
    }
    Value::String(v.to_owned())
}

fn email(name: &str, bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let msg = mail_parser::MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| format!("{name} is not a readable e-mail message"))?;
    let addresses = |a: Option<&mail_parser::Address<'_>>| -> Vec<Value> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address().map(|s| Value::String(s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
    };
    let from = addresses(msg.from())
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    Ok(Map::from_iter([
        ("from".to_owned(), from),
        ("to".to_owned(), Value::Array(addresses(msg.to()))),
        (
            "subject".to_owned(),
            json!(msg.subject().unwrap_or_default()),
        ),
        ("date".to_owned(), json!(msg.date().map(|d| d.to_rfc3339()))),
        (
            "body".to_owned(),
            json!(msg.body_text(0).map(|b| b.into_owned()).unwrap_or_default()),
        ),
    ]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decodes_each_kind() {
        let v = decode("a.json", br#"{"amount": 12}"#).unwrap();
        assert_eq!(v, json!({"amount": 12, "file": "a.json"}));
        let v = decode("inv.csv", b"vendor,amount\nAcme,1250.5\n").unwrap();
        assert_eq!(v["vendor"], "Acme");
        assert_eq!(v["amount"], 1250.5);
        let v = decode("two.csv", b"a,b\n1,2\n3,4\n").unwrap();
        assert_eq!(v["rows"].as_array().unwrap().len(), 2);
        let eml = b"From: Ana <ana@example.com>\r\nTo: ops@example.com\r\nSubject: Invoice 42\r\n\r\nPlease pay.\r\n";
        let v = decode("m.eml", eml).unwrap();
        assert_eq!(v["from"], "ana@example.com");
        assert_eq!(v["subject"], "Invoice 42");
        assert!(v["body"].as_str().unwrap().contains("Please pay."));
        assert_eq!(decode("n.txt", b"hello").unwrap()["content"], "hello");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(
            decode("a.json", b"{nope")
                .unwrap_err()
                .contains("a.json is not valid JSON")
        );
        assert!(
            decode("b.csv", b"a,b\n1,2,3\n")
                .unwrap_err()
                .contains("CSV row 2")
        );
        assert!(
            decode("c.bin", &[0xff, 0xfe, 0x00])
                .unwrap_err()
                .contains("not UTF-8")
        );
    }
}
