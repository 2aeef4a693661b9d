//! `spyne` with model files: train, summary, eval, resume, and every bad-input case.

mod common;

use common::*;

/// A convolutional SNN for the 4×4 images, with its own training settings.
const CONV_MODEL: &str = r#"
input = [1, 4, 4]

[[layer]]
type = "conv2d"
channels = 4
kernel = 3
padding = 1

[[layer]]
type = "max_pool2d"
kernel = 2

[[layer]]
type = "leaky"
beta = { per_channel = [0.5, 0.6, 0.7, 0.8] }
surrogate = "fast-sigmoid:slope=25"

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

#[test]
fn a_model_file_trains_resumes_and_evaluates_from_the_cli() {
    let tmp = Tmp::new("modelfile");
    let data = tmp.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_data(&data);
    let model = tmp.0.join("conv.toml");
    std::fs::write(
        &model,
        CONV_MODEL.replace(
            "surrogate = \"fast-sigmoid:slope=25\"",
            "surrogate = { type = \"fast-sigmoid\", slope = 25 }",
        ),
    )
    .unwrap();
    let out = tmp.0.join("run");
    let (d, m, o) = (
        data.to_str().unwrap(),
        model.to_str().unwrap(),
        out.to_str().unwrap(),
    );

    let r = spyne(&["model", m], &[]);
    let (stdout, stderr) = text(&r);
    assert!(r.status.success(), "{stderr}");
    assert!(
        stdout.contains("conv1")
            && stdout.contains("[T, B, 4, 2, 2]")
            && stdout.contains("Total params: "),
        "{stdout}"
    );

    let r = spyne(
        &[
            "train",
            "--model",
            m,
            "--data",
            d,
            "--out",
            o,
            "--quiet",
            "--print-model",
        ],
        &[],
    );
    let (stdout, stderr) = text(&r);
    assert!(r.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("pool1")
            && stdout
                .lines()
                .last()
                .unwrap()
                .starts_with("test accuracy: ")
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["config"]["steps"], 6,
        "the model file's [train] settings"
    );
    assert_eq!(summary["model"]["layer"][0]["type"], "conv2d");
    assert_eq!(summary["path"], "fused");
    // The run directory alone is enough: the model summary, eval, and resume.
    let r = spyne(&["model", o], &[]);
    assert!(text(&r).0.contains("conv1"), "{:?}", text(&r));
    let r = spyne(&["eval", "--model", o], &[]);
    let acc = summary["test_accuracy"].as_f64().unwrap() * 100.0;
    assert_eq!(
        text(&r).0.trim(),
        format!("test accuracy: {acc:.2}%"),
        "{:?}",
        text(&r)
    );
    let r = spyne(&["train", "--resume", o, "--epochs", "2", "--quiet"], &[]);
    assert!(r.status.success(), "{:?}", text(&r));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 20, "two epochs of 10 iterations");

    // The tutorial-6 network needs 28×28 images.
    let r = spyne(
        &[
            "train",
            "--model",
            "csnn",
            "--data",
            d,
            "--out",
            tmp.0.join("csnn").to_str().unwrap(),
        ],
        &[],
    );
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr.contains("[1, 28, 28]") && stderr.contains("[1, 4, 4]"),
        "{stderr}"
    );
}

#[test]
fn bad_input_fails_before_any_work_with_one_sentence() {
    let tmp = Tmp::new("badinput");
    let data = tmp.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_data(&data);
    let d = data.to_str().unwrap();
    let file = |name: &str, text: &str| {
        let p = tmp.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let unknown = file(
        "unknown.toml",
        &CONV_MODEL.replace("\"max_pool2d\"", "\"max_pool3d\""),
    );
    let missing = file("missing.toml", &CONV_MODEL.replace("channels = 4\n", ""));
    let chain = file(
        "chain.toml",
        &CONV_MODEL.replace("type = \"flatten\"\n", "type = \"dropout\"\np = 0.1\n"),
    );
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--model", &unknown],
            vec!["layer 2", "unknown layer type 'max_pool3d'"],
        ),
        (
            vec!["--model", &missing],
            vec!["layer 1", "conv2d", "missing field `channels`"],
        ),
        (
            vec!["--model", &chain],
            vec!["layer 5 'fc1' (linear)", "[4, 2, 2]", "flatten"],
        ),
        (
            vec!["--batch-size", "500"],
            vec!["batch size 500", "200 samples"],
        ),
        (
            vec!["--hidden", "100000000"],
            vec!["layer 1 'fc1' (linear)", "GB"],
        ),
        (vec!["--threads", "100000"], vec!["threads", "100000"]),
        (vec!["--surrogate", "atan:alpha=-1"], vec!["alpha"]),
    ];
    for (args, needles) in cases {
        let out = tmp.0.join("never");
        let mut a = vec!["train", "--data", d, "--out", out.to_str().unwrap()];
        a.extend(args.iter().copied());
        let t0 = std::time::Instant::now();
        let r = spyne(&a, &[]);
        let (_, stderr) = text(&r);
        assert!(matches!(r.status.code(), Some(1 | 2)), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.lines().next().unwrap_or("").is_empty(),
            "a sentence: {stderr}"
        );
        if r.status.code() == Some(1) {
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        }
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: expected {n:?} in {stderr}");
        }
        assert!(!out.exists(), "{args:?}: nothing is written");
        assert!(t0.elapsed().as_secs() < 30, "{args:?} failed fast");
    }
}
