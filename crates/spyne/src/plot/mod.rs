//! Pictures of a network: spike rasters, membrane traces, spike counts, training curves and
//! benchmark scaling,
//! as PNG or SVG (chosen by the file name), with a bundled font (no system fonts needed).
//!
//! Every function renders in memory and then writes the file atomically, so a failed plot
//! never leaves half a file behind.

mod counts;
mod curves;
mod raster;
mod scaling;
mod traces;

pub use counts::spike_count;
pub use curves::{curves, read_metrics, MetricRow};
pub use raster::raster;
pub use scaling::{scaling, ScalingSeries};
pub use traces::{traces, TraceData};

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// The font every plot uses, bundled so that plots render on machines without fonts.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name plots ask for.
const FAMILY: &str = "sans-serif";

/// Picture size in pixels (SVG: user units). Default 800 × 600.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Default for Size {
    fn default() -> Self {
        Size {
            width: 800,
            height: 600,
        }
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The bundled file is a valid TrueType font; a failure here is a build error.
            let _ = plotters::style::register_font(FAMILY, style, FONT);
        }
    });
}

/// The text style of titles and labels.
fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

/// What a drawing closure returns: plotters' errors as text.
pub(crate) type DrawResult = std::result::Result<(), String>;

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason: format!("could not draw the plot: {e}"),
    }
}

/// Whether `path` asks for SVG (`.svg`, any case); otherwise PNG.
pub fn is_svg(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
}

/// Draws `figure` onto a canvas of `size` and writes it to `path` (PNG, or SVG for `.svg`).
pub(crate) fn save(path: &Path, size: Size, figure: &dyn Figure) -> Result<()> {
    register_font();
    if size.width < 100 || size.height < 100 || size.width > 10_000 || size.height > 10_000 {
        return Err(Error::invalid(
            "size",
            format!(
                "{}x{} is outside 100..=10000 pixels",
                size.width, size.height
            ),
        ));
    }
    let bytes = if is_svg(path) {
        let mut svg = String::new();
        {
            let root =
                SVGBackend::with_string(&mut svg, (size.width, size.height)).into_drawing_area();
            figure.draw_svg(&root).map_err(|e| plot_err(path, e))?;
            root.present().map_err(|e| plot_err(path, e))?;
        }
        svg.into_bytes()
    } else {
        let mut rgb = vec![0u8; size.width as usize * size.height as usize * 3];
        {
            let root =
                BitMapBackend::with_buffer(&mut rgb, (size.width, size.height)).into_drawing_area();
            figure.draw_png(&root).map_err(|e| plot_err(path, e))?;
            root.present().map_err(|e| plot_err(path, e))?;
        }
        encode_png(&rgb, size).map_err(|e| plot_err(path, e))?
    };
    write_atomic(path, &bytes)
}

fn encode_png(rgb: &[u8], size: Size) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size.width, size.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(rgb)?;
    }
    Ok(out)
}

/// A picture that can be drawn on either back end.
pub(crate) trait Figure {
    /// Draws onto a bitmap.
    fn draw_png(&self, root: &DrawingArea<BitMapBackend, Shift>) -> DrawResult;
    /// Draws onto an SVG document.
    fn draw_svg(&self, root: &DrawingArea<SVGBackend, Shift>) -> DrawResult;
}

/// Implements [`Figure`] for a type with a generic `draw<DB: DrawingBackend>` method.
macro_rules! figure {
    ($t:ty) => {
        impl $crate::plot::Figure for $t {
            fn draw_png(
                &self,
                root: &plotters::drawing::DrawingArea<
                    plotters::backend::BitMapBackend,
                    plotters::coord::Shift,
                >,
            ) -> $crate::plot::DrawResult {
                self.draw(root)
            }
            fn draw_svg(
                &self,
                root: &plotters::drawing::DrawingArea<
                    plotters::backend::SVGBackend,
                    plotters::coord::Shift,
                >,
            ) -> $crate::plot::DrawResult {
                self.draw(root)
            }
        }
    };
}
pub(crate) use figure;
