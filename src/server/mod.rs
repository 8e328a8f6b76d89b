//! Listeners and connections: one tokio task per connection reading LDAP
//! messages, operations running concurrently (pipelining), one writer task
//! per connection keeping responses whole. Plain listeners offer StartTLS,
//! LDAPS listeners handshake first; both share the connection code.

mod conn;
pub mod framing;
pub mod inspect;
pub mod limits;
pub mod metrics;
pub mod tls;

use crate::config::{Limits, Security};
use crate::ops::Shared;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

pub use tls::TlsContext;

/// Whether operations are written to the access log. Off (`serve
/// --access-log none`), an operation's line is neither described nor
/// formatted; its counters (cn=monitor, /metrics) still count.
static ACCESS_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

pub fn set_access_log(on: bool) {
    ACCESS_LOG.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn access_log_on() -> bool {
    ACCESS_LOG.load(std::sync::atomic::Ordering::Relaxed)
}

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

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// LDAP in clear, StartTLS available when TLS is configured.
    Ldap,
    /// TLS from the first byte.
    Ldaps,
}

/// Everything the listeners share.
pub struct ServerOptions {
    pub limits: Limits,
    pub security: Security,
    /// None: TLS is disabled (no LDAPS, no StartTLS).
    pub tls: Option<Arc<TlsContext>>,
    /// SASL EXTERNAL fallback mapping: attribute compared with the certificate CN.
    pub cert_map_attribute: Option<String>,
    /// The ldapi:// listener is on (SASL EXTERNAL is then offered).
    pub ldapi: bool,
}

/// Counters shared by all listeners.
pub struct ServerState {
    pub shared: Arc<Shared>,
    pub limits: Limits,
    pub security: Security,
    pub tls: Option<Arc<TlsContext>>,
    pub cert_map_attribute: Option<String>,
    connections: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    next_conn_id: AtomicU64,
    /// Bytes of partially received messages held by all connections.
    pending: Arc<framing::PendingBudget>,
}

impl ServerState {
    pub fn new(shared: Arc<Shared>, opts: ServerOptions) -> Arc<ServerState> {
        crate::ops::rootdse::set_tls_features(
            opts.tls.is_some(),
            opts.tls.as_ref().is_some_and(|t| t.client_certs()) || opts.ldapi,
        );
        Arc::new(ServerState {
            shared,
            security: opts.security,
            tls: opts.tls,
            cert_map_attribute: opts.cert_map_attribute,
            connections: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            next_conn_id: AtomicU64::new(1),
            pending: framing::PendingBudget::new(opts.limits.max_pending_message_bytes),
            limits: opts.limits,
        })
    }

    /// Takes a connection slot for `ip`, or says which limit is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, String> {
        let open = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        if open > self.limits.max_connections {
            self.connections.fetch_sub(1, Ordering::SeqCst);
            return Err(format!("{} connections open (max_connections)", open - 1));
        }
        let per_ip_limit = self.limits.max_connections_per_ip;
        if per_ip_limit == 0 {
            // No per-address cap: behind a load balancer or NAT every client
            // shares one address, and max_connections alone protects the server.
            return Ok(Slot {
                state: self.clone(),
                ip: None,
            });
        }
        let mut map = match self.per_ip.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let n = map.entry(ip).or_insert(0);
        if *n >= per_ip_limit {
            let have = *n;
            drop(map);
            self.connections.fetch_sub(1, Ordering::SeqCst);
            return Err(format!(
                "{have} connections open from {ip} (max_connections_per_ip)"
            ));
        }
        *n += 1;
        Ok(Slot {
            state: self.clone(),
            ip: Some(ip),
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// An admitted connection; gives its slot back when dropped.
struct Slot {
    state: Arc<ServerState>,
    /// The address counted in `per_ip` (None when there is no per-address cap).
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.connections.fetch_sub(1, Ordering::SeqCst);
        let Some(ip) = self.ip else {
            return;
        };
        let mut map = match self.state.per_ip.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so the
/// connection limits (not the kernel) decide how many clients fit.
pub fn raise_nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return Some(want.rlim_cur);
            }
        }
    }
    Some(lim.rlim_cur)
}

/// Binds every listener before serving any, so a bad address fails the start.
pub async fn bind_all(addrs: &[String]) -> Result<Vec<TcpListener>, ServerError> {
    let mut listeners = Vec::new();
    for a in addrs {
        listeners.push(bind_one(a).await?);
    }
    Ok(listeners)
}

