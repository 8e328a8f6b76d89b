//! Paged results (RFC 2696) under the requester's size limit.
//!
//! RFC 2696 §3: "the sizeLimit ... applies to the total result set", so a
//! paged search returns no more entries in all its pages together than the
//! same search without paging would: the client's sizeLimit and, for anyone
//! but the root DN, the server's `size_limit`. Pages are cut to what is left
//! of that limit, and the page that reaches it while entries remain ends
//! with sizeLimitExceeded (4).
//!
//! The cookie carries the position and the count returned so far, tagged
//! with a per-process keyed hash of both and of the search and requester,
//! so a client cannot reset the count or reuse another search's cookie.

use super::result;
use crate::directory::Identity;
use ldap3_proto::proto::{LdapResult, LdapResultCode, LdapSearchRequest};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;

/// A paged search in progress: what this page may return and how to tag
/// the next cookie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    print: u64,
    /// Entries returned by the previous pages.
    returned: usize,
    /// Total entries the search may return (0 = unlimited).
    limit: usize,
}

/// How a page ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PageEnd {
    /// More pages may follow with this cookie (empty: the last page).
    Cookie(Vec<u8>),
    /// The size limit was reached with entries left.
    SizeLimit,
}

/// What a paged request asks for.
#[derive(Debug)]
pub(crate) enum PageStart {
    /// Run a page of `size` entries after candidate `after`.
    Run {
        paging: Paging,
        size: usize,
        after: u64,
    },
    /// A zero page size abandons the paged search (RFC 2696 §3).
    Abandon,
    /// The limit is already used up.
    LimitReached,
}

const COOKIE_LEN: usize = 24;

fn key() -> &'static RandomState {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new)
}

/// Ties a cookie to the search and the requester that issued it.
fn fingerprint(req: &LdapSearchRequest, who: &Identity) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.base.to_ascii_lowercase().hash(&mut h);
    (req.scope.clone() as i64).hash(&mut h);
    format!("{:?}", req.filter).hash(&mut h);
    req.attrs.hash(&mut h);
    who.norm.hash(&mut h);
    h.finish()
}

fn tag(print: u64, after: u64, returned: u64) -> u64 {
    key().hash_one((print, after, returned))
}

/// The total a search by `who` may return: the client's sizeLimit, capped
/// by the server's for everyone but the root DN (0 = unlimited).
pub(crate) fn total_limit(who: &Identity, client: i32, server: usize) -> usize {
    let client = usize::try_from(client).unwrap_or(0);
    if who.root || server == 0 {
        return client;
    }
    if client == 0 {
        server
    } else {
        client.min(server)
    }
}

/// Reads the paged-results control of a request.
pub(crate) fn start(
    req: &LdapSearchRequest,
    who: &Identity,
    size: i64,
    cookie: &[u8],
    limit: usize,
) -> Result<PageStart, LdapResult> {
    let print = fingerprint(req, who);
    let (after, returned) = if cookie.is_empty() {
        (0, 0)
    } else {
        parse_cookie(print, cookie).ok_or_else(|| {
            result::result(
                LdapResultCode::ProtocolError,
                "paged results cookie does not belong to this search",
            )
        })?
    };
    if size <= 0 {
        return Ok(PageStart::Abandon);
    }
    let returned = usize::try_from(returned).unwrap_or(usize::MAX);
    let mut size = usize::try_from(size).unwrap_or(usize::MAX);
    if limit > 0 {
        let left = limit.saturating_sub(returned);
        if left == 0 {
            return Ok(PageStart::LimitReached);
        }
        size = size.min(left);
    }
    Ok(PageStart::Run {
        paging: Paging {
            print,
            returned,
            limit,
        },
        size,
        after,
    })
}

fn parse_cookie(print: u64, cookie: &[u8]) -> Option<(u64, u64)> {
    if cookie.len() != COOKIE_LEN {
        return None;
    }
    let word = |i: usize| -> Option<u64> {
        Some(u64::from_be_bytes(cookie.get(i..i + 8)?.try_into().ok()?))
    };
    let (after, returned, t) = (word(0)?, word(8)?, word(16)?);
    (t == tag(print, after, returned)).then_some((after, returned))
}

