//! `spyne bench --job shd-like` and `spyne plot scaling`.

mod common;

use common::*;

#[test]
fn the_shd_like_job_prints_its_json_line_and_the_scaling_plot_draws_it() {
    let tmp = Tmp::new("benchshd");
    // With the spike index given, and built from the values every iteration (--scan): the
    // first layer runs from the active inputs either way.
    for scan in [false, true] {
        let mut args = vec![
            "bench",
            "--job",
            "shd-like",
            "--steps",
            "6",
            "--batch-size",
            "2",
            "--iters",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
        ];
        if scan {
            args.push("--scan");
        }
        let r = spyne(&args, &[]);
        let (stdout, stderr) = text(&r);
        assert!(r.status.success(), "{stderr}");
        let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(line["job"], "shd-like");
        assert_eq!(line["steps"], 6);
        assert_eq!(line["batch_size"], 2);
        assert_eq!(line["path"], "fused");
        assert_eq!(line["sparse_layers"], 1, "{line}");
        for key in ["median_ms", "min_ms", "peak_rss_mb", "input_mb"] {
            assert!(line[key].as_f64().is_some(), "{key} in {line}");
        }
    }

    let results = tmp.0.join("results.jsonl");
    let mut text_lines = String::new();
    for (system, t, ms, mb) in [
        ("spyne", 6, 1.0, 50.0),
        ("spyne", 12, 2.1, 51.0),
        ("peer", 6, 30.0, 700.0),
        ("peer", 12, 61.0, 720.0),
    ] {
        text_lines += &format!(
            "{{\"system\": \"{system}\", \"steps\": {t}, \"median_ms\": {ms}, \"peak_rss_mb\": {mb}, \"input_mb\": 4.5}}\n"
        );
    }
    std::fs::write(&results, text_lines).unwrap();
    let png = tmp.0.join("scaling.png");
    let r = spyne(
        &[
            "plot",
            "scaling",
            results.to_str().unwrap(),
            "--out",
            png.to_str().unwrap(),
        ],
        &[],
    );
    assert!(r.status.success(), "{:?}", text(&r));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    // A zero cannot go on a log axis: one sentence, no file.
    std::fs::write(
        &results,
        "{\"system\": \"x\", \"steps\": 0, \"median_ms\": 1, \"peak_rss_mb\": 1}\n",
    )
    .unwrap();
    let bad = tmp.0.join("bad.png");
    let r = spyne(
        &[
            "plot",
            "scaling",
            results.to_str().unwrap(),
            "--out",
            bad.to_str().unwrap(),
        ],
        &[],
    );
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("log axes") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(!bad.exists());
}
