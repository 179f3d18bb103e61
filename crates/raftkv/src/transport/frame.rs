//! Length-prefixed binary frames: a 4-byte big-endian payload length, then the payload
//! (postcard-encoded). The length is checked against a limit *before* anything is read, and
//! the payload buffer grows only as bytes actually arrive, so a garbage length cannot make
//! the node allocate.
//!
//! A peer message larger than one frame (an InstallSnapshot of a large KV state) is sent in
//! chunks ([`encode_message`], [`read_message`]): every frame but the last has the top bit of
//! its length set ([`MORE`]), and the receiver joins the payloads, up to [`MAX_MESSAGE`].

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest frame payload accepted or sent: 128 MiB. A Raft message carries at most
/// `max_bytes_per_msg` of entries, but an InstallSnapshot carries the whole KV state.
pub const MAX_FRAME: usize = 128 << 20;

/// Largest peer message, sent as several frames when it exceeds one: 1 GiB.
pub const MAX_MESSAGE: usize = 1 << 30;

/// Set in a frame's length: more chunks of the same message follow.
pub const MORE: u32 = 1 << 31;

/// What can go wrong reading or writing a frame. Every variant ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("connection closed inside a frame ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
    #[error("undecodable frame: {0}")]
    Decode(postcard::Error),
    #[error("unencodable message: {0}")]
    Encode(postcard::Error),
}

/// Encodes `msg` as one frame appended to `out`.
pub fn encode_frame<T: Serialize>(
    msg: &T,
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut out_vec = std::mem::take(out);
    out_vec = postcard::to_extend(msg, out_vec).map_err(FrameError::Encode)?;
    *out = out_vec;
    let len = out.len() - start - 4;
    if len > max {
        out.truncate(start);
        return Err(FrameError::TooLarge { len, max });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Writes one frame (no flush: callers batch frames in a `BufWriter`).
pub fn write_frame<W: Write, T: Serialize>(
    w: &mut W,
    msg: &T,
    max: usize,
) -> Result<(), FrameError> {
    let mut buf = Vec::new();
    encode_frame(msg, &mut buf, max)?;
    w.write_all(&buf)?;
    Ok(())
}

/// Writes one frame whose payload is already encoded.
pub fn write_raw_frame<W: Write>(w: &mut W, payload: &[u8], max: usize) -> Result<(), FrameError> {
    if payload.len() > max {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max,
        });
    }
    w.write_all(&(payload.len() as u32).to_be_bytes())?;
    w.write_all(payload)?;
    Ok(())
}

/// Reads one raw frame payload. `Ok(None)` is a clean end of stream between frames.
pub fn read_raw_frame<R: Read>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated { got, want: 4 }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    // Grow with the data, not with the claimed length.
    let mut payload = Vec::with_capacity(len.min(64 << 10));
    let got = r.take(len as u64).read_to_end(&mut payload)?;
    if got < len {
        return Err(FrameError::Truncated { got, want: len });
    }
    Ok(Some(payload))
}

/// Encodes `msg` into `out` as one frame, or as chunks of at most `max_frame` bytes when it is
/// larger (up to `max_message`).
pub fn encode_message<T: Serialize>(
    msg: &T,
    out: &mut Vec<u8>,
    max_frame: usize,
    max_message: usize,
) -> Result<(), FrameError> {
    let payload = postcard::to_allocvec(msg).map_err(FrameError::Encode)?;
    if payload.len() > max_message {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max: max_message,
        });
    }
    let mut chunks = payload.chunks(max_frame.max(1)).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&0u32.to_be_bytes());
    }
    while let Some(chunk) = chunks.next() {
        let more = if chunks.peek().is_some() { MORE } else { 0 };
        out.extend_from_slice(&(chunk.len() as u32 | more).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    Ok(())
}

/// Reads one message written by [`encode_message`]: its frames joined and decoded. `Ok(None)`
/// is a clean end of stream between messages.
pub fn read_message<R: Read, T: DeserializeOwned>(
    r: &mut R,
    max_frame: usize,
    max_message: usize,
) -> Result<Option<T>, FrameError> {
    let mut joined: Vec<u8> = Vec::new();
    loop {
        let mut header = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match r.read(&mut header[got..]) {
                Ok(0) if got == 0 && joined.is_empty() => return Ok(None),
                Ok(0) => return Err(FrameError::Truncated { got, want: 4 }),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let word = u32::from_be_bytes(header);
        let (len, more) = ((word & !MORE) as usize, word & MORE != 0);
        if len > max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: max_frame,
            });
        }
        if joined.len() + len > max_message {
            return Err(FrameError::TooLarge {
                len: joined.len() + len,
                max: max_message,
            });
        }
        let start = joined.len();
        joined.reserve(len.min(64 << 10));
        let got = r.take(len as u64).read_to_end(&mut joined)?;
        if got < len {
            return Err(FrameError::Truncated {
                got: joined.len() - start,
                want: len,
            });
        }
        if !more {
            return postcard::from_bytes(&joined)
                .map(Some)
                .map_err(FrameError::Decode);
        }
    }
}

