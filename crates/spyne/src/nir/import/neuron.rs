//! Neuron nodes (LIF, CubaLIF, and the recurrent subgraphs) as spyne neuron layers.

use super::{bad, numbers, param, stored_layer, Builder, TOL};
use crate::error::Result;
use crate::model::spec::{LayerSpec, NeuronKind, NeuronSpec};
use crate::neuron::{Reset, Value};
use crate::nir::graph::{Array, Entry, Graph, Meta, Node};
use crate::nir::{Convention, META_ALPHA, META_BETA, META_RESET};

impl Builder {
    pub(super) fn neuron(
        &mut self,
        name: &str,
        entry: &Entry,
        recurrent: Option<&Node>,
    ) -> Result<()> {
        let at = |reason: String| {
            bad(format!(
                "node '{name}' ({}): {reason}",
                entry.node.type_name()
            ))
        };
        if self.pending_scale != 1.0 {
            // A SumPool2d's factor has no weighted layer to go into before this neuron.
            return Err(at(
                "a SumPool2d feeds it with no Linear or Conv2d between; spyne has only \
                 average pooling (use AvgPool2d, or put the sum's factor into the weights)"
                    .into(),
            ));
        }
        let dt = self.dt;
        let (kind, beta, alpha, theta, scale, v_leak, v_reset, shape) = match &entry.node {
            Node::Lif {
                tau,
                r,
                v_leak,
                v_threshold,
                v_reset,
            } => {
                let tau = &self.seconds(tau);
                let beta = tau.map(|t| 1.0 - dt / t);
                let scale = zip(r, tau, |r, t| r * dt / t);
                let kind = if recurrent.is_some() {
                    NeuronKind::RLeaky
                } else {
                    NeuronKind::Leaky
                };
                (
                    kind,
                    beta,
                    None,
                    v_threshold,
                    scale,
                    v_leak,
                    v_reset,
                    tau.shape.clone(),
                )
            }
            Node::CubaLif {
                tau_syn,
                tau_mem,
                r,
                v_leak,
                v_threshold,
                v_reset,
                w_in,
            } => {
                let (tau_mem, tau_syn) = (&self.seconds(tau_mem), &self.seconds(tau_syn));
                let beta = tau_mem.map(|t| 1.0 - dt / t);
                let alpha = tau_syn.map(|t| 1.0 - dt / t);
                let a = zip(r, tau_mem, |r, t| r * dt / t);
                let b = match self.convention {
                    Convention::Nir | Convention::Snntorch => zip(w_in, tau_syn, |w, t| w * dt / t),
                    // Norse's LIFCell adds the input to its current as it comes.
                    Convention::Norse => w_in.clone(),
                };
                let scale = zip(&a, &b, |x, y| x * y);
                let kind = if recurrent.is_some() {
                    NeuronKind::RSynaptic
                } else {
                    NeuronKind::Synaptic
                };
                (
                    kind,
                    beta,
                    Some(alpha),
                    v_threshold,
                    scale,
                    v_leak,
                    v_reset,
                    tau_mem.shape.clone(),
                )
            }
            _ => unreachable!("called for neuron nodes"),
        };
        let decays =
            std::iter::once(("β", "τ", &beta)).chain(alpha.iter().map(|a| ("α", "τ_syn", a)));
        for (decay, tau, values) in decays {
            if let Some(&d) = values.values.iter().find(|d| !(0.0..=1.0).contains(*d)) {
                let hint = match self.convention {
                    Convention::Nir | Convention::Snntorch => {
                        "; give the step the file was made for (--dt), or --convention norse \
                         for Norse's files"
                    }
                    Convention::Norse => "; give the step the file was made for (--dt)",
                };
                return Err(at(format!(
                    "{decay} = 1 − dt/{tau} = {d} at dt = {dt} s is outside [0, 1] ({tau} shorter \
                     than the step){hint}"
                )));
            }
        }
        if v_leak.values.iter().any(|&v| v != 0.0) {
            return Err(at("v_leak other than 0 has no spyne equivalent".into()));
        }
        if v_reset.values.iter().any(|&v| v != 0.0) {
            return Err(at("v_reset other than 0 has no spyne equivalent".into()));
        }
        let s = uniform(&scale.values).ok_or_else(|| {
            at(
                "the input scale r·dt/τ differs between neurons; spyne folds only one scale into \
                the weights before"
                    .into(),
            )
        })?;
        if (s - 1.0).abs() > TOL {
            self.fold_scale(s).map_err(at)?;
        }
        let stored = match stored_layer(entry, "neuron") {
            Some(LayerSpec::Neuron(n)) if n.kind == kind => Some(n),
            _ => None,
        };
        let reset = match entry.metadata.get(META_RESET) {
            Some(Meta::Text(r)) => Reset::from_name(r).map_err(|e| at(e.to_string()))?,
            // NIR's v ← v_reset = 0, then integrate: Leaky's zero reset, the others' zero-then-
            // integrate. snntorch's networks ran its zero reset (it drops the step after a
            // spike for all but Leaky) and wrote the same v_reset = 0.
            _ => match (self.convention, kind) {
                (_, NeuronKind::Leaky) | (Convention::Snntorch, _) => Reset::Zero,
                _ => Reset::ZeroThenIntegrate,
            },
        };
        let mut spec = stored.clone().unwrap_or_else(|| NeuronSpec::new(kind));
        spec.reset = Some(reset);
        let layer_name = spec.name.clone().unwrap_or_else(|| name.to_string());
        let beta_exact = numbers(entry, META_BETA);
        let (bv, bvals) = collapse(&beta, &shape, beta_exact).map_err(&at)?;
        spec.beta = Some(bv);
        self.params
            .insert(format!("{layer_name}.beta"), param(&[bvals.len()], bvals));
        if let Some(alpha) = alpha {
            let (av, avals) = collapse(&alpha, &shape, numbers(entry, META_ALPHA)).map_err(&at)?;
            spec.alpha = Some(av);
            self.params
                .insert(format!("{layer_name}.alpha"), param(&[avals.len()], avals));
        }
        let (tv, tvals) = collapse(theta, &shape, None).map_err(&at)?;
        spec.threshold = Some(tv);
        self.params.insert(
            format!("{layer_name}.threshold"),
            param(&[tvals.len()], tvals),
        );
        if let Some(rec) = recurrent {
            self.recurrent(&layer_name, rec, &mut spec).map_err(&at)?;
        }
        self.push(LayerSpec::Neuron(spec), name);
        Ok(())
    }

