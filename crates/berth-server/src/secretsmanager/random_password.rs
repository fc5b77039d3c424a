//! GetRandomPassword: a password from the OS random source, of the character classes the
//! caller keeps.

use super::{authorize, invalid_parameter};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};

const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// GetRandomPassword's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRandomPasswordRequest {
    pub password_length: Option<i64>,
    pub exclude_characters: Option<String>,
    pub exclude_numbers: Option<bool>,
    pub exclude_punctuation: Option<bool>,
    pub exclude_uppercase: Option<bool>,
    pub exclude_lowercase: Option<bool>,
    pub include_space: Option<bool>,
    pub require_each_included_type: Option<bool>,
}

/// GetRandomPassword's answer.
// No Debug: it holds a password.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRandomPasswordResponse {
    pub random_password: String,
}

/// The character classes a request keeps, each without the excluded characters.
fn classes(input: &GetRandomPasswordRequest) -> Vec<Vec<char>> {
    let excluded = input.exclude_characters.clone().unwrap_or_default();
    let wanted: [(bool, String); 5] = [
        (
            !input.exclude_lowercase.unwrap_or(false),
            ('a'..='z').collect(),
        ),
        (
            !input.exclude_uppercase.unwrap_or(false),
            ('A'..='Z').collect(),
        ),
        (
            !input.exclude_numbers.unwrap_or(false),
            ('0'..='9').collect(),
        ),
        (
            !input.exclude_punctuation.unwrap_or(false),
            PUNCTUATION.to_string(),
        ),
        (input.include_space.unwrap_or(false), " ".to_string()),
    ];
    wanted
        .into_iter()
        .filter(|(keep, _)| *keep)
        .map(|(_, chars)| {
            chars
                .chars()
                .filter(|c| !excluded.contains(*c))
                .collect::<Vec<char>>()
        })
        .filter(|chars| !chars.is_empty())
        .collect()
}

/// A uniformly random index below `n` (rejection sampling, so no class is favoured).
fn random_below(n: usize) -> Result<usize, ApiError> {
    let n = u32::try_from(n).map_err(|_| ApiError::server("too many characters"))?;
    let zone = u32::MAX - u32::MAX % n;
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes)
            .map_err(|e| ApiError::server(format!("the OS random source failed: {e}")))?;
        let value = u32::from_le_bytes(bytes);
        if value < zone {
            return Ok((value % n) as usize);
        }
    }
}

/// GetRandomPassword: `PasswordLength` (32 by default) random characters of the kept
/// classes, with at least one of each unless `RequireEachIncludedType` is false.
pub async fn get_random_password(
    ctx: Ctx,
    input: GetRandomPasswordRequest,
) -> Result<GetRandomPasswordResponse, ApiError> {
    authorize(&ctx, "GetRandomPassword", "*", &Vec::new())?;
    let length = input.password_length.unwrap_or(32);
    if !(1..=4096).contains(&length) {
        return Err(invalid_parameter(
            "PasswordLength must be between 1 and 4096.",
        ));
    }
    let length = length as usize;
    let classes = classes(&input);
    let alphabet: Vec<char> = classes.iter().flatten().copied().collect();
    if alphabet.is_empty() {
        return Err(invalid_parameter(
            "The password can't be generated: every character class is excluded.",
        ));
    }
    let require_each = input.require_each_included_type.unwrap_or(true);
    if require_each && length < classes.len() {
        return Err(invalid_parameter(format!(
            "PasswordLength {length} is too short to include each of the {} character types.",
            classes.len()
        )));
    }
    loop {
        let password = (0..length)
            .map(|_| random_below(alphabet.len()).map(|i| alphabet[i]))
            .collect::<Result<String, ApiError>>()?;
        let has_each = classes
            .iter()
            .all(|class| password.chars().any(|c| class.contains(&c)));
        if !require_each || has_each {
            return Ok(GetRandomPasswordResponse {
                random_password: password,
            });
        }
    }
}
