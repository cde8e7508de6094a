//! The review report's chart: how each model's ratings of one question are distributed, one
//! horizontal bar per model, stacked by answer level (share of the model's ratings), with the
//! percentage written in every segment wide enough to hold it and a legend of the levels.

use anyhow::{bail, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::reporting::svg::plot_err;

/// Height of one model's row in chart coordinates.
const ROW: i32 = 100;
/// Thickness of a bar within its row.
const BAR: i32 = 60;
/// Height of the legend strip in pixels.
const LEGEND: u32 = 48;

/// The colour at `t` in [0, 1] of a diverging rating palette: red-orange (0, worst) through a
/// light middle to blue (1, best), as Likert charts are drawn.
pub fn rating_color(t: f64) -> RGBColor {
    const LOW: (f64, f64, f64) = (214.0, 96.0, 77.0);
    const MID: (f64, f64, f64) = (238.0, 232.0, 213.0);
    const HIGH: (f64, f64, f64) = (38.0, 110.0, 170.0);
    let t = t.clamp(0.0, 1.0);
    let (a, b, s) = if t < 0.5 {
        (LOW, MID, t * 2.0)
    } else {
        (MID, HIGH, (t - 0.5) * 2.0)
    };
    let mix = |x: f64, y: f64| (x + (y - x) * s).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Stacked 100% bars of `counts` per level, one row per `(model, counts)`; `levels` names
/// the levels in order and `shades` places each on the palette ([`rating_color`]: 0 worst,
/// 1 best). Rows without ratings are drawn empty.
///
/// # Errors
/// No rows or levels, or a row whose counts or shades do not match the levels.
pub fn distribution_svg(
    title: &str,
    levels: &[String],
    shades: &[f64],
    rows: &[(&str, &[usize])],
) -> Result<String> {
    if rows.is_empty() || levels.is_empty() || shades.len() != levels.len() {
        bail!("{title}: nothing to plot");
    }
    if let Some((m, c)) = rows.iter().find(|(_, c)| c.len() != levels.len()) {
        bail!(
            "{title}: {m} has {} counts for {} levels",
            c.len(),
            levels.len()
        );
    }
    let n = rows.len() as i32;
    let height = 90 + 56 * rows.len() as u32 + LEGEND;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (upper, lower) = root.split_vertically(height - LEGEND);
        let ticks: Vec<i32> = (0..n).map(|i| i * ROW + ROW / 2).collect();
        let mut chart = ChartBuilder::on(&upper)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(120)
            .build_cartesian_2d(0.0..100.0f64, (0..n * ROW).with_key_points(ticks))
            .map_err(plot_err)?;
        // Row 0 at the top: row r spans y in [ROW (n-1-r), ROW (n-r)).
        let name = |y: &i32| {
            let r = (n - 1 - y / ROW) as usize;
            rows.get(r).map(|(m, _)| m.to_string()).unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_label_formatter(&name)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("share of ratings (%)")
            .draw()
            .map_err(plot_err)?;
        let style = TextStyle::from(("sans-serif", 13).into_font())
            .pos(Pos::new(HPos::Center, VPos::Center));
        for (r, (_, counts)) in rows.iter().enumerate() {
            let total: usize = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let y0 = (n - 1 - r as i32) * ROW + (ROW - BAR) / 2;
            let mut x = 0.0;
            for (i, &c) in counts.iter().enumerate() {
                let w = 100.0 * c as f64 / total as f64;
                if c == 0 {
                    continue;
                }
                let color = rating_color(shades[i]);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y0), (x + w, y0 + BAR)],
                        color.filled(),
                    )))
                    .map_err(plot_err)?;
                if w >= 7.0 {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!("{w:.0}%"),
                            (x + w / 2.0, y0 + BAR / 2),
                            style.clone(),
                        )))
                        .map_err(plot_err)?;
                }
                x += w;
            }
        }
        let mut x = 24;
        for (i, l) in levels.iter().enumerate() {
            let color = rating_color(shades[i]);
            lower
                .draw(&Rectangle::new([(x, 14), (x + 16, 30)], color.filled()))
                .map_err(plot_err)?;
            lower
                .draw(&Text::new(
                    l.clone(),
                    (x + 22, 15),
                    ("sans-serif", 14).into_font(),
                ))
                .map_err(plot_err)?;
            x += 40 + 8 * l.chars().count() as i32;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_segments_and_legend_are_drawn() {
        let levels: Vec<String> = ["1 poor", "2 fair", "3 good", "4 very good"]
            .map(String::from)
            .to_vec();
        let rows: Vec<(&str, &[usize])> = vec![
            ("base", &[6, 3, 1, 0]),
            ("fine-tuned", &[0, 2, 5, 3]),
            ("reference", &[0, 0, 0, 0]),
        ];
        let shades = [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0];
        let svg = distribution_svg("correctness", &levels, &shades, &rows).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for text in [
            "correctness",
            "base",
            "fine-tuned",
            "reference",
            "4 very good",
            "60%",
            "50%",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        // 3 + 3 segments + 4 legend swatches + background rectangles.
        assert!(svg.matches("<rect").count() >= 10);
        assert!(distribution_svg("x", &levels, &shades, &[("a", &[1, 2])]).is_err());
        assert!(distribution_svg("x", &levels, &shades, &[]).is_err());
        assert!(distribution_svg("x", &levels, &shades[..2], &rows).is_err());
    }

    #[test]
    fn colours_run_from_worst_to_best() {
        assert_eq!(rating_color(0.0), RGBColor(214, 96, 77));
        assert_eq!(rating_color(1.0), RGBColor(38, 110, 170));
        assert_eq!(rating_color(0.5), RGBColor(238, 232, 213));
        assert_eq!(rating_color(7.0), rating_color(1.0));
    }
}
