//! The placement loop. For each task of a batch it scans the instances once: an instance is a
//! candidate when it is ACTIVE with its agent connected, carries the required attributes, has
//! the CPU, memory and host ports, and meets the constraints; candidates are ranked by the strategies in order (later ones
//! break ties of earlier ones, `random` picks uniformly among what is still tied, and without
//! it the earliest instance wins). memberOf expressions that read no task state are evaluated
//! once per instance and kept in the snapshot; the others once per instance per batch and again
//! for the instance a task lands on. Required attributes are folded into the same per-instance
//! mask as memberOf results (from the snapshot's cache), so the scan pays nothing for them.

use super::attributes::SATISFIED;
use super::query::Expr;
use super::rng::Rng;
use super::snapshot::{InstanceRef, Snapshot, ValueIndex, ACTIVE, CONNECTED, SCHEDULABLE};
use super::{BinpackField, Constraint, Outcome, Reason, SpreadField, Strategy, TaskRequest};
use crate::resources::{Shortfall, TaskResources};
use std::cmp::Ordering;
use std::sync::Arc;

/// The most strategies a request may carry.
const MAX_KEYS: usize = 5;

/// One ranking key; lower is better.
enum Key {
    Cpu,
    Memory,
    /// Tasks of the group on the instance.
    Instance,
    /// Tasks of the group among instances sharing the attribute's value.
    Attribute {
        index: Arc<ValueIndex>,
        counts: Vec<i64>,
    },
}

impl Key {
    fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Key::Cpu => KeyRef::Cpu,
            Key::Memory => KeyRef::Memory,
            Key::Instance => KeyRef::Instance,
            Key::Attribute { index, counts } => KeyRef::Attribute(&index.values, counts),
        }
    }
}

/// A key with its tables borrowed, for the placement loop.
enum KeyRef<'a> {
    Cpu,
    Memory,
    Instance,
    Attribute(&'a [u32], &'a [i64]),
}

impl KeyRef<'_> {
    #[inline(always)]
    fn value(&self, i: usize, cpu: &[i64], memory: &[i64], group: &[u32]) -> i64 {
        match self {
            KeyRef::Cpu => cpu[i],
            KeyRef::Memory => memory[i],
            KeyRef::Instance => i64::from(group[i]),
            KeyRef::Attribute(values, counts) => counts[values[i] as usize],
        }
    }
}

/// What one scan needs besides the keys.
struct Scan<'a> {
    needs: &'a TaskResources,
    member: &'a [bool],
    distinct: bool,
    group: &'a [u32],
    rest: &'a [KeyRef<'a>],
    random: bool,
}

/// A ranking key read per instance, clamped into 32 bits.
trait KeyFn {
    fn get(&self, i: usize) -> u64;
}

/// No key: every instance ranks the same.
struct NoKey;

/// Remaining CPU or memory.
struct Amount<'a>(&'a [i64]);

/// Tasks of the group on the instance.
struct Count<'a>(&'a [u32]);

/// Tasks of the group on instances sharing the instance's attribute value.
struct Shared<'a>(&'a [u32], &'a [i64]);

impl KeyFn for NoKey {
    #[inline(always)]
    fn get(&self, _: usize) -> u64 {
        0
    }
}

impl KeyFn for Amount<'_> {
    #[inline(always)]
    fn get(&self, i: usize) -> u64 {
        self.0[i].clamp(0, i64::from(u32::MAX)) as u64
    }
}

impl KeyFn for Count<'_> {
    #[inline(always)]
    fn get(&self, i: usize) -> u64 {
        u64::from(self.0[i])
    }
}

impl KeyFn for Shared<'_> {
    #[inline(always)]
    fn get(&self, i: usize) -> u64 {
        self.1[self.0[i] as usize].clamp(0, i64::from(u32::MAX)) as u64
    }
}

/// Whether any of `needs` is in the sorted `used`, or `needs` names a port twice.
fn ports_clash(used: &[u16], needs: &[u16]) -> bool {
    needs
        .iter()
        .enumerate()
        .any(|(k, p)| used.binary_search(p).is_ok() || needs[..k].contains(p))
}

