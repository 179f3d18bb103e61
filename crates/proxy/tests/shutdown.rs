//! Dropping the proxy stops every thread and frees every port, even with connections that are
//! held, delayed, or blocked writing to a target that does not read.
//!
//! Alone in its binary because it counts the threads of its own process.

mod util;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use proxy::{HealMode, LinkId, LinkState, Proxy, ProxyConfig};
use util::*;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn drop_stops_all_threads_resets_connections_and_frees_ports() {
    let (target, taddr) = target();
    let baseline = threads();
    let proxy = Proxy::new(ProxyConfig {
        heal_mode: HealMode::Deliver,
        seed: 3,
    });
    let (ab, ac) = (LinkId::new("a", "b"), LinkId::new("a", "c"));
    let via_b = proxy.add_link(ab.clone(), taddr).expect("add a->b");
    let via_c = proxy.add_link(ac.clone(), taddr).expect("add a->c");

    let open = |via| {
        let mut c = connect(via);
        c.write_all(b"!").expect("write");
        let mut s = accept(&target);
        assert_eq!(read_n(&mut s, 1), b"!");
        (c, s)
    };
    // Plain, delayed with bytes queued, held with bytes held, and one whose target never reads
    // (its pump ends up blocked in a write).
    let (mut plain, _plain_s) = open(via_b);
    let (mut slow, _slow_s) = open(via_c);
    proxy
        .set(
            &ac,
            LinkState::Delay {
                base: Duration::from_secs(60),
                jitter: Duration::ZERO,
            },
        )
        .expect("delay");
    slow.write_all(b"queued").expect("write");
    let (stuck, _stuck_s) = open(via_b);
    let mut flood = stuck.try_clone().expect("clone");
    let flooder = thread::spawn(move || {
        let chunk = vec![0u8; 64 * 1024];
        // Ends with an error once the proxy resets the connection.
        while flood.write_all(&chunk).is_ok() {}
    });
    thread::sleep(Duration::from_millis(100));
    let (mut held, _held_s) = open(via_b);
    proxy.partition([&ab]).expect("hold");
    held.write_all(b"held").expect("write");
    // A connection still waiting for its dial under the hold.
    let mut pending = connect(via_b);
    thread::sleep(Duration::from_millis(100));
    assert!(
        threads() > baseline + 8,
        "connections run their own threads"
    );

    let t = Instant::now();
    drop(proxy);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "drop took {:?}",
        t.elapsed()
    );

    for c in [&mut plain, &mut slow, &mut held, &mut pending] {
        assert!(
            ends_within(c, IO_TIMEOUT),
            "a proxied connection outlived the proxy"
        );
    }
    // The flooder's socket is reset too; its write fails.
    flooder.join().expect("flooder");
    drop(stuck);

    assert!(
        eventually(Duration::from_secs(5), || threads() == baseline),
        "threads left: {} (baseline {baseline})",
        threads()
    );
    for via in [via_b, via_c] {
        assert!(
            TcpStream::connect(via).is_err(),
            "{via} still accepts connections"
        );
        TcpListener::bind(via).expect("listen port released");
    }
}
