//! The one integration-test binary: local HTTP servers and real databases.

mod cli;
mod daemon;
mod deploy;
mod fetch;
mod fold;
mod parse;
mod store;
mod support;