impl Snapshot {
    /// Places the `count` tasks of `request`, one after another, updating the snapshot as each
    /// lands. When a task fits nowhere the rest of the batch cannot fit either: the outcome then
    /// lists, for every ACTIVE instance, why it was refused. `seed` drives `random`.
    pub fn place(&mut self, request: &TaskRequest, seed: u64) -> Outcome {
        let n = self.len();
        let g = self.group_number(&request.group);
        let mut group = self.take_group_counts(g);
        let (mut member, dynamic) = self.member_mask(&request.constraints);
        let missing = (!request.required_attributes.is_empty())
            .then(|| self.missing_attributes(&request.required_attributes));
        if let Some(missing) = &missing {
            for (m, k) in member.iter_mut().zip(missing.iter()) {
                *m &= *k == SATISFIED;
            }
        }
        let distinct = request
            .constraints
            .iter()
            .any(|c| matches!(c, Constraint::DistinctInstance));
        let mut keys: Vec<Key> = Vec::with_capacity(MAX_KEYS);
        let mut random = false;
        for strategy in request.strategies.iter() {
            if keys.len() == MAX_KEYS {
                break;
            }
            keys.push(match strategy {
                Strategy::Random => {
                    random = true;
                    break;
                }
                Strategy::Binpack(BinpackField::Cpu) => Key::Cpu,
                Strategy::Binpack(BinpackField::Memory) => Key::Memory,
                Strategy::Spread(SpreadField::InstanceId) => Key::Instance,
                Strategy::Spread(SpreadField::Attribute(name)) => {
                    let index = self.spread_index(name);
                    let mut counts = vec![0i64; index.len];
                    for (i, c) in group.iter().enumerate() {
                        counts[index.values[i] as usize] += i64::from(*c);
                    }
                    Key::Attribute { index, counts }
                }
            });
        }
        let needs = &request.resources;
        let mut rng = Rng::new(seed);
        let mut outcome = Outcome::default();
        for placed in 0..request.count {
            let best = self.best(needs, &member, distinct, &group, &keys, random, &mut rng);
            let Some(c) = best else {
                outcome.unplaced = request.count - placed;
                outcome.failures = (0..n)
                    .filter(|&i| self.state[i] & ACTIVE != 0)
                    .filter_map(|i| {
                        let lacks = missing.as_ref().map_or(SATISFIED, |m| m[i]);
                        let taken = distinct && group[i] > 0;
                        let reason = self.refusal(i, needs, lacks, member[i], taken);
                        reason.map(|r| (i, r))
                    })
                    .collect();
                break;
            };
            self.reserve(c, needs);
            self.add_to_group(c, g, 1);
            group[c] += 1;
            for key in keys.iter_mut() {
                if let Key::Attribute { index, counts } = key {
                    counts[index.values[c] as usize] += 1;
                }
            }
            if !dynamic.is_empty() {
                // `c` carries the required attributes: it was just chosen.
                member[c] = self.static_ok(c, &request.constraints)
                    && dynamic
                        .iter()
                        .all(|e| e.matches(&InstanceRef { s: self, i: c }));
            }
            outcome.placements.push(c);
        }
        self.group_counts.insert(g, group);
        outcome
    }

    /// Places one task of `request` on instance `i` if it can go there (StartTask): the agent
    /// must be connected, the required attributes carried and the resources and constraints
    /// met; the status is the caller's business.
    pub fn place_on(&mut self, i: usize, request: &TaskRequest) -> Result<(), Reason> {
        let g = self.group_number(&request.group);
        let lacks = self
            .first_missing(i, &request.required_attributes)
            .unwrap_or(SATISFIED);
        let member = request.constraints.iter().all(|c| match c {
            Constraint::MemberOf(e) => e.matches(&InstanceRef { s: self, i }),
            Constraint::DistinctInstance => true,
        });
        let distinct = request
            .constraints
            .iter()
            .any(|c| matches!(c, Constraint::DistinctInstance));
        let taken = distinct && self.group_count(i, &request.group) > 0;
        if let Some(reason) = self.refusal(i, &request.resources, lacks, member, taken) {
            return Err(reason);
        }
        self.reserve(i, &request.resources);
        self.add_to_group(i, g, 1);
        if let Some(counts) = self.group_counts.get_mut(&g) {
            counts[i] += 1;
        }
        Ok(())
    }

