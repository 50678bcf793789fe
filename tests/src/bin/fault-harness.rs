//! Runs the process managers' fault harness for as many seeds as asked.
//!
//! ```text
//! fault-harness [--backend sqlite|postgres] [--seeds N] [--from SEED] [--seed SEED] [--parallel N]
//! ```
//!
//! PostgreSQL comes from `SP_TEST_POSTGRES_URL` (default: the local server).

use std::process::ExitCode;
use std::time::Instant;

use sp_tests::Backend;
use sp_tests::harness::{replay_command, run_seeds};

fn usage() -> ExitCode {
    eprintln!(
        "usage: fault-harness [--backend sqlite|postgres] [--seeds N] [--from SEED] [--seed SEED]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut backend = Backend::Sqlite;
    let mut from = 0u64;
    let mut count = 100u64;
    let mut parallel = 4usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next();
        match arg.as_str() {
            "--backend" => match value().as_deref() {
                Some("sqlite") => backend = Backend::Sqlite,
                Some("postgres") => backend = Backend::Postgres,
                _ => return usage(),
            },
            "--seeds" => match value().and_then(|v| v.parse().ok()) {
                Some(n) => count = n,
                None => return usage(),
            },
            "--from" => match value().and_then(|v| v.parse().ok()) {
                Some(n) => from = n,
                None => return usage(),
            },
            "--parallel" => match value().and_then(|v| v.parse().ok()) {
                Some(n) => parallel = n,
                None => return usage(),
            },
            "--seed" => match value().and_then(|v| v.parse().ok()) {
                Some(n) => {
                    from = n;
                    count = 1;
                }
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let started = Instant::now();
    let mut failures = 0u64;
    let results = run_seeds(backend, from..from.saturating_add(count), parallel);
    for (seed, outcome) in results {
        match outcome {
            Ok(o) => println!(
                "seed {seed}: ok ({} runs, {} events, {} crashes, {} VMs, {} completed, {} left to a person)",
                o.runs, o.events, o.crashes, o.vms_made, o.completed, o.abandoned
            ),
            Err(e) => {
                failures += 1;
                println!(
                    "seed {seed}: FAILED: {e}\n  replay: {}",
                    replay_command(backend, seed)
                );
            }
        }
    }
    println!(
        "{} passed, {failures} failed in {:.1} s",
        count - failures,
        started.elapsed().as_secs_f64()
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
