//! Newline-delimited reading with a length limit, shared by the JSON-lines adapters.

use std::io::{self, BufRead};

/// What one [`read_line`] call found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineRead {
    /// A whole line is in the buffer (without its `\n`, nor a `\r` before it).
    Line,
    /// The stream ended (any partial line stays in the buffer).
    Eof,
    /// The line is longer than the limit; the stream is no longer in step.
    TooLong,
}

/// Reads up to the next `\n`, appending to `buf`. On an error (a read timeout, say) the bytes read
/// so far stay in `buf`, so a later call can continue the same line.
pub(crate) fn read_line<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<LineRead> {
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(LineRead::Eof);
        }
        match avail.iter().position(|&b| b == b'\n') {
            Some(i) => {
                buf.extend_from_slice(&avail[..i]);
                r.consume(i + 1);
                if buf.len() > limit {
                    return Ok(LineRead::TooLong);
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                return Ok(LineRead::Line);
            }
            None => {
                let n = avail.len();
                buf.extend_from_slice(avail);
                r.consume(n);
                if buf.len() > limit {
                    return Ok(LineRead::TooLong);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn lines_limits_and_eof() {
        let mut r = BufReader::with_capacity(4, &b"ab\r\ncdefgh\nxy"[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf, 5).ok(), Some(LineRead::Line));
        assert_eq!(buf, b"ab");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf, 5).ok(), Some(LineRead::TooLong));
        let mut r = BufReader::new(&b"xy"[..]);
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf, 5).ok(), Some(LineRead::Eof));
        assert_eq!(buf, b"xy");
    }
}
