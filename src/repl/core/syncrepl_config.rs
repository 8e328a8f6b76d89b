//! OpenLDAP's `olcSyncrepl` / `syncrepl` value (slapd-config(5),
//! slapd.conf(5)) parsed into what an RFC 4533 consumer needs. Pure: the
//! text in, a `SyncreplConfig` (or an error naming the key) out.
//!
//! The value is a list of `key=value` words; a value may be double-quoted
//! (with `\"` and `\\` inside) to hold spaces. Keys OpenLDAP knows that
//! ferrodir does not use are accepted and reported in `ignored`, so an
//! OpenLDAP configuration can be pasted as it is. One ferrodir extension:
//! `tls_pin_sha256=<hex>` accepts exactly the provider certificate whose
//! DER encoding has that SHA-256 digest.

/// refreshOnly polls; refreshAndPersist keeps the search open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    RefreshOnly,
    RefreshAndPersist,
}

impl SyncMode {
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::RefreshOnly => "refreshOnly",
            SyncMode::RefreshAndPersist => "refreshAndPersist",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncScope {
    Base,
    One,
    Sub,
}

/// `starttls=`: no, yes (fall back to clear text when refused), critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    No,
    Yes,
    Critical,
}

/// `tls_reqcert=`: what is checked of the provider's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqCert {
    Never,
    Allow,
    Try,
    Demand,
}

/// One `retry=` pair: wait `interval`, `count` times (None: forever, `+`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryStep {
    /// Seconds.
    pub interval: u64,
    pub count: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncreplConfig {
    pub rid: u16,
    /// The `provider=` URL as given.
    pub provider: String,
    pub ldaps: bool,
    pub host: String,
    pub port: u16,
    /// Simple bind with `binddn`/`credentials`; an empty binddn is anonymous.
    pub binddn: String,
    pub credentials: String,
    pub searchbase: String,
    pub filter: String,
    pub scope: SyncScope,
    pub attrs: Vec<String>,
    pub exattrs: Vec<String>,
    pub mode: SyncMode,
    /// Seconds between two polls of refreshOnly.
    pub interval: u64,
    pub retry: Vec<RetryStep>,
    pub starttls: StartTls,
    pub tls_cacert: Option<String>,
    pub tls_reqcert: ReqCert,
    pub tls_pin_sha256: Option<[u8; 32]>,
    /// Seconds to wait for an answer (`timeout=`).
    pub timeout: Option<u64>,
    /// Seconds to wait for the TCP connection (`network-timeout=`).
    pub network_timeout: Option<u64>,
    /// Keys accepted but not used, for a warning.
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("olcSyncrepl: {key}: {reason}")]
pub struct SyncreplError {
    pub key: String,
    pub reason: String,
}

