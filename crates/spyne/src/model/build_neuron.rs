//! Neuron layers from their description: which settings each kind takes, and the widths of
//! per-neuron and per-channel values.

use burn::tensor::Device;

use super::spec::{NeuronKind, NeuronSpec};
use crate::error::{Error, Result};
use crate::neuron::{
    AlphaConfig, Cell, LapicqueConfig, LeakyConfig, RLeakyConfig, RSynapticConfig, RecurrentKind,
    Reset, SynapticConfig, Value,
};
use crate::rng::UniformSource;

/// Refuses the settings that `kind` does not take.
fn allowed(s: &NeuronSpec, names: &[&str]) -> Result<()> {
    let given = [
        ("beta", s.beta.is_some()),
        ("alpha", s.alpha.is_some()),
        ("learn_beta", s.learn_beta.is_some()),
        ("learn_alpha", s.learn_alpha.is_some()),
        ("r", s.r.is_some()),
        ("c", s.c.is_some()),
        ("time_step", s.time_step.is_some()),
        ("all_to_all", s.all_to_all.is_some()),
        ("v", s.v.is_some()),
        ("learn_recurrent", s.learn_recurrent.is_some()),
    ];
    match given.iter().find(|(n, set)| *set && !names.contains(n)) {
        Some((n, _)) => Err(Error::invalid(
            "neuron",
            format!("a {} layer has no setting '{n}'", s.kind.name()),
        )),
        None => Ok(()),
    }
}

fn required<'a>(v: &'a Option<Value>, name: &'static str, kind: NeuronKind) -> Result<&'a Value> {
    v.as_ref()
        .ok_or_else(|| Error::invalid(name, format!("a {} layer needs '{name}'", kind.name())))
}

/// A per-neuron or per-channel value must fit the layer's shape.
fn check_width(v: &Value, name: &'static str, shape: &[usize]) -> Result<()> {
    let n: usize = shape.iter().product();
    let ok = match v {
        Value::Scalar(_) => true,
        Value::PerNeuron(vs) => vs.len() == n,
        Value::PerChannel { per_channel } => shape.len() > 1 && per_channel.len() == shape[0],
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!(
                "{} values do not fit the layer's shape {shape:?} ({n} neurons; per channel: {} channels)",
                v.values().len(),
                if shape.len() > 1 { shape[0] } else { 0 }
            ),
        ))
    }
}

/// One neuron layer of `width` neurons (the product of `shape`).
pub(super) fn build_neuron(
    s: &NeuronSpec,
    width: usize,
    shape: &[usize],
    rng: &mut impl UniformSource,
    device: &Device,
) -> Result<Cell> {
    let threshold = s.threshold.clone().unwrap_or(Value::Scalar(1.0));
    for (v, name) in [(&s.beta, "beta"), (&s.alpha, "alpha"), (&s.v, "v")] {
        if let Some(v) = v {
            check_width(v, name, shape)?;
        }
    }
    check_width(&threshold, "threshold", shape)?;
    let surrogate = s.surrogate.clone().unwrap_or_default();
    let reset = s.reset.unwrap_or(Reset::Subtract);
    let learn = |x: Option<bool>| x.unwrap_or(false);
    let recurrent = || match &s.v {
        Some(v) => RecurrentKind::OneToOne(v.clone()),
        None if s.all_to_all == Some(false) => RecurrentKind::OneToOne(Value::Scalar(1.0)),
        None => RecurrentKind::AllToAll { features: width },
    };
    let recurrent_keys = ["beta", "learn_beta", "all_to_all", "v", "learn_recurrent"];
    Ok(match s.kind {
        NeuronKind::Leaky => {
            allowed(s, &["beta", "learn_beta"])?;
            Cell::Leaky(
                LeakyConfig::new(required(&s.beta, "beta", s.kind)?.clone())
                    .with_threshold(threshold)
                    .with_surrogate(surrogate)
                    .with_reset(reset)
                    .with_learn_beta(learn(s.learn_beta))
                    .with_learn_threshold(learn(s.learn_threshold))
                    .init(device)?,
            )
        }
        NeuronKind::Synaptic => {
            allowed(s, &["beta", "alpha", "learn_beta", "learn_alpha"])?;
            Cell::Synaptic(
                SynapticConfig::new(
                    required(&s.alpha, "alpha", s.kind)?.clone(),
                    required(&s.beta, "beta", s.kind)?.clone(),
                )
                .with_threshold(threshold)
                .with_surrogate(surrogate)
                .with_reset(reset)
                .with_learn(
                    learn(s.learn_alpha),
                    learn(s.learn_beta),
                    learn(s.learn_threshold),
                )
                .init(device)?,
            )
        }
        NeuronKind::Lapicque => {
            allowed(s, &["beta", "r", "c", "time_step"])?;
            let beta = match &s.beta {
                Some(Value::Scalar(b)) => Some(*b),
                Some(_) => {
                    return Err(Error::invalid(
                        "beta",
                        "a lapicque layer takes one scalar beta",
                    ))
                }
                None => None,
            };
            let config = LapicqueConfig {
                beta,
                r: s.r,
                c: s.c,
                time_step: s.time_step.unwrap_or(1.0),
                threshold,
                surrogate,
                reset,
            };
            Cell::Lapicque(config.init(device)?)
        }
        NeuronKind::Alpha => {
            allowed(s, &["beta", "alpha", "learn_beta", "learn_alpha"])?;
            let mut config = AlphaConfig::new(
                required(&s.alpha, "alpha", s.kind)?.clone(),
                required(&s.beta, "beta", s.kind)?.clone(),
            )
            .with_threshold(threshold)
            .with_surrogate(surrogate)
            .with_reset(reset);
            config.learn_decays = learn(s.learn_alpha) || learn(s.learn_beta);
            config.learn_threshold = learn(s.learn_threshold);
            Cell::Alpha(config.init(device)?)
        }
        NeuronKind::RLeaky => {
            allowed(s, &recurrent_keys)?;
            Cell::RLeaky(
                RLeakyConfig::new(required(&s.beta, "beta", s.kind)?.clone(), recurrent())
                    .with_threshold(threshold)
                    .with_surrogate(surrogate)
                    .with_reset(reset)
                    .with_learn(
                        learn(s.learn_beta),
                        learn(s.learn_threshold),
                        s.learn_recurrent.unwrap_or(true),
                    )
                    .init(rng, device)?,
            )
        }
        NeuronKind::RSynaptic => {
            allowed(
                s,
                &[&recurrent_keys[..], &["alpha", "learn_alpha"]].concat(),
            )?;
            let mut config = RSynapticConfig::new(
                required(&s.alpha, "alpha", s.kind)?.clone(),
                required(&s.beta, "beta", s.kind)?.clone(),
                recurrent(),
            )
            .with_threshold(threshold)
            .with_surrogate(surrogate)
            .with_reset(reset);
            config.learn = [
                learn(s.learn_alpha),
                learn(s.learn_beta),
                learn(s.learn_threshold),
                s.learn_recurrent.unwrap_or(true),
            ];
            Cell::RSynaptic(config.init(rng, device)?)
        }
    })
}
