//! Starting and stopping the platform: open the database, serve HTTP, apply
//! migrations, then run the parts that need them; and the other subcommands.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use sp_commands::{Catalogues, Clock, Intake, Operator, SystemClock};
use sp_eventstore::{Database, DbOptions, redact};
use sp_gcp::{GcpConfig, GcpProvider};
use sp_managers::local::{LocalConfig, LocalProvider};
use sp_managers::{Lead, Managers, RunnerKeys, VmProvider, lease};
use sp_projections::{Projector, rebuild};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::client::Client;
use crate::config::{
    CatalogueCommand, Cli, Command, ProjectionsCommand, RunsCommand, SamplesCommand, Settings,
    TokensCommand,
};
use crate::graphql::{self, Services};
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
        Command::Demo(args) => {
            let settings = Settings::load(&cli.global, Some(args))?;
            init_tracing(&settings.log);
            let settings = crate::demo::prepare(&crate::demo::directory()?, settings)
                .context("cannot write the demo files")?;
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            let listener = TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.listen))?;
            crate::demo::print_walkthrough(&listener.local_addr()?.to_string());
            serve(listener, settings, shutdown).await
        }
        Command::Runner(args) => {
            init_tracing("info");
            let config = sp_runner::Config {
                cache_dir: args
                    .cache_dir
                    .clone()
                    .unwrap_or_else(|| args.work_dir.join("cache")),
                report_url: args.report_url.clone(),
                token: args.token.clone(),
                work_dir: args.work_dir.clone(),
                exe: args.exe.clone(),
            };
            match sp_runner::run(config).await? {
                sp_runner::Outcome::Finished => Ok(()),
                sp_runner::Outcome::Refused(reason) => {
                    bail!("the platform ended this attempt: {reason}")
                }
            }
        }
        Command::Samples(SamplesCommand::Add {
            client,
            tags,
            files,
        }) => {
            let client = Client::new(client)?;
            let mut failed = 0;
            for file in files {
                if let Err(e) = client.add_sample(file, tags).await {
                    eprintln!("{e:#}");
                    failed += 1;
                }
            }
            if failed > 0 {
                bail!("{failed} of {} samples were not added", files.len());
            }
            Ok(())
        }
        Command::Catalogue(CatalogueCommand::Import { client, file }) => {
            Client::new(client)?.import_catalogue(file).await
        }
        Command::Catalogue(CatalogueCommand::Export { client }) => {
            let data = Client::new(client)?
                .graphql("{ exportCatalogue }", serde_json::json!({}))
                .await?;
            print!("{}", data["exportCatalogue"].as_str().unwrap_or_default());
            Ok(())
        }
        Command::Runs(RunsCommand::Enqueue {
            client,
            repository,
            commit,
            platforms,
        }) => {
            let data = Client::new(client)?
                .graphql(
                    "mutation($r: String!, $c: String!, $p: [String!]) { enqueueRun(repository: $r, commitSha: $c, platforms: $p) }",
                    serde_json::json!({ "r": repository, "c": commit, "p": platforms }),
                )
                .await?;
            for run in data["enqueueRun"].as_array().into_iter().flatten() {
                println!("queued run {}", run.as_str().unwrap_or_default());
            }
            Ok(())
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
        Command::Projections(ProjectionsCommand::Rebuild { name }) => {
            let settings = Settings::load(&cli.global, None)?;
            init_tracing(&settings.log);
            let db = open_migrated(&settings).await?;
            let all = sp_projections::standard(db.store.clone());
            let chosen: Vec<_> = all
                .into_iter()
                .filter(|p| name.as_deref().is_none_or(|n| n == p.name()))
                .collect();
            if chosen.is_empty() {
                bail!(
                    "no read model named {:?}: use runs, queue, audit, vms, statuses or results",
                    name.as_deref().unwrap_or("")
                );
            }
            for projection in chosen {
                let name = projection.name();
                let applied = rebuild(&*projection, &db, |done, head| {
                    eprintln!("{name}: {done} events applied (log head at position {head})");
                })
                .await
                .with_context(|| format!("rebuilding {name}"))?;
                println!("{name}: rebuilt from {applied} events");
            }
            db.close().await;
            Ok(())
        }
        Command::Tokens(command) => {
            let settings = Settings::load(&cli.global, None)?;
            init_tracing(&settings.log);
            let db = open_migrated(&settings).await?;
            match command {
                TokensCommand::Create { name, scopes } => {
                    let secret = crate::auth::create(&db.pool, name, scopes).await?;
                    eprintln!("token {name} created; it is shown once and cannot be recovered:");
                    println!("{secret}");
                }
                TokensCommand::List => {
                    for t in crate::auth::list(&db.pool).await? {
                        let revoked = t
                            .revoked_at
                            .map(|r| format!(" (revoked {r})"))
                            .unwrap_or_default();
                        println!(
                            "{}\t{}\tcreated {}{revoked}",
                            t.name, t.scopes, t.created_at
                        );
                    }
                }
                TokensCommand::Revoke { name } => {
                    crate::auth::revoke(&db.pool, name).await?;
                    println!("token {name} revoked");
                }
            }
            db.close().await;
            Ok(())
        }
    }
}

async fn open(settings: &Settings) -> anyhow::Result<Database> {
    let options = DbOptions {
        notify_channel: settings.deployment.clone(),
        ..DbOptions::default()
    };
    Database::open(&settings.database_url, &options)
        .await
        .with_context(|| format!("cannot open database {}", redact(&settings.database_url)))
}

