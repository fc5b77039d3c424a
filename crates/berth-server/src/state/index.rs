//! A secondary index: for each value of some field (a cluster and an instance, a service, a
//! status, ...), the ordered set of keys of the objects that have it. Ordered by key, so a
//! listing pages through it from the last key it returned in O(page).

use super::tasks::Key;
use imbl::{OrdMap, OrdSet};
use std::ops::Bound;
use std::sync::Arc;

/// Keys grouped by an index value, both ordered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    entries: OrdMap<String, OrdSet<Key>>,
}

impl Index {
    /// Files `key` under `value`.
    pub fn insert(&mut self, value: &str, key: &Key) {
        match self.entries.get_mut(value) {
            Some(keys) => {
                keys.insert(Arc::clone(key));
            }
            None => {
                self.entries
                    .insert(value.to_string(), OrdSet::unit(Arc::clone(key)));
            }
        }
    }

    /// Moves `key` from under `old` to under `new` (either may be none); nothing is touched
    /// when the two are the same, so a write that leaves the indexed field alone costs nothing.
    pub fn refile(&mut self, key: &Key, old: Option<&str>, new: Option<&str>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.remove(old, key);
        }
        if let Some(new) = new {
            self.insert(new, key);
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
    ) -> Box<dyn Iterator<Item = &'a Key> + 'a> {
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
            .flat_map(|(v, keys)| keys.iter().map(move |k| (v.clone(), k.to_string())))
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
            index.insert("v", &Key::from(key));
        }
        let first: Vec<&str> = index.keys_after("v", None).take(2).map(|k| &**k).collect();
        assert_eq!(first, ["/t/a", "/t/b"]);
        let rest: Vec<&str> = index.keys_after("v", Some("/t/b")).map(|k| &**k).collect();
        assert_eq!(rest, ["/t/c"]);
    }

    #[test]
    fn refiling_moves_a_key_and_leaves_an_unchanged_one_in_place() {
        let mut index = Index::default();
        let key = Key::from("/k");
        index.refile(&key, None, Some("a"));
        index.refile(&key, Some("a"), Some("a"));
        assert_eq!(index.pairs(), [("a".to_string(), "/k".to_string())]);
        index.refile(&key, Some("a"), Some("b"));
        assert_eq!(index.pairs(), [("b".to_string(), "/k".to_string())]);
        index.refile(&key, Some("b"), None);
        assert_eq!(index, Index::default());
    }

    #[test]
    fn a_value_whose_last_key_leaves_is_gone() {
        let mut index = Index::default();
        let key = Key::from("/k");
        index.insert("v", &key);
        index.remove("v", &key);
        index.remove("w", &key);
        assert_eq!(index.count("v"), 0);
        assert!(index.pairs().is_empty());
        assert_eq!(index, Index::default());
    }
}
