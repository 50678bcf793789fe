//! One fault harness for the process managers, in virtual time.
//!
//! From a seed it queues runs on a real database, runs the platform's real
//! managers and projectors against a faulty cloud ([`FaultyCloud`]: creates
//! and deletes that fail with each error class, fail after taking effect,
//! hang, or answer late; listings that fail), plays a runner that sometimes
//! finishes, and crashes the whole process between steps (every task
//! stopped, then new managers under a new lease, new projectors from their
//! checkpoints). The platform's clock is the harness's: each step moves it on
//! by up to minutes, so deadlines fire and backoffs end when the seed says;
//! the managers' own waits (ticks, call timeouts, pauses) are milliseconds.
//!
//! After every step it checks what must hold at any moment (at most one
//! final event per run, at most one VM request per attempt, at most one VM
//! in the cloud per attempt, every non-final run has a deadline); after
//! draining (faults off, time run on) what must hold in the end (every run
//! final, every VM the cloud made deleted or recorded as abandoned for a
//! person, read models equal to a rebuild).
//!
//! The seed decides the faults, the steps and their order; the database's
//! own threads are not under its control, so a replay takes the same path
//! in the platform's logic but not always in the same interleaving.
//! `cargo run --bin fault-harness -- --backend sqlite --seeds 1000`
//! runs as many as asked; a failing seed prints the command that replays it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sp_commands::{Clock, Envelope, Handler, ManualClock};
use sp_domain::{Platform, Policy, QueueRun, RunCommand, RunId, RunState, RunnerStage, Trigger};
use sp_eventstore::testing::TestDb;
use sp_eventstore::{Database, EventStore};
use sp_managers::{
    ArtifactSource, CallError, CallPolicy, CreateVm, Health, Managers, ManagersConfig, RunnerKeys,
    VmInfo, VmProvider, VmState,
};
use sp_projections::{Change, Projector};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Backend;