/// Binds one listener; the error says how to fix the usual problems.
pub async fn bind_one(a: &str) -> Result<TcpListener, ServerError> {
    let addr: SocketAddr = a.parse().map_err(|_| ServerError::Address(a.to_string()))?;
    TcpListener::bind(addr).await.map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::PermissionDenied => {
                "\n  ports below 1024 need root or CAP_NET_BIND_SERVICE \
                 (setcap cap_net_bind_service=+ep $(which ferrodir)), \
                 or use an unprivileged port: --ldap 127.0.0.1:3389 --ldaps 127.0.0.1:3636"
                    .to_string()
            }
            std::io::ErrorKind::AddrInUse => format!(
                "\n  another process already listens on {a}; stop it or choose another port, \
                 e.g. --ldap 127.0.0.1:3389"
            ),
            _ => String::new(),
        };
        ServerError::Bind {
            addr: a.to_string(),
            source,
            hint,
        }
    })
}

/// Accepts connections on a plain LDAP listener until the task is dropped.
pub async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    serve_listener(listener, state, ListenerKind::Ldap).await
}

/// Accepts connections on `listener` until the task is dropped.
/// Binds the ldapi:// listener at `path`: a stale socket left by a killed
/// server is replaced, a live one (another server) is an error. The socket
/// is open to every local user (mode 0666), as OpenLDAP's and 389-ds's are:
/// who may do what is decided by the bind (SASL EXTERNAL maps the peer's
/// uid, docs/ldapi.md) and access control.
pub fn bind_ldapi(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by another server", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// Serves LDAP on the ldapi:// listener.
pub async fn serve_ldapi(listener: tokio::net::UnixListener, state: Arc<ServerState>) {
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
        .unwrap_or_default();
    tracing::info!(listener = %path, "listening for LDAP over ldapi (SASL EXTERNAL maps the local user)");
    // Local peers count against the limits as loopback clients.
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(listener = %path, "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let cred = stream.peer_cred().ok().map(|c| (c.uid(), c.gid()));
        let conn_id = state.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let slot = match state.admit(loopback.ip()) {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!(conn = conn_id, "ldapi connection refused: {why}");
                continue;
            }
        };
        let st = state.clone();
        let span = tracing::info_span!("conn", id = conn_id);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let (uid, gid) = cred.map_or((None, None), |(u, g)| (Some(u), Some(g)));
                tracing::info!(?uid, ?gid, "ldapi connection opened");
                st.shared.stats.connection_opened();
                let stats = st.shared.stats.clone();
                let ctx = conn::ConnCtx {
                    id: conn_id,
                    ops: std::sync::atomic::AtomicU64::new(0),
                    peer: loopback,
                    state: st,
                    local: cred,
                };
                conn::handle_local(stream, &ctx).await;
                drop(slot);
                stats.connection_closed();
                tracing::info!("connection closed");
            },
            span,
        ));
    }
}

pub async fn serve_listener(listener: TcpListener, state: Arc<ServerState>, kind: ListenerKind) {
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    match (kind, &state.tls) {
        (ListenerKind::Ldap, Some(_)) => {
            tracing::info!(listener = %local, "listening for LDAP starttls=available")
        }
        (ListenerKind::Ldap, None) => {
            tracing::info!(listener = %local, "listening for LDAP starttls=unavailable (TLS disabled)")
        }
        (ListenerKind::Ldaps, Some(t)) => {
            tracing::info!(listener = %local, "listening for LDAPS {}", t.summary())
        }
        (ListenerKind::Ldaps, None) => {
            tracing::error!(listener = %local, "LDAPS listener without TLS configuration; not serving it");
            return;
        }
    }
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
        let conn_id = state.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let slot = match state.admit(peer.ip()) {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!(conn = conn_id, %peer, "connection refused: {why}");
                if kind == ListenerKind::Ldap {
                    conn::refuse(stream);
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        let local = local.clone();
        // Every event of the connection (its operations' warnings too)
        // names it: conn{id=N}.
        let span = tracing::info_span!("conn", id = conn_id);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                tracing::info!(%peer, listener = %local, "connection opened");
                st.shared.stats.connection_opened();
                let stats = st.shared.stats.clone();
                let ctx = conn::ConnCtx {
                    id: conn_id,
                    ops: std::sync::atomic::AtomicU64::new(0),
                    peer,
                    state: st,
                    local: None,
                };
                run_connection(stream, &ctx, kind).await;
                drop(slot);
                stats.connection_closed();
                tracing::info!("connection closed");
            },
            span,
        ));
    }
}

async fn run_connection(stream: TcpStream, ctx: &conn::ConnCtx, kind: ListenerKind) {
    match kind {
        ListenerKind::Ldap => conn::handle_plain(stream, ctx).await,
        ListenerKind::Ldaps => {
            conn::handle_tls(stream, ctx, crate::directory::Identity::anonymous()).await
        }
    }
}
