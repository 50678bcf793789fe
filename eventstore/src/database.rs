//! Opening a database by URL, migrating it, and checking that it is ready.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::error::StoreError;
use crate::{EventStore, PgStore, SqliteStore};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

#[derive(Debug, Clone)]
pub struct DbOptions {
    /// PostgreSQL pool size; SQLite always has one writer and a few readers.
    pub max_connections: u32,
    /// How long to wait for a connection before reporting the database down.
    pub acquire_timeout: Duration,
    /// PostgreSQL `NOTIFY` channel that wakes other replicas' readers.
    pub notify_channel: String,
    /// Whether a missing SQLite file is created. Commands that read or
    /// change a platform's database say there is none instead.
    pub create_sqlite_file: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 24,
            acquire_timeout: Duration::from_secs(5),
            notify_channel: "sp_events".to_string(),
            create_sqlite_file: true,
        }
    }
}

/// The connection pools, for the parts that keep their own tables (read
/// models, deadlines) and write them in the same transaction as a checkpoint.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite {
        /// The single writer connection; every write goes through it.
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// An opened database: its pools and the event store on them.
#[derive(Debug, Clone)]
pub struct Database {
    pub pool: Pool,
    pub store: Arc<dyn EventStore>,
    /// Names this deployment's shared resources (notification channel, leases).
    pub deployment: String,
}

