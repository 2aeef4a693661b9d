//! Typed settings (encodings, losses, surrogates, …): enums tagged by `type`, written as a
//! plain name or as a table with parameters, parsed once at the edge.
//!
//! In TOML: `surrogate = "atan"`, `surrogate = { type = "fast-sigmoid", slope = 25 }` or
//! `surrogate = "fast-sigmoid:slope=25"`.
//! On the command line: `--surrogate fast-sigmoid:slope=25`, `--loss mse-count:correct_rate=0.9`.
//! Names are case-insensitive and `_` or `-` are the same.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A setting enum tagged by `type` (its derived `Deserialize` reads the table form).
pub trait Setting: DeserializeOwned {
    /// What the setting is, for error messages (`surrogate`, `loss`, …).
    const WHAT: &'static str;

    /// A shorthand name that stands for a table (`latency-linear`), if any.
    fn alias(name: &str) -> Option<Value> {
        let _ = name;
        None
    }

    /// Parses `name` or `name:key=value,key=value` (numbers, `true`/`false`, else strings).
    fn parse(text: &str) -> Result<Self> {
        let (name, params) = match text.split_once(':') {
            Some((n, p)) => (n, p),
            None => (text, ""),
        };
        let mut table = Map::new();
        table.insert("type".into(), Value::String(name.trim().into()));
        for pair in params.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                Error::invalid(Self::WHAT, format!("'{pair}' in '{text}' is not key=value"))
            })?;
            let v = v.trim();
            let value = match (v.parse::<f64>(), v) {
                (Ok(x), _) => serde_json::json!(x),
                (_, "true") => Value::Bool(true),
                (_, "false") => Value::Bool(false),
                _ => Value::String(v.into()),
            };
            table.insert(k.trim().replace('-', "_"), value);
        }
        Self::from_value(Value::Object(table)).map_err(|e| Error::invalid(Self::WHAT, e))
    }

    /// Reads a name or a table, normalising the name and expanding aliases.
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        let table = match value {
            // `name:key=value,…` reads as in the CLI.
            Value::String(text) if text.contains(':') => {
                return Self::parse(&text).map_err(|e| match e {
                    Error::InvalidValue { reason, .. } => reason,
                    other => other.to_string(),
                })
            }
            Value::String(name) => normalise(Self::alias, Map::new(), &name),
            Value::Object(mut t) => match t.remove("type") {
                Some(Value::String(name)) => normalise(Self::alias, t, &name),
                _ => return Err(format!("a {} table needs a `type` name", Self::WHAT)),
            },
            other => {
                return Err(format!(
                    "expected a {} name or table, got {other}",
                    Self::WHAT
                ))
            }
        };
        let name = table
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Self::deserialize(Value::Object(table)).map_err(|e| {
            let e = e.to_string();
            match e.strip_prefix("unknown variant ") {
                Some(rest) => format!(
                    "unknown {} '{name}' ({})",
                    Self::WHAT,
                    rest.split_once(", ")
                        .map_or(rest, |(_, list)| list)
                        .replace('`', "")
                ),
                None => e,
            }
        })
    }
}

/// The table for `name` (lowercase, `-` for `_`, aliases expanded) with `rest` merged in.
fn normalise(
    alias: fn(&str) -> Option<Value>,
    rest: Map<String, Value>,
    name: &str,
) -> Map<String, Value> {
    let name = name.trim().to_ascii_lowercase().replace('_', "-");
    let mut table = match alias(&name) {
        Some(Value::Object(t)) => t,
        _ => {
            let mut t = Map::new();
            t.insert("type".into(), Value::String(name));
            t
        }
    };
    table.extend(rest);
    table
}

/// `deserialize_with` for a [`Setting`] field: accepts the name or the table.
pub fn named<'de, D: Deserializer<'de>, T: Setting>(d: D) -> std::result::Result<T, D::Error> {
    let value = Value::deserialize(d)?;
    T::from_value(value).map_err(serde::de::Error::custom)
}

/// `deserialize_with` for an optional [`Setting`] field.
pub fn named_opt<'de, D: Deserializer<'de>, T: Setting>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(v) => T::from_value(v).map(Some).map_err(serde::de::Error::custom),
    }
}
