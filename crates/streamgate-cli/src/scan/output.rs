//! Token rows as a table (by score), CSV with a header, or JSON Lines.

use std::io::Write;

use streamgate_core::detection::TokenRow;

use crate::cli::OutputFormat;

const HEADER: [&str; 16] = [
    "token",
    "sub",
    "score",
    "severity",
    "indicators",
    "ips",
    "sessions",
    "peak_concurrency",
    "countries",
    "providers",
    "referrers",
    "playback_seconds",
    "bytes",
    "streams",
    "first_seen",
    "last_seen",
];

/// Writes the rows (already sorted by score) to standard output.
pub fn print(rows: &[TokenRow], format: OutputFormat) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match format {
        OutputFormat::Json => rows.iter().try_for_each(|row| {
            let line = serde_json::to_string(row).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")
        }),
        OutputFormat::Csv => {
            let header = writeln!(out, "{}", HEADER.join(","));
            header.and_then(|()| rows.iter().try_for_each(|row| writeln!(out, "{}", csv_fields(row).join(","))))
        }
        OutputFormat::Table => table(&mut out, rows),
    };
    written.and_then(|()| out.flush()).or_else(ignore_broken_pipe).map_err(|e| format!("writing output: {e}"))
}

fn ignore_broken_pipe(error: std::io::Error) -> std::io::Result<()> {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(error)
    }
}

fn indicator_codes(row: &TokenRow) -> Vec<&'static str> {
    row.indicators.iter().map(|i| i.code.as_str()).collect()
}

fn csv_fields(row: &TokenRow) -> Vec<String> {
    let providers: Vec<String> = row.providers.iter().map(|p| format!("AS{}={}", p.asn, p.count)).collect();
    let referrers: Vec<String> =
        row.referrers.iter().map(|r| format!("{}={}", r.name.as_deref().unwrap_or("-"), r.count)).collect();
    [
        row.token.clone(),
        row.sub.clone().unwrap_or_default(),
        row.score.to_string(),
        row.severity.as_str().to_owned(),
        indicator_codes(row).join(";"),
        row.ips.to_string(),
        row.sessions.to_string(),
        row.peak_concurrency.to_string(),
        row.countries.join(";"),
        providers.join(";"),
        referrers.join(";"),
        row.playback_seconds.to_string(),
        row.bytes.to_string(),
        row.streams.join(";"),
        row.first_seen.to_string(),
        row.last_seen.to_string(),
    ]
    .into_iter()
    .map(|field| csv_quote(&field))
    .collect()
}

/// RFC 4180: quote fields with commas, quotes or line breaks, doubling quotes.
fn csv_quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

fn table(out: &mut impl Write, rows: &[TokenRow]) -> std::io::Result<()> {
    let cut = |text: &str, max: usize| -> String {
        if text.chars().count() > max {
            format!("{}…", text.chars().take(max - 1).collect::<String>())
        } else {
            text.to_owned()
        }
    };
    writeln!(
        out,
        "{:>5}  {:<8}  {:<28}  {:<14}  {:>5}  {:>6}  {:>4}  {:<12}  {:>9}  INDICATORS",
        "SCORE", "SEVERITY", "TOKEN", "SUB", "IPS", "SESS", "PEAK", "COUNTRIES", "PLAYBACK"
    )?;
    for row in rows {
        let playback = format!("{}h{:02}m", row.playback_seconds / 3600, (row.playback_seconds % 3600) / 60);
        writeln!(
            out,
            "{:>5}  {:<8}  {:<28}  {:<14}  {:>5}  {:>6}  {:>4}  {:<12}  {:>9}  {}",
            row.score,
            row.severity.as_str(),
            cut(&row.token, 28),
            cut(row.sub.as_deref().unwrap_or("-"), 14),
            row.ips,
            row.sessions,
            row.peak_concurrency,
            cut(&row.countries.join(","), 12),
            playback,
            indicator_codes(row).join(",")
        )?;
    }
    Ok(())
}
