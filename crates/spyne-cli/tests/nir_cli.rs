//! `spyne` with NIR files: export a trained run, evaluate and fine-tune the file, import it.

mod common;

use common::*;

/// A convolutional SNN for the 4×4 images that NIR can express (average pooling).
const MODEL: &str = r#"
input = [1, 4, 4]

[[layer]]
type = "conv2d"
channels = 4
kernel = 3
padding = 1

[[layer]]
type = "avg_pool2d"
kernel = 2

[[layer]]
type = "leaky"
beta = { per_channel = [0.5, 0.6, 0.7, 0.8] }

[[layer]]
type = "flatten"

[[layer]]
type = "linear"
features = 3

[[layer]]
type = "leaky"
beta = 0.8

[train]
steps = 6
batch_size = 20
lr = 0.01
loss = "ce-rate"
"#;

fn accuracy(r: &std::process::Output) -> String {
    let (stdout, stderr) = text(r);
    assert!(r.status.success(), "{stdout}\n{stderr}");
    let line = stdout.lines().last().unwrap_or("").to_string();
    assert!(line.starts_with("test accuracy: "), "{stdout}");
    line
}

#[test]
fn a_run_exports_and_its_file_evaluates_fine_tunes_and_imports() {
    let tmp = Tmp::new("nir");
    let data = tmp.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_data(&data);
    let model = tmp.0.join("conv.toml");
    std::fs::write(&model, MODEL).unwrap();
    let path = |name: &str| tmp.0.join(name).to_str().unwrap().to_string();
    let (d, m) = (data.to_str().unwrap(), model.to_str().unwrap());
    let (run, file) = (path("run"), path("conv.nir"));

    let trained = accuracy(&spyne(
        &["train", "--model", m, "--data", d, "--out", &run, "--quiet"],
        &[],
    ));
    let r = spyne(&["export", "--model", &run, "--out", &file], &[]);
    let (_, stderr) = text(&r);
    assert!(r.status.success(), "{stderr}");
    assert!(stderr.contains("lif1 (subtract reset)"), "{stderr}");

    // Fine-tuning starts from the file's weights: with a negligible step, the run
    // evaluates as the one that was exported.
    let tuned = path("tuned");
    let args = [
        "train",
        "--model",
        &file,
        "--data",
        d,
        "--out",
        &tuned,
        "--quiet",
        "--steps",
        "6",
        "--batch-size",
        "20",
        "--loss",
        "ce-rate",
        "--lr",
        "1e-12",
        "--max-iters",
        "1",
    ];
    let r = spyne(&args, &[]);
    assert!(r.status.success(), "{:?}", text(&r));
    assert_eq!(accuracy(&spyne(&["eval", "--model", &tuned], &[])), trained);
    let again = path("tuned.nir");
    let r = spyne(&["export", "--model", &tuned, "--out", &again], &[]);
    assert!(r.status.success(), "{:?}", text(&r));
    let weights =
        |f: &str| match &spyne::nir::file::read_graph(f.as_ref()).unwrap().nodes["fc1"].node {
            spyne::nir::Node::Affine { weight, .. } => weight.values.clone(),
            other => panic!("{other:?}"),
        };
    let (before, after) = (weights(&file), weights(&again));
    let moved = before
        .iter()
        .zip(&after)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        moved < 1e-6,
        "fine-tuning starts from the file's weights ({moved})"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.0.join("tuned/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["model"]["layer"][1]["type"], "avg_pool2d");

    // The file's own β is kept, so a flag that would set it is refused.
    let r = spyne(
        &[
            "train",
            "--model",
            &file,
            "--data",
            d,
            "--out",
            &path("never"),
            "--beta",
            "0.5",
        ],
        &[],
    );
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--beta") && stderr.contains("conv.nir"),
        "{stderr}"
    );
    assert!(!tmp.0.join("never").exists());

    // Imported as a run directory, the file evaluates (with tutorial 5's 25 steps, as the
    // file itself does).
    let imported = path("imported");
    let r = spyne(&["import", &file, "--out", &imported], &[]);
    assert!(r.status.success(), "{:?}", text(&r));
    assert_eq!(
        accuracy(&spyne(&["eval", "--model", &imported, "--data", d], &[])),
        accuracy(&spyne(&["eval", "--model", &file, "--data", d], &[]))
    );
    let r = spyne(
        &["import", &file, "--out", &imported, "--convention", "keras"],
        &[],
    );
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nir, snntorch or norse"), "{stderr}");
}
