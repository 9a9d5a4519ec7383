//! A bounded string interner: values repeated on many events (queues, verbs,
//! raw agent names) share one allocation, and cloning them is a reference
//! count increment. [`Interner::get_ref`] hands out a borrow of the shared
//! copy, for the zero-copy parse path (no reference count traffic at all).

use crate::event::Str;
use rustc_hash::FxHashMap;

/// More distinct values than this and the interner starts over (memory
/// stays bounded even on hostile input; correctness never depends on it).
const LIMIT: usize = 50_000;

/// Maps text to an index into `vals` (an index, not a reference, so a hit
/// can return a borrow of `vals` while the map borrow has already ended).
#[derive(Debug, Default, Clone)]
pub struct Interner {
    map: FxHashMap<Box<str>, u32>,
    vals: Vec<Str>,
    /// Index of the value returned last: consecutive lines mostly name the
    /// same queue, and one compare is cheaper than a hash lookup.
    last: usize,
}

impl Interner {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Str {
        self.get_ref(s).clone()
    }

    /// A borrow of the shared copy of `s` (one hash lookup on a hit).
    pub fn get_ref(&mut self, s: &str) -> &Str {
        // (Checked, then indexed: returning the borrow from `vals.get`
        // would keep `vals` borrowed on the miss path too.)
        let last = self.last;
        if last < self.vals.len() && *self.vals[last] == *s {
            return &self.vals[last];
        }
        if let Some(&i) = self.map.get(s) {
            if (i as usize) < self.vals.len() {
                self.last = i as usize;
                return &self.vals[i as usize];
            }
        }
        if self.vals.len() >= LIMIT {
            self.map.clear();
            self.vals.clear();
        }
        let i = self.vals.len();
        self.last = i;
        self.vals.push(Str::from(s));
        self.map.insert(s.into(), i as u32);
        &self.vals[i]
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
        assert!(Arc::ptr_eq(&a, i.get_ref("sales")));
        for n in 0..LIMIT + 10 {
            i.get(&n.to_string());
        }
        assert!(i.map.len() <= LIMIT);
        assert_eq!(i.map.len(), i.vals.len());
        assert_eq!(&*i.get("sales"), "sales");
        assert_eq!(&**i.get_ref("7"), "7");
        // The one-entry memo never answers for other text.
        assert_eq!(&**i.get_ref("sales"), "sales");
        assert_eq!(&**i.get_ref("sale"), "sale");
        assert_eq!(&**i.get_ref("sales"), "sales");
        assert_eq!(&**i.get_ref(""), "");
        assert_eq!(&**i.get_ref("sales"), "sales");
    }
}
