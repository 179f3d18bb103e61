//! `lazyfs BACKING MOUNTPOINT`: mounts BACKING at MOUNTPOINT and takes commands on stdin, one a
//! line, to try a store by hand or from a script:
//!   cut                              drop everything not fsynced, print what was dropped
//!   fail writes|fsyncs|all eio|enospc  make those operations fail from now on
//!   clear                            end the fault
//! "mounted" is printed once the mount is live. End of input unmounts and exits.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use lazyfs::{DiskFault, FaultErrno, FaultedOps, Mount};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backing, mountpoint] = args.as_slice() else {
        eprintln!(
            "usage: lazyfs BACKING MOUNTPOINT   (commands on stdin: cut, fail OPS ERRNO, clear)"
        );
        return ExitCode::from(2);
    };
    let mount = match Mount::new(Path::new(backing), Path::new(mountpoint)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("lazyfs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "mounted");
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["cut"] => match mount.power_cut() {
                Ok(r) => format!("{r:?}"),
                Err(e) => format!("error: {e}"),
            },
            ["fail", ops, errno] => match (parse_ops(ops), parse_errno(errno)) {
                (Some(ops), Some(errno)) => {
                    mount.set_fault(DiskFault { ops, errno });
                    "ok".to_string()
                }
                _ => format!("error: bad fault {line:?}"),
            },
            ["clear"] => {
                mount.clear_fault();
                "ok".to_string()
            }
            [] => continue,
            _ => format!("error: unknown command {line:?}"),
        };
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }
    match mount.unmount() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lazyfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_ops(s: &str) -> Option<FaultedOps> {
    match s {
        "writes" => Some(FaultedOps::Writes),
        "fsyncs" => Some(FaultedOps::Fsyncs),
        "all" => Some(FaultedOps::WritesAndFsyncs),
        _ => None,
    }
}

fn parse_errno(s: &str) -> Option<FaultErrno> {
    match s {
        "eio" => Some(FaultErrno::Eio),
        "enospc" => Some(FaultErrno::Enospc),
        _ => None,
    }
}
