//! The `raftkv` node: a Raft-replicated key-value store served over newline-delimited JSON.
//!
//! Threads and channels, no async runtime. One thread owns the Raft core ([`node`]); peer
//! connections ([`transport`]) and client connections ([`client`]) have threads of their own
//! and talk to it through its inbox. The binary (`main.rs`) only parses flags and calls
//! [`node::run`].

pub mod client;
pub mod config;
pub mod kv;
pub mod logging;
pub mod node;
pub mod planted;
pub mod protocol;
pub mod reply;
pub mod storage;
pub mod transport;
