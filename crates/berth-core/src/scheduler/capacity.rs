//! Capacity provider strategies (ECS Developer Guide, "Capacity provider strategies"): the
//! checks ECS makes of a strategy, and how a number of tasks is split over its providers —
//! the provider with a `base` gets tasks until it runs that many, the rest go by `weight`
//! ratio, and a provider of weight 0 gets none (unless it is the strategy's only provider).
//! For a service the split counts the tasks each provider already runs, so the ratio holds
//! across scale-ups.

use crate::model::cluster::CapacityProviderStrategyItem;

/// The most providers a strategy may name.
pub const MAX_ITEMS: usize = 20;
/// The largest `base`.
pub const MAX_BASE: i32 = 100_000;
/// The largest `weight`.
pub const MAX_WEIGHT: i32 = 1_000;

/// Checks a strategy as ECS does when it is given: at most 20 providers, none twice, `base`
/// 0..=100000 and on one provider at most, `weight` 0..=1000. The message is for an
/// InvalidParameterException.
pub fn validate_strategy(items: &[CapacityProviderStrategyItem]) -> Result<(), String> {
    if items.len() > MAX_ITEMS {
        return Err(format!(
            "The capacity provider strategy can contain at most {MAX_ITEMS} capacity providers; \
             {} were given.",
            items.len()
        ));
    }
    for (k, item) in items.iter().enumerate() {
        if item.capacity_provider.is_empty() {
            return Err("A capacity provider strategy item must name a capacityProvider.".into());
        }
        if items[..k]
            .iter()
            .any(|other| other.capacity_provider == item.capacity_provider)
        {
            return Err(format!(
                "The capacity provider strategy names the capacity provider '{}' more than \
                 once.",
                item.capacity_provider
            ));
        }
        if let Some(weight) = item.weight.filter(|w| !(0..=MAX_WEIGHT).contains(w)) {
            return Err(format!(
                "The capacity provider strategy weight must be between 0 and {MAX_WEIGHT}; got \
                 {weight} for '{}'.",
                item.capacity_provider
            ));
        }
        if let Some(base) = item.base.filter(|b| !(0..=MAX_BASE).contains(b)) {
            return Err(format!(
                "The capacity provider strategy base must be between 0 and {MAX_BASE}; got \
                 {base} for '{}'.",
                item.capacity_provider
            ));
        }
    }
    if items.iter().filter(|i| i.base.unwrap_or(0) > 0).count() > 1 {
        return Err(
            "Only one capacity provider in a capacity provider strategy can have a base \
             defined."
                .into(),
        );
    }
    Ok(())
}

/// The message when every provider of a strategy of several has weight 0.
pub const ALL_WEIGHTS_ZERO: &str = "The capacity provider strategy is invalid: at least one \
     capacity provider in the strategy must have a weight greater than zero.";

