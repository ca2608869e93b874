//! `peedy serve`: wiring only. Opens the store, builds the queue, the
//! callback deliverer and the pipeline, starts the workers, the retention
//! sweeper and the HTTP server, and shuts them down in order on SIGTERM or
//! Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use peedy_callbacks::{BreakerConfig, CallbackConfig, Deliverer};
use peedy_cluster::{Node, Role};
use peedy_queue::{Queue, QueueConfig, run_workers};
use peedy_store::{BlobBackend, Store};
use peedy_watermarker::{CALLBACK_QUEUE, Config, STAMP_QUEUE, Watermarker};
use peedy_web::{ApiTokens, AppState, WebConfig};
use tokio_util::sync::CancellationToken;

use crate::UsageError;
use crate::cli::ServeArgs;
use crate::stamp_cmd::Summary;

fn secs(what: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| UsageError(format!("{what} must be a non-negative number of seconds")).into())
}

/// Runs the service until SIGTERM/Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<Summary> {
    tune_allocator();
    init_logging(&args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(serve(args));
    // Jobs still in the engine after the grace period were handed back to
    // the queue; don't wait for their blocking threads to finish.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result?;
    Ok(Summary {
        stamped: 0,
        failed: 0,
    })
}

/// Keeps the server's memory flat under sustained load: jemalloc (the
/// global allocator, see `main.rs`) is told to hand freed memory back to the
/// system after a second (`dirty_decay_ms`, default 10 s) on its own thread
/// (`background_thread`), so what a burst of large PDFs took is returned
/// between bursts — resident size after each soak round 30–40 MB, peak
/// 74 MB (BENCHMARKS.md). jemalloc reads these options from `_RJEM_MALLOC_CONF` at
/// start; setting them from inside would take unsafe code (which the
/// workspace forbids), so the process replaces itself once — same pid, same
/// arguments — with that variable set. An operator's own setting wins.
fn tune_allocator() {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        const VAR: &str = "_RJEM_MALLOC_CONF";
        if std::env::var_os(VAR).is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        // One arena per core instead of jemalloc's four: on the soak, peak
        // resident 133 -> 74 MB at the same speed (threads keep their own
        // caches in front of the arenas).
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let conf =
            format!("background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:{cores}");
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(VAR, conf)
            .exec();
        // `exec` only returns when it failed: carry on as we are.
        eprintln!("peedy: could not tune the allocator ({err}); continuing");
    }
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PEEDY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // First, so a bad token setting stops the server before it opens anything.
    let api_tokens = api_tokens(&args)?;
    let queue_config = QueueConfig {
        lease: secs("--lease-secs", args.lease_secs)?.max(Duration::from_secs(1)),
        poll_interval: Duration::from_secs(1),
        backoff_base: secs("--retry-base-secs", args.retry_base_secs)?,
        backoff_max: secs("--retry-max-secs", args.retry_max_secs)?,
    };
    let callback_config = CallbackConfig {
        timeout: secs("--callback-timeout-secs", args.callback_timeout_secs)?,
        secret: args.callback_secret.clone(),
        allow_private: args.allow_private_callbacks,
        // A server on loopback is someone trying Peedy out: let it call
        // itself (the README's dev/null walkthrough).
        allow_loopback: args.allow_private_callbacks || args.listen.ip().is_loopback(),
        breaker: BreakerConfig {
            failures: args.breaker_failures,
            window: secs("--breaker-window-secs", args.breaker_window_secs)?,
            open_for: secs("--breaker-open-secs", args.breaker_open_secs)?,
        },
        ..CallbackConfig::default()
    };
    let grace = secs("--shutdown-grace-secs", args.shutdown_grace_secs)?;
    let stamp_concurrency = args
        .stamp_concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);

    let roles: Vec<Role> = args.roles.iter().filter_map(|r| Role::parse(r)).collect();
    if roles.is_empty() {
        return Err(UsageError("--roles needs web, worker, or both".into()).into());
    }
    let heartbeat = secs("--heartbeat-secs", args.heartbeat_secs)?;

    let data_dir = &args.db.data_dir;
    let url = args.db.database_url.as_deref();
    let blob_backend = args
        .blob_store
        .map_or_else(|| BlobBackend::default_for(url), BlobBackend::from);
    let store = match Store::open_with(url, data_dir, blob_backend).await {
        Err(e @ peedy_store::Error::DatabaseBlobsNeedPostgres) => {
            return Err(UsageError(format!("--blob-store database: {e}")).into());
        }
        opened => opened
            .with_context(|| format!("opening the store in {}", data_dir.display()))?
            // Only a node that stamps and delivers reads what uploads hold.
            .with_blob_memory(if roles.contains(&Role::Worker) {
                args.blob_memory.0
            } else {
                0
            }),
    };
    if roles.len() == 1 && !store.db().is_postgres() {
        tracing::warn!(
            roles = ?args.roles,
            "a single role on a database of its own: the other role must run on the same \
             SQLite file (same machine) or nothing picks up the work; use --database-url \
             postgres://… for separate services"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    let node = Node::new(
        store.clone(),
        &hostname(),
        &roles,
        env!("CARGO_PKG_VERSION"),
        Some(addr.to_string()),
        heartbeat,
    );
    // Registered before serving, so the view shows it as soon as it answers.
    if let Err(error) = node.beat().await {
        tracing::warn!(%error, "could not register this node in the cluster view yet");
    }
    let node_id = node.id().to_owned();
    let queue = Queue::new(store.clone(), node_id.clone(), queue_config);
    let deliverer = Deliverer::new(callback_config).context("setting up callback delivery")?;
    let config = Config {
        stamp_max_attempts: args.stamp_attempts.max(1),
        callback_max_attempts: args.callback_attempts.max(1),
        retention: args.retention,
        limits: args.limits.to_limits(),
    };
    let watermarker = Watermarker::new(store, queue.clone(), deliverer, config);
    let state = AppState {
        watermarker: Arc::clone(&watermarker),
        config: Arc::new(WebConfig {
            max_upload_bytes: args.max_upload_bytes.0,
            max_files: args.max_files.max(1),
            max_queued: args.max_queued,
            max_sync_bytes: args.max_sync_bytes.0,
            api_tokens,
        }),
    };

    let shutdown = CancellationToken::new();
    let workers = tokio_util::task::TaskTracker::new();
    if roles.contains(&Role::Worker) {
        workers.spawn(run_workers(
            queue.clone(),
            STAMP_QUEUE,
            stamp_concurrency,
            watermarker.stamp_handler(),
            shutdown.child_token(),
            grace,
        ));
        workers.spawn(run_workers(
            queue.clone(),
            CALLBACK_QUEUE,
            args.callback_concurrency.max(1),
            watermarker.callback_handler(),
            shutdown.child_token(),
            grace,
        ));
        workers.spawn(sweep(Arc::clone(&watermarker), shutdown.child_token()));
    }
    workers.spawn(node.run(shutdown.child_token()));
    workers.close();

    tokio::spawn(signal_shutdown(shutdown.clone()));
    // Printed on stdout for scripts and tests that start on port 0.
    println!("peedy listening on http://{addr}");
    tracing::info!(%addr, node = %node_id, roles = %args.roles.join(","), data_dir = %data_dir.display(), blobs = %blob_backend, stamp_concurrency, "peedy serving");

    let server_stop = shutdown.clone();
    let app = if roles.contains(&Role::Web) {
        peedy_web::router(state)
    } else {
        peedy_web::ops_router(state)
    };
    peedy_web::serve_router(listener, app, async move { server_stop.cancelled().await })
        .await
        .context("serving HTTP")?;
    shutdown.cancel();
    workers.wait().await;
    // Last, with nothing left to run: on SQLite this checkpoints the WAL
    // into the database file, which leaves no -wal/-shm files behind.
    watermarker.store().db().close().await;
    tracing::info!("peedy stopped");
    Ok(())
}

/// The API tokens from `--api-tokens` and `--api-token-file`. Asking for
/// tokens and ending up with none (an empty file, a stray comma) is an error
/// rather than an open API: it fails closed.
fn api_tokens(args: &ServeArgs) -> anyhow::Result<Option<ApiTokens>> {
    let mut tokens: Vec<String> = Vec::new();
    let mut asked = false;
    for t in &args.api_tokens {
        asked = true;
        tokens.push(t.trim().to_owned());
    }
    if let Some(path) = &args.api_token_file {
        asked = true;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--api-token-file {}: cannot read it", path.display()))?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    if let Some(bad) = tokens
        .iter()
        .find(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
    {
        let why = if bad.is_empty() {
            "an empty token"
        } else {
            "a token with spaces or characters other than printable ASCII"
        };
        return Err(UsageError(format!("--api-tokens/--api-token-file: {why}")).into());
    }
    tokens.sort();
    tokens.dedup();
    match ApiTokens::new(&tokens) {
        None if asked => Err(UsageError(
            "--api-tokens/--api-token-file gave no tokens; refusing to serve the API without them"
                .into(),
        )
        .into()),
        found => {
            if let Some(t) = &found {
                tracing::info!(tokens = t.len(), "the /api routes need a bearer token");
            }
            Ok(found)
        }
    }
}

/// The retention sweeper, every minute: expired documents, orphan blobs,
/// failed jobs past the retention time.
async fn sweep(watermarker: Arc<Watermarker>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = watermarker.sweep_expired().await {
            tracing::warn!("retention sweep failed: {e}");
        }
        if let Err(e) = watermarker
            .store()
            .sweep_orphan_blobs(Duration::from_secs(3600))
            .await
        {
            tracing::warn!("orphan blob sweep failed: {e}");
        }
        // Failed jobs stay visible (`/metrics`, `peedy cluster`) for the
        // retention time, then go; a document's own jobs go with it.
        let retention =
            i64::try_from(watermarker.config().retention.as_millis()).unwrap_or(i64::MAX);
        match watermarker
            .queue()
            .purge_failed(peedy_store::now_ms().saturating_sub(retention))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "failed jobs past retention purged"),
            Err(e) => tracing::warn!("purging failed jobs failed: {e}"),
        }
    }
}

async fn signal_shutdown(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: no new work; jobs in flight get the grace period");
    token.cancel();
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}
