//! The process managers under the fault harness (`sp_tests::harness`), in
//! virtual time: seeds on SQLite and on PostgreSQL. `SP_HARNESS_SEEDS` sets
//! how many on SQLite (default 500), and a fifth of that on PostgreSQL, where
//! a seed costs about four times as much (default 100); the `fault-harness`
//! binary runs as many as asked.
//!
//! A seed that does not finish within its time (`SEED_LIMIT`) is a failure like a broken
//! invariant: the one that hung before was a real defect (a cancelled begin
//! poisoned SQLite's only writer connection).

use sp_tests::Backend;
use sp_tests::harness::{replay_command, run_seeds};

/// SQLite's seeds; PostgreSQL runs a fifth as many.
fn sqlite_seeds() -> u64 {
    std::env::var("SP_HARNESS_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

fn every_seed_keeps_the_invariants(backend: Backend, count: u64) {
    // The backends run side by side: SQLite's seeds keep the processor
    // busy, PostgreSQL's mostly wait for the server.
    let mut failed = Vec::new();
    let (mut runs, mut crashes, mut vms, mut abandoned, mut completed) = (0, 0, 0, 0, 0);
    for (seed, outcome) in run_seeds(backend, 0..count, 4) {
        match outcome {
            Ok(o) => {
                runs += o.runs;
                crashes += o.crashes;
                vms += o.vms_made;
                abandoned += o.abandoned;
                completed += o.completed;
            }
            Err(e) => failed.push(format!(
                "seed {seed}: {e}\n  replay: {}",
                replay_command(backend, seed)
            )),
        }
    }
    println!(
        "{count} seeds: {runs} runs, {completed} completed, {crashes} crashes, {vms} VMs made, {abandoned} left to a person"
    );
    // The harness must have exercised what it claims to.
    assert!(crashes > 0 && vms > 0, "the seeds exercised too little");
    assert!(
        failed.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn sqlite_seeds_keep_the_invariants() {
    every_seed_keeps_the_invariants(Backend::Sqlite, sqlite_seeds());
}

#[test]
fn postgres_seeds_keep_the_invariants() {
    every_seed_keeps_the_invariants(Backend::Postgres, (sqlite_seeds() / 5).max(1));
}