async fn open_migrated(settings: &Settings) -> anyhow::Result<Database> {
    let db = open(settings).await?;
    db.migrate().await.context("migration failed")?;
    Ok(db)
}

/// Serve on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let intake_config = settings.intake().context("invalid platforms")?;
    let db = open(&settings).await?;
    let address: SocketAddr = listener.local_addr()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let clock_for_api = clock.clone();
    let files =
        crate::files::Files::open(&settings.object_store).map_err(|e| anyhow::anyhow!("{e}"))?;
    let catalogues = Catalogues::new(db.store.clone(), settings.policy.clone(), clock.clone());
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
    let managers_config = settings
        .managers(address)
        .map_err(|e| anyhow::anyhow!("invalid settings: {e}"))?;
    let provider = vm_provider(&settings).await?;
    let health = sp_managers::Health::default();
    health.set_role(if settings.managers {
        "starting"
    } else {
        "disabled"
    });
    let projectors: Vec<Projector> = sp_projections::standard(db.store.clone())
        .into_iter()
        .map(|p| Projector::new(p, db.clone(), changes.clone()))
        .collect();
    let schema = graphql::schema(Arc::new(Services {
        db: db.clone(),
        operator,
        catalogues: catalogues.clone(),
        files: files.clone(),
        changes: changes.clone(),
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
        projections: projectors.iter().map(|p| (p.name(), p.status())).collect(),
        managers: health.clone(),
        runs: sp_commands::Handler::new(db.store.clone(), settings.policy.clone(), clock_for_api),
        runner: http::RunnerSettings {
            public_url: managers_config.public_url.clone(),
            max_log_bytes: settings.max_log_bytes,
            per_test_timeout_secs: settings.per_test_timeout_secs,
            heartbeat_secs: (settings.policy.deadlines.heartbeat.num_seconds() / 3).max(1) as u64,
            executables: settings.artifact_executables.clone(),
        },
        catalogues: catalogues.clone(),
        files: files.clone(),
        max_sample_bytes: settings.max_sample_bytes,
        anonymous_read: settings.anonymous_read,
    });

    tracing::info!(
        "listening on http://{address} (database: {} {})",
        db.backend(),
        redact(&settings.database_url)
    );
    let stop = shutdown.clone();
    let server = tokio::spawn(http::serve(listener, state, async move {
        stop.cancelled().await
    }));

    // HTTP answers first, so /readyz can say why the platform is not ready
    // while the database is unreachable.
    if migrate_until_done(&db, &shutdown).await {
        if let Some(path) = &settings.catalogue {
            // Not ready until runs can snapshot the seeded catalogue; a file
            // that does not import keeps it that way, saying why.
            match seed_catalogue(&catalogues, &files, path).await {
                Ok(()) => health.ok(CATALOGUE_FILE),
                Err(error) => {
                    tracing::error!(%error, catalogue = %path.display(), "the catalogue file was not imported");
                    health.failing(CATALOGUE_FILE, format!("{error:#}"));
                }
            }
        }
        tracing::info!("database migrated; the platform is ready");
        for projector in projectors {
            tokio::spawn(projector.run(shutdown.clone()));
        }
        if settings.managers {
            tokio::spawn(lead_managers(
                db.clone(),
                provider,
                managers_config,
                changes,
                health,
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
    files: &crate::files::Files,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let current = catalogues.current().await?;
    if !current.state.samples.is_empty() || !current.state.tests.is_empty() {
        tracing::info!(
            tests = current.state.tests.len(),
            "the catalogue has content; the catalogue file is not imported over it"
        );
        return Ok(());
    }
    let file = crate::catalogue::load(path).map_err(|e| anyhow::anyhow!(e))?;
    let summary =
        crate::catalogue::import(catalogues, files, &file, "system:catalogue-file").await?;
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
            let g = &settings.gcp;
            if g.project.is_empty() {
                bail!("vm_provider = \"gcp\" needs [gcp] project");
            }
            let provider = GcpProvider::new(GcpConfig {
                project: g.project.clone(),
                zone: g.zone.clone(),
                machine_type: g.machine_type.clone(),
                image: g.image.clone(),
                network: g.network.clone(),
                subnetwork: g.subnetwork.clone(),
                disk_size_gb: g.disk_size_gb,
                startup_script: g.startup_script.clone(),
                endpoint: g.endpoint.clone(),
                request_timeout: Duration::from_secs(g.request_timeout_secs.max(1)),
            })
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

/// Run the process managers whenever this instance holds the lease; stand
/// by while another does.
async fn lead_managers(
    db: Database,
    provider: Arc<dyn VmProvider>,
    config: sp_managers::ManagersConfig,
    changes: broadcast::Sender<sp_projections::Change>,
    health: sp_managers::Health,
    shutdown: CancellationToken,
) {
    let holder = format!("{}:{}", hostname(), std::process::id());
    let keys = loop {
        match RunnerKeys::load_or_create(&db).await {
            Ok(keys) => break keys,
            Err(error) => {
                health.failing(
                    "managers",
                    format!("cannot load the runner credential key: {error}"),
                );
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    health.ok("managers");
    loop {
        health.set_role("standby");
        let Some(leadership) = lease::acquire(&db, &holder, &shutdown).await else {
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
        );
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

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
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
