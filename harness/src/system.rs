//! System specs: what to start for each node of a store, how to tell it is ready, how to find its
//! leader, how its peers reach each other, and which client adapter talks to it. A spec is data
//! (a TOML file, `systems/*.toml`), so a store nobody here wrote is tested without touching the
//! harness. docs/plugging-in.md documents every field.
//!
//! Commands are argv lists with `{placeholders}` (see [`Vars`]), never shell strings: nothing is
//! split or re-quoted, so paths with spaces are safe.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The specs that ship with the harness, built in so that `--system NAME` works from anywhere.
pub const BUILTIN: [(&str, &str); 3] = [
    ("raftkv", include_str!("../../systems/raftkv.toml")),
    ("etcd", include_str!("../../systems/etcd.toml")),
    ("redis", include_str!("../../systems/redis.toml")),
];

/// A spec that cannot be used; the message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read system spec {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("system spec {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("system spec {origin}: field `{field}`: {reason}")]
    Field {
        origin: String,
        field: String,
        reason: String,
    },
    #[error(
        "unknown system {0:?}: give a spec file (a path ending in .toml) or one of: {known}",
        known = BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    )]
    Unknown(String),
}

/// A parsed, checked spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// A short name, shown in run.json and the summary.
    pub name: String,
    /// What the store is, for people.
    #[serde(default)]
    pub description: String,
    /// The program, when the command refers to `{bin}`; `--node-bin` replaces it.
    #[serde(default)]
    pub bin: Option<String>,
    pub node: NodeTable,
    #[serde(default)]
    pub network: NetworkTable,
    #[serde(default)]
    pub ready: ReadyTable,
    #[serde(default)]
    pub leader: LeaderTable,
    /// How a node rejoins as a new member; a system without it cannot take the `membership`
    /// nemesis.
    #[serde(default)]
    pub membership: Option<MembershipTable>,
    /// The `[client]` table, handed to the adapter crate as is.
    pub client: toml::Table,
    /// Where the spec came from (`builtin:raftkv` or a path), for messages.
    #[serde(skip)]
    pub origin: String,
    /// The directory of the spec file (`{spec_dir}`); the current directory for built-ins.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// `[node]`: how to start node i.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTable {
    /// argv, with placeholders; an element that is exactly `{peer_args}` is replaced by
    /// `peer_args` repeated once per other node.
    pub command: Vec<String>,
    /// Repeated for each other node where `{peer_args}` stands; may use `{peer.id}`,
    /// `{peer.dial}`, `{peer.host}`, `{peer.port}`.
    #[serde(default)]
    pub peer_args: Vec<String>,
    /// Extra argv for every node but the first (n1): replicas of a primary, say.
    #[serde(default)]
    pub rest_args: Vec<String>,
    /// Extra argv for particular nodes, by id (`n2 = ["--flag"]`).
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
    /// Environment variables (values may use placeholders).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (placeholders allowed); the run's node directory by default.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Client and peer traffic share one port (Redis replicas dial the master's client port).
    #[serde(default)]
    pub shared_port: bool,
}

/// How peers reach each other through the proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerNetwork {
    /// One listener per directed pair: node i is told that peer j lives at the i->j listener.
    /// The store must send to j only on connections it dials itself.
    #[default]
    PerLink,
    /// One listener per destination: every node dials the same address for j, and the proxy
    /// finds which node dialed each connection from /proc.
    PerDestination,
}

/// `[network]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkTable {
    #[serde(default)]
    pub peers: PeerNetwork,
    /// URL scheme put in front of addresses in `{initial_cluster}` (e.g. "http").
    #[serde(default)]
    pub peer_scheme: Option<String>,
}

/// How readiness is judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadyCheck {
    /// The client adapter's `status` call answers.
    #[default]
    Status,
    /// The client port accepts a TCP connection.
    Tcp,
}

/// `[ready]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyTable {
    #[serde(default)]
    pub check: ReadyCheck,
}

/// How the current leader is found (for "the leader" fault targets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaderFind {
    /// Ask every node's status; the one saying `leader` with the highest term.
    #[default]
    Status,
    /// A fixed node leads (a primary/replica store without failover): node `first`.
    First,
    /// The store has no leader to find: "the leader" targets fall back to a drawn node.
    None,
}

/// `[leader]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderTable {
    #[serde(default)]
    pub find: LeaderFind,
}

