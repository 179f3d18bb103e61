//! Which process dialed an accepted loopback connection, from `/proc` (Linux).
//!
//! The accepted socket's peer address is the dialer's local address. The dialer's own socket is
//! the row of `/proc/net/tcp` (or `/proc/net/tcp6`) whose local address is that peer address and
//! whose remote address is the listener; its inode is the socket's identity. The process holding
//! it has a `/proc/<pid>/fd/*` link to `socket:[INODE]`. An inode of 0 means no process holds
//! the socket any more (it was closed, or its process died, and the kernel is finishing the
//! connection on its own): the same lookup tells a held connection's ghost from a live dialer.
//!
//! Everything read from `/proc` is parsed into typed values; a malformed row is a
//! [`ParseError`], never a panic. Processes vanishing mid-walk are expected and skipped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

/// The socket tables searched, IPv4 first (a dialer using an IPv6 socket to reach
/// `127.0.0.1` shows up in `tcp6` with v4-mapped addresses).
const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

/// Attempts to find the dialer's socket and its owner, and the pause before each retry: the
/// dialer's side may not be visible yet at the instant the proxy accepts. About 30 ms in all.
const RETRY_PAUSES: [Duration; 5] = [
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(4),
    Duration::from_millis(8),
    Duration::from_millis(16),
];

/// At most this many processes are searched under one candidate: a bound, not an expected size.
const MAX_TREE: usize = 4096;

/// A row of `/proc/net/tcp` that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    /// Fewer whitespace-separated fields than a socket row has.
    #[error("line {line}: {found} fields, expected at least 10")]
    TooFewFields { line: usize, found: usize },
    /// An address that is not `HEX8:HEX4` (IPv4) or `HEX32:HEX4` (IPv6).
    #[error("line {line}: bad address {text:?}")]
    BadAddress { line: usize, text: String },
    /// A state or inode field that is not a number.
    #[error("line {line}: bad {field} {text:?}")]
    BadNumber {
        line: usize,
        field: &'static str,
        text: String,
    },
}

/// A failure to read or understand `/proc`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttributeError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
}

/// One row of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpRow {
    /// IPv4-mapped IPv6 addresses are given as IPv4.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's TCP state number (`01` established, `0A` listen, ...).
    pub state: u8,
    /// 0 when no process holds the socket.
    pub inode: u64,
}

/// Parses one socket row (`line` is its 1-based line number, for the error).
pub(crate) fn parse_row(line: usize, text: &str) -> Result<TcpRow, ParseError> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    // sl local remote st tx:rx tr:when retrnsmt uid timeout inode ...
    if fields.len() < 10 {
        return Err(ParseError::TooFewFields {
            line,
            found: fields.len(),
        });
    }
    let bad_addr = |t: &str| ParseError::BadAddress {
        line,
        text: t.to_string(),
    };
    let local = parse_addr(fields[1]).ok_or_else(|| bad_addr(fields[1]))?;
    let remote = parse_addr(fields[2]).ok_or_else(|| bad_addr(fields[2]))?;
    let state = hex(fields[3], 2)
        .and_then(|v| u8::try_from(v).ok())
        .ok_or_else(|| ParseError::BadNumber {
            line,
            field: "state",
            text: fields[3].to_string(),
        })?;
    let inode = decimal(fields[9]).ok_or_else(|| ParseError::BadNumber {
        line,
        field: "inode",
        text: fields[9].to_string(),
    })?;
    Ok(TcpRow {
        local,
        remote,
        state,
        inode,
    })
}

/// The rows of a whole `/proc/net/tcp{,6}` text: the header line and blank lines are skipped.
pub(crate) fn parse_table(text: &str) -> impl Iterator<Item = Result<TcpRow, ParseError>> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            !l.is_empty() && !l.starts_with("sl")
        })
        .map(|(i, l)| parse_row(i + 1, l))
}

