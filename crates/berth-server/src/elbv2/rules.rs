//! Rules of listeners of application load balancers: CreateRule, DescribeRules, ModifyRule,
//! SetRulePriorities, DeleteRule. Rules are kept in their listener's record, in priority order;
//! DescribeRules also shows the listener's default rule (priority `default`), which is the
//! listener's default actions and is changed with ModifyListener.

use super::actions::{parse_actions, parse_conditions, write_actions, write_conditions};
use super::model::{write, Config, Listener, Room, Rule};
use super::tags::tags_of;
use super::{
    arn_parts, authorize, integer_in, invalid_configuration, missing, page, random_hex, strings,
    validation,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};
use berth_store::typed::encode;
use berth_store::Txn;
use std::collections::BTreeMap;

/// The most rules (besides the default one) a listener may have.
const MAX_RULES: usize = 100;

/// `RuleNotFound` for `arn`.
pub(super) fn not_found(arn: &str) -> ApiError {
    ApiError::new("RuleNotFound", format!("Rule '{arn}' not found"))
}

/// A rule as DescribeRules shows it: one of a listener's or its default rule.
struct Shown {
    arn: String,
    /// None for the default rule.
    priority: Option<u32>,
    rule: Option<Rule>,
    listener: Listener,
}

impl Shown {
    fn of(listener: &Listener, rule: Option<&Rule>) -> Shown {
        Shown {
            arn: rule.map_or_else(|| listener.default_rule_arn.clone(), |r| r.arn.clone()),
            priority: rule.map(|r| r.priority),
            rule: rule.cloned(),
            listener: listener.clone(),
        }
    }
}

fn write_rule(xml: &mut Xml, shown: &Shown) {
    xml.field("RuleArn", &shown.arn);
    match (&shown.rule, shown.priority) {
        (Some(rule), Some(priority)) => {
            xml.field("Priority", &priority.to_string());
            write_conditions(xml, &rule.conditions);
            write_actions(xml, "Actions", &rule.actions);
            xml.field("IsDefault", "false");
        }
        _ => {
            xml.field("Priority", "default");
            write_conditions(xml, &[]);
            write_actions(xml, "Actions", &shown.listener.default_actions);
            xml.field("IsDefault", "true");
        }
    }
}

fn answer(rules: &[Shown]) -> Option<Xml> {
    let mut xml = Xml::new();
    xml.list("Rules", rules, write_rule);
    Some(xml)
}

/// Rule `arn` of `config` with its listener (None for a default rule), or `RuleNotFound`
/// (`ValidationError` for what is not a rule ARN at all).
fn existing<'a>(
    ctx: &Ctx,
    config: &'a Config,
    arn: &str,
) -> Result<(&'a Listener, Option<&'a Rule>), ApiError> {
    arn_parts(ctx, arn, "listener-rule", 5, "rule")?;
    config.rule(arn).ok_or_else(|| not_found(arn))
}

fn priority_of(value: Option<&str>, at: &str) -> Result<Option<u32>, ApiError> {
    Ok(integer_in(value, at, 1..=50_000)?.map(|p| p as u32))
}

fn priority_in_use(priority: u32) -> ApiError {
    ApiError::new(
        "PriorityInUse",
        format!("Priority '{priority}' is currently in use"),
    )
}

