//! The wiring of `serve`: open the database, listen, apply migrations, then
//! start the read models, the process managers (under the lease) and the
//! HTTP API, and stop them all when told to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use backon::{ExponentialBuilder, Retryable};
use sp_commands::{Catalogues, Clock, Intake, Operator, SystemClock};

use sp_eventstore::lease::{self, Role};
use sp_eventstore::{Database, redact};
use sp_gcp::GcpProvider;
use sp_managers::local::{LocalConfig, LocalProvider};
use sp_managers::{Lead, Managers, RunnerKeys, VmProvider};
use sp_projections::Projector;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::graphql::{self, Services};
use crate::http::{self, AppState};
use crate::people::People;

/// Runs kept folded for the runner endpoint: more than run at once.
const RUNS_KEPT_FOLDED: usize = 1024;

/// Serve on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let intake_config = settings.intake().context("invalid platforms")?;
    // A catalogue file that does not load is a wrong setting: said before
    // anything starts, not logged under a platform that runs without it.
    let catalogue_file = match settings.catalogue.clone() {
        Some(path) => {
            let file = sp_commands::catalogue_file::load(&path)
                .map_err(|e| anyhow::anyhow!("the catalogue file {}: {e}", path.display()))?;
            Some((path, file))
        }
        None => None,
    };
    let db = settings.open().await?;
    let address: SocketAddr = listener.local_addr()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let clock_for_api = clock.clone();
    let files =
        sp_files::Files::open(&settings.object_store).map_err(|e| anyhow::anyhow!("{e}"))?;
    let catalogues = Catalogues::new(db.store.clone(), settings.policy.clone(), clock.clone())
        .four_eyes(settings.four_eyes_baselines);
    let platforms = intake_config.platforms.clone();
    let intake = Intake::new(
        db.store.clone(),
        settings.policy.clone(),
        clock.clone(),
        intake_config,
        catalogues.clone(),
    );
    let operator = Operator::new(
        db.store.clone(),
        settings.policy.clone(),
        clock,
        platforms,
        catalogues.clone(),
    );
    let (changes, _) = broadcast::channel(1024);
    let metrics = sp_managers::Metrics::new();
    let managers_config = settings
        .managers(address, &files, &metrics)
        .map_err(|e| anyhow::anyhow!("invalid settings: {e}"))?;
    let oauth = settings
        .github_oauth(&managers_config.public_url)
        .map_err(|e| anyhow::anyhow!("invalid settings: {e}"))?;
    let people = People::new(db.clone(), settings.admins.clone(), settings.session_hours);
    let provider = vm_provider(&settings).await?;
    let health = sp_managers::Health::default();
    health.set_role(if settings.managers {
        "starting"
    } else {
        "disabled"
    });
    let projector = Arc::new(Projector::new(
        sp_projections::standard(),
        db.clone(),
        changes.clone(),
    ));
    let schema = graphql::schema(Arc::new(Services {
        db: db.clone(),
        operator,
        catalogues: catalogues.clone(),
        files: files.clone(),
        changes: changes.clone(),
        people: people.clone(),
        github: oauth.clone(),
        repositories: settings.repositories.clone(),
        contributor_limits: settings.contributors,
        platforms: settings.platforms.clone(),
        anonymous_read: settings.anonymous_read,
        max_sample_bytes: settings.max_sample_bytes,
        capacity: managers_config.capacity.clone(),
        default_capacity: managers_config.default_capacity,
    }));
    if settings.github_webhook_secret.is_none() {
        tracing::warn!(
            "no GitHub webhook secret is configured (SP_GITHUB_WEBHOOK_SECRET): every delivery will be refused with 503"
        );
    }
    if settings.catalogue.is_some() {
        health.failing(CATALOGUE_FILE, "not imported yet");
    }
    let state = Arc::new(AppState {
        db: db.clone(),
        intake,
        webhook_secret: settings.github_webhook_secret.clone(),
        schema,
        projections: projector.statuses(),
        managers: health.clone(),
        runs: sp_commands::Handler::new(db.store.clone(), settings.policy.clone(), clock_for_api)
            .keeping_folds(RUNS_KEPT_FOLDED),
        runner: http::RunnerSettings {
            public_url: managers_config.public_url.clone(),
            max_log_bytes: settings.max_log_bytes,
            per_test_timeout_secs: settings.per_test_timeout_secs,
            max_captured_bytes: settings.max_captured_output_bytes,
            udp_datagrams_per_second: settings.udp_datagrams_per_second,
            heartbeat_secs: (settings.policy.deadlines.heartbeat.num_seconds() / 3).max(1) as u64,
            executables: settings.artifact_executables.clone(),
        },
        catalogues: catalogues.clone(),
        files: files.clone(),
        max_sample_bytes: settings.max_sample_bytes,
        anonymous_read: settings.anonymous_read,
        metrics: metrics.clone(),
        platforms: settings.platforms.clone(),
        vm_provider: settings.vm_provider.clone(),
        people,
        oauth,
        secure_cookies: managers_config.public_url.starts_with("https://"),
    });
    tokio::spawn(keep_up(metrics, shutdown.clone()));

    tracing::info!(
        "listening on http://{address} (database: {} {})",
        db.backend(),
        redact(&settings.database_url)
    );
    let stop = shutdown.clone();
    let runs = state.runs.clone();
    let server = tokio::spawn(http::serve(listener, state, async move {
        stop.cancelled().await
    }));

    // HTTP answers first, so /readyz can say why the platform is not ready
    // while the database is unreachable.
    if migrate_until_done(&db, &shutdown).await {
        if let Some((path, file)) = catalogue_file {
            // Not ready until runs can snapshot the seeded catalogue; a file
            // the catalogue refuses stops the platform, saying why.
            if let Err(error) = seed_catalogue(&catalogues, &files, &path, &file).await {
                shutdown.cancel();
                let _ = server.await;
                db.close().await;
                return Err(error.context(format!(
                    "the catalogue file {} was not imported",
                    path.display()
                )));
            }
            health.ok(CATALOGUE_FILE);
        }
        tracing::info!("database migrated; the platform is ready");
        tokio::spawn(project(db.clone(), projector, shutdown.clone()));
        if settings.managers {
            tokio::spawn(lead_managers(
                db.clone(),
                provider,
                managers_config,
                changes,
                health,
                runs,
                shutdown.clone(),
            ));
        }
    }
    server.await.context("the HTTP server task")??;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Readiness names the seeding of the catalogue by this.
