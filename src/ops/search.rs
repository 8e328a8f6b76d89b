//! Search (RFC 4511 §4.5) with size/time limits and paged results (RFC 2696).

use super::controls::RequestControls;
use super::paging::{self, PageEnd, PageStart, Paging};
use super::{msg, parse_dn, result, rootdse, search_ber, sort, Outcome, Response, Shared, Sink};
use crate::directory::{DirResult, Identity, Scope, SearchEnd, SearchRequest, SelectedEntry};
use bytes::BytesMut;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapFilter, LdapMsg, LdapOp, LdapResult, LdapResultCode, LdapSearchRequest,
    LdapSearchResultEntry, LdapSearchScope,
};
use ldap3_proto::LdapCodec;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::codec::Encoder;

/// Terms of a filter (each AND/OR/NOT and each assertion), counted
/// without recursion and stopping once past `limit`.
fn filter_terms_exceed(f: &LdapFilter, limit: usize) -> bool {
    let mut pending = vec![f];
    let mut terms = 0usize;
    while let Some(f) = pending.pop() {
        terms += 1;
        if terms > limit {
            return true;
        }
        match f {
            LdapFilter::And(l) | LdapFilter::Or(l) => pending.extend(l.iter()),
            LdapFilter::Not(inner) => pending.push(inner),
            _ => {}
        }
    }
    false
}

fn filter_depth(f: &LdapFilter) -> usize {
    match f {
        LdapFilter::And(l) | LdapFilter::Or(l) => 1 + l.iter().map(filter_depth).max().unwrap_or(0),
        LdapFilter::Not(inner) => 1 + filter_depth(inner),
        _ => 1,
    }
}

/// Encoded entries are handed to the writer in batches of about this many
/// bytes: one wake-up and one write for many entries, and a bounded amount
/// queued per connection (the channel holds 256 batches).
const BATCH_BYTES: usize = 16 * 1024;

/// Searches that look at no more entries than this run on the connection's
/// task instead of a blocking thread.
const INLINE_CANDIDATES: usize = 16;

/// The SearchResultDone for a finished search, with its paged-results
/// control; None for an abandoned search (it gets no response, RFC 4511 §4.11).
fn final_message(
    msgid: i32,
    searched: DirResult<SearchEnd>,
    paging: Option<&Paging>,
    extra: &[LdapControl],
) -> Option<(LdapMsg, Outcome)> {
    let (r, ctrl, entries) = match searched {
        Ok(SearchEnd::Done { entries }) => (result::success(), Vec::new(), entries),
        Ok(SearchEnd::SizeLimit { entries }) => (
            result::result(LdapResultCode::SizeLimitExceeded, "size limit exceeded"),
            Vec::new(),
            entries,
        ),
        Ok(SearchEnd::TimeLimit { entries }) => (
            result::result(LdapResultCode::TimeLimitExceeded, "time limit exceeded"),
            Vec::new(),
            entries,
        ),
        Ok(SearchEnd::Page { entries, next }) => {
            let end = match paging {
                Some(p) => p.end(entries, next),
                None => PageEnd::Cookie(Vec::new()),
            };
            match end {
                PageEnd::Cookie(cookie) => (result::success(), paged_control(cookie), entries),
                PageEnd::SizeLimit => (size_limit_exceeded(), paged_control(Vec::new()), entries),
            }
        }
        Ok(SearchEnd::LookThroughLimit { entries, limit }) => (
            result::result(
                LdapResultCode::AdminLimitExceeded,
                format!(
                    "the search looked at {limit} entries without finishing \
                     (lookthrough_limit); use a filter on an indexed attribute or a narrower base"
                ),
            ),
            Vec::new(),
            entries,
        ),
        Ok(SearchEnd::Abandoned) => return None,
        Err(e) => (result::from_error(&e), Vec::new(), 0),
    };
    let outcome = Outcome {
        code: r.code.clone() as i32,
        entries,
    };
    let mut m = msg(msgid, LdapOp::SearchResultDone(r));
    m.ctrl = ctrl;
    m.ctrl.extend(extra.iter().cloned());
    Some((m, outcome))
}

fn paged_control(cookie: Vec<u8>) -> Vec<LdapControl> {
    vec![LdapControl::SimplePagedResults { size: 0, cookie }]
}

