//! Task definition references as operations accept them: `family` (its latest ACTIVE
//! revision), `family:revision`, or the full task definition ARN.

use super::{client, Result};
use crate::arn::Arn;
use crate::names::{invalid_name_message, is_valid_name};

/// A reference to a task definition as operations accept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDefinitionRef {
    /// A bare family: its latest ACTIVE revision.
    Family(String),
    /// One revision of a family (`family:revision` or an ARN).
    Revision {
        /// The family name.
        family: String,
        /// The revision, from 1.
        revision: u32,
    },
}

impl TaskDefinitionRef {
    /// The family the reference names.
    pub fn family(&self) -> &str {
        match self {
            TaskDefinitionRef::Family(family) | TaskDefinitionRef::Revision { family, .. } => {
                family
            }
        }
    }
}

/// Parses `family`, `family:revision` or a task definition ARN.
pub fn parse_reference(text: &str) -> Result<TaskDefinitionRef> {
    let text = text.trim();
    if text.is_empty() {
        return Err(client(
            "The task definition is empty: give a family, family:revision or a task definition ARN.",
        ));
    }
    let short = if text.starts_with("arn:") {
        match Arn::parse(text) {
            Some(arn) if arn.resource_type == "task-definition" && arn.path.len() == 1 => {
                arn.path[0].clone()
            }
            _ => {
                return Err(client(format!(
                    "'{text}' is not a task definition ARN: expected arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>."
                )))
            }
        }
    } else {
        text.to_string()
    };
    let (family, revision) = match short.split_once(':') {
        Some((family, revision)) => (family, Some(revision)),
        None => (short.as_str(), None),
    };
    if !is_valid_name(family) {
        return Err(client(invalid_name_message(
            "Task definition family",
            family,
        )));
    }
    match revision {
        None => Ok(TaskDefinitionRef::Family(family.to_string())),
        Some(revision) => {
            let number = Some(revision)
                .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|r| r.parse::<u32>().ok())
                .filter(|n| (1..=i32::MAX as u32).contains(n));
            match number {
                Some(revision) => Ok(TaskDefinitionRef::Revision {
                    family: family.to_string(),
                    revision,
                }),
                None => Err(client(format!(
                    "Invalid revision '{revision}' in '{text}': a revision is a whole number from 1."
                ))),
            }
        }
    }
}

/// Parses a reference that must name a revision (`family:revision` or an ARN), as
/// DeregisterTaskDefinition and DeleteTaskDefinitions require.
pub fn parse_revision_reference(text: &str) -> Result<(String, u32)> {
    match parse_reference(text)? {
        TaskDefinitionRef::Revision { family, revision } => Ok((family, revision)),
        TaskDefinitionRef::Family(_) => Err(client(format!(
            "'{}' names no revision: give family:revision or the full task definition ARN.",
            text.trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_definition::TaskDefinitionError;

    fn revision(family: &str, revision: u32) -> TaskDefinitionRef {
        TaskDefinitionRef::Revision {
            family: family.into(),
            revision,
        }
    }

    #[test]
    fn references_name_a_family_a_revision_or_an_arn() {
        assert_eq!(
            parse_reference("web"),
            Ok(TaskDefinitionRef::Family("web".into()))
        );
        assert_eq!(parse_reference("web:12"), Ok(revision("web", 12)));
        assert_eq!(
            parse_reference("arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"),
            Ok(revision("web", 3))
        );
        assert_eq!(
            parse_reference("arn:aws:ecs:us-east-1:000000000000:task-definition/web"),
            Ok(TaskDefinitionRef::Family("web".into()))
        );
        assert_eq!(
            parse_reference("web:3").map(|r| r.family().to_string()),
            Ok("web".into())
        );
    }

    #[test]
    fn malformed_references_are_client_errors_that_say_what_is_wrong() {
        for bad in [
            "",
            "web:",
            "web:0",
            "web:-1",
            "web:abc",
            "web:1:2",
            "bad name",
            "web:99999999999",
            "arn:aws:ecs:us-east-1:000000000000:cluster/web",
            "arn:aws:ecs:us-east-1:000000000000:task-definition/a/b:1",
        ] {
            match parse_reference(bad) {
                Err(TaskDefinitionError::Client(message)) => assert!(!message.is_empty()),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn deregistration_references_must_name_a_revision() {
        assert_eq!(parse_revision_reference("web:2"), Ok(("web".into(), 2)));
        let err = parse_revision_reference("web").expect_err("bare family");
        assert!(err.to_string().contains("names no revision"), "{err}");
    }
}
