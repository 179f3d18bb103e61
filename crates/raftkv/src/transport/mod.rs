//! Peer transport: frames, the handshake, and the threads that dial and accept peers.

pub mod frame;
pub mod handshake;
pub mod peer;

pub use peer::{ClientDirectory, Identity, Outbox, PeerTransport};
