//! The dialplan lookup: for one presented number, everything routing
//! needs (known-number class and name, the sticky agent by policy and
//! window, the agent's presence and interface, first call, open missed
//! calls), decided by one rule ([`decision`]) from memory ([`index`]).
//! `serve/lookup.rs` answers it over HTTP, `serve/agi.rs` over FastAGI;
//! docs/dialplan.md is the manual.

pub mod decision;
pub mod index;
mod parties;
mod window;

pub use decision::Decision;
pub use index::{check_number, Index, MAX_NUMBER_LEN};
pub use window::{Policy, Window};
