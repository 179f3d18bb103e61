//! The client listener: newline-delimited JSON connections.
//!
//! One thread per connection, in turns: it reads every request line already received (at least
//! one, at most [`PIPELINE_DEPTH`]), hands them all to the node's inbox, each with a one-shot
//! reply channel, then writes their answers *in request order*, waiting on each reply channel
//! until the request's deadline (then it answers `timeout`), and flushes once per turn. So a
//! client may pipeline many requests on one connection and still read answers in order, and a
//! slow request delays only the requests behind it on the same connection. A closed-loop
//! client (one request at a time) costs one thread wake-up to read and one to answer, not the
//! three of a separate reader and writer thread, which matter on a busy machine.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::{self, encode_reply, ErrorCode, Reply, Request, MAX_LINE};
use crate::reply::{self, NoReply, ReplyRx, ReplyTx};
use crate::{debug, warn};

/// Requests a connection hands to the node per turn at most (back-pressure: the rest wait in
/// the socket until these are answered).
const PIPELINE_DEPTH: usize = 1024;
/// Connections served at once; more are answered `bad_request` and closed.
const MAX_CONNECTIONS: usize = 4096;

/// A client request on its way to the node, with where to send the answer.
#[derive(Debug)]
pub struct ClientCall {
    pub request: Request,
    /// One-shot: the node answers with `try_send`, never blocking.
    pub reply: ReplyTx,
    /// After this instant the connection has answered `timeout`; the node may drop the call.
    pub deadline: Instant,
}

/// How a connection hands calls to the node: returns false when the node is gone.
pub type Submit = Arc<dyn Fn(ClientCall) -> bool + Send + Sync>;

/// What the connection answers next.
enum Slot {
    /// Already known (a bad request, or a refusal).
    Ready(Option<u64>, Reply),
    /// Waiting for the node.
    Pending(u64, ReplyRx, Instant),
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
                let spawned = thread::Builder::new().name("client".into()).spawn(move || {
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
    let mut r = BufReader::with_capacity(64 << 10, &stream);
    let mut w = BufWriter::with_capacity(64 << 10, &stream);
    let mut line = Vec::new();
    let mut owed = VecDeque::new();
    loop {
        let eof = read_turn(&mut r, &mut line, submit, timeout, &mut owed);
        // The answers owed are written even after the client's end of input: it may still read.
        if write_answers(&mut w, &mut owed).is_err() || eof {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    debug!("client {remote} disconnected");
}

/// Reads one request (blocking), then every further complete line already buffered, up to
/// [`PIPELINE_DEPTH`], queueing one slot per request in order. Returns true at the end of the
/// input (or when the connection broke).
fn read_turn<R: Read>(
    r: &mut BufReader<R>,
    line: &mut Vec<u8>,
    submit: &Submit,
    timeout: Duration,
    owed: &mut VecDeque<Slot>,
) -> bool {
    loop {
        let slot = match read_line_bounded(r, line, MAX_LINE) {
            Ok(LineRead::Eof) | Err(_) => return true,
            Ok(LineRead::TooLong) => Some(Slot::Ready(
                None,
                Reply::Error(ErrorCode::BadRequest(format!(
                    "line longer than {MAX_LINE} bytes (skipped)"
                ))),
            )),
            Ok(LineRead::Line) => to_slot(line, submit, timeout),
        };
        owed.extend(slot);
        // Blocking for more is for the next turn, once what was read is answered.
        let more_buffered = r.buffer().contains(&b'\n');
        if !owed.is_empty() && (owed.len() >= PIPELINE_DEPTH || !more_buffered) {
            return false;
        }
    }
}

/// What a request line becomes: nothing for a blank line, else its slot.
fn to_slot(line: &[u8], submit: &Submit, timeout: Duration) -> Option<Slot> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None; // blank lines are ignored, not answered
    }
    Some(match protocol::parse_request(line) {
        Err(bad) => Slot::Ready(bad.id, Reply::Error(ErrorCode::BadRequest(bad.detail))),
        Ok(request) => {
            let id = request.id;
            let (tx, rx) = reply::slot();
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
                    Reply::Error(ErrorCode::Dropped("the node is shutting down".into())),
                )
            }
        }
    })
}

