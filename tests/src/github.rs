//! Webhook payloads in the shape GitHub documents for each event (a subset of
//! the fields GitHub sends, with the same structure and types).

use serde_json::{Value, json};

pub const REPO: &str = "CCExtractor/ccextractor";

fn user(login: &str) -> Value {
    json!({
        "login": login,
        "id": 1000 + login.len(),
        "node_id": "MDQ6VXNlcjE=",
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", login.len()),
        "html_url": format!("https://github.com/{login}"),
        "type": "User",
        "site_admin": false
    })
}

fn repository() -> Value {
    let (owner, name) = REPO.split_once('/').unwrap_or((REPO, REPO));
    json!({
        "id": 2_453_641,
        "node_id": "MDEwOlJlcG9zaXRvcnkyNDUzNjQx",
        "name": name,
        "full_name": REPO,
        "private": false,
        "owner": user(owner),
        "html_url": format!("https://github.com/{REPO}"),
        "fork": false,
        "url": format!("https://api.github.com/repos/{REPO}"),
        "created_at": "2012-09-26T15:12:29Z",
        "updated_at": "2026-11-29T08:00:00Z",
        "pushed_at": "2026-11-30T09:00:00Z",
        "default_branch": "master",
        "visibility": "public"
    })
}

/// A 40-hex-digit SHA made of one repeated digit.
pub fn sha(digit: char) -> String {
    digit.to_string().repeat(40)
}

pub fn push(branch: &str, before: &str, after: &str, pusher: &str) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": before,
        "after": after,
        "created": false,
        "deleted": after.chars().all(|c| c == '0'),
        "forced": false,
        "base_ref": null,
        "compare": format!("https://github.com/{REPO}/compare/{}...{}", &before[..12], &after[..12]),
        "commits": [{
            "id": after,
            "tree_id": sha('e'),
            "distinct": true,
            "message": "Fix the 608 decoder",
            "timestamp": "2026-11-30T09:00:00Z",
            "author": { "name": pusher, "email": format!("{pusher}@example.com"), "username": pusher },
            "committer": { "name": pusher, "email": format!("{pusher}@example.com"), "username": pusher },
            "added": [], "removed": [], "modified": ["src/lib_ccx/ccx_decoders_608.c"]
        }],
        "head_commit": null,
        "repository": repository(),
        "pusher": { "name": pusher, "email": format!("{pusher}@example.com") },
        "sender": user(pusher)
    })
}

/// A `pull_request` delivery; `updated_at` as GitHub gives it (RFC 3339).
pub fn pull_request(
    action: &str,
    number: u64,
    head_sha: &str,
    updated_at: &str,
    author: &str,
) -> Value {
    json!({
        "action": action,
        "number": number,
        "pull_request": {
            "url": format!("https://api.github.com/repos/{REPO}/pulls/{number}"),
            "id": 279_147_437 + number,
            "node_id": "MDExOlB1bGxSZXF1ZXN0Mjc5MTQ3NDM3",
            "html_url": format!("https://github.com/{REPO}/pull/{number}"),
            "number": number,
            "state": if action == "closed" { "closed" } else { "open" },
            "locked": false,
            "title": "Improve the teletext decoder",
            "user": user(author),
            "body": "Fixes the dropped characters.",
            "created_at": "2026-11-30T08:00:00Z",
            "updated_at": updated_at,
            "closed_at": if action == "closed" { Value::String(updated_at.into()) } else { Value::Null },
            "merged_at": null,
            "draft": false,
            "head": {
                "label": format!("{author}:feature"),
                "ref": "feature",
                "sha": head_sha,
                "user": user(author),
                "repo": repository()
            },
            "base": {
                "label": "CCExtractor:master",
                "ref": "master",
                "sha": sha('f'),
                "user": user("CCExtractor"),
                "repo": repository()
            },
            "merged": false,
            "commits": 1,
            "additions": 10,
            "deletions": 2,
            "changed_files": 1
        },
        "before": if action == "synchronize" { Value::String(sha('0')) } else { Value::Null },
        "after": if action == "synchronize" { Value::String(head_sha.into()) } else { Value::Null },
        "repository": repository(),
        "sender": user(author)
    })
}

pub fn workflow_run(action: &str, run_id: u64, head_sha: &str, conclusion: Option<&str>) -> Value {
    json!({
        "action": action,
        "workflow_run": {
            "id": run_id,
            "name": "Build CCExtractor on Linux",
            "node_id": "WFR_kwLOABCD",
            "head_branch": "master",
            "head_sha": head_sha,
            "run_number": 4211,
            "event": "push",
            "status": if action == "completed" { "completed" } else { "in_progress" },
            "conclusion": conclusion,
            "workflow_id": 1_234_567,
            "html_url": format!("https://github.com/{REPO}/actions/runs/{run_id}"),
            "created_at": "2026-11-30T09:00:00Z",
            "updated_at": "2026-11-30T09:10:00Z",
            "artifacts_url": format!("https://api.github.com/repos/{REPO}/actions/runs/{run_id}/artifacts"),
            "repository": repository()
        },
        "workflow": { "id": 1_234_567, "name": "Build CCExtractor on Linux", "path": ".github/workflows/build_linux.yml" },
        "repository": repository(),
        "sender": user("github-actions")
    })
}

pub fn ping() -> Value {
    json!({
        "zen": "Keep it logically awesome.",
        "hook_id": 123_456,
        "hook": { "type": "Repository", "id": 123_456, "active": true, "events": ["push", "pull_request", "workflow_run"] },
        "repository": repository(),
        "sender": user("octocat")
    })
}

/// `payload`, a `pull_request` delivery, onto base commit `base_sha`.
pub fn onto(mut payload: Value, base_sha: &str) -> Value {
    payload["pull_request"]["base"]["sha"] = Value::String(base_sha.into());
    payload
}

/// A `check_run` delivery: `action` on check run `external_id` (the
/// platform's run id) of commit `head_sha`, pressed by `sender`.
pub fn check_run(action: &str, external_id: &str, head_sha: &str, sender: &str) -> Value {
    json!({
        "action": action,
        "check_run": {
            "id": 7_000_001,
            "name": "CI - linux",
            "node_id": "CR_kwDOABCD",
            "head_sha": head_sha,
            "external_id": external_id,
            "status": "completed",
            "conclusion": "failure",
            "started_at": "2026-11-30T09:00:00Z",
            "completed_at": "2026-11-30T09:10:00Z",
            "check_suite": { "id": 8_000_001, "head_sha": head_sha },
            "app": { "id": 777, "slug": "sample-platform" },
            "pull_requests": []
        },
        "requested_action": null,
        "repository": repository(),
        "sender": user(sender)
    })
}

/// A `check_suite` delivery: `action` on the suite of commit `head_sha`.
pub fn check_suite(action: &str, head_sha: &str, sender: &str) -> Value {
    json!({
        "action": action,
        "check_suite": {
            "id": 8_000_001,
            "head_branch": "master",
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": "failure",
            "app": { "id": 777, "slug": "sample-platform" },
            "pull_requests": []
        },
        "repository": repository(),
        "sender": user(sender)
    })
}
