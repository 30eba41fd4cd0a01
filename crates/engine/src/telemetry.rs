//! Traces: the spans runs make, and their export over OTLP/HTTP.
//!
//! Every driver activation is one trace: a root span `run` (`processops.run.id`,
//! `processops.blueprint.id`, `processops.blueprint.version`), a child span per node execution
//! (`processops.node.id`, `.kind`, `.visit`, `.attempt`), and under a prompt node one span per
//! model call that follows the OpenTelemetry GenAI semantic conventions (`chat {model}`,
//! `gen_ai.*`, `error.type`). Retries, skipped agents, fallbacks, repairs and human decisions
//! are span events. A run that parks at a review and resumes days later is a new trace: traces
//! are not held open across a park, and `processops.run.id` joins the activations.
//!
//! The spans are plain `tracing` spans, so with export off they cost what any span costs under
//! the installed subscriber (`processops bench tracing` measures it). With `[telemetry]
//! otlp_endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) set, [`layer`] bridges them to
//! OpenTelemetry and batches them to the collector as protobuf from a background thread.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use processops_core::blueprint::Node;
use processops_llm::{ChatRequest, ChatResponse, LlmError};
use serde::Deserialize;
use tracing::Span;
use tracing::field::Empty;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;
use uuid::Uuid;

use crate::EngineError;

/// `[telemetry]` in `processops.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// Base URL of an OTLP/HTTP collector (Jaeger, Grafana Alloy/Tempo, Langfuse, an
    /// OpenTelemetry Collector), e.g. `http://127.0.0.1:4318`; traces go to `/v1/traces`
    /// under it. Without it, `OTEL_EXPORTER_OTLP_ENDPOINT` is used; without both, nothing is
    /// exported. Headers (an API key) come from `OTEL_EXPORTER_OTLP_HEADERS`, never this file.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces (default `processops`, or `OTEL_SERVICE_NAME`).
    #[serde(default)]
    pub service_name: Option<String>,
}

/// Where traces go, resolved from the settings and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The full URL traces are posted to (`…/v1/traces`).
    pub traces_url: String,
    pub service_name: String,
}

const DEFAULT_SERVICE_NAME: &str = "processops";
/// One export may take this long; the batch is dropped after it (the run never waits).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl TelemetrySettings {
    /// The export configuration, or `None` when export is off. `origin` names the file in
    /// errors; `env` reads environment variables (a parameter so tests need not set them).
    pub fn resolve(
        &self,
        origin: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TelemetryConfig>, EngineError> {
        let service_name = match &self.service_name {
            Some(name) if name.trim().is_empty() => {
                return Err(EngineError::Io(format!(
                    "{}: [telemetry] service_name is empty; remove the line to use \"{DEFAULT_SERVICE_NAME}\", or name the service",
                    origin.display()
                )));
            }
            Some(name) => name.clone(),
            None => env("OTEL_SERVICE_NAME")
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned()),
        };
        let (base, source) = if let Some(url) = &self.otlp_endpoint {
            (
                url.clone(),
                format!("{}: [telemetry] otlp_endpoint", origin.display()),
            )
        } else if let Some(url) = env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|u| !u.is_empty()) {
            (
                url,
                "the environment variable OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            )
        } else {
            return Ok(None);
        };
        let traces_url = traces_url(&base).map_err(|problem| {
            EngineError::Io(format!(
                "{source} = \"{base}\" {problem}; write the collector's OTLP/HTTP address, e.g. \"http://127.0.0.1:4318\" (traces are sent to /v1/traces under it)"
            ))
        })?;
        Ok(Some(TelemetryConfig {
            traces_url,
            service_name,
        }))
    }
}

/// `base` + `/v1/traces`, as the OTLP specification builds a signal's URL from the generic
/// endpoint (a URL that already ends in `/v1/traces` is kept).
fn traces_url(base: &str) -> Result<String, &'static str> {
    let url = reqwest::Url::parse(base.trim()).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("is not an http:// or https:// URL");
    }
    let text = url.as_str().trim_end_matches('/');
    Ok(if text.ends_with("/v1/traces") {
        text.to_owned()
    } else {
        format!("{text}/v1/traces")
    })
}