const CATALOGUE_FILE: &str = "catalogue-file";

/// Import the configured catalogue file into an empty catalogue. A catalogue
/// that has samples or tests already is the platform's own; the file is not
/// imported over it (that is `sample-platform catalogue import`).
async fn seed_catalogue(
    catalogues: &Catalogues,
    files: &sp_files::Files,
    path: &std::path::Path,
    file: &sp_commands::catalogue_file::CatalogueFile,
) -> anyhow::Result<()> {
    let current = catalogues.current().await?;
    if !current.state.samples.is_empty() || !current.state.tests.is_empty() {
        tracing::info!(
            tests = current.state.tests.len(),
            "the catalogue has content; the catalogue file is not imported over it"
        );
        return Ok(());
    }
    let summary = catalogues
        .import(files, file, "system:catalogue-file")
        .await?;
    tracing::info!(
        samples = summary.samples_added,
        tests = summary.tests_defined,
        catalogue = %path.display(),
        "catalogue file imported"
    );
    Ok(())
}

/// The VM provider the settings name.
async fn vm_provider(settings: &Settings) -> anyhow::Result<Arc<dyn VmProvider>> {
    match settings.vm_provider.as_str() {
        "local" => Ok(Arc::new(LocalProvider::new(LocalConfig {
            state_dir: settings.local_vm_dir.clone(),
            command: vec!["sh".into(), "-c".into(), local_vm_command(settings)?],
            create_delay: Duration::from_millis(settings.local_vm_create_delay_ms),
        }))),
        "gcp" => {
            if settings.gcp.project.is_empty() {
                bail!("vm_provider = \"gcp\" needs [gcp] project");
            }
            let provider = GcpProvider::new(settings.gcp.clone())
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            Ok(Arc::new(provider))
        }
        other => bail!("unknown vm_provider {other:?}: use local or gcp"),
    }
}

/// What a local VM runs: the configured command, or this binary's runner.
fn local_vm_command(settings: &Settings) -> anyhow::Result<String> {
    if !settings.local_vm_command.trim().is_empty() {
        return Ok(settings.local_vm_command.clone());
    }
    let me = std::env::current_exe().context("cannot find this program to run it as the runner")?;
    Ok(format!(
        "exec '{}' runner",
        me.display().to_string().replace('\'', "'\\''")
    ))
}

