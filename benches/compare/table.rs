//! The table's rows and how figures are written in them.

use std::time::Duration;

/// One row of the table: what is measured, then one figure per column ("" shows as "–").
#[derive(Default)]
pub struct Row {
    pub what: String,
    pub hubmock: String,
    pub wiremock: String,
    pub nginx: String,
    pub hubmock_to_nginx: String,
    pub hubmock_to_wiremock: String,
}

impl Row {
    pub fn new(what: impl Into<String>) -> Row {
        Row {
            what: what.into(),
            ..Row::default()
        }
    }

    /// Prints the row at once, so the figures of a run that fails later are not lost.
    pub fn print(self) {
        let cell = |text: String| if text.is_empty() { "–".into() } else { text };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            self.what,
            cell(self.hubmock),
            cell(self.wiremock),
            cell(self.nginx),
            cell(self.hubmock_to_nginx),
            cell(self.hubmock_to_wiremock)
        );
    }
}

/// `12,345`: a rate, whole, its thousands grouped.
pub fn whole(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Three significant digits: `0.0797`, `1.23`, `10.8`, `166`.
pub fn significant(value: f64) -> String {
    if !value.is_finite() || value == 0.0 {
        return format!("{value}");
    }
    let decimals = (2 - value.abs().log10().floor() as i32).max(0) as usize;
    format!("{value:.decimals$}")
}

pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        significant(a / b)
    } else {
        String::new()
    }
}

/// `0.412 ms`, `2.61 ms`, `1.23 s`.
pub fn time(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 1.0 {
        format!("{} s", significant(seconds))
    } else {
        format!("{} ms", significant(seconds * 1000.0))
    }
}

/// `1 pipeline`, `100 pipelines`.
pub fn count(n: usize, noun: &str) -> String {
    format!(
        "{} {noun}{}",
        whole(n as f64),
        if n == 1 { "" } else { "s" }
    )
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn median<T: Ord + Copy>(values: &mut [T]) -> T {
    values.sort_unstable();
    values[values.len() / 2]
}
