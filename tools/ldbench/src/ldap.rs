//! A minimal LDAPv3 client connection over a tokio `TcpStream`.
//!
//! Requests are encoded with `ldap3_proto`'s codec. Responses are framed by
//! hand (BER length only); search result entries are counted and skipped
//! without decoding unless the caller asks for them, which keeps the
//! generator's cost per operation well below the server's. Every other
//! response is decoded with `ldap3_proto`. Nothing here panics on a bad
//! response: it becomes an `Err`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapAddRequest, LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapModify,
    LdapModifyRequest, LdapModifyType, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult,
    LdapSearchRequest, LdapSearchResultEntry, LdapSearchScope,
};
use ldap3_proto::LdapCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};

/// Largest single response message accepted (an entry with big values).
const MAX_MSG: usize = 16 * 1024 * 1024;

/// Parses `ldap://host:port[/]` into `host:port`.
pub fn parse_url(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("ldap://")
        .ok_or_else(|| anyhow!("only ldap:// URLs are supported, got {url:?}"))?;
    let hostport = rest.split('/').next().unwrap_or_default();
    if hostport.is_empty() {
        bail!("no host in {url:?}");
    }
    if hostport.starts_with('[') || hostport.rsplit_once(':').is_some() {
        if hostport.starts_with('[') && !hostport.contains("]:") {
            return Ok(format!("{hostport}:389"));
        }
        Ok(hostport.to_string())
    } else {
        Ok(format!("{hostport}:389"))
    }
}

/// One response frame.
pub enum Frame {
    /// A search result entry, not decoded; (message id).
    Entry(i32),
    /// A search result reference, not decoded.
    Reference,
    /// Any other message, decoded.
    Msg(Box<LdapMsg>),
    /// A search result entry, decoded (when asked for).
    DecodedEntry(i32, LdapSearchResultEntry),
}

/// The outcome of a search.
#[derive(Debug, Default)]
pub struct SearchOutcome {
    pub code: i64,
    pub entries: u64,
    pub ctrls: Vec<LdapControl>,
}

pub struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    codec: LdapCodec,
    next_id: i32,
}

/// Reads a BER length at `b[pos..]`: returns (length, header bytes used).
fn ber_len(b: &[u8], pos: usize) -> Result<Option<(usize, usize)>> {
    let Some(&first) = b.get(pos) else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some((first as usize, 1)));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        bail!("unsupported BER length form 0x{first:02x}");
    }
    if b.len() < pos + 1 + n {
        return Ok(None);
    }
    let mut len = 0usize;
    for &x in &b[pos + 1..pos + 1 + n] {
        len = (len << 8) | x as usize;
    }
    Ok(Some((len, 1 + n)))
}

/// Returns (total frame length, message id, protocolOp tag) of the first
/// complete message in `b`, or None if more bytes are needed.
fn peek_frame(b: &[u8]) -> Result<Option<(usize, i32, u8)>> {
    if b.is_empty() {
        return Ok(None);
    }
    if b[0] != 0x30 {
        bail!("response does not start with a SEQUENCE (0x{:02x})", b[0]);
    }
    let Some((len, hl)) = ber_len(b, 1)? else {
        return Ok(None);
    };
    let total = 1 + hl + len;
    if total > MAX_MSG {
        bail!("response message of {total} bytes is too large");
    }
    if b.len() < total {
        return Ok(None);
    }
    // messageID INTEGER
    let p = 1 + hl;
    if b.get(p) != Some(&0x02) {
        bail!("message id is not an INTEGER");
    }
    let Some((idlen, ihl)) = ber_len(b, p + 1)? else {
        bail!("truncated message id");
    };
    let idstart = p + 1 + ihl;
    if idlen == 0 || idlen > 4 || idstart + idlen >= total {
        bail!("bad message id length {idlen}");
    }
    let mut id: i64 = if b[idstart] & 0x80 != 0 { -1 } else { 0 };
    for &x in &b[idstart..idstart + idlen] {
        id = (id << 8) | x as i64;
    }
    let tag = b[idstart + idlen];
    Ok(Some((total, id as i32, tag)))
}

fn code_of(res: &LdapResult) -> i64 {
    res.code.clone() as i64
}