impl Paging {
    /// How a page that returned `entries` ends; `next` is where the next
    /// page would continue (None: nothing left).
    pub(crate) fn end(&self, entries: usize, next: Option<u64>) -> PageEnd {
        let Some(after) = next else {
            return PageEnd::Cookie(Vec::new());
        };
        let total = self.returned.saturating_add(entries);
        if self.limit > 0 && total >= self.limit {
            return PageEnd::SizeLimit;
        }
        let total = total as u64;
        let mut c = Vec::with_capacity(COOKIE_LEN);
        c.extend_from_slice(&after.to_be_bytes());
        c.extend_from_slice(&total.to_be_bytes());
        c.extend_from_slice(&tag(self.print, after, total).to_be_bytes());
        PageEnd::Cookie(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::proto::{LdapFilter, LdapSearchScope};

    fn request() -> LdapSearchRequest {
        LdapSearchRequest {
            base: "dc=example,dc=com".into(),
            scope: LdapSearchScope::Subtree,
            aliases: ldap3_proto::proto::LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter: LdapFilter::Present("objectClass".into()),
            attrs: Vec::new(),
        }
    }

    fn run(start: PageStart) -> (Paging, usize, u64) {
        match start {
            PageStart::Run {
                paging,
                size,
                after,
            } => (paging, size, after),
            other => panic!("not a page: {other:?}"),
        }
    }

    #[test]
    fn pages_stop_at_the_total_limit() {
        let (req, who) = (request(), Identity::anonymous());
        let (p, size, after) = run(start(&req, &who, i64::from(i32::MAX), &[], 5).unwrap());
        assert_eq!((size, after), (5, 0));
        assert_eq!(p.end(5, Some(9)), PageEnd::SizeLimit);
        assert_eq!(p.end(3, None), PageEnd::Cookie(Vec::new()));

        let (p, size, _) = run(start(&req, &who, 3, &[], 5).unwrap());
        assert_eq!(size, 3);
        let PageEnd::Cookie(c) = p.end(3, Some(42)) else {
            panic!("expected a cookie")
        };
        let (p, size, after) = run(start(&req, &who, 3, &c, 5).unwrap());
        assert_eq!((size, after), (2, 42));
        assert_eq!(p.end(2, Some(50)), PageEnd::SizeLimit);
    }

    #[test]
    fn forged_or_foreign_cookies_are_refused() {
        let (req, who) = (request(), Identity::anonymous());
        let (p, _, _) = run(start(&req, &who, 3, &[], 5).unwrap());
        let PageEnd::Cookie(mut c) = p.end(3, Some(42)) else {
            panic!("expected a cookie")
        };
        let mut other = request();
        other.base = "ou=people,dc=example,dc=com".into();
        assert!(start(&other, &who, 3, &c, 5).is_err());
        let root = Identity {
            root: true,
            norm: "cn=directory manager".into(),
            ..Identity::default()
        };
        assert!(start(&req, &root, 3, &c, 5).is_err());
        // Resetting the count returned so far breaks the tag.
        c[15] = 0;
        assert!(start(&req, &who, 3, &c, 5).is_err());
        assert!(start(&req, &who, 3, b"short", 5).is_err());
    }

    #[test]
    fn limits_by_identity() {
        let anon = Identity::anonymous();
        let root = Identity {
            root: true,
            ..Identity::default()
        };
        assert_eq!(total_limit(&anon, 0, 500), 500);
        assert_eq!(total_limit(&anon, 10, 500), 10);
        assert_eq!(total_limit(&anon, 1000, 500), 500);
        assert_eq!(total_limit(&anon, 0, 0), 0);
        assert_eq!(total_limit(&root, 0, 500), 0);
        assert_eq!(total_limit(&root, 7, 500), 7);
    }
}
