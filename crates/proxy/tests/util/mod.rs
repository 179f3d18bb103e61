//! Fixtures for the proxy tests: plain-socket servers and bounded reads.
//!
//! Every socket a test touches has read and write timeouts, so a broken proxy fails a test
//! instead of hanging it.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for any single blocking socket call in a test.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener whose accepted connections echo everything back.
pub fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo server");
    let addr = listener.local_addr().expect("echo server addr");
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let mut r = match s.try_clone() {
                    Ok(r) => r,
                    Err(_) => return,
                };
                let _ = io::copy(&mut r, &mut s);
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

/// A listener the test accepts from itself, so it holds the target side of each connection.
pub fn target() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind target");
    let a = l.local_addr().expect("target addr");
    (l, a)
}

/// Accepts one connection within `within`, or `None`.
pub fn accept_within(l: &TcpListener, within: Duration) -> Option<TcpStream> {
    l.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + within;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("blocking");
                timeouts(&s);
                return Some(s);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(_) => return None,
        }
    }
}

pub fn accept(l: &TcpListener) -> TcpStream {
    accept_within(l, IO_TIMEOUT).expect("accept within the timeout")
}

pub fn timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    s.set_nodelay(true).expect("nodelay");
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    timeouts(&s);
    s
}

/// Reads exactly `n` bytes (fails the test on timeout).
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).expect("read_exact");
    buf
}

/// Whatever arrives within `within`: used to show that nothing arrives.
pub fn read_for(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).expect("read timeout");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("read failed: {e}"),
        }
    }
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    got
}

/// True if the connection ends (EOF or reset) within `within`, discarding any data.
pub fn ends_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("read timeout");
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) if Instant::now() < deadline => continue,
            Ok(_) => return false,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Deterministic test bytes: `pattern(seed, len)` differs per seed and position, so a
/// reordered, lost or duplicated chunk shows up as a mismatch at a precise offset.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// FNV-1a, to checksum large transfers without keeping them.
#[derive(Clone, Copy)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Writes `data` in `chunk`-sized writes.
pub fn write_chunks(s: &mut TcpStream, data: &[u8], chunk: usize) -> io::Result<()> {
    for c in data.chunks(chunk) {
        s.write_all(c)?;
    }
    Ok(())
}

/// Polls `cond` every 5 ms until it holds or `within` passes.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}