    /// A time constant as NIR means it, in seconds.
    fn seconds(&self, tau: &Array) -> Array {
        match self.convention {
            Convention::Nir | Convention::Snntorch => tau.clone(),
            // Norse writes dt / tau_mem_inv, that is dt·τ.
            Convention::Norse => tau.map(|t| t / self.dt),
        }
    }

    fn recurrent(
        &mut self,
        name: &str,
        rec: &Node,
        spec: &mut NeuronSpec,
    ) -> std::result::Result<(), String> {
        let (weight, bias) = match rec {
            Node::Affine { weight, bias } => (weight, Some(bias)),
            Node::Linear { weight } => (weight, None),
            _ => return Err("the recurrent weight is not Affine or Linear".into()),
        };
        let [n, m] = weight.shape[..] else {
            return Err(format!("recurrent weight of shape {:?}", weight.shape));
        };
        if n != m {
            return Err(format!(
                "recurrent weight of shape {:?} is not square",
                weight.shape
            ));
        }
        let off_diagonal = (0..n * n).any(|i| i / n != i % n && weight.values[i] != 0.0);
        let stored_all_to_all = spec.all_to_all;
        if bias.is_none() && !off_diagonal && stored_all_to_all != Some(true) {
            // A diagonal without a bias is snntorch's one-to-one `V`.
            let diag: Vec<f32> = (0..n).map(|i| weight.values[i * n + i] as f32).collect();
            let v = if diag.iter().all(|&d| d == diag[0])
                && spec.v.as_ref().is_some_and(|v| v.values().len() == 1)
            {
                Value::Scalar(diag[0])
            } else {
                Value::PerNeuron(diag.clone())
            };
            let vals = v.values();
            spec.all_to_all = Some(false);
            spec.v = Some(v);
            self.params
                .insert(format!("{name}.recurrent.v"), param(&[vals.len()], vals));
            return Ok(());
        }
        spec.all_to_all = Some(true);
        spec.v = None;
        self.params.insert(
            format!("{name}.recurrent.weight"),
            param(&weight.shape, weight.to_f32()),
        );
        // spyne's all-to-all feedback always has a bias (as snntorch's nn.Linear does).
        let b = bias.cloned().unwrap_or_else(|| Array::full(&[n], 0.0));
        self.params.insert(
            format!("{name}.recurrent.bias"),
            param(&b.shape, b.to_f32()),
        );
        Ok(())
    }

