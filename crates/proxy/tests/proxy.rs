//! The proxy against plain sockets: pass-through, load, hold/heal in both modes, one-way cuts,
//! delay, live state switches, endpoint closes and resets, API misuse.
//!
//! Timing assertions are lower bounds only ("no byte before heal", "latency >= base"); upper
//! bounds are generous deadlines that only catch a hang. Shutdown has its own binary
//! (tests/shutdown.rs) because it counts the process's threads.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use proxy::{cut_between, HealMode, LinkId, LinkState, Proxy, ProxyConfig, ProxyError};
use util::*;

fn link(a: &str, b: &str) -> LinkId {
    LinkId::new(a, b)
}

fn proxy(heal_mode: HealMode) -> Proxy {
    Proxy::new(ProxyConfig { heal_mode, seed: 1 })
}

/// A proxy with link a->b to a target the test accepts from, and one connection through it,
/// already carrying a byte (so the proxy has dialed).
struct Pair {
    proxy: Proxy,
    target: std::net::TcpListener,
    listen: std::net::SocketAddr,
    client: TcpStream,
    server: TcpStream,
}

fn pair(heal_mode: HealMode) -> Pair {
    let (target, taddr) = target();
    let proxy = proxy(heal_mode);
    let listen = proxy.add_link(link("a", "b"), taddr).expect("add link");
    let mut client = connect(listen);
    client.write_all(b"!").expect("write");
    let mut server = accept(&target);
    assert_eq!(read_n(&mut server, 1), b"!");
    Pair {
        proxy,
        target,
        listen,
        client,
        server,
    }
}

#[test]
fn pass_through_echo_and_counters() {
    let echo = echo_server();
    let proxy = proxy(HealMode::Deliver);
    let ab = link("a", "b");
    let addr = proxy.add_link(ab.clone(), echo).expect("add link");
    assert_eq!(proxy.listen_addr(&ab), Some(addr));
    let mut s = connect(addr);
    s.write_all(b"hello proxy").expect("write");
    assert_eq!(read_n(&mut s, 11), b"hello proxy");

    // Counters are bumped right after the write the reader may already have seen.
    assert!(eventually(IO_TIMEOUT, || {
        let st = proxy.stats();
        st[&ab].bytes == 11 && st[&ab.reversed()].bytes == 11
    }));
    let st = proxy.stats();
    assert_eq!(st[&ab].connections_total, 1);
    assert_eq!(st[&ab].listen_addr, Some(addr));
    assert_eq!(st[&ab].target, Some(echo));
    assert_eq!(
        st[&ab.reversed()].listen_addr,
        None,
        "reply direction has no listener"
    );
    drop(s);
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ab]
        .connections_active
        == 0));
}

#[test]
fn fifty_concurrent_connections_each_get_their_own_bytes_back() {
    const CONNS: usize = 50;
    const LEN: usize = 256 * 1024;
    let echo = echo_server();
    let proxy = proxy(HealMode::Deliver);
    let ab = link("a", "b");
    let addr = proxy.add_link(ab.clone(), echo).expect("add link");
    let workers: Vec<_> = (0..CONNS)
        .map(|i| {
            thread::spawn(move || {
                let data = pattern(i as u64, LEN);
                let mut s = connect(addr);
                let mut w = s.try_clone().expect("clone");
                let sent = data.clone();
                // Write from another thread: echoing 256 KiB would otherwise fill every buffer
                // on the way and deadlock the test, not the proxy.
                let writer = thread::spawn(move || write_chunks(&mut w, &sent, 8192));
                let got = read_n(&mut s, LEN);
                writer.join().expect("writer").expect("write");
                got == data
            })
        })
        .collect();
    let ok = workers
        .into_iter()
        .map(|w| w.join().expect("worker"))
        .filter(|&same| same)
        .count();
    assert_eq!(ok, CONNS, "every connection got exactly its own bytes back");
    assert_eq!(proxy.stats()[&ab].connections_total, CONNS as u64);
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ab]
        .connections_active
        == 0));
}