/// CreateRule: a rule of a listener of an application load balancer, at a priority no other
/// rule of the listener has.
pub(super) async fn create(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let listener_arn = request
        .get("ListenerArn")
        .ok_or_else(|| missing("listenerArn"))?;
    let priority =
        priority_of(request.get("Priority"), "priority")?.ok_or_else(|| missing("priority"))?;
    let conditions = parse_conditions(&request.structures("Conditions"))?;
    if request.get("Transforms.member.1.Type").is_some() {
        return Err(validation("Berth does not support rule transforms."));
    }
    let items = request.structures("Actions");
    let tags = tags_of(request)?;
    authorize(ctx, "CreateRule", &[listener_arn])?;
    let shown = write(ctx, |config| {
        let mut listener = super::listeners::existing(ctx, config, listener_arn)?.clone();
        let lb = super::load_balancers::existing(ctx, config, &listener.load_balancer_arn)?;
        if lb.kind != "application" {
            return Err(invalid_configuration(
                "Rules can only be added to listeners of application load balancers.",
            ));
        }
        let actions = parse_actions(ctx, config, lb, &items, "actions")?;
        if listener.rules.iter().any(|r| r.priority == priority) {
            return Err(priority_in_use(priority));
        }
        if listener.rules.len() >= MAX_RULES {
            return Err(ApiError::new(
                "TooManyRules",
                format!("A listener can have at most {MAX_RULES} rules besides its default rule."),
            ));
        }
        let rule = Rule {
            arn: format!(
                "{}/{}",
                listener.arn.replacen(":listener/", ":listener-rule/", 1),
                random_hex(16)?
            ),
            priority,
            conditions: conditions.clone(),
            actions,
            tags: tags.clone(),
        };
        listener.rules.push(rule.clone());
        listener.rules.sort_by_key(|r| r.priority);
        let shown = Shown::of(&listener, Some(&rule));
        Ok((Txn::new().put(listener.key(), encode(&listener)), shown))
    })
    .await?;
    Ok(answer(&[shown]))
}

/// DescribeRules: those of a listener (its default rule last) or those named by `RuleArns`
/// (each must exist), a page at a time.
pub(super) fn describe(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let listener_arn = request.get("ListenerArn");
    let arns = strings(request, "RuleArns");
    let mut resources: Vec<&str> = arns.iter().map(String::as_str).collect();
    resources.extend(listener_arn);
    authorize(ctx, "DescribeRules", &resources)?;
    let config = Config::read(ctx)?;
    let found: Vec<Shown> = match (listener_arn, arns.is_empty()) {
        (Some(_), false) => {
            return Err(validation("Give either ListenerArn or RuleArns, not both."))
        }
        (None, true) => {
            return Err(validation(
                "You must specify either listener ARN or rule ARNs",
            ))
        }
        (Some(arn), true) => {
            let listener = super::listeners::existing(ctx, &config, arn)?;
            listener
                .rules
                .iter()
                .map(|r| Shown::of(listener, Some(r)))
                .chain([Shown::of(listener, None)])
                .collect()
        }
        (None, false) => arns
            .iter()
            .map(|arn| existing(ctx, &config, arn).map(|(l, r)| Shown::of(l, r)))
            .collect::<Result<_, _>>()?,
    };
    let (found, marker) = page(request, found, |s| {
        format!("{:05}{}", s.priority.unwrap_or(99_999), s.arn)
    })?;
    let mut xml = Xml::new();
    xml.list("Rules", &found, write_rule);
    xml.optional("NextMarker", marker.as_deref());
    Ok(Some(xml))
}

fn rule_arn_of(request: &QueryRequest) -> Result<&str, ApiError> {
    request.get("RuleArn").ok_or_else(|| missing("ruleArn"))
}

/// ModifyRule: replaces the conditions or the actions given. Of a default rule only the
/// actions (the listener's default actions) can change.
pub(super) async fn modify(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = rule_arn_of(request)?;
    let condition_items = request.structures("Conditions");
    let conditions = if condition_items.is_empty() {
        None
    } else {
        Some(parse_conditions(&condition_items)?)
    };
    if request.get("Transforms.member.1.Type").is_some() {
        return Err(validation("Berth does not support rule transforms."));
    }
    let items = request.structures("Actions");
    authorize(ctx, "ModifyRule", &[arn])?;
    let shown = write(ctx, |config| {
        let (listener, rule) = existing(ctx, config, arn)?;
        let mut listener = listener.clone();
        let lb = super::load_balancers::existing(ctx, config, &listener.load_balancer_arn)?;
        let actions = if items.is_empty() {
            None
        } else {
            Some(parse_actions(ctx, config, lb, &items, "actions")?)
        };
        let shown = match rule {
            None => {
                if conditions.is_some() {
                    return Err(ApiError::new(
                        "OperationNotPermitted",
                        "The conditions of a default rule cannot be changed.",
                    ));
                }
                if let Some(actions) = actions {
                    listener.default_actions = actions;
                }
                Shown::of(&listener, None)
            }
            Some(rule) => {
                let mut rule = rule.clone();
                if let Some(conditions) = &conditions {
                    rule.conditions = conditions.clone();
                }
                if let Some(actions) = actions {
                    rule.actions = actions;
                }
                for stored in listener.rules.iter_mut().filter(|r| r.arn == rule.arn) {
                    *stored = rule.clone();
                }
                Shown::of(&listener, Some(&rule))
            }
        };
        Ok((Txn::new().put(listener.key(), encode(&listener)), shown))
    })
    .await?;
    Ok(answer(&[shown]))
}

