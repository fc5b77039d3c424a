//! Required attributes (a task definition's `requiresAttributes`): which instances carry them.
//! An instance satisfies a requirement when it has an attribute of that name, with the same
//! value when the requirement names one, and is the instance the requirement targets when it
//! names a target (`targetType` `container-instance`, `targetId` the instance id or ARN).
//! Attributes do not change while tasks are placed, so the snapshot works out once per set of
//! requirements which instances pass, and keeps the answer between batches.

use super::snapshot::Snapshot;
use crate::model::Attribute;
use std::fmt;
use std::sync::Arc;

/// Marks, in [`Snapshot::missing_attributes`], an instance that carries every requirement.
pub(super) const SATISFIED: u16 = u16::MAX;

/// One attribute an instance must carry for a task to be placed on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequiredAttribute {
    /// The attribute's name.
    pub name: String,
    /// The value it must have, when the requirement names one.
    pub value: Option<String>,
    /// The one instance (id or ARN) the requirement applies to, when it names one.
    pub target: Option<String>,
}

impl fmt::Display for RequiredAttribute {
    /// `name`, or `name=value` when a value is required: how a failure's `detail` names it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={value}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The requirements of a task definition's `requiresAttributes`. A `targetId` counts only
/// with the target type ECS defines for attributes (`container-instance`, or none given).
pub fn required_attributes(attributes: &[Attribute]) -> Vec<RequiredAttribute> {
    attributes
        .iter()
        .map(|a| RequiredAttribute {
            name: a.name.clone(),
            value: a.value.clone(),
            target: a.target_id.clone().filter(|_| {
                a.target_type
                    .as_deref()
                    .is_none_or(|t| t == "container-instance")
            }),
        })
        .collect()
}

impl Snapshot {
    /// The index of the first of `required` that instance `i` lacks, or `None` when it has
    /// them all.
    pub(super) fn first_missing(&self, i: usize, required: &[RequiredAttribute]) -> Option<u16> {
        let fixed = &self.fixed[i];
        required
            .iter()
            .position(|r| {
                let targeted = r
                    .target
                    .as_deref()
                    .is_none_or(|t| t == fixed.id || t == fixed.arn);
                let carried = match self.attribute(i, &r.name) {
                    None => false,
                    Some(value) => r.value.as_deref().is_none_or(|v| value == Some(v)),
                };
                !(targeted && carried)
            })
            .map(|k| u16::try_from(k).unwrap_or(SATISFIED - 1))
    }

    /// Per instance, the first of `required` it lacks ([`SATISFIED`] when none): worked out
    /// once per set of requirements and kept (attributes do not change while placing).
    pub(super) fn missing_attributes(&mut self, required: &[RequiredAttribute]) -> Arc<Vec<u16>> {
        if let Some(missing) = self.attribute_masks.get(required) {
            return Arc::clone(missing);
        }
        let missing: Arc<Vec<u16>> = Arc::new(
            (0..self.len())
                .map(|i| self.first_missing(i, required).unwrap_or(SATISFIED))
                .collect(),
        );
        self.attribute_masks
            .insert(required.to_vec(), Arc::clone(&missing));
        missing
    }
}

#[cfg(test)]
mod tests;
