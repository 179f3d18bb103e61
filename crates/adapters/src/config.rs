//! Building an adapter from a system spec's `[client]` table.
//!
//! ```toml
//! [client]
//! adapter = "etcd"            # native | etcd | redis | external
//! serializable_reads = false  # the adapter's own options, see its module
//! ```
//!
//! Unknown options are errors (a typo must not silently fall back to a default), and every
//! error names the adapter and the field.

use crate::{etcd, external, native, redis, Adapter};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The adapter kinds [`from_config`] knows.
pub const ADAPTERS: [&str; 4] = ["native", "etcd", "redis", "external"];

/// A `[client]` table that does not describe an adapter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("[client]: no `adapter` field (one of: native, etcd, redis, external)")]
    MissingAdapter,
    #[error("[client]: unknown adapter {0:?} (one of: native, etcd, redis, external)")]
    UnknownAdapter(String),
    #[error("[client]: `adapter` must be a string, not {0}")]
    AdapterNotAString(String),
    #[error("[client] options must be a table, not {0}")]
    NotATable(String),
    #[error("[client] {adapter}: unknown option `{field}` (known: {})", known.join(", "))]
    UnknownField {
        adapter: &'static str,
        field: String,
        known: Vec<&'static str>,
    },
    #[error("[client] {adapter}: option `{field}` is required")]
    Missing {
        adapter: &'static str,
        field: &'static str,
    },
    #[error("[client] {adapter}: option `{field}` must be {expected}, not {found}")]
    WrongType {
        adapter: &'static str,
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("[client] {adapter}: option `{field}`: {reason}")]
    BadValue {
        adapter: &'static str,
        field: &'static str,
        reason: String,
    },
}

/// Builds the adapter `kind` from its options (a JSON object, or `null` for all defaults).
pub fn from_config(kind: &str, options: &Value) -> Result<Box<dyn Adapter>, ConfigError> {
    let empty = Map::new();
    let map = match options {
        Value::Null => &empty,
        Value::Object(m) => m,
        other => return Err(ConfigError::NotATable(type_name(other))),
    };
    fn build<A: Adapter + 'static>(
        adapter: &'static str,
        map: &Map<String, Value>,
        make: fn(&mut Options<'_>) -> Result<A, ConfigError>,
    ) -> Result<Box<dyn Adapter>, ConfigError> {
        let mut o = Options::new(adapter, map);
        let a = make(&mut o)?;
        o.finish()?;
        Ok(Box::new(a))
    }
    match kind {
        "native" => build("native", map, native::NativeAdapter::from_options),
        "etcd" => build("etcd", map, etcd::EtcdAdapter::from_options),
        "redis" => build("redis", map, redis::RedisAdapter::from_options),
        "external" => build("external", map, external::ExternalAdapter::from_options),
        other => Err(ConfigError::UnknownAdapter(other.to_string())),
    }
}

/// [`from_config`] with TOML options (the `[client]` table without its `adapter` field).
pub fn from_toml(kind: &str, options: &toml::Table) -> Result<Box<dyn Adapter>, ConfigError> {
    from_config(kind, &toml_to_json(options))
}

/// Builds the adapter a whole `[client]` table describes: `adapter = "..."` names the kind, every
/// other field is an option of that adapter.
pub fn from_client_table(client: &toml::Table) -> Result<Box<dyn Adapter>, ConfigError> {
    let kind = match client.get("adapter") {
        None => return Err(ConfigError::MissingAdapter),
        Some(toml::Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(ConfigError::AdapterNotAString(format!(
                "a {}",
                other.type_str()
            )))
        }
    };
    let mut options = client.clone();
    options.remove("adapter");
    from_toml(&kind, &options)
}

fn toml_to_json(t: &toml::Table) -> Value {
    Value::Object(
        t.iter()
            .map(|(k, v)| (k.clone(), toml_value_to_json(v)))
            .collect(),
    )
}

fn toml_value_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        // Datetimes have no JSON counterpart; as a string they give a clear type error.
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_value_to_json).collect()),
        toml::Value::Table(t) => toml_to_json(t),
    }
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a table".into(),
    }
}

/// Typed access to one adapter's options; [`Options::finish`] rejects the fields nobody asked
/// for.
pub(crate) struct Options<'a> {
    adapter: &'static str,
    map: &'a Map<String, Value>,
    known: Vec<&'static str>,
}

