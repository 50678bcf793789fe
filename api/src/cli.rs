//! The command line: `sample-platform`'s subcommands and what each does.
//! `serve` and `demo` hand over to [`crate::serve`]; the client subcommands
//! talk to a running platform through [`crate::client`].

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use sp_eventstore::redact;
use sp_projections::rebuild;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::client::{Client, ClientArgs};
use crate::config::{GlobalArgs, ServeArgs, Settings};
use crate::serve::serve;

/// The Sample Platform: regression tests for every push and pull request.
#[derive(Debug, Parser)]
#[command(name = "sample-platform", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform: HTTP API, and everything behind it.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Manage operators' API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Read the event log as an auditor: export, import, verify it.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Serve the platform with a demo project written to ./demo: a small
    /// program that is every commit's build, three samples and a catalogue
    /// file of three regression tests. Nothing is imported or queued: it
    /// prints the commands that add the samples and tests and queue a run,
    /// to follow in the browser. All on this machine: no cloud, no GitHub.
    Demo(Box<ServeArgs>),
    /// Be a runner (what a local VM runs): do one run attempt's work.
    Runner(sp_runner::Args),
    /// Add samples to the catalogue of a running platform.
    #[command(subcommand)]
    Samples(SamplesCommand),
    /// Import or export a running platform's catalogue.
    #[command(subcommand)]
    Catalogue(CatalogueCommand),
    /// Queue runs on a running platform.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// The settings `serve` would use.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every effective setting (the TOML-only ones too) with where it
    /// came from: default, the file, an SP_* variable or a flag. Secrets are
    /// masked. Takes the same flags as `serve`.
    Show(Box<ServeArgs>),
}

