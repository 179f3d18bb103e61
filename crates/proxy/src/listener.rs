//! A listener (per directed link, or per destination) and its accept loop.
//!
//! The accept is blocking (no polling); shutdown wakes it by connecting to it once after closing
//! the link table, and the loop sees `closing` and ends.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use log::{debug, warn};

use crate::conn::{self, Route, Shared};
use crate::destination::{self, Destination};

/// What a listener's connections are: on one known link, or to be attributed.
#[derive(Debug)]
pub(crate) enum Origin {
    Link(Route),
    Destination(Arc<Destination>),
}

impl Origin {
    fn name(&self) -> String {
        match self {
            Origin::Link(r) => r.link.to_string(),
            Origin::Destination(d) => format!("*->{}", d.name),
        }
    }
}

/// After a failed accept (e.g. out of file descriptors), wait this long before the next, rather
/// than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A running acceptor.
#[derive(Debug)]
pub(crate) struct Acceptor {
    pub addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl Acceptor {
    /// Binds `127.0.0.1:0` and starts accepting for `origin`.
    pub(crate) fn start(shared: &Arc<Shared>, origin: Origin) -> io::Result<Acceptor> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::clone(shared);
        let thread = thread::Builder::new()
            .name(format!("proxy accept {}", origin.name()))
            .spawn(move || accept_loop(&shared, &listener, &origin))?;
        Ok(Acceptor { addr, thread })
    }

    /// Wakes the accept loop (the table must already be closing) and waits for it to end.
    pub(crate) fn stop(self) {
        match TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) {
            Ok(_) => {
                if self.thread.join().is_err() {
                    warn!(target: "proxy", "acceptor on {} panicked", self.addr);
                }
            }
            // Cannot happen short of fd exhaustion; leaving the thread detached beats hanging.
            Err(e) => warn!(target: "proxy", "cannot wake acceptor on {} ({e})", self.addr),
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, origin: &Origin) {
    loop {
        let accepted = listener.accept();
        if shared.control.is_closing() {
            debug!(target: "proxy", "stop accepting {}", origin.name());
            return;
        }
        match (accepted, origin) {
            (Ok((client, peer)), Origin::Link(route)) => conn::spawn(shared, client, peer, route),
            (Ok((client, peer)), Origin::Destination(d)) => {
                destination::spawn(shared, client, peer, d)
            }
            (Err(e), _) => {
                warn!(target: "proxy", "accept {}: {e}", origin.name());
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}
