//! The metrics endpoint (`--metrics ADDR`, off by default): plain HTTP/1.1,
//! `GET /metrics` answers the Prometheus text (ops/monitor.rs), anything
//! else 404. One request per connection, read with a size and time limit,
//! so a scraper or a stranger cannot hold a task or memory.

use crate::ops::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn serve_metrics(listener: TcpListener, shared: Arc<Shared>) {
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listener = %local, "serving metrics at http://{local}/metrics");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(listener = %local, "metrics accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, shared).await {
                tracing::debug!("metrics request: {e}");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let n = match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_REQUEST {
            return reply(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
        }
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).to_string();
    let mut first = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    if method != "GET" {
        return reply(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n",
        )
        .await;
    }
    if path != "/metrics" && !path.starts_with("/metrics?") {
        return reply(&mut stream, "404 Not Found", "text/plain", "see /metrics\n").await;
    }
    let stats = shared.stats.clone();
    let body =
        tokio::task::spawn_blocking(move || crate::ops::monitor::prometheus_text(&shared, &stats))
            .await
            .unwrap_or_default();
    reply(
        &mut stream,
        "200 OK",
        "text/plain; version=0.0.4; charset=utf-8",
        &body,
    )
    .await
}

async fn reply(
    stream: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
