//! Tamper evidence: every event stores a hash of its content and of the event
//! before it in its stream, so an event edited, removed or moved behind the
//! platform's back breaks its stream's chain from there on.
//!
//! - The **content hash** is SHA-256 over the event's canonical JSON:
//!   `{"data":…,"event_id":…,"metadata":…,"recorded_at_us":…,"schema_version":…,"stream":…,"type":…}`,
//!   keys sorted at every depth, no spaces, integral numbers written as
//!   integers. Canonical because PostgreSQL's `jsonb` gives back neither the
//!   bytes nor the key order that were appended.
//! - The **link** is `SHA-256(previous link ‖ content hash)`; the first event
//!   of a stream follows [`GENESIS`] (32 zero bytes). The version is not in
//!   the content: it is the link's place in the chain.
//!
//! Appends compute links where the stream's last link is read, under the
//! same version check that orders writers (PostgreSQL: in the append
//! statement, `event_hash_chain`; SQLite: under the write lock), so a
//! stream has one chain however many write to it. [`Verifier`] walks a log
//! (the database's or an export) and names each stream's first broken link.
//!
//! What a chain cannot show: the last events of a stream removed together.
//! [`Verification::digest`] summarises every stream's head, for an auditor
//! to keep and compare with a later verification.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::StoreError;
use crate::model::Metadata;

/// A content hash or a link.
pub type Hash = [u8; 32];

/// What the first event of every stream follows.
pub const GENESIS: Hash = [0; 32];

/// The fields of an event its content hash covers.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    pub stream: &'a str,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub data: &'a Value,
    pub metadata: &'a Metadata,
    pub recorded_at: DateTime<Utc>,
}

impl Content<'_> {
    pub fn hash(&self) -> Hash {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"data\":");
        canonical(self.data, &mut out);
        out.extend_from_slice(b",\"event_id\":\"");
        out.extend_from_slice(self.event_id.hyphenated().to_string().as_bytes());
        out.extend_from_slice(b"\",\"metadata\":");
        // A struct's fields in a fixed order would do, but the same writer
        // for both keeps one definition of "canonical".
        canonical(
            &serde_json::to_value(self.metadata).unwrap_or(Value::Null),
            &mut out,
        );
        out.extend_from_slice(b",\"recorded_at_us\":");
        out.extend_from_slice(self.recorded_at.timestamp_micros().to_string().as_bytes());
        out.extend_from_slice(b",\"schema_version\":");
        out.extend_from_slice(self.schema_version.to_string().as_bytes());
        out.extend_from_slice(b",\"stream\":");
        canonical(&Value::String(self.stream.to_string()), &mut out);
        out.extend_from_slice(b",\"type\":");
        canonical(&Value::String(self.event_type.to_string()), &mut out);
        out.push(b'}');
        Sha256::digest(&out).into()
    }
}

/// The link after `previous` for an event whose content hash is `content`.
pub fn link(previous: &Hash, content: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(content);
    hasher.finalize().into()
}

/// `value` as canonical JSON: keys sorted by their bytes, no whitespace, and
/// every number in plain decimal digits (no exponent, no trailing zeros,
/// `-0` as `0`): `jsonb` keeps a number's decimal value, not its text, and
/// gives `1e17` back as `100000000000000000`, which reads as an integer.
pub fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            // serde_json's map is sorted already, unless a crate in the build
            // turns on its `preserve_order`: sort anyway.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(&Value::String(key.clone()), out);
                out.push(b':');
                canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        Value::Number(n) => out.extend_from_slice(plain_decimal(&n.to_string()).as_bytes()),
        _ => write_json(value, out),
    }
}