#[test]
fn twenty_mib_each_way_at_once_arrive_intact() {
    const LEN: usize = 20 << 20;
    let p = pair(HealMode::Deliver);
    let up = pattern(11, LEN);
    let down = pattern(22, LEN);
    let checksum = |d: &[u8]| {
        let mut f = Fnv::default();
        f.update(d);
        f.0
    };
    let (want_up, want_down) = (checksum(&up), checksum(&down));

    // Each side writes from one thread and reads (checksumming) from another.
    let transfer = |mut s: TcpStream, out: Vec<u8>| {
        let mut w = s.try_clone().expect("clone");
        let writer = thread::spawn(move || write_chunks(&mut w, &out, 256 * 1024));
        thread::spawn(move || {
            let mut f = Fnv::default();
            let mut buf = vec![0; 256 * 1024];
            let mut left = LEN;
            while left > 0 {
                let n = s.read(&mut buf[..left.min(256 * 1024)]).expect("read");
                assert!(n > 0, "early EOF with {left} bytes to go");
                f.update(&buf[..n]);
                left -= n;
            }
            writer.join().expect("writer").expect("write");
            f.0
        })
    };
    let at_server = transfer(p.server, down);
    let at_client = transfer(p.client, up);
    assert_eq!(at_server.join().expect("server side"), want_up);
    assert_eq!(at_client.join().expect("client side"), want_down);
}

#[test]
fn hold_then_heal_deliver_releases_bytes_in_order_and_none_before() {
    let mut p = pair(HealMode::Deliver);
    let ab = link("a", "b");
    p.proxy
        .partition(&[ab.clone(), ab.reversed()])
        .expect("partition");
    let data = pattern(7, 300_000);
    let mut w = p.client.try_clone().expect("clone");
    let sent = data.clone();
    // More than the proxy keeps: the rest waits in kernel buffers, the writer may block.
    let writer = thread::spawn(move || write_chunks(&mut w, &sent, 10_000));
    p.server.write_all(b"reply").expect("write");

    assert!(read_for(&mut p.server, Duration::from_millis(300)).is_empty());
    assert!(read_for(&mut p.client, Duration::from_millis(100)).is_empty());

    p.proxy.heal_all();
    assert_eq!(read_n(&mut p.server, data.len()), data);
    assert_eq!(read_n(&mut p.client, 5), b"reply");
    writer.join().expect("writer").expect("write");
    // The connection carries on.
    p.client.write_all(b"more").expect("write");
    assert_eq!(read_n(&mut p.server, 4), b"more");
    assert_eq!(p.proxy.stats()[&ab].resets, 0);
}

#[test]
fn hold_then_heal_reset_resets_the_connection_and_new_ones_work() {
    let mut p = pair(HealMode::Reset);
    let ab = link("a", "b");
    p.proxy.partition([&ab]).expect("partition");
    p.client.write_all(b"lost").expect("write");
    assert!(read_for(&mut p.server, Duration::from_millis(200)).is_empty());
    p.proxy.heal([&ab]).expect("heal");

    // The target side gets a RST, never the held bytes.
    let mut buf = [0u8; 16];
    let err = p.server.read(&mut buf).expect_err("reset, not data or EOF");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(ends_within(&mut p.client, IO_TIMEOUT));
    assert!(eventually(IO_TIMEOUT, || p.proxy.stats()[&ab].resets == 1));

    let mut c = connect(p.listen);
    c.write_all(b"fresh").expect("write");
    let mut s = accept(&p.target);
    assert_eq!(read_n(&mut s, 5), b"fresh");
}

#[test]
fn idle_connection_survives_a_heal_in_reset_mode() {
    let mut p = pair(HealMode::Reset);
    let ab = link("a", "b");
    p.proxy
        .partition(&[ab.clone(), ab.reversed()])
        .expect("partition");
    thread::sleep(Duration::from_millis(50));
    p.proxy.heal_all();
    p.client.write_all(b"still here").expect("write");
    assert_eq!(read_n(&mut p.server, 10), b"still here");
    assert_eq!(p.proxy.stats()[&ab].resets, 0);
}