/// Reads and decodes one frame. `Ok(None)` is a clean end of stream between frames.
pub fn read_frame<R: Read, T: DeserializeOwned>(
    r: &mut R,
    max: usize,
) -> Result<Option<T>, FrameError> {
    match read_raw_frame(r, max)? {
        None => Ok(None),
        Some(payload) => postcard::from_bytes(&payload)
            .map(Some)
            .map_err(FrameError::Decode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Msg {
        Ping(u64),
        Data { bytes: Vec<u8>, note: String },
    }

    fn round_trip(msgs: &[Msg]) -> Vec<Msg> {
        let mut buf = Vec::new();
        for m in msgs {
            write_frame(&mut buf, m, MAX_FRAME).unwrap();
        }
        let mut r = Cursor::new(buf);
        let mut out = Vec::new();
        while let Some(m) = read_frame(&mut r, MAX_FRAME).unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn a_message_larger_than_a_frame_goes_in_chunks_and_comes_back_whole() {
        let big = Msg::Data {
            bytes: (0..10_000u32).map(|i| (i % 251) as u8).collect(),
            note: "snapshot".into(),
        };
        let mut buf = Vec::new();
        for m in [&Msg::Ping(1), &big, &Msg::Ping(2)] {
            encode_message(m, &mut buf, 1000, 1 << 20).unwrap();
        }
        // 10 KB in 1000-byte chunks: at least 10 frames, all but the last flagged.
        let mut flagged = 0;
        for w in buf.windows(4) {
            flagged += usize::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]) == (1000 | MORE));
        }
        assert!(flagged >= 10, "{flagged} chunk headers");
        let mut r = Cursor::new(buf);
        let mut out = Vec::new();
        while let Some(m) = read_message::<_, Msg>(&mut r, 1000, 1 << 20).unwrap() {
            out.push(m);
        }
        assert_eq!(out, vec![Msg::Ping(1), big, Msg::Ping(2)]);
    }

    #[test]
    fn chunks_beyond_the_message_limit_or_cut_short_are_refused() {
        let big = Msg::Data {
            bytes: vec![7; 5000],
            note: String::new(),
        };
        let mut buf = Vec::new();
        assert!(matches!(
            encode_message(&big, &mut buf, 1000, 4000),
            Err(FrameError::TooLarge { .. })
        ));
        encode_message(&big, &mut buf, 1000, 1 << 20).unwrap();
        let r: Result<Option<Msg>, _> = read_message(&mut Cursor::new(buf.clone()), 1000, 4000);
        assert!(matches!(r, Err(FrameError::TooLarge { .. })));
        // A sender that dies between chunks leaves a truncated message, not a short one.
        let r: Result<Option<Msg>, _> =
            read_message(&mut Cursor::new(buf[..2500].to_vec()), 1000, 1 << 20);
        assert!(matches!(r, Err(FrameError::Truncated { .. })));
        // A frame's own limit still holds for each chunk.
        let r: Result<Option<Msg>, _> = read_message(&mut Cursor::new(buf), 999, 1 << 20);
        assert!(matches!(r, Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn frames_round_trip() {
        let msgs = vec![
            Msg::Ping(7),
            Msg::Data {
                bytes: vec![0, 255, 10],
                note: "x\ny".into(),
            },
            Msg::Ping(u64::MAX),
        ];
        assert_eq!(round_trip(&msgs), msgs);
    }

    #[test]
    fn oversized_length_is_refused_before_reading() {
        let mut bytes = (MAX_FRAME as u32 + 1).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let r: Result<Option<Msg>, _> = read_frame(&mut Cursor::new(bytes), MAX_FRAME);
        assert!(matches!(r, Err(FrameError::TooLarge { .. })));
        // An HTTP request's first bytes read as a ~1.2 GB length.
        let r: Result<Option<Msg>, _> =
            read_frame(&mut Cursor::new(b"GET / HTTP/1.1\r\n".to_vec()), MAX_FRAME);
        assert!(matches!(r, Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn encoding_refuses_frames_over_the_limit() {
        let mut buf = vec![1, 2];
        let big = Msg::Data {
            bytes: vec![0; 100],
            note: String::new(),
        };
        assert!(matches!(
            encode_frame(&big, &mut buf, 50),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(
            buf,
            vec![1, 2],
            "a refused frame leaves the buffer as it was"
        );
    }

    #[test]
    fn truncated_frames_are_errors() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Msg::Ping(1), MAX_FRAME).unwrap();
        for cut in 1..buf.len() {
            let r: Result<Option<Msg>, _> =
                read_frame(&mut Cursor::new(buf[..cut].to_vec()), MAX_FRAME);
            assert!(
                matches!(r, Err(FrameError::Truncated { .. })),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn garbage_payloads_are_errors_not_panics() {
        // Deterministic pseudo-random garbage of many lengths.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..300usize {
            let mut payload = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                payload.push(x as u8);
            }
            let mut bytes = (len as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(&payload);
            // Either decodes to something or fails; it must not panic.
            let _: Result<Option<Msg>, _> = read_frame(&mut Cursor::new(bytes.clone()), MAX_FRAME);
            let _: Result<Option<raft::Message>, _> =
                read_frame(&mut Cursor::new(bytes), MAX_FRAME);
        }
        let empty: Result<Option<Msg>, _> = read_frame(&mut Cursor::new(Vec::new()), MAX_FRAME);
        assert!(matches!(empty, Ok(None)));
    }
}
