//! Search (RFC 4511 §4.5) with size/time limits and paged results (RFC 2696).

use super::controls::RequestControls;
use super::{msg, parse_dn, result, rootdse, Outcome, Shared, Sink};
use crate::directory::{Identity, Scope, SearchEnd, SearchEntry, SearchRequest};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapFilter, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest,
    LdapSearchResultEntry, LdapSearchScope,
};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn filter_depth(f: &LdapFilter) -> usize {
    match f {
        LdapFilter::And(l) | LdapFilter::Or(l) => 1 + l.iter().map(filter_depth).max().unwrap_or(0),
        LdapFilter::Not(inner) => 1 + filter_depth(inner),
        _ => 1,
    }
}

/// Ties a paged-results cookie to the search that issued it.
fn fingerprint(req: &LdapSearchRequest) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.base.to_ascii_lowercase().hash(&mut h);
    (req.scope.clone() as i64).hash(&mut h);
    format!("{:?}", req.filter).hash(&mut h);
    req.attrs.hash(&mut h);
    h.finish()
}

fn entry_msg(msgid: i32, e: SearchEntry) -> ldap3_proto::proto::LdapMsg {
    msg(
        msgid,
        LdapOp::SearchResultEntry(LdapSearchResultEntry {
            dn: e.dn,
            attributes: e
                .attrs
                .into_iter()
                .map(|(atype, vals)| LdapPartialAttribute { atype, vals })
                .collect(),
        }),
    )
}

async fn done(
    sink: &Sink,
    msgid: i32,
    r: LdapResult,
    ctrl: Vec<LdapControl>,
    entries: usize,
) -> Outcome {
    let outcome = Outcome {
        code: r.code.clone() as i32,
        entries,
    };
    let mut m = msg(msgid, LdapOp::SearchResultDone(r));
    m.ctrl = ctrl;
    let _ = sink.send(m).await;
    outcome
}

pub async fn run(
    shared: Arc<Shared>,
    who: Identity,
    msgid: i32,
    req: LdapSearchRequest,
    ctrls: RequestControls,
    sink: Sink,
    cancelled: Arc<AtomicBool>,
) -> Outcome {
    let base = match parse_dn(&req.base) {
        Ok(dn) => dn,
        Err(r) => return done(&sink, msgid, r, Vec::new(), 0).await,
    };
    let scope = match req.scope {
        LdapSearchScope::Base => Scope::Base,
        LdapSearchScope::OneLevel => Scope::One,
        LdapSearchScope::Subtree => Scope::Sub,
        LdapSearchScope::Children => {
            let r = result::result(
                LdapResultCode::UnwillingToPerform,
                "the children scope is not supported",
            );
            return done(&sink, msgid, r, Vec::new(), 0).await;
        }
    };
    if req.sizelimit < 0 || req.timelimit < 0 {
        let r = result::result(LdapResultCode::ProtocolError, "negative size or time limit");
        return done(&sink, msgid, r, Vec::new(), 0).await;
    }
    if filter_depth(&req.filter) > shared.max_filter_depth {
        let r = result::result(
            LdapResultCode::UnwillingToPerform,
            format!("filter nesting is deeper than {}", shared.max_filter_depth),
        );
        return done(&sink, msgid, r, Vec::new(), 0).await;
    }

    // Synthetic entries: the root DSE and the subschema subentry.
    let synthetic = if base.is_root() && scope == Scope::Base {
        Some(("", rootdse::root_dse(&shared, false)))
    } else if rootdse::is_subschema_dn(&base) {
        Some((
            "cn=schema",
            if scope == Scope::One {
                Vec::new()
            } else {
                rootdse::subschema(&shared)
            },
        ))
    } else {
        None
    };
    if let Some((dn, attrs)) = synthetic {
        let mut n = 0;
        if !attrs.is_empty() && rootdse::matches(&shared, dn, &attrs, &req.filter) {
            let attributes = rootdse::select(attrs, &req.attrs, req.typesonly);
            let _ = sink
                .send(msg(
                    msgid,
                    LdapOp::SearchResultEntry(LdapSearchResultEntry {
                        dn: dn.to_string(),
                        attributes,
                    }),
                ))
                .await;
            n = 1;
        }
        return done(&sink, msgid, result::success(), Vec::new(), n).await;
    }

    let print = fingerprint(&req);
    let mut page = None;
    if let Some((size, cookie)) = &ctrls.paged {
        let after = if cookie.is_empty() {
            0
        } else {
            let ok = cookie.len() == 16 && cookie[8..16] == print.to_be_bytes();
            if !ok {
                let r = result::result(
                    LdapResultCode::ProtocolError,
                    "paged results cookie does not belong to this search",
                );
                return done(&sink, msgid, r, Vec::new(), 0).await;
            }
            u64::from_be_bytes(cookie[0..8].try_into().unwrap_or([0; 8]))
        };
        if *size <= 0 {
            // A zero page size abandons the paged search (RFC 2696 §3).
            let ctrl = vec![LdapControl::SimplePagedResults {
                size: 0,
                cookie: Vec::new(),
            }];
            return done(&sink, msgid, result::success(), ctrl, 0).await;
        }
        page = Some((*size as usize, after));
    }

    let dir = shared.dir.clone();
    let entry_sink = sink.clone();
    let cancel = cancelled.clone();
    let searched = tokio::task::spawn_blocking(move || {
        let request = SearchRequest {
            base,
            scope,
            filter: &req.filter,
            attrs: &req.attrs,
            types_only: req.typesonly,
            size_limit: req.sizelimit as usize,
            time_limit: req.timelimit as u64,
            page,
        };
        let mut emit = |e: SearchEntry| {
            // A closed channel means the client left; the cancel check below stops the scan.
            if entry_sink.blocking_send(entry_msg(msgid, e)).is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
        };
        let is_cancelled = || cancel.load(Ordering::Relaxed);
        dir.search(&who, &request, &is_cancelled, &mut emit)
    })
    .await;
    match searched {
        Ok(Ok(SearchEnd::Done { entries })) => {
            done(&sink, msgid, result::success(), Vec::new(), entries).await
        }
        Ok(Ok(SearchEnd::SizeLimit { entries })) => {
            let r = result::result(LdapResultCode::SizeLimitExceeded, "size limit exceeded");
            done(&sink, msgid, r, Vec::new(), entries).await
        }
        Ok(Ok(SearchEnd::TimeLimit { entries })) => {
            let r = result::result(LdapResultCode::TimeLimitExceeded, "time limit exceeded");
            done(&sink, msgid, r, Vec::new(), entries).await
        }
        Ok(Ok(SearchEnd::Page { entries, next })) => {
            let cookie = match next {
                Some(after) => {
                    let mut c = after.to_be_bytes().to_vec();
                    c.extend_from_slice(&print.to_be_bytes());
                    c
                }
                None => Vec::new(),
            };
            let ctrl = vec![LdapControl::SimplePagedResults { size: 0, cookie }];
            done(&sink, msgid, result::success(), ctrl, entries).await
        }
        // An abandoned operation gets no response (RFC 4511 §4.11).
        Ok(Ok(SearchEnd::Abandoned)) => Outcome {
            code: -1,
            entries: 0,
        },
        Ok(Err(e)) => done(&sink, msgid, result::from_error(&e), Vec::new(), 0).await,
        Err(e) => {
            let r = result::result(LdapResultCode::Other, format!("search task failed: {e}"));
            done(&sink, msgid, r, Vec::new(), 0).await
        }
    }
}