/// Read only `[telemetry]` from a project's `processops.toml` (the rest is the commands'
/// business): `None` when export is off. The CLI calls this before it sets up logging.
pub fn project_config(project: &Path) -> Result<Option<TelemetryConfig>, EngineError> {
    #[derive(Deserialize)]
    struct OnlyTelemetry {
        #[serde(default)]
        telemetry: TelemetrySettings,
    }
    let path = project.join("processops.toml");
    let settings = match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str::<OnlyTelemetry>(&text)
                .map_err(|e| EngineError::Io(format!("{}: {e}", path.display())))?
                .telemetry
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TelemetrySettings::default(),
        Err(e) => {
            return Err(EngineError::Io(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    settings.resolve(&path, |name| std::env::var(name).ok())
}

/// Flushes and stops the exporter when dropped (or by [`TelemetryGuard::shutdown`]), so the
/// last spans of a command are sent before the process exits.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Send every finished span now. Blocks until the collector answered (or the export
    /// timed out): call it outside async code, or from `spawn_blocking`.
    pub fn flush(&self) -> Result<(), EngineError> {
        self.provider
            .force_flush()
            .map_err(|e| EngineError::Internal(format!("exporting traces failed: {e}")))
    }

    /// Flush and stop. Blocks like [`TelemetryGuard::flush`].
    pub fn shutdown(self) -> Result<(), EngineError> {
        let result = self
            .provider
            .shutdown()
            .map_err(|e| EngineError::Internal(format!("stopping the trace exporter: {e}")));
        // Dropping runs `shutdown` again, which answers "already shut down": nothing to do.
        drop(self);
        result
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// The layer that exports spans to `config`'s collector, and the guard that flushes it. Add
/// the layer to the subscriber only when export is on: without it, nothing of OpenTelemetry
/// runs. It takes INFO spans and events, and DEBUG from the model clients (retries).
pub fn layer<S>(
    config: &TelemetryConfig,
) -> Result<(Box<dyn Layer<S> + Send + Sync + 'static>, TelemetryGuard), EngineError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(BlockingHttp::new()?)
        .with_endpoint(config.traces_url.clone())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| EngineError::Internal(format!("cannot set up the trace exporter: {e}")))?;
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    // The batch processor exports from its own thread: a slow collector never slows a run.
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("processops");
    let filter = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("processops_llm", LevelFilter::DEBUG);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // Thread ids and source lines say nothing about a business process.
        .with_threads(false)
        .with_location(false)
        .with_tracked_inactivity(false)
        .with_filter(filter);
    Ok((Box::new(layer), TelemetryGuard { provider }))
}

/// The exporter's HTTP client: the workspace's reqwest (rustls), blocking, because the batch
/// processor calls it from its own thread outside any async runtime. (`opentelemetry-otlp`'s
/// built-in clients would bring a second major version of reqwest.)
#[derive(Debug)]
struct BlockingHttp(reqwest::blocking::Client);

/// A collector's answer is a small status message; anything bigger is not a collector.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

impl BlockingHttp {
    fn new() -> Result<Self, EngineError> {
        // Built on a thread of its own: reqwest's blocking client must not be made inside an
        // async runtime, and `serve` sets up telemetry from one.
        std::thread::spawn(|| {
            reqwest::blocking::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(EXPORT_TIMEOUT)
                .user_agent(concat!("ProcessOps/", env!("CARGO_PKG_VERSION")))
                .build()
        })
        .join()
        .map_err(|_| {
            EngineError::Internal("building the trace exporter's HTTP client panicked".into())
        })?
        .map(Self)
        .map_err(|e| {
            EngineError::Internal(format!(
                "cannot build the trace exporter's HTTP client: {e}"
            ))
        })
    }

    fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        use std::io::Read as _;
        let request = reqwest::blocking::Request::try_from(request.map(|b| b.to_vec()))?;
        let mut response = self.0.execute(request)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        response.take(MAX_RESPONSE_BYTES).read_to_end(&mut body)?;
        let mut out = Response::builder().status(status).body(Bytes::from(body))?;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

// Written out instead of `#[async_trait]` (the trait's own macro) to need no extra crate.
impl HttpClient for BlockingHttp {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.send(request) })
    }
}

/// The root span of one driver activation; blueprint and version are recorded once loaded.
pub(crate) fn run_span(run_id: Uuid) -> Span {
    // No parent: whatever woke the driver (a request, a timer) is not part of the run's trace.
    tracing::info_span!(
        parent: None,
        "run",
        processops.run.id = %run_id,
        processops.blueprint.id = Empty,
        processops.blueprint.version = Empty,
        processops.run.status = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
        error.type = Empty,
    )
}

/// One execution of a node. (Integers are recorded as `i64`: the OpenTelemetry bridge turns
/// unsigned ones into strings.)
pub(crate) fn node_span(node: &Node, visit: u32, attempt: u32) -> Span {
    tracing::info_span!(
        "node",
        otel.name = %format_args!("{} {}", node.kind_name(), node.id()),
        processops.node.id = node.id(),
        processops.node.kind = node.kind_name(),
        processops.node.visit = i64::from(visit),
        processops.node.attempt = i64::from(attempt),
        otel.status_code = Empty,
        otel.status_description = Empty,
        error.type = Empty,
    )
}

/// Mark a span failed (its fields must include `otel.status_code` and `error.type`).
pub(crate) fn fail(span: &Span, kind: &str, message: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", message);
    span.record("error.type", kind);
}

/// One model call, named and described as the OpenTelemetry GenAI conventions say.
pub(crate) fn chat_span(
    system: &'static str,
    agent: &str,
    purpose: &str,
    request: &ChatRequest,
) -> Span {
    let span = tracing::info_span!(
        "chat",
        otel.name = %format_args!("chat {}", request.model),
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.system = system,
        gen_ai.provider.name = system,
        gen_ai.request.model = request.model.as_str(),
        gen_ai.output.type = if request.json_mode || request.json_schema.is_some() { "json" } else { "text" },
        gen_ai.request.temperature = Empty,
        gen_ai.request.max_tokens = Empty,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        processops.agent = agent,
        processops.call.purpose = purpose,
        processops.call.attempts = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
        error.type = Empty,
    );
    if let Some(t) = request.temperature {
        span.record("gen_ai.request.temperature", f64::from(t));
    }
    if let Some(m) = request.max_tokens {
        span.record("gen_ai.request.max_tokens", i64::from(m));
    }
    span
}

/// What the model answered, or why it did not.
pub(crate) fn record_chat(span: &Span, reply: &Result<ChatResponse, LlmError>) {
    match reply {
        Ok(r) => {
            span.record("gen_ai.response.model", r.model.as_str());
            span.record(
                "gen_ai.usage.input_tokens",
                i64::from(r.usage.prompt_tokens),
            );
            span.record(
                "gen_ai.usage.output_tokens",
                i64::from(r.usage.completion_tokens),
            );
            span.record("processops.call.attempts", i64::from(r.attempts));
        }
        Err(e) => fail(span, &e.kind(), &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn resolve(toml_text: &str, env: &[(&str, &str)]) -> Result<Option<TelemetryConfig>, String> {
        let settings: crate::settings::Settings = toml::from_str(toml_text).unwrap();
        settings
            .telemetry
            .resolve(Path::new("/p/processops.toml"), |name| {
                env.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn export_is_off_without_an_endpoint() {
        assert_eq!(resolve("", &[]).unwrap(), None);
        assert_eq!(
            resolve("[telemetry]\nservice_name = \"x\"", &[]).unwrap(),
            None
        );
    }

    #[test]
    fn endpoints_come_from_the_file_then_the_environment() {
        let config = resolve(
            "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"",
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://elsewhere:4318")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.traces_url, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(config.service_name, "processops");
        let config = resolve(
            "",
            &[
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "https://otel.example.com/otlp/",
                ),
                ("OTEL_SERVICE_NAME", "billing-engine"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.traces_url, "https://otel.example.com/otlp/v1/traces");
        assert_eq!(config.service_name, "billing-engine");
        // A signal URL given in full is kept.
        let config = resolve(
            "[telemetry]\notlp_endpoint = \"http://h:4318/v1/traces\"\nservice_name = \"ops\"",
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.traces_url, "http://h:4318/v1/traces");
        assert_eq!(config.service_name, "ops");
    }

    #[test]
    fn bad_settings_say_where_and_what_to_do() {
        for (toml_text, env, expected) in [
            (
                "[telemetry]\notlp_endpoint = \"127.0.0.1:4318\"",
                vec![],
                "/p/processops.toml: [telemetry] otlp_endpoint = \"127.0.0.1:4318\" is not",
            ),
            (
                "[telemetry]\notlp_endpoint = \"grpc://h:4317\"",
                vec![],
                "is not an http:// or https:// URL; write the collector's OTLP/HTTP address, e.g. \"http://127.0.0.1:4318\"",
            ),
            (
                "",
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "nonsense")],
                "the environment variable OTEL_EXPORTER_OTLP_ENDPOINT = \"nonsense\" is not a URL",
            ),
            (
                "[telemetry]\notlp_endpoint = \"http://h:4318\"\nservice_name = \" \"",
                vec![],
                "/p/processops.toml: [telemetry] service_name is empty",
            ),
        ] {
            let error = resolve(toml_text, &env).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        // A misspelt key is refused by name, like every other table of the file.
        let error =
            toml::from_str::<crate::settings::Settings>("[telemetry]\notlp_endpiont = \"x\"")
                .unwrap_err()
                .to_string();
        assert!(error.contains("otlp_endpoint"), "{error}");
    }

    #[test]
    fn the_project_file_is_read_for_its_telemetry_table_only() {
        let dir = tempfile::tempdir().unwrap();
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
            assert_eq!(project_config(dir.path()).unwrap(), None);
        }
        std::fs::write(
            dir.path().join("processops.toml"),
            "[providers.main]\nkind = \"scripted\"\n\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n",
        )
        .unwrap();
        let config = project_config(dir.path()).unwrap().unwrap();
        assert_eq!(config.traces_url, "http://127.0.0.1:4318/v1/traces");
    }
}
