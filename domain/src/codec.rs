//! The stored shape of domain events: a type name, a schema version and JSON data.
//!
//! The stored shape is not the Rust enum: when an event's shape changes, its
//! schema version goes up by one and an [`Upcaster`] turns the old JSON into
//! the new before it is deserialized. Events are never rewritten in the log.

use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, IntoDeserializer,
    VariantAccess, Visitor,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::run::RunEvent;

/// An event ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub event_type: &'static str,
    pub schema_version: u32,
    pub data: Value,
}

/// Turns data of `event_type` at schema version `from` into version `from + 1`.
#[derive(Debug, Clone, Copy)]
pub struct Upcaster {
    pub event_type: &'static str,
    pub from: u32,
    pub upcast: fn(Map<String, Value>) -> Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("{event_type} data is not a JSON object")]
    NotAnObject { event_type: String },
    #[error("{event_type} has schema version {version}, newer than this build knows ({known})")]
    FromTheFuture {
        event_type: String,
        version: u32,
        known: u32,
    },
    #[error("{event_type} version {version}: {message}")]
    Invalid {
        event_type: String,
        version: u32,
        message: String,
    },
}

/// A family of events stored through this codec.
///
/// The enum must keep serde's default (externally tagged) representation and
/// derive `strum::IntoStaticStr` and `strum::EnumCount`, with no renames:
/// serde's variant name, the stored type name
/// and [`EventSchema::type_name`] are then all the variant's name, so what is
/// written under one name can never be read back expecting another. `encode`
/// refuses to disagree with serde all the same (see the every-variant test in
/// `tests/tests/event_codec.rs`).
pub trait EventSchema: Serialize + DeserializeOwned + strum::EnumCount {
    /// The stored type name: the variant's name, as `strum::IntoStaticStr` gives it.
    fn type_name(&self) -> &'static str;

    /// The upcasters of this family, oldest first per type.
    fn upcasters() -> &'static [Upcaster] {
        &[]
    }

    /// A type's current schema version: one more than its upcasters.
    fn schema_version(event_type: &str) -> u32 {
        let upcasts = Self::upcasters()
            .iter()
            .filter(|u| u.event_type == event_type)
            .count();
        1 + u32::try_from(upcasts).unwrap_or(u32::MAX - 1)
    }

    fn encode(&self) -> EncodedEvent {
        let event_type = self.type_name();
        // Serde writes a variant as `{"Name": {data}}`: the log keeps the
        // name and the data apart.
        let data = match serde_json::to_value(self) {
            Ok(Value::Object(variant)) if variant.len() == 1 => {
                let (name, data) = variant.into_iter().next().unwrap_or_default();
                debug_assert_eq!(
                    name, event_type,
                    "serde's variant name and the stored type name must agree"
                );
                match data {
                    Value::Object(data) => data,
                    // Every variant holds a struct, so this cannot happen; keep the data anyway.
                    other => Map::from_iter([("value".to_string(), other)]),
                }
            }
            Ok(other) => Map::from_iter([("value".to_string(), other)]),
            Err(e) => Map::from_iter([("encode_error".to_string(), Value::String(e.to_string()))]),
        };
        EncodedEvent {
            event_type,
            schema_version: Self::schema_version(event_type),
            data: Value::Object(data),
        }
    }

    /// Reads stored JSON text. Data at the current schema version is
    /// deserialized straight from the text (no JSON tree in between: this is
    /// the read models' and the command handlers' hot path); older data is
    /// upcast as a tree first.
    fn decode(event_type: &str, schema_version: u32, data: &str) -> Result<Self, DecodeError> {
        let known = Self::schema_version(event_type);
        if schema_version > known {
            return Err(DecodeError::FromTheFuture {
                event_type: event_type.to_string(),
                version: schema_version,
                known,
            });
        }
        if !data.trim_start().starts_with('{') {
            return Err(DecodeError::NotAnObject {
                event_type: event_type.to_string(),
            });
        }
        let invalid = |e: serde_json::Error| DecodeError::Invalid {
            event_type: event_type.to_string(),
            version: schema_version,
            message: e.to_string(),
        };
        if schema_version == known {
            let mut text = serde_json::Deserializer::from_str(data);
            let event = Self::deserialize(Variant {
                name: event_type,
                data: &mut text,
            })
            .map_err(invalid)?;
            text.end().map_err(invalid)?;
            return Ok(event);
        }
        let mut map: Map<String, Value> = serde_json::from_str(data).map_err(invalid)?;
        for version in schema_version..known {
            if let Some(u) = Self::upcasters()
                .iter()
                .find(|u| u.event_type == event_type && u.from == version)
            {
                map = (u.upcast)(map);
            }
        }
        Self::deserialize(Variant {
            name: event_type,
            data: Value::Object(map),
        })
        .map_err(invalid)
    }
}

