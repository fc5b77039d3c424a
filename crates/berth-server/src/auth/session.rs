//! Temporary credentials (STS AssumeRole): an `ASIA` access key id, a secret derived like any
//! other, and a session token that carries the session (role, session name, expiry) and the
//! server's MAC over it. Nothing is stored: the token proves itself, and a role deleted or
//! re-created under the same name ends its sessions (the role id no longer matches).

use super::keys::KeyRing;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The temporary access key id the token goes with.
    #[serde(rename = "k")]
    pub access_key_id: String,
    #[serde(rename = "r")]
    pub role_name: String,
    #[serde(rename = "i")]
    pub role_id: String,
    #[serde(rename = "s")]
    pub session_name: String,
    /// Unix seconds after which the credentials are refused.
    #[serde(rename = "e")]
    pub expires: u64,
}

const CONTEXT: &[u8] = b"berth session token v1\0";

impl Session {
    /// The token of this session.
    pub fn token(&self, keys: &KeyRing) -> String {
        let payload = serde_json::to_vec(self).unwrap_or_default();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = engine.encode(&payload);
        let mac = keys.mac(&[CONTEXT, body.as_bytes()].concat());
        format!("{body}.{}", engine.encode(mac))
    }

    /// The session a token carries, if the server made it (expiry is the caller's to check).
    pub fn from_token(token: &str, keys: &KeyRing) -> Option<Session> {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (body, mac) = token.split_once('.')?;
        let expected = engine.encode(keys.mac(&[CONTEXT, body.as_bytes()].concat()));
        if !berth_core::sigv4::constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return None;
        }
        serde_json::from_slice(&engine.decode(body).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_proves_its_session_and_nothing_else_passes() {
        let keys = KeyRing::open(None).expect("keys");
        let session = Session {
            access_key_id: "ASIAEXAMPLE".into(),
            role_name: "deployer".into(),
            role_id: "AROAEXAMPLE".into(),
            session_name: "ci".into(),
            expires: 1_800_000_000,
        };
        let token = session.token(&keys);
        assert_eq!(Session::from_token(&token, &keys), Some(session.clone()));
        let other = KeyRing::open(None).expect("other keys");
        assert_eq!(
            Session::from_token(&token, &other),
            None,
            "another server's token"
        );
        let forged = Session {
            expires: 1_900_000_000,
            ..session
        }
        .token(&other);
        let (body, _) = forged.split_once('.').expect("body");
        let (_, mac) = token.split_once('.').expect("mac");
        assert_eq!(Session::from_token(&format!("{body}.{mac}"), &keys), None);
        assert_eq!(Session::from_token("garbage", &keys), None);
    }
}
