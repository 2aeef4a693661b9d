//! The `spyne` binary end to end, on a synthetic data set written by the test.

mod common;

use common::*;
use std::path::Path;

const TINY: &str = "hidden = [12]\nbatch_size = 20\nsteps = 5\nlr = 0.005\n";

#[test]
fn train_resume_and_eval() {
    let tmp = Tmp::new("train");
    let data = tmp.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_data(&data);
    let cfg = tmp.0.join("tiny.toml");
    std::fs::write(&cfg, TINY).unwrap();
    let out = tmp.0.join("run");
    let (d, c, o) = (
        data.to_str().unwrap(),
        cfg.to_str().unwrap(),
        out.to_str().unwrap(),
    );

    let r = spyne(
        &[
            "train", "--config", c, "--data", d, "--out", o, "--seed", "1", "--quiet",
        ],
        &[],
    );
    let (stdout, stderr) = text(&r);
    assert!(r.status.success(), "{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("test accuracy: ") && last.ends_with('%'),
        "{last}"
    );
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().next().unwrap(), "epoch,iteration,loss,accuracy");
    assert_eq!(csv.lines().count(), 1 + 10, "one row per iteration");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["model"]["layer"][0]["features"], 12,
        "the hidden width"
    );
    assert_eq!(summary["path"], "fused");
    assert_eq!(summary["config"]["seed"], 1);
    assert!(summary["test_accuracy"].as_f64().unwrap() > 0.5);
    assert!(out.join("checkpoint/model.safetensors").is_file());

    // Resume to a second epoch: the metrics gain the second epoch's rows.
    let r = spyne(
        &[
            "train", "--resume", o, "--epochs", "2", "--data", d, "--quiet",
        ],
        &[],
    );
    assert!(r.status.success(), "{:?}", text(&r));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 20);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["epoch_test_accuracy"].as_array().unwrap().len(), 2);

    let r = spyne(&["eval", "--model", o, "--data", d], &[]);
    let (stdout, _) = text(&r);
    assert!(r.status.success());
    let acc = summary["test_accuracy"].as_f64().unwrap() * 100.0;
    assert_eq!(stdout.trim(), format!("test accuracy: {acc:.2}%"));

    // Pictures: the run's curves, and a raster, traces and counts for one test image.
    let png_size = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{} is a PNG", p.display());
        (
            u32::from_be_bytes(b[16..20].try_into().unwrap()),
            u32::from_be_bytes(b[20..24].try_into().unwrap()),
        )
    };
    assert_eq!(png_size(&out.join("curves.png")), (800, 600));
    let pics = tmp.0.join("pics");
    std::fs::create_dir_all(&pics).unwrap();
    let p = |name: &str| pics.join(name).to_str().unwrap().to_string();
    for args in [
        vec![
            "plot",
            "raster",
            "--model",
            o,
            "--data",
            d,
            "--sample",
            "3",
            "--out",
            &p("raster.png"),
        ],
        vec![
            "plot",
            "traces",
            "--model",
            o,
            "--data",
            d,
            "--sample",
            "3",
            "--neurons",
            "0,2",
            "--out",
            &p("traces.svg"),
        ],
        vec![
            "plot",
            "counts",
            "--model",
            o,
            "--data",
            d,
            "--sample",
            "3",
            "--out",
            &p("counts.png"),
        ],
        vec![
            "plot",
            "curves",
            "--run",
            o,
            "--out",
            &p("curves.svg"),
            "--width",
            "640",
            "--height",
            "480",
        ],
    ] {
        let r = spyne(&args, &[]);
        assert!(r.status.success(), "{args:?}: {:?}", text(&r));
    }
    assert_eq!(png_size(&pics.join("raster.png")), (800, 600));
    assert_eq!(png_size(&pics.join("counts.png")), (800, 600));
    let svg = std::fs::read_to_string(pics.join("traces.svg")).unwrap();
    assert!(
        svg.contains("Membrane traces: layer 2, test sample 3 (label"),
        "traces title"
    );
    assert!(std::fs::read_to_string(pics.join("curves.svg"))
        .unwrap()
        .contains("width=\"640\""));
    for (args, needle) in [
        (
            vec![
                "plot", "raster", "--model", o, "--data", d, "--sample", "60",
            ],
            "out of range",
        ),
        (
            vec![
                "plot", "raster", "--model", o, "--data", d, "--sample", "1", "--layer", "3",
            ],
            "layer 3 does not exist",
        ),
        (
            vec![
                "plot",
                "traces",
                "--model",
                o,
                "--data",
                d,
                "--sample",
                "1",
                "--neurons",
                "7",
            ],
            "neuron 7 does not exist",
        ),
    ] {
        let mut a = args.clone();
        let never = p("never.png");
        a.extend(["--out", &never]);
        let r = spyne(&a, &[]);
        let (_, stderr) = text(&r);
        assert_eq!(r.status.code(), Some(1), "{args:?}");
        assert!(
            stderr.contains(needle) && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
        assert!(!pics.join("never.png").exists());
    }

    // Settings cannot change under --resume.
    let r = spyne(&["train", "--resume", o, "--lr", "0.1", "--data", d], &[]);
    assert!(!r.status.success());
    assert!(text(&r).1.contains("--resume"), "{:?}", text(&r));
}

