//! A bounded string interner: values repeated on many events (queues, verbs,
//! raw agent names) share one allocation, and cloning them is a reference
//! count increment.

use crate::event::Str;
use rustc_hash::FxHashMap;

/// More distinct values than this and the interner starts over (memory
/// stays bounded even on hostile input; correctness never depends on it).
const LIMIT: usize = 50_000;

#[derive(Debug, Default, Clone)]
pub struct Interner {
    map: FxHashMap<Box<str>, Str>,
}

impl Interner {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Str {
        if let Some(v) = self.map.get(s) {
            return v.clone();
        }
        if self.map.len() >= LIMIT {
            self.map.clear();
        }
        let v = Str::from(s);
        self.map.insert(s.into(), v.clone());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn shares_and_stays_bounded() {
        let mut i = Interner::default();
        let a = i.get("sales");
        let b = i.get("sales");
        assert!(Arc::ptr_eq(&a, &b));
        for n in 0..LIMIT + 10 {
            i.get(&n.to_string());
        }
        assert!(i.map.len() <= LIMIT);
        assert_eq!(&*i.get("sales"), "sales");
    }
}
