//! Fingerprints: a byte-stable, versioned 64-bit simhash and the exact hashes
//! stored beside it. Pure: no I/O, cannot fail.

pub mod anchors;

/// Bumped whenever any fingerprint output changes.
pub const FP_VERSION: i16 = 1;

/// Exact 64-bit hash of a string, stable across versions and platforms.
pub fn hash64(s: &str) -> i64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(s.as_bytes(), 0x6665_6564_666f_6c64) as i64
}
