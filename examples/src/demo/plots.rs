//! SVG charts of a demo run, drawn with plotters' SVG backend (no system fonts needed):
//! loss curves, base vs fine-tuned metric bars with confidence whiskers, and confusion
//! matrix heatmaps. Each function returns the SVG document as a string.

use anyhow::{bail, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::summary::{Confusion, LossCurves, LossPoint, MetricComparison};
use crate::reporting::svg::plot_err;

const BASE_COLOR: RGBColor = RGBColor(120, 144, 176);
const TUNED_COLOR: RGBColor = RGBColor(230, 126, 34);
const VAL_COLOR: RGBColor = RGBColor(39, 174, 96);
/// Width of one category (bar group, matrix cell) in integer chart coordinates.
const SLOT: i32 = 100;
/// Width of one bar.
const BAR: i32 = 38;

fn finite_points(points: &[LossPoint]) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.loss.0.is_finite())
        .map(|p| (p.step as f64, p.loss.0))
        .collect()
}

/// Training (and, when present, validation) loss against the optimizer step.
///
/// # Errors
///
/// If there is no finite training loss to draw.
pub fn loss_curves_svg(title: &str, curves: &LossCurves) -> Result<String> {
    let train = finite_points(&curves.train);
    let val = finite_points(&curves.val);
    if train.is_empty() {
        bail!("{title}: no finite training loss to plot");
    }
    let all = train.iter().chain(&val);
    let max_step = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..max_step, (lo - pad).max(0.0)..hi + pad)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("optimizer step")
            .y_desc("loss (nats/token)")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(train, BASE_COLOR.stroke_width(2)))
            .map_err(plot_err)?
            .label("train")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BASE_COLOR));
        if !val.is_empty() {
            chart
                .draw_series(LineSeries::new(val.clone(), VAL_COLOR.stroke_width(2)))
                .map_err(plot_err)?
                .label("validation")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], VAL_COLOR));
            chart
                .draw_series(val.iter().map(|&p| Circle::new(p, 3, VAL_COLOR.filled())))
                .map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Grouped bars, base vs fine-tuned, one group per metric, with the bootstrap interval as a
