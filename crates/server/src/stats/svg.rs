//! Charts as inline SVG, drawn on the server: a bar chart (the time-to-removal distribution)
//! and a line chart of several series over time buckets. Every data point carries its
//! numbers in `data-*` attributes and a `<title>` (a tooltip without JavaScript); the page
//! also prints the numbers in a table, so nothing depends on seeing the picture.
//!
//! Labels are escaped here; callers pass plain text.

use std::fmt::Write;

use crate::stats::page::esc;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 44.0;
/// X-axis labels printed at most (the rest are in tooltips and the table).
const MAX_X_LABELS: usize = 8;

/// One line of a [`line_chart`].
pub struct Line<'a> {
    /// Machine name, in `data-series`.
    pub key: &'a str,
    pub label: &'a str,
    pub colour: &'a str,
    pub values: &'a [i64],
}

/// The smallest 1, 2 or 5 × 10^k at or above `max` (at least 1), so the axis reads well.
fn axis_top(max: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            let top = step.saturating_mul(m);
            if top >= max {
                return top.max(1);
            }
        }
        if step > i64::MAX / 10 {
            return i64::MAX;
        }
        step *= 10;
    }
}

fn frame(out: &mut String, id: &str, title: &str, top: i64) {
    let _ = write!(
        out,
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" aria-labelledby=\"{id}-title\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         xmlns=\"http://www.w3.org/2000/svg\" data-axis-max=\"{top}\">\
         <title id=\"{id}-title\">{}</title>\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fff\"/>",
        esc(title)
    );
    let plot_h = HEIGHT - TOP - BOTTOM;
    // Counts are whole numbers: no gridline at a fraction of one.
    let lines = u32::try_from(top.clamp(1, 4)).unwrap_or(4);
    for i in 0..=lines {
        let share = f64::from(i) / f64::from(lines);
        let value = top as f64 * share;
        let y = TOP + plot_h - plot_h * share;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            format_value(value)
        );
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn y_of(value: i64, top: i64) -> f64 {
    let plot_h = HEIGHT - TOP - BOTTOM;
    TOP + plot_h - plot_h * (value as f64 / top as f64)
}

fn x_label(out: &mut String, x: f64, label: &str) {
    let _ = write!(
        out,
        "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
        HEIGHT - BOTTOM + 16.0,
        esc(label)
    );
}

/// Bars, one per `(label, value)`.
pub fn bar_chart(id: &str, title: &str, bars: &[(&str, i64)]) -> String {
    let top = axis_top(bars.iter().map(|(_, v)| *v).max().unwrap_or(0));
    let mut out = String::new();
    frame(&mut out, id, title, top);
    let slot = (WIDTH - LEFT - RIGHT) / bars.len().max(1) as f64;
    for (i, (label, value)) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let y = y_of(*value, top);
        let _ = write!(
            out,
            "<rect class=\"bar\" data-label=\"{label}\" data-value=\"{value}\" x=\"{bar_x:.1}\" \
             y=\"{y:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" fill=\"#2b6c8f\">\
             <title>{label}: {value}</title></rect>",
            label = esc(label),
            bar_x = x + slot * 0.15,
            width = slot * 0.7,
            height = (HEIGHT - BOTTOM - y).max(0.0)
        );
        x_label(&mut out, x + slot / 2.0, label);
    }
    out.push_str("</svg>");
    out
}

/// Lines over `x_labels` (one value per label in each line), with a legend.
pub fn line_chart(id: &str, title: &str, x_labels: &[String], lines: &[Line<'_>]) -> String {
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().copied())
        .max()
        .unwrap_or(0);
    let top = axis_top(max);
    let mut out = String::new();
    frame(&mut out, id, title, top);
    let n = x_labels.len().max(1);
    // Inset so the first and last date labels fit inside the picture.
    let (start, end) = (LEFT + 30.0, WIDTH - RIGHT - 40.0);
    let step = if n > 1 {
        (end - start) / (n - 1) as f64
    } else {
        0.0
    };
    let x_of = |i: usize| start + step * i as f64 + if n == 1 { (end - start) / 2.0 } else { 0.0 };
    let every = n.div_ceil(MAX_X_LABELS).max(1);
    for (i, label) in x_labels.iter().enumerate().step_by(every) {
        x_label(&mut out, x_of(i), label);
    }
    for (index, line) in lines.iter().enumerate() {
        let points: Vec<String> = line
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(*v, top)))
            .collect();
        let _ = write!(
            out,
            "<g class=\"series\" data-series=\"{}\"><polyline fill=\"none\" stroke=\"{}\" \
             stroke-width=\"2\" points=\"{}\"/>",
            esc(line.key),
            esc(line.colour),
            points.join(" ")
        );
        for (i, (value, label)) in line.values.iter().zip(x_labels).enumerate() {
            let _ = write!(
                out,
                "<circle class=\"point\" data-x=\"{x_label}\" data-value=\"{value}\" \
                 cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"3\" fill=\"{colour}\">\
                 <title>{name}, {x_label}: {value}</title></circle>",
                x_label = esc(label),
                name = esc(line.label),
                cx = x_of(i),
                cy = y_of(*value, top),
                colour = esc(line.colour)
            );
        }
        let legend_x = LEFT + 160.0 * index as f64;
        let _ = write!(
            out,
            "<rect x=\"{legend_x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#222\">{}</text></g>",
            HEIGHT - 16.0,
            esc(line.colour),
            legend_x + 16.0,
            HEIGHT - 6.0,
            esc(line.label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_and_cover_the_maximum() {
        let tops: Vec<i64> = [0, 1, 3, 7, 10, 11, 180, 999_999].map(axis_top).to_vec();
        assert_eq!(tops, [1, 1, 5, 10, 10, 20, 200, 1_000_000]);
        assert_eq!(axis_top(i64::MAX), i64::MAX);
    }

    #[test]
    fn labels_are_escaped_in_charts() {
        let svg = bar_chart("c", "<t>", &[("<b>", 2)]);
        assert!(svg.contains("data-label=\"&lt;b&gt;\""));
        assert!(!svg.contains("<b>"));
        let lines = [Line {
            key: "k",
            label: "a&b",
            colour: "#000",
            values: &[1, 2],
        }];
        let svg = line_chart("l", "x", &["d1".into(), "d2".into()], &lines);
        assert!(svg.contains("a&amp;b"));
        assert_eq!(svg.matches("class=\"point\"").count(), 2);
    }
}