impl Conn {
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Conn> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connect to {addr} timed out"))?
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::with_capacity(4096),
            codec: LdapCodec::new(Some(MAX_MSG), None),
            next_id: 1,
        })
    }

    fn next_msgid(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = if self.next_id >= i32::MAX - 1 {
            1
        } else {
            self.next_id + 1
        };
        id
    }

    /// Sends one request; returns its message id.
    pub async fn send(&mut self, op: LdapOp, ctrl: Vec<LdapControl>) -> Result<i32> {
        let id = self.next_msgid();
        let msg = LdapMsg {
            msgid: id,
            op,
            ctrl,
        };
        self.wbuf.clear();
        self.codec.encode(msg, &mut self.wbuf)?;
        self.stream.write_all(&self.wbuf).await?;
        Ok(id)
    }

    /// Reads the next response frame. With `decode_entries`, search result
    /// entries are decoded too.
    pub async fn read_frame(&mut self, decode_entries: bool) -> Result<Frame> {
        loop {
            if let Some((total, id, tag)) = peek_frame(&self.rbuf)? {
                let mut frame = self.rbuf.split_to(total);
                match tag {
                    0x64 if !decode_entries => return Ok(Frame::Entry(id)),
                    0x73 => return Ok(Frame::Reference),
                    _ => {
                        let msg = self
                            .codec
                            .decode(&mut frame)?
                            .ok_or_else(|| anyhow!("incomplete message after framing"))?;
                        if let LdapOp::SearchResultEntry(e) = msg.op {
                            return Ok(Frame::DecodedEntry(msg.msgid, e));
                        }
                        return Ok(Frame::Msg(Box::new(msg)));
                    }
                }
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(64 * 1024);
            }
            let n = self.stream.read_buf(&mut self.rbuf).await?;
            if n == 0 {
                bail!("connection closed by server");
            }
        }
    }

    /// Reads until the response to `id`; returns (result code, message).
    async fn read_result(&mut self, id: i32) -> Result<(i64, LdapMsg)> {
        loop {
            match self.read_frame(false).await? {
                Frame::Msg(m) if m.msgid == id => {
                    let code = match &m.op {
                        LdapOp::BindResponse(r) => code_of(&r.res),
                        LdapOp::AddResponse(r)
                        | LdapOp::ModifyResponse(r)
                        | LdapOp::DelResponse(r)
                        | LdapOp::ModifyDNResponse(r)
                        | LdapOp::CompareResult(r)
                        | LdapOp::SearchResultDone(r) => code_of(r),
                        LdapOp::ExtendedResponse(r) => code_of(&r.res),
                        other => bail!("unexpected response {other:?}"),
                    };
                    return Ok((code, *m));
                }
                Frame::Msg(m) if m.msgid == 0 => {
                    // unsolicited notification (e.g. notice of disconnection)
                    bail!("unsolicited notification from server: {:?}", m.op);
                }
                _ => continue,
            }
        }
    }

    pub async fn simple_bind(&mut self, dn: &str, pw: &str) -> Result<i64> {
        let id = self
            .send(
                LdapOp::BindRequest(LdapBindRequest {
                    version: 3,
                    dn: dn.to_string(),
                    cred: LdapBindCred::Simple(pw.to_string()),
                }),
                vec![],
            )
            .await?;
        Ok(self.read_result(id).await?.0)
    }

    /// Runs a search, counting entries without decoding them.
    pub async fn search(
        &mut self,
        base: &str,
        scope: LdapSearchScope,
        filter: LdapFilter,
        attrs: &[&str],
        ctrl: Vec<LdapControl>,
    ) -> Result<SearchOutcome> {
        let id = self
            .send(search_op(base, scope, filter, attrs), ctrl)
            .await?;
        let mut out = SearchOutcome::default();
        loop {
            match self.read_frame(false).await? {
                Frame::Entry(mid) if mid == id => out.entries += 1,
                Frame::Msg(m) if m.msgid == id => {
                    if let LdapOp::SearchResultDone(r) = &m.op {
                        out.code = code_of(r);
                        out.ctrls = m.ctrl;
                        return Ok(out);
                    }
                }
                Frame::Msg(m) if m.msgid == 0 => {
                    bail!("unsolicited notification from server: {:?}", m.op)
                }
                _ => {}
            }
        }
    }

    /// Runs a search and returns the decoded entries.
    pub async fn search_entries(
        &mut self,
        base: &str,
        scope: LdapSearchScope,
        filter: LdapFilter,
        attrs: &[&str],
    ) -> Result<(i64, Vec<LdapSearchResultEntry>)> {
        let id = self
            .send(search_op(base, scope, filter, attrs), vec![])
            .await?;
        let mut entries = Vec::new();
        loop {
            match self.read_frame(true).await? {
                Frame::DecodedEntry(mid, e) if mid == id => entries.push(e),
                Frame::Msg(m) if m.msgid == id => {
                    if let LdapOp::SearchResultDone(r) = &m.op {
                        return Ok((code_of(r), entries));
                    }
                }
                Frame::Msg(m) if m.msgid == 0 => {
                    bail!("unsolicited notification from server: {:?}", m.op)
                }
                _ => {}
            }
        }
    }

    pub async fn add(&mut self, dn: String, attrs: Vec<(&str, Vec<String>)>) -> Result<i64> {
        let attributes = attrs
            .into_iter()
            .map(|(a, vs)| LdapPartialAttribute {
                atype: a.to_string(),
                vals: vs.into_iter().map(String::into_bytes).collect(),
            })
            .collect();
        let id = self
            .send(
                LdapOp::AddRequest(LdapAddRequest { dn, attributes }),
                vec![],
            )
            .await?;
        Ok(self.read_result(id).await?.0)
    }

    pub async fn modify_replace(&mut self, dn: String, attr: &str, val: String) -> Result<i64> {
        self.modify_replace_all(dn, vec![(attr, val)]).await
    }

    /// One modify request replacing each attribute with its one value.
    pub async fn modify_replace_all(
        &mut self,
        dn: String,
        changes: Vec<(&str, String)>,
    ) -> Result<i64> {
        let changes = changes
            .into_iter()
            .map(|(attr, val)| LdapModify {
                operation: LdapModifyType::Replace,
                modification: LdapPartialAttribute {
                    atype: attr.to_string(),
                    vals: vec![val.into_bytes()],
                },
            })
            .collect();
        let id = self
            .send(
                LdapOp::ModifyRequest(LdapModifyRequest { dn, changes }),
                vec![],
            )
            .await?;
        Ok(self.read_result(id).await?.0)
    }

    pub async fn delete(&mut self, dn: String) -> Result<i64> {
        let id = self.send(LdapOp::DelRequest(dn), vec![]).await?;
        Ok(self.read_result(id).await?.0)
    }

    /// Sends an unbind and closes (best effort).
    pub async fn unbind(mut self) {
        let _ = self.send(LdapOp::UnbindRequest, vec![]).await;
        let _ = self.stream.shutdown().await;
    }
}