#[test]
fn one_way_cut_blocks_that_direction_on_connections_dialed_either_way() {
    let (la, a_addr) = target();
    let (lb, b_addr) = target();
    let proxy = proxy(HealMode::Deliver);
    let ab = link("a", "b");
    let via_ab = proxy.add_link(ab.clone(), b_addr).expect("add a->b");
    let via_ba = proxy.add_link(ab.reversed(), a_addr).expect("add b->a");

    // c1: a dialed b. c2: b dialed a.
    let mut a1 = connect(via_ab);
    a1.write_all(b"1").expect("write");
    let mut b1 = accept(&lb);
    assert_eq!(read_n(&mut b1, 1), b"1");
    let mut b2 = connect(via_ba);
    b2.write_all(b"2").expect("write");
    let mut a2 = accept(&la);
    assert_eq!(read_n(&mut a2, 1), b"2");

    proxy.partition([&ab]).expect("one-way cut");
    a1.write_all(b"a-request").expect("write");
    b1.write_all(b"b-reply").expect("write");
    b2.write_all(b"b-request").expect("write");
    a2.write_all(b"a-reply").expect("write");

    // b -> a flows on both connections...
    assert_eq!(read_n(&mut a1, 7), b"b-reply");
    assert_eq!(read_n(&mut a2, 9), b"b-request");
    // ...a -> b flows on neither.
    assert!(read_for(&mut b1, Duration::from_millis(200)).is_empty());
    assert!(read_for(&mut b2, Duration::from_millis(100)).is_empty());

    proxy.heal_all();
    assert_eq!(read_n(&mut b1, 9), b"a-request");
    assert_eq!(read_n(&mut b2, 7), b"a-reply");
}

#[test]
fn delay_adds_at_least_base_latency_per_direction() {
    let echo = echo_server();
    let proxy = proxy(HealMode::Deliver);
    let ab = link("a", "b");
    let addr = proxy.add_link(ab.clone(), echo).expect("add link");
    let mut s = connect(addr);
    let base = Duration::from_millis(40);
    let jitter = Duration::from_millis(10);
    let rtt = |s: &mut TcpStream| {
        let t = Instant::now();
        s.write_all(b"ping").expect("write");
        assert_eq!(read_n(s, 4), b"ping");
        t.elapsed()
    };

    proxy
        .set(&ab, LinkState::Delay { base, jitter })
        .expect("delay");
    for _ in 0..3 {
        let d = rtt(&mut s);
        assert!(d >= base, "one delayed direction: rtt {d:?} < {base:?}");
    }
    proxy
        .delay(&[ab.clone(), ab.reversed()], base, jitter)
        .expect("delay both");
    for _ in 0..3 {
        let d = rtt(&mut s);
        assert!(
            d >= 2 * base,
            "two delayed directions: rtt {d:?} < {:?}",
            2 * base
        );
    }
}

#[test]
fn jitter_never_reorders_bytes() {
    let mut p = pair(HealMode::Deliver);
    let ab = link("a", "b");
    p.proxy
        .set(
            &ab,
            LinkState::Delay {
                base: Duration::from_millis(1),
                jitter: Duration::from_millis(30),
            },
        )
        .expect("delay");
    // Many small writes, each likely its own chunk with its own delay draw.
    let mut sent = Vec::new();
    for i in 0u32..300 {
        let b = i.to_be_bytes();
        p.client.write_all(&b).expect("write");
        sent.extend_from_slice(&b);
        if i % 10 == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(read_n(&mut p.server, sent.len()), sent);
}

#[test]
fn switching_states_on_a_live_stream_loses_and_reorders_nothing() {
    const LEN: usize = 2 << 20;
    let p = pair(HealMode::Deliver);
    let ab = link("a", "b");
    let data = pattern(5, LEN);
    let received = Arc::new(AtomicUsize::new(0));

    let mut w = p.client.try_clone().expect("clone");
    let sent = data.clone();
    // Paced so the stream is still running while the states change.
    let writer = thread::spawn(move || {
        for c in sent.chunks(4096) {
            w.write_all(c)?;
            thread::sleep(Duration::from_micros(500));
        }
        Ok::<_, std::io::Error>(())
    });
    let mut server = p.server;
    let count = Arc::clone(&received);
    let reader = thread::spawn(move || {
        let mut got = Vec::with_capacity(LEN);
        let mut buf = vec![0; 65536];
        while got.len() < LEN {
            let n = server.read(&mut buf).expect("read");
            assert!(n > 0, "early EOF");
            got.extend_from_slice(&buf[..n]);
            count.store(got.len(), Ordering::SeqCst);
        }
        got
    });

    assert!(eventually(IO_TIMEOUT, || received.load(Ordering::SeqCst) > 0));
    let delay = LinkState::Delay {
        base: Duration::from_millis(2),
        jitter: Duration::from_millis(3),
    };
    p.proxy.set(&ab, delay).expect("delay");
    thread::sleep(Duration::from_millis(50));
    p.proxy.partition([&ab]).expect("hold");
    // Let a chunk that was already being written finish, then nothing more may arrive.
    thread::sleep(Duration::from_millis(100));
    let frozen = received.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        received.load(Ordering::SeqCst),
        frozen,
        "bytes passed a held link"
    );
    p.proxy.heal([&ab]).expect("heal");
    assert!(eventually(IO_TIMEOUT, || received.load(Ordering::SeqCst) > frozen));
    p.proxy.set(&ab, delay).expect("delay again");
    thread::sleep(Duration::from_millis(50));
    p.proxy.set(&ab, LinkState::Pass).expect("pass");

    writer.join().expect("writer").expect("write");
    let got = reader.join().expect("reader");
    assert!(got == data, "stream differs after state switches");
}

