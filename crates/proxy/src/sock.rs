//! Socket helpers std does not offer: abortive close (RST) and writes that can be interrupted.

use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// How long one blocked `write` may wait before the writer re-checks whether its connection was
/// aborted. Bounds how long an abort can take when the receiver has stopped reading.
pub(crate) const WRITE_SLICE: Duration = Duration::from_millis(100);

/// Makes the socket's final close send a RST instead of a FIN (`SO_LINGER` with a zero timeout),
/// which is what a peer sees when TCP gives up on a connection.
/// `TcpStream::set_linger` is still unstable, hence libc.
#[cfg(unix)]
pub(crate) fn set_linger_zero(s: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open for as long as `s` is borrowed, and we pass a pointer to an
    // initialised `linger` together with its exact size, as setsockopt(2) requires.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast::<libc::c_void>(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
pub(crate) fn set_linger_zero(_s: &TcpStream) -> io::Result<()> {
    // Elsewhere the connection still closes, with a FIN instead of a RST.
    Ok(())
}

/// Arms `s` for an abortive close and wakes any thread blocked reading it. The RST itself goes
/// out when the last handle to the socket is dropped. `shutdown(Read)` sends nothing on the
/// wire (unlike `Write`, which would send the FIN we are trying to avoid).
pub(crate) fn abort(s: &TcpStream) {
    // Errors here mean the socket is already dead, which is the goal.
    let _ = set_linger_zero(s);
    let _ = s.shutdown(Shutdown::Read);
}

/// Prepares a proxied socket: no Nagle (the proxy must not add its own batching delay; the
/// endpoints' own choice is not visible to us), and bounded blocking writes.
pub(crate) fn tune(s: &TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    s.set_write_timeout(Some(WRITE_SLICE))
}

/// `write_all`, but gives up with `ErrorKind::ConnectionAborted` once `aborted()` is true, even
/// if the receiver never reads again. Needs a write timeout on `dst` (see [`tune`]).
pub(crate) fn write_all(
    mut dst: &TcpStream,
    mut data: &[u8],
    aborted: impl Fn() -> bool,
) -> io::Result<()> {
    while !data.is_empty() {
        if aborted() {
            return Err(ErrorKind::ConnectionAborted.into());
        }
        match dst.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Looks at the next byte without consuming it and without blocking (`MSG_PEEK |
/// MSG_DONTWAIT`): `Ok(0)` is an end of stream with nothing before it, `WouldBlock` is an open
/// connection with nothing pending, an error such as `ConnectionReset` is a reset. Leaves the
/// socket's blocking mode alone, which other threads rely on.
#[cfg(unix)]
pub(crate) fn peek_nonblocking(s: &TcpStream) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    // SAFETY: the fd is open for as long as `s` is borrowed; the buffer is one valid byte.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            (&mut byte as *mut u8).cast::<libc::c_void>(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(not(unix))]
pub(crate) fn peek_nonblocking(_s: &TcpStream) -> io::Result<usize> {
    Err(ErrorKind::WouldBlock.into())
}
