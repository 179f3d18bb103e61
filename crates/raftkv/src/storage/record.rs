//! Record framing inside a log segment.
//!
//! ```text
//! [len: u32 LE][crc: u32 LE][hcrc: u32 LE][payload: len bytes]
//! crc  = crc32c(payload)
//! hcrc = crc32c(len ++ crc)        (the first 8 bytes of the header)
//! ```
//!
//! The header has its own checksum so that recovery can tell a torn tail from damage: with a
//! trusted `len`, a record that runs past the end of the file is a partial write, and scanning
//! for "any valid record after this point" costs one 8-byte checksum per byte offset instead of
//! a full payload checksum. A header of zeros never validates (`crc32c` of eight zero bytes is
//! not zero), so a zero-filled tail reads as damage, not as an empty record.

use serde::Serialize;

use super::error::StorageError;

/// Bytes in a record header.
pub(crate) const HEADER_LEN: usize = 12;

/// The largest payload a record may carry. Entries are bounded far below this by the node's
/// client line limit; the cap keeps a corrupt-but-checksummed length from allocating gigabytes.
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;

/// Appends one framed record holding `value` to `buf`; returns the bytes added.
pub(crate) fn push<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
) -> Result<usize, StorageError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    if let Err(source) = postcard::to_io(value, &mut *buf) {
        buf.truncate(start);
        return Err(StorageError::Encode {
            what: "log entry",
            source,
        });
    }
    let len = buf.len() - start - HEADER_LEN;
    if len > MAX_PAYLOAD {
        buf.truncate(start);
        return Err(StorageError::TooLarge {
            len,
            max: MAX_PAYLOAD,
        });
    }
    let crc = crc32c::crc32c(&buf[start + HEADER_LEN..]);
    let header = &mut buf[start..start + HEADER_LEN];
    header[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    header[4..8].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32c::crc32c(&header[0..8]);
    header[8..12].copy_from_slice(&hcrc.to_le_bytes());
    Ok(HEADER_LEN + len)
}

/// Why the bytes at some offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// Fewer than `HEADER_LEN` bytes remain.
    ShortHeader,
    /// The header's own checksum does not match.
    HeaderChecksum,
    /// The header is valid but the payload runs past the end of the data.
    ShortPayload,
    /// The payload's checksum does not match.
    PayloadChecksum,
}

impl BadFrame {
    /// A human-readable reason, for `StorageError::Corrupt`.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            BadFrame::ShortHeader => "record header cut short",
            BadFrame::HeaderChecksum => "record header checksum mismatch",
            BadFrame::ShortPayload => "record payload cut short",
            BadFrame::PayloadChecksum => "record payload checksum mismatch",
        }
    }
}

/// Reads the record starting at `at`: its payload and the offset just past it.
pub(crate) fn read(data: &[u8], at: usize) -> Result<(&[u8], usize), BadFrame> {
    let header = data.get(at..at + HEADER_LEN).ok_or(BadFrame::ShortHeader)?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (len, crc, hcrc) = (word(0) as usize, word(4), word(8));
    if crc32c::crc32c(&header[0..8]) != hcrc || len > MAX_PAYLOAD {
        return Err(BadFrame::HeaderChecksum);
    }
    let start = at + HEADER_LEN;
    let payload = data.get(start..start + len).ok_or(BadFrame::ShortPayload)?;
    if crc32c::crc32c(payload) != crc {
        return Err(BadFrame::PayloadChecksum);
    }
    Ok((payload, start + len))
}

/// Where the record at `at` ends according to its header, if the header is intact (the end may
/// lie beyond the data when the record was cut short).
pub(crate) fn claimed_end(data: &[u8], at: usize) -> Option<usize> {
    let header = data.get(at..at + HEADER_LEN)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let hcrc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    (crc32c::crc32c(&header[0..8]) == hcrc && len <= MAX_PAYLOAD).then_some(at + HEADER_LEN + len)
}

/// The first offset after `from` at which a complete, valid record starts, if any.
///
/// Used to decide whether a bad record is a torn tail (nothing valid after it) or damage in
/// the middle of the log. A false match needs a 32-bit header checksum and a 32-bit payload
/// checksum to collide at once.
pub(crate) fn valid_record_after(data: &[u8], from: usize) -> Option<usize> {
    (from + 1..data.len().saturating_sub(HEADER_LEN - 1)).find(|&at| read(data, at).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_damage() {
        let mut buf = Vec::new();
        let n1 = push(&mut buf, &(7u64, "hello")).unwrap();
        let n2 = push(&mut buf, &(8u64, "world")).unwrap();
        assert_eq!(buf.len(), n1 + n2);
        let (p1, next) = read(&buf, 0).unwrap();
        assert_eq!(
            postcard::from_bytes::<(u64, &str)>(p1).unwrap(),
            (7, "hello")
        );
        let (p2, end) = read(&buf, next).unwrap();
        assert_eq!(
            postcard::from_bytes::<(u64, &str)>(p2).unwrap(),
            (8, "world")
        );
        assert_eq!(end, buf.len());

        assert_eq!(read(&buf[..n1 - 1], 0), Err(BadFrame::ShortPayload));
        assert_eq!(read(&buf[..5], 0), Err(BadFrame::ShortHeader));
        let mut flipped = buf.clone();
        flipped[1] ^= 1;
        assert_eq!(read(&flipped, 0), Err(BadFrame::HeaderChecksum));
        let mut flipped = buf.clone();
        flipped[HEADER_LEN] ^= 1;
        assert_eq!(read(&flipped, 0), Err(BadFrame::PayloadChecksum));
        assert_eq!(valid_record_after(&flipped, 0), Some(n1));
        assert_eq!(valid_record_after(&buf, n1), None);
        assert_eq!(read(&[0u8; 64], 0), Err(BadFrame::HeaderChecksum));
    }
}