/// A JSON number's text (`-1.5e-7`, `1e17`, `100.0`) in plain decimal
/// digits: `-0.00000015`, `100000000000000000`, `100`.
fn plain_decimal(text: &str) -> String {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.trim_start_matches('+').parse::<i64>().unwrap_or(0)),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    // Where the decimal point falls in `digits`.
    let point = whole.len() as i64 + exponent;
    let (int, frac) = if point <= 0 {
        (
            String::new(),
            format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        let (i, f) = digits.split_at(point as usize);
        (i.to_string(), f.to_string())
    };
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let zero = int == "0" && frac.is_empty();
    let sign = if negative && !zero { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

fn write_json(value: &Value, out: &mut Vec<u8>) {
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// A link as a column holds it: NULL before the backfill, and 32 bytes.
pub(crate) fn stored(bytes: Option<Vec<u8>>, position: i64) -> Result<Option<Hash>, StoreError> {
    bytes
        .map(|b| {
            Hash::try_from(b.as_slice()).map_err(|_| StoreError::Corrupt {
                position,
                message: format!("a hash of {} bytes", b.len()),
            })
        })
        .transpose()
}

/// Why a link is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The stored link is not what the content and the link before give:
    /// this event or an earlier one of its stream was changed.
    Mismatch,
    /// The event has no link stored (written before chains, not migrated).
    Missing,
    /// The stream goes from one version to a later one than the next: events
    /// were removed (or the export is a window of the log).
    Gap { expected: u64 },
    /// A version again, or an earlier one, after version `after`: the log
    /// was reordered or an event copied.
    OutOfOrder { after: u64 },
}

/// A stream's first broken link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub stream: String,
    pub version: u64,
    pub position: i64,
    pub why: Break,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream {} version {} (position {}): ",
            self.stream, self.version, self.position
        )?;
        match self.why {
            Break::Mismatch => f.write_str(
                "its hash does not follow from its content and the event before it: \
                 this event or an earlier one of the stream was altered",
            ),
            Break::Missing => f.write_str("it has no hash (migrate the database)"),
            Break::Gap { expected } => write!(
                f,
                "version {expected} was due: events are missing (or the export is a window of the log)"
            ),
            Break::OutOfOrder { after } => write!(
                f,
                "it comes after version {after}: the log was reordered or an event copied"
            ),
        }
    }
}

/// Walks events in log order, stream by stream, recomputing every link.
#[derive(Debug, Default)]
pub struct Verifier {
    /// Each stream's last version and link; no link once it broke (a stream
    /// is reported once, at its first break).
    streams: HashMap<String, (u64, Option<Hash>)>,
    broken: Vec<BrokenLink>,
    events: u64,
}

/// The outcome of a [`Verifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub events: u64,
    pub streams: u64,
    /// Each broken stream's first broken link, in the order found.
    pub broken: Vec<BrokenLink>,
    /// SHA-256 over every stream's name, last version and last link, in
    /// stream order: two verifications of the same log agree on it, and a
    /// log that lost a stream's last events does not.
    pub digest: Hash,
}

impl Verifier {
    /// Check the next event of the log: its content hash (computed), and its
    /// stored link. Returns the link it should have (`None` past a break).
    pub fn check(
        &mut self,
        content: &Content<'_>,
        version: u64,
        position: i64,
        stored: Option<Hash>,
    ) -> Option<Hash> {
        self.events += 1;
        let (last_version, previous) = self
            .streams
            .get(content.stream)
            .cloned()
            .unwrap_or((0, Some(GENESIS)));
        let mut next = |why| {
            self.broken.push(BrokenLink {
                stream: content.stream.to_string(),
                version,
                position,
                why,
            });
            None
        };
        let expected = match previous {
            None => None,
            Some(_) if version <= last_version => next(Break::OutOfOrder {
                after: last_version,
            }),
            Some(_) if version != last_version + 1 => next(Break::Gap {
                expected: last_version + 1,
            }),
            Some(previous) => {
                let expected = link(&previous, &content.hash());
                match stored {
                    Some(stored) if stored == expected => Some(expected),
                    Some(_) => next(Break::Mismatch),
                    None => next(Break::Missing),
                }
            }
        };
        self.streams
            .insert(content.stream.to_string(), (version, expected));
        expected
    }

