//! File identity: device + inode + a fingerprint of the first line.
//!
//! The fingerprint (FNV-1a 64 of the first line, newline included) makes
//! event ids stable whatever the file is called later (`queue_log.1`, a
//! `.gz` archive imported by hand) and tells a rewritten or reused inode
//! from the file that was checkpointed.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// FNV-1a, 64 bit: stable across Rust versions and platforms (event ids
/// depend on it).
pub use calltrail_parsers::hash::fnv1a64 as fnv1a;

/// Fingerprint as written into event ids and checkpoints.
pub fn fp_hex(fp: u64) -> String {
    format!("{fp:016x}")
}

/// Where a file lives on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevIno {
    pub dev: u64,
    pub ino: u64,
}

impl DevIno {
    pub fn of(m: &Metadata) -> DevIno {
        DevIno {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// The fingerprint of a file whose first line is `first_line` (with its `\n`).
pub fn first_line_fp(first_line: &[u8]) -> u64 {
    fnv1a(first_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fp_hex(1), "0000000000000001");
    }
}
