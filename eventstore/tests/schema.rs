//! Both backends' migrations must build the same schema. The SQL of the read
//! models (projections, queries, deadlines) is written once and runs on
//! SQLite and PostgreSQL alike, so a column, index or migration added to one
//! backend only compiles and passes that backend's tests, then breaks the
//! other at run time. This test compares the migrated schemas directly.
//!
//! Column types are not compared: they differ on purpose (TIMESTAMPTZ, JSONB,
//! UUID and BOOLEAN on PostgreSQL are TEXT and INTEGER on SQLite).

use std::collections::BTreeSet;
use std::path::Path;

use sp_eventstore::Pool;
use sp_eventstore::testing::TestDb;

/// Columns PostgreSQL has and SQLite has not, on purpose.
const ONLY_IN_POSTGRES: &[&str] = &[
    // The transaction that appended the event (part of the primary key):
    // PostgreSQL assigns positions at insert, not in commit order, so readers
    // follow (tx_id, position) below the oldest running transaction. SQLite
    // has a single writer: its positions are already in commit order.
    "events.tx_id",
];
/// Columns SQLite has and PostgreSQL has not, on purpose: none.
const ONLY_IN_SQLITE: &[&str] = &[];

// Nullability: SQLite's table_info reports notnull = 0 for a PRIMARY KEY column
// not declared NOT NULL. events.position (INTEGER PRIMARY KEY) is the rowid
// and can never be NULL; the other key columns (the TEXT keys of the read
// models, audit_log.position BIGINT) do accept NULL on SQLite, a legacy
// quirk of rowid tables, where PostgreSQL refuses it. No code writes a NULL
// key, so a key column counts as NOT NULL here; any other column whose NOT
// NULL differs still fails the test.
const PG_COLUMNS: &str = "SELECT table_name::text, column_name::text, is_nullable = 'YES'
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'";
const SQLITE_COLUMNS: &str = r#"SELECT m.name, p.name, p."notnull" = 0 AND p.pk = 0
    FROM sqlite_master m JOIN pragma_table_info(m.name) p
    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
      AND m.name <> '_sqlx_migrations'"#;

// Indexes: only those made by CREATE INDEX. The ones behind PRIMARY KEY and
// UNIQUE constraints are named by each engine its own way (runs_pkey and
// events_event_id_key on PostgreSQL, sqlite_autoindex_runs_1 on SQLite, and
// none at all for SQLite's INTEGER PRIMARY KEY), so they cannot be matched.
const PG_INDEXES: &str = "SELECT i.tablename::text, i.indexname::text FROM pg_indexes i
    WHERE i.schemaname = current_schema() AND i.tablename <> '_sqlx_migrations'
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                      WHERE c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass)";
const SQLITE_INDEXES: &str = r#"SELECT tbl_name, name FROM sqlite_master
    WHERE type = 'index' AND name NOT LIKE 'sqlite\_autoindex\_%' ESCAPE '\'
      AND tbl_name <> '_sqlx_migrations'"#;

/// (table, column, nullable) and (table, index) as read.
type Columns = Vec<(String, String, bool)>;
type Indexes = Vec<(String, String)>;

/// "table.column NULL" or "table.column NOT NULL", and "table.index".
struct Schema {
    columns: BTreeSet<String>,
    indexes: BTreeSet<String>,
}

async fn read_schema(db: &TestDb) -> Schema {
    let (columns, indexes): (Columns, Indexes) = match &db.database.pool {
        Pool::Postgres(pool) => (
            sqlx::query_as(PG_COLUMNS)
                .fetch_all(pool)
                .await
                .expect("PostgreSQL columns"),
            sqlx::query_as(PG_INDEXES)
                .fetch_all(pool)
                .await
                .expect("PostgreSQL indexes"),
        ),
        Pool::Sqlite { writer, .. } => (
            sqlx::query_as(SQLITE_COLUMNS)
                .fetch_all(writer)
                .await
                .expect("SQLite columns"),
            sqlx::query_as(SQLITE_INDEXES)
                .fetch_all(writer)
                .await
                .expect("SQLite indexes"),
        ),
    };
    let null = |nullable: bool| if nullable { "NULL" } else { "NOT NULL" };
    Schema {
        columns: columns
            .iter()
            .map(|(t, c, n)| format!("{t}.{c} {}", null(*n)))
            .collect(),
        indexes: indexes.iter().map(|(t, i)| format!("{t}.{i}")).collect(),
    }
}

/// Take the intended differences out, failing if one is no longer there.
fn remove_intended(backend: &str, columns: &mut BTreeSet<String>, intended: &[&str]) {
    for column in intended {
        let prefix = format!("{column} ");
        let found = columns.iter().find(|c| c.starts_with(&prefix)).cloned();
        let found = found.unwrap_or_else(|| {
            panic!("{column} is allowed only in {backend} but is not there: update the allowlist")
        });
        columns.remove(&found);
    }
}

fn assert_same(what: &str, postgres: &BTreeSet<String>, sqlite: &BTreeSet<String>) {
    assert!(
        !postgres.is_empty() && !sqlite.is_empty(),
        "no {what} read at all"
    );
    let mut problems: Vec<String> = postgres
        .difference(sqlite)
        .map(|x| format!("only in postgres: {x}"))
        .collect();
    problems.extend(
        sqlite
            .difference(postgres)
            .map(|x| format!("only in sqlite: {x}")),
    );
    assert!(
        problems.is_empty(),
        "{what} differ between the backends' migrations:\n  {}",
        problems.join("\n  ")
    );
}

#[tokio::test]
async fn both_backends_have_the_same_tables_columns_and_indexes() {
    let postgres_db = TestDb::postgres().await;
    let sqlite_db = TestDb::sqlite().await;
    let mut postgres = read_schema(&postgres_db).await;
    let mut sqlite = read_schema(&sqlite_db).await;
    remove_intended("postgres", &mut postgres.columns, ONLY_IN_POSTGRES);
    remove_intended("sqlite", &mut sqlite.columns, ONLY_IN_SQLITE);
    assert_same("columns", &postgres.columns, &sqlite.columns);
    assert_same("indexes", &postgres.indexes, &sqlite.indexes);
}

/// A migration added to one backend only fails here, before any schema differs.
#[test]
fn both_backends_have_the_same_migration_files() {
    let names = |backend: &str| -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations")
            .join(backend);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|entry| {
                entry
                    .expect("directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    assert_same("migration files", &names("postgres"), &names("sqlite"));
}