    fn fold_scale(&mut self, s: f64) -> std::result::Result<(), String> {
        let Some(prev) = self.last_weighted.clone() else {
            return Err(format!(
                "an input scale of {s} with no Linear or Conv2d layer before it to fold into"
            ));
        };
        for key in ["weight", "bias"] {
            if let Some(p) = self.params.get_mut(&format!("{prev}.{key}")) {
                for v in &mut p.values {
                    *v = (f64::from(*v) * s) as f32;
                }
            }
        }
        // Only the weights since the last neuron may take it.
        self.last_weighted = None;
        Ok(())
    }
}

/// The LIF/CubaLIF node and the recurrent weight of an RLeaky/RSynaptic subgraph.
pub(super) fn recurrent_parts(sub: &Graph) -> std::result::Result<(&Entry, &Node), String> {
    let find = |pred: fn(&Node) -> bool| -> Vec<(&String, &Entry)> {
        sub.nodes.iter().filter(|(_, e)| pred(&e.node)).collect()
    };
    let cells = find(|n| matches!(n, Node::Lif { .. } | Node::CubaLif { .. }));
    let weights = find(|n| matches!(n, Node::Affine { .. } | Node::Linear { .. }));
    let ([(cell_name, cell)], [(w_name, w)]) = (&cells[..], &weights[..]) else {
        return Err(
            "a nested graph that is not one LIF or CubaLIF with one recurrent weight".into(),
        );
    };
    let has = |a: &str, b: &str| sub.edges.iter().any(|(x, y)| x == a && y == b);
    if !(has(cell_name, w_name) && has(w_name, cell_name)) || sub.nodes.len() != 4 {
        return Err(
            "a nested graph without the cell → weight → cell cycle of a recurrent layer".into(),
        );
    }
    Ok((cell, &w.node))
}

fn zip(a: &Array, b: &Array, f: impl Fn(f64, f64) -> f64) -> Array {
    let n = a.len().max(b.len());
    let at = |x: &Array, i: usize| x.values[if x.len() == 1 { 0 } else { i }];
    Array {
        shape: if a.len() >= b.len() {
            a.shape.clone()
        } else {
            b.shape.clone()
        },
        values: (0..n).map(|i| f(at(a, i), at(b, i))).collect(),
    }
}

/// The one value all of `v` share, within [`TOL`].
fn uniform(v: &[f64]) -> Option<f64> {
    let first = *v.first()?;
    v.iter()
        .all(|&x| (x - first).abs() <= TOL * first.abs().max(1.0))
        .then_some(first)
}

/// A per-neuron array as the smallest [`Value`] that holds it (one value, one per channel,
/// one per neuron), with its values. `exact` (spyne's own copy of the values) replaces the
/// derived ones when it agrees with them, so that a round trip is bit-exact.
fn collapse(
    a: &Array,
    shape: &[usize],
    exact: Option<&Array>,
) -> std::result::Result<(Value, Vec<f32>), String> {
    let n: usize = shape.iter().product::<usize>().max(1);
    let full: Vec<f64> = if a.len() == 1 {
        vec![a.values[0]; n]
    } else {
        a.values.clone()
    };
    if let Some(e) = exact {
        let spread = |i: usize| -> f64 {
            match e.len() {
                1 => e.values[0],
                len if len == n => e.values[i],
                len => e.values[i / (n / len).max(1)],
            }
        };
        let fits = e.len() == 1 || e.len() == n || (shape.len() > 1 && e.len() == shape[0]);
        if fits
            && full
                .iter()
                .enumerate()
                .all(|(i, &v)| (v - spread(i)).abs() <= TOL)
        {
            let vals = e.to_f32();
            let value = match vals.len() {
                1 => Value::Scalar(vals[0]),
                len if len == n => Value::PerNeuron(vals.clone()),
                _ => Value::PerChannel {
                    per_channel: vals.clone(),
                },
            };
            return Ok((value, vals));
        }
    }
    // Without spyne's copy, only values that are equal as f32 share one parameter.
    let same = |c: &[f64]| -> Option<f32> {
        let first = *c.first()? as f32;
        c.iter().all(|&x| x as f32 == first).then_some(first)
    };
    if let Some(v) = same(&full) {
        return Ok((Value::Scalar(v), vec![v]));
    }
    if shape.len() > 1 {
        let per = n / shape[0];
        let channels: Option<Vec<f32>> = full.chunks(per).map(same).collect();
        if let Some(c) = channels {
            return Ok((
                Value::PerChannel {
                    per_channel: c.clone(),
                },
                c,
            ));
        }
    }
    let vals: Vec<f32> = full.iter().map(|&v| v as f32).collect();
    Ok((Value::PerNeuron(vals.clone()), vals))
}
