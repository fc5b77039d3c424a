//! The typed persistence layer: objects stored as JSON under their keys, read back with the
//! revision needed to update them under compare-on-revision.

use crate::{KeyValue, Result, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An object read from the store with the revision of its last write.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    /// The key's `mod_revision`: pass it to `Compare::at` to update the object safely.
    pub mod_revision: u64,
}

/// Decodes a stored JSON value.
pub fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<Versioned<T>> {
    let value = serde_json::from_slice(&kv.value).map_err(|e| StoreError::Decode {
        key: kv.key.clone(),
        message: e.to_string(),
    })?;
    Ok(Versioned {
        value,
        mod_revision: kv.mod_revision,
    })
}

/// Encodes an object as stored JSON.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("domain objects always serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips_with_revision() {
        let kv = KeyValue {
            key: "/x".into(),
            value: encode(&vec!["a".to_string()]),
            create_revision: 1,
            mod_revision: 7,
            version: 1,
        };
        let decoded: Versioned<Vec<String>> = decode(&kv).expect("decodes");
        assert_eq!(decoded.value, vec!["a".to_string()]);
        assert_eq!(decoded.mod_revision, 7);
    }

    #[test]
    fn undecodable_values_name_their_key() {
        let kv = KeyValue {
            key: "/bad".into(),
            value: b"not json".to_vec(),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
        };
        let err = decode::<Vec<String>>(&kv).expect_err("fails");
        assert!(err.to_string().contains("/bad"));
    }
}