impl Database {
    /// Open `postgres://…` or `sqlite://path` (the file is created if missing).
    /// PostgreSQL connects lazily, so a server that is down makes the platform
    /// unready rather than unable to start.
    pub async fn open(url: &str, options: &DbOptions) -> Result<Database, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_lazy_with(connect);
            let store = PgStore::new(pool.clone(), &options.notify_channel);
            return Ok(Database {
                pool: Pool::Postgres(pool),
                store: Arc::new(store),
                deployment: options.notify_channel.clone(),
            });
        }
        if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?;
            sqlite_file_can_open(connect.get_filename(), options.create_sqlite_file)?;
            let connect = connect
                .create_if_missing(options.create_sqlite_file)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a committed event survives power loss, not only a crash.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(options.acquire_timeout)
                .foreign_keys(true);
            let open = || async {
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(options.acquire_timeout)
                    .after_release(|conn, _| Box::pin(release_outside_transaction(conn)))
                    .connect_with(connect.clone())
                    .await?;
                // Readers are ordinary connections that only read: SQLite's
                // read-only mode has WAL corner cases (a reader opened before
                // the first migration was seen to miss tables created after it).
                let reader = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect.clone())
                    .await?;
                Ok::<_, sqlx::Error>((writer, reader))
            };
            // Processes opening a new file at once race to switch it to WAL,
            // and SQLite answers the losers "database is locked" at once,
            // without waiting out the busy timeout: they try again.
            let (writer, reader) = open
                .retry(
                    ExponentialBuilder::new()
                        .with_min_delay(Duration::from_millis(20))
                        .with_max_delay(Duration::from_millis(500))
                        .with_jitter()
                        .without_max_times()
                        .with_total_delay(Some(options.acquire_timeout)),
                )
                .sleep(tokio::time::sleep)
                .when(crate::error::database_error_is_transient)
                .await?;
            let store = SqliteStore::new(writer.clone(), reader.clone());
            return Ok(Database {
                pool: Pool::Sqlite { writer, reader },
                store: Arc::new(store),
                deployment: options.notify_channel.clone(),
            });
        }
        Err(StoreError::Unusable(format!(
            "unsupported database URL {:?}: use sqlite://FILE or postgres://…",
            redact(url)
        )))
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite { .. } => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self.pool {
            Pool::Sqlite { .. } => &SQLITE_MIGRATIONS,
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Apply every migration not applied yet, then give the events written
    /// before hash chains their links. Processes migrating one
    /// database at once take turns: PostgreSQL through sqlx's advisory lock,
    /// SQLite through a lock file beside the database (sqlx takes none there,
    /// so two processes both applied the first migration).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite { writer, .. } => {
                let file = writer.connect_options().get_filename().to_path_buf();
                let _turn = MigrationLock::take(&file).await?;
                SQLITE_MIGRATIONS.run(writer).await?
            }
            Pool::Postgres(pool) => {
                // Taken first (and given back) so that a server that takes no
                // connection is named with its reason.
                drop(pg_connection(pool).await?);
                POSTGRES_MIGRATIONS.run(pool).await?
            }
        }
        crate::relink::link_unchained(self).await?;
        Ok(())
    }

    /// The versions of the migrations this build has that the database has
    /// not applied. Fails when the database does not answer.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let check =
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations'";
        let applied_sql = "SELECT version FROM _sqlx_migrations WHERE success";
        let applied: Vec<i64> = match &self.pool {
            Pool::Sqlite { reader, .. } => {
                let exists: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(reader)
                .await?;
                if exists == 0 {
                    vec![]
                } else {
                    sqlx::query_scalar(applied_sql).fetch_all(reader).await?
                }
            }
            Pool::Postgres(pool) => {
                let mut connection = pg_connection(pool).await?;
                let exists: i64 =
                    sqlx::query_scalar(&format!("{check} AND table_schema = current_schema()"))
                        .fetch_one(&mut *connection)
                        .await?;
                if exists == 0 {
                    vec![]
                } else {
                    sqlx::query_scalar(applied_sql)
                        .fetch_all(&mut *connection)
                        .await?
                }
            }
        };
        let applied: BTreeSet<i64> = applied.into_iter().collect();
        Ok(self
            .migrator()
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// Close every connection (the SQLite file is checkpointed on close).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// An exclusive lock on `<database>-migrate.lock`, held while migrating and
/// released when dropped (or when the process dies: the OS drops the lock).
#[derive(Debug)]
struct MigrationLock {
    _held: Option<std::fs::File>,
}

impl MigrationLock {
    /// How long a process waits for another one's migrations.
    const PATIENCE: Duration = Duration::from_secs(120);

    async fn take(database: &std::path::Path) -> Result<MigrationLock, StoreError> {
        if database.as_os_str().is_empty() || database.to_string_lossy().contains(":memory:") {
            return Ok(MigrationLock { _held: None });
        }
        let mut name = database.as_os_str().to_owned();
        name.push("-migrate.lock");
        let path = std::path::PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                StoreError::Invalid(format!("cannot open the lock file {}: {e}", path.display()))
            })?;
        let started = tokio::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(MigrationLock { _held: Some(file) }),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < Self::PATIENCE => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Invalid(format!(
                        "another process has held {} for over {} s while migrating the database",
                        path.display(),
                        Self::PATIENCE.as_secs()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(StoreError::Invalid(format!(
                        "cannot lock {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    }
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let (address, query) = match url.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (url, None),
    };
    let address = match address.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => address.to_string(),
        },
        None => address.to_string(),
    };
    // libpq's `?password=…` is as secret as the one before the `@`.
    let Some(query) = query else {
        return address;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{address}?{}", query.join("&"))
}

/// Whether the pool may keep a SQLite connection handed back to it: not one
/// still inside a transaction (with a single writer, it would hold the write
/// lock and refuse every later `BEGIN`). Nothing of ours can leave one so
/// (every begin is cancel-safe), and SQLite itself can end a transaction
/// behind sqlx's back (a full disk, an I/O error), after which sqlx's own
/// count stays up: the pool closes such a connection, which rolls back, and
/// opens a fresh one.
async fn release_outside_transaction(
    conn: &mut sqlx::SqliteConnection,
) -> Result<bool, sqlx::Error> {
    use sqlx::Connection as _;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // A rollback queued by a dropped `Transaction` runs before the ping.
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("a SQLite connection came back inside a transaction; closing it");
        return Ok(false);
    }
    Ok(true)
}

/// A connection from the pool. When the pool gives up, its error says only
/// "pool timed out"; one direct attempt learns why (refused, unknown host,
/// bad password) and names the server.
async fn pg_connection(
    pool: &PgPool,
) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
    use sqlx::Connection as _;
    match pool.acquire().await {
        Err(sqlx::Error::PoolTimedOut) => {
            let options = pool.connect_options();
            let server = format!("{}:{}", options.get_host(), options.get_port());
            let cause = match tokio::time::timeout(
                pool.options().get_acquire_timeout(),
                sqlx::PgConnection::connect_with(&options),
            )
            .await
            {
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(connection)) => {
                    let _ = connection.close().await;
                    "it answered only after the pool had given up".to_string()
                }
                Err(_) => format!(
                    "no answer within {:?}",
                    pool.options().get_acquire_timeout()
                ),
            };
            Err(StoreError::Unreachable(format!(
                "cannot connect to PostgreSQL at {server}: {cause}"
            )))
        }
        other => Ok(other?),
    }
}

/// SQLite's own error for a file it cannot open names neither the file nor
/// why; these two causes are the common ones, said in words.
fn sqlite_file_can_open(file: &std::path::Path, create: bool) -> Result<(), StoreError> {
    if file.as_os_str() == ":memory:" || file.exists() {
        return Ok(());
    }
    if !create {
        return Err(StoreError::Unusable(format!(
            "there is no SQLite database at {} (this command does not create one): run it \
             where the platform runs, or name its database with --database-url or \
             SP_DATABASE_URL",
            absolute(file).display()
        )));
    }
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent
        && !parent.is_dir()
    {
        return Err(StoreError::Unusable(format!(
            "cannot create the SQLite database {}: the directory {} does not exist",
            file.display(),
            absolute(parent).display()
        )));
    }
    Ok(())
}

fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden_wherever_the_url_has_them() {
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("postgres://u@h/db?sslmode=require&password=pw"),
            "postgres://u:***@h/db?sslmode=require&password=***"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
