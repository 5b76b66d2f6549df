//! Hostile clients against a real `hearth-relay` process, one attack at a time, while a
//! legitimate pair keeps writing: its fan-out latency under each attack (against a quiet
//! baseline), what the attackers got, the relay's memory, and whether its open connections
//! come back down once the attack stops.
//!
//! | attack | what the attackers do | what should stop them |
//! |---|---|---|
//! | `slowloris` | hold connections open, sending the HTTP request a byte at a time | the 10 s request deadline |
//! | `half_open` | finish the websocket upgrade, then say nothing | the 10 s login deadline |
//! | `login_flood` | Hello and a forged Auth, as fast as they can | refusal, one signature check each |
//! | `oversized` | a frame one byte over the 4 MiB limit | the frame limit |
//! | `garbage` | random bytes, text frames, truncated and invalid frames | the decoder: refuse and close |
//!
//! (Frames are postcard, not JSON: there is no nesting for "deep nesting" to exploit; the
//! `frame` fuzz target covers the decoder itself.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use hearth_proto::{ClientFrame, DeviceId, Limits, PROTOCOL_VERSION, SpaceId, encode_client};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::relay::{Pairs, RelayProcess, latency, open_connections};

/// Every attack, in the order they run.
pub const ATTACKS: [&str; 5] = [
    "slowloris",
    "half_open",
    "login_flood",
    "oversized",
    "garbage",
];

/// What the attackers counted.
#[derive(Debug, Default)]
struct Tally {
    /// Connections opened.
    opened: AtomicU64,
    /// Connections the relay closed or refused.
    closed: AtomicU64,
    /// Frames or bytes sent.
    sent: AtomicU64,
}

fn host(url: &str) -> Result<String> {
    url.strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned)
        .context("a ws:// relay URL")
}

fn frame(frame: &ClientFrame) -> Message {
    let bytes = encode_client(frame, Limits::default().frame_bytes()).unwrap_or_default();
    Message::Binary(bytes.into())
}

fn hello() -> Message {
    frame(&ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        client: "attacker".into(),
    })
}

/// A tiny xorshift for attack payloads.
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed & 0xff) as u8
        })
        .collect()
}

