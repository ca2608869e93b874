//! `GET /metrics` (Prometheus, OpenMetrics text) and the middleware that
//! counts HTTP requests by matched route and status.
//!
//! Counters and histograms live in `peedy_metrics` and are updated where
//! the work happens; what lives in the database — documents by state, jobs
//! by queue and state, the age of the oldest available job — is read here
//! at scrape time with two grouped queries, as are the callback breakers.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use peedy_callbacks::BreakerState;
use peedy_store::{DbRow, DocStatus, now_ms, on_db};
use peedy_watermarker::{CALLBACK_QUEUE, STAMP_QUEUE};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

use crate::{ApiError, AppState};

/// The `route` label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counts every request by method, matched route template and status, and
/// observes how long the answer took (until its headers).
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    // Methods outside the standard set would each make a series.
    let method = match *req.method() {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS
        | Method::PATCH
        | Method::TRACE
        | Method::CONNECT => req.method().as_str().to_owned(),
        _ => "OTHER".to_owned(),
    };
    let started = Instant::now();
    let res = next.run(req).await;
    peedy_metrics::http_request(&method, &route, res.status().as_u16(), started.elapsed());
    res
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueStateLabels {
    queue: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    host: String,
    state: String,
}

/// `GET /metrics`: every Peedy metric in the OpenMetrics text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Counters and histograms of this process (HTTP requests by route and status, stamping time and pages, callback attempts by outcome, rescued jobs) and gauges read from the database at scrape time (documents by state, jobs by queue and state, age of the oldest available job, callback breakers).",
    responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        (status = 503, description = "The database does not answer (`database_unavailable`)", body = crate::openapi::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let scrape = scrape(&state).await?;
    let mut out = String::with_capacity(8192);
    peedy_metrics::encode(&mut out)
        .and_then(|()| encode_registry(&mut out, &scrape))
        .and_then(|()| encode_eof(&mut out))
        .map_err(ApiError::internal)?;
    let mut res = out.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(res)
}

/// The gauges read at scrape time, in a registry of their own.
async fn scrape(state: &AppState) -> Result<Registry, ApiError> {
    let store = state.watermarker.store();
    let now = now_ms();
    let documents = store.count_by_status().await?;
    let jobs = on_db!(store.db(), pool => {
        sqlx::query(
            "SELECT queue, state, COUNT(*) AS n,
                    MIN(CASE WHEN state = 'queued' AND run_at <= $1 THEN run_at END) AS oldest
             FROM jobs GROUP BY queue, state",
        )
        .bind(now)
        .fetch_all(pool)
        .await
        .map_err(peedy_store::Error::from)?
        .iter()
        .map(|row| {
            Ok((
                row.string("queue")?,
                row.string("state")?,
                row.i64("n")?,
                row.opt_i64("oldest")?,
            ))
        })
        .collect::<sqlx::Result<Vec<_>>>()
        .map_err(peedy_store::Error::from)?
    });

    let mut registry = Registry::with_prefix(peedy_metrics::PREFIX);
    let docs = Family::<StateLabels, Gauge>::default();
    registry.register(
        "documents",
        "Documents by state (queued, running, done, failed)",
        docs.clone(),
    );
    for status in DocStatus::ALL {
        let _ = docs.get_or_create(&StateLabels {
            state: status.as_str().into(),
        });
    }
    for (status, n) in documents {
        docs.get_or_create(&StateLabels {
            state: status.as_str().into(),
        })
        .set(n);
    }

    let depth = Family::<QueueStateLabels, Gauge>::default();
    registry.register(
        "queue_jobs",
        "Jobs by queue and state (queued includes jobs in backoff; running includes expired leases awaiting rescue)",
        depth.clone(),
    );
    let oldest = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
    registry.register_with_unit(
        "queue_oldest_available_job_age",
        "How long the oldest claimable job of each queue has been claimable (0 when none waits)",
        Unit::Seconds,
        oldest.clone(),
    );
    for queue in [STAMP_QUEUE, CALLBACK_QUEUE] {
        for s in ["queued", "running", "failed"] {
            let _ = depth.get_or_create(&QueueStateLabels {
                queue: queue.into(),
                state: s.into(),
            });
        }
        let _ = oldest.get_or_create(&QueueLabels {
            queue: queue.into(),
        });
    }
    for (queue, s, n, since) in jobs {
        depth
            .get_or_create(&QueueStateLabels {
                queue: queue.clone(),
                state: s,
            })
            .set(n);
        if let Some(since) = since {
            let age = Duration::from_millis(u64::try_from(now - since).unwrap_or(0));
            oldest
                .get_or_create(&QueueLabels { queue })
                .set(age.as_secs_f64());
        }
    }

    let breakers = Family::<BreakerLabels, Gauge>::default();
    registry.register(
        "callback_breaker",
        "1 for each callback host's breaker state (hosts without recent failures are closed and not listed)",
        breakers.clone(),
    );
    for (host, s) in state.watermarker.deliverer().breaker_states() {
        let s = match s {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half_open",
        };
        breakers
            .get_or_create(&BreakerLabels {
                host,
                state: s.into(),
            })
            .set(1);
    }
    Ok(registry)
}