pub fn search_op(base: &str, scope: LdapSearchScope, filter: LdapFilter, attrs: &[&str]) -> LdapOp {
    LdapOp::SearchRequest(LdapSearchRequest {
        base: base.to_string(),
        scope,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter,
        attrs: attrs.iter().map(|s| s.to_string()).collect(),
    })
}

/// Name of an LDAP result code for reports.
pub fn code_name(code: i64) -> String {
    let name = match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        68 => "entryAlreadyExists",
        80 => "other",
        _ => return format!("code{code}"),
    };
    format!("{code}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("ldap://127.0.0.1:1389").unwrap(),
            "127.0.0.1:1389"
        );
        assert_eq!(
            parse_url("ldap://127.0.0.1:1389/").unwrap(),
            "127.0.0.1:1389"
        );
        assert_eq!(parse_url("ldap://localhost").unwrap(), "localhost:389");
        assert!(parse_url("ldaps://x").is_err());
        assert!(parse_url("ldap://").is_err());
    }

    #[test]
    fn framing() {
        // a SearchResultDone(success) for message 2, encoded by the codec
        let mut codec = LdapCodec::default();
        let mut buf = BytesMut::new();
        let msg = LdapMsg::new(
            2,
            LdapOp::SearchResultDone(LdapResult {
                code: ldap3_proto::proto::LdapResultCode::Success,
                matcheddn: String::new(),
                message: String::new(),
                referral: vec![],
            }),
        );
        codec.encode(msg, &mut buf).unwrap();
        let (total, id, tag) = peek_frame(&buf).unwrap().unwrap();
        assert_eq!(total, buf.len());
        assert_eq!(id, 2);
        assert_eq!(tag, 0x65);
        assert!(peek_frame(&buf[..buf.len() - 1]).unwrap().is_none());
        assert!(peek_frame(&[0x04, 0x00]).is_err());
    }
}
