//! Reading a JSON request body the one way every endpoint does: exactly one
//! JSON value, no NUL character in any string (no backend can store one), and
//! a typed error that names the field when it is not what the endpoint takes.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;

/// Parse `body` as one `T`; `what` names it in the error ("report").
pub fn json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    let invalid = |message: String| ApiError::invalid(format!("invalid {what}: {message}"));
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: Value =
        serde::Deserialize::deserialize(&mut de).map_err(|e| invalid(e.to_string()))?;
    de.end()
        .map_err(|e| invalid(format!("more than one JSON value ({e})")))?;
    if let Some(path) = sp_eventstore::nul_path(&value) {
        return Err(invalid(format!("{path} contains a NUL character")));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            invalid(e.into_inner().to_string())
        } else {
            invalid(format!("{path}: {}", e.into_inner()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        message: String,
        n: u32,
    }

    fn refusal(body: &str) -> String {
        match json::<Body>(body.as_bytes(), "report") {
            Err(ApiError(e)) if e.kind == sp_commands::ErrorKind::InvalidInput => e.message,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn one_clean_value_of_the_right_shape_only() {
        assert!(json::<Body>(br#"{"message": "ok", "n": 1}"#, "report").is_ok());
        assert!(refusal(r#"{"message": "ok", "n": 1} {}"#).contains("more than one"));
        assert!(refusal(r#"{"message": "ok", "n": 1}x"#).contains("more than one"));
        assert!(refusal(r#"{"message": "a\u0000b", "n": 1}"#).contains("message contains a NUL"));
        assert!(refusal(r#"{"message": "ok", "n": "1"}"#).contains("n: invalid type"));
        assert!(refusal(r#"{"message": "ok"#).contains("invalid report"));
    }
}