fn err(key: &str, reason: impl Into<String>) -> SyncreplError {
    SyncreplError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Keys of OpenLDAP's syncrepl that ferrodir accepts without using.
const IGNORED: &[&str] = &[
    "schemachecking",
    "sizelimit",
    "timelimit",
    "syncdata",
    "logbase",
    "logfilter",
    "suffixmassage",
    "lazycommit",
    "keepalive",
    "tls_cert",
    "tls_key",
    "tls_cacertdir",
    "tls_cipher_suite",
    "tls_protocol_min",
    "tls_crlcheck",
    "tls_ecname",
    "tls_reqsan",
    "saslmech",
    "secprops",
    "realm",
    "authcid",
    "authzid",
    "strictrefresh",
    "manageDSAit",
    "chaining",
];

/// One word of the value: key, value, and where it starts and ends in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub key: String,
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// Splits the value into `key=value` words (quotes removed from values).
pub fn words(text: &str) -> Result<Vec<Word>, SyncreplError> {
    let bytes: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let n = bytes.len();
    let byte_pos = |ci: usize| -> usize { text.char_indices().nth(ci).map_or(text.len(), |p| p.0) };
    while i < n {
        while i < n && bytes.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        let mut key = String::new();
        while let Some(&c) = bytes.get(i) {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            i += 1;
        }
        if bytes.get(i) != Some(&'=') {
            return Err(err(&key, "expected key=value"));
        }
        i += 1;
        let mut value = String::new();
        if bytes.get(i) == Some(&'"') {
            i += 1;
            let mut closed = false;
            while let Some(&c) = bytes.get(i) {
                i += 1;
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        if let Some(&next) = bytes.get(i) {
                            value.push(next);
                            i += 1;
                        }
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(err(&key, "unterminated quoted value"));
            }
            if bytes.get(i).is_some_and(|c| !c.is_whitespace()) {
                return Err(err(&key, "text after the closing quote"));
            }
        } else {
            while let Some(&c) = bytes.get(i) {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                i += 1;
            }
        }
        out.push(Word {
            key,
            value,
            start: byte_pos(start),
            end: byte_pos(i),
        });
    }
    Ok(out)
}

/// The value with the `credentials=` word's value rewritten by `f` (to
/// seal it at rest or mask it); the other words are kept byte for byte.
pub fn map_credentials(
    text: &str,
    f: impl Fn(&str) -> Result<String, String>,
) -> Result<String, SyncreplError> {
    let ws = words(text)?;
    let Some(w) = ws
        .iter()
        .find(|w| w.key.eq_ignore_ascii_case("credentials"))
    else {
        return Ok(text.to_string());
    };
    let replaced = f(&w.value).map_err(|e| err("credentials", e))?;
    let head = text.get(..w.start).unwrap_or_default();
    let tail = text.get(w.end..).unwrap_or_default();
    Ok(format!("{head}credentials={}{tail}", quote(&replaced)))
}

/// Quotes a value when it holds spaces or quotes.
pub fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        return v.to_string();
    }
    let mut s = String::from("\"");
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// `dd:hh:mm:ss` (OpenLDAP's interval), or a number of seconds.
fn parse_interval(v: &str) -> Result<u64, SyncreplError> {
    let bad = || err("interval", format!("'{v}' is not dd:hh:mm:ss"));
    let parts: Vec<&str> = v.split(':').collect();
    let nums: Vec<u64> = parts
        .iter()
        .map(|p| p.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let secs = match nums.as_slice() {
        [s] => *s,
        [d, h, m, s] if *h < 24 && *m < 60 && *s < 60 => d * 86400 + h * 3600 + m * 60 + s,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(err("interval", "must be at least one second"));
    }
    Ok(secs)
}

/// `retry="5 10 300 +"`: pairs of seconds and counts (`+`: forever).
fn parse_retry(v: &str) -> Result<Vec<RetryStep>, SyncreplError> {
    let items: Vec<&str> = v.split_whitespace().collect();
    if items.is_empty() || !items.len().is_multiple_of(2) {
        return Err(err(
            "retry",
            format!("'{v}' must be pairs of seconds and counts, e.g. \"60 10 300 +\""),
        ));
    }
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let [secs, count] = pair else {
            return Err(err("retry", "odd number of items"));
        };
        let interval = secs
            .parse::<u64>()
            .map_err(|_| err("retry", format!("'{secs}' is not a number of seconds")))?;
        let count = if *count == "+" {
            None
        } else {
            Some(
                count
                    .parse::<u32>()
                    .map_err(|_| err("retry", format!("'{count}' is not a count or '+'")))?,
            )
        };
        out.push(RetryStep { interval, count });
    }
    Ok(out)
}

fn parse_url(v: &str) -> Result<(bool, String, u16), SyncreplError> {
    let (ldaps, rest) = if let Some(r) = v.strip_prefix("ldap://") {
        (false, r)
    } else if let Some(r) = v.strip_prefix("ldaps://") {
        (true, r)
    } else {
        return Err(err(
            "provider",
            format!("'{v}' is not an ldap:// or ldaps:// URL"),
        ));
    };
    let hostport = rest.split('/').next().unwrap_or_default();
    let default = if ldaps { 636 } else { 389 };
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| err("provider", "unclosed '[' in the host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse::<u16>().ok(),
            None if after.is_empty() => Some(default),
            None => None,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse::<u16>().ok()),
            None => (hostport.to_string(), Some(default)),
        }
    };
    let port = port
        .filter(|p| *p > 0)
        .ok_or_else(|| err("provider", format!("'{v}' has a bad port")))?;
    if host.is_empty() {
        return Err(err("provider", format!("'{v}' names no host")));
    }
    Ok((ldaps, host, port))
}