/// `0100007F:1F90` is 127.0.0.1:8080. Each 32-bit word of the address is printed as the host
/// reads the network-order bytes (little-endian on x86), so `to_ne_bytes` restores the bytes
/// on any host; the port is printed as a plain number.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (host, port) = text.split_once(':')?;
    let port = u16::try_from(hex(port, 4)?).ok()?;
    let ip = match host.len() {
        8 => IpAddr::V4(Ipv4Addr::from(hex(host, 8)?.to_ne_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, out) in bytes.chunks_exact_mut(4).enumerate() {
                let word = hex(host.get(i * 8..i * 8 + 8)?, 8)?;
                out.copy_from_slice(&word.to_ne_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A hex number of 1 to `max` digits, nothing else (`from_str_radix` alone would take a sign).
fn hex(text: &str, max: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// What the socket tables say about the dialer's side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DialerSocket {
    /// Held by some process: its inode.
    Open(u64),
    /// Still in the table but held by no process: closed by its owner, or its owner died.
    Orphaned,
    /// Not in the table (already reset and gone, or not visible yet).
    Missing,
}

/// Looks up the socket whose local address is `dialer` and whose remote address is
/// `listener` (the proxy's listening address), in every table in order.
pub(crate) fn dialer_socket(
    dialer: SocketAddr,
    listener: SocketAddr,
) -> Result<DialerSocket, AttributeError> {
    let mut found = DialerSocket::Missing;
    for path in TABLES {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            // No IPv6 on this host: no tcp6 table.
            Err(e) if e.kind() == ErrorKind::NotFound && path != TABLES[0] => continue,
            Err(source) => {
                return Err(AttributeError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        if let Some(s) =
            find_in(&text, dialer, listener).map_err(|source| AttributeError::Parse {
                path: path.into(),
                source,
            })?
        {
            match s {
                DialerSocket::Open(_) => return Ok(s),
                _ => found = s,
            }
        }
    }
    Ok(found)
}

/// The dialer's socket in one table's text. A row held by a process wins over an orphaned one
/// with the same addresses (a previous connection on the same port, still closing).
fn find_in(
    text: &str,
    dialer: SocketAddr,
    listener: SocketAddr,
) -> Result<Option<DialerSocket>, ParseError> {
    let mut found = None;
    for row in parse_table(text) {
        let row = row?;
        if row.local == dialer && row.remote == listener {
            if row.inode != 0 {
                return Ok(Some(DialerSocket::Open(row.inode)));
            }
            found = Some(DialerSocket::Orphaned);
        }
    }
    Ok(found)
}

/// The `ppid` field of a `/proc/<pid>/stat` text. The command name, in parentheses, may itself
/// contain spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_ppid(text: &str) -> Option<u32> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// Whether `/proc/<pid>/task/<tid>/children` exists on this kernel (`CONFIG_PROC_CHILDREN`).
fn children_files() -> bool {
    Path::new("/proc/thread-self/children").exists()
}

/// The direct children of `pid`, from every thread's `children` file. A vanished process has
/// none.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|t| t.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// Parent -> children of every process, from `/proc/*/stat`: the fallback without
/// `children` files.
fn process_tree() -> BTreeMap<u32, Vec<u32>> {
    let mut tree: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return tree;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let ppid = fs::read_to_string(p.path().join("stat"))
            .ok()
            .and_then(|t| parse_stat_ppid(&t));
        if let Some(ppid) = ppid {
            tree.entry(ppid).or_default().push(pid);
        }
    }
    tree
}

/// Whether process `pid` has an fd on the socket `link` (`socket:[INODE]`).
fn holds(pid: u32, link: &OsString) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == link.as_os_str()))
}

/// The first candidate (by index) whose root process or one of its descendants holds socket
/// `inode`, and the pid that holds it.
pub(crate) fn owner(inode: u64, roots: &[u32]) -> Option<(usize, u32)> {
    let link = OsString::from(format!("socket:[{inode}]"));
    let mut tree = None;
    let use_children = children_files();
    for (i, &root) in roots.iter().enumerate() {
        if root == 0 {
            continue;
        }
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([root]);
        while let Some(pid) = queue.pop_front() {
            if !seen.insert(pid) || seen.len() > MAX_TREE {
                continue;
            }
            if holds(pid, &link) {
                return Some((i, pid));
            }
            if use_children {
                queue.extend(children(pid));
            } else {
                let tree = tree.get_or_insert_with(process_tree);
                queue.extend(tree.get(&pid).into_iter().flatten().copied());
            }
        }
    }
    None
}

/// Why a connection could not be attributed.
#[derive(Debug)]
pub(crate) enum Unattributed {
    /// The dialer's socket is not in the socket tables.
    NoSocket,
    /// The dialer's socket is held by no process (closed, or its process died).
    Orphaned,
    /// The socket is held, but by no candidate process or descendant.
    NotACandidate { inode: u64 },
    /// `/proc` could not be read or understood.
    Proc(AttributeError),
}

impl std::fmt::Display for Unattributed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unattributed::NoSocket => write!(f, "dialer socket not found in /proc/net/tcp"),
            Unattributed::Orphaned => write!(f, "dialer socket already closed"),
            Unattributed::NotACandidate { inode } => {
                write!(f, "socket {inode} held by no candidate process")
            }
            Unattributed::Proc(e) => write!(f, "{e}"),
        }
    }
}