    /// Gives back what a task of `group` needing `needs` held on instance `i` (it stopped).
    pub fn release(&mut self, i: usize, needs: &TaskResources, group: &str) {
        self.cpu[i] += needs.cpu;
        self.memory[i] += needs.memory;
        self.tcp[i].retain(|p| !needs.tcp_ports.contains(p));
        self.udp[i].retain(|p| !needs.udp_ports.contains(p));
        self.running[i] = (self.running[i] - 1).max(0);
        let g = self.group_number(group);
        self.add_to_group(i, g, -1);
        if let Some(counts) = self.group_counts.get_mut(&g) {
            counts[i] = counts[i].saturating_sub(1);
        }
    }

    fn reserve(&mut self, i: usize, needs: &TaskResources) {
        self.cpu[i] -= needs.cpu;
        self.memory[i] -= needs.memory;
        for (used, ports) in [
            (&mut self.tcp[i], &needs.tcp_ports),
            (&mut self.udp[i], &needs.udp_ports),
        ] {
            if !ports.is_empty() {
                used.extend_from_slice(ports);
                used.sort_unstable();
                used.dedup();
            }
        }
        self.running[i] += 1;
    }

    /// Why instance `i` cannot take the task, checked in ECS's order: the agent, then the
    /// required attributes (`lacks`: the first one missing, or [`SATISFIED`]; no amount of
    /// freed resources would help there), then resources (CPU, memory, ports), then
    /// constraints. `None` when it can.
    fn refusal(
        &self,
        i: usize,
        needs: &TaskResources,
        lacks: u16,
        member: bool,
        taken: bool,
    ) -> Option<Reason> {
        if self.state[i] & CONNECTED == 0 {
            return Some(Reason::Agent);
        }
        if lacks != SATISFIED {
            return Some(Reason::Attribute(lacks));
        }
        let shortfall = if self.cpu[i] < needs.cpu {
            Some(Shortfall::Cpu)
        } else if self.memory[i] < needs.memory {
            Some(Shortfall::Memory)
        } else if ports_clash(&self.tcp[i], &needs.tcp_ports) {
            Some(Shortfall::Ports)
        } else if ports_clash(&self.udp[i], &needs.udp_ports) {
            Some(Shortfall::PortsUdp)
        } else {
            None
        };
        if let Some(s) = shortfall {
            return Some(Reason::Resource(s));
        }
        if !member {
            return Some(Reason::MemberOf);
        }
        taken.then_some(Reason::DistinctInstance)
    }

    /// The best candidate for one task, or `None`: the scan specialised to the request's
    /// first two keys (see [`Snapshot::scan`]).
    #[allow(clippy::too_many_arguments)]
    fn best(
        &self,
        needs: &TaskResources,
        member: &[bool],
        distinct: bool,
        group: &[u32],
        keys: &[Key],
        random: bool,
        rng: &mut Rng,
    ) -> Option<usize> {
        let refs: Vec<KeyRef<'_>> = keys.iter().map(Key::as_ref).collect();
        let rest = refs.get(2..).unwrap_or_default();
        let scan = Scan {
            needs,
            member,
            distinct,
            group,
            rest,
            random,
        };
        macro_rules! with_key {
            ($key:expr, |$k:ident| $body:expr) => {
                match $key {
                    None => {
                        let $k = NoKey;
                        $body
                    }
                    Some(KeyRef::Cpu) => {
                        let $k = Amount(&self.cpu);
                        $body
                    }
                    Some(KeyRef::Memory) => {
                        let $k = Amount(&self.memory);
                        $body
                    }
                    Some(KeyRef::Instance) => {
                        let $k = Count(group);
                        $body
                    }
                    Some(KeyRef::Attribute(values, counts)) => {
                        let $k = Shared(values, counts);
                        $body
                    }
                }
            };
        }
        with_key!(refs.first(), |a| with_key!(refs.get(1), |b| self
            .scan(&scan, a, b, rng)))
    }

