//! The dashboard in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs), driven over WebDriver: a run
//! appears live in the list, is followed to its results, its failing output's
//! diff is opened and accepted, and the run again passes. A failed step saves
//! a screenshot under `target/browser-failures/`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use sp_tests::{Backend, TestPlatform, demo_runner};

const RUNNER: &str = env!("CARGO_BIN_EXE_sample-runner");
/// Long enough for a run on a busy 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver: install Debian's chromium and chromium-driver (.ci/run does)");
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn browser(&self) -> Client {
        let mut options = serde_json::json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-extensions", "--no-first-run",
                "--window-size=1280,1024"
            ]
        });
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = "/usr/bin/chromium".into();
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        // Prompts are answered by the test; never dismissed behind its back.
        capabilities.insert("unhandledPromptBehavior".into(), "ignore".into());
        let mut last = String::new();
        for _ in 0..50 {
            // Plain HTTP to chromedriver on loopback: no TLS to set up.
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return client,
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("chromedriver did not start a browser: {last}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's state for a failure message, and a screenshot on disk.
async fn evidence(browser: &Client, name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("browser-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}.png"));
    let saved = match browser.screenshot().await {
        Ok(png) => std::fs::write(&path, png).map(|()| path.display().to_string()),
        Err(e) => Ok(format!("no screenshot: {e}")),
    }
    .unwrap_or_else(|e| format!("no screenshot: {e}"));
    let url = browser
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let message = browser
        .find(Locator::Css("#message"))
        .await
        .ok()
        .map(|m| async move { m.text().await.unwrap_or_default() });
    let message = match message {
        Some(m) => m.await,
        None => String::new(),
    };
    format!("at {url}; message: {message:?}; screenshot: {saved}")
}

/// One step of the walk; on failure, the evidence.
struct Walk<'a> {
    browser: &'a Client,
    name: &'static str,
}