/// How many of `count` new tasks each provider of `items` gets, in the order of `items`,
/// given that `existing[i]` tasks already run on provider `i` (missing entries count 0).
///
/// A provider still short of its `base` takes the next task; after that each task goes to
/// the provider whose tasks beyond its base are fewest relative to its weight (the next
/// seat of D'Hondt's method: least `(beyond + 1) / weight`, ties to the larger weight, then
/// to the earlier item). Providers of weight 0 take none, except a strategy's only provider.
/// Every weight 0 in a strategy of several is [`ALL_WEIGHTS_ZERO`].
pub fn split(
    items: &[CapacityProviderStrategyItem],
    existing: &[u32],
    count: u32,
) -> Result<Vec<u32>, &'static str> {
    let n = items.len();
    let base: Vec<u64> = items
        .iter()
        .map(|i| u64::try_from(i.base.unwrap_or(0)).unwrap_or(0))
        .collect();
    let weight: Vec<u64> = items
        .iter()
        .map(|i| u64::try_from(i.weight.unwrap_or(0)).unwrap_or(0))
        .map(|w| if n == 1 { w.max(1) } else { w })
        .collect();
    let mut out = vec![0u32; n];
    if count == 0 {
        return Ok(out);
    }
    if weight.iter().all(|&w| w == 0) {
        return Err(ALL_WEIGHTS_ZERO);
    }
    let mut running: Vec<u64> = (0..n)
        .map(|i| u64::from(existing.get(i).copied().unwrap_or(0)))
        .collect();
    for _ in 0..count {
        let chosen = match (0..n).find(|&i| running[i] < base[i]) {
            Some(i) => i,
            None => {
                let mut best: Option<usize> = None;
                for i in (0..n).filter(|&i| weight[i] > 0) {
                    let seat = running[i].saturating_sub(base[i]) + 1;
                    best = match best {
                        None => Some(i),
                        Some(j) => {
                            let other = running[j].saturating_sub(base[j]) + 1;
                            // seat/w[i] < other/w[j], without division.
                            let (lhs, rhs) = (seat * weight[j], other * weight[i]);
                            if lhs < rhs || (lhs == rhs && weight[i] > weight[j]) {
                                Some(i)
                            } else {
                                Some(j)
                            }
                        }
                    };
                }
                best.unwrap_or(0)
            }
        };
        running[chosen] += 1;
        out[chosen] += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, base: i32, weight: i32) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem {
            capacity_provider: name.into(),
            base: Some(base),
            weight: Some(weight),
        }
    }

    #[test]
    fn base_is_filled_first_then_the_rest_goes_by_weight() {
        let strategy = [item("a", 2, 1), item("b", 0, 3)];
        assert_eq!(split(&strategy, &[], 10), Ok(vec![4, 6]));
        assert_eq!(split(&strategy, &[], 2), Ok(vec![2, 0]));
        assert_eq!(split(&strategy, &[], 6), Ok(vec![3, 3]));
    }

    #[test]
    fn equal_weights_split_evenly_with_the_odd_task_to_the_first() {
        let strategy = [item("a", 0, 1), item("b", 0, 1)];
        assert_eq!(split(&strategy, &[], 4), Ok(vec![2, 2]));
        assert_eq!(split(&strategy, &[], 3), Ok(vec![2, 1]));
    }

    #[test]
    fn existing_tasks_count_so_the_ratio_holds_across_scale_ups() {
        let strategy = [item("a", 0, 1), item("b", 0, 3)];
        assert_eq!(split(&strategy, &[], 4), Ok(vec![1, 3]));
        // Scaling 4 -> 8 adds 1 and 3, keeping 1:3 over the whole service.
        assert_eq!(split(&strategy, &[1, 3], 4), Ok(vec![1, 3]));
        // A provider already ahead gets nothing until the other catches up.
        assert_eq!(split(&strategy, &[4, 0], 4), Ok(vec![0, 4]));
    }

    #[test]
    fn a_base_already_met_by_running_tasks_is_not_filled_again() {
        let strategy = [item("a", 2, 0), item("b", 0, 1)];
        assert_eq!(split(&strategy, &[0, 0], 3), Ok(vec![2, 1]));
        assert_eq!(split(&strategy, &[2, 1], 3), Ok(vec![0, 3]));
    }

    #[test]
    fn weight_zero_providers_get_nothing_unless_alone() {
        let strategy = [item("a", 0, 0), item("b", 0, 2)];
        assert_eq!(split(&strategy, &[], 5), Ok(vec![0, 5]));
        assert_eq!(split(&[item("only", 0, 0)], &[], 3), Ok(vec![3]));
        let zero = [item("a", 1, 0), item("b", 0, 0)];
        assert_eq!(split(&zero, &[], 2), Err(ALL_WEIGHTS_ZERO));
        assert_eq!(split(&zero, &[], 0), Ok(vec![0, 0]));
    }

    #[test]
    fn strategies_break_ecs_rules_are_refused() {
        assert!(validate_strategy(&[item("a", 1, 1), item("b", 0, 1)]).is_ok());
        assert!(validate_strategy(&[item("a", 1, 1), item("b", 1, 1)]).is_err());
        assert!(validate_strategy(&[item("a", 0, 1001)]).is_err());
        assert!(validate_strategy(&[item("a", 0, -1)]).is_err());
        assert!(validate_strategy(&[item("a", 100_001, 1)]).is_err());
        assert!(validate_strategy(&[item("a", 0, 1), item("a", 0, 1)]).is_err());
        let many: Vec<_> = (0..21).map(|i| item(&format!("p{i}"), 0, 1)).collect();
        assert!(validate_strategy(&many).is_err());
        assert!(validate_strategy(&many[..20]).is_ok());
    }
}