#[test]
fn removing_a_long_delay_flushes_queued_bytes_promptly() {
    let mut p = pair(HealMode::Deliver);
    let ab = link("a", "b");
    p.proxy
        .set(
            &ab,
            LinkState::Delay {
                base: Duration::from_secs(30),
                jitter: Duration::ZERO,
            },
        )
        .expect("delay");
    p.client.write_all(b"late").expect("write");
    assert!(read_for(&mut p.server, Duration::from_millis(100)).is_empty());
    p.proxy.heal_all();
    let t = Instant::now();
    assert_eq!(read_n(&mut p.server, 4), b"late");
    assert!(t.elapsed() < Duration::from_secs(5), "heal did not flush");
}

#[test]
fn connection_opened_during_hold_is_dialed_only_after_heal() {
    let (target, taddr) = target();
    let proxy = proxy(HealMode::Deliver);
    let ab = link("a", "b");
    let addr = proxy.add_link(ab.clone(), taddr).expect("add link");
    proxy
        .partition(cut_between(&[["a"], ["b"]]))
        .expect("partition");
    let mut c = connect(addr);
    c.write_all(b"early").expect("write");
    assert!(
        accept_within(&target, Duration::from_millis(200)).is_none(),
        "the target saw a connection across a partition"
    );
    proxy.heal_all();
    let mut s = accept(&target);
    assert_eq!(read_n(&mut s, 5), b"early");
}

#[test]
fn connection_opened_during_hold_is_reset_on_heal_in_reset_mode() {
    let (target, taddr) = target();
    let proxy = proxy(HealMode::Reset);
    let ab = link("a", "b");
    let addr = proxy.add_link(ab.clone(), taddr).expect("add link");
    proxy.partition([&ab]).expect("partition");
    let mut c = connect(addr);
    c.write_all(b"early").expect("write");
    thread::sleep(Duration::from_millis(50));
    proxy.heal_all();
    assert!(ends_within(&mut c, IO_TIMEOUT));
    assert!(accept_within(&target, Duration::from_millis(100)).is_none());
}

#[test]
fn half_close_and_reset_pass_through() {
    let mut p = pair(HealMode::Deliver);
    // FIN from the dialer: the target reads EOF and can still answer.
    p.client.shutdown(Shutdown::Write).expect("shutdown");
    assert!(
        read_for(&mut p.server, IO_TIMEOUT).is_empty(),
        "EOF expected"
    );
    p.server.write_all(b"bye").expect("write");
    assert_eq!(read_n(&mut p.client, 3), b"bye");
    drop(p.server);
    assert!(ends_within(&mut p.client, IO_TIMEOUT));

    // RST from the target: the dialer sees a reset.
    let mut c = connect(p.listen);
    c.write_all(b"x").expect("write");
    let s = accept(&p.target);
    set_linger_zero_for_test(&s);
    drop(s);
    let mut buf = [0u8; 4];
    let err = loop {
        match c.read(&mut buf) {
            Ok(0) => panic!("expected a reset, got EOF"),
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

/// Abortive close from a test endpoint, through the same syscall the proxy uses.
fn set_linger_zero_for_test(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd for the borrow of `s`; pointer and size describe `linger` exactly.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_LINGER");
}

#[test]
fn dial_failure_resets_the_dialer_and_is_counted() {
    let (l, dead) = target();
    drop(l); // nothing listens there any more
    let proxy = proxy(HealMode::Deliver);
    let ab = link("a", "b");
    let addr = proxy.add_link(ab.clone(), dead).expect("add link");
    let mut c = connect(addr);
    assert!(ends_within(&mut c, IO_TIMEOUT));
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ab].dial_failures == 1));
}