/// Runs one attacker connection loop until `until`.
async fn attacker(kind: &'static str, url: String, tally: Arc<Tally>, until: Instant, n: u64) {
    let addr = match host(&url) {
        Ok(addr) => addr,
        Err(_) => return,
    };
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ n;
    while Instant::now() < until {
        match kind {
            "slowloris" => {
                let Ok(mut tcp) = TcpStream::connect(&addr).await else {
                    continue;
                };
                tally.opened.fetch_add(1, Ordering::Relaxed);
                let _ = tcp
                    .write_all(b"GET /v1/sync HTTP/1.1\r\nHost: relay\r\n")
                    .await;
                let mut buf = [0u8; 64];
                loop {
                    if Instant::now() >= until || tcp.write_all(b"X").await.is_err() {
                        break;
                    }
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    let read =
                        tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await;
                    if let Ok(Ok(0) | Err(_)) = read {
                        tally.closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            "half_open" => {
                let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
                    continue;
                };
                tally.opened.fetch_add(1, Ordering::Relaxed);
                let left = until.saturating_duration_since(Instant::now());
                // Never says a word; reads only to notice the close.
                if let Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) =
                    tokio::time::timeout(left, ws.next()).await
                {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                }
            }
            "login_flood" => {
                let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
                    continue;
                };
                tally.opened.fetch_add(1, Ordering::Relaxed);
                let _ = ws.send(hello()).await;
                let _ = ws.next().await;
                let key: [u8; 32] = noise(&mut seed, 32).try_into().unwrap_or([1; 32]);
                let space: [u8; 16] = noise(&mut seed, 16).try_into().unwrap_or([1; 16]);
                let signature: [u8; 64] = noise(&mut seed, 64).try_into().unwrap_or([1; 64]);
                let _ = ws
                    .send(frame(&ClientFrame::Auth {
                        device: DeviceId::from_bytes(key),
                        space: SpaceId::from_bytes(space),
                        time_ms: 0,
                        signature,
                        as_invite: false,
                    }))
                    .await;
                tally.sent.fetch_add(2, Ordering::Relaxed);
                // The refusal, then the close.
                while let Some(Ok(message)) = ws.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
                tally.closed.fetch_add(1, Ordering::Relaxed);
            }
            "oversized" => {
                let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
                    continue;
                };
                tally.opened.fetch_add(1, Ordering::Relaxed);
                let _ = ws.send(hello()).await;
                let big = vec![0u8; Limits::default().frame_bytes() + 1];
                let _ = ws.send(Message::Binary(big.into())).await;
                tally.sent.fetch_add(1, Ordering::Relaxed);
                while let Some(Ok(message)) = ws.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
                tally.closed.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
                    continue;
                };
                tally.opened.fetch_add(1, Ordering::Relaxed);
                let len = 1 + (seed % 512) as usize;
                let message = match seed % 4 {
                    0 => Message::Text(
                        String::from_utf8_lossy(&noise(&mut seed, len))
                            .into_owned()
                            .into(),
                    ),
                    1 => {
                        // A Hello cut short.
                        let Message::Binary(bytes) = hello() else {
                            continue;
                        };
                        Message::Binary(bytes.slice(..bytes.len() / 2))
                    }
                    _ => Message::Binary(noise(&mut seed, len).into()),
                };
                let _ = ws.send(message).await;
                tally.sent.fetch_add(1, Ordering::Relaxed);
                while let Some(Ok(message)) = ws.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
                tally.closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// How many attacker connection loops each attack runs.
fn attackers(kind: &str) -> u64 {
    match kind {
        "slowloris" | "half_open" => 500,
        "oversized" => 4,
        _ => 8,
    }
}

/// Runs the baseline and every attack in `which` for `seconds` each; one JSON line each.
///
/// # Errors
/// If the relay cannot start or the legitimate pair cannot connect.
pub fn run(relay_bin: &std::path::Path, seconds: u64, which: &[String]) -> Result<Vec<Value>> {
    let temp = tempfile::tempdir()?;
    let relay = RelayProcess::start(relay_bin, &temp.path().join("relay"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut pairs = runtime.block_on(Pairs::connect(&relay.url, 1))?;
    // loadgen's pacing for one pair: a write every 150 ms.
    let samples = (seconds * 1000 / 150) as usize;
    let mut out = Vec::new();
    for kind in std::iter::once("baseline").chain(ATTACKS.iter().copied()) {
        if kind != "baseline" && !which.iter().any(|w| w == kind) {
            continue;
        }
        let tally = Arc::new(Tally::default());
        let until = Instant::now() + Duration::from_secs(seconds);
        let cpu_before = relay.cpu()?;
        let started = Instant::now();
        let tasks: Vec<_> = if kind == "baseline" {
            Vec::new()
        } else {
            (0..attackers(kind))
                .map(|n| {
                    runtime.spawn(attacker(
                        kind,
                        relay.url.clone(),
                        Arc::clone(&tally),
                        until,
                        n,
                    ))
                })
                .collect()
        };
        let l = runtime.block_on(latency(&mut pairs, &relay, samples, seconds))?;
        let during = runtime
            .block_on(open_connections(relay.addr()))
            .unwrap_or(0);
        for t in &tasks {
            t.abort();
        }
        let cpu = relay.cpu()?.saturating_sub(cpu_before);
        // Once the attackers are gone, the relay's connections come back down to the pair.
        let settled = Instant::now() + Duration::from_secs(15);
        let mut after = runtime
            .block_on(open_connections(relay.addr()))
            .unwrap_or(u64::MAX);
        while after > 2 && Instant::now() < settled {
            std::thread::sleep(Duration::from_millis(200));
            after = runtime
                .block_on(open_connections(relay.addr()))
                .unwrap_or(u64::MAX);
        }
        let line = json!({
            "bench": "hearth-relay", "test": "attack", "attack": kind,
            "seconds": seconds, "attackers": if kind == "baseline" { 0 } else { attackers(kind) },
            "opened": tally.opened.load(Ordering::Relaxed),
            "closed_by_relay": tally.closed.load(Ordering::Relaxed),
            "sent": tally.sent.load(Ordering::Relaxed),
            "pair_samples": l.sent, "pair_lost": l.lost,
            "pair_p50_ms": l.p50_ms, "pair_p99_ms": l.p99_ms, "pair_max_ms": l.max_ms,
            "open_connections_during": during, "open_connections_after": after,
            "relay_cpu_pct": (cpu.as_secs_f64() / started.elapsed().as_secs_f64() * 1000.0).round() / 10.0,
            "relay_rss_kb": relay.rss_kb()?, "relay_peak_rss_kb": relay.peak_rss_kb()?,
        });
        println!("{line}");
        out.push(line);
    }
    runtime.block_on(pairs.close());
    drop(runtime);
    relay.stop()?;
    Ok(out)
}