/// `[membership]`: what the `membership` nemesis needs besides the adapter's admin operations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipTable {
    /// Appended to a node's command line while it comes back, with an empty data directory, as
    /// a new member that must wait to be added (raftkv: `--join`). Placeholders allowed.
    pub join_args: Vec<String>,
}

/// Everything a command template can name, for one node.
#[derive(Debug, Clone)]
pub struct Vars {
    pub id: String,
    /// 0-based.
    pub index: usize,
    pub nodes: usize,
    pub cluster_id: String,
    pub client_addr: std::net::SocketAddr,
    pub peer_addr: std::net::SocketAddr,
    /// Where the other nodes dial this one (its destination listener), with per-destination
    /// networking.
    pub advertise_peer_addr: Option<std::net::SocketAddr>,
    pub data_dir: PathBuf,
    pub bin: String,
    pub bin_dir: PathBuf,
    pub spec_dir: PathBuf,
    /// (id, where this node dials it) for every other node.
    pub peers: Vec<(String, std::net::SocketAddr)>,
    /// (id, where others dial it) for every node, this one included, for `{initial_cluster}`.
    pub all_advertised: Vec<(String, std::net::SocketAddr)>,
    pub peer_scheme: Option<String>,
}

impl Spec {
    /// Loads `--system NAME|FILE`: a path (it contains `/` or ends in `.toml`) or a built-in name.
    pub fn load(which: &str) -> Result<Spec, SpecError> {
        if which.contains('/') || which.ends_with(".toml") {
            let path = PathBuf::from(which);
            let text = std::fs::read_to_string(&path).map_err(|source| SpecError::Read {
                path: path.clone(),
                source,
            })?;
            // Absolute: nodes run in their own directories, where a relative path means nothing.
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| PathBuf::from("."));
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            return Spec::parse(&text, &path.display().to_string(), dir);
        }
        let (_, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == which)
            .ok_or_else(|| SpecError::Unknown(which.to_string()))?;
        Spec::parse(text, &format!("builtin:{which}"), PathBuf::from("."))
    }

    /// Parses and checks a spec's text.
    pub fn parse(text: &str, origin: &str, dir: PathBuf) -> Result<Spec, SpecError> {
        let mut spec: Spec = toml::from_str(text).map_err(|e| SpecError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        spec.origin = origin.to_string();
        spec.dir = dir;
        spec.check()?;
        Ok(spec)
    }

    fn field_error(&self, field: &str, reason: impl Into<String>) -> SpecError {
        SpecError::Field {
            origin: self.origin.clone(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    fn check(&self) -> Result<(), SpecError> {
        if self.name.trim().is_empty() {
            return Err(self.field_error("name", "must not be empty"));
        }
        if self.node.command.is_empty() {
            return Err(self.field_error("node.command", "must name a program"));
        }
        if self.node.command.iter().any(|a| a.contains("{bin}")) && self.bin.is_none() {
            return Err(self.field_error(
                "bin",
                "node.command uses {bin} but the spec gives no `bin` (and --node-bin may replace it)",
            ));
        }
        let uses_peer_args = self.node.command.iter().any(|a| a == "{peer_args}");
        if uses_peer_args && self.node.peer_args.is_empty() {
            return Err(self.field_error(
                "node.peer_args",
                "node.command has {peer_args} but peer_args is empty",
            ));
        }
        // Every placeholder must be one we know: a typo would otherwise start a broken node.
        let mut all: Vec<(&str, &String)> = Vec::new();
        all.extend(self.node.command.iter().map(|a| ("node.command", a)));
        all.extend(self.node.peer_args.iter().map(|a| ("node.peer_args", a)));
        all.extend(self.node.rest_args.iter().map(|a| ("node.rest_args", a)));
        for args in self.node.extra.values() {
            all.extend(args.iter().map(|a| ("node.extra", a)));
        }
        all.extend(self.node.env.values().map(|a| ("node.env", a)));
        if let Some(w) = &self.node.workdir {
            all.push(("node.workdir", w));
        }
        if let Some(b) = &self.bin {
            all.push(("bin", b));
        }
        if let Some(m) = &self.membership {
            all.extend(m.join_args.iter().map(|a| ("membership.join_args", a)));
        }
        for (field, text) in all {
            for name in placeholders(text).map_err(|r| self.field_error(field, r))? {
                let known = KNOWN.contains(&name.as_str())
                    || (field == "node.peer_args" && PEER_KNOWN.contains(&name.as_str()))
                    || name.starts_with("dial.")
                    || name.starts_with("dial_host.")
                    || name.starts_with("dial_port.");
                if !known {
                    return Err(self.field_error(
                        field,
                        format!(
                            "unknown placeholder {{{name}}} in {text:?} (known: {}; in peer_args \
                             also {}; and dial.<id>, dial_host.<id>, dial_port.<id>)",
                            KNOWN.join(", "),
                            PEER_KNOWN.join(", ")
                        ),
                    ));
                }
                if (name == "advertise_peer_addr" || name == "initial_cluster")
                    && self.network.peers != PeerNetwork::PerDestination
                {
                    return Err(self.field_error(
                        field,
                        format!(
                            "{{{name}}} needs `network.peers = \"per-destination\"` (with \
                             per-link networking a node has no single peer address)"
                        ),
                    ));
                }
            }
        }
        if self.client.get("adapter").is_none() {
            return Err(self.field_error(
                "client.adapter",
                "missing (native, etcd, redis or external)",
            ));
        }
        Ok(())
    }

    /// Node `v.id`'s argv.
    pub fn argv(&self, v: &Vars, extra: &[String]) -> Result<Vec<String>, SpecError> {
        let mut out = Vec::new();
        for a in &self.node.command {
            if a == "{peer_args}" {
                for (pid, addr) in &v.peers {
                    for p in &self.node.peer_args {
                        out.push(self.fill(p, v, Some((pid, *addr)))?);
                    }
                }
            } else {
                out.push(self.fill(a, v, None)?);
            }
        }
        if v.index > 0 {
            for a in &self.node.rest_args {
                out.push(self.fill(a, v, None)?);
            }
        }
        if let Some(more) = self.node.extra.get(&v.id) {
            for a in more {
                out.push(self.fill(a, v, None)?);
            }
        }
        out.extend(extra.iter().cloned());
        Ok(out)
    }

    /// Node `v.id`'s extra arguments for starting as a new member (`None`: the system has no
    /// `[membership]` table).
    pub fn join_args(&self, v: &Vars) -> Result<Option<Vec<String>>, SpecError> {
        let Some(m) = &self.membership else {
            return Ok(None);
        };
        m.join_args
            .iter()
            .map(|a| self.fill(a, v, None))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Node `v.id`'s environment.
    pub fn env(&self, v: &Vars) -> Result<Vec<(String, String)>, SpecError> {
        self.node
            .env
            .iter()
            .map(|(k, val)| Ok((k.clone(), self.fill(val, v, None)?)))
            .collect()
    }

    /// Node `v.id`'s working directory.
    pub fn workdir(&self, v: &Vars) -> Result<PathBuf, SpecError> {
        match &self.node.workdir {
            Some(w) => Ok(PathBuf::from(self.fill(w, v, None)?)),
            None => Ok(v.data_dir.clone()),
        }
    }

    /// The program for `{bin}`: `--node-bin`, else the spec's `bin` with its placeholders filled.
    pub fn bin(&self, node_bin: Option<&Path>, bin_dir: &Path) -> Result<String, SpecError> {
        if let Some(b) = node_bin {
            // Nodes run in their own data directories: a relative path must not change meaning.
            let abs = if b.is_relative() && b.components().count() > 1 {
                std::env::current_dir()
                    .map(|d| d.join(b))
                    .unwrap_or_else(|_| b.to_path_buf())
            } else {
                b.to_path_buf()
            };
            return Ok(abs.display().to_string());
        }
        let Some(b) = &self.bin else {
            return Ok(String::new());
        };
        let mut s = b.replace("{bin_dir}", &bin_dir.display().to_string());
        s = s.replace("{spec_dir}", &self.dir.display().to_string());
        Ok(s)
    }

    fn fill(
        &self,
        text: &str,
        v: &Vars,
        peer: Option<(&String, std::net::SocketAddr)>,
    ) -> Result<String, SpecError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| self.field_error("node", format!("unclosed {{ in {text:?}")))?;
            let name = &after[..close];
            out.push_str(&self.value(name, v, peer)?);
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn value(
        &self,
        name: &str,
        v: &Vars,
        peer: Option<(&String, std::net::SocketAddr)>,
    ) -> Result<String, SpecError> {
        let dial_of = |id: &str| -> Result<std::net::SocketAddr, SpecError> {
            v.peers
                .iter()
                .find(|(p, _)| p == id)
                .map(|(_, a)| *a)
                .ok_or_else(|| {
                    self.field_error(
                        "node",
                        format!(
                            "{{{name}}}: no node {id:?} other than {} in this cluster",
                            v.id
                        ),
                    )
                })
        };
        let scheme = |a: std::net::SocketAddr| match &v.peer_scheme {
            Some(s) => format!("{s}://{a}"),
            None => a.to_string(),
        };
        Ok(match name {
            "id" => v.id.clone(),
            "index" => v.index.to_string(),
            "number" => (v.index + 1).to_string(),
            "nodes" => v.nodes.to_string(),
            "cluster_id" => v.cluster_id.clone(),
            "client_addr" => v.client_addr.to_string(),
            "client_host" => v.client_addr.ip().to_string(),
            "client_port" => v.client_addr.port().to_string(),
            "peer_addr" => v.peer_addr.to_string(),
            "peer_host" => v.peer_addr.ip().to_string(),
            "peer_port" => v.peer_addr.port().to_string(),
            "advertise_peer_addr" => v
                .advertise_peer_addr
                .map(|a| a.to_string())
                .unwrap_or_default(),
            "data_dir" => v.data_dir.display().to_string(),
            "bin" => v.bin.clone(),
            "bin_dir" => v.bin_dir.display().to_string(),
            "spec_dir" => v.spec_dir.display().to_string(),
            "peers" => v
                .peers
                .iter()
                .map(|(id, a)| format!("{id}={}", scheme(*a)))
                .collect::<Vec<_>>()
                .join(","),
            "initial_cluster" => v
                .all_advertised
                .iter()
                .map(|(id, a)| format!("{id}={}", scheme(*a)))
                .collect::<Vec<_>>()
                .join(","),
            "peer.id" | "peer.dial" | "peer.host" | "peer.port" => {
                let (pid, addr) = peer.ok_or_else(|| {
                    self.field_error("node", format!("{{{name}}} is only known in peer_args"))
                })?;
                match name {
                    "peer.id" => pid.clone(),
                    "peer.dial" => addr.to_string(),
                    "peer.host" => addr.ip().to_string(),
                    _ => addr.port().to_string(),
                }
            }
            other => {
                if let Some(id) = other.strip_prefix("dial.") {
                    dial_of(id)?.to_string()
                } else if let Some(id) = other.strip_prefix("dial_host.") {
                    dial_of(id)?.ip().to_string()
                } else if let Some(id) = other.strip_prefix("dial_port.") {
                    dial_of(id)?.port().to_string()
                } else {
                    return Err(
                        self.field_error("node", format!("unknown placeholder {{{other}}}"))
                    );
                }
            }
        })
    }
}

/// The client adapter a spec's `[client]` table describes; `{spec_dir}` in its strings is the
/// spec file's directory (so an external adapter script can sit beside the spec).
pub fn build_adapter(spec: &Spec) -> Result<std::sync::Arc<dyn adapters::Adapter>, SpecError> {
    fn fill(v: &mut toml::Value, dir: &str) {
        match v {
            toml::Value::String(s) => *s = s.replace("{spec_dir}", dir),
            toml::Value::Array(a) => a.iter_mut().for_each(|x| fill(x, dir)),
            toml::Value::Table(t) => t.iter_mut().for_each(|(_, x)| fill(x, dir)),
            _ => {}
        }
    }
    let mut client = spec.client.clone();
    let dir = spec.dir.display().to_string();
    client.iter_mut().for_each(|(_, v)| fill(v, &dir));
    adapters::from_client_table(&client)
        .map(std::sync::Arc::from)
        .map_err(|e| SpecError::Field {
            origin: spec.origin.clone(),
            field: "client".into(),
            reason: e.to_string(),
        })
}

/// Placeholders every template may use.
const KNOWN: [&str; 18] = [
    "id",
    "index",
    "number",
    "nodes",
    "cluster_id",
    "client_addr",
    "client_host",
    "client_port",
    "peer_addr",
    "peer_host",
    "peer_port",
    "advertise_peer_addr",
    "data_dir",
    "bin",
    "bin_dir",
    "spec_dir",
    "peers",
    "initial_cluster",
];

/// Placeholders only `peer_args` may use.
const PEER_KNOWN: [&str; 4] = ["peer.id", "peer.dial", "peer.host", "peer.port"];

/// The `{names}` in `text`; `{peer_args}` standing alone is not a placeholder of a value.
fn placeholders(text: &str) -> Result<Vec<String>, String> {
    if text == "{peer_args}" {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed {{ in {text:?}"))?;
        names.push(after[..close].to_string());
        rest = &after[close + 1..];
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let a = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
        Vars {
            id: "n2".into(),
            index: 1,
            nodes: 3,
            cluster_id: "c".into(),
            client_addr: a(7002),
            peer_addr: a(7102),
            advertise_peer_addr: Some(a(9002)),
            data_dir: PathBuf::from("/d/n2"),
            bin: "/b/raftkv".into(),
            bin_dir: PathBuf::from("/b"),
            spec_dir: PathBuf::from("/s"),
            peers: vec![("n1".into(), a(8001)), ("n3".into(), a(8003))],
            all_advertised: vec![
                ("n1".into(), a(9001)),
                ("n2".into(), a(9002)),
                ("n3".into(), a(9003)),
            ],
            peer_scheme: Some("http".into()),
        }
    }

    #[test]
    fn builtin_specs_parse() {
        for (name, _) in BUILTIN {
            if let Err(e) = Spec::load(name) {
                panic!("{name}: {e}");
            }
        }
    }

    #[test]
    fn raftkv_command_line() -> Result<(), SpecError> {
        let spec = Spec::load("raftkv")?;
        let argv = spec.argv(&vars(), &["--verbose".into()])?;
        assert_eq!(
            argv.join(" "),
            "/b/raftkv --id n2 --cluster-id c --client 127.0.0.1:7002 --peer-listen \
             127.0.0.1:7102 --peer n1=127.0.0.1:8001 --peer n3=127.0.0.1:8003 --data-dir /d/n2 \
             --verbose"
        );
        Ok(())
    }

    #[test]
    fn etcd_initial_cluster() -> Result<(), SpecError> {
        let spec = Spec::load("etcd")?;
        let argv = spec.argv(&vars(), &[])?.join(" ");
        assert!(
            argv.contains(
                "n1=http://127.0.0.1:9001,n2=http://127.0.0.1:9002,n3=http://127.0.0.1:9003"
            ),
            "{argv}"
        );
        assert!(
            argv.contains("--initial-advertise-peer-urls http://127.0.0.1:9002"),
            "{argv}"
        );
        Ok(())
    }

    fn bad(text: &str) -> String {
        match Spec::parse(text, "t.toml", PathBuf::from(".")) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_specs_name_the_field() {
        let e = bad(
            "name = \"x\"\n[node]\ncommand = [\"a\", \"{idd}\"]\n[client]\nadapter = \"native\"\n",
        );
        assert!(e.contains("node.command") && e.contains("{idd}"), "{e}");
        let e = bad("name = \"x\"\n[node]\ncommand = []\n[client]\nadapter = \"native\"\n");
        assert!(e.contains("node.command"), "{e}");
        let e = bad(
            "name = \"x\"\n[node]\ncommand = [\"a\"]\ncolour = 1\n[client]\nadapter = \"native\"\n",
        );
        assert!(e.contains("colour"), "{e}");
        let e = bad("name = \"x\"\n[node]\ncommand = [\"a\"]\n[client]\n");
        assert!(e.contains("client.adapter"), "{e}");
        let e = bad("name = \"x\"\n[node]\ncommand = [\"a\", \"{initial_cluster}\"]\n[client]\nadapter = \"etcd\"\n");
        assert!(e.contains("per-destination"), "{e}");
        let e =
            bad("name = \"x\"\n[node]\ncommand = [\"{bin}\"]\n[client]\nadapter = \"native\"\n");
        assert!(e.contains("`bin`"), "{e}");
        let e = bad("name = \"x\"\n[node]\ncommand = [\"a\"]\n[ready]\ncheck = \"ping\"\n[client]\nadapter = \"native\"\n");
        assert!(e.contains("ping") || e.contains("check"), "{e}");
    }

    #[test]
    fn a_relative_node_bin_is_made_absolute() -> Result<(), SpecError> {
        let spec = Spec::load("raftkv")?;
        let b = spec.bin(Some(Path::new("target/release/mykv")), Path::new("/b"))?;
        assert!(Path::new(&b).is_absolute(), "{b}");
        assert_eq!(spec.bin(Some(Path::new("mykv")), Path::new("/b"))?, "mykv");
        assert_eq!(spec.bin(None, Path::new("/b"))?, "/b/raftkv");
        Ok(())
    }

    #[test]
    fn unknown_system_lists_the_builtins() {
        let e = Spec::load("mongodb")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("raftkv") && e.contains("etcd"), "{e}");
    }
}
