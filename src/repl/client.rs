//! A small async LDAP client over `ldap3_proto`'s codec: what a supplier
//! needs to push changes (connect, simple bind, extended operations, unbind)
//! plus a plain search for the admin tooling. Every step has a timeout and
//! every failure names the step, so an agreement's status says what broke.
//! Nothing here panics on a bad peer: it becomes a `ClientError`.

use crate::directory::repl::Transport;
use futures::{SinkExt, StreamExt};
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapExtendedRequest, LdapFilter, LdapMsg,
    LdapOp, LdapResult, LdapResultCode, LdapSearchRequest, LdapSearchScope,
};
use ldap3_proto::LdapCodec;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Largest response accepted (entries with big values, RUVs).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("TLS with {addr}: {reason}")]
    Tls { addr: String, reason: String },
    #[error("bind as '{dn}' failed: {code} ({name}) {message}")]
    Bind {
        dn: String,
        code: i32,
        name: String,
        message: String,
    },
    #[error("{step} failed: {code} ({name}) {message}")]
    Result {
        step: String,
        code: i32,
        name: String,
        message: String,
    },
    #[error("protocol error during {step}: {reason}")]
    Protocol { step: String, reason: String },
    #[error("{step}: no answer within {secs} s")]
    Timeout { step: String, secs: u64 },
    #[error("transport {0} is not yet supported by this build (TLS support is pending); use LDAP")]
    Unsupported(String),
}

impl ClientError {
    /// The LDAP result code, when the peer answered with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            ClientError::Bind { code, .. } | ClientError::Result { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The peer's diagnostic message, when it answered with one.
    pub fn message(&self) -> Option<&str> {
        match self {
            ClientError::Bind { message, .. } | ClientError::Result { message, .. } => {
                Some(message)
            }
            _ => None,
        }
    }

    fn result(step: &str, r: &LdapResult) -> ClientError {
        ClientError::Result {
            step: step.to_string(),
            code: r.code.clone() as i32,
            name: code_name(&r.code),
            message: r.message.clone(),
        }
    }
}

fn code_name(c: &LdapResultCode) -> String {
    let dbg = format!("{c:?}");
    // Unknown codes print as Other(n) or similar; keep the name short.
    dbg.split('(').next().unwrap_or("").to_string()
}

/// One entry of a search result: DN and attributes with their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    /// First value of an attribute (case-insensitive name), as text.
    pub fn first(&self, name: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(|v| String::from_utf8_lossy(v).to_string())
    }
}

pub struct Client {
    framed: Framed<TcpStream, LdapCodec>,
    next_id: i32,
    addr: String,
    /// Timeout of each request/response exchange.
    op_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("addr", &self.addr).finish()
    }
}

