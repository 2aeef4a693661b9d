//! Surrogates in model files and settings: a name or a table (see [`crate::setting`]).

use super::Surrogate;
use crate::setting::Setting;

/// The serialised form of the built-in surrogates.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum Repr {
    SpikeOperator,
    Atan {
        #[serde(default = "two")]
        alpha: f32,
    },
    FastSigmoid {
        #[serde(default = "twenty_five")]
        slope: f32,
    },
    Sigmoid {
        #[serde(default = "twenty_five")]
        slope: f32,
    },
    StraightThrough,
    Triangular {
        #[serde(default = "one")]
        width: f32,
    },
    SpikeRateEscape {
        #[serde(default = "one")]
        beta: f32,
        #[serde(default = "twenty_five")]
        slope: f32,
    },
}

fn one() -> f32 {
    1.0
}
fn two() -> f32 {
    2.0
}
fn twenty_five() -> f32 {
    25.0
}

impl serde::Serialize for Surrogate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let repr = match *self {
            Surrogate::SpikeOperator => Repr::SpikeOperator,
            Surrogate::ATan { alpha } => Repr::Atan { alpha },
            Surrogate::FastSigmoid { slope } => Repr::FastSigmoid { slope },
            Surrogate::Sigmoid { slope } => Repr::Sigmoid { slope },
            Surrogate::StraightThrough => Repr::StraightThrough,
            Surrogate::Triangular { width } => Repr::Triangular { width },
            Surrogate::SpikeRateEscape { beta, slope } => Repr::SpikeRateEscape { beta, slope },
            Surrogate::Custom(ref c) => {
                return Err(serde::ser::Error::custom(format!(
                    "the custom surrogate '{}' is code and cannot be saved",
                    c.name
                )))
            }
        };
        repr.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Surrogate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match Repr::deserialize(d)? {
            Repr::SpikeOperator => Surrogate::SpikeOperator,
            Repr::Atan { alpha } => Surrogate::ATan { alpha },
            Repr::FastSigmoid { slope } => Surrogate::FastSigmoid { slope },
            Repr::Sigmoid { slope } => Surrogate::Sigmoid { slope },
            Repr::StraightThrough => Surrogate::StraightThrough,
            Repr::Triangular { width } => Surrogate::Triangular { width },
            Repr::SpikeRateEscape { beta, slope } => Surrogate::SpikeRateEscape { beta, slope },
        })
    }
}

impl PartialEq for Surrogate {
    /// Built-ins are equal when their parameters are; custom surrogates when their names are.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Surrogate::Custom(a), Surrogate::Custom(b)) => a.name == b.name,
            _ => self.code() == other.code(),
        }
    }
}

impl Setting for Surrogate {
    const WHAT: &'static str = "surrogate";

    fn alias(name: &str) -> Option<serde_json::Value> {
        let canonical = match name {
            "heaviside" => "spike-operator",
            "ste" => "straight-through",
            _ => return None,
        };
        Some(serde_json::json!({ "type": canonical }))
    }
}
