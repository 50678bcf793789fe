//! Every variant of every stored event family is written through the real
//! store and read back as the same event, on both backends; and the events
//! earlier builds stored (`tests/data/stored-events.json`) still decode; and
//! the audit log has a line a person can read for each.
//!
//! The fixture only grows: `SP_WRITE_EVENT_FIXTURE=1 cargo test -p sp-tests
//! --test event_codec` adds the types it lacks and never rewrites an entry,
//! so a renamed type leaves its old name behind to fail here.

use std::path::PathBuf;

use sp_domain::summary::summarize;
use sp_eventstore::testing::TestDb;
use sp_eventstore::{ExpectedVersion, Metadata, NewEvent};
use sp_tests::Backend;
use sp_tests::events::{StoredShape, families};

async fn every_variant_is_read_back_as_written(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store();
    for family in families() {
        family.check_covered();
        let events: Vec<NewEvent> = family
            .encoded
            .iter()
            .map(|e| NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                data: e.data.clone(),
                metadata: Metadata::new("test:codec", uuid::Uuid::now_v7()),
            })
            .collect();
        store
            .append(family.stream, ExpectedVersion::NoStream, &events)
            .await
            .unwrap_or_else(|e| panic!("{}: append: {e}", family.name));
        let read = store
            .read_stream(family.stream, 1)
            .await
            .expect("read the stream");
        assert_eq!(read.len(), family.encoded.len(), "{}", family.name);
        for (stored, written) in read.into_iter().zip(&family.encoded) {
            let again = (family.reencode)(
                &stored.event_type,
                stored.schema_version,
                stored.data.as_str(),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "{} {} does not decode: {e}",
                    family.name, written.event_type
                )
            });
            assert_eq!(
                (&again.event_type, again.schema_version, &again.data),
                (&written.event_type, written.schema_version, &written.data),
                "{} {} reads back as something else",
                family.name,
                written.event_type
            );
        }
    }
}

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/stored-events.json")
}

fn fixture() -> Vec<StoredShape> {
    let text = std::fs::read_to_string(fixture_path()).expect("the stored-events fixture");
    serde_json::from_str(&text).expect("the fixture is a JSON array of stored events")
}

#[test]
fn events_stored_by_earlier_builds_still_decode() {
    let mut stored = fixture();
    let families = families();
    if std::env::var_os("SP_WRITE_EVENT_FIXTURE").is_some() {
        for f in &families {
            for e in &f.encoded {
                let known = stored
                    .iter()
                    .any(|s| s.family == e.family && s.event_type == e.event_type);
                if !known {
                    stored.push(e.clone());
                }
            }
        }
        let text = serde_json::to_string_pretty(&stored).expect("JSON");
        std::fs::write(fixture_path(), text + "\n").expect("write the fixture");
    }
    for s in &stored {
        let family = families
            .iter()
            .find(|f| f.name == s.family)
            .unwrap_or_else(|| panic!("the fixture names an unknown family {:?}", s.family));
        let again = (family.reencode)(&s.event_type, s.schema_version, &s.data.to_string())
            .unwrap_or_else(|e| {
                panic!(
                    "a stored {} {} no longer decodes: {e}",
                    s.family, s.event_type
                )
            });
        assert_eq!(
            again.event_type, s.event_type,
            "a stored {} {} is written back under another name",
            s.family, s.event_type
        );
    }
    // Every type today's code writes is in the fixture, so it is checked by
    // the next build that changes it.
    for f in &families {
        for e in &f.encoded {
            assert!(
                stored
                    .iter()
                    .any(|s| s.family == e.family && s.event_type == e.event_type),
                "{} {} is missing from tests/data/stored-events.json; \
                 run with SP_WRITE_EVENT_FIXTURE=1 to add it",
                e.family,
                e.event_type
            );
        }
    }
}

sp_tests::on_both_backends!(every_variant_is_read_back_as_written);

/// The audit log's line for every variant of every family reads the event:
/// none is "cannot be read" or "on a stream this build does not know".
#[test]
fn every_variant_has_a_summary_a_person_can_read() {
    for family in families() {
        for shape in &family.encoded {
            let summary = summarize(
                family.stream,
                &shape.event_type,
                shape.schema_version,
                &shape.data.to_string(),
            );
            assert!(
                !summary.line.contains("cannot be read")
                    && !summary.line.contains("does not know")
                    && !summary.line.is_empty(),
                "{} {}: {summary:?}",
                family.name,
                shape.event_type
            );
        }
    }
}
