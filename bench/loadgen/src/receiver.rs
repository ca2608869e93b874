//! The callback receiver: `POST /hook`, multipart with the parts `file` (the
//! stamped PDF) and `id`, as Peedy sends them. The body is streamed through
//! multer: the PDF's chunks are dropped as they come (one copy, into multer's
//! buffer), the `id` is kept, and the arrival time is taken once the whole
//! body has been read, before answering 200.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Tx = mpsc::UnboundedSender<(String, Instant)>;

/// Starts the receiver on an ephemeral loopback port; returns the callback
/// URL and the arrivals it reports.
pub async fn start() -> Result<(String, Arrivals)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the callback receiver")?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route("/hook", post(hook)).with_state(tx);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("peedy-loadgen: callback receiver: {e}");
        }
    });
    Ok((
        format!("http://{addr}/hook"),
        Arrivals {
            rx,
            seen: HashMap::new(),
        },
    ))
}

async fn hook(State(tx): State<Tx>, headers: HeaderMap, body: Body) -> (StatusCode, &'static str) {
    match read_id(&headers, body).await {
        Ok(id) => {
            let now = Instant::now();
            // The receiving end lives as long as the run; if it is gone the
            // run is over and nobody is counting.
            let _ = tx.send((id, now));
            (StatusCode::OK, "OK")
        }
        Err(e) => {
            // Said once: Peedy retries, and each retry would fail the same way.
            static SAID: AtomicBool = AtomicBool::new(false);
            if !SAID.swap(true, Ordering::Relaxed) {
                eprintln!("peedy-loadgen: a callback could not be read: {e:#}");
            }
            (StatusCode::BAD_REQUEST, "bad callback")
        }
    }
}

/// Streams the multipart body to its end; returns the `id` part.
async fn read_id(headers: &HeaderMap, body: Body) -> Result<String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .context("no content type")?;
    let boundary = multer::parse_boundary(content_type).context("not multipart/form-data")?;
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut id = None;
    while let Some(mut field) = multipart.next_field().await? {
        if field.name() == Some("id") {
            id = Some(field.text().await?);
        } else {
            while field.chunk().await?.is_some() {}
        }
    }
    id.filter(|id| !id.is_empty()).context("no `id` part")
}

/// The callbacks received so far, by document id (the first arrival counts).
pub struct Arrivals {
    rx: mpsc::UnboundedReceiver<(String, Instant)>,
    seen: HashMap<String, Instant>,
}

impl Arrivals {
    pub fn has(&self, id: &str) -> bool {
        self.seen.contains_key(id)
    }

    pub fn get(&self, id: &str) -> Option<Instant> {
        self.seen.get(id).copied()
    }

    /// The next document whose first callback arrives; `None` if the
    /// receiver stopped.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            let (id, at) = self.rx.recv().await?;
            if let Entry::Vacant(e) = self.seen.entry(id) {
                let id = e.key().clone();
                e.insert(at);
                return Some(id);
            }
        }
    }

    /// When `id`'s callback arrived, waiting for it until `deadline`.
    pub async fn wait_for(&mut self, id: &str, deadline: Instant) -> Option<Instant> {
        let deadline = tokio::time::Instant::from_std(deadline);
        loop {
            if let Some(at) = self.get(id) {
                return Some(at);
            }
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }
}