    /// One pass over the instances: skip those that cannot take the task, rank the rest by
    /// the first two keys packed into one number (32 bits each: candidates have non-negative
    /// resources and counts), so most candidates cost one comparison, and by the further keys
    /// only on a tie.
    fn scan<A: KeyFn, B: KeyFn>(
        &self,
        scan: &Scan<'_>,
        a: A,
        b: B,
        rng: &mut Rng,
    ) -> Option<usize> {
        let n = self.state.len();
        let (state, cpu, memory) = (&self.state[..n], &self.cpu[..n], &self.memory[..n]);
        let (member, group, needs) = (&scan.member[..n], &scan.group[..n], scan.needs);
        let ports = !needs.tcp_ports.is_empty() || !needs.udp_ports.is_empty();
        let mut best: Option<usize> = None;
        let mut best_packed = u64::MAX;
        let mut best_rest = [0i64; MAX_KEYS];
        let mut ties = 0u64;
        for i in 0..n {
            if state[i] != SCHEDULABLE
                || cpu[i] < needs.cpu
                || memory[i] < needs.memory
                || !member[i]
                || (scan.distinct && group[i] > 0)
            {
                continue;
            }
            if ports
                && (ports_clash(&self.tcp[i], &needs.tcp_ports)
                    || ports_clash(&self.udp[i], &needs.udp_ports))
            {
                continue;
            }
            let packed = (a.get(i) << 32) | b.get(i);
            let order = if best.is_none() {
                Ordering::Less
            } else if packed != best_packed {
                packed.cmp(&best_packed)
            } else {
                scan.rest
                    .iter()
                    .zip(best_rest.iter())
                    .map(|(k, v)| k.value(i, cpu, memory, group).cmp(v))
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            };
            match order {
                Ordering::Less => {
                    best = Some(i);
                    best_packed = packed;
                    ties = 1;
                    for (v, k) in best_rest.iter_mut().zip(scan.rest.iter()) {
                        *v = k.value(i, cpu, memory, group);
                    }
                }
                Ordering::Equal if scan.random => {
                    ties += 1;
                    if rng.below(ties) == 0 {
                        best = Some(i);
                    }
                }
                _ => {}
            }
        }
        best
    }

    /// Each instance's memberOf result (all of the request's memberOf constraints) and the
    /// constraints that read task state, to evaluate again after each placement.
    fn member_mask<'r>(&mut self, constraints: &'r [Constraint]) -> (Vec<bool>, Vec<&'r Expr>) {
        let n = self.len();
        let mut member = vec![true; n];
        let mut dynamic = Vec::new();
        for c in constraints {
            let Constraint::MemberOf(expr) = c else {
                continue;
            };
            if expr.is_static() {
                let mask = self.static_mask(expr);
                for (m, ok) in member.iter_mut().zip(mask.iter()) {
                    *m &= *ok;
                }
            } else {
                dynamic.push(expr);
            }
        }
        if !dynamic.is_empty() {
            for (i, m) in member.iter_mut().enumerate() {
                if *m {
                    *m = dynamic
                        .iter()
                        .all(|e| e.matches(&InstanceRef { s: self, i }));
                }
            }
        }
        (member, dynamic)
    }

    /// Whether instance `i` meets the request's memberOf constraints that read no task state.
    fn static_ok(&self, i: usize, constraints: &[Constraint]) -> bool {
        constraints.iter().all(|c| match c {
            Constraint::MemberOf(e) if e.is_static() => match self.masks.get(&e.to_string()) {
                Some(mask) => mask[i],
                None => e.matches(&InstanceRef { s: self, i }),
            },
            _ => true,
        })
    }

    fn static_mask(&mut self, expr: &Expr) -> Arc<Vec<bool>> {
        let text = expr.to_string();
        if let Some(mask) = self.masks.get(&text) {
            return mask.clone();
        }
        let mask: Arc<Vec<bool>> = Arc::new(
            (0..self.len())
                .map(|i| expr.matches(&InstanceRef { s: self, i }))
                .collect(),
        );
        self.masks.insert(text, mask.clone());
        mask
    }
}