#[test]
fn partition_replaces_the_held_set_and_keeps_delays() {
    let echo = echo_server();
    let proxy = proxy(HealMode::Deliver);
    for (a, b) in [("n1", "n2"), ("n1", "n3"), ("n2", "n3")] {
        proxy.add_link(link(a, b), echo).expect("add link");
    }
    let slow = LinkState::Delay {
        base: Duration::from_millis(5),
        jitter: Duration::ZERO,
    };
    proxy.set(&link("n2", "n3"), slow).expect("delay");
    proxy
        .partition(cut_between(&[vec!["n1"], vec!["n2", "n3"]]))
        .expect("isolate n1");
    assert_eq!(proxy.state(&link("n3", "n1")), Some(LinkState::Hold));
    proxy
        .partition(&[link("n2", "n1")])
        .expect("switch to a one-way cut");
    let states: Vec<(String, LinkState)> = proxy
        .stats()
        .into_iter()
        .map(|(l, s)| (l.to_string(), s.state))
        .collect();
    let expect = [
        ("n1->n2", LinkState::Pass),
        ("n1->n3", LinkState::Pass),
        ("n2->n1", LinkState::Hold),
        ("n2->n3", slow),
        ("n3->n1", LinkState::Pass),
        ("n3->n2", LinkState::Pass),
    ];
    let expect: Vec<(String, LinkState)> =
        expect.iter().map(|(l, s)| (l.to_string(), *s)).collect();
    assert_eq!(states, expect);
    proxy.heal_all();
    assert!(proxy.stats().values().all(|s| s.state == LinkState::Pass));
}

#[test]
fn api_misuse_is_a_typed_error_and_changes_nothing() {
    let echo = echo_server();
    let proxy = proxy(HealMode::Deliver);
    let ab = link("a", "b");
    proxy.add_link(ab.clone(), echo).expect("add link");
    assert!(matches!(
        proxy.add_link(ab.clone(), echo),
        Err(ProxyError::DuplicateLink(l)) if l == ab
    ));
    assert!(matches!(
        proxy.add_link(link("a", "a"), echo),
        Err(ProxyError::SelfLink(_))
    ));
    // The reverse of an added link is known (it governs replies); other pairs are not.
    proxy
        .set(&ab.reversed(), LinkState::Pass)
        .expect("reverse is known");
    let bad = [ab.clone(), link("a", "zz")];
    assert!(matches!(
        proxy.partition(&bad),
        Err(ProxyError::UnknownLink(l)) if l == link("a", "zz")
    ));
    assert_eq!(
        proxy.state(&ab),
        Some(LinkState::Pass),
        "a rejected list changed a link"
    );
}

#[test]
fn held_connection_closed_by_its_dialer_is_dropped_as_a_ghost_on_heal() {
    let (target, taddr) = target();
    let proxy = proxy(HealMode::Deliver);
    let ab = link("a", "b");
    let addr = proxy.add_link(ab.clone(), taddr).expect("add link");
    proxy.partition([&ab]).expect("partition");
    let mut c = connect(addr);
    c.write_all(b"ghost").expect("write");
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ab]
        .connections_total
        == 1));
    drop(c); // a full close, as a dying process's kernel does
    proxy.heal_all();
    assert!(
        accept_within(&target, Duration::from_millis(300)).is_none(),
        "a ghost reached the target"
    );
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ab].ghosts == 1));
    assert_eq!(proxy.stats()[&ab].connections_active, 0);

    // A fresh connection works.
    let mut c = connect(addr);
    c.write_all(b"alive").expect("write");
    let mut s = accept(&target);
    assert_eq!(read_n(&mut s, 5), b"alive");
}

#[test]
fn held_connection_half_closed_by_its_dialer_is_delivered_on_heal() {
    let (target, taddr) = target();
    let proxy = proxy(HealMode::Deliver);
    let ab = link("a", "b");
    let addr = proxy.add_link(ab.clone(), taddr).expect("add link");
    proxy.partition([&ab]).expect("partition");
    let mut c = connect(addr);
    c.write_all(b"request").expect("write");
    c.shutdown(Shutdown::Write).expect("half-close");
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ab]
        .connections_total
        == 1));
    thread::sleep(Duration::from_millis(50));
    proxy.heal_all();
    let mut s = accept(&target);
    assert_eq!(read_n(&mut s, 7), b"request");
    assert!(
        read_for(&mut s, IO_TIMEOUT).is_empty(),
        "EOF after the bytes"
    );
    s.write_all(b"answer").expect("write");
    assert_eq!(read_n(&mut c, 6), b"answer");
    assert_eq!(proxy.stats()[&ab].ghosts, 0);
}
