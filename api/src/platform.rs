//! Starting and stopping the platform: open the database, serve HTTP, apply
//! migrations, then run the parts that need them.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use sp_eventstore::{Database, DbOptions, redact};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::{Cli, Command, Settings};
use crate::http::{self, AppState};

/// Run one subcommand to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve(args) => {
            let settings = Settings::load(&cli.global, Some(args))?;
            init_tracing(&settings.log);
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            let listener = TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.listen))?;
            serve(listener, settings, shutdown).await
        }
        Command::Migrate => {
            let settings = Settings::load(&cli.global, None)?;
            init_tracing(&settings.log);
            let db = open(&settings).await?;
            db.migrate().await.context("migration failed")?;
            println!("migrations applied to {}", redact(&settings.database_url));
            db.close().await;
            Ok(())
        }
    }
}

async fn open(settings: &Settings) -> anyhow::Result<Database> {
    Database::open(&settings.database_url, &DbOptions::default())
        .await
        .with_context(|| format!("cannot open database {}", redact(&settings.database_url)))
}

/// Serve on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let db = open(&settings).await?;
    let address: SocketAddr = listener.local_addr()?;
    tracing::info!(
        "listening on http://{address} (database: {} {})",
        db.backend(),
        redact(&settings.database_url)
    );
    let state = AppState::new(db.clone());
    let stop = shutdown.clone();
    let server = tokio::spawn(http::serve(listener, state, async move {
        stop.cancelled().await
    }));

    // HTTP answers first, so /readyz can say why the platform is not ready
    // while the database is unreachable.
    if migrate_until_done(&db, &shutdown).await {
        tracing::info!("database migrated; the platform is ready");
    }
    finish(server, db).await
}

async fn finish(
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    db: Database,
) -> anyhow::Result<()> {
    server.await.context("the HTTP server task")??;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Apply migrations, retrying with backoff while the database is down.
/// Returns false when shut down first.
async fn migrate_until_done(db: &Database, shutdown: &CancellationToken) -> bool {
    let mut delay = Duration::from_millis(250);
    loop {
        match db.migrate().await {
            Ok(()) => return true,
            Err(error) => {
                tracing::error!(%error, retry_in = ?delay, "cannot migrate the database");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

fn init_tracing(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Cancel on SIGINT or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
    token.cancel();
}