impl<'a> Options<'a> {
    pub(crate) fn new(adapter: &'static str, map: &'a Map<String, Value>) -> Options<'a> {
        Options {
            adapter,
            map,
            known: Vec::new(),
        }
    }

    fn get(&mut self, field: &'static str) -> Option<&'a Value> {
        self.known.push(field);
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn wrong(&self, field: &'static str, expected: &'static str, v: &Value) -> ConfigError {
        ConfigError::WrongType {
            adapter: self.adapter,
            field,
            expected,
            found: type_name(v),
        }
    }

    /// A `BadValue` error for `field`.
    pub(crate) fn bad(&self, field: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::BadValue {
            adapter: self.adapter,
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn bool(&mut self, field: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.wrong(field, "a boolean", v)),
        }
    }

    pub(crate) fn u64(&mut self, field: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| self.wrong(field, "a non-negative integer", v)),
        }
    }

    pub(crate) fn string(&mut self, field: &'static str) -> Result<Option<String>, ConfigError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(field, "a string", v)),
        }
    }

    pub(crate) fn string_list(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.wrong(field, "an array of strings", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong(field, "an array of strings", v)),
        }
    }

    pub(crate) fn string_table(
        &mut self,
        field: &'static str,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(self.wrong(field, "a table of strings", other)),
                })
                .collect(),
            Some(v) => Err(self.wrong(field, "a table of strings", v)),
        }
    }

    /// Any JSON value, passed through as it is (`Null` when absent).
    pub(crate) fn raw(&mut self, field: &'static str) -> Value {
        self.get(field).cloned().unwrap_or(Value::Null)
    }

    /// Fails on the first field (in name order) that no accessor asked for.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        let known: BTreeSet<&str> = self.known.iter().copied().collect();
        match self.map.keys().find(|k| !known.contains(k.as_str())) {
            None => Ok(()),
            Some(field) => {
                let mut known: Vec<&'static str> = self.known.clone();
                known.sort_unstable();
                known.dedup();
                Err(ConfigError::UnknownField {
                    adapter: self.adapter,
                    field: field.clone(),
                    known,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(kind: &str, options: Value) -> ConfigError {
        match from_config(kind, &options) {
            Ok(a) => panic!("{kind} {options} built {}", a.name()),
            Err(e) => e,
        }
    }

    #[test]
    fn builds_each_adapter_with_defaults() {
        for kind in ["native", "etcd", "redis"] {
            let a = from_config(kind, &Value::Null);
            assert_eq!(a.map(|a| a.name()).ok(), Some(kind));
        }
        let a = from_config("external", &json!({"command": ["python3", "x.py"]}));
        assert_eq!(a.map(|a| a.name()).ok(), Some("external"));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err("mongo", Value::Null),
            ConfigError::UnknownAdapter("mongo".into())
        );
        assert!(matches!(err("etcd", json!(3)), ConfigError::NotATable(_)));
        let e = err("etcd", json!({"serializable_read": true}));
        assert!(
            matches!(&e, ConfigError::UnknownField { adapter: "etcd", field, known }
                if field == "serializable_read" && known.contains(&"serializable_reads")),
            "{e}"
        );
        assert!(e.to_string().contains("serializable_read"), "{e}");
        assert_eq!(
            err("redis", json!({"wait_replicas": "two"})),
            ConfigError::WrongType {
                adapter: "redis",
                field: "wait_replicas",
                expected: "a non-negative integer",
                found: "the string \"two\"".into()
            }
        );
        assert_eq!(
            err("external", json!({})),
            ConfigError::Missing {
                adapter: "external",
                field: "command"
            }
        );
        assert!(matches!(
            err("external", json!({"command": []})),
            ConfigError::BadValue {
                field: "command",
                ..
            }
        ));
        assert!(matches!(
            err("external", json!({"command": ["a", 1]})),
            ConfigError::WrongType {
                field: "command",
                ..
            }
        ));
        assert!(matches!(
            err("native", json!({"check_identity": "yes"})),
            ConfigError::WrongType {
                field: "check_identity",
                ..
            }
        ));
    }

    #[test]
    fn client_table() {
        let t: toml::Table = match toml::from_str(
            "adapter = \"redis\"\nread_from_replicas = true\nwait_replicas = 1\n",
        ) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(from_client_table(&t).map(|a| a.name()).ok(), Some("redis"));
        let t: toml::Table = match toml::from_str("read_from_replicas = true\n") {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            from_client_table(&t).err(),
            Some(ConfigError::MissingAdapter)
        );
        let t: toml::Table = match toml::from_str("adapter = \"etcd\"\ntimeout = 1979-05-27\n") {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert!(matches!(
            from_client_table(&t).err(),
            Some(ConfigError::UnknownField { .. })
        ));
    }
}
