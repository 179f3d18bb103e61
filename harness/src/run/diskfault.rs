//! Disk faults: power cuts, failing writes and fsyncs, and flipped bits.
//!
//! For `power-cut` and `disk-error` every node's data directory is a lazyfs mount (FUSE) over
//! `<run>/disks/<id>`, made before the node first starts and kept across its restarts, so the
//! harness knows what each node has written and not yet made durable. A SIGKILL alone keeps
//! all of that (the page cache survives the process); a power cut drops it. Mounts go away
//! with the [`Cluster`](super::launcher::Cluster) that holds them, and with the harness
//! process however it ends (fusermount3's auto_unmount).
//!
//! Events (see nemesis.rs for the others):
//! - `power-cut` / `restart`, value `{"id": 7, "nodes": ["n1","n2"], "targets": "majority",
//!   "lost": {"n1": {"bytes": 4096, "files": 1, "overwrites": 0, "namespace_ops": 2}}}`;
//! - `disk-error` / `disk-heal`, value `{"id": 8, "node": "n3", "ops": "fsyncs", "errno": "EIO"}`;
//!   the heal says how many operations failed (`"failed_ops"`) and restarts the node if the
//!   fault stopped it. A node that exits while its disk fails is recorded as `crash` with
//!   `"cause": "disk-error"` and the fault's id: stopping is a correct answer to a failing
//!   disk, so it does not fail the run;
//! - `bitflip` / `restart`, value `{"id": 9, "node": "n2", "file": "log/00000001.seg",
//!   "offset": 1234, "bit": 5}`: the node is SIGKILLed, the bit flipped, the node restarted
//!   when the fault ends. If it then refuses to start (it should: a checksum caught the flip),
//!   `bitflip-refused` records the last line of its log, the bit is put back and the node
//!   restarted (`bitflip-repair`, then `restart`). If it starts on the corrupted file, the
//!   history shows whether it served garbage.

use super::launcher::{log_tail, NodeState};
use super::nemesis::{Active, Nemesis, Undo};
use super::progress::say;
use super::schedule::{Target, Targets};
use anyhow::{Context, Result};
use lazyfs::{BitFlip, DiskFault, FaultErrno, FaultedOps};
use rand::SeedableRng;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a node whose bit was flipped gets to start or refuse before it counts as started.
const BITFLIP_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Each node's lazyfs mount, when the run has any.
#[derive(Debug, Default)]
pub struct Disks {
    mounts: Vec<Option<lazyfs::Mount>>,
}

impl Disks {
    /// Mounts each `data_dir` over a fresh `backing_root/<id>`.
    pub fn mount(backing_root: &Path, nodes: &[(String, PathBuf)]) -> Result<Disks> {
        lazyfs::check_available().context("power-cut and disk-error need FUSE")?;
        let mut disks = Disks::default();
        for (id, data_dir) in nodes {
            let backing = backing_root.join(id);
            if backing.exists() {
                // A retried cluster start: its nodes start empty.
                std::fs::remove_dir_all(&backing)
                    .with_context(|| format!("clearing {}", backing.display()))?;
            }
            std::fs::create_dir_all(&backing)
                .with_context(|| format!("creating {}", backing.display()))?;
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let mount = lazyfs::Mount::new(&backing, data_dir)
                .with_context(|| format!("mounting lazyfs for node {id}"))?;
            disks.mounts.push(Some(mount));
        }
        Ok(disks)
    }

    fn get(&self, i: usize) -> Option<&lazyfs::Mount> {
        self.mounts.get(i).and_then(Option::as_ref)
    }

    pub fn mounted(&self) -> bool {
        self.mounts.iter().any(Option::is_some)
    }

    /// Where node `i`'s files really are: the backing directory when mounted.
    fn files_of(&self, i: usize, data_dir: &Path) -> PathBuf {
        match self.get(i) {
            Some(m) => m.backing().to_path_buf(),
            None => data_dir.to_path_buf(),
        }
    }
}

