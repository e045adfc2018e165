//! The admin server: `/live` (the process serves) and `/ready` (it can
//! reach the API server and runs its controller), for the Deployment's
//! probes. Plain HTTP on its own port, as kubert's admin server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

/// Whether the agent is ready; shared by `main` and the server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    ready: Arc<AtomicBool>,
}

impl Health {
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// Serves the probes on `listener` until the process ends.
pub(crate) async fn serve(listener: tokio::net::TcpListener, health: Health) {
    let router = Router::new()
        .route("/live", get(|| async { "live\n" }))
        .route(
            "/ready",
            get(move || {
                let ready = health.ready.load(Ordering::SeqCst);
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        );
    if let Err(err) = axum::serve(listener, router).await {
        tracing::error!("the admin server stopped: {err}");
    }
}
