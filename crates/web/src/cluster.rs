//! `GET /api/v1/cluster`: the live nodes, what each is running, and the
//! depth of each queue (see `peedy_cluster::view`).

use axum::Json;
use axum::extract::State;
use peedy_cluster::ClusterView;

use crate::{ApiError, AppState};

/// The cluster as the shared database sees it.
#[utoipa::path(
    get,
    path = "/cluster",
    tag = "operations",
    summary = "The nodes sharing this database and the queues",
    description = "`{\"nodes\": [{id, host, roles, version, listen, started_at, last_seen, last_seen_ms_ago, running: [{queue, job_id, document_id, attempt, running_ms}]}], \"queues\": {name: {queued, running, running_on_dead_nodes, failed, oldest_queued_ms}}}`: live nodes (a node missing three heartbeats drops off), the jobs each holds, and each queue's depth.",
    responses(
        (status = 200, description = "The cluster view", content_type = "application/json", body = Object),
        (status = 503, description = "The database is unavailable", body = crate::openapi::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn cluster(State(state): State<AppState>) -> Result<Json<ClusterView>, ApiError> {
    Ok(Json(peedy_cluster::view(state.watermarker.store()).await?))
}
