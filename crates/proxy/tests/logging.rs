//! Every decision leaves a log line (target `proxy`) with its verb. Alone in its binary because
//! it installs the process-wide logger.

mod util;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};
use proxy::{Candidates, HealMode, LinkId, Proxy, ProxyConfig};
use util::*;

struct Capture(Mutex<Vec<String>>);

impl Log for Capture {
    fn enabled(&self, m: &Metadata) -> bool {
        m.target() == "proxy" && m.level() <= Level::Trace
    }
    fn log(&self, r: &Record) {
        if self.enabled(r.metadata()) {
            let line = format!("{} {}", r.level(), r.args());
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }
    fn flush(&self) {}
}

static LOG: Capture = Capture(Mutex::new(Vec::new()));

fn lines() -> Vec<String> {
    LOG.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[test]
fn control_and_connection_decisions_are_logged_with_their_verbs() {
    log::set_logger(&LOG).expect("first logger");
    log::set_max_level(LevelFilter::Trace);

    let (target, taddr) = target();
    let proxy = Proxy::new(ProxyConfig {
        heal_mode: HealMode::Deliver,
        seed: 99,
    });
    let ab = LinkId::new("a", "b");
    let addr = proxy.add_link(ab.clone(), taddr).expect("add link");
    let mut c = connect(addr);
    c.write_all(b"1").expect("write");
    let mut s = accept(&target);
    assert_eq!(read_n(&mut s, 1), b"1");

    proxy
        .delay([&ab], Duration::from_millis(1), Duration::ZERO)
        .expect("delay");
    c.write_all(b"2").expect("write");
    assert_eq!(read_n(&mut s, 1), b"2");
    proxy.partition([&ab]).expect("partition");
    c.write_all(b"3").expect("write");
    assert!(eventually(IO_TIMEOUT, || lines()
        .iter()
        .any(|l| l.starts_with("DEBUG hold a->b on a->b#0"))));
    // A connection whose handshake is held, closed by its dialer before the heal: a ghost.
    let mut ghost = connect(addr);
    ghost.write_all(b"4").expect("write");
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ab]
        .connections_total
        == 2));
    drop(ghost);
    proxy.heal_all();
    assert_eq!(read_n(&mut s, 1), b"3");
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ab].ghosts == 1));

    // A destination listener with no candidates: every connection is unattributed.
    let no_one: Candidates = Arc::new(Vec::new);
    let d = proxy
        .add_destination("d", taddr, no_one)
        .expect("add destination");
    let mut u = connect(d);
    assert!(ends_within(&mut u, IO_TIMEOUT));
    let port = u.local_addr().expect("local addr").port();
    drop(proxy);

    let log = lines();
    for want in [
        "INFO start seed=99",
        "INFO link a->b listen=",
        "DEBUG accept a->b#0",
        "INFO delay [a->b] base=1ms",
        "TRACE delay a->b on a->b#0: 1 bytes by 1ms",
        "INFO partition [a->b]",
        "DEBUG hold a->b on a->b#0",
        "INFO heal all [a->b]",
        "DEBUG release a->b on a->b#0: 1 bytes",
        "DEBUG drop a->b#1: ghost: the dialer (port ",
        "INFO destination d listen=",
        "DEBUG accept *->d#0 from 127.0.0.1:",
        &format!("WARN unattributed *->d#0 from source port {port}: "),
        "INFO stopped",
    ] {
        assert!(
            log.iter().any(|l| l.starts_with(want)),
            "no line starting {want:?} in:\n{}",
            log.join("\n")
        );
    }
}