fn parse_fault(ops: &str, errno: &str) -> DiskFault {
    DiskFault {
        ops: match ops {
            "writes" => FaultedOps::Writes,
            "fsyncs" => FaultedOps::Fsyncs,
            _ => FaultedOps::WritesAndFsyncs,
        },
        errno: match errno {
            "ENOSPC" => FaultErrno::Enospc,
            _ => FaultErrno::Eio,
        },
    }
}

impl Nemesis<'_> {
    pub(super) fn power_cut(&mut self, targets: &Targets) -> Option<Active> {
        let (nodes, leader) = self.resolve(targets);
        let value = json!({"nodes": self.ids(&nodes), "targets": targets.name(),
                           "leader": leader.map(|l| self.cluster.id(l))});
        if !self.cluster.disks().mounted() {
            self.skip("power-cut", value, "no lazyfs mounts".into());
            return None;
        }
        let up: Vec<usize> = nodes
            .into_iter()
            .filter(|&i| self.cluster.state(i) != NodeState::Down)
            .collect();
        if up.is_empty() {
            self.skip(
                "power-cut",
                value,
                "every target node was already down".into(),
            );
            return None;
        }
        self.cluster.kill_many(&up);
        let mut lost = serde_json::Map::new();
        for &i in &up {
            let id = self.cluster.id(i).to_string();
            let Some(mount) = self.cluster.disks().get(i) else {
                continue;
            };
            match mount.power_cut() {
                Ok(r) => {
                    lost.insert(
                        id,
                        json!({"bytes": r.bytes_truncated, "files": r.files_rolled_back,
                               "overwrites": r.overwrites_undone,
                               "namespace_ops": r.namespace_ops_undone}),
                    );
                }
                Err(e) => {
                    // The node restarts on whatever the disk holds; the run cannot vouch for it.
                    let msg = format!("power cut of node {id}: {e}");
                    say(&format!("nemesis: {msg}"));
                    self.failures.push(msg);
                }
            }
        }
        self.count("power-cut");
        self.count(&format!("power-cut:{}", targets.name()));
        let id = self.take_id();
        let mut value = value;
        value["nodes"] = json!(self.ids(&up));
        value["id"] = json!(id);
        value["lost"] = serde_json::Value::Object(lost);
        self.event("power-cut", value);
        self.in_force
            .insert(id, format!("power-cut {}", self.ids(&up).join(",")));
        self.show();
        Some(Active {
            id,
            undo: Undo::Restart(up),
        })
    }

    pub(super) fn disk_error(
        &mut self,
        target: Target,
        ops: &'static str,
        errno: &'static str,
    ) -> Option<Active> {
        let (node, _) = self.resolve_one(target);
        let value = json!({"node": self.cluster.id(node), "ops": ops, "errno": errno});
        if self.disk_faulted.contains_key(&node) {
            self.skip("disk-error", value, "its disk is already failing".into());
            return None;
        }
        let Some(mount) = self.cluster.disks().get(node) else {
            self.skip("disk-error", value, "no lazyfs mount".into());
            return None;
        };
        mount.set_fault(parse_fault(ops, errno));
        let id = self.take_id();
        self.disk_faulted.insert(node, id);
        self.count("disk-error");
        self.count(&format!("disk-error:{ops}"));
        let mut value = value;
        value["id"] = json!(id);
        self.event("disk-error", value);
        self.in_force
            .insert(id, format!("{errno} on {ops} of {}", self.cluster.id(node)));
        self.show();
        Some(Active {
            id,
            undo: Undo::DiskHeal(node),
        })
    }

    pub(super) fn disk_heal(&mut self, id: u64, node: usize) {
        let failed = self.cluster.disks().get(node).map(|m| {
            m.clear_fault();
            m.faulted_ops()
        });
        // A crash noticed now still happened under the fault.
        self.notice_crashes();
        self.disk_faulted.remove(&node);
        self.event(
            "disk-heal",
            json!({"id": id, "node": self.cluster.id(node), "failed_ops": failed}),
        );
        if self.cluster.state(node) == NodeState::Down {
            self.restart(&[node], "after disk-error", Some(id));
        }
    }

    /// Node `i` exited on its own while its disk was failing.
    pub(super) fn stopped_by_disk_error(&mut self, i: usize, fault: u64, status: &str) {
        let log = self.cluster.spec(i).log.clone();
        let last = log_tail(&log, 1).trim().to_string();
        self.event(
            "crash",
            json!({"node": self.cluster.id(i), "status": status, "cause": "disk-error",
                   "id": fault, "last_log_line": last}),
        );
        self.count("disk-error:node-stopped");
    }

    pub(super) fn bitflip(&mut self, target: Target, seed: u64) -> Option<Active> {
        let (node, _) = self.resolve_one(target);
        let id_s = self.cluster.id(node).to_string();
        if self.cluster.state(node) == NodeState::Down {
            self.skip(
                "bitflip",
                json!({"node": id_s}),
                "the node was already down".into(),
            );
            return None;
        }
        self.cluster.kill_many(&[node]);
        let dir = self
            .cluster
            .disks()
            .files_of(node, &self.cluster.spec(node).data_dir);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let flip = match lazyfs::flip_random_bit(&dir, &mut rng) {
            Ok(Some(flip)) => flip,
            Ok(None) => {
                self.skip(
                    "bitflip",
                    json!({"node": id_s}),
                    "no file to corrupt".into(),
                );
                self.restart(&[node], "after a skipped bitflip", None);
                return None;
            }
            Err(e) => {
                self.skip("bitflip", json!({"node": id_s}), format!("{e}"));
                self.restart(&[node], "after a failed bitflip", None);
                return None;
            }
        };
        self.count("bitflip");
        let id = self.take_id();
        self.event(
            "bitflip",
            json!({"id": id, "node": id_s, "file": flip.file.display().to_string(),
                   "offset": flip.offset, "bit": flip.bit}),
        );
        self.in_force.insert(
            id,
            format!("bitflip {}:{}@{}", id_s, flip.file.display(), flip.offset),
        );
        self.show();
        Some(Active {
            id,
            undo: Undo::Unflip(node, flip),
        })
    }

    /// Restarts a node after its bit flip; if it refuses to start, puts the bit back and
    /// restarts it again.
    pub(super) fn unflip(&mut self, id: u64, node: usize, flip: BitFlip) {
        if self.cluster.state(node) != NodeState::Down {
            return;
        }
        self.restart(&[node], "after bitflip", Some(id));
        if self.cluster.state(node) == NodeState::Down {
            return; // could not even be spawned: already a failure of the run
        }
        match self.cluster.wait_ready(node, BITFLIP_START_TIMEOUT) {
            Ok(()) => {
                self.count("bitflip:unnoticed-at-start");
            }
            Err(_) if self.cluster.state(node) == NodeState::Down => {
                let log = self.cluster.spec(node).log.clone();
                let last = log_tail(&log, 1).trim().to_string();
                let file_name = flip
                    .file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.count("bitflip:refused");
                self.event(
                    "bitflip-refused",
                    json!({"id": id, "node": self.cluster.id(node), "last_log_line": last,
                           "names_file": !file_name.is_empty() && last.contains(&file_name)}),
                );
                let dir = self
                    .cluster
                    .disks()
                    .files_of(node, &self.cluster.spec(node).data_dir);
                if let Err(e) = reflip(&dir, &flip) {
                    let msg = format!("putting back the flipped bit: {e:#}");
                    say(&format!("nemesis: {msg}"));
                    self.failures.push(msg);
                    return;
                }
                self.event(
                    "bitflip-repair",
                    json!({"id": id, "node": self.cluster.id(node)}),
                );
                self.restart(&[node], "after bitflip repair", Some(id));
            }
            // Alive but slow to answer: the run goes on and judges it later.
            Err(_) => {}
        }
    }
}

/// Flips `flip`'s bit again under `dir`, undoing it.
fn reflip(dir: &Path, flip: &BitFlip) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let path = dir.join(&flip.file);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, flip.offset)
        .with_context(|| format!("reading {}", path.display()))?;
    byte[0] ^= 1 << flip.bit;
    file.write_all_at(&byte, flip.offset)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
