//! A loopback HTTP server that speaks the OpenAI chat-completions protocol
//! (`POST /v1/chat/completions`) and the Anthropic Messages protocol
//! (`POST /v1/messages`), JSON and SSE, with scripted replies and injectable
//! faults. Tests, the benchmark and the offline demo use it in place of a
//! real model.
//!
//! Faults happen on the wire, not in-process: a 429 is a real response with a
//! `Retry-After` header, and a dropped connection really closes the socket.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::{IncomingStream, Listener};
use bytes::Bytes;
use futures::StreamExt;
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::STEP_HEADER;
use crate::wire::{
    WireChatRequest, WireChatResponse, WireChoice, WireChunk, WireChunkChoice, WireDelta,
    WireError, WireErrorDetail, WireMessage, WireUsage,
};

mod anthropic;
mod responder;

pub use responder::{count_tokens, default_responder};

/// Builds a reply text from a request. Anthropic requests are given to it
/// translated: the `system` field becomes a leading system message, and a
/// structured-output instruction in it becomes a `json_schema` (or
/// `json_object`) response format.
pub type Responder = Arc<dyn Fn(&WireChatRequest) -> String + Send + Sync>;

/// One scripted misbehaviour, applied to the next well-formed chat request
/// of either protocol (FIFO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status, an error body in the protocol's shape and, if
    /// given, `Retry-After: <seconds>`. Statuses below 200 become 500.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Close the TCP connection without a response; on a streaming request,
    /// send part of the stream first and then close it.
    DropConnection,
    /// `200 OK` with a body that is not valid JSON (or, streaming, one broken
    /// event followed by the end marker: `[DONE]` or `message_stop`).
    MalformedJson,
    /// Answer normally with this text instead of the responder's.
    Reply(String),
    /// Answer normally, but with a reply that fails the request's output
    /// schema: JSON of a type the schema does not allow, or text that is not
    /// JSON when the schema names no type or there is none.
    OffSchema,
    /// Streaming: part of the reply, then an error reported inside the
    /// stream (Anthropic's `event: error` with `overloaded_error`; an OpenAI
    /// chunk with an `error` member), then the stream ends. Not streaming:
    /// HTTP 529 `overloaded_error` (Anthropic) or 503 (OpenAI).
    StreamError,
}

pub struct ScriptedConfig {
    /// Added before every answer, to imitate model latency.
    pub latency: Duration,
    /// Pause between SSE events, to make streams look like streams.
    pub chunk_delay: Duration,
    pub responder: Responder,
    /// Ids listed by `GET /v1/models`.
    pub models: Vec<String>,
    /// When set, chat requests must carry this key (`Authorization: Bearer`
    /// for OpenAI, `x-api-key` for Anthropic) or get a 401.
    pub api_key: Option<String>,
}

impl ScriptedConfig {
    pub fn with_responder(
        responder: impl Fn(&WireChatRequest) -> String + Send + Sync + 'static,
    ) -> Self {
        Self {
            responder: Arc::new(responder),
            ..Self::default()
        }
    }
}

impl Default for ScriptedConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            responder: Arc::new(default_responder),
            models: vec!["scripted".to_owned()],
            api_key: None,
        }
    }
}

impl Clone for ScriptedConfig {
    fn clone(&self) -> Self {
        Self {
            latency: self.latency,
            chunk_delay: self.chunk_delay,
            responder: Arc::clone(&self.responder),
            models: self.models.clone(),
            api_key: self.api_key.clone(),
        }
    }
}

impl fmt::Debug for ScriptedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedConfig")
            .field("latency", &self.latency)
            .field("chunk_delay", &self.chunk_delay)
            .field("models", &self.models)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: ScriptedConfig,
    requests: AtomicU64,
    steps: Mutex<HashMap<String, u32>>,
    faults: Mutex<VecDeque<Fault>>,
}

impl Shared {
    fn new(config: ScriptedConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            requests: AtomicU64::new(0),
            steps: Mutex::new(HashMap::new()),
            faults: Mutex::new(VecDeque::new()),
        })
    }
}

