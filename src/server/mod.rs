//! Listeners and connections: one tokio task per connection reading LDAP
//! messages, operations running concurrently (pipelining), one writer task
//! per connection keeping responses whole.

mod conn;
pub mod framing;

use crate::config::Limits;
use crate::ops::Shared;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        addr: String,
        source: std::io::Error,
        hint: String,
    },
    #[error("invalid listen address {0:?} (expected host:port, e.g. 127.0.0.1:389 or [::1]:389)")]
    Address(String),
}

/// Counters shared by all listeners.
pub struct ServerState {
    pub shared: Arc<Shared>,
    pub limits: Limits,
    connections: AtomicUsize,
    next_conn_id: AtomicU64,
}

impl ServerState {
    pub fn new(shared: Arc<Shared>, limits: Limits) -> Arc<ServerState> {
        Arc::new(ServerState {
            shared,
            limits,
            connections: AtomicUsize::new(0),
            next_conn_id: AtomicU64::new(1),
        })
    }
}

/// Binds every listener before serving any, so a bad address fails the start.
pub async fn bind_all(addrs: &[String]) -> Result<Vec<TcpListener>, ServerError> {
    let mut listeners = Vec::new();
    for a in addrs {
        let addr: SocketAddr = a.parse().map_err(|_| ServerError::Address(a.clone()))?;
        match TcpListener::bind(addr).await {
            Ok(l) => listeners.push(l),
            Err(source) => {
                let hint = match source.kind() {
                    std::io::ErrorKind::PermissionDenied => "\n  ports below 1024 need root or CAP_NET_BIND_SERVICE \
                         (setcap cap_net_bind_service=+ep $(which ferrodir)), \
                         or use an unprivileged port: --ldap 127.0.0.1:3389"
                        .to_string(),
                    std::io::ErrorKind::AddrInUse => format!(
                        "\n  another process already listens on {a}; stop it or choose another port, \
                         e.g. --ldap 127.0.0.1:3389"
                    ),
                    _ => String::new(),
                };
                return Err(ServerError::Bind {
                    addr: a.clone(),
                    source,
                    hint,
                });
            }
        }
    }
    Ok(listeners)
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listener = %local, tls = "none", "listening for LDAP");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(listener = %local, "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let open = state.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let conn_id = state.next_conn_id.fetch_add(1, Ordering::Relaxed);
        if open > state.limits.max_connections {
            state.connections.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(conn = conn_id, %peer, "connection refused: {} connections open (max_connections)", open - 1);
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        let local = local.clone();
        tokio::spawn(async move {
            tracing::info!(conn = conn_id, %peer, listener = %local, "connection opened");
            conn::handle(stream, conn_id, st.clone()).await;
            st.connections.fetch_sub(1, Ordering::SeqCst);
            tracing::info!(conn = conn_id, "connection closed");
        });
    }
}
