//! `ops_router`: what a worker-only node serves — health, readiness and
//! metrics, and nothing of the API.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use peedy_callbacks::{CallbackConfig, Deliverer};
use peedy_queue::{Queue, QueueConfig};
use peedy_store::Store;
use peedy_watermarker::{Config, Watermarker};
use peedy_web::{AppState, WebConfig, ops_router};
use tower::ServiceExt;

async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
    let res = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = res.status();
    let body = to_bytes(res.into_body(), 1 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_router_serves_health_readiness_and_metrics_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(None, dir.path()).await.expect("store");
    let queue = Queue::new(store.clone(), "test-node".into(), QueueConfig::default());
    let deliverer = Deliverer::new(CallbackConfig::default()).expect("deliverer");
    let watermarker = Watermarker::new(store, queue, deliverer, Config::default());
    let router = ops_router(AppState {
        watermarker,
        config: Arc::new(WebConfig::default()),
    });

    assert_eq!(
        get(&router, "/healthcheck").await,
        (StatusCode::OK, "OK".into())
    );
    let (status, body) = get(&router, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, metrics) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    for line in [
        "peedy_documents{state=\"queued\"} 0",
        "peedy_queue_jobs{queue=\"stamp\",state=\"queued\"} 0",
        "peedy_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1",
    ] {
        assert!(metrics.contains(line), "{line:?} missing from\n{metrics}");
    }
    assert!(metrics.ends_with("# EOF\n"));
    for path in ["/api/v1/documents/x/status", "/api/v1/openapi.json", "/"] {
        let (status, body) = get(&router, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(body.contains("No such route"), "{path}: {body}");
    }
}