#[derive(Debug, Subcommand)]
pub enum SamplesCommand {
    /// Upload sample files (with a progress bar); each is kept once, by its
    /// SHA-256, and a file already in the catalogue is reported, not added.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// Tags for every file added (repeat for several).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Import a catalogue file: its samples and approved outputs are
    /// uploaded, then new and changed tests are defined.
    Import {
        #[command(flatten)]
        client: ClientArgs,
        file: PathBuf,
    },
    /// Import the old platform's catalogue: its MySQL tables as a
    /// `mysqldump` file or a directory of CSV exports (TABLE.csv), with its
    /// samples ({sha}.{extension}) and, optionally, its correct outputs
    /// ({correct}{extension}). Tests that cannot be mapped whole are listed
    /// with the reason and not imported; importing again changes nothing.
    ImportLegacy {
        #[command(flatten)]
        client: ClientArgs,
        /// The dump, or a directory of CSV files.
        #[arg(long)]
        dump: PathBuf,
        /// The old platform's samples directory.
        #[arg(long)]
        samples: PathBuf,
        /// The old platform's directory of correct outputs.
        #[arg(long)]
        results: Option<PathBuf>,
    },
    /// Print the catalogue in the catalogue file format (TOML).
    Export {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Queue a run of a commit per platform (every configured one by default).
    Enqueue {
        #[command(flatten)]
        client: ClientArgs,
        /// The repository, as owner/name (e.g. CCExtractor/ccextractor).
        repository: String,
        /// The commit's full SHA (40 hex digits).
        commit: String,
        /// A platform to run on (repeat for several; default: every
        /// configured one).
        #[arg(long = "platform")]
        platforms: Vec<String>,
        /// Follow the runs until they end, print each verdict, and exit 0
        /// when every run passed, 1 when one failed its tests, 2 when one
        /// could not be tested or was cancelled or superseded, 3 when the
        /// runs could not be followed (the platform stopped answering).
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Empty a read model and rebuild it from the event log (all when no name
    /// is given). On SQLite, stop the platform first: the rebuild holds the
    /// only write connection.
    Rebuild {
        /// runs, queue, audit, vms, statuses, results, comparisons or
        /// comments.
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the event log as JSON Lines, oldest first: position, stream,
    /// version, id, type, schema_version, data, metadata, recorded_at, hash. Read
    /// in batches (memory stays flat), with a progress bar on a terminal.
    Export {
        /// The first position exported.
        #[arg(long)]
        from: Option<i64>,
        /// The last position exported.
        #[arg(long)]
        to: Option<i64>,
        /// Only streams whose name starts with this: `run-`, `pr-`,
        /// `catalogue`, `delivery-`, …
        #[arg(long)]
        stream: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Load an export into a new database (its log must be empty), every
    /// event at its position, all or nothing; then rebuild the read models.
    Import {
        /// The export (JSON Lines); `-` reads standard input.
        file: PathBuf,
    },
    /// Print a run as it was just after the event at a position of the log
    /// (its latest by default), with its whole trail.
    Show {
        /// The run's id.
        run: String,
        /// The log position to show it at (the audit trail and the
        /// dashboard's "as of here" links show positions).
        #[arg(long)]
        at: Option<i64>,
    },
    /// Recompute every stream's hash chain and name each stream's first
    /// broken link (an event changed or removed behind the platform's
    /// back); exits 1 if there is one.
    Verify {
        /// Verify this export offline (`-` reads standard input) instead of
        /// the database.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it once; only its hash is stored.
    Create {
        /// Who the token is for: recorded as the actor of every mutation made with it.
        name: String,
        /// What it may do: read, operate (enqueue, cancel, retry, pause, block),
        /// catalogue, admin (create and revoke tokens over the API). Repeat
        /// for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List tokens (names, scopes, dates; never the secret).
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

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
            let config = sp_runner::Config::from(args.clone());
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
        Command::Catalogue(CatalogueCommand::ImportLegacy {
            client,
            dump,
            samples,
            results,
        }) => {
            Client::new(client)?
                .import_legacy(dump, samples, results.as_deref())
                .await
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
            wait,
        }) => {
            let client = Client::new(client)?;
            let data = client
                .graphql(
                    "mutation($r: String!, $c: String!, $p: [String!]) { enqueueRun(repository: $r, commitSha: $c, platforms: $p) }",
                    serde_json::json!({ "r": repository, "c": commit, "p": platforms }),
                )
                .await?;
            let runs: Vec<String> = data["enqueueRun"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|run| run.as_str().map(String::from))
                .collect();
            for run in &runs {
                println!("queued run {run}");
            }
            if *wait {
                client.wait_for_runs(&runs).await?;
            }
            Ok(())
        }
        Command::Config(ConfigCommand::Show(args)) => {
            let command_line: Vec<String> = std::env::args().collect();
            print!(
                "{}",
                crate::config_show::show(&cli.global, args, &command_line)?
            );
            Ok(())
        }
        Command::Migrate => {
            let settings = Settings::load(&cli.global, None)?;
            init_tracing(&settings.log);
            let db = settings.open().await?;
            db.migrate().await.with_context(|| {
                format!(
                    "cannot prepare the database {}",
                    redact(&settings.database_url)
                )
            })?;
            println!("migrations applied to {}", redact(&settings.database_url));
            db.close().await;
            Ok(())
        }
        Command::Projections(ProjectionsCommand::Rebuild { name }) => {
            let settings = Settings::load(&cli.global, None)?;
            init_tracing(&settings.log);
            let db = settings.open_existing().await?;
            let all = sp_projections::standard();
            let chosen: Vec<_> = all
                .into_iter()
                .filter(|p| name.as_deref().is_none_or(|n| n == p.name()))
                .collect();
            if chosen.is_empty() {
                let known: Vec<&str> = sp_projections::standard()
                    .iter()
                    .map(|p| p.name())
                    .collect();
                bail!(
                    "no read model named {:?}: use one of {}",
                    name.as_deref().unwrap_or(""),
                    known.join(", ")
                );
            }
            let names: Vec<&str> = chosen.iter().map(|p| p.name()).collect();
            let names = names.join(", ");
            let started = std::time::Instant::now();
            let applied = rebuild(&chosen, &db, |done, head| {
                eprintln!("{names}: {done} events applied (log head at position {head})");
            })
            .await
            .with_context(|| format!("rebuilding {names}"))?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{names}: rebuilt from {applied} events in {secs:.1} s ({:.0} events/s)",
                applied as f64 / secs.max(1e-9)
            );
            db.close().await;
            Ok(())
        }
        Command::Audit(AuditCommand::Export {
            from,
            to,
            stream,
            output,
        }) => {
            let (from, to) = (*from, *to);
            if let (Some(from), Some(to)) = (from, to)
                && from > to
            {
                bail!("--from {from} is after --to {to}: nothing to export");
            }
            let settings = Settings::load(&cli.global, None)?;
            init_tracing(&settings.log);
            let db = settings.open_existing().await?;
            let head = db.store.head_position().await?;
            let bar = indicatif::ProgressBar::new(u64::try_from(head).unwrap_or(0));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "exporting {bar:40} position {pos}/{len} ({per_sec}, {eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let filter = sp_eventstore::audit::Filter {
                from,
                to,
                stream_prefix: stream.clone(),
            };
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let written = sp_eventstore::audit::export(&*db.store, &filter, &mut out, |at| {
                bar.set_position(u64::try_from(at).unwrap_or(0));
            })
            .await?;
            bar.finish_and_clear();
            eprintln!("{written} events exported (the log's head was at position {head})");
            db.close().await;
            Ok(())
        }
        Command::Audit(AuditCommand::Import { file }) => {
            let settings = Settings::load(&cli.global, None)?;
            init_tracing(&settings.log);
            let input = open_input(file)?;
            let db = settings.open_migrated().await?;
            // One line per batch would be a thousand for a million events.
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "importing {spinner} {pos} events written ({per_sec}), committed at the end",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let imported = sp_eventstore::audit::import(&db, input, |n| bar.set_position(n))
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            bar.finish_and_clear();
            let applied = rebuild(&sp_projections::standard(), &db, |_, _| {})
                .await
                .context("rebuilding the read models")?;
            println!(
                "{} events imported; the read models rebuilt from {applied}",
                imported.events
            );
            if !imported.verified {
                eprintln!(
                    "the export carried no hashes (a build before hash chains wrote it): its \
                     events were linked as they were imported, so nothing shows whether it was \
                     altered before"
                );
            }
            db.close().await;
            Ok(())
        }
        Command::Audit(AuditCommand::Show { run, at }) => {
            let settings = Settings::load(&cli.global, None)?;
            init_tracing(&settings.log);
            let db = settings.open_existing().await?;
            let shown = crate::audit_show::show(&*db.store, run, *at).await;
            db.close().await;
            print!("{}", shown?);
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { file }) => {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("verifying {spinner} {msg} ({per_sec})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let (outcome, what) = match file {
                Some(file) => {
                    let input = open_input(file)?;
                    let outcome = sp_eventstore::audit::verify_export(input, |n| {
                        bar.set_message(format!("{n} events read"));
                    })
                    .with_context(|| format!("verifying {}", file.display()))?;
                    (outcome, format!("the export {}", file.display()))
                }
                None => {
                    let settings = Settings::load(&cli.global, None)?;
                    init_tracing(&settings.log);
                    let db = settings.open_existing().await?;
                    let outcome = sp_eventstore::audit::verify(&*db.store, |at| {
                        bar.set_message(format!("position {at}"));
                    })
                    .await?;
                    db.close().await;
                    (
                        outcome,
                        format!("the log of {}", redact(&settings.database_url)),
                    )
                }
            };
            bar.finish_and_clear();
            for broken in &outcome.broken {
                println!("broken: {broken}");
            }
            println!(
                "{} events in {} streams of {what}; digest of the streams' heads {}",
                outcome.events,
                outcome.streams,
                hex::encode(outcome.digest)
            );
            if !outcome.broken.is_empty() {
                bail!(
                    "{} of {} streams have a broken chain (the first break of each is above)",
                    outcome.broken.len(),
                    outcome.streams
                );
            }
            println!("every chain holds");
            Ok(())
        }
        Command::Tokens(command) => {
            let settings = Settings::load(&cli.global, None)?;
            init_tracing(&settings.log);
            let db = settings.open_existing().await?;
            match command {
                TokensCommand::Create { name, scopes } => {
                    let secret = match crate::auth::create(&db, name, scopes, &shell_actor()).await
                    {
                        Err(crate::auth::TokenError::CreatedNotRecorded { secret, error }) => {
                            // The token works: its secret must not be lost.
                            println!("{secret}");
                            bail!(
                                "token {name} was created (its secret is above, shown once), but \
                                 recording its creation in the access stream failed: {error}"
                            );
                        }
                        other => other?,
                    };
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
                    crate::auth::revoke(&db, name, &shell_actor()).await?;
                    println!("token {name} revoked");
                }
            }
            db.close().await;
            Ok(())
        }
    }
}

/// An export to read: a file, or standard input for `-`.
fn open_input(file: &std::path::Path) -> anyhow::Result<Box<dyn std::io::BufRead>> {
    if file.as_os_str() == "-" {
        return Ok(Box::new(std::io::BufReader::new(std::io::stdin().lock())));
    }
    let opened =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    Ok(Box::new(std::io::BufReader::new(opened)))
}

/// Who runs a command that changes the platform: the person at this shell
/// (`user:<login>`) or, when the login is unknown, the command line.
fn shell_actor() -> String {
    std::env::var("USER")
        .ok()
        .filter(|login| !login.is_empty())
        .map(|login| format!("user:{login}"))
        .unwrap_or_else(|| "system:command-line".into())
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