    pub fn finish(self) -> Verification {
        let mut heads: Vec<_> = self.streams.iter().collect();
        heads.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut digest = Sha256::new();
        for (stream, (version, head)) in heads {
            digest.update(stream.as_bytes());
            digest.update([0]);
            digest.update(version.to_be_bytes());
            digest.update(head.unwrap_or([0xff; 32]));
        }
        Verification {
            events: self.events,
            streams: self.streams.len() as u64,
            broken: self.broken,
            digest: digest.finalize().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(value: &Value) -> String {
        let mut out = Vec::new();
        canonical(value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_and_agrees_with_jsonb_numbers() {
        assert_eq!(
            text(&json!({"b": [1, {"z": true, "a": null}], "a": "é\"\n"})),
            r#"{"a":"é\"\n","b":[1,{"a":null,"z":true}]}"#
        );
        // What jsonb gives back for what serde_json wrote.
        let written = serde_json::json!([
            1e2,
            -0.0,
            1.5,
            1e17,
            1.152921504606847e18,
            1e-7,
            -2.5e-3,
            1e21
        ]);
        let read_back: Value = serde_json::from_str(
            "[100, 0.0, 1.5, 100000000000000000, 1152921504606847000, 0.0000001, -0.0025,
              1000000000000000000000]",
        )
        .unwrap();
        assert_eq!(text(&written), text(&read_back));
        assert_eq!(
            text(&written),
            "[100,0,1.5,100000000000000000,1152921504606847000,0.0000001,-0.0025,1000000000000000000000]"
        );
        assert_eq!(plain_decimal("-0"), "0");
        assert_eq!(plain_decimal("120"), "120");
        assert_eq!(plain_decimal("0.5"), "0.5");
    }

    #[test]
    fn a_verifier_names_the_first_broken_link_of_each_stream() {
        let metadata = Metadata::new("user:test", Uuid::nil());
        let data = [json!({"n": 1}), json!({"n": 2}), json!({"n": 3})];
        let at = DateTime::from_timestamp_micros(1_700_000_000_000_001).unwrap();
        let content = |stream, n: usize| Content {
            stream,
            event_id: Uuid::from_u128(n as u128),
            event_type: "Test",
            schema_version: 1,
            data: &data[n],
            metadata: &metadata,
            recorded_at: at,
        };
        // The chain an append would have stored.
        let mut links = vec![];
        let mut previous = GENESIS;
        for n in 0..3 {
            previous = link(&previous, &content("a", n).hash());
            links.push(previous);
        }
        let mut clean = Verifier::default();
        for (n, stored) in links.iter().enumerate() {
            clean.check(&content("a", n), n as u64 + 1, n as i64 + 1, Some(*stored));
        }
        let clean = clean.finish();
        assert!(clean.broken.is_empty());

        // Stream a's second event stored with other data; stream b loses
        // its second event.
        let mut verifier = Verifier::default();
        verifier.check(&content("a", 0), 1, 1, Some(links[0]));
        verifier.check(&content("a", 2), 2, 2, Some(links[1]));
        verifier.check(&content("a", 2), 3, 3, Some(links[2]));
        let b0 = link(&GENESIS, &content("b", 0).hash());
        verifier.check(&content("b", 0), 1, 4, Some(b0));
        verifier.check(&content("b", 2), 3, 5, None);
        let outcome = verifier.finish();
        assert_eq!(
            outcome.broken,
            vec![
                BrokenLink {
                    stream: "a".into(),
                    version: 2,
                    position: 2,
                    why: Break::Mismatch
                },
                BrokenLink {
                    stream: "b".into(),
                    version: 3,
                    position: 5,
                    why: Break::Gap { expected: 2 }
                },
            ]
        );
        assert_ne!(outcome.digest, clean.digest);
    }
}
