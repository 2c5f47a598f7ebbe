//! The gateway's routes. Every error is JSON, `{"error": KIND, "reason": DETAIL}`:
//!
//! | status | `error` | when |
//! |--------|---------|------|
//! | 400 | `bad_request` | the body is not the JSON the route takes, or holds more than [`MAX_BATCH`] inputs |
//! | 404 | `not_found`, `not_served` | an unknown path; `/v1/embed` or `/v1/infer` for a model that reads the other kind |
//! | 413 | `too_large` | a body over [`MAX_BODY_LEN`] bytes |
//! | 422 | `refused_by_guest` | the guest refused the one input (its reason: `wrong_value_count`, ...) |
//! | 503 | `attestation_failed`, `guest_unreachable` | nothing was forwarded: the guest's evidence failed the policy (its refusal code), or the guest could not be reached |

use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use inference::InputKind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::metrics::GatewayMetrics;
use super::upstream::{Attestation, Upstream, UpstreamError};
use super::{GatewayConfig, MAX_BATCH, MAX_BODY_LEN};
use crate::tokenizer::SentenceTokenizer;

/// The OpenAPI document of these routes.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// What the handlers share.
pub struct GatewayState {
    upstream: Upstream,
    model: &'static inference::ServedModel,
    tokenizer: Option<SentenceTokenizer>,
    metrics: GatewayMetrics,
}

impl GatewayState {
    /// The state of a gateway configured by `config`.
    pub fn new(config: GatewayConfig) -> GatewayState {
        GatewayState {
            upstream: Upstream::new(config.guest, config.policy, config.reverify, config.timeout),
            model: config.model,
            tokenizer: config.tokenizer,
            metrics: GatewayMetrics::default(),
        }
    }
}

type Shared = Arc<GatewayState>;

/// Every route the router serves, as (method, path): what `client/openapi.json` must describe (tested).
pub const ROUTES: [(&str, &str); 7] = [
    ("POST", "/v1/infer"),
    ("POST", "/v1/embed"),
    ("GET", "/v1/attestation"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

/// The router: [`ROUTES`].
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/infer", post(infer))
        .route("/v1/embed", post(embed))
        .route("/v1/attestation", get(attestation))
        .route("/healthz", get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route: see GET /openapi.json") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .layer(DefaultBodyLimit::max(MAX_BODY_LEN))
        .with_state(state)
}

fn error(status: StatusCode, kind: &str, reason: &str) -> Response {
    (status, axum::Json(json!({ "error": kind, "reason": reason }))).into_response()
}

fn unavailable(state: &GatewayState, e: &UpstreamError) -> Response {
    state.metrics.upstream_failure(e.kind());
    error(StatusCode::SERVICE_UNAVAILABLE, e.kind(), e.detail())
}

/// Counts every request by its route and status; turns the body limit's bare 413 into JSON.
async fn count(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("other", |p| p.as_str()).to_string();
    let started = Instant::now();
    let mut response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response = error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the body is over the gateway's bound");
    }
    state.metrics.request(&route, response.status().as_u16(), started.elapsed());
    response
}

fn attestation_json(attestation: &Attestation) -> Value {
    let verified = &attestation.verified;
    json!({
        "tee": verified.tee.as_str(),
        "measurement": hex::encode(&verified.measurement),
        "host_data": hex::encode(verified.host_data),
        "tcb": verified.tcb,
        "debug": verified.debug,
        "verified_at_unix": attestation.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    })
}

/// Runs `work` on the blocking pool (the guest's client blocks), so the runtime keeps serving.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request's worker failed"))
}

async fn attestation(State(state): State<Shared>) -> Response {
    let worker = state.clone();
    match blocking(move || worker.upstream.attestation()).await {
        Ok(Ok(attestation)) => axum::Json(attestation_json(&attestation)).into_response(),
        Ok(Err(e)) => unavailable(&state, &e),
        Err(response) => response,
    }
}

async fn readyz(State(state): State<Shared>) -> Response {
    let worker = state.clone();
    match blocking(move || worker.upstream.attestation()).await {
        Ok(Ok(attestation)) => {
            axum::Json(json!({ "ready": true, "attestation": attestation_json(&attestation) })).into_response()
        }
        Ok(Err(e)) => unavailable(&state, &e),
        Err(response) => response,
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.render()).into_response()
}

/// `{"values": [...]}` or `{"batch": [[...], ...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InferBody {
    values: Option<Vec<f32>>,
    batch: Option<Vec<Vec<f32>>>,
}

/// `{"texts": ["...", ...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedBody {
    texts: Vec<String>,
}

