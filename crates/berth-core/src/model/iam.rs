//! IAM's stored records: users, roles, their inline policies and access keys. They are not
//! ECS wire shapes: the IAM handlers write IAM's XML from them. Names are unique without
//! regard to case, as in IAM: records are keyed by the lower-cased name and keep the name as
//! given.

use serde::{Deserialize, Serialize};

/// A tag of an IAM user or role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamTag {
    pub key: String,
    pub value: String,
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_name: String,
    /// `AIDA` and 16 characters.
    pub user_id: String,
    pub path: String,
    pub arn: String,
    /// Epoch seconds.
    pub create_date: f64,
    #[serde(default)]
    pub tags: Vec<IamTag>,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub role_name: String,
    /// `AROA` and 16 characters.
    pub role_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: f64,
    /// The trust policy, as given.
    pub assume_role_policy_document: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Longest session AssumeRole may grant, in seconds (3600 to 43200).
    pub max_session_duration: i64,
    #[serde(default)]
    pub tags: Vec<IamTag>,
}

/// An inline policy of a user or role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlinePolicy {
    /// The user's or role's name.
    pub owner: String,
    pub policy_name: String,
    /// The policy document as given (JSON).
    pub policy_document: String,
}

/// Whether an access key may sign requests (IAM's `statusType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    /// IAM's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
        }
    }
}

/// The stored metadata of an access key (IAM's `AccessKeyMetadata`, plus whose key it is).
/// Its secret is never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    pub access_key_id: String,
    /// The IAM user the key belongs to; `None` for the account's root user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    pub status: KeyStatus,
    /// Epoch seconds.
    pub create_date: f64,
}
