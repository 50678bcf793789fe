//! `sample-platform config show`: every effective setting, with where it
//! came from (default, the TOML file, an `SP_*` variable or a flag), secrets
//! masked. `serve --help` lists only what has a flag; this lists all.

use std::collections::BTreeMap;

use clap::CommandFactory;
use serde_json::Value;
use sp_eventstore::redact;

use crate::cli::Cli;
use crate::config::{GlobalArgs, ServeArgs, Settings};

/// Where an effective setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Default,
    File(String),
    Environment(String),
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {path}"),
            Source::Environment(name) => write!(f, "environment {name}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The settings as TOML-like lines, `key = value  # source`, in key order.
/// `command_line` is the process's arguments, to tell a flag from its
/// variable when clap merged both into one value.
pub fn show(
    global: &GlobalArgs,
    serve: &ServeArgs,
    command_line: &[String],
) -> anyhow::Result<String> {
    let settings = Settings::load(global, Some(serve))?;
    let effective = leaves(&serde_json::to_value(&settings)?);
    let from_file = match &global.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            let parsed: toml::Value = toml::from_str(&text)?;
            leaves(&serde_json::to_value(parsed)?)
        }
        None => BTreeMap::new(),
    };
    let mut given = leaves(&serde_json::to_value(global)?);
    given.extend(leaves(&serde_json::to_value(serve)?));
    let arguments = arguments();

    let width = effective.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in &effective {
        let source = if given.contains_key(key) {
            match arguments.get(key.as_str()) {
                Some((flag, _)) if flag_given(command_line, flag) => Source::Flag(flag.clone()),
                Some((_, Some(variable))) => Source::Environment(variable.clone()),
                Some((flag, None)) => Source::Flag(flag.clone()),
                None => Source::Default,
            }
        } else if from_file.contains_key(key) || covered_by(&from_file, key) {
            Source::File(
                global
                    .config
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
        } else {
            Source::Default
        };
        let shown = masked(key, value);
        out.push_str(&format!("{key:<width$} = {shown}  # {source}\n"));
    }
    Ok(out)
}

/// Every scalar and list of a JSON tree, by its dotted path; an empty
/// table and an unset value are leaves too, so they are listed.
fn leaves(value: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

/// Whether the file sets a table that holds `key` (a whole map written as
/// an inline table, say).
fn covered_by(file: &BTreeMap<String, Value>, key: &str) -> bool {
    file.keys().any(|k| key.starts_with(&format!("{k}.")))
}

/// Each setting that has a flag: its long flag and its variable.
fn arguments() -> BTreeMap<String, (String, Option<String>)> {
    let command = Cli::command();
    let serve = command
        .find_subcommand("serve")
        .cloned()
        .unwrap_or_else(|| clap::Command::new("serve"));
    command
        .get_arguments()
        .chain(serve.get_arguments())
        .filter_map(|arg| {
            let long = arg.get_long()?;
            Some((
                arg.get_id().as_str().to_string(),
                (
                    format!("--{long}"),
                    arg.get_env().map(|e| e.to_string_lossy().into_owned()),
                ),
            ))
        })
        .collect()
}

fn flag_given(command_line: &[String], flag: &str) -> bool {
    command_line
        .iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// A value as TOML writes it, with secrets hidden: whether one is set shows,
/// never what it is.
fn masked(key: &str, value: &Value) -> String {
    let secret = key.ends_with("secret") || key.ends_with("token");
    match value {
        Value::Null => "(not set)".to_string(),
        Value::String(_) if secret => "\"***\"".to_string(),
        Value::String(s) if key == "database_url" => format!("{:?}", redact(s)),
        // A script is shown by its first line: the rest would bury the list.
        Value::String(s) if s.trim_end().contains('\n') => format!(
            "{:?} … ({} lines)",
            s.lines().next().unwrap_or_default(),
            s.lines().count()
        ),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_a_password_in_a_url_too() {
        assert_eq!(
            masked("github_token", &Value::String("ghp_x".into())),
            "\"***\""
        );
        assert_eq!(
            masked("github_webhook_secret", &Value::String("s".into())),
            "\"***\""
        );
        assert_eq!(
            masked(
                "database_url",
                &Value::String("postgres://u:pw@h/db".into())
            ),
            "\"postgres://u:***@h/db\""
        );
        assert_eq!(masked("listen", &Value::String("x".into())), "\"x\"");
    }
}