#[test]
fn bad_values_fail_early_with_one_clear_sentence() {
    let tmp = Tmp::new("bad");
    for (args, needle) in [
        (vec!["train", "--beta", "1.5"], "beta"),
        (vec!["train", "--surrogate", "tanh"], "unknown surrogate"),
        (vec!["train", "--batch-size", "0"], "batch_size"),
        (vec!["train", "--encoding", "morse"], "unknown encoding"),
    ] {
        let mut a = args.clone();
        let o = tmp.0.join("never");
        a.extend(["--out", o.to_str().unwrap(), "--data", "/nonexistent"]);
        let r = spyne(&a, &[]);
        let (_, stderr) = text(&r);
        // 1: refused by spyne; 2: a flag's value refused while parsing the command line.
        assert!(matches!(r.status.code(), Some(1 | 2)), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!o.exists(), "nothing is written before validation");
    }
}

#[test]
fn missing_data_explains_how_to_point_at_it() {
    let tmp = Tmp::new("nodata");
    let r = spyne(
        &["train", "--out", tmp.0.join("o").to_str().unwrap()],
        &[("XDG_CACHE_HOME", &tmp.0)],
    );
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr.contains("--data DIR") && stderr.contains("SPYNE_DATA"),
        "{stderr}"
    );
    let r = spyne(&["train", "--data", tmp.0.to_str().unwrap()], &[]);
    assert!(
        text(&r).1.contains("train-images-idx3-ubyte"),
        "{:?}",
        text(&r)
    );
}

#[test]
fn malformed_data_is_reported_with_the_file() {
    let tmp = Tmp::new("malformed");
    write_data(&tmp.0);
    std::fs::write(
        tmp.0.join("t10k-labels-idx1-ubyte.gz"),
        gz(&[0, 0, 8, 1, 0, 0, 0, 60, 1, 2]),
    )
    .unwrap();
    let r = spyne(
        &[
            "eval",
            "--model",
            "/nonexistent",
            "--data",
            tmp.0.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.status.code(), Some(1));
    let r2 = spyne(
        &[
            "train",
            "--config",
            "/nonexistent.toml",
            "--data",
            tmp.0.to_str().unwrap(),
        ],
        &[],
    );
    assert!(text(&r2).1.contains("/nonexistent.toml"));
    let cfg = tmp.0.join("t.toml");
    std::fs::write(&cfg, TINY).unwrap();
    let r = spyne(
        &[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--data",
            tmp.0.to_str().unwrap(),
            "--out",
            tmp.0.join("o").to_str().unwrap(),
        ],
        &[],
    );
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr.contains("t10k-labels-idx1-ubyte.gz") && stderr.contains("truncated"),
        "{stderr}"
    );
}
