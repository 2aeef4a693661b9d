//! The summary table of a network: layer, type, output shape, parameters (like torchinfo).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use super::network::Network;

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// The layer's name.
    pub name: String,
    /// Its type, as model files write it.
    pub kind: String,
    /// Its output shape per sample and step.
    pub shape: Vec<usize>,
    /// Its parameters (trainable or not).
    pub params: usize,
    /// Of which trainable.
    pub trainable: usize,
}

/// The summary of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The per-sample input shape.
    pub input: Vec<usize>,
    /// One row per layer.
    pub rows: Vec<SummaryRow>,
}

/// Counts parameters, and those that require gradients.
#[derive(Default)]
struct Count {
    all: usize,
    trainable: usize,
}

impl ModuleVisitor for Count {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.shape().num_elements();
        self.all += n;
        if param.is_require_grad() {
            self.trainable += n;
        }
    }
}

/// The summary of `net` (build it on an autodiff device for the trainable counts).
pub fn summary(net: &Network) -> Summary {
    let shapes = net.output_shapes();
    let rows = net
        .layers
        .iter()
        .zip(&net.spec.layers)
        .zip(shapes)
        .map(|((layer, spec), shape)| {
            let mut count = Count::default();
            layer.visit(&mut count);
            SummaryRow {
                name: spec.name().unwrap_or_default().to_string(),
                kind: spec.kind().to_string(),
                shape,
                params: count.all,
                trainable: count.trainable,
            }
        })
        .collect();
    Summary {
        input: net.spec.input.clone(),
        rows,
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shape = |s: &[usize]| {
            let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
            format!("[T, B, {}]", dims.join(", "))
        };
        let mut lines = vec![(
            "Layer".to_string(),
            "Type".to_string(),
            "Output shape".to_string(),
            "Param #".to_string(),
        )];
        lines.push((
            "input".into(),
            String::new(),
            shape(&self.input),
            String::new(),
        ));
        for r in &self.rows {
            let params = if r.params == r.trainable {
                r.params.to_string()
            } else {
                format!("{} ({} fixed)", r.trainable, r.params - r.trainable)
            };
            lines.push((r.name.clone(), r.kind.clone(), shape(&r.shape), params));
        }
        let w = |k: fn(&(String, String, String, String)) -> &String| {
            lines
                .iter()
                .map(|l| k(l).chars().count())
                .max()
                .unwrap_or(0)
        };
        let (w0, w1, w2, w3) = (w(|l| &l.0), w(|l| &l.1), w(|l| &l.2), w(|l| &l.3));
        let rule = "─".repeat(w0 + w1 + w2 + w3 + 6);
        for (i, (a, b, c, d)) in lines.iter().enumerate() {
            writeln!(f, "{a:<w0$}  {b:<w1$}  {c:<w2$}  {d:>w3$}")?;
            if i == 0 {
                writeln!(f, "{rule}")?;
            }
        }
        let total: usize = self.rows.iter().map(|r| r.params).sum();
        let trainable: usize = self.rows.iter().map(|r| r.trainable).sum();
        writeln!(f, "{rule}")?;
        writeln!(f, "Total params: {total}")?;
        writeln!(f, "Trainable params: {trainable}")?;
        write!(f, "Fixed params: {}", total - trainable)
    }
}