/// The metrics' upkeep: histogram samples are folded in every few seconds,
/// scraped or not.
async fn keep_up(metrics: sp_managers::Metrics, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => metrics.upkeep(),
        }
    }
}

/// Run the process managers whenever this instance holds the lease; stand
/// by while another does.
async fn lead_managers(
    db: Database,
    provider: Arc<dyn VmProvider>,
    config: sp_managers::ManagersConfig,
    changes: broadcast::Sender<sp_projections::Change>,
    health: sp_managers::Health,
    runs: sp_commands::Handler<sp_domain::RunState>,
    shutdown: CancellationToken,
) {
    let holder = format!("{}:{}", hostname(), std::process::id());
    let load_keys = (|| RunnerKeys::load_or_create(&db))
        .retry(until_shutdown())
        .sleep(tokio::time::sleep)
        .notify(|error, _| {
            health.failing(
                "managers",
                format!("cannot load the runner credential key: {error}"),
            );
        });
    let keys = tokio::select! {
        () = shutdown.cancelled() => return,
        keys = load_keys => match keys {
            Ok(keys) => keys,
            // The schedule has no end: only shutdown stops it.
            Err(_) => return,
        },
    };
    health.ok("managers");
    loop {
        health.set_role("standby");
        let Some(leadership) = lease::acquire(&db, Role::Managers, &holder, &shutdown).await else {
            return;
        };
        health.set_role(format!("leader #{}", leadership.token()));
        let managers = Managers::new(
            db.clone(),
            provider.clone(),
            config.clone(),
            changes.clone(),
            Arc::new(SystemClock),
            Lead {
                fence: leadership.fence.clone(),
                health: health.clone(),
                keys: keys.clone(),
            },
        )
        // The runs the runner endpoint keeps folded: a run's manager does not
        // read again what its reports recorded.
        .sharing_folds_with(&runs);
        let stop = shutdown.child_token();
        let tasks = managers.spawn_all(&stop);
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = leadership.lost.cancelled() => {
                tracing::error!("lost the managers' lease; stopping them until it is taken again");
            }
        }
        stop.cancel();
        leadership.lost.cancel();
        for task in tasks {
            let _ = task.await;
        }
        if shutdown.is_cancelled() {
            return;
        }
    }
}

/// The read models: one replica applies the log to them (it holds the
/// projections' lease), the others follow it and publish its changes to
/// their own subscribers and managers. On SQLite the one process applies.
async fn project(db: Database, projector: Arc<Projector>, shutdown: CancellationToken) {
    let holder = format!("{}:{}", hostname(), std::process::id());
    loop {
        let stop_following = shutdown.child_token();
        let following = tokio::spawn({
            let (projector, stop) = (projector.clone(), stop_following.clone());
            async move { projector.follow(stop).await }
        });
        let leadership = lease::acquire(&db, Role::Projections, &holder, &shutdown).await;
        stop_following.cancel();
        let _ = following.await;
        let Some(leadership) = leadership else {
            return;
        };
        let stop = shutdown.child_token();
        let applying = tokio::spawn({
            let (projector, stop) = (projector.clone(), stop.clone());
            async move { projector.run(stop).await }
        });
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = leadership.lost.cancelled() => {
                tracing::error!("lost the projections' lease; following whoever takes it");
            }
        }
        stop.cancel();
        leadership.lost.cancel();
        let _ = applying.await;
        if shutdown.is_cancelled() {
            return;
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Apply migrations, retrying with backoff while the database is down.
/// Returns false when shut down first.
async fn migrate_until_done(db: &Database, shutdown: &CancellationToken) -> bool {
    let migrate = (|| db.migrate())
        .retry(until_shutdown())
        .sleep(tokio::time::sleep)
        .notify(|error, retry_in| {
            tracing::error!(%error, ?retry_in, "cannot migrate the database");
        });
    tokio::select! {
        () = shutdown.cancelled() => false,
        done = migrate => done.is_ok(),
    }
}

/// Pauses for work that is retried as long as the platform runs: from a
/// quarter of a second, doubling, up to 30 s.
fn until_shutdown() -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
}