/// A stored event as serde's enum derive reads it: the stored type name
/// picks the variant and the data is the variant's content, so no `type`
/// field has to be spliced into the data (and buffered) to find the variant.
struct Variant<'a, D> {
    name: &'a str,
    data: D,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Variant<'_, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, D: Deserializer<'de>> EnumAccess<'de> for Variant<'_, D> {
    type Error = D::Error;
    type Variant = VariantData<D>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantData<D>), D::Error> {
        let name = seed.deserialize(IntoDeserializer::<D::Error>::into_deserializer(self.name))?;
        Ok((name, VariantData(self.data)))
    }
}

struct VariantData<D>(D);

impl<'de, D: Deserializer<'de>> VariantAccess<'de> for VariantData<D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        IgnoredAny::deserialize(self.0).map(|_| ())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, D::Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct("", fields, visitor)
    }
}

impl EventSchema for RunEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }

    fn upcasters() -> &'static [Upcaster] {
        &[Upcaster {
            event_type: "Queued",
            from: 1,
            upcast: queued_v1_to_v2,
        }]
    }
}

/// Queued v1 called the commit `commit`; v2 says `commit_sha`, as GitHub does.
fn queued_v1_to_v2(mut data: Map<String, Value>) -> Map<String, Value> {
    if let Some(commit) = data.remove("commit") {
        data.insert("commit_sha".to_string(), commit);
    }
    data
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn queued_v1_with_the_old_field_name_is_read() {
        let v1 = json!({
            "at": "2026-11-01T10:00:00Z",
            "run_id": "6f2d3a7e-0000-4000-8000-000000000001",
            "repository": "CCExtractor/ccextractor",
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "platform": "linux",
            "trigger": {"kind": "push", "branch": "master"},
            "deadline": {"at": "2026-11-01T11:00:00Z", "kind": "artifact_wait"}
        });
        let event = RunEvent::decode("Queued", 1, &v1.to_string()).expect("v1 upcasts");
        let RunEvent::Queued(q) = &event else {
            panic!("decoded {event:?}")
        };
        assert_eq!(q.commit_sha, "0123456789abcdef0123456789abcdef01234567");
        let encoded = event.encode();
        assert_eq!(encoded.schema_version, 2);
        assert!(encoded.data.get("commit").is_none());
        assert_eq!(
            RunEvent::decode("Queued", 2, &encoded.data.to_string()).expect("v2 reads"),
            event
        );
    }

    #[test]
    fn unknown_future_versions_and_garbage_are_typed_errors() {
        assert!(matches!(
            RunEvent::decode("Queued", 3, &json!({}).to_string()),
            Err(DecodeError::FromTheFuture { .. })
        ));
        assert!(matches!(
            RunEvent::decode("Cancelled", 1, &json!([1]).to_string()),
            Err(DecodeError::NotAnObject { .. })
        ));
        assert!(matches!(
            RunEvent::decode("NoSuchEvent", 1, &json!({}).to_string()),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(matches!(
            RunEvent::decode("Cancelled", 1, &json!({"at": "yesterday"}).to_string()),
            Err(DecodeError::Invalid { .. })
        ));
        // Straight from the text: what follows the object is refused too.
        let cancelled = json!({"at": "2026-11-01T10:00:00Z", "reason": "r"});
        assert!(RunEvent::decode("Cancelled", 1, &cancelled.to_string()).is_ok());
        assert!(matches!(
            RunEvent::decode("Cancelled", 1, &format!("{cancelled} x")),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
