//! `api/schema.graphql` is the schema the code serves: dashboard and scripts
//! are written against the file, so drift fails the build.

#[test]
fn schema_file_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = sp_api::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).expect("write api/schema.graphql");
    }
    let file = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        file == sdl,
        "api/schema.graphql differs from the code's schema; if the change is intended, run \
         UPDATE_SCHEMA=1 cargo test -p sp-api --test schema and commit the file"
    );
}

#[test]
fn the_names_scripts_rely_on_are_in_the_schema() {
    let sdl = sp_api::graphql::sdl();
    for name in [
        "runs(",
        "run(id",
        "queue(",
        "auditTrail(",
        "runAsOf(",
        "runChanged(",
        "commitSha",
        "pullRequest",
        "queuedAt",
        "supersededBy",
        "pageInfo",
        "cursor",
        "QUEUED",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "SUPERSEDED",
        "CANCELLED",
        "recordedAt",
    ] {
        assert!(sdl.contains(name), "the schema lacks {name}");
    }
}
