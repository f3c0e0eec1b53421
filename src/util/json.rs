//! JSON documents from callers, read strictly: a key given twice is an error
//! (serde_json would silently keep the last one, so `{"total_fee":1,
//! "total_fee":100000}` would mean whatever the last writer wanted).

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A JSON object whose top-level keys are all distinct.
struct UniqueObject(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut access: A,
            ) -> std::result::Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        let shown: String = key.chars().take(40).collect();
                        return Err(serde::de::Error::custom(format!(
                            "the key {shown:?} appears more than once"
                        )));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueObject(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Parses `text` as a JSON object with distinct top-level keys. A syntax
/// error is [`Error::InvalidJson`]; anything else (not an object, a key
/// twice) is `shape_error(reason)`.
pub(crate) fn unique_object(
    text: &str,
    document: &'static str,
    shape_error: impl FnOnce(String) -> Error,
) -> Result<Map<String, Value>> {
    match serde_json::from_str::<UniqueObject>(text) {
        Ok(UniqueObject(map)) => Ok(map),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Err(shape_error(e.to_string()))
        }
        Err(e) => Err(Error::InvalidJson {
            document,
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Map<String, Value>> {
        unique_object(text, "order", |reason| Error::order("order", reason))
    }

    #[test]
    fn duplicated_keys_are_refused() {
        assert!(parse(r#"{"a":1,"b":{"c":2}}"#).is_ok());
        let err = parse(r#"{"total_fee":1,"total_fee":100000}"#).expect_err("twice");
        assert!(
            matches!(&err, Error::InvalidOrder { reason, .. } if reason.contains("total_fee")),
            "{err}"
        );
        assert!(matches!(parse("[1]"), Err(Error::InvalidOrder { .. })));
        assert!(matches!(parse("{"), Err(Error::InvalidJson { .. })));
    }
}