impl Walk<'_> {
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .browser
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!(
                "{css} never appeared ({e}) {}",
                evidence(self.browser, self.name).await
            ),
        }
    }

    /// Live pages re-render: an element found a moment ago may be replaced
    /// before the click lands (a stale reference), so find it again and
    /// retry until the click lands or patience runs out.
    async fn click(&self, css: &str) {
        let start = std::time::Instant::now();
        loop {
            let error = match self.element(css).await.click().await {
                Ok(()) => return,
                Err(e) => e,
            };
            if start.elapsed() > PATIENCE {
                panic!(
                    "cannot click {css}: {error} {}",
                    evidence(self.browser, self.name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element's rendered text, found again if it went stale.
    async fn text(&self, css: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            match self.element(css).await.text().await {
                Ok(text) => return text,
                Err(e) if start.elapsed() > PATIENCE => panic!(
                    "cannot read {css}: {e} {}",
                    evidence(self.browser, self.name).await
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Wait for `css`'s text to be `expected`, in any case: the page's
    /// style may capitalise it and WebDriver reports the rendered text.
    async fn text_becomes(&self, css: &str, expected: &str) {
        self.text_until(css, &format!("read {expected:?}"), |t| {
            t.trim().eq_ignore_ascii_case(expected)
        })
        .await;
    }

    /// Wait for `css`'s text to contain `part`.
    async fn text_contains(&self, css: &str, part: &str) {
        self.text_until(css, &format!("held {part:?}"), |t| t.contains(part))
            .await;
    }

    /// Wait until `css`'s text passes `done`; `what` says what it never did.
    async fn text_until(&self, css: &str, what: &str, done: impl Fn(&str) -> bool) {
        let start = std::time::Instant::now();
        loop {
            if done(&self.text(css).await) {
                return;
            }
            if start.elapsed() > PATIENCE {
                panic!(
                    "{css} never {what} {}",
                    evidence(self.browser, self.name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Answer the prompt the last click opened.
    async fn answer_prompt(&self, text: &str) {
        let start = std::time::Instant::now();
        while self.browser.get_alert_text().await.is_err() {
            if start.elapsed() > PATIENCE {
                panic!(
                    "no prompt opened {}",
                    evidence(self.browser, self.name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.browser
            .send_alert_text(text)
            .await
            .expect("type into the prompt");
        self.browser
            .accept_alert()
            .await
            .expect("accept the prompt");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintainer_follows_a_run_opens_its_diff_accepts_it_and_sees_the_rerun_pass() {
    // Retention keeps the files of the last run of each branch only.
    let p = TestPlatform::start_with(Backend::Sqlite, |s| {
        let mut s = demo_runner(RUNNER)(s);
        let last_only = sp_domain::retention::Rule {
            after_days: 0,
            keep_last: 1,
        };
        s.retention.every_secs = 1;
        s.retention.logs = Some(last_only);
        s.retention.outputs = Some(last_only);
        s
    })
    .await;
    let token = p.token("alice", &["operate", "catalogue"]).await;
    let driver = Driver::start();
    let browser = driver.browser().await;
    let walk = Walk {
        browser: &browser,
        name: "maintainer",
    };

    // The runs list is open before the run exists: it arrives live.
    browser.goto(&format!("{}/", p.base)).await.expect("open /");
    walk.element("#app table, #app .empty, #app p").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let run = p.push("browser-1", '7').await;
    walk.element(&format!("tr[data-run-id=\"{run}\"]")).await;

    // Followed to its results.
    walk.click(&format!("tr[data-run-id=\"{run}\"] a[data-link=\"run\"]"))
        .await;
    walk.element("#run[data-status=\"COMPLETED\"]").await;
    walk.text_becomes("#verdict", "fail").await;
    // Completed, yet its tests failed: the page leads with a red "fail".
    walk.text_becomes(".run-head h1 .badge.o-fail", "fail")
        .await;
    walk.element("#results tr[data-test-id=\"upper-fox\"][data-passed=\"false\"]")
        .await;
    walk.element("#results tr[data-test-id=\"upper-hello\"][data-passed=\"true\"]")
        .await;
    // Failures first, each test once.
    walk.element("#results tbody tr:first-child[data-test-id=\"upper-fox\"]")
        .await;
    // The first run of the repository has nothing to be compared with, and
    // says so rather than passing for good news.
    walk.text_contains("#comparison .classes", "3 no reference")
        .await;
    // Its standard error's last lines and the command that reproduces it
    // beside the failure.
    walk.text_contains(
        "#results tr[data-detail-for=\"upper-fox\"] .stderr-tail pre",
        "4 words, upper-cased",
    )
    .await;
    walk.text_becomes(
        "#results tr[data-detail-for=\"upper-fox\"] .reproduce code",
        "mkdir -p out && cd out && '../ccextractor' '../fox.txt' '.'",
    )
    .await;

    // The diff: the old baseline's line against today's.
    walk.click("button[data-action=\"diff\"][data-test-id=\"upper-fox\"]")
        .await;
    let deleted = walk.text("#diff td.del").await;
    let inserted = walk.text("#diff td.ins").await;
    assert!(
        deleted.contains("F0X") && inserted.contains("FOX"),
        "expected F0X → FOX, got {deleted:?} → {inserted:?} {}",
        evidence(&browser, "diff").await
    );
    // Within the line, only the changed character is marked.
    assert_eq!(walk.text("#diff td.del mark").await, "0");
    assert_eq!(walk.text("#diff td.ins mark").await, "O");

    // With a token, accept today's output as a variant and run again.
    let field = walk.element("#token").await;
    field.send_keys(&token).await.expect("type the token");
    walk.click("#save-token").await;
    walk.click("button[data-action=\"diff\"][data-test-id=\"upper-fox\"]")
        .await;
    walk.click("#diff button[data-action=\"accept-variant\"]")
        .await;
    walk.answer_prompt("the F0X typo is fixed").await;
    let start = std::time::Instant::now();
    while !walk
        .text("#message")
        .await
        .to_lowercase()
        .contains("accept")
    {
        if start.elapsed() > PATIENCE {
            panic!(
                "no confirmation of the acceptance {}",
                evidence(&browser, "accept").await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The page says so: the output is marked accepted and its buttons are gone.
    walk.text_becomes(
        "#results tr[data-test-id=\"upper-fox\"] .badge.accepted",
        "accepted",
    )
    .await;
    walk.element("#diff #accepted-now").await;
    let buttons = browser
        .find_all(fantoccini::Locator::Css(
            "#diff button[data-action^=\"accept\"]",
        ))
        .await
        .expect("find");
    assert!(buttons.is_empty(), "no accept buttons after the acceptance");
    walk.click("button[data-action=\"rerun\"]").await;
    walk.click("a[data-link=\"new-run\"]").await;
    walk.element("#run[data-status=\"COMPLETED\"]").await;
    walk.text_becomes("#verdict", "pass").await;
    walk.text_becomes(".run-head h1 .badge.o-pass", "pass")
        .await;
    walk.element("#results tr[data-test-id=\"upper-fox\"][data-passed=\"true\"]")
        .await;
    // Against the commit's first run, the rerun fixed upper-fox.
    walk.text_contains("#comparison .classes", "1 fixed here")
        .await;
    walk.text_becomes("#results tr[data-test-id=\"upper-fox\"] .change", "fixed")
        .await;

    // The list, filtered to failed runs, shows the first run and not the rerun.
    browser
        .goto(&format!("{}/?outcome=fail", p.base))
        .await
        .expect("open the failed runs");
    walk.text_becomes(
        &format!("tr[data-run-id=\"{run}\"] td[data-field=\"outcome\"]"),
        "fail",
    )
    .await;
    let rows = browser
        .find_all(fantoccini::Locator::Css("#runs-body tr"))
        .await
        .expect("the runs");
    assert_eq!(rows.len(), 1, "only the failed run is listed");

    // The same commit failed, then passed once its output was accepted:
    // judged by two definitions of the test, that is not flaky.
    let history = p
        .query(
            "{ testHistory(testId: \"upper-fox\") { entries { passed } flaky { commitSha } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        history["testHistory"]["entries"].as_array().map(Vec::len),
        Some(2),
        "{history}"
    );
    assert_eq!(
        history["testHistory"]["flaky"],
        serde_json::json!([]),
        "{history}"
    );

    // The acceptance is in the catalogue's record, naming who and why.
    let events =
        p.db.database
            .store
            .read_stream("catalogue", 1)
            .await
            .expect("catalogue stream");
    let accepted = events
        .iter()
        .find(|e| e.event_type == "OutputAccepted")
        .expect("an OutputAccepted event");
    let data = accepted.data.to_value();
    assert_eq!(data["reason"], "the F0X typo is fixed");
    assert_eq!(data["run_id"], run.as_str());
    assert_eq!(accepted.metadata.actor, "user:alice");

    // The test's page says who accepted what, from which run, and why.
    browser
        .goto(&format!("{}/tests/upper-fox", p.base))
        .await
        .expect("open the test");
    let accepted_row = "#baseline-list tr[data-event-type=\"OutputAccepted\"]";
    walk.text_contains(accepted_row, "the F0X typo is fixed")
        .await;
    walk.text_contains(accepted_row, "user:alice").await;
    walk.text_contains(accepted_row, "accepted as a variant")
        .await;
    walk.element(&format!("{accepted_row} a[href=\"/runs/{run}\"]"))
        .await;

    // The Audit page: every stream, filtered by who.
    walk.click("a[data-nav=\"audit\"]").await;
    walk.element("#audit-body tr[data-event-type=\"TokenCreated\"]")
        .await;
    walk.element("#audit-body tr[data-event-type=\"DeliveryHandled\"]")
        .await;
    let actor = walk.element("#filter input[name=\"actor\"]").await;
    actor.send_keys("user:alice").await.expect("type the actor");
    walk.click("#filter button[type=\"submit\"]").await;
    walk.element("#audit-body tr[data-event-type=\"OutputAccepted\"]")
        .await;
    let rows = browser
        .find_all(fantoccini::Locator::Css("#audit-body tr"))
        .await
        .expect("the entries");
    for row in rows {
        assert!(
            row.text().await.unwrap_or_default().contains("user:alice"),
            "only alice's events {}",
            evidence(&browser, "audit-actor").await
        );
    }

    // A run's trail leads to the request behind each event, and to the run
    // as it was just after it.
    browser
        .goto(&format!("{}/runs/{run}", p.base))
        .await
        .expect("open the run");
    walk.click("#audit li[data-event-type=\"Queued\"] a[data-link=\"as-of\"]")
        .await;
    walk.element("#as-of").await;
    walk.text_becomes(".run-head h1 .badge.o-queued", "queued")
        .await;
    walk.element("#audit li.here[data-event-type=\"Queued\"]")
        .await;
    walk.element("#audit li.later[data-event-type=\"Completed\"]")
        .await;
    // A later push on master: the first run is no longer master's last, so
    // retention deletes its files, and its page says so rather than
    // offering broken links. (The rerun, a manual run, is a line of its own.)
    let later = p.push("browser-2", '8').await;
    p.until(&later, "Completed").await;
    sp_tests::eventually("retention deletes the first run's logs", || async {
        let events =
            p.db.database
                .store
                .read_stream("retention", 1)
                .await
                .expect("the retention stream");
        events
            .iter()
            .any(|e| {
                let d = e.data.to_value();
                d["run"] == run.as_str() && d["kind"] == "log"
            })
            .then_some(())
    })
    .await;
    p.caught_up().await;
    browser
        .goto(&format!("{}/runs/{run}", p.base))
        .await
        .expect("open the run");
    walk.text_contains(
        "#files #retention p[data-kind=\"LOG\"]",
        "Deleted by retention",
    )
    .await;
    walk.click("#audit li[data-event-type=\"Queued\"] a[data-link=\"as-of\"]")
        .await;
    walk.click("#audit li[data-event-type=\"Queued\"] .links a[href^=\"/audit?correlationId=\"]")
        .await;
    walk.element("#audit-body tr[data-event-type=\"DeliveryHandled\"]")
        .await;
    walk.element("#audit-body tr[data-event-type=\"Queued\"]")
        .await;
    let _ = browser.close().await;
}

/// A long queue is read a page at a time: 50 waiting runs first, then the
/// next ones on request, numbered on from where the page ended; each run's
/// short id tells it apart from runs queued the same minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_queue_is_read_a_page_at_a_time() {
    let p = TestPlatform::start(Backend::Sqlite).await;
    let token = p.token("olga", &["operate"]).await;
    for i in 0..60u64 {
        let r = p
            .graphql(
                "mutation($s: String!) { enqueueRun(repository: \"CCExtractor/ccextractor\", commitSha: $s, platforms: [\"linux\"]) }",
                serde_json::json!({ "s": format!("{:040x}", 0xfeed_0000_u64 + i) }),
                Some(&token),
            )
            .await;
        assert!(r.get("errors").is_none(), "{r}");
    }
    p.caught_up().await;
    let driver = Driver::start();
    let browser = driver.browser().await;
    let walk = Walk {
        browser: &browser,
        name: "queue-pages",
    };
    browser
        .goto(&format!("{}/queue", p.base))
        .await
        .expect("open /queue");
    let linux = "section[data-platform=\"linux\"]";
    let more = format!("{linux} button[data-action=\"more\"]");
    // The page re-renders live: read what it shows in one script each time
    // rather than through element references that may go stale.
    let shown = || async {
        let script = "return [...document.querySelectorAll(arguments[0])].map(r => [r.cells[0].textContent.trim(), r.querySelector('a').textContent.trim()]);";
        let rows = browser
            .execute(
                script,
                vec![serde_json::json!(format!("{linux} table.queue tbody tr"))],
            )
            .await
            .unwrap_or_default();
        serde_json::from_value::<Vec<(String, String)>>(rows).unwrap_or_default()
    };
    walk.element(&more).await;
    let first = shown().await;
    assert_eq!(
        first.len(),
        50,
        "the first page {}",
        evidence(&browser, "queue-pages").await
    );
    let counts = walk.text(&format!("{linux} .counts")).await;
    assert!(counts.starts_with("60 waiting"), "{counts}");
    let mut tags: Vec<&String> = first.iter().map(|(_, tag)| tag).collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), 50, "every run's short id differs: {tags:?}");

    walk.click(&more).await;
    let start = std::time::Instant::now();
    let all = loop {
        let rows = shown().await;
        if rows.len() == 60 {
            break rows;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the next page never came: {} rows {}",
            rows.len(),
            evidence(&browser, "queue-pages").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let positions: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<String> = (1..=60).map(|n| n.to_string()).collect();
    assert_eq!(positions, expected, "positions carry on across pages");
    let buttons = browser.find_all(Locator::Css(&more)).await.expect("find");
    assert!(buttons.is_empty(), "nothing more to show");
    let _ = browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_pauses_a_platform_and_cancels_a_run_from_the_pages() {
    // No process managers: the runs stay queued for the operator to act on.
    let p = TestPlatform::start(Backend::Sqlite).await;
    let token = p.token("olga", &["operate"]).await;
    let run = p.push("browser-ops", '8').await;
    let driver = Driver::start();
    let browser = driver.browser().await;
    let walk = Walk {
        browser: &browser,
        name: "operator",
    };

    // Without a token the page is for reading: its operator buttons are hidden.
    browser
        .goto(&format!("{}/queue", p.base))
        .await
        .expect("open /queue");
    let pause = walk
        .element("section[data-platform=\"linux\"] button[data-action=\"pause\"]")
        .await;
    assert!(
        !pause.is_displayed().await.unwrap_or(true),
        "no token, no pause button {}",
        evidence(&browser, "operator").await
    );

    // With one, pause linux for maintenance.
    let field = walk.element("#token").await;
    field.send_keys(&token).await.expect("type the token");
    walk.click("#save-token").await;
    walk.click("section[data-platform=\"linux\"] button[data-action=\"pause\"]")
        .await;
    walk.answer_prompt("image upgrade").await;
    walk.element("section[data-platform=\"linux\"] button[data-action=\"resume\"]")
        .await;
    p.caught_up().await;
    let queue = p
        .query(
            "{ queue(platform: \"linux\") { paused maintenanceNote } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        queue["queue"][0],
        serde_json::json!({ "paused": true, "maintenanceNote": "image upgrade" })
    );

    // Cancel a waiting run from its page; the page says why it ended.
    browser
        .goto(&format!("{}/runs/{run}", p.base))
        .await
        .expect("open the run");
    walk.element("#run[data-status=\"QUEUED\"]").await;
    walk.click("button[data-action=\"cancel\"]").await;
    walk.answer_prompt("wrong commit").await;
    walk.element("#run[data-status=\"CANCELLED\"]").await;
    let page = walk.text("#run").await;
    assert!(
        page.contains("wrong commit"),
        "the reason is on the page: {page} {}",
        evidence(&browser, "operator").await
    );
    let events = p.run_events(&run).await;
    let (_, cancelled) = events
        .iter()
        .find(|(t, _)| t == "Cancelled")
        .expect("a Cancelled event");
    assert!(
        cancelled.to_string().contains("wrong commit"),
        "{cancelled}"
    );
    p.caught_up().await;
    let trail = p
        .query(
            "query($id: ID!) { auditTrail(runId: $id) { type metadata { actor } } }",
            serde_json::json!({ "id": run }),
        )
        .await;
    let actor = trail["auditTrail"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["type"] == "Cancelled")
        .map(|e| e["metadata"]["actor"].clone());
    assert_eq!(actor, Some(serde_json::json!("user:olga")));
    let _ = browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_run_page_follows_the_run_live_to_its_verdict() {
    let p = TestPlatform::start_with(Backend::Sqlite, demo_runner(RUNNER)).await;
    let operator = p.token("olga", &["operate"]).await;
    // An earlier run of the platform gives its tests' runtimes.
    let earlier = p.push("browser-earlier", '8').await;
    p.until(&earlier, "Completed").await;
    // Held in the queue while the page is opened.
    let paused = p
        .graphql(
            "mutation { pausePlatform(platform: \"linux\", note: \"hold\") }",
            serde_json::json!({}),
            Some(&operator),
        )
        .await;
    assert_eq!(paused["data"]["pausePlatform"], true, "{paused}");
    let run = p.push("browser-live", '9').await;
    let driver = Driver::start();
    let browser = driver.browser().await;
    let walk = Walk {
        browser: &browser,
        name: "live",
    };
    browser
        .goto(&format!("{}/runs/{run}", p.base))
        .await
        .expect("open the run");
    walk.element("#run[data-status=\"QUEUED\"]").await;
    // How long it will take, from the earlier run's runtimes.
    walk.text_contains("#eta", "testing takes about").await;

    // Released behind the page's back: the page is never reloaded, and
    // still ends on the verdict and the results.
    let resumed = p
        .graphql(
            "mutation { resumePlatform(platform: \"linux\", note: \"go\") }",
            serde_json::json!({}),
            Some(&operator),
        )
        .await;
    assert_eq!(resumed["data"]["resumePlatform"], true, "{resumed}");
    walk.element("#run[data-status=\"COMPLETED\"]").await;
    walk.text_becomes("#verdict", "fail").await;
    walk.element("#results tr[data-test-id=\"upper-fox\"][data-passed=\"false\"]")
        .await;

    // GraphiQL, with nothing from outside this platform (the test machine
    // has no internet: a CDN script would leave the page blank).
    let walk = Walk {
        browser: &browser,
        name: "graphiql",
    };
    browser
        .goto(&format!("{}/graphql", p.base))
        .await
        .expect("open GraphiQL");
    walk.element(".graphiql-container .graphiql-query-editor")
        .await;
    // Its documentation comes from the schema's introspection, which the
    // query limits must let through.
    walk.click(".graphiql-sidebar button").await;
    walk.element(".graphiql-doc-explorer-root-type").await;
    let outside = browser
        .execute(
            "return Array.from(document.querySelectorAll('script[src], link[href]'))
                 .map(e => e.src || e.href)
                 .filter(u => !u.startsWith(location.origin) && !u.startsWith('data:'));",
            vec![],
        )
        .await
        .expect("list the page's sources");
    assert_eq!(
        outside,
        serde_json::json!([]),
        "GraphiQL loads only from here"
    );
    let _ = browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintainer_signs_in_with_github_pauses_a_platform_and_signs_out() {
    let github = sp_tests::fake_github::FakeGithub::start().await;
    let p = TestPlatform::start_with(Backend::Sqlite, |s| {
        sp_tests::people::with_sign_in(s, &github, &["root"])
    })
    .await;
    let root = sp_tests::people::sign_in(&p, &github, "root", 1).await;
    root.set_role(&p, "maria", "maintainer").await;
    github.oauth.sign_in("maria", 7);
    let driver = Driver::start();
    let browser = driver.browser().await;
    let walk = Walk {
        browser: &browser,
        name: "sign-in",
    };

    // Signed out, the queue page offers to sign in and no operator button.
    browser
        .goto(&format!("{}/queue", p.base))
        .await
        .expect("open /queue");
    let pause = "section[data-platform=\"linux\"] button[data-action=\"pause\"]";
    assert!(
        !walk
            .element(pause)
            .await
            .is_displayed()
            .await
            .unwrap_or(true),
        "signed out, no pause button {}",
        evidence(&browser, "sign-in").await
    );
    // Through GitHub's pages and back to the queue, signed in.
    walk.click("#sign-in").await;
    walk.text_contains("#signed-in", "Signed in as @maria (maintainer)")
        .await;
    assert!(
        browser
            .current_url()
            .await
            .is_ok_and(|u| u.path() == "/queue"),
        "back where the sign-in started {}",
        evidence(&browser, "sign-in").await
    );
    // Her mutation carries the session's CSRF token: pause linux.
    walk.click(pause).await;
    walk.answer_prompt("image upgrade").await;
    walk.element("section[data-platform=\"linux\"] button[data-action=\"resume\"]")
        .await;
    p.caught_up().await;
    let audit = p
        .query(
            "{ auditLog(filter: {types: [\"PlatformPaused\"]}) { nodes { metadata { actor } } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        audit["auditLog"]["nodes"][0]["metadata"]["actor"], "github:maria",
        "{audit}"
    );
    // Signing out: back to reading, with the offer to sign in.
    walk.click("#sign-out").await;
    walk.element("#sign-in").await;
    assert!(
        !walk
            .element("section[data-platform=\"linux\"] button[data-action=\"resume\"]")
            .await
            .is_displayed()
            .await
            .unwrap_or(true),
        "signed out, no operator button {}",
        evidence(&browser, "sign-in").await
    );
    browser.close().await.ok();
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contributor_signs_in_and_queues_a_custom_run_of_their_fork() {
    let github = sp_tests::fake_github::FakeGithub::start().await;
    github.add_repository(sp_tests::github::REPO, None);
    github.add_repository("carol/ccextractor", Some(sp_tests::github::REPO));
    // The demo catalogue, without process managers: the run stays queued.
    let p = TestPlatform::start_with(Backend::Sqlite, |s| {
        let mut s = sp_tests::people::with_sign_in(demo_runner(RUNNER)(s), &github, &["root"]);
        s.managers = false;
        s
    })
    .await;
    let root = sp_tests::people::sign_in(&p, &github, "root", 1).await;
    root.set_role(&p, "carol", "contributor").await;
    github.oauth.sign_in("carol", 3);
    let driver = Driver::start();
    let browser = driver.browser().await;
    let walk = Walk {
        browser: &browser,
        name: "custom-run",
    };
    browser.goto(&p.base).await.expect("open the runs");
    walk.click("#sign-in").await;
    walk.text_contains("#signed-in", "@carol (contributor)")
        .await;
    walk.click("#custom-run summary").await;
    for (field, value) in [
        ("repository", "carol/ccextractor"),
        ("commitSha", "cccccccccccccccccccccccccccccccccccccccc"),
        ("platforms", "linux"),
        ("tests", "upper-hello, upper-fox"),
    ] {
        walk.element(&format!("#custom-form input[name=\"{field}\"]"))
            .await
            .send_keys(value)
            .await
            .expect("type");
    }
    walk.click("#custom-form button[type=\"submit\"]").await;
    // Its page says whose it is and what it runs.
    walk.text_contains("main", "custom run by @carol").await;
    walk.text_contains("main", "carol/ccextractor").await;
    let url = browser.current_url().await.expect("url");
    let run = url.path().trim_start_matches("/runs/").to_string();
    let queued = p
        .query(
            "query($id: ID!) { run(id: $id) { trigger requestedBy samplesTotal } }",
            serde_json::json!({ "id": run }),
        )
        .await;
    assert_eq!(
        queued["run"],
        serde_json::json!({ "trigger": "custom", "requestedBy": "carol", "samplesTotal": 2 }),
        "{}",
        evidence(&browser, "custom-run").await
    );
    // The runs list says it too.
    browser.goto(&p.base).await.expect("runs");
    walk.text_contains("#runs-body", "custom run by @carol")
        .await;
    browser.close().await.ok();
    p.stop().await;
}
