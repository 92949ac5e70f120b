//! The report of `evlog bench`: its rows, how they print, and the exit code they
//! give.

use std::process::ExitCode;

use serde::Serialize;

use crate::exit;
use crate::out::outln;

/// One figure of the report, beside its baseline.
#[derive(Serialize, Clone)]
pub(super) struct Row {
    figure: String,
    value: f64,
    unit: String,
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

    /// The same figure with a budget (`budget`, as printed) and whether it is met.
    pub(super) fn budget(self, budget: &str, within: bool) -> Row {
        Row {
            budget: budget.into(),
            within: Some(within),
            ..self
        }
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
        outln!(
            "{:<52} {:>14} {:<9} {:<26} {:>12} {:>7} {:>7}",
            "figure",
            "measured",
            "unit",
            "baseline",
            "baseline",
            "ratio",
            "budget"
        )?;
        for r in rows {
            let verdict = match r.within {
                Some(true) => "ok",
                Some(false) => "MISS",
                None => "",
            };
            outln!(
                "{:<52} {:>14.1} {:<9} {:<26} {:>12.1} {:>7.2} {:>7} {}",
                r.figure,
                r.value,
                r.unit,
                r.baseline_name,
                r.baseline,
                r.ratio,
                r.budget,
                verdict
            )?;
        }
    }
    Ok(())
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
}
