//! Reading a `baton` process's `/metrics` endpoint: one plain HTTP/1.0
//! GET, and the samples of the text format by series.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, Result, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One scrape: every sample, keyed by its series as exposed
/// (`baton_failures_total{reason="default"}`).
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// Scrapes `http://addr/metrics`.
    pub async fn get(addr: SocketAddr) -> Result<Scrape> {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await?;
        let (head, body) = reply.split_once("\r\n\r\n").context("no end of headers")?;
        ensure!(
            head.starts_with("HTTP/1.") && head.contains(" 200 "),
            "{head}"
        );
        Ok(Scrape::parse(body))
    }

    /// The samples of a text-format body; comments are skipped.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
            .collect();
        Scrape { samples }
    }

    /// A series' value; `None` when it is not exposed.
    pub fn value(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }

    /// A counter's value; 0 when not exposed (a labelled series appears
    /// only once it has been counted).
    pub fn count(&self, series: &str) -> u64 {
        // Counters hold whole numbers well below 2^53.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let count = self.value(series).unwrap_or(0.0) as u64;
        count
    }

    /// Every series whose name (before any label) is `name`.
    pub fn series(&self, name: &str) -> Vec<(&str, f64)> {
        self.samples
            .iter()
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .map(|(series, value)| (series.as_str(), *value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Scrape;

    #[test]
    fn samples_are_read_by_series_and_comments_skipped() {
        let text = "# TYPE baton_leases counter\nbaton_leases_total 6\n\
                    baton_failures_total{reason=\"default\"} 3\n# EOF\n";
        let scrape = Scrape::parse(text);
        assert_eq!(scrape.count("baton_leases_total"), 6);
        assert_eq!(scrape.count(r#"baton_failures_total{reason="default"}"#), 3);
        assert_eq!(
            scrape.count(r#"baton_failures_total{reason="stop_when"}"#),
            0
        );
        assert_eq!(scrape.series("baton_failures_total").len(), 1);
    }
}