/// A small deterministic generator (SplitMix64): the harness needs no
/// statistical quality, only the same choices for the same seed.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Dice(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn roll(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0 ≤ n < below.
    pub fn below(&mut self, below: u64) -> u64 {
        self.roll() % below.max(1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the faulty cloud does with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Refused before anything happened, with this class.
    Refuse(sp_domain::ErrorClass),
    /// Done, but the answer is lost (a timeout after the effect).
    LoseAnswer,
    /// Done, then the call never answers.
    HangAfter,
    /// Never answers, nothing done.
    Hang,
    /// Done, answered after a while.
    Late,
}

#[derive(Debug, Default)]
struct Cloud {
    vms: BTreeMap<String, VmInfo>,
    /// Idempotency key → the VM it made.
    by_key: HashMap<String, String>,
    /// Every VM ever made: (run, attempt, name).
    made: Vec<(String, String, String)>,
    faults_on: bool,
}

/// A VM provider that does what a cloud does, and sometimes worse.
#[derive(Debug)]
pub struct FaultyCloud {
    cloud: Mutex<Cloud>,
    dice: Mutex<Dice>,
}

impl FaultyCloud {
    pub fn new(seed: u64) -> Self {
        FaultyCloud {
            cloud: Mutex::new(Cloud {
                faults_on: true,
                ..Cloud::default()
            }),
            dice: Mutex::new(Dice::new(seed.rotate_left(17))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cloud> {
        self.cloud.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn faults(&self, on: bool) {
        self.lock().faults_on = on;
    }

    /// Names of the VMs that exist.
    pub fn existing(&self) -> Vec<String> {
        self.lock().vms.keys().cloned().collect()
    }

    /// Every VM ever made, as (run, attempt, name).
    pub fn made(&self) -> Vec<(String, String, String)> {
        self.lock().made.clone()
    }

    fn fault(&self, harsh: bool) -> Fault {
        if !self.lock().faults_on {
            return Fault::None;
        }
        let mut dice = self.dice.lock().unwrap_or_else(|p| p.into_inner());
        match dice.below(100) {
            0..=49 => Fault::None,
            50..=61 => Fault::Refuse(sp_domain::ErrorClass::Retryable),
            62..=65 => Fault::Refuse(sp_domain::ErrorClass::Quota),
            // A permanent refusal of a delete leaves a VM to a person; keep
            // those rare so most runs show the ordinary path.
            66..=67 if harsh => Fault::Refuse(sp_domain::ErrorClass::Permanent),
            66..=75 => Fault::LoseAnswer,
            76..=82 => Fault::HangAfter,
            83..=89 => Fault::Hang,
            _ => Fault::Late,
        }
    }

    async fn after(fault: Fault, answer: Result<(), CallError>) -> Result<(), CallError> {
        match fault {
            Fault::LoseAnswer => Err(CallError::retryable(
                "the connection dropped after the call",
            )),
            Fault::HangAfter | Fault::Hang => std::future::pending().await,
            // Past the caller's timeout: the effect is there, the answer
            // comes too late to count.
            Fault::Late => {
                tokio::time::sleep(CALL_TIMEOUT * 2).await;
                answer
            }
            Fault::None | Fault::Refuse(_) => answer,
        }
    }
}

#[async_trait]
impl VmProvider for FaultyCloud {
    async fn create(&self, request: &CreateVm) -> Result<VmInfo, CallError> {
        let fault = self.fault(true);
        match fault {
            Fault::Refuse(class) => {
                return Err(CallError {
                    class,
                    message: format!("the cloud refused ({class:?})"),
                });
            }
            Fault::Hang => std::future::pending::<()>().await,
            _ => {}
        }
        let vm = {
            let mut cloud = self.lock();
            match cloud.by_key.get(&request.idempotency_key).cloned() {
                // As GCP answers a repeated request id: the VM the first made.
                Some(name) => cloud.vms.get(&name).cloned().unwrap_or(VmInfo {
                    name,
                    labels: request.labels.clone(),
                    state: VmState::Terminated,
                }),
                None => {
                    let vm = VmInfo {
                        name: request.name.clone(),
                        labels: request.labels.clone(),
                        state: VmState::Running,
                    };
                    cloud
                        .by_key
                        .insert(request.idempotency_key.clone(), request.name.clone());
                    cloud.vms.insert(request.name.clone(), vm.clone());
                    let label = |k: &str| request.labels.get(k).cloned().unwrap_or_default();
                    cloud.made.push((
                        label(sp_managers::provider::RUN_LABEL),
                        label(sp_managers::provider::ATTEMPT_LABEL),
                        request.name.clone(),
                    ));
                    vm
                }
            }
        };
        FaultyCloud::after(fault, Ok(())).await.map(|()| vm)
    }

    async fn delete(&self, name: &str) -> Result<(), CallError> {
        let fault = self.fault(true);
        match fault {
            Fault::Refuse(class) => {
                return Err(CallError {
                    class,
                    message: format!("the cloud refused to delete {name} ({class:?})"),
                });
            }
            Fault::Hang => std::future::pending::<()>().await,
            _ => {}
        }
        self.lock().vms.remove(name);
        FaultyCloud::after(fault, Ok(())).await
    }

    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<VmInfo>, CallError> {
        if self.fault(false) != Fault::None
            && self.dice.lock().map(|mut d| d.chance(30)).unwrap_or(false)
        {
            return Err(CallError::retryable("listing failed"));
        }
        Ok(self
            .lock()
            .vms
            .values()
            .filter(|vm| labels.iter().all(|(k, v)| vm.label(k) == Some(v.as_str())))
            .cloned()
            .collect())
    }
}

/// One running "process": projectors and managers under one lease.
struct Process {
    /// Its own connections: a crash closes them, as the OS would, so a
    /// transaction it left open is rolled back.
    db: Database,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    lost: CancellationToken,
}

impl Process {
    async fn start(
        url: &str,
        options: &sp_eventstore::DbOptions,
        cloud: &Arc<FaultyCloud>,
        clock: &Arc<ManualClock>,
    ) -> Process {
        let db = &Database::open(url, options)
            .await
            .expect("open the database");
        let stop = CancellationToken::new();
        let (changes, _) = broadcast::channel::<Change>(4096);
        let mut tasks = Vec::new();
        let projector = Projector::new(sp_projections::standard(), db.clone(), changes.clone());
        let applying = stop.clone();
        tasks.push(tokio::spawn(async move { projector.run(applying).await }));
        let leadership = sp_eventstore::lease::acquire(
            db,
            sp_eventstore::lease::Role::Managers,
            "harness",
            &stop,
        )
        .await
        .expect("the lease");
        let keys = RunnerKeys::load_or_create(db).await.expect("runner keys");
        let managers = Managers::new(
            db.clone(),
            cloud.clone(),
            config(),
            changes,
            clock.clone(),
            sp_managers::Lead {
                fence: leadership.fence.clone(),
                health: Health::default(),
                keys,
            },
        );
        tasks.extend(managers.spawn_all(&stop));
        Process {
            db: db.clone(),
            stop,
            tasks,
            lost: leadership.lost,
        }
    }

    /// Kill it: every task stopped where it is (detached work may still be
    /// under way, as in a process that has not quite died; the fence keeps
    /// it from landing).
    async fn crash(self) {
        self.stop.cancel();
        self.lost.cancel();
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        self.db.close().await;
    }
}

/// Each cloud call's timeout, in real time: hangs end here.
const CALL_TIMEOUT: Duration = Duration::from_millis(150);

/// Real time the managers get to react to a step.
const SETTLE: Duration = Duration::from_millis(20);

fn config() -> ManagersConfig {
    ManagersConfig {
        platforms: vec![Platform::new("linux").expect("a platform")],
        capacity: BTreeMap::new(),
        default_capacity: 2,
        policy: policy(),
        public_url: "http://127.0.0.1:9".into(),
        vm_create: CallPolicy::new(CALL_TIMEOUT, 2)
            .backoff(Duration::from_millis(5), Duration::from_millis(20)),
        vm_delete: CallPolicy::new(CALL_TIMEOUT, 2)
            .backoff(Duration::from_millis(5), Duration::from_millis(20)),
        reconcile_every: Duration::from_millis(100),
        artifacts: ArtifactSource::None,
        github: None,
        status_context: "CI - {platform}".into(),
        pull_request_comments: false,
        check_runs: false,
        tick: Duration::from_millis(10),
        vm_delete_pauses: (Duration::from_millis(10), Duration::from_millis(100)),
        metrics: sp_managers::Metrics::default(),
        retention: None,
    }
}

/// Short limits, so that a run's whole life (retries included) fits in
/// minutes of virtual time.
fn policy() -> Policy {
    let mut p = Policy::default();
    let minutes = chrono::Duration::minutes;
    p.deadlines.artifact_wait = minutes(10);
    p.deadlines.queue_wait = minutes(10);
    p.deadlines.vm_create = minutes(3);
    p.deadlines.boot = minutes(3);
    p.deadlines.boot_by_platform.clear();
    p.deadlines.heartbeat = minutes(3);
    p.deadlines.whole_run = minutes(15);
    p.retry.base_delay = chrono::Duration::seconds(10);
    p.retry.quota_base_delay = chrono::Duration::seconds(30);
    p.retry.max_delay = minutes(2);
    p.retry.vm_delete_attempts = 5;
    p
}

fn queue(seed: u64, n: u64) -> (RunId, RunCommand) {
    let run_id = RunId::derived(&format!("harness-{seed}-{n}"));
    let command = RunCommand::Queue(QueueRun {
        run_id,
        repository: "CCExtractor/ccextractor".into(),
        commit_sha: format!("{:040x}", u128::from(seed) << 8 | u128::from(n)),
        platform: Platform::new("linux").expect("a platform"),
        trigger: Trigger::Push {
            branch: "master".into(),
        },
        priority: 0,
        tests: vec![],
        delivery_id: None,
        ancestry: Default::default(),
    });
    (run_id, command)
}

/// What a seed did, for the summary.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub runs: usize,
    pub events: usize,
    pub crashes: usize,
    pub vms_made: usize,
    pub abandoned: usize,
    pub completed: usize,
}

async fn states(store: &dyn EventStore, runs: &[RunId]) -> Result<Vec<(RunId, RunState)>, String> {
    let streams: Vec<String> = runs.iter().map(RunId::stream).collect();
    let read = store
        .read_streams(&streams)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for ((id, stream), events) in runs.iter().zip(&streams).zip(&read) {
        let loaded = Handler::<RunState>::fold(stream, events).map_err(|e| e.to_string())?;
        let finals = events
            .iter()
            .filter(|e| {
                matches!(
                    e.event_type.as_str(),
                    "Completed" | "Failed" | "Cancelled" | "Superseded"
                )
            })
            .count();
        if finals > 1 {
            return Err(format!("run {id} has {finals} final events"));
        }
        let mut requested = std::collections::HashSet::new();
        for e in events.iter().filter(|e| e.event_type == "VmRequested") {
            let attempt = e.data.to_value()["attempt"].as_u64().unwrap_or(0);
            if !requested.insert(attempt) {
                return Err(format!("run {id} requested two VMs for attempt {attempt}"));
            }
        }
        if !loaded.state.is_final() && loaded.state.deadline().is_none() {
            return Err(format!("run {id} is not final and has no deadline"));
        }
        out.push((*id, loaded.state));
    }
    Ok(out)
}

/// What must hold at every moment.
async fn check_always(
    store: &dyn EventStore,
    runs: &[RunId],
    cloud: &FaultyCloud,
) -> Result<(), String> {
    states(store, runs).await?;
    let mut per_attempt: HashMap<(String, String), Vec<String>> = HashMap::new();
    for (run, attempt, name) in cloud.made() {
        per_attempt.entry((run, attempt)).or_default().push(name);
    }
    if let Some(((run, attempt), names)) = per_attempt.iter().find(|(_, n)| n.len() > 1) {
        return Err(format!(
            "the cloud made {} VMs for run {run} attempt {attempt}: {names:?}",
            names.len()
        ));
    }
    Ok(())
}

/// Run one seed on a fresh database; `Err` says which invariant broke.
pub async fn run_seed(backend: Backend, seed: u64) -> Result<Outcome, String> {
    let test_db = TestDb::new(backend).await;
    // Few connections per pool: seeds run side by side on one server.
    let options = sp_eventstore::DbOptions {
        max_connections: 4,
        ..test_db.options().clone()
    };
    let db = Database::open(&test_db.url, &options)
        .await
        .map_err(|e| e.to_string())?;
    let outcome = drive(&db, &test_db.url, &options, seed).await;
    // Closed explicitly: work a crashed process left hanging still holds
    // clones of the pool.
    db.close().await;
    drop(test_db);
    outcome
}

/// The steps of one seed, in virtual time.
async fn drive(
    db: &Database,
    url: &str,
    options: &sp_eventstore::DbOptions,
    seed: u64,
) -> Result<Outcome, String> {
    let db = db.clone();
    let mut dice = Dice::new(seed);
    let cloud = Arc::new(FaultyCloud::new(seed));
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let runner_side = Handler::<RunState>::new(db.store.clone(), policy(), clock.clone());
    let mut outcome = Outcome::default();
    let mut runs = Vec::new();
    let mut process = Process::start(url, options, &cloud, &clock).await;
    let steps = 6 + dice.below(12);
    for step in 0..steps {
        match dice.below(100) {
            0..=19 => {
                let (run, command) = queue(seed, runs.len() as u64);
                runner_side
                    .execute(&run.stream(), &command, &Envelope::new("github:harness"))
                    .await
                    .map_err(|e| format!("step {step}: queue: {e}"))?;
                runs.push(run);
            }
            20..=29 => {
                process.crash().await;
                outcome.crashes += 1;
                process = Process::start(url, options, &cloud, &clock).await;
            }
            30..=44 => finish_some(&runner_side, &db, &runs, &mut dice).await,
            _ => {}
        }
        // The platform's time moves on (up to a few minutes: deadlines fire,
        // backoffs end), and the managers get a moment to act on it.
        clock.advance(chrono::Duration::seconds(dice.below(240) as i64));
        tokio::time::sleep(SETTLE).await;
        check_always(&*db.store, &runs, &cloud)
            .await
            .map_err(|e| format!("after step {step}: {e}"))?;
        if std::env::var_os("SP_HARNESS_TRACE").is_some() {
            eprintln!("step {step} done at {}", clock.now());
        }
    }
    // Drain: the cloud behaves, time runs on until every run has ended and
    // its VMs are gone (or left to a person).
    cloud.faults(false);
    let mut settled = false;
    // Bounded in real time by what a loaded machine needs, not by a count
    // of the platform's minutes.
    for _ in 0..1500 {
        clock.advance(chrono::Duration::seconds(30));
        tokio::time::sleep(SETTLE).await;
        let all = states(&*db.store, &runs).await?;
        let open = all.iter().any(|(_, s)| {
            !s.is_final()
                || s.run.as_ref().is_some_and(|r| {
                    r.vms.values().any(|vm| {
                        !matches!(
                            vm.status,
                            sp_domain::VmStatus::Deleted | sp_domain::VmStatus::Abandoned
                        )
                    })
                })
        });
        if !open {
            settled = true;
            break;
        }
    }
    let all = states(&*db.store, &runs).await?;
    if !settled {
        let open: Vec<String> = all
            .iter()
            .filter(|(_, s)| !s.is_final())
            .map(|(id, s)| format!("{id} at {:?}", s.stage()))
            .collect();
        return Err(format!(
            "not settled after draining: runs still open {open:?}"
        ));
    }
    // Give reconciliation a few passes to find any VM no run accounts for.
    for _ in 0..10 {
        if cloud
            .existing()
            .iter()
            .all(|vm| abandoned_names(&all).contains(vm))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let abandoned = abandoned_names(&all);
    let leaked: Vec<String> = cloud
        .existing()
        .into_iter()
        .filter(|name| !abandoned.contains(name))
        .collect();
    if !leaked.is_empty() {
        return Err(format!(
            "VMs left in the cloud that no run left to a person: {leaked:?}"
        ));
    }
    check_always(&*db.store, &runs, &cloud).await?;
    // The read models equal a rebuild of the log. The process goes first
    // (its pool closed, so work it left running cannot append any more);
    // then projectors alone apply what is left, as after a restart.
    process.crash().await;
    let head = db.store.head_position().await.map_err(|e| e.to_string())?;
    let stop = CancellationToken::new();
    let (changes, _) = broadcast::channel::<Change>(64);
    let projector = Projector::new(sp_projections::standard(), db.clone(), changes.clone());
    let applying = stop.clone();
    let projectors: Vec<JoinHandle<()>> =
        vec![tokio::spawn(async move { projector.run(applying).await })];
    let projected = wait_projected(&db, head).await;
    stop.cancel();
    for p in projectors {
        let _ = p.await;
    }
    projected?;
    let live = crate::read_model_dump(&db).await;
    sp_projections::rebuild(&sp_projections::standard(), &db, |_, _| {})
        .await
        .map_err(|e| format!("rebuild: {e}"))?;
    let rebuilt = crate::read_model_dump(&db).await;
    if live != rebuilt {
        return Err("a rebuilt read model differs from the live one".into());
    }
    if std::env::var_os("SP_HARNESS_TRACE").is_some() {
        for run in &runs {
            let events = db
                .store
                .read_stream(&run.stream(), 1)
                .await
                .map_err(|e| e.to_string())?;
            let trail: Vec<String> = events
                .iter()
                .map(|e| format!("{}({})", e.event_type, e.metadata.actor))
                .collect();
            println!("run {run}: {}", trail.join(" "));
        }
    }
    outcome.runs = runs.len();
    outcome.events = sp_eventstore::testing::read_everything(&*db.store)
        .await
        .len();
    outcome.vms_made = cloud.made().len();
    outcome.abandoned = abandoned.len();
    outcome.completed = all
        .iter()
        .filter(|(_, s)| {
            matches!(
                s.run.as_ref().map(|r| &r.lifecycle),
                Some(sp_domain::Lifecycle::Final(
                    sp_domain::Final::Completed { .. }
                ))
            )
        })
        .count();
    Ok(outcome)
}

/// The VMs the runs left to a person.
fn abandoned_names(all: &[(RunId, RunState)]) -> Vec<String> {
    all.iter()
        .filter_map(|(_, s)| s.run.as_ref())
        .flat_map(|r| r.vms.iter())
        .filter(|(_, vm)| vm.status == sp_domain::VmStatus::Abandoned)
        .map(|(name, _)| name.clone())
        .collect()
}

/// Every standard read model has applied the log up to `head`.
async fn wait_projected(db: &Database, head: i64) -> Result<(), String> {
    if head == 0 {
        return Ok(());
    }
    // Up to half a minute: other seeds on the same server hold PostgreSQL's
    // transaction horizon back, and readers wait for it.
    for _ in 0..3000 {
        let done = crate::checkpoints(&db.pool).await;
        if done.len() == sp_projections::standard().len() && done.iter().all(|p| *p >= head) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("the read models did not reach position {head}"))
}

/// Play the runners of the started attempts: each reports, most finish.
async fn finish_some(runner: &Handler<RunState>, db: &Database, runs: &[RunId], dice: &mut Dice) {
    for run in runs {
        finish_one(runner, db, *run, dice).await;
    }
}

/// Play the runner of one started attempt: report, then finish.
async fn finish_one(runner: &Handler<RunState>, db: &Database, run: RunId, dice: &mut Dice) {
    let Ok(events) = db.store.read_stream(&run.stream(), 1).await else {
        return;
    };
    let Ok(loaded) = Handler::<RunState>::fold(&run.stream(), &events) else {
        return;
    };
    let Some(attempt) = loaded.state.run.as_ref().map(|r| r.attempt) else {
        return;
    };
    let created = events.iter().any(|e| {
        e.event_type == "VmCreated"
            && e.data.to_value()["attempt"].as_u64() == Some(u64::from(attempt))
    });
    if !created {
        return;
    }
    let envelope = || Envelope::new(format!("runner:{run}/{attempt}"));
    let _ = runner
        .execute(
            &run.stream(),
            &RunCommand::RecordProgress {
                attempt,
                stage: RunnerStage::Testing,
                message: String::new(),
                done: 0,
                total: 0,
            },
            &envelope(),
        )
        .await;
    if dice.chance(70) {
        let _ = runner
            .execute(&run.stream(), &RunCommand::Finish { attempt }, &envelope())
            .await;
    }
}

/// The longest one seed may take before it counts as hung. A PostgreSQL seed
/// takes 2 to 12 s alone, and once took over 60 s beside SQLite's seeds on two
/// cores; a true hang (the poisoned writer) never ends at all.
const SEED_LIMIT: Duration = Duration::from_secs(180);

/// Run `seeds` on `parallel` threads, each seed on a runtime of its own
/// (so nothing a crashed process left running outlives its seed) and a
/// database of its own; a seed that outlasts [`SEED_LIMIT`] fails as hung.
pub fn run_seeds(
    backend: Backend,
    seeds: std::ops::Range<u64>,
    parallel: usize,
) -> Vec<(u64, Result<Outcome, String>)> {
    let next = Arc::new(Mutex::new(seeds));
    let workers: Vec<_> = (0..parallel.max(1))
        .map(|_| {
            let next = next.clone();
            std::thread::spawn(move || {
                let mut done = Vec::new();
                loop {
                    let seed = next.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(seed) = seed else {
                        return done;
                    };
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    let outcome = match runtime {
                        Ok(rt) => rt.block_on(async {
                            tokio::time::timeout(SEED_LIMIT, run_seed(backend, seed))
                                .await
                                .unwrap_or_else(|_| {
                                    Err(format!("hung: not done after {} s", SEED_LIMIT.as_secs()))
                                })
                        }),
                        Err(e) => Err(format!("no runtime: {e}")),
                    };
                    done.push((seed, outcome));
                }
            })
        })
        .collect();
    let mut results: Vec<(u64, Result<Outcome, String>)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    results.sort_by_key(|(seed, _)| *seed);
    results
}

/// The command that replays a seed.
pub fn replay_command(backend: Backend, seed: u64) -> String {
    let backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    format!("cargo run --bin fault-harness -- --backend {backend} --seed {seed}")
}
