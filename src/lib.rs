//! calltrail library.
