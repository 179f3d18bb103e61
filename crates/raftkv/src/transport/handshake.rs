//! The peer handshake: the first frame on every peer connection.
//!
//! The dialer sends a [`Hello`]; the acceptor answers [`HelloReply`]. Only then do Raft
//! messages flow, and only from dialer to acceptor: each node dials each peer once to send it
//! messages, so the link i→j is exactly one TCP connection (which is what lets a proxy cut one
//! direction).
//!
//! The first bytes of a hello are a fixed magic and the protocol version *outside* the postcard
//! encoding, so a future version with a different [`Hello`] layout is still recognised and
//! refused with a clear reason instead of a decode error.

use serde::{Deserialize, Serialize};

/// Bumped whenever the peer wire format changes incompatibly.
/// Version 2: snapshot metadata carries learners, and entries may carry a configuration.
pub const PROTOCOL_VERSION: u32 = 2;

/// Marks a raftkv peer hello.
const MAGIC: &[u8; 8] = b"RAFTKVP\0";

/// Handshake frames are small; anything larger is not a handshake.
pub const MAX_HANDSHAKE_FRAME: usize = 64 << 10;

/// What the dialer says about itself and whom it wants to reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub cluster_id: String,
    /// The dialer's node id (e.g. `n1`).
    pub from: String,
    /// The node id the dialer believes it is talking to.
    pub to: String,
    /// The dialer's advertised client address, for `not_leader` hints.
    pub client_addr: Option<String>,
}

/// The acceptor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Welcome {
        /// The acceptor's advertised client address.
        client_addr: Option<String>,
    },
    Refused {
        reason: String,
    },
}

/// Why a hello was refused or could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("not a raftkv peer (bad magic)")]
    BadMagic,
    #[error("protocol version {theirs}, this node speaks {PROTOCOL_VERSION}")]
    Version { theirs: u32 },
    #[error("undecodable hello: {0}")]
    Decode(String),
    #[error("cluster id {theirs:?}, this node is in cluster {ours:?}")]
    Cluster { theirs: String, ours: String },
    #[error("hello addressed to {to}, this node is {me}")]
    WrongNode { to: String, me: String },
    #[error("unknown peer {0} (not in this node's --peer list)")]
    UnknownPeer(String),
}

/// Encodes a hello as a frame payload: magic, version (big-endian u32), postcard body.
pub fn encode_hello(h: &Hello) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    // Serialising strings cannot fail.
    out.extend(postcard::to_stdvec(h).unwrap_or_default());
    out
}

/// Decodes a hello frame payload, checking magic and version first.
pub fn decode_hello(payload: &[u8]) -> Result<Hello, HandshakeError> {
    let rest = payload
        .strip_prefix(MAGIC.as_slice())
        .ok_or(HandshakeError::BadMagic)?;
    let (version, body) = rest.split_at_checked(4).ok_or(HandshakeError::BadMagic)?;
    let mut v = [0u8; 4];
    v.copy_from_slice(version);
    let theirs = u32::from_be_bytes(v);
    if theirs != PROTOCOL_VERSION {
        return Err(HandshakeError::Version { theirs });
    }
    postcard::from_bytes(body).map_err(|e| HandshakeError::Decode(e.to_string()))
}

/// Checks a decoded hello against this node's identity and peer list.
pub fn check_hello(
    h: &Hello,
    cluster_id: &str,
    me: &str,
    is_peer: impl Fn(&str) -> bool,
) -> Result<(), HandshakeError> {
    if h.cluster_id != cluster_id {
        return Err(HandshakeError::Cluster {
            theirs: h.cluster_id.clone(),
            ours: cluster_id.to_string(),
        });
    }
    if h.to != me {
        return Err(HandshakeError::WrongNode {
            to: h.to.clone(),
            me: me.to_string(),
        });
    }
    if !is_peer(&h.from) {
        return Err(HandshakeError::UnknownPeer(h.from.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            cluster_id: "c".into(),
            from: "n2".into(),
            to: "n1".into(),
            client_addr: Some("127.0.0.1:7002".into()),
        }
    }

    #[test]
    fn round_trip_and_accept() {
        let h = decode_hello(&encode_hello(&hello())).unwrap();
        assert_eq!(h, hello());
        assert_eq!(check_hello(&h, "c", "n1", |p| p == "n2"), Ok(()));
    }

    #[test]
    fn refusals_name_the_reason() {
        let h = hello();
        let e = check_hello(&h, "other", "n1", |_| true).unwrap_err();
        assert!(e.to_string().contains("cluster id \"c\""), "{e}");
        assert!(matches!(
            check_hello(&h, "c", "n3", |_| true),
            Err(HandshakeError::WrongNode { .. })
        ));
        assert!(matches!(
            check_hello(&h, "c", "n1", |_| false),
            Err(HandshakeError::UnknownPeer(_))
        ));
    }

    #[test]
    fn other_versions_and_garbage_are_refused() {
        let mut bytes = encode_hello(&hello());
        bytes[MAGIC.len() + 3] = 9;
        assert_eq!(
            decode_hello(&bytes),
            Err(HandshakeError::Version { theirs: 9 })
        );
        assert_eq!(
            decode_hello(b"GET / HTTP/1.1"),
            Err(HandshakeError::BadMagic)
        );
        assert_eq!(decode_hello(MAGIC), Err(HandshakeError::BadMagic));
        let mut truncated = encode_hello(&hello());
        truncated.truncate(MAGIC.len() + 6);
        assert!(matches!(
            decode_hello(&truncated),
            Err(HandshakeError::Decode(_))
        ));
    }
}