impl Client {
    /// Opens a connection. Only plain LDAP is available in this build; LDAPS
    /// and StartTLS are refused with `Unsupported` before anything is sent,
    /// so credentials never travel in clear text by accident.
    pub async fn connect(
        host: &str,
        port: u16,
        transport: Transport,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        match transport {
            Transport::Ldap => {}
            Transport::Ldaps => return Err(ClientError::Unsupported("LDAPS".into())),
            Transport::StartTls => return Err(ClientError::Unsupported("StartTLS".into())),
        }
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| ClientError::Connect {
                addr: addr.clone(),
                reason: format!("timed out after {} s", timeout.as_secs()),
            })?
            .map_err(|e| ClientError::Connect {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        Ok(Client {
            framed: Framed::new(stream, LdapCodec::new(Some(MAX_MESSAGE), None)),
            next_id: 1,
            addr,
            op_timeout: Duration::from_secs(300),
        })
    }

    /// Parses `ldap://host[:port][/...]` (LDAP only for now).
    pub async fn connect_url(url: &str, timeout: Duration) -> Result<Client, ClientError> {
        let (transport, rest, default_port) = if let Some(r) = url.strip_prefix("ldap://") {
            (Transport::Ldap, r, 389)
        } else if let Some(r) = url.strip_prefix("ldaps://") {
            (Transport::Ldaps, r, 636)
        } else {
            return Err(ClientError::Connect {
                addr: url.to_string(),
                reason: "expected an ldap:// or ldaps:// URL".into(),
            });
        };
        let hostport = rest.split('/').next().unwrap_or_default();
        let (host, port) =
            split_host_port(hostport, default_port).ok_or_else(|| ClientError::Connect {
                addr: url.to_string(),
                reason: "bad host:port".into(),
            })?;
        Client::connect(&host, port, transport, timeout).await
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn set_op_timeout(&mut self, t: Duration) {
        self.op_timeout = t;
    }

    fn msgid(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = if id >= i32::MAX - 1 { 1 } else { id + 1 };
        id
    }

    async fn send(&mut self, step: &str, op: LdapOp) -> Result<i32, ClientError> {
        let msgid = self.msgid();
        let msg = LdapMsg {
            msgid,
            op,
            ctrl: Vec::new(),
        };
        match tokio::time::timeout(self.op_timeout, self.framed.send(msg)).await {
            Err(_) => Err(ClientError::Timeout {
                step: step.into(),
                secs: self.op_timeout.as_secs(),
            }),
            Ok(Err(e)) => Err(ClientError::Protocol {
                step: step.into(),
                reason: format!("sending: {e}"),
            }),
            Ok(Ok(())) => Ok(msgid),
        }
    }

    /// Next message for `msgid`; a notice of disconnection (id 0) is an error.
    async fn recv(&mut self, step: &str, msgid: i32) -> Result<LdapOp, ClientError> {
        loop {
            let next = tokio::time::timeout(self.op_timeout, self.framed.next())
                .await
                .map_err(|_| ClientError::Timeout {
                    step: step.into(),
                    secs: self.op_timeout.as_secs(),
                })?;
            let msg = match next {
                None => {
                    return Err(ClientError::Protocol {
                        step: step.into(),
                        reason: "the server closed the connection".into(),
                    })
                }
                Some(Err(e)) => {
                    return Err(ClientError::Protocol {
                        step: step.into(),
                        reason: format!("reading: {e}"),
                    })
                }
                Some(Ok(m)) => m,
            };
            if msg.msgid == msgid {
                return Ok(msg.op);
            }
            if msg.msgid == 0 {
                if let LdapOp::ExtendedResponse(r) = &msg.op {
                    return Err(ClientError::result(
                        &format!("{step} (server disconnected)"),
                        &r.res,
                    ));
                }
            }
            // A stray answer to an earlier, abandoned request: skip it.
        }
    }

    /// Simple bind; the password never appears in errors or logs.
    pub async fn simple_bind(&mut self, dn: &str, password: &str) -> Result<(), ClientError> {
        let id = self
            .send(
                "bind",
                LdapOp::BindRequest(LdapBindRequest {
                    version: 3,
                    dn: dn.to_string(),
                    cred: LdapBindCred::Simple(password.to_string()),
                }),
            )
            .await?;
        match self.recv("bind", id).await? {
            LdapOp::BindResponse(r) if r.res.code == LdapResultCode::Success => Ok(()),
            LdapOp::BindResponse(r) => Err(ClientError::Bind {
                dn: dn.to_string(),
                code: r.res.code.clone() as i32,
                name: code_name(&r.res.code),
                message: r.res.message,
            }),
            other => Err(unexpected("bind", &other)),
        }
    }

    /// Extended operation: the response value on success.
    pub async fn extended(
        &mut self,
        step: &str,
        oid: &str,
        value: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        let id = self
            .send(
                step,
                LdapOp::ExtendedRequest(LdapExtendedRequest {
                    name: oid.to_string(),
                    value: Some(value),
                }),
            )
            .await?;
        match self.recv(step, id).await? {
            LdapOp::ExtendedResponse(r) if r.res.code == LdapResultCode::Success => {
                Ok(r.value.unwrap_or_default())
            }
            LdapOp::ExtendedResponse(r) => Err(ClientError::result(step, &r.res)),
            other => Err(unexpected(step, &other)),
        }
    }

    /// Subtree search with an equality or presence filter given as
    /// (attribute, Some(value)) / (attribute, None).
    pub async fn search(
        &mut self,
        base: &str,
        filter: (&str, Option<&str>),
        attrs: &[&str],
    ) -> Result<Vec<Entry>, ClientError> {
        let filter = match filter {
            (a, Some(v)) => LdapFilter::Equality(a.to_string(), v.to_string()),
            (a, None) => LdapFilter::Present(a.to_string()),
        };
        let id = self
            .send(
                "search",
                LdapOp::SearchRequest(LdapSearchRequest {
                    base: base.to_string(),
                    scope: LdapSearchScope::Subtree,
                    aliases: LdapDerefAliases::Never,
                    sizelimit: 0,
                    timelimit: 0,
                    typesonly: false,
                    filter,
                    attrs: attrs.iter().map(|s| s.to_string()).collect(),
                }),
            )
            .await?;
        let mut out = Vec::new();
        loop {
            match self.recv("search", id).await? {
                LdapOp::SearchResultEntry(e) => out.push(Entry {
                    dn: e.dn,
                    attrs: e
                        .attributes
                        .into_iter()
                        .map(|a| (a.atype, a.vals))
                        .collect(),
                }),
                LdapOp::SearchResultReference(_) => {}
                LdapOp::SearchResultDone(r) if r.code == LdapResultCode::Success => return Ok(out),
                LdapOp::SearchResultDone(r) => return Err(ClientError::result("search", &r)),
                other => return Err(unexpected("search", &other)),
            }
        }
    }

    /// Polite goodbye; errors do not matter at this point.
    pub async fn unbind(mut self) {
        let msgid = self.msgid();
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.framed.send(LdapMsg {
                msgid,
                op: LdapOp::UnbindRequest,
                ctrl: Vec::new(),
            }),
        )
        .await;
    }
}

fn unexpected(step: &str, op: &LdapOp) -> ClientError {
    ClientError::Protocol {
        step: step.into(),
        reason: format!("unexpected response {}", op_kind(op)),
    }
}

fn op_kind(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindResponse(_) => "bind response",
        LdapOp::SearchResultEntry(_) => "search entry",
        LdapOp::SearchResultDone(_) => "search done",
        LdapOp::ExtendedResponse(_) => "extended response",
        LdapOp::IntermediateResponse(_) => "intermediate response",
        _ => "message",
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
pub fn split_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => Some((s.to_string(), default_port)),
        None if s.is_empty() => None,
        None => Some((s.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a:1", 389), Some(("a".into(), 1)));
        assert_eq!(split_host_port("a", 389), Some(("a".into(), 389)));
        assert_eq!(split_host_port("[::1]:5", 389), Some(("::1".into(), 5)));
        assert_eq!(split_host_port("[::1]", 389), Some(("::1".into(), 389)));
        assert_eq!(split_host_port("", 389), None);
        assert_eq!(split_host_port("a:x", 389), None);
    }

    #[tokio::test]
    async fn tls_transports_are_refused_clearly() {
        let e = Client::connect("127.0.0.1", 1, Transport::Ldaps, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("LDAPS is not yet supported"), "{e}");
    }

    #[tokio::test]
    async fn connect_failure_names_the_step() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = Client::connect("127.0.0.1", port, Transport::Ldap, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("connect to 127.0.0.1:"), "{e}");
    }
}