fn parse_hex32(v: &str) -> Result<[u8; 32], SyncreplError> {
    let clean: String = v.chars().filter(|c| *c != ':').collect();
    if clean.len() != 64 {
        return Err(err(
            "tls_pin_sha256",
            "must be 64 hex digits (the SHA-256 of the DER certificate)",
        ));
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        let pair = clean
            .get(i * 2..i * 2 + 2)
            .ok_or_else(|| err("tls_pin_sha256", "too short"))?;
        *slot = u8::from_str_radix(pair, 16)
            .map_err(|_| err("tls_pin_sha256", format!("'{pair}' is not hex")))?;
    }
    Ok(out)
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn number(key: &str, v: &str) -> Result<u64, SyncreplError> {
    v.parse::<u64>()
        .map_err(|_| err(key, format!("'{v}' is not a number")))
}

/// Parses one olcSyncrepl value.
pub fn parse(text: &str) -> Result<SyncreplConfig, SyncreplError> {
    // OpenLDAP prefixes values with {N} in cn=config; it means nothing here.
    let text = match text.trim_start().strip_prefix('{') {
        Some(r) => r
            .split_once('}')
            .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
            .map_or(text, |(_, rest)| rest),
        None => text,
    };
    let mut rid = None;
    let mut provider = None;
    let mut binddn = String::new();
    let mut credentials = String::new();
    let mut searchbase = None;
    let mut filter = "(objectClass=*)".to_string();
    let mut scope = SyncScope::Sub;
    let mut attrs = vec!["*".to_string(), "+".to_string()];
    let mut exattrs = Vec::new();
    let mut mode = SyncMode::RefreshOnly;
    let mut interval = 86400;
    let mut retry = Vec::new();
    let mut starttls = StartTls::No;
    let mut tls_cacert = None;
    let mut tls_reqcert = ReqCert::Demand;
    let mut tls_pin_sha256 = None;
    let mut timeout = None;
    let mut network_timeout = None;
    let mut ignored = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for w in words(text)? {
        let key = w.key.to_ascii_lowercase();
        if seen.contains(&key) {
            return Err(err(&w.key, "given twice"));
        }
        seen.push(key.clone());
        let v = w.value.as_str();
        match key.as_str() {
            "rid" => {
                let n: u16 = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=999).contains(n))
                    .ok_or_else(|| err("rid", format!("'{v}' is not a number from 1 to 999")))?;
                rid = Some(n);
            }
            "provider" => provider = Some(parse_url(v)?),
            "bindmethod" => {
                if !v.eq_ignore_ascii_case("simple") {
                    return Err(err(
                        "bindmethod",
                        format!("'{v}' is not supported: use bindmethod=simple"),
                    ));
                }
            }
            "binddn" => binddn = v.to_string(),
            "credentials" => credentials = v.to_string(),
            "searchbase" => {
                if v.is_empty() {
                    return Err(err("searchbase", "must not be empty"));
                }
                searchbase = Some(v.to_string());
            }
            "filter" => {
                let f = v.trim();
                if f.is_empty() {
                    return Err(err("filter", "must not be empty"));
                }
                let depth = f.chars().try_fold(0i32, |d, c| {
                    let d = match c {
                        '(' => d + 1,
                        ')' => d - 1,
                        _ => d,
                    };
                    (d >= 0).then_some(d)
                });
                if depth != Some(0) {
                    return Err(err("filter", format!("'{f}' has unbalanced parentheses")));
                }
                filter = if f.starts_with('(') {
                    f.to_string()
                } else {
                    format!("({f})")
                };
            }
            "scope" => {
                scope = match v.to_ascii_lowercase().as_str() {
                    "sub" | "subtree" => SyncScope::Sub,
                    "one" | "onelevel" => SyncScope::One,
                    "base" => SyncScope::Base,
                    _ => return Err(err("scope", format!("'{v}' is not sub, one or base"))),
                }
            }
            "attrs" => {
                attrs = list(v);
                if attrs.is_empty() {
                    return Err(err("attrs", "names no attribute"));
                }
            }
            "exattrs" => exattrs = list(v),
            "type" => {
                mode = match v.to_ascii_lowercase().as_str() {
                    "refreshonly" => SyncMode::RefreshOnly,
                    "refreshandpersist" => SyncMode::RefreshAndPersist,
                    _ => {
                        return Err(err(
                            "type",
                            format!("'{v}' is not refreshOnly or refreshAndPersist"),
                        ))
                    }
                }
            }
            "interval" => interval = parse_interval(v)?,
            "retry" => retry = parse_retry(v)?,
            "starttls" => {
                starttls = match v.to_ascii_lowercase().as_str() {
                    "yes" | "true" => StartTls::Yes,
                    "critical" => StartTls::Critical,
                    "no" | "false" => StartTls::No,
                    _ => return Err(err("starttls", format!("'{v}' is not yes or critical"))),
                }
            }
            "tls_cacert" => tls_cacert = Some(v.to_string()),
            "tls_reqcert" => {
                tls_reqcert = match v.to_ascii_lowercase().as_str() {
                    "never" => ReqCert::Never,
                    "allow" => ReqCert::Allow,
                    "try" => ReqCert::Try,
                    "demand" | "hard" => ReqCert::Demand,
                    _ => {
                        return Err(err(
                            "tls_reqcert",
                            format!("'{v}' is not never, allow, try or demand"),
                        ))
                    }
                }
            }
            "tls_pin_sha256" => tls_pin_sha256 = Some(parse_hex32(v)?),
            "timeout" => timeout = Some(number("timeout", v)?),
            "network-timeout" => network_timeout = Some(number("network-timeout", v)?),
            other if IGNORED.iter().any(|k| k.eq_ignore_ascii_case(other)) => {
                ignored.push(w.key.clone());
            }
            _ => ignored.push(w.key.clone()),
        }
    }
    let rid = rid.ok_or_else(|| err("rid", "missing"))?;
    let (ldaps, host, port) = provider.ok_or_else(|| err("provider", "missing"))?;
    let searchbase = searchbase.ok_or_else(|| err("searchbase", "missing"))?;
    if ldaps && starttls != StartTls::No {
        return Err(err("starttls", "cannot be used with an ldaps:// provider"));
    }
    if credentials.is_empty() != binddn.is_empty() {
        return Err(err(
            if binddn.is_empty() {
                "binddn"
            } else {
                "credentials"
            },
            "binddn and credentials go together (both empty: anonymous)",
        ));
    }
    let provider_text = words(text)?
        .into_iter()
        .find(|w| w.key.eq_ignore_ascii_case("provider"))
        .map(|w| w.value)
        .unwrap_or_default();
    Ok(SyncreplConfig {
        rid,
        provider: provider_text,
        ldaps,
        host,
        port,
        binddn,
        credentials,
        searchbase,
        filter,
        scope,
        attrs,
        exattrs,
        mode,
        interval,
        retry,
        starttls,
        tls_cacert,
        tls_reqcert,
        tls_pin_sha256,
        timeout,
        network_timeout,
        ignored,
    })
}