/// The inputs of a body: one (`single`) or a batch, at most [`MAX_BATCH`].
fn inputs<T>(single: Option<T>, batch: Option<Vec<T>>) -> Result<(Vec<T>, bool), Response> {
    let bad = |reason: &str| error(StatusCode::BAD_REQUEST, "bad_request", reason);
    match (single, batch) {
        (Some(one), None) => Ok((vec![one], true)),
        (None, Some(batch)) if batch.is_empty() => Err(bad("an empty batch")),
        (None, Some(batch)) if batch.len() > MAX_BATCH => Err(bad(&format!("at most {MAX_BATCH} inputs a request"))),
        (None, Some(batch)) => Ok((batch, false)),
        _ => Err(bad("give exactly one of \"values\" and \"batch\"")),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()))
}

/// Each input's outcome (its output, or the guest's reason for refusing it), and the attestation it was served under.
type Served = (Vec<Result<Value, &'static str>>, Attestation);

/// The response to a set of outcomes: a single input's refusal is a 422; a batch reports each input's.
fn outcomes(model: &str, single: bool, items: Vec<Result<Value, &'static str>>, attestation: &Attestation) -> Response {
    if let (true, Some(Err(code))) = (single, items.first()) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "refused_by_guest", code);
    }
    let outputs: Vec<Value> =
        items.into_iter().map(|item| item.unwrap_or_else(|code| json!({ "error": code }))).collect();
    axum::Json(json!({ "model": model, "outputs": outputs, "attestation": attestation_json(attestation) }))
        .into_response()
}

async fn infer(State(state): State<Shared>, body: Bytes) -> Response {
    let model = state.model;
    if !matches!(model.input, InputKind::Values { .. }) {
        return error(StatusCode::NOT_FOUND, "not_served", &format!("model {} reads text: POST /v1/embed", model.name));
    }
    let body: InferBody = match parse(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let (inputs, single) = match inputs(body.values, body.batch) {
        Ok(inputs) => inputs,
        Err(response) => return response,
    };
    let worker = state.clone();
    let result = blocking(move || -> Result<Served, UpstreamError> {
        let mut items = Vec::with_capacity(inputs.len());
        let mut last = None;
        for values in &inputs {
            let (inference, attestation) = worker.upstream.infer(values)?;
            items.push(inference.map(|output| labelled(model, &output)).map_err(|code| code.as_str()));
            last = Some(attestation);
        }
        Ok((items, last.expect("at least one input")))
    })
    .await;
    match result {
        Ok(Ok((items, attestation))) => outcomes(model.name, single, items, &attestation),
        Ok(Err(e)) => unavailable(&state, &e),
        Err(response) => response,
    }
}

/// An output with its best label, when the model's outputs are labelled.
fn labelled(model: &inference::ServedModel, output: &[f32]) -> Value {
    let best = (0..output.len()).max_by(|&a, &b| output[a].total_cmp(&output[b]));
    match best.and_then(|i| model.output_labels.get(i)) {
        Some(label) => json!({ "label": label, "values": output, "labels": model.output_labels }),
        None => json!({ "values": output }),
    }
}

async fn embed(State(state): State<Shared>, body: Bytes) -> Response {
    let model = state.model;
    if state.tokenizer.is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "not_served",
            &format!("model {} reads values: POST /v1/infer", model.name),
        );
    }
    let body: EmbedBody = match parse(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let (texts, _) = match inputs(None, Some(body.texts)) {
        Ok(inputs) => inputs,
        Err(response) => return response,
    };
    let worker = state.clone();
    let result = blocking(move || -> Result<Result<Served, String>, UpstreamError> {
        let tokenizer = worker.tokenizer.as_ref().expect("checked above");
        let mut items = Vec::with_capacity(texts.len());
        let mut last = None;
        for text in &texts {
            let tokens = match tokenizer.encode(text) {
                Ok(tokens) => tokens,
                Err(e) => return Ok(Err(format!("{e:#}"))),
            };
            let (inference, attestation) = worker.upstream.embed(&tokens.ids)?;
            items.push(
                inference
                    .map(|e| json!({ "tokens": tokens.ids.len(), "truncated": tokens.truncated, "embedding": *e }))
                    .map_err(|code| code.as_str()),
            );
            last = Some(attestation);
        }
        Ok(Ok((items, last.expect("at least one text"))))
    })
    .await;
    match result {
        Ok(Ok(Ok((items, attestation)))) => outcomes(model.name, false, items, &attestation),
        Ok(Ok(Err(reason))) => error(StatusCode::BAD_REQUEST, "bad_request", &reason),
        Ok(Err(e)) => unavailable(&state, &e),
        Err(response) => response,
    }
}