/// SetRulePriorities: gives each rule named its new priority, all at once, so rules can swap
/// priorities; a priority another rule of the listener keeps is `PriorityInUse`.
pub(super) async fn set_priorities(
    ctx: &Ctx,
    request: &QueryRequest,
) -> Result<Option<Xml>, ApiError> {
    let mut wanted: Vec<(String, u32)> = Vec::new();
    for (i, pair) in request.structures("RulePriorities").iter().enumerate() {
        let at = format!("rulePriorities.member.{}", i + 1);
        let arn = pair
            .get("RuleArn")
            .ok_or_else(|| missing(&format!("{at}.ruleArn")))?;
        let priority = priority_of(
            pair.get("Priority").map(String::as_str),
            &format!("{at}.priority"),
        )?
        .ok_or_else(|| missing(&format!("{at}.priority")))?;
        if wanted.iter().any(|(a, _)| a == arn) {
            return Err(validation(format!(
                "The rule '{arn}' is given more than once."
            )));
        }
        wanted.push((arn.clone(), priority));
    }
    if wanted.is_empty() {
        return Err(missing("rulePriorities"));
    }
    if wanted.len() > MAX_RULES {
        return Err(validation(format!(
            "At most {MAX_RULES} rule priorities can be set in one request."
        )));
    }
    let arns: Vec<&str> = wanted.iter().map(|(a, _)| a.as_str()).collect();
    authorize(ctx, "SetRulePriorities", &arns)?;
    let shown = write(ctx, |config| {
        // The listeners touched, by ARN, with their rules renumbered.
        let mut changed: BTreeMap<String, Listener> = BTreeMap::new();
        for (arn, priority) in &wanted {
            let (listener, rule) = existing(ctx, config, arn)?;
            if rule.is_none() {
                return Err(ApiError::new(
                    "OperationNotPermitted",
                    "The priority of a default rule cannot be changed.",
                ));
            }
            let listener = changed
                .entry(listener.arn.clone())
                .or_insert_with(|| listener.clone());
            for r in listener.rules.iter_mut().filter(|r| &r.arn == arn) {
                r.priority = *priority;
            }
        }
        let mut txn = Txn::new();
        let mut shown = Vec::new();
        // Every listener touched is rewritten in the one transaction.
        let mut room = Room::of(ctx);
        for (i, listener) in changed.values_mut().enumerate() {
            listener.rules.sort_by_key(|r| r.priority);
            if let Some(pair) = listener
                .rules
                .windows(2)
                .find(|w| w[0].priority == w[1].priority)
            {
                return Err(priority_in_use(pair[0].priority));
            }
            let record = encode(&*listener);
            if !room.take(record.len(), i == 0) {
                return Err(validation(
                    "These rules belong to more listeners than one request can renumber: set \
                     the priorities of fewer listeners' rules at a time.",
                ));
            }
            txn = txn.put(listener.key(), record);
            shown.extend(
                listener
                    .rules
                    .iter()
                    .filter(|r| arns.contains(&r.arn.as_str()))
                    .map(|r| Shown::of(listener, Some(r))),
            );
        }
        Ok((txn, shown))
    })
    .await?;
    Ok(answer(&shown))
}

/// DeleteRule: a rule of a listener (not its default rule).
pub(super) async fn delete(ctx: &Ctx, request: &QueryRequest) -> Result<Option<Xml>, ApiError> {
    let arn = rule_arn_of(request)?;
    authorize(ctx, "DeleteRule", &[arn])?;
    write(ctx, |config| {
        let (listener, rule) = existing(ctx, config, arn)?;
        if rule.is_none() {
            return Err(ApiError::new(
                "OperationNotPermitted",
                "A default rule cannot be deleted: delete its listener instead.",
            ));
        }
        let mut listener = listener.clone();
        listener.rules.retain(|r| r.arn != arn);
        Ok((Txn::new().put(listener.key(), encode(&listener)), ()))
    })
    .await?;
    Ok(Some(Xml::new()))
}
