//! feedfold: a feed aggregator daemon that folds syndicated copies of one
//! story into one canonical story. ARCHITECTURE.md holds the map; each
//! module's doc says what it owns.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod dedup;
pub mod fetch;
pub mod fingerprint;
pub mod normalize;
pub mod opml;
pub mod parse;
pub mod refresh;
pub mod scheduler;
pub mod store;

/// Installs the one rustls crypto provider (ring) that reqwest and sqlx share.
/// Safe to call more than once; reqwest panics if no provider is installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
