//! The operator's HTTP endpoints: liveness, readiness and metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::metrics;
use crate::scheduler::LoopStatus;
use crate::store::Store;

/// A readiness probe must answer before the prober gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

struct AppState<S> {
    store: S,
    status: Arc<LoopStatus>,
    stale_after: Duration,
}

pub(crate) fn router<S: Store>(store: S, status: Arc<LoopStatus>, stale_after: Duration) -> Router {
    let state = Arc::new(AppState {
        store,
        status,
        stale_after,
    });
    Router::new()
        .route("/healthz", get(healthz::<S>))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics_text::<S>))
        .with_state(state)
}

/// Alive means the loop went round recently; a wedged loop should get the
/// process restarted even though it still answers HTTP.
async fn healthz<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    if state.status.ticked_within(state.stale_after) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "scheduler loop is not ticking\n",
        )
            .into_response()
    }
}

/// Ready means the database answers and the schema is current.
async fn readyz<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".to_string()).into_response(),
        Ok(Err(e)) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database did not answer in time\n".to_string(),
        )
            .into_response(),
    }
}

async fn metrics_text<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    let (in_use, idle) = state.store.pool_state();
    metrics::set_db_connections(in_use, idle);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(),
    )
        .into_response()
}
