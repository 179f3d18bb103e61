//! The client listener: newline-delimited JSON connections.
//!
//! Each connection has two threads. The reader parses lines and hands requests to the node's
//! inbox, each with a one-shot reply channel; the writer answers them *in request order*,
//! waiting on each reply channel until the request's deadline (then it answers `timeout`). So
//! a client may pipeline many requests on one connection and still read answers in order,
//! and a slow request delays only the answers behind it on the same connection.

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::protocol::{self, encode_reply, ErrorCode, Reply, Request, MAX_LINE};
use crate::{debug, warn};

/// Requests a connection may have in flight before its reader stops reading (back-pressure).
const PIPELINE_DEPTH: usize = 1024;
/// Connections served at once; more are answered `bad_request` and closed.
const MAX_CONNECTIONS: usize = 4096;

/// A client request on its way to the node, with where to send the answer.
#[derive(Debug)]
pub struct ClientCall {
    pub request: Request,
    /// One-shot: the node answers with `try_send`, never blocking.
    pub reply: Sender<Reply>,
    /// After this instant the connection has answered `timeout`; the node may drop the call.
    pub deadline: Instant,
}

/// How a connection hands calls to the node: returns false when the node is gone.
pub type Submit = Arc<dyn Fn(ClientCall) -> bool + Send + Sync>;

/// What the writer answers next.
enum Slot {
    /// Already known (a bad request, or a refusal).
    Ready(Option<u64>, Reply),
    /// Waiting for the node.
    Pending(u64, Receiver<Reply>, Instant),
}

/// Starts the accept loop on its own thread.
pub fn start(listener: TcpListener, submit: Submit, timeout: Duration) -> io::Result<()> {
    let live = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("client-accept".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let stream = match conn {
                    Ok(s) => s,
                    Err(e) => {
                        warn!("client accept failed: {e}");
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                if live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    live.fetch_sub(1, Ordering::SeqCst);
                    refuse(stream, "too many connections");
                    continue;
                }
                let (submit, live) = (submit.clone(), live.clone());
                let spawned = thread::Builder::new()
                    .name("client-in".into())
                    .spawn(move || {
                        serve(stream, &submit, timeout);
                        live.fetch_sub(1, Ordering::SeqCst);
                    });
                if let Err(e) = spawned {
                    warn!("cannot start a client connection thread: {e}");
                }
            }
        })?;
    Ok(())
}

fn refuse(stream: TcpStream, why: &str) {
    let mut w = &stream;
    let _ = w
        .write_all(encode_reply(None, &Reply::Error(ErrorCode::BadRequest(why.into()))).as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

/// Serves one connection until the client closes it or it breaks.
fn serve(stream: TcpStream, submit: &Submit, timeout: Duration) {
    let _ = stream.set_nodelay(true);
    let remote = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let (slots_tx, slots_rx) = bounded::<Slot>(PIPELINE_DEPTH);
    let writer_stream = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            warn!("client {remote}: cannot clone the socket: {e}");
            return;
        }
    };
    let writer = thread::Builder::new()
        .name("client-out".into())
        .spawn(move || write_answers(writer_stream, &slots_rx));
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            warn!("client {remote}: cannot start the writer: {e}");
            return;
        }
    };
    read_requests(&stream, submit, timeout, &slots_tx);
    drop(slots_tx); // the writer finishes the answers still owed, then exits
    let _ = writer.join();
    let _ = stream.shutdown(Shutdown::Both);
    debug!("client {remote} disconnected");
}

/// Reads request lines and queues one slot per request, in order.
fn read_requests(stream: &TcpStream, submit: &Submit, timeout: Duration, slots: &Sender<Slot>) {
    let mut r = BufReader::with_capacity(64 << 10, stream);
    let mut line = Vec::new();
    loop {
        let slot = match read_line_bounded(&mut r, &mut line, MAX_LINE) {
            Ok(LineRead::Eof) | Err(_) => return,
            Ok(LineRead::TooLong) => Slot::Ready(
                None,
                Reply::Error(ErrorCode::BadRequest(format!(
                    "line longer than {MAX_LINE} bytes (skipped)"
                ))),
            ),
            Ok(LineRead::Line) => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue; // blank lines are ignored, not answered
                }
                match protocol::parse_request(&line) {
                    Err(bad) => {
                        Slot::Ready(bad.id, Reply::Error(ErrorCode::BadRequest(bad.detail)))
                    }
                    Ok(request) => {
                        let id = request.id;
                        let (tx, rx) = bounded(1);
                        let deadline = Instant::now() + timeout;
                        let call = ClientCall {
                            request,
                            reply: tx,
                            deadline,
                        };
                        if submit(call) {
                            Slot::Pending(id, rx, deadline)
                        } else {
                            Slot::Ready(
                                Some(id),
                                Reply::Error(ErrorCode::Dropped(
                                    "the node is shutting down".into(),
                                )),
                            )
                        }
                    }
                }
            }
        };
        if slots.send(slot).is_err() {
            return; // the writer failed: the connection is broken
        }
    }
}

