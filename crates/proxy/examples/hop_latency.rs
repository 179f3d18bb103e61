//! How much latency one proxy hop adds on loopback.
//!
//! Round trips of small messages to an echo server, directly and through one proxy link in
//! `Pass` (so two proxied legs per round trip: request and echo), measured in alternating
//! blocks so that background load hits both alike. Prints p50/p99/p99.9 side by side.
//!
//! ```text
//! cargo run -p proxy --release --example hop_latency [-- --iters 20000 --size 64]
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use proxy::{LinkId, Proxy, ProxyConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut iters = 20_000usize;
    let mut size = 64usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next().ok_or("missing value")?;
        match a.as_str() {
            "--iters" => iters = value.parse()?,
            "--size" => size = value.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    let echo = echo_server()?;
    let proxy = Proxy::new(ProxyConfig::default());
    let via = proxy.add_link(LinkId::new("client", "echo"), echo)?;
    let mut direct = connect(echo)?;
    let mut proxied = connect(via)?;

    let msg = vec![0x5a; size];
    let mut buf = vec![0; size];
    // Warm up both paths (page faults, scheduler, TCP windows).
    for _ in 0..1000 {
        round_trip(&mut direct, &msg, &mut buf)?;
        round_trip(&mut proxied, &msg, &mut buf)?;
    }
    let blocks = 20;
    let per_block = iters.div_ceil(blocks);
    let (mut d, mut p) = (Vec::with_capacity(iters), Vec::with_capacity(iters));
    for _ in 0..blocks {
        for _ in 0..per_block {
            d.push(round_trip(&mut direct, &msg, &mut buf)?);
        }
        for _ in 0..per_block {
            p.push(round_trip(&mut proxied, &msg, &mut buf)?);
        }
    }
    d.sort_unstable();
    p.sort_unstable();

    println!(
        "round trip of {size}-byte messages on loopback, {} samples each",
        d.len()
    );
    println!("{:>10} {:>12} {:>12} {:>12}", "", "p50", "p99", "p99.9");
    let row = |name: &str, v: &[Duration]| {
        println!(
            "{name:>10} {:>12.1?} {:>12.1?} {:>12.1?}",
            pct(v, 0.50),
            pct(v, 0.99),
            pct(v, 0.999)
        )
    };
    row("direct", &d);
    row("proxied", &p);
    let added = |q| pct(&p, q).saturating_sub(pct(&d, q));
    println!(
        "{:>10} {:>12.1?} {:>12.1?} {:>12.1?}",
        "added",
        added(0.50),
        added(0.99),
        added(0.999)
    );
    println!("(one proxy hop: the request and the reply each cross the proxy once)");
    Ok(())
}

fn round_trip(s: &mut TcpStream, msg: &[u8], buf: &mut [u8]) -> std::io::Result<Duration> {
    let t = Instant::now();
    s.write_all(msg)?;
    s.read_exact(buf)?;
    Ok(t.elapsed())
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn echo_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut buf = [0u8; 64 * 1024];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}