/// A running server. Dropping it (or [`ScriptedServer::shutdown`]) stops it.
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl ScriptedServer {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: ScriptedConfig) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        Self::start_on(listener, config).await
    }

    /// Starts in the background on an already bound listener.
    pub async fn start_on(listener: TcpListener, config: ScriptedConfig) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Shared::new(config);
        let (stop, stopped) = oneshot::channel::<()>();
        let served = run(listener, Arc::clone(&shared), async {
            // A dropped sender also means stop.
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move {
            if let Err(e) = served.await {
                tracing::warn!(error = %e, "scripted model server stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT/v1`, ready for an OpenAI-compatible client.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT`, for clients that add the API version to the
    /// path themselves, like the Anthropic one.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Chat requests received on either protocol, including rejected and
    /// faulted ones.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Chat requests that carried `X-ProcessOps-Step: <step_key>`.
    pub fn calls_for_step(&self, step_key: &str) -> u32 {
        lock(&self.shared.steps).get(step_key).copied().unwrap_or(0)
    }

    pub fn step_counts(&self) -> HashMap<String, u32> {
        lock(&self.shared.steps).clone()
    }

    /// Queues a fault for the next chat request that is well-formed.
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.shared.faults).push_back(fault);
    }

    /// Stops accepting, lets in-flight requests finish for up to two seconds,
    /// then abandons them.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves on `listener` until the returned future is dropped; for a CLI that
/// runs the scripted model in the foreground on a fixed port.
pub async fn serve_on(listener: TcpListener, config: ScriptedConfig) -> io::Result<()> {
    run(listener, Shared::new(config), std::future::pending()).await
}

async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/models", get(models))
        .with_state(shared);
    axum::serve(
        KillableListener(listener),
        app.into_make_service_with_connect_info::<ConnHandle>(),
    )
    .with_graceful_shutdown(stop)
    .await
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data (counters, a queue) stays valid even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let data: Vec<serde_json::Value> = shared
        .config
        .models
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": "processops"}))
        .collect();
    axum::Json(serde_json::json!({"object": "list", "data": data})).into_response()
}

/// Counts a chat request (per step too) as it arrives.
fn arrive(shared: &Shared, headers: &HeaderMap) -> u64 {
    let number = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(step) = headers.get(STEP_HEADER).and_then(|v| v.to_str().ok()) {
        let mut steps = lock(&shared.steps);
        let count = steps.entry(step.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
    }
    number
}

/// Whether `presented` is the configured key (always, when none is).
fn authorized(shared: &Shared, presented: Option<&str>) -> bool {
    match &shared.config.api_key {
        None => true,
        Some(key) => presented == Some(key.as_str()),
    }
}

fn next_fault(shared: &Shared) -> Option<Fault> {
    lock(&shared.faults).pop_front()
}

/// A reply as both protocols need it.
struct Composed {
    text: String,
    /// Cut short by `max_tokens`.
    truncated: bool,
    prompt_tokens: u32,
    completion_tokens: u32,
}

/// Waits the configured latency, then builds the reply: `reply` if given,
/// otherwise the responder's, cut to `max_tokens`.
async fn compose(shared: &Shared, req: &WireChatRequest, reply: Option<String>) -> Composed {
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let text = reply.unwrap_or_else(|| (shared.config.responder)(req));
    let (text, finish_reason) = limit_tokens(&text, req.max_tokens);
    let prompt_tokens = req
        .messages
        .iter()
        .map(|m| count_tokens(&m.content))
        .fold(0u32, u32::saturating_add);
    let completion_tokens = count_tokens(&text);
    Composed {
        text,
        truncated: finish_reason == "length",
        prompt_tokens,
        completion_tokens,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let number = arrive(&shared, &headers);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !authorized(&shared, bearer) {
        // Never echo what was presented: it may be a real key.
        return error_response(StatusCode::UNAUTHORIZED, "invalid or missing API key");
    }

    let req: WireChatRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("the body is not a valid chat completion request: {e}"),
            );
        }
    };
    if req.model.trim().is_empty() {
        return error_response(StatusCode::BAD_REQUEST, "`model` must not be empty");
    }
    if req.messages.is_empty() {
        return error_response(StatusCode::BAD_REQUEST, "`messages` must not be empty");
    }

    let mut reply = None;
    let mut stream_fault = None;
    match next_fault(&shared) {
        Some(Fault::Status {
            status,
            retry_after,
        }) => return fault_status(status, retry_after),
        Some(Fault::StreamError) if !req.stream => {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "scripted fault: overloaded",
            );
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Reply(text)) => reply = Some(text),
        Some(Fault::OffSchema) => reply = Some(responder::off_schema_reply(&req)),
        Some(Fault::DropConnection) if !req.stream => {
            conn.0.kill();
            // Never reaches the client: every write on the socket now fails.
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::MalformedJson) if !req.stream => {
            return (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"id":"chatcmpl-broken","choices":[{"message":{"content":"#,
            )
                .into_response();
        }
        Some(other) => stream_fault = Some(other),
        None => {}
    }

    let composed = compose(&shared, &req, reply).await;
    let finish_reason = if composed.truncated { "length" } else { "stop" };
    let usage = WireUsage {
        prompt_tokens: composed.prompt_tokens,
        completion_tokens: composed.completion_tokens,
        total_tokens: composed
            .prompt_tokens
            .saturating_add(composed.completion_tokens),
    };
    let text = composed.text;
    let id = format!("chatcmpl-scripted-{number}");
    let created = unix_now();

    if !req.stream {
        let body = WireChatResponse {
            id,
            object: "chat.completion".to_owned(),
            created,
            model: req.model,
            choices: vec![WireChoice {
                index: 0,
                message: WireMessage {
                    role: "assistant".to_owned(),
                    content: Some(text),
                },
                finish_reason: Some(finish_reason.to_owned()),
            }],
            usage: Some(usage),
        };
        return axum::Json(body).into_response();
    }

    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let chunk = |delta: WireDelta, finish: Option<&str>, usage: Option<WireUsage>| {
        let chunk = WireChunk {
            id: id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created,
            model: req.model.clone(),
            choices: if usage.is_some() {
                Vec::new()
            } else {
                vec![WireChunkChoice {
                    index: 0,
                    delta,
                    finish_reason: finish.map(str::to_owned),
                }]
            },
            usage,
            error: None,
        };
        Frame::Data(sse_event(
            &serde_json::to_string(&chunk).unwrap_or_default(),
        ))
    };

    // A comment first, as several real servers send, so clients must skip it.
    let mut frames = vec![Frame::Data(Bytes::from_static(b": scripted stream\n\n"))];
    frames.push(chunk(
        WireDelta {
            role: Some("assistant".to_owned()),
            content: Some(String::new()),
        },
        None,
        None,
    ));
    let pieces = word_pieces(&text);
    match stream_fault {
        Some(Fault::DropConnection) => {
            for piece in first_half(&pieces) {
                frames.push(chunk(content_delta(piece), None, None));
            }
            frames.push(Frame::Cut);
        }
        Some(Fault::MalformedJson) => {
            frames.push(Frame::Data(sse_event(
                r#"{"choices":[{"delta":{"content":"#,
            )));
            frames.push(Frame::Data(sse_event("[DONE]")));
        }
        Some(Fault::StreamError) => {
            for piece in first_half(&pieces) {
                frames.push(chunk(content_delta(piece), None, None));
            }
            let error = WireChunk {
                error: Some(WireErrorDetail {
                    message: "scripted fault: overloaded".to_owned(),
                    kind: "server_error".to_owned(),
                }),
                ..WireChunk::default()
            };
            frames.push(Frame::Data(sse_event(
                &serde_json::to_string(&error).unwrap_or_default(),
            )));
        }
        _ => {
            for piece in &pieces {
                frames.push(chunk(content_delta(piece), None, None));
            }
            frames.push(chunk(WireDelta::default(), Some(finish_reason), None));
            if include_usage {
                frames.push(chunk(WireDelta::default(), None, Some(usage)));
            }
            frames.push(Frame::Data(sse_event("[DONE]")));
        }
    }
    event_stream(frames, shared.config.chunk_delay, conn)
}

enum Frame {
    Data(Bytes),
    /// Kill the connection here, mid-stream.
    Cut,
}

/// A `text/event-stream` response of these frames, `delay` apart.
fn event_stream(frames: Vec<Frame>, delay: Duration, conn: ConnHandle) -> Response {
    let body = futures::stream::iter(frames).then(move |frame| {
        let conn = conn.clone();
        async move {
            match frame {
                Frame::Data(bytes) => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Ok(bytes)
                }
                Frame::Cut => {
                    // Let hyper flush what was sent so the client sees a
                    // stream that stops mid-way, not an empty one.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    conn.0.kill();
                    Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "scripted fault: stream cut",
                    ))
                }
            }
        }
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The pieces sent before a mid-stream fault: about half, at least one.
fn first_half<'a>(pieces: &'a [&'a str]) -> &'a [&'a str] {
    &pieces[..pieces.len().div_ceil(2).max(1).min(pieces.len())]
}

fn content_delta(piece: &str) -> WireDelta {
    WireDelta {
        role: None,
        content: Some(piece.to_owned()),
    }
}

fn sse_event(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// Splits text into words that keep their trailing whitespace, so the pieces
/// concatenate back to the exact text.
fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut seen_word = false;
    let mut prev_ws = false;
    for (i, c) in text.char_indices() {
        let ws = c.is_whitespace();
        if !ws && prev_ws && seen_word {
            pieces.push(&text[start..i]);
            start = i;
        }
        seen_word |= !ws;
        prev_ws = ws;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Applies `max_tokens` (in whitespace words) like a real model: cut and
/// report `length`.
fn limit_tokens(text: &str, max_tokens: Option<u32>) -> (String, &'static str) {
    let Some(max) = max_tokens.and_then(|m| usize::try_from(m).ok()) else {
        return (text.to_owned(), "stop");
    };
    let pieces = word_pieces(text);
    if pieces.len() <= max {
        return (text.to_owned(), "stop");
    }
    (pieces[..max].concat().trim_end().to_owned(), "length")
}

fn error_response(status: StatusCode, message: &str) -> Response {
    let kind = match status.as_u16() {
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    let body = WireError {
        error: WireErrorDetail {
            message: message.to_owned(),
            kind: kind.to_owned(),
        },
    };
    (status, axum::Json(body)).into_response()
}

fn fault_status(status: u16, retry_after: Option<u64>) -> Response {
    let status = fault_code(status);
    with_retry_after(
        error_response(status, &format!("scripted fault: HTTP {}", status.as_u16())),
        retry_after,
    )
}

/// A fault's status as a real one; informational codes cannot end a request.
fn fault_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status)
        .ok()
        .filter(|s| !s.is_informational())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn with_retry_after(mut response: Response, retry_after: Option<u64>) -> Response {
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Lets a handler close its own TCP connection: once killed, every read and
/// write on the socket fails, so hyper drops it without writing a response.
#[derive(Default)]
struct KillSwitch {
    killed: AtomicBool,
    reader: AtomicWaker,
}

impl KillSwitch {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        // Wake hyper's pending read so it notices now, not at the next write.
        self.reader.wake();
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

fn killed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "scripted fault: connection dropped",
    )
}

struct KillableStream {
    inner: TcpStream,
    switch: Arc<KillSwitch>,
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.switch.reader.register(cx.waker());
        if this.switch.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.switch.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.switch.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.switch.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

struct KillableListener(TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                    let io = KillableStream {
                        inner: stream,
                        switch: Arc::default(),
                    };
                    return (io, addr);
                }
                Err(e) => {
                    // Usually a client that gave up, or fd exhaustion: back
                    // off briefly instead of spinning.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Per-connection handle given to handlers through `ConnectInfo`.
#[derive(Clone)]
struct ConnHandle(Arc<KillSwitch>);

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        Self(Arc::clone(&stream.io().switch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rebuild_the_text() {
        for text in ["", "one", "  lead and trail  ", "a\nb\n\nc", "ünï cödé  ok"] {
            assert_eq!(word_pieces(text).concat(), text);
        }
        assert_eq!(word_pieces("a b  c"), vec!["a ", "b  ", "c"]);
    }

    #[test]
    fn max_tokens_cuts_with_length() {
        assert_eq!(limit_tokens("a b c", Some(2)), ("a b".to_owned(), "length"));
        assert_eq!(limit_tokens("a b c", Some(3)), ("a b c".to_owned(), "stop"));
        assert_eq!(limit_tokens("a b c", None), ("a b c".to_owned(), "stop"));
    }
}
