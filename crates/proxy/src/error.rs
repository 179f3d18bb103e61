//! Errors of the control API. What a peer can cause shows up as `io::Error` on the proxied
//! sockets (resets, EOF), never here; these are misuse of the API or a failure to bind.

use std::io;

use crate::link::LinkId;

/// An error from a [`Proxy`](crate::Proxy) control call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// `add_link` for a link that already has a listener.
    #[error("link {0} already has a listener")]
    DuplicateLink(LinkId),
    /// A link whose endpoints the proxy does not know: neither it nor its reverse was added.
    #[error("unknown link {0}: add it (or its reverse) with add_link first")]
    UnknownLink(LinkId),
    /// A link from an endpoint to itself.
    #[error("link {0} goes from an endpoint to itself")]
    SelfLink(LinkId),
    /// `add_destination` for a destination that already has a listener.
    #[error("destination {0} already has a listener")]
    DuplicateDestination(String),
    /// The destination listener could not be bound or its thread started.
    #[error("cannot start the destination listener for {dest}: {source}")]
    DestinationListen {
        /// The destination being added.
        dest: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The listener could not be bound or its thread started.
    #[error("cannot start listener for {link}: {source}")]
    Listen {
        /// The link being added.
        link: LinkId,
        /// The cause.
        #[source]
        source: io::Error,
    },
}