/// Writes the owed answers in request order, flushing before each wait and at the end.
fn write_answers<W: Write>(w: &mut W, owed: &mut VecDeque<Slot>) -> io::Result<()> {
    while let Some(slot) = owed.pop_front() {
        let (id, reply) = match slot {
            Slot::Ready(id, reply) => (id, reply),
            Slot::Pending(id, rx, deadline) => {
                let reply = match rx.try_recv() {
                    Some(r) => r,
                    None => {
                        // About to block: push out what is already written first.
                        w.flush()?;
                        match rx.recv_deadline(deadline) {
                            Ok(r) => r,
                            Err(NoReply::Timeout) => Reply::Error(ErrorCode::Timeout),
                            Err(NoReply::Dropped) => Reply::Error(ErrorCode::Unknown(
                                "the node dropped the request".into(),
                            )),
                        }
                    }
                };
                (Some(id), reply)
            }
        };
        w.write_all(encode_reply(id, &reply).as_bytes())?;
    }
    w.flush()
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

    /// A node that answers every write `ok` at once and records the ids it was handed.
    fn instant_node() -> (Submit, Arc<std::sync::Mutex<Vec<u64>>>) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let submit: Submit = Arc::new(move |call: ClientCall| {
            log.lock().unwrap().push(call.request.id);
            let _ = call.reply.try_send(Reply::Done);
            true
        });
        (submit, seen)
    }

    #[test]
    fn a_turn_takes_every_buffered_line_and_answers_in_order() {
        let (submit, seen) = instant_node();
        let input = b"{\"id\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"a\"}\n  \nnot json\n\
{\"id\":2,\"op\":\"write\",\"key\":\"k\",\"value\":\"b\"}\n";
        let mut r = BufReader::new(Cursor::new(input.to_vec()));
        let (mut line, mut owed) = (Vec::new(), VecDeque::new());
        let eof = read_turn(
            &mut r,
            &mut line,
            &submit,
            Duration::from_secs(1),
            &mut owed,
        );
        assert!(!eof);
        assert_eq!(
            owed.len(),
            3,
            "two writes and one bad request; the blank line is skipped"
        );
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
        let mut out = Vec::new();
        write_answers(&mut out, &mut owed).unwrap();
        let answers: Vec<serde_json::Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(answers.len(), 3);
        assert_eq!(
            (answers[0]["id"].as_u64(), answers[0]["ok"].as_bool()),
            (Some(1), Some(true))
        );
        assert_eq!(answers[1]["error"], "bad_request");
        assert_eq!(answers[2]["id"], 2);
        assert!(read_turn(
            &mut r,
            &mut line,
            &submit,
            Duration::from_secs(1),
            &mut owed
        ));
        assert!(owed.is_empty());
    }

    #[test]
    fn an_unanswered_request_times_out_without_holding_the_ones_before_it() {
        // The node keeps the call (so its channel stays open) and never answers.
        let kept = std::sync::Mutex::new(Vec::new());
        let silent: Submit = Arc::new(move |call: ClientCall| {
            kept.lock().unwrap().push(call);
            true
        });
        let mut owed = VecDeque::from([Slot::Ready(Some(7), Reply::Done)]);
        let line = b"{\"id\":8,\"op\":\"read\",\"key\":\"k\"}".to_vec();
        owed.extend(to_slot(&line, &silent, Duration::from_millis(20)));
        let mut out = Vec::new();
        write_answers(&mut out, &mut owed).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("\"id\":7"), "{text}");
        assert!(lines[1].contains("timeout"), "{text}");
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
