//! A secondary index: for each value of some field (a cluster and an instance, a service, a
//! status, ...), the ordered set of keys of the objects that have it. Ordered by key, so a
//! listing pages through it from the last key it returned in O(page).

use imbl::{OrdMap, OrdSet};
use std::ops::Bound;

/// Keys grouped by an index value, both ordered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    entries: OrdMap<String, OrdSet<String>>,
}

impl Index {
    /// Files `key` under `value`.
    pub fn insert(&mut self, value: &str, key: &str) {
        match self.entries.get_mut(value) {
            Some(keys) => {
                keys.insert(key.to_string());
            }
            None => {
                self.entries
                    .insert(value.to_string(), OrdSet::unit(key.to_string()));
            }
        }
    }

    /// Takes `key` out from under `value`; a value left without keys is dropped.
    pub fn remove(&mut self, value: &str, key: &str) {
        let emptied = match self.entries.get_mut(value) {
            Some(keys) => {
                keys.remove(key);
                keys.is_empty()
            }
            None => false,
        };
        if emptied {
            self.entries.remove(value);
        }
    }

    /// How many keys are filed under `value`.
    pub fn count(&self, value: &str) -> usize {
        self.entries.get(value).map_or(0, OrdSet::len)
    }

    /// The keys under `value`, in order, starting after `after` when given.
    pub fn keys_after<'a>(
        &'a self,
        value: &str,
        after: Option<&str>,
    ) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        let Some(keys) = self.entries.get(value) else {
            return Box::new(std::iter::empty());
        };
        match after {
            Some(after) => {
                Box::new(keys.range::<_, str>((Bound::Excluded(after), Bound::Unbounded)))
            }
            None => Box::new(keys.iter()),
        }
    }

    /// Every (value, key) pair, for checks against a full scan.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .flat_map(|(v, keys)| keys.iter().map(move |k| (v.clone(), k.clone())))
            .collect()
    }
}

/// The index value of a field of an object of `cluster`: the two joined by a NUL, which no
/// cluster name contains.
pub fn scoped(cluster: &str, value: &str) -> String {
    format!("{cluster}\u{0}{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_page_in_order_after_the_last_one_returned() {
        let mut index = Index::default();
        for key in ["/t/c", "/t/a", "/t/b"] {
            index.insert("v", key);
        }
        let first: Vec<&String> = index.keys_after("v", None).take(2).collect();
        assert_eq!(first, ["/t/a", "/t/b"]);
        let rest: Vec<&String> = index.keys_after("v", Some("/t/b")).collect();
        assert_eq!(rest, ["/t/c"]);
    }

    #[test]
    fn a_value_whose_last_key_leaves_is_gone() {
        let mut index = Index::default();
        index.insert("v", "/k");
        index.remove("v", "/k");
        index.remove("w", "/k");
        assert_eq!(index.count("v"), 0);
        assert!(index.pairs().is_empty());
        assert_eq!(index, Index::default());
    }
}