fn size_limit_exceeded() -> LdapResult {
    result::result(LdapResultCode::SizeLimitExceeded, "size limit exceeded")
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
    let _ = sink.send(m.into()).await;
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
        // The codec also turns limits it saw outside 0..maxInt into -1.
        let r = result::result(
            LdapResultCode::ProtocolError,
            "sizeLimit and timeLimit must be within 0..2147483647 (RFC 4511 §4.5.1)",
        );
        return done(&sink, msgid, r, Vec::new(), 0).await;
    }
    if filter_depth(&req.filter) > shared.max_filter_depth {
        let r = result::result(
            LdapResultCode::UnwillingToPerform,
            format!("filter nesting is deeper than {}", shared.max_filter_depth),
        );
        return done(&sink, msgid, r, Vec::new(), 0).await;
    }
    let max_terms = shared.search.max_filter_terms;
    if !who.root && max_terms > 0 && filter_terms_exceed(&req.filter, max_terms) {
        let r = result::result(
            LdapResultCode::AdminLimitExceeded,
            format!("the filter has more than {max_terms} terms (max_filter_terms)"),
        );
        return done(&sink, msgid, r, Vec::new(), 0).await;
    }
    let lookthrough = shared.search.lookthrough_limit;
    if let Some(sync) = ctrls.sync.clone() {
        if ctrls.sort.is_some() || ctrls.vlv.is_some() || ctrls.paged.is_some() {
            let r = result::result(
                LdapResultCode::UnwillingToPerform,
                "content synchronisation (RFC 4533) cannot be combined with sorting, VLV or paging",
            );
            return done(&sink, msgid, r, Vec::new(), 0).await;
        }
        return super::sync::run(shared, who, msgid, req, base, scope, sync, sink, cancelled).await;
    }
    if ctrls.vlv.is_some() && ctrls.sort.is_none() {
        let (r, ctrl) = sort::vlv_without_sort();
        return done(&sink, msgid, r, ctrl, 0).await;
    }

    // cn=monitor (root DN only): several synthetic entries.
    if let Some(found) = super::monitor::search(&shared, &who, &base, scope) {
        let mut n = 0;
        for (dn, attrs) in found {
            if rootdse::matches(&shared, &dn, &attrs, &req.filter) {
                let attributes = rootdse::select(attrs, &req.attrs, req.typesonly);
                let entry = msg(
                    msgid,
                    LdapOp::SearchResultEntry(LdapSearchResultEntry { dn, attributes }),
                );
                let _ = sink.send(entry.into()).await;
                n += 1;
            }
        }
        return done(&sink, msgid, result::success(), Vec::new(), n).await;
    }

    // Synthetic entries: the root DSE, the subschema subentry and the RUVs.
    let synthetic = if base.is_root() && scope == Scope::Base {
        Some(("", rootdse::root_dse(&shared, false)))
    } else if rootdse::is_subschema_dn(&base) {
        Some((
            "cn=schema",
            if scope == Scope::One {
                Vec::new()
            } else {
                rootdse::subschema(&shared, &who)
            },
        ))
    } else if scope == Scope::Base {
        rootdse::ruv_entry(&shared, &who, &base).map(|attrs| (req.base.as_str(), attrs))
    } else {
        None
    };
    if let Some((dn, attrs)) = synthetic {
        if let Some(f) = &ctrls.assertion {
            if attrs.is_empty() || !rootdse::matches(&shared, dn, &attrs, f) {
                let r = result::result(
                    LdapResultCode::AssertionFailed,
                    format!("'{dn}' does not match the assertion control's filter"),
                );
                return done(&sink, msgid, r, Vec::new(), 0).await;
            }
        }
        // One entry is always in order.
        let ctrl = match &ctrls.sort {
            Some(_) => vec![super::controls::sort_response(0, None)],
            None => Vec::new(),
        };
        let mut n = 0;
        if !attrs.is_empty() && rootdse::matches(&shared, dn, &attrs, &req.filter) {
            let attributes = rootdse::select(attrs, &req.attrs, req.typesonly);
            let entry = msg(
                msgid,
                LdapOp::SearchResultEntry(LdapSearchResultEntry {
                    dn: dn.to_string(),
                    attributes,
                }),
            );
            let _ = sink.send(entry.into()).await;
            n = 1;
        }
        return done(&sink, msgid, result::success(), ctrl, n).await;
    }
    if let Some(f) = &ctrls.assertion {
        if !base.is_root() {
            if let Err(e) = shared.dir.check_assertion(&who, &base, f) {
                return done(&sink, msgid, result::from_error(&e), Vec::new(), 0).await;
            }
        }
    }

    // Controls the unsorted answer carries (a sort that could not be done).
    let mut extra = Vec::new();
    if let Some(sort) = ctrls.sort.clone() {
        let sorted = sort::SortedSearch {
            who: who.clone(),
            msgid,
            req: req.clone(),
            base: base.clone(),
            scope,
            sort,
            vlv: ctrls.vlv.clone(),
            paged: ctrls.paged.clone(),
            lookthrough,
            max_entries: shared.search.max_sort_entries,
        };
        match sort::run(&shared, sorted, sink.clone(), cancelled.clone()).await {
            sort::Plan::Done(outcome) => return outcome,
            sort::Plan::Unsorted(ctrl) => extra.push(ctrl),
        }
    }

    let mut page = None;
    let mut paging = None;
    if let Some((size, cookie)) = &ctrls.paged {
        let limit = paging::total_limit(&who, req.sizelimit, shared.dir.config().size_limit);
        match paging::start(&req, &who, *size, cookie, limit) {
            Ok(PageStart::Run {
                paging: p,
                size,
                after,
            }) => {
                page = Some((size, after));
                paging = Some(p);
            }
            Ok(PageStart::Abandon) => {
                let ctrl = paged_control(Vec::new());
                return done(&sink, msgid, result::success(), ctrl, 0).await;
            }
            Ok(PageStart::LimitReached) => {
                let ctrl = paged_control(Vec::new());
                return done(&sink, msgid, size_limit_exceeded(), ctrl, 0).await;
            }
            Err(r) => return done(&sink, msgid, r, Vec::new(), 0).await,
        }
    }

    // Small searches (a base entry, a selective index key) are answered
    // here: handing them to a blocking thread and back costs more than they do.
    {
        let request = directory_request(&req, base.clone(), scope, page, lookthrough);
        let mut batch = Vec::new();
        let mut emit = |e: &SelectedEntry<'_>| search_ber::encode_entry(&mut batch, msgid, e);
        let is_cancelled = || cancelled.load(Ordering::Relaxed);
        let small = shared.dir.search_selected_small(
            &who,
            &request,
            &is_cancelled,
            &mut emit,
            INLINE_CANDIDATES,
        );
        let searched = match small {
            Ok(None) => None,
            Ok(Some(end)) => Some(Ok(end)),
            Err(e) => Some(Err(e)),
        };
        if let Some(searched) = searched {
            let outcome = finish(msgid, searched, paging.as_ref(), &extra, &mut batch);
            if outcome.code != -1 {
                let _ = sink.send(Response::Encoded(batch)).await;
            }
            return outcome;
        }
    }

    let dir = shared.dir.clone();
    let entry_sink = sink.clone();
    let cancel = cancelled.clone();
    let searched = tokio::task::spawn_blocking(move || {
        let request = directory_request(&req, base, scope, page, lookthrough);
        let mut batch = Vec::with_capacity(4096);
        let send = |batch: Vec<u8>| {
            // A closed channel means the client left; the cancel check stops the scan.
            if entry_sink.blocking_send(Response::Encoded(batch)).is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
        };
        let mut emit = |e: &SelectedEntry<'_>| {
            search_ber::encode_entry(&mut batch, msgid, e);
            if batch.len() >= BATCH_BYTES {
                send(std::mem::replace(
                    &mut batch,
                    // Room for the entry that crosses the threshold.
                    Vec::with_capacity(BATCH_BYTES + BATCH_BYTES / 4),
                ));
            }
        };
        let is_cancelled = || cancel.load(Ordering::Relaxed);
        let searched = dir.search_selected(&who, &request, &is_cancelled, &mut emit);
        let outcome = finish(msgid, searched, paging.as_ref(), &extra, &mut batch);
        if outcome.code != -1 {
            send(batch);
        }
        outcome
    })
    .await;
    match searched {
        Ok(outcome) => outcome,
        Err(e) => {
            let r = result::result(LdapResultCode::Other, format!("search task failed: {e}"));
            done(&sink, msgid, r, Vec::new(), 0).await
        }
    }
}