/// Writes answers in request order; flushes whenever no further answer is ready.
fn write_answers(stream: TcpStream, slots: &Receiver<Slot>) {
    let mut w = BufWriter::with_capacity(64 << 10, &stream);
    let mut failed = false;
    while let Ok(slot) = slots.recv() {
        if failed {
            continue; // drain, so the reader is never blocked on a full queue
        }
        let (id, reply) = match slot {
            Slot::Ready(id, reply) => (id, reply),
            Slot::Pending(id, rx, deadline) => {
                let reply = match rx.try_recv() {
                    Ok(r) => r,
                    Err(_) => {
                        // About to block: push out what is already written first.
                        if w.flush().is_err() {
                            failed = true;
                            continue;
                        }
                        match rx.recv_deadline(deadline) {
                            Ok(r) => r,
                            Err(RecvTimeoutError::Timeout) => Reply::Error(ErrorCode::Timeout),
                            Err(RecvTimeoutError::Disconnected) => Reply::Error(
                                ErrorCode::Unknown("the node dropped the request".into()),
                            ),
                        }
                    }
                };
                (Some(id), reply)
            }
        };
        if w.write_all(encode_reply(id, &reply).as_bytes()).is_err() {
            failed = true;
            continue;
        }
        if slots.is_empty() && w.flush().is_err() {
            failed = true;
        }
    }
    if failed {
        // Unblock the reader: the client will not get its answers anyway.
        let _ = stream.shutdown(Shutdown::Both);
    } else {
        let _ = w.flush();
    }
}

/// The result of reading one line.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// `buf` holds a line (without its `\n`); the last line may lack the `\n`.
    Line,
    /// The line exceeded the limit and was skipped up to its `\n` (or the end of the stream).
    TooLong,
    /// End of stream with no pending bytes.
    Eof,
}

/// Reads one `\n`-terminated line into `buf`, never holding more than `max` bytes of it.
pub fn read_line_bounded<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if too_long {
                LineRead::TooLong
            } else if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (part, found) = match memchr(chunk) {
            Some(i) => (&chunk[..i], Some(i)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        match found {
            Some(i) => {
                r.consume(i + 1);
                return Ok(if too_long {
                    LineRead::TooLong
                } else {
                    LineRead::Line
                });
            }
            None => {
                let n = part.len();
                r.consume(n);
            }
        }
    }
}

fn memchr(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn lines(input: &[u8], max: usize) -> Vec<(LineRead, Vec<u8>)> {
        // A tiny buffer exercises lines that span many fill_buf calls.
        let mut r = BufReader::with_capacity(3, Cursor::new(input.to_vec()));
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            let l = read_line_bounded(&mut r, &mut buf, max).unwrap();
            if l == LineRead::Eof {
                return out;
            }
            out.push((l, buf.clone()));
        }
    }

    #[test]
    fn splits_lines_and_keeps_a_final_unterminated_one() {
        assert_eq!(
            lines(b"ab\n\ncdef\ngh", 10),
            vec![
                (LineRead::Line, b"ab".to_vec()),
                (LineRead::Line, b"".to_vec()),
                (LineRead::Line, b"cdef".to_vec()),
                (LineRead::Line, b"gh".to_vec()),
            ]
        );
    }

    #[test]
    fn skips_an_oversized_line_and_continues() {
        let got = lines(b"0123456789X\nok\n0123456789", 10);
        assert_eq!(got[0].0, LineRead::TooLong);
        assert_eq!(got[1], (LineRead::Line, b"ok".to_vec()));
        assert_eq!(
            got[2],
            (LineRead::Line, b"0123456789".to_vec()),
            "exactly max is fine"
        );
        let got = lines(b"0123456789XYZ", 10);
        assert_eq!(got, vec![(LineRead::TooLong, vec![])]);
    }
}
