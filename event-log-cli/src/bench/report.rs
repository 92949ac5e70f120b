//! The report of `evlog bench`: its rows, how they print, and the exit code they
//! give.

use std::process::ExitCode;

use comfy_table::{CellAlignment, Table, presets};
use serde::Serialize;

use super::probe::Latencies;
use crate::exit;
use crate::out::outln;

/// One figure of the report, beside its baseline.
#[derive(Serialize, Clone)]
pub(super) struct Row {
    figure: String,
    value: f64,
    unit: String,
    /// Median latency of one call of the figure, in µs (figures of many calls).
    p50_us: Option<f64>,
    /// 99th percentile latency of one call, in µs.
    p99_us: Option<f64>,
    baseline_name: String,
    baseline: f64,
    ratio: f64,
    budget: String,
    within: Option<bool>,
}

impl Row {
    /// A figure measured as `value` `unit`, with no baseline yet and no budget.
    pub(super) fn new(figure: impl Into<String>, value: f64, unit: &str) -> Row {
        Row {
            figure: figure.into(),
            value,
            unit: unit.into(),
            p50_us: None,
            p99_us: None,
            baseline_name: String::new(),
            baseline: 0.0,
            ratio: 0.0,
            budget: "(info)".into(),
            within: None,
        }
    }

    /// The same figure beside its baseline: `baseline` (named `name`) and the ratio
    /// of the measure to it.
    pub(super) fn against(self, name: &str, baseline: f64, ratio: f64) -> Row {
        Row {
            baseline_name: name.into(),
            baseline,
            ratio,
            ..self
        }
    }

    /// The same figure with the p50 and p99 of the calls it is made of.
    pub(super) fn percentiles(self, calls: &Latencies) -> Row {
        let us = |q| calls.quantile(q).as_secs_f64() * 1e6;
        Row {
            p50_us: Some(us(0.5)),
            p99_us: Some(us(0.99)),
            ..self
        }
    }

    /// The same figure with a budget on its ratio: at most `limit × scale`.
    pub(super) fn at_most(self, limit: f64, scale: f64) -> Row {
        let limit = limit * scale;
        Row {
            budget: format!("≤ {}", shown(limit)),
            within: Some(self.ratio <= limit),
            ..self
        }
    }

    /// The same figure with a budget on its ratio: at least `limit ÷ scale`.
    pub(super) fn at_least(self, limit: f64, scale: f64) -> Row {
        let limit = limit / scale;
        Row {
            budget: format!("≥ {}", shown(limit)),
            within: Some(self.ratio >= limit),
            ..self
        }
    }
}

/// A budget's limit as printed: two decimals, more for a tightened tiny one.
fn shown(limit: f64) -> String {
    if limit == 0.0 || limit.abs() >= 0.01 {
        format!("{limit:.2}")
    } else {
        format!("{limit:.2e}")
    }
}

/// Prints the rows: one JSON object per line, or a table.
pub(super) fn print(
    rows: &[Row],
    json: bool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if json {
        for row in rows {
            outln!("{}", serde_json::to_string(row)?)?;
        }
    } else {
        outln!("{}", table(rows))?;
    }
    Ok(())
}

/// The rows as a table (Markdown-shaped, so it pastes into an issue as it is).
fn table(rows: &[Row]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN).set_header([
        "figure",
        "measured",
        "unit",
        "p50 µs",
        "p99 µs",
        "baseline",
        "baseline value",
        "ratio",
        "budget",
        "",
    ]);
    let us = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
    for r in rows {
        let verdict = match r.within {
            Some(true) => "ok",
            Some(false) => "MISS",
            None => "",
        };
        // A figure without a baseline shows none (not a ratio to 0).
        let (baseline, ratio) = if r.baseline_name.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("{:.1}", r.baseline), format!("{:.2}", r.ratio))
        };
        t.add_row([
            r.figure.clone(),
            format!("{:.1}", r.value),
            r.unit.clone(),
            us(r.p50_us),
            us(r.p99_us),
            r.baseline_name.clone(),
            baseline,
            ratio,
            r.budget.clone(),
            verdict.into(),
        ]);
    }
    for i in [1, 3, 4, 6, 7] {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// The exit code of a run: [`exit::BUDGET`] if a figure missed its budget.
pub(super) fn verdict(rows: &[Row]) -> ExitCode {
    if rows.iter().any(|r| r.within == Some(false)) {
        exit::code(exit::BUDGET)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(within: Option<bool>) -> Row {
        Row {
            figure: "f".into(),
            value: 1.0,
            unit: "u".into(),
            p50_us: None,
            p99_us: None,
            baseline_name: "b".into(),
            baseline: 1.0,
            ratio: 1.0,
            budget: "≤ 1.0".into(),
            within,
        }
    }

    #[test]
    fn a_missed_budget_exits_6_and_information_rows_do_not_count() {
        assert_eq!(verdict(&[row(None), row(Some(true))]), ExitCode::SUCCESS);
        assert_eq!(
            verdict(&[row(Some(true)), row(Some(false))]),
            exit::code(exit::BUDGET)
        );
    }

    #[test]
    fn budgets_judge_the_ratio_and_the_scale_tightens_them() {
        let r = |ratio| Row::new("f", 1.0, "u").against("b", 1.0, ratio);
        assert_eq!(r(2.0).at_most(2.0, 1.0).within, Some(true));
        assert_eq!(r(2.1).at_most(2.0, 1.0).within, Some(false));
        assert_eq!(r(0.7).at_least(0.7, 1.0).within, Some(true));
        assert_eq!(r(0.6).at_least(0.7, 1.0).within, Some(false));
        // Tightened: the ceiling halves, the floor doubles.
        assert_eq!(r(1.5).at_most(2.0, 0.5).within, Some(false));
        assert_eq!(r(1.0).at_least(0.7, 0.5).within, Some(false));
        assert_eq!(r(1.5).at_most(2.0, 0.5).budget, "≤ 1.00");
        assert_eq!(r(1.0).at_least(0.7, 0.5).budget, "≥ 1.40");
    }

    #[test]
    fn the_table_shows_every_row_with_its_percentiles_and_verdict() {
        let mut calls = Latencies::new();
        calls.record(std::time::Duration::from_micros(40));
        let rows = [
            Row::new("append latency", 50.0, "µs")
                .against("fsync", 25.0, 2.0)
                .percentiles(&calls)
                .at_most(1.5, 1.0),
            Row::new("raw insert", 10.0, "µs/op"),
        ];
        let text = table(&rows).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "header, rule, two rows: {text}");
        assert!(
            lines[0].contains("p50 µs") && lines[0].contains("p99 µs"),
            "{text}"
        );
        assert!(
            lines[2].contains("40.0") && lines[2].contains("MISS"),
            "{text}"
        );
        assert!(
            lines[3].contains("raw insert") && !lines[3].contains("ok"),
            "{text}"
        );
        assert!(
            !lines[3].contains("0.00"),
            "no ratio without a baseline: {text}"
        );
    }
}