/// Appends the SearchResultDone to the entries still to be sent (so a
/// small search goes out in one write); an abandoned search gets no
/// response (RFC 4511 §4.11) and outcome code -1.
/// The directory's view of an LDAP search request.
fn directory_request(
    req: &LdapSearchRequest,
    base: crate::model::Dn,
    scope: Scope,
    page: Option<(usize, u64)>,
    lookthrough_limit: usize,
) -> SearchRequest<'_> {
    SearchRequest {
        base,
        scope,
        filter: &req.filter,
        attrs: &req.attrs,
        types_only: req.typesonly,
        // A paged search's limit is on its total, kept across pages by
        // ops::paging; the directory bounds each page by its size.
        size_limit: if page.is_some() {
            0
        } else {
            req.sizelimit as usize
        },
        time_limit: req.timelimit as u64,
        page,
        lookthrough_limit,
    }
}

fn finish(
    msgid: i32,
    searched: DirResult<SearchEnd>,
    paging: Option<&Paging>,
    extra: &[LdapControl],
    batch: &mut Vec<u8>,
) -> Outcome {
    let Some((last, outcome)) = final_message(msgid, searched, paging, extra) else {
        return Outcome {
            code: -1,
            entries: 0,
        };
    };
    if search_ber::encode_result(batch, &last) {
        return outcome;
    }
    let mut codec = LdapCodec::new(None, None);
    let mut done = BytesMut::new();
    match codec.encode(last, &mut done) {
        Ok(()) => batch.extend_from_slice(&done),
        Err(e) => tracing::warn!("encoding a search result failed: {e}"),
    }
    outcome
}