impl SyncreplConfig {
    /// Seconds to wait before retry number `attempt` (0-based) after a failure; None:
    /// the retry schedule is used up (stop until the entry changes). With
    /// no `retry=`, every 60 s forever.
    pub fn retry_wait(&self, attempt: u32) -> Option<u64> {
        if self.retry.is_empty() {
            return Some(60);
        }
        let mut left = attempt;
        for step in &self.retry {
            match step.count {
                None => return Some(step.interval),
                Some(c) if left < c => return Some(step.interval),
                Some(c) => left -= c,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slapd_conf_example() {
        // slapd.conf(5), "syncrepl" example.
        let c = parse(
            r#"rid=123 provider=ldap://provider.example.com:389 type=refreshOnly interval=01:00:00:00 searchbase="dc=example,dc=com" filter="(objectClass=organizationalPerson)" scope=sub attrs="cn,sn,ou,telephoneNumber,title,l" schemachecking=off bindmethod=simple binddn="cn=syncuser,dc=example,dc=com" credentials=secret"#,
        )
        .unwrap();
        assert_eq!(c.rid, 123);
        assert_eq!(c.host, "provider.example.com");
        assert_eq!(c.port, 389);
        assert!(!c.ldaps);
        assert_eq!(c.mode, SyncMode::RefreshOnly);
        assert_eq!(c.interval, 86400);
        assert_eq!(c.searchbase, "dc=example,dc=com");
        assert_eq!(c.filter, "(objectClass=organizationalPerson)");
        assert_eq!(c.attrs, ["cn", "sn", "ou", "telephoneNumber", "title", "l"]);
        assert_eq!(c.binddn, "cn=syncuser,dc=example,dc=com");
        assert_eq!(c.credentials, "secret");
        assert_eq!(c.ignored, ["schemachecking"]);
    }

    #[test]
    fn slapd_config_example_with_index_prefix() {
        // slapd-config(5) style: {0} prefix, persist, retry, StartTLS.
        let c = parse(
            r#"{0}rid=001 provider=ldap://10.0.0.1 bindmethod=simple binddn="cn=replicator,dc=example,dc=com" credentials="a b\"c" searchbase="dc=example,dc=com" type=refreshAndPersist retry="5 5 300 +" starttls=critical tls_cacert=/etc/ssl/ca.pem tls_reqcert=demand timeout=3 network-timeout=5"#,
        )
        .unwrap();
        assert_eq!(c.rid, 1);
        assert_eq!(c.port, 389);
        assert_eq!(c.credentials, "a b\"c");
        assert_eq!(c.mode, SyncMode::RefreshAndPersist);
        assert_eq!(c.starttls, StartTls::Critical);
        assert_eq!(c.tls_cacert.as_deref(), Some("/etc/ssl/ca.pem"));
        assert_eq!(c.timeout, Some(3));
        assert_eq!(c.network_timeout, Some(5));
        assert_eq!(c.retry_wait(0), Some(5));
        assert_eq!(c.retry_wait(4), Some(5));
        assert_eq!(c.retry_wait(5), Some(300));
        assert_eq!(c.retry_wait(500), Some(300));
    }

    #[test]
    fn reference_multiprovider_example() {
        let c = parse(
            r#"rid=001 provider=ldap://127.0.0.1:13390 bindmethod=simple binddn="cn=admin,dc=example,dc=com" credentials=secret searchbase="dc=example,dc=com" type=refreshAndPersist retry="1 +" timeout=3"#,
        )
        .unwrap();
        assert_eq!(c.port, 13390);
        assert_eq!(c.retry_wait(1000), Some(1));
        assert_eq!(c.attrs, ["*", "+"]);
        assert_eq!(c.scope, SyncScope::Sub);
    }

    #[test]
    fn finite_retry_ends() {
        let c = parse(r#"rid=1 provider=ldaps://h searchbase=o=x retry="2 2""#).unwrap();
        assert!(c.ldaps);
        assert_eq!(c.port, 636);
        assert_eq!(c.retry_wait(1), Some(2));
        assert_eq!(c.retry_wait(2), None);
    }

    #[test]
    fn malformed_values_name_the_key() {
        for (text, key) in [
            ("provider=ldap://h searchbase=o=x", "rid"),
            ("rid=1 searchbase=o=x", "provider"),
            ("rid=1 provider=ldap://h", "searchbase"),
            ("rid=abc provider=ldap://h searchbase=o=x", "rid"),
            ("rid=1 provider=http://h searchbase=o=x", "provider"),
            ("rid=1 provider=ldap://h:99999 searchbase=o=x", "provider"),
            ("rid=1 provider=ldap://h searchbase=o=x type=push", "type"),
            (
                "rid=1 provider=ldap://h searchbase=o=x interval=1:2",
                "interval",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x interval=00:25:00:00",
                "interval",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x retry=\"5\"",
                "retry",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x retry=\"x +\"",
                "retry",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x scope=children",
                "scope",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x bindmethod=sasl",
                "bindmethod",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x starttls=maybe",
                "starttls",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x tls_reqcert=x",
                "tls_reqcert",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x tls_pin_sha256=abc",
                "tls_pin_sha256",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x timeout=x",
                "timeout",
            ),
            ("rid=1 provider=ldap://h searchbase=\"o=x", "searchbase"),
            (
                "rid=1 provider=ldap://h searchbase=o=x filter=(a=b",
                "filter",
            ),
            (
                "rid=1 provider=ldap://h searchbase=o=x binddn=cn=a",
                "credentials",
            ),
            ("rid=1 rid=2 provider=ldap://h searchbase=o=x", "rid"),
            (
                "rid=1 provider=ldaps://h searchbase=o=x starttls=yes",
                "starttls",
            ),
            ("rid=1 provider=ldap://h searchbase=o=x junk", "junk"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn unknown_keys_are_ignored_and_reported() {
        let c =
            parse("rid=1 provider=ldap://h searchbase=o=x schemachecking=on frobnicate=1").unwrap();
        assert_eq!(c.ignored, ["schemachecking", "frobnicate"]);
    }

    #[test]
    fn pin_and_lists() {
        let hex = "00".repeat(31) + "ff";
        let c = parse(&format!(
            "rid=1 provider=ldap://[::1]:1389 searchbase=o=x tls_pin_sha256={hex} exattrs=a,b filter=uid=x"
        ))
        .unwrap();
        assert_eq!(c.host, "::1");
        assert_eq!(c.port, 1389);
        assert_eq!(c.tls_pin_sha256.unwrap()[31], 0xff);
        assert_eq!(c.exattrs, ["a", "b"]);
        assert_eq!(c.filter, "(uid=x)");
    }

    #[test]
    fn credentials_are_rewritten_in_place() {
        let text = r#"rid=1 provider=ldap://h binddn="cn=a b" credentials="s p" searchbase=o=x"#;
        let out = map_credentials(text, |v| Ok(format!("<{v}>"))).unwrap();
        assert_eq!(
            out,
            r#"rid=1 provider=ldap://h binddn="cn=a b" credentials="<s p>" searchbase=o=x"#
        );
        assert_eq!(parse(&out).unwrap().credentials, "<s p>");
        let none = "rid=1 provider=ldap://h searchbase=o=x";
        assert_eq!(map_credentials(none, |_| Ok("x".into())).unwrap(), none);
    }
}
