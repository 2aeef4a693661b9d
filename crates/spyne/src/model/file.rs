//! Model files: a description in TOML, read with errors that name the layer, and written
//! back so that it reads as the same description.

use serde::Deserialize;

use super::spec::{LayerSpec, ModelSpec};
use crate::error::{Error, Result};

/// The layer types a model file may use.
pub const LAYER_TYPES: [&str; 13] = [
    "linear",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "flatten",
    "dropout",
    "batch_norm2d",
    "leaky",
    "synaptic",
    "lapicque",
    "alpha",
    "rleaky",
    "rsynaptic",
];

impl ModelSpec {
    /// Reads a description from TOML text (see [`crate::model::spec`]). An unknown layer type,
    /// a missing or unknown setting is an error naming the layer.
    pub fn from_toml(text: &str) -> Result<ModelSpec> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| Error::invalid("model file", e.to_string()))?;
        ModelSpec::from_table(table)
    }

    /// Reads a description from a parsed TOML table (`input` and `[[layer]]`; nothing else).
    pub fn from_table(mut table: toml::Table) -> Result<ModelSpec> {
        let input = table.remove("input").ok_or_else(|| {
            Error::invalid(
                "model file",
                "missing `input` (the shape of one sample, e.g. [1, 28, 28])",
            )
        })?;
        let input = Vec::<usize>::deserialize(input)
            .map_err(|e| Error::invalid("model file", format!("input: {e}")))?;
        let layers = match table.remove("layer") {
            Some(toml::Value::Array(a)) => a,
            Some(_) => {
                return Err(Error::invalid(
                    "model file",
                    "`layer` must be an array of [[layer]] tables",
                ))
            }
            None => return Err(Error::invalid("model file", "no [[layer]] tables")),
        };
        if let Some(key) = table.keys().next() {
            return Err(Error::invalid(
                "model file",
                format!("unknown key `{key}` (a model file holds `input` and [[layer]] tables)"),
            ));
        }
        let layers = layers
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_layer(i, v))
            .collect::<Result<_>>()?;
        Ok(ModelSpec { input, layers })
    }

    /// The description as TOML text ([`ModelSpec::from_toml`] reads it back as the same).
    pub fn to_toml(&self) -> String {
        toml_text(self)
    }
}

/// Layer `i` (from 0) of a model file.
fn parse_layer(i: usize, value: toml::Value) -> Result<LayerSpec> {
    let fail = |reason: String| Error::invalid("model file", format!("layer {}: {reason}", i + 1));
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| fail("has no `type`".into()))?;
    if !LAYER_TYPES.contains(&kind.as_str()) {
        return Err(fail(format!(
            "unknown layer type '{kind}' (expected one of {})",
            LAYER_TYPES.join(", ")
        )));
    }
    let name = value
        .get("name")
        .and_then(|n| n.as_str())
        .map(|n| format!(" '{n}'"))
        .unwrap_or_default();
    let fail = |e: toml::de::Error| {
        Error::invalid(
            "model file",
            format!("layer {}{name} ({kind}): {}", i + 1, e.message()),
        )
    };
    // Each type's own settings, so that an error names the field, not the enum.
    let mut table = value;
    if let toml::Value::Table(t) = &mut table {
        if !matches!(
            kind.as_str(),
            "leaky" | "synaptic" | "lapicque" | "alpha" | "rleaky" | "rsynaptic"
        ) {
            t.remove("type");
        }
    }
    Ok(match kind.as_str() {
        "linear" => LayerSpec::Linear(Deserialize::deserialize(table).map_err(fail)?),
        "conv2d" => LayerSpec::Conv2d(Deserialize::deserialize(table).map_err(fail)?),
        "max_pool2d" => LayerSpec::MaxPool2d(Deserialize::deserialize(table).map_err(fail)?),
        "avg_pool2d" => LayerSpec::AvgPool2d(Deserialize::deserialize(table).map_err(fail)?),
        "flatten" => LayerSpec::Flatten(Deserialize::deserialize(table).map_err(fail)?),
        "dropout" => LayerSpec::Dropout(Deserialize::deserialize(table).map_err(fail)?),
        "batch_norm2d" => LayerSpec::BatchNorm2d(Deserialize::deserialize(table).map_err(fail)?),
        _ => LayerSpec::Neuron(Deserialize::deserialize(table).map_err(fail)?),
    })
}

/// Serialises a description as TOML (`[[layer]]` tables).
pub(crate) fn toml_text(spec: &ModelSpec) -> String {
    let mut out = format!("input = {:?}\n", spec.input);
    for layer in &spec.layers {
        out.push_str("\n[[layer]]\n");
        let json = serde_json::to_value(layer).expect("a layer description serialises");
        if let serde_json::Value::Object(map) = json {
            // `type` first, then the settings in their declared order.
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by_key(|(k, _)| k != "type");
            for (k, v) in entries {
                out.push_str(&format!("{k} = {}\n", toml_value(&v)));
            }
        }
    }
    out
}

/// A JSON value written as TOML (numbers, strings, booleans, arrays, inline tables).
fn toml_value(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "\"\"".into(),
        J::Bool(b) => b.to_string(),
        // f32 settings arrive as f64: print the shortest text that reads back as the same f32.
        J::Number(n) => match (n.as_f64(), n.is_f64()) {
            (Some(x), true) if (x as f32) as f64 == x => {
                let s = format!("{}", x as f32);
                if s.contains(['.', 'e', 'i', 'N']) {
                    s
                } else {
                    format!("{s}.0")
                }
            }
            _ => n.to_string(),
        },
        J::String(s) => serde_json::to_string(s).expect("a string serialises"),
        J::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        J::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
