//! Talking to a running `processops serve` when it owns the store.

use anyhow::{Result, anyhow};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub struct Remote {
    base: String,
    http: reqwest::Client,
}

impl Remote {
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    pub async fn post<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach the ProcessOps server at {}: {e}", self.base))?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status.is_success() {
            return Ok(serde_json::from_slice(&bytes)?);
        }
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(ToOwned::to_owned)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Err(anyhow!("{message}"))
    }
}
