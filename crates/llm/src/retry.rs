//! Retries with jittered exponential backoff that honour `Retry-After`,
//! shared by every HTTP provider.

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::LlmError;

/// The outcome of one failed try, with the server's requested wait if any.
pub(crate) struct Failure {
    pub(crate) error: LlmError,
    pub(crate) retry_after: Option<Duration>,
}

impl From<LlmError> for Failure {
    fn from(error: LlmError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Tries after the first one, for retryable failures only.
    pub(crate) max_retries: u32,
    pub(crate) backoff_base: Duration,
    /// Also caps a server's `Retry-After`, so one answer cannot park a step for hours.
    pub(crate) backoff_max: Duration,
}

impl RetryPolicy {
    /// Calls `attempt` until it succeeds, fails with an error that is not
    /// retryable, or runs out of tries. Returns the value and the number of
    /// tries it took.
    pub(crate) async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<(T, u32), LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let max_attempts = self.max_retries.saturating_add(1);
        let mut tries = 0u32;
        loop {
            tries += 1;
            let failure = match attempt().await {
                Ok(value) => return Ok((value, tries)),
                Err(failure) => failure,
            };
            if !failure.error.is_retryable() {
                return Err(failure.error);
            }
            if tries >= max_attempts {
                return Err(LlmError::RetriesExhausted {
                    attempts: tries,
                    last: Box::new(failure.error),
                });
            }
            let delay = match failure.retry_after {
                Some(wait) => wait.min(self.backoff_max),
                None => self.backoff(tries),
            };
            // Errors are key-free by construction, so they may be logged.
            tracing::debug!(attempt = tries, ?delay, error = %failure.error, "retrying model call");
            tokio::time::sleep(delay).await;
        }
    }

    /// Full jitter: uniform in `[0, min(max, base * 2^(failed-1))]`, which
    /// spreads out many callers that failed at the same moment.
    pub(crate) fn backoff(&self, failed: u32) -> Duration {
        let exp = failed.saturating_sub(1).min(31);
        let cap = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        let cap_micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=cap_micros))
    }
}

/// Statuses whose `Retry-After` is worth waiting for (529 is Anthropic's
/// "overloaded").
pub(crate) fn honours_retry_after(status: u16) -> bool {
    matches!(status, 429 | 503 | 529)
}

/// `Retry-After` as delta-seconds (fractions tolerated) or an HTTP-date.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::cell::Cell;

    use reqwest::header::HeaderValue;

    use super::*;

    fn policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            backoff_base: Duration::from_micros(1),
            backoff_max: Duration::from_micros(10),
        }
    }

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(parse_retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("0.5"));
        assert_eq!(
            parse_retry_after(&headers),
            Some(Duration::from_millis(500))
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = parse_retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn backoff_is_capped() {
        let policy = RetryPolicy {
            max_retries: 3,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(250),
        };
        for failed in [1, 2, 3, 10, 40, u32::MAX] {
            assert!(policy.backoff(failed) <= Duration::from_millis(250));
        }
        assert!(policy.backoff(1) <= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn run_counts_tries_and_stops_on_fatal_errors() {
        let calls = Cell::new(0u32);
        let (value, tries) = policy(3)
            .run(|| {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err(Failure::from(LlmError::StreamCut(String::new())))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!((value, tries), (3, 3));

        calls.set(0);
        let err = policy(3)
            .run(|| {
                calls.set(calls.get() + 1);
                async { Err::<(), _>(Failure::from(LlmError::InvalidRequest(String::new()))) }
            })
            .await
            .unwrap_err();
        assert!(matches!(err, LlmError::InvalidRequest(_)));
        assert_eq!(calls.get(), 1);

        let err = policy(1)
            .run(|| async { Err::<(), _>(Failure::from(LlmError::Transport(String::new()))) })
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            LlmError::RetriesExhausted { attempts: 2, .. }
        ));
    }
}