/// Finds which of `roots` (candidate root pids) dialed the connection from `dialer` to
/// `listener`: `(index into roots, pid holding the socket)`. Retries briefly while the answer
/// may still change; stops early when `give_up()` (shutdown, abort).
pub(crate) fn attribute(
    dialer: SocketAddr,
    listener: SocketAddr,
    roots: &[u32],
    give_up: impl Fn() -> bool,
) -> Result<(usize, u32), Unattributed> {
    let mut pauses = RETRY_PAUSES.iter();
    loop {
        let why = match dialer_socket(dialer, listener) {
            Ok(DialerSocket::Open(inode)) => match owner(inode, roots) {
                Some(found) => return Ok(found),
                None => Unattributed::NotACandidate { inode },
            },
            Ok(DialerSocket::Missing) => Unattributed::NoSocket,
            // Will not come back, nor will a /proc it cannot parse.
            Ok(DialerSocket::Orphaned) => return Err(Unattributed::Orphaned),
            Err(e) => return Err(Unattributed::Proc(e)),
        };
        match pauses.next() {
            Some(&p) if !give_up() => thread::sleep(p),
            _ => return Err(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 23456 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 34567 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C351 0100007F:1F90 05 00000000:00000000 00:00000000 00000000  1000        0 0 3 0000000000000000
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:D431 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1
   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 888 1 0000000000000000 100 0 0 10 0
";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_ipv4_rows_in_host_byte_order() {
        let rows: Vec<TcpRow> = parse_table(TCP).collect::<Result<_, _>>().expect("parses");
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].local, addr("127.0.0.1:8080"));
        assert_eq!(rows[0].remote, addr("0.0.0.0:0"));
        assert_eq!(rows[0].state, 0x0A);
        assert_eq!(rows[1].local, addr("127.0.0.1:50000"));
        assert_eq!(rows[1].inode, 23456);
        assert_eq!(rows[3].inode, 0);
    }

    #[test]
    fn parses_ipv6_rows_and_unmaps_ipv4() {
        let rows: Vec<TcpRow> = parse_table(TCP6).collect::<Result<_, _>>().expect("parses");
        assert_eq!(rows[0].local, addr("127.0.0.1:54321"));
        assert_eq!(rows[0].remote, addr("127.0.0.1:8080"));
        assert_eq!(rows[0].inode, 777);
        assert_eq!(rows[1].local, addr("[::1]:22"));
    }

    #[test]
    fn finds_the_dialer_side_not_the_accepted_side() {
        let listener = addr("127.0.0.1:8080");
        let found = find_in(TCP, addr("127.0.0.1:50000"), listener).expect("parses");
        assert_eq!(found, Some(DialerSocket::Open(23456)));
        let closed = find_in(TCP, addr("127.0.0.1:50001"), listener).expect("parses");
        assert_eq!(closed, Some(DialerSocket::Orphaned));
        let none = find_in(TCP, addr("127.0.0.1:50002"), listener).expect("parses");
        assert_eq!(none, None);
        let v6 = find_in(TCP6, addr("127.0.0.1:54321"), listener).expect("parses");
        assert_eq!(v6, Some(DialerSocket::Open(777)));
    }

    #[test]
    fn malformed_rows_are_typed_errors() {
        let row = |s: &str| parse_row(7, s);
        let good = "0: 0100007F:1F90 00000000:0000 0A 0:0 00:0 0 1000 0 42";
        assert_eq!(row(good).map(|r| r.inode), Ok(42));
        assert_eq!(
            row("0: 0100007F:1F90 00000000:0000 0A"),
            Err(ParseError::TooFewFields { line: 7, found: 4 })
        );
        for bad_addr in [
            "0100007F",                             // no port
            "0100007F:",                            // empty port
            "0100007:1F90",                         // 7 hex digits
            "0100007G:1F90",                        // not hex
            "+100007F:1F90",                        // a sign from_str_radix would take
            "0100007F:11F90",                       // port too long
            "0100007F:1F90:1",                      // extra colon
            "é100007F:1F90",                        // multi-byte text must not split a char
            "0000000000000000FFFF00000100007:1F90", // 31 digits
        ] {
            let line = good.replacen("0100007F:1F90", bad_addr, 1);
            assert!(
                matches!(row(&line), Err(ParseError::BadAddress { line: 7, .. })),
                "{bad_addr} accepted: {:?}",
                row(&line)
            );
        }
        let bad_state = good.replacen(" 0A ", " XY ", 1);
        assert!(matches!(
            row(&bad_state),
            Err(ParseError::BadNumber { field: "state", .. })
        ));
        let bad_inode = good.replacen(" 42", " -1", 1);
        assert!(matches!(
            row(&bad_inode),
            Err(ParseError::BadNumber { field: "inode", .. })
        ));
        let table = format!("{TCP}   4: garbage\n");
        let errors: Vec<_> = parse_table(&table).filter_map(Result::err).collect();
        assert_eq!(errors, [ParseError::TooFewFields { line: 6, found: 2 }]);
        assert!(find_in(&table, addr("127.0.0.1:1"), addr("127.0.0.1:2")).is_err());
    }

    #[test]
    fn stat_ppid_survives_odd_command_names() {
        assert_eq!(parse_stat_ppid("42 (sh) S 7 42 42 0"), Some(7));
        assert_eq!(parse_stat_ppid("42 (a) b (c) R 9 1 1"), Some(9));
        assert_eq!(parse_stat_ppid("42 (x"), None);
        assert_eq!(parse_stat_ppid("42 (x) S"), None);
        assert_eq!(parse_stat_ppid("42 (x) S nine"), None);
    }

    #[test]
    fn attributes_an_own_socket_to_this_process_on_the_real_proc() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let la = l.local_addr().expect("addr");
        let c = std::net::TcpStream::connect(la).expect("connect");
        let (_s, peer) = l.accept().expect("accept");
        assert_eq!(c.local_addr().ok(), Some(peer));
        let me = std::process::id();
        let found = attribute(peer, la, &[0, me], || false);
        assert!(matches!(found, Ok((1, pid)) if pid == me), "{found:?}");
        // Nobody else holds it: a fake candidate set does not claim it.
        let nobody = attribute(peer, la, &[], || false);
        assert!(matches!(nobody, Err(Unattributed::NotACandidate { .. })));
        drop(c);
        assert!(matches!(
            dialer_socket(peer, la),
            Ok(DialerSocket::Orphaned | DialerSocket::Missing)
        ));
    }
}