/// whisker on each bar. Scores are expected in `[0, 1]`.
///
/// # Errors
///
/// If `comparisons` is empty.
pub fn metric_bars_svg(title: &str, comparisons: &[MetricComparison]) -> Result<String> {
    if comparisons.is_empty() {
        bail!("{title}: no metrics to plot");
    }
    let n = comparisons.len();
    let labels: Vec<String> = comparisons
        .iter()
        .map(|c| format!("{}/{}", c.task, c.metric))
        .collect();
    // Integer x coordinates (plotters formats and ticks them; f64 axes with custom key
    // points cannot be labelled): group i spans [100 i, 100 i + 100).
    let ticks: Vec<i32> = (0..n as i32).map(|i| i * SLOT + SLOT / 2).collect();
    let width = (160 + 90 * n as u32).max(480);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(90)
            .y_label_area_size(48)
            .build_cartesian_2d((0..n as i32 * SLOT).with_key_points(ticks), 0.0..1.05f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| {
                let i = (x / SLOT) as usize;
                labels.get(i).cloned().unwrap_or_default()
            })
            .x_label_style(
                ("sans-serif", 12)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            )
            .y_desc("score (mean, 95% CI)")
            .draw()
            .map_err(plot_err)?;
        for (offset, color, name, pick) in [
            (12, BASE_COLOR, "base", 0usize),
            (50, TUNED_COLOR, "fine-tuned", 1),
        ] {
            let est = |c: &MetricComparison| if pick == 0 { c.base } else { c.finetuned };
            chart
                .draw_series(comparisons.iter().enumerate().map(|(i, c)| {
                    let x0 = i as i32 * SLOT + offset;
                    let mean = est(c).mean.0;
                    let top = if mean.is_finite() { mean } else { 0.0 };
                    Rectangle::new([(x0, 0.0), (x0 + BAR, top)], color.filled())
                }))
                .map_err(plot_err)?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
            chart
                .draw_series(
                    comparisons
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| {
                            let e = est(c);
                            e.low.0.is_finite() && e.high.0.is_finite() && e.mean.0.is_finite()
                        })
                        .map(|(i, c)| {
                            let e = est(c);
                            ErrorBar::new_vertical(
                                i as i32 * SLOT + offset + BAR / 2,
                                e.low.0,
                                e.mean.0,
                                e.high.0,
                                BLACK.stroke_width(1),
                                8,
                            )
                        }),
                )
                .map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// A confusion matrix as a heatmap (shade = share of the true class's row), with the count
/// written in each cell. Rows are true classes, columns predictions.
///
/// # Errors
///
/// If the matrix is not square with one row per label.
pub fn confusion_svg(title: &str, confusion: &Confusion) -> Result<String> {
    let n = confusion.labels.len();
    if n == 0 || confusion.counts.len() != n || confusion.counts.iter().any(|r| r.len() != n) {
        bail!(
            "{title}: confusion matrix must be {n}x{n} for {n} labels, got {} rows",
            confusion.counts.len()
        );
    }
    let labels = &confusion.labels;
    // Cell (row r, column c) spans x in [100 c, 100 c + 100) and, so that row 0 is on top,
    // y in [100 (n-1-r), 100 (n-r)).
    let ni = n as i32;
    let ticks: Vec<i32> = (0..ni).map(|i| i * SLOT + SLOT / 2).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(110)
            .build_cartesian_2d(
                (0..ni * SLOT).with_key_points(ticks.clone()),
                (0..ni * SLOT).with_key_points(ticks),
            )
            .map_err(plot_err)?;
        let column = |x: &i32| labels.get((x / SLOT) as usize).cloned().unwrap_or_default();
        let row = |y: &i32| {
            let r = n.checked_sub(1 + (y / SLOT) as usize);
            r.and_then(|r| labels.get(r)).cloned().unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&column)
            .y_label_formatter(&row)
            .x_desc("predicted")
            .y_desc("true")
            .draw()
            .map_err(plot_err)?;
        let cells: Vec<(i32, i32, u64, f64)> = confusion
            .counts
            .iter()
            .enumerate()
            .flat_map(|(r, row)| {
                let total: u64 = row.iter().sum();
                row.iter().enumerate().map(move |(c, &k)| {
                    let share = if total == 0 {
                        0.0
                    } else {
                        k as f64 / total as f64
                    };
                    (c as i32 * SLOT, (ni - 1 - r as i32) * SLOT, k, share)
                })
            })
            .collect();
        chart
            .draw_series(cells.iter().map(|&(x, y, _, share)| {
                let shade = (255.0 - 200.0 * share).round() as u8;
                Rectangle::new(
                    [(x, y), (x + SLOT, y + SLOT)],
                    RGBColor(shade, shade, 255).filled(),
                )
            }))
            .map_err(plot_err)?;
        let style = TextStyle::from(("sans-serif", 16).into_font())
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .draw_series(cells.iter().map(|&(x, y, k, _)| {
                Text::new(k.to_string(), (x + SLOT / 2, y + SLOT / 2), style.clone())
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::summary::{Estimate, Num};

    fn curve(n: usize) -> LossCurves {
        LossCurves {
            train: (1..=n)
                .map(|s| LossPoint {
                    step: s,
                    loss: Num(5.0 / (s as f64).sqrt()),
                })
                .collect(),
            val: vec![
                LossPoint {
                    step: n / 2,
                    loss: Num(2.0),
                },
                LossPoint {
                    step: n,
                    loss: Num(f64::NAN),
                },
            ],
        }
    }

    fn est(m: f64) -> Estimate {
        Estimate {
            mean: Num(m),
            low: Num(m - 0.1),
            high: Num(m + 0.1),
        }
    }

    fn comparison(task: &str, metric: &str, b: f64, f: f64) -> MetricComparison {
        MetricComparison {
            task: task.into(),
            metric: metric.into(),
            n: 10,
            base: est(b),
            finetuned: est(f),
            difference: est(f - b),
            wilcoxon_p: Num(0.01),
        }
    }

    #[test]
    fn loss_chart_has_caption_labels_and_both_series() {
        let svg = loss_curves_svg("Pre-training loss", &curve(50)).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in ["Pre-training loss", "optimizer step", "train", "validation"] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(svg.matches("<polyline").count() >= 2);
    }

    #[test]
    fn loss_chart_without_finite_points_is_an_error() {
        let mut c = curve(3);
        for p in &mut c.train {
            p.loss = Num(f64::NAN);
        }
        assert!(loss_curves_svg("x", &c).is_err());
    }

    #[test]
    fn metric_bars_label_every_metric_and_draw_two_bars_each() {
        let cs = vec![
            comparison("letters", "rouge1", 0.2, 0.6),
            comparison("modality", "accuracy", 0.25, 0.9),
            comparison("icd10", "exact", f64::NAN, 0.5),
        ];
        let svg = metric_bars_svg("Base vs fine-tuned", &cs).unwrap();
        for text in [
            "letters/rouge1",
            "modality/accuracy",
            "icd10/exact",
            "fine-tuned",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        // 6 bars + 2 legend swatches + background rectangles.
        assert!(svg.matches("<rect").count() >= 8);
        assert!(metric_bars_svg("empty", &[]).is_err());
    }

    #[test]
    fn confusion_heatmap_writes_counts_and_labels() {
        let c = Confusion {
            model: "fine-tuned".into(),
            labels: vec!["photon".into(), "proton".into(), "electron".into()],
            counts: vec![vec![7, 1, 0], vec![2, 5, 0], vec![0, 0, 13]],
        };
        let svg = confusion_svg("Modality", &c).unwrap();
        for text in [
            "\n7\n</text>",
            "\n13\n</text>",
            "photon",
            "electron",
            "predicted",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        let bad = Confusion {
            counts: vec![vec![1, 2]],
            ..c
        };
        assert!(confusion_svg("bad", &bad).is_err());
    }
}
