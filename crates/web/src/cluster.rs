//! `GET /api/v1/cluster`: the live nodes, what each is running, and the
//! depth of each queue (see `peedy_cluster::view`).

use axum::Json;
use axum::extract::State;
use peedy_cluster::ClusterView;

use crate::{ApiError, AppState};

/// The cluster as the shared database sees it.
pub async fn cluster(State(state): State<AppState>) -> Result<Json<ClusterView>, ApiError> {
    Ok(Json(peedy_cluster::view(state.watermarker.store()).await?))
}
