//! Plots render to valid PNG/SVG files of the requested size; bad input is a clear error and
//! leaves no file.
#![cfg(feature = "plot")]

mod common;

use std::path::Path;

use common::TempDir;
use spyne::plot::{self, Size, TraceData};
use spyne::Error;

/// Decodes a PNG fully and returns its size.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a valid PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("valid PNG data");
    // Not a blank canvas: something was drawn.
    assert!(buf.iter().any(|&b| b < 128), "the picture has dark pixels");
    (info.width, info.height)
}

fn svg_text(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(
        s.starts_with("<svg") || s.starts_with("<?xml"),
        "an SVG document"
    );
    s
}

const SMALL: Size = Size {
    width: 640,
    height: 480,
};

#[test]
fn raster_png_and_svg() {
    let dir = TempDir::new("raster");
    // 5 steps × 4 neurons: a diagonal of spikes.
    let spikes: Vec<f32> = (0..20)
        .map(|i| if i % 5 == 0 { 1.0 } else { 0.0 })
        .collect();
    let png = dir.path().join("r.png");
    plot::raster(&png, &spikes, 5, 4, "Spike raster: test", Size::default()).unwrap();
    assert_eq!(png_size(&png), (800, 600));
    let svg = dir.path().join("r.svg");
    plot::raster(&svg, &spikes, 5, 4, "Spike raster: test", SMALL).unwrap();
    let s = svg_text(&svg);
    assert!(s.contains("Spike raster: test") && s.contains("time step") && s.contains("neuron"));
    assert!(s.contains("width=\"640\"") && s.contains("height=\"480\""));
}

/// Text is drawn with the bundled font: with no spikes, the only ink in the caption band at
/// the top of the picture is the title's glyphs (no system fonts are looked up at all).
#[test]
fn titles_render_with_the_bundled_font() {
    let dir = TempDir::new("font");
    let png = dir.path().join("empty.png");
    plot::raster(
        &png,
        &[0.0; 12],
        3,
        4,
        "Title drawn from the bundled font",
        Size::default(),
    )
    .unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(std::fs::read(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let row = info.width as usize * 3;
    let band = &buf[..30 * row];
    let dark = band
        .chunks(3)
        .filter(|px| px.iter().all(|&c| c < 100))
        .count();
    assert!(
        dark > 50,
        "the title left {dark} dark pixels in the caption band"
    );
}

#[test]
fn traces_png_and_svg() {
    let dir = TempDir::new("traces");
    let (steps, k) = (6, 2);
    let mems: Vec<f32> = (0..steps * k)
        .map(|i| (i as f32 * 0.3).sin() + 0.5)
        .collect();
    let spikes: Vec<f32> = mems
        .iter()
        .map(|&u| if u > 1.0 { 1.0 } else { 0.0 })
        .collect();
    let png = dir.path().join("t.png");
    let data = TraceData {
        mems: &mems,
        spikes: &spikes,
        steps,
        ids: &[3, 7],
        threshold: &[1.0, 1.0],
    };
    plot::traces(&png, &data, "Membrane traces", SMALL).unwrap();
    assert_eq!(png_size(&png), (640, 480));
    let svg = dir.path().join("t.svg");
    plot::traces(&svg, &data, "Membrane traces", SMALL).unwrap();
    let s = svg_text(&svg);
    assert!(s.contains("Membrane traces") && s.contains("threshold") && s.contains("neuron 7"));
}

#[test]
fn spike_count_png_and_svg() {
    let dir = TempDir::new("counts");
    let counts = [1.0, 0.0, 12.0, 3.0];
    let png = dir.path().join("c.png");
    plot::spike_count(
        &png,
        &counts,
        Some(2),
        "Output spike counts",
        Size::default(),
    )
    .unwrap();
    assert_eq!(png_size(&png), (800, 600));
    let svg = dir.path().join("c.SVG");
    plot::spike_count(&svg, &counts, None, "Output spike counts", SMALL).unwrap();
    assert!(svg_text(&svg).contains("Output spike counts"));
}

fn write_run(dir: &Path, metrics: &str, summary: Option<&str>) {
    std::fs::write(dir.join("metrics.csv"), metrics).unwrap();
    if let Some(s) = summary {
        std::fs::write(dir.join("summary.json"), s).unwrap();
    }
}

#[test]
fn curves_png_and_svg() {
    let dir = TempDir::new("curves");
    let mut csv = String::from("epoch,iteration,loss,accuracy\n");
    for e in 1..=2 {
        for i in 0..20 {
            csv.push_str(&format!(
                "{e},{i},{},{}\n",
                50.0 / (1.0 + i as f32 + 20.0 * (e - 1) as f32),
                0.5 + 0.02 * i as f32
            ));
        }
    }
    write_run(
        dir.path(),
        &csv,
        Some(r#"{"epoch_test_accuracy": [0.9, 0.95]}"#),
    );
    let png = dir.path().join("curves.png");
    plot::curves(dir.path(), &png, Size::default()).unwrap();
    assert_eq!(png_size(&png), (800, 600));
    let svg = dir.path().join("curves.svg");
    plot::curves(dir.path(), &svg, SMALL).unwrap();
    let s = svg_text(&svg);
    assert!(
        s.contains("final test accuracy 95.00%")
            && s.contains("loss")
            && s.contains("accuracy (%)")
    );
}

#[test]
fn bad_metrics_are_clear_errors_and_write_nothing() {
    let dir = TempDir::new("badcurves");
    let out = dir.path().join("curves.png");
    for (csv, needle) in [
        ("", "empty"),
        ("epoch,iteration,loss,accuracy\n", "no rows"),
        ("time,loss\n1,2\n", "header"),
        (
            "epoch,iteration,loss,accuracy\n1,0,2.5,0.1\n1,1,oops,0.2\n",
            "line 3",
        ),
        ("epoch,iteration,loss,accuracy\n1,0,NaN,0.1\n", "line 2"),
    ] {
        write_run(dir.path(), csv, None);
        let err = plot::curves(dir.path(), &out, Size::default()).unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{err}");
        assert!(
            err.to_string().contains(needle) && err.to_string().contains("metrics.csv"),
            "{err}"
        );
        assert!(!out.exists(), "no file is written on error");
    }
    let missing = TempDir::new("nocurves");
    assert!(matches!(
        plot::curves(missing.path(), &out, Size::default()),
        Err(Error::Io { .. })
    ));
}

#[test]
fn bad_shapes_and_sizes_are_errors() {
    let dir = TempDir::new("badplots");
    let out = dir.path().join("x.png");
    assert!(plot::raster(&out, &[1.0; 5], 2, 3, "t", Size::default()).is_err());
    let none = TraceData {
        mems: &[0.0; 4],
        spikes: &[0.0; 4],
        steps: 2,
        ids: &[],
        threshold: &[],
    };
    assert!(plot::traces(&out, &none, "t", Size::default()).is_err());
    let short = TraceData {
        mems: &[0.0; 4],
        spikes: &[0.0; 3],
        steps: 2,
        ids: &[0, 1],
        threshold: &[1.0, 1.0],
    };
    assert!(plot::traces(&out, &short, "t", Size::default()).is_err());
    assert!(plot::spike_count(&out, &[], None, "t", Size::default()).is_err());
    assert!(plot::spike_count(&out, &[1.0, 2.0], Some(5), "t", Size::default()).is_err());
    let tiny = Size {
        width: 10,
        height: 10,
    };
    assert!(matches!(
        plot::raster(&out, &[1.0; 6], 2, 3, "t", tiny),
        Err(Error::InvalidValue { .. })
    ));
    assert!(!out.exists());
}
