//! Server-side sort (RFC 2891) and the virtual list view
//! (draft-ietf-ldapext-ldapv3-vlv-09) over it.
//!
//! A sorted search collects its matching entries (at most
//! `SearchLimits::max_sort_entries`, and for anyone but the root DN no more
//! than the look-through limit lets it read), orders them by the keys'
//! ordering rules (n log n on keys prepared once per entry), then answers
//! the whole list, a page of it (paged results: the cookie holds the
//! offset) or a window around a target (VLV). The work runs on a blocking
//! thread that checks the abandon flag and the time limit while collecting.

use super::controls::{self, SortKey, SortRequest, VlvRequest, VlvTarget};
use super::paging::{self, PageEnd, PageStart};
use super::{msg, result, search_ber, Outcome, Response, Shared, Sink};
use crate::directory::{
    DirError, Identity, Scope, SearchEnd, SearchEntry, SearchRequest, SelectedEntry, SelectedValues,
};
use crate::model::Dn;
use crate::query::filter::base_attr_name;
use crate::schema::{AttributeType, Schema, SortRule, SortValue};
use bytes::BytesMut;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapOp, LdapResult, LdapResultCode, LdapSearchRequest};
use ldap3_proto::LdapCodec;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use tokio_util::codec::Encoder;

/// Sorts of more entries than this are refused (adminLimitExceeded) unless
/// configured otherwise: the entries are held in memory while sorted.
pub const DEFAULT_MAX_SORT_ENTRIES: usize = 50_000;

/// RFC 2891 sortResult and VLV virtualListViewResult codes that ldap3_proto
/// has no result code for.
const SORT_CONTROL_MISSING: i64 = 60;
const OFFSET_RANGE_ERROR: i64 = 61;

const BATCH_BYTES: usize = 16 * 1024;

/// One resolved sort key.
struct Key {
    at: Arc<AttributeType>,
    /// Attribute options of the key's description (lowercased, sorted).
    options: Vec<String>,
    rule: SortRule,
    reverse: bool,
}

/// What to do with a search that carries a sort control.
pub(super) enum Plan {
    /// Answered (sorted, or refused).
    Done(Outcome),
    /// Run the search unsorted and attach this sort response (a
    /// non-critical sort that cannot be done, RFC 2891 §2).
    Unsorted(LdapControl),
}

fn options_of(description: &str) -> Vec<String> {
    let mut o: Vec<String> = description
        .split(';')
        .skip(1)
        .map(str::to_ascii_lowercase)
        .collect();
    o.sort();
    o
}

fn resolve(
    schema: &Schema,
    keys: &[SortKey],
) -> Result<Vec<Key>, (LdapResultCode, String, String)> {
    keys.iter()
        .map(|k| {
            let Some(at) = schema.attribute(base_attr_name(&k.attr)) else {
                return Err((
                    LdapResultCode::NoSuchAttribute,
                    k.attr.clone(),
                    format!("cannot sort by '{}': no such attribute type", k.attr),
                ));
            };
            let rule = schema.sort_rule(&at, k.rule.as_deref()).map_err(|e| {
                (
                    LdapResultCode::InappropriateMatching,
                    k.attr.clone(),
                    format!("cannot sort by '{}': {e}", k.attr),
                )
            })?;
            Ok(Key {
                options: options_of(&k.attr),
                at,
                rule,
                reverse: k.reverse,
            })
        })
        .collect()
}

/// Whether an attribute description of a returned entry is the key's.
fn is_key_attr(schema: &Schema, key: &Key, name: &str) -> bool {
    schema
        .attribute(base_attr_name(name))
        .is_some_and(|at| at.oid == key.at.oid)
        && options_of(name) == key.options
}

/// The sort value of one entry for one key: the least value ascending, the
/// greatest descending; None when it has no valid value.
fn key_value(schema: &Schema, key: &Key, e: &SearchEntry) -> Option<SortValue> {
    let values = e
        .attrs
        .iter()
        .filter(|(name, _)| is_key_attr(schema, key, name))
        .flat_map(|(_, vals)| vals.iter())
        .filter_map(|v| schema.sort_value(key.rule, v));
    if key.reverse {
        values.max()
    } else {
        values.min()
    }
}

/// RFC 2891 §2.2: entries without a value sort after all others; a
/// reversed key reverses the whole order.
fn compare_keys(keys: &[Key], a: &[Option<SortValue>], b: &[Option<SortValue>]) -> Ordering {
    for ((k, x), y) in keys.iter().zip(a).zip(b) {
        let o = match (x, y) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let o = if k.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Sorts entries by the keys (stable: ties keep the search's order).
fn sort_entries(schema: &Schema, keys: &[Key], entries: Vec<SearchEntry>) -> Vec<SearchEntry> {
    let mut keyed: Vec<(Vec<Option<SortValue>>, SearchEntry)> = entries
        .into_iter()
        .map(|e| (keys.iter().map(|k| key_value(schema, k, &e)).collect(), e))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| compare_keys(keys, a, b));
    keyed.into_iter().map(|(_, e)| e).collect()
}

/// The attribute list the directory is asked for: the request's, plus the
/// sort attributes it would not return (stripped again before sending).
fn with_key_attrs(
    schema: &Schema,
    requested: &[String],
    keys: &[Key],
) -> (Vec<String>, Vec<usize>) {
    let all_user = requested.is_empty() || requested.iter().any(|a| a == "*");
    let all_oper = requested.iter().any(|a| a == "+");
    let mut attrs = requested.to_vec();
    let mut added = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let covered = if k.at.is_operational() {
            all_oper
        } else {
            all_user
        } || requested.iter().any(|r| {
            schema
                .attribute(base_attr_name(r))
                .is_some_and(|at| at.oid == k.at.oid)
        });
        if !covered {
            if attrs.is_empty() {
                attrs.push("*".into());
            }
            attrs.push(k.at.name().to_string());
            added.push(i);
        }
    }
    (attrs, added)
}

/// Where a VLV request's window is: the target's 1-based position and the
/// 0-based range of entries to return; Err for an offset of 0.
fn vlv_window(
    vlv: &VlvRequest,
    n: usize,
    target_of_value: impl Fn(&[u8]) -> usize,
) -> Result<(usize, std::ops::Range<usize>), i64> {
    let position = match &vlv.target {
        VlvTarget::ByOffset {
            offset,
            content_count,
        } => {
            if *offset < 1 {
                return Err(OFFSET_RANGE_ERROR);
            }
            let offset = usize::try_from(*offset).unwrap_or(usize::MAX);
            let count = usize::try_from(*content_count).unwrap_or(0);
            // The client's estimate of the list size scales its offset
            // (draft §5: the same relative position in the list).
            let scaled = if count == 0 || count == n {
                offset
            } else if offset >= count {
                n
            } else {
                let s = (offset as u128 * n as u128).div_ceil(count as u128);
                usize::try_from(s).unwrap_or(n).max(1)
            };
            scaled.min(n.max(1))
        }
        VlvTarget::GreaterOrEqual(v) => target_of_value(v),
    };
    if n == 0 {
        return Ok((0, 0..0));
    }
    let index = position.saturating_sub(1);
    let start = index.saturating_sub(vlv.before);
    let end = index.saturating_add(vlv.after).saturating_add(1).min(n);
    Ok((position, start.min(end)..end))
}

/// The 1-based position of the first entry at or after `value` in the
/// sorted order of the first key (n + 1 when there is none).
fn position_of_value(schema: &Schema, key: &Key, sorted: &[SearchEntry], value: &[u8]) -> usize {
    let Some(target) = schema.sort_value(key.rule, value) else {
        return sorted.len() + 1;
    };
    let first = sorted.iter().position(|e| match key_value(schema, key, e) {
        Some(v) => {
            let o = v.cmp(&target);
            if key.reverse {
                o != Ordering::Greater
            } else {
                o != Ordering::Less
            }
        }
        // Entries without a value sort last.
        None => true,
    });
    first.map_or(sorted.len() + 1, |i| i + 1)
}

fn encode_done(batch: &mut Vec<u8>, msgid: i32, r: LdapResult, ctrl: Vec<LdapControl>) -> Outcome {
    let outcome = Outcome {
        code: r.code.clone() as i32,
        entries: 0,
    };
    let mut m = msg(msgid, LdapOp::SearchResultDone(r));
    m.ctrl = ctrl;
    let mut codec = LdapCodec::new(None, None);
    let mut buf = BytesMut::new();
    match codec.encode(m, &mut buf) {
        Ok(()) => batch.extend_from_slice(&buf),
        Err(e) => tracing::warn!("encoding a search result failed: {e}"),
    }
    outcome
}

/// Everything a sorted search needs on its blocking thread.
pub(super) struct SortedSearch {
    pub who: Identity,
    pub msgid: i32,
    pub req: LdapSearchRequest,
    pub base: Dn,
    pub scope: Scope,
    pub sort: SortRequest,
    pub vlv: Option<VlvRequest>,
    pub paged: Option<(i64, Vec<u8>)>,
    pub lookthrough: usize,
    pub max_entries: usize,
}

/// Answers a search with a sort control (and maybe VLV or paging).
pub(super) async fn run(
    shared: &Arc<Shared>,
    s: SortedSearch,
    sink: Sink,
    cancelled: Arc<AtomicBool>,
) -> Plan {
    let schema = shared.dir.schema();
    let keys = match resolve(&schema, &s.sort.keys) {
        Ok(k) => k,
        Err((code, attr, message)) => {
            let sort_ctrl = controls::sort_response(code.clone() as i64, Some(&attr));
            if !s.sort.critical && s.vlv.is_none() {
                return Plan::Unsorted(sort_ctrl);
            }
            let mut ctrl = vec![sort_ctrl];
            if s.vlv.is_some() {
                ctrl.push(controls::vlv_response(0, 0, code.clone() as i64, None));
            }
            return send_only(&sink, s.msgid, result::result(code, message), ctrl).await;
        }
    };
    if s.vlv.is_some() && s.paged.is_some() {
        let r = result::result(
            LdapResultCode::UnwillingToPerform,
            "the virtual list view and paged results controls cannot be combined",
        );
        let ctrl = vec![controls::vlv_response(0, 0, 53, None)];
        return send_only(&sink, s.msgid, r, ctrl).await;
    }
    let total_limit = paging::total_limit(&s.who, s.req.sizelimit, shared.dir.config().size_limit);
    let mut page = None;
    if let Some((size, cookie)) = &s.paged {
        match paging::start(&s.req, &s.who, *size, cookie, total_limit) {
            Ok(PageStart::Run {
                paging: p,
                size,
                after,
            }) => page = Some((p, size, after)),
            Ok(PageStart::Abandon) => {
                let ctrl = vec![
                    controls::sort_response(0, None),
                    LdapControl::SimplePagedResults {
                        size: 0,
                        cookie: Vec::new(),
                    },
                ];
                return send_only(&sink, s.msgid, result::success(), ctrl).await;
            }
            Ok(PageStart::LimitReached) => {
                let ctrl = vec![
                    controls::sort_response(0, None),
                    LdapControl::SimplePagedResults {
                        size: 0,
                        cookie: Vec::new(),
                    },
                ];
                let r = result::result(LdapResultCode::SizeLimitExceeded, "size limit exceeded");
                return send_only(&sink, s.msgid, r, ctrl).await;
            }
            Err(r) => return send_only(&sink, s.msgid, r, Vec::new()).await,
        }
    }

    let dir = shared.dir.clone();
    let msgid = s.msgid;
    let critical = s.sort.critical || s.vlv.is_some();
    let entry_sink = sink.clone();
    let handle = tokio::task::spawn_blocking(move || -> Result<Outcome, LdapControl> {
        let (attrs, added) = with_key_attrs(&schema, &s.req.attrs, &keys);
        let max = s.max_entries.max(1);
        let request = SearchRequest {
            base: s.base.clone(),
            scope: s.scope,
            filter: &s.req.filter,
            attrs: &attrs,
            types_only: false,
            size_limit: 0,
            time_limit: u64::try_from(s.req.timelimit).unwrap_or(0),
            // One "page" of the whole bound: the search stops once more
            // entries match than may be sorted, and the server's size limit
            // applies to what is returned, below.
            page: Some((max, 0)),
            lookthrough_limit: s.lookthrough,
        };
        let mut collected: Vec<SearchEntry> = Vec::new();
        let is_cancelled = || cancelled.load(AtomicOrdering::Relaxed);
        let searched = dir.search_selected(&s.who, &request, &is_cancelled, &mut |e| {
            collected.push(e.to_owned_entry())
        });
        let mut batch = Vec::new();
        let fail = |batch: &mut Vec<u8>, code: LdapResultCode, sort_code: i64, message: String| {
            let mut ctrl = vec![controls::sort_response(sort_code, None)];
            if s.vlv.is_some() {
                ctrl.push(controls::vlv_response(0, 0, sort_code, None));
            }
            encode_done(batch, msgid, result::result(code, message), ctrl)
        };
        let outcome = match searched {
            Ok(SearchEnd::Page { next: None, .. }) | Ok(SearchEnd::Done { .. }) => None,
            Ok(SearchEnd::Page { next: Some(_), .. }) => {
                if !critical {
                    return Err(controls::sort_response(11, None));
                }
                Some(fail(
                    &mut batch,
                    LdapResultCode::AdminLimitExceeded,
                    11,
                    format!(
                        "more than {max} entries match: a sorted search is limited to \
                         {max} entries (max_sort_entries); narrow the filter or the base"
                    ),
                ))
            }
            Ok(SearchEnd::LookThroughLimit { limit, .. }) => Some(fail(
                &mut batch,
                LdapResultCode::AdminLimitExceeded,
                11,
                format!(
                    "the sorted search looked at {limit} entries without finishing \
                     (lookthrough_limit); use a filter on an indexed attribute or a narrower base"
                ),
            )),
            Ok(SearchEnd::TimeLimit { .. }) => Some(fail(
                &mut batch,
                LdapResultCode::TimeLimitExceeded,
                3,
                "time limit exceeded before the entries could be sorted".into(),
            )),
            Ok(SearchEnd::SizeLimit { .. }) => Some(fail(
                &mut batch,
                LdapResultCode::SizeLimitExceeded,
                0,
                "size limit exceeded".into(),
            )),
            Ok(SearchEnd::Abandoned) => {
                return Ok(Outcome {
                    code: -1,
                    entries: 0,
                })
            }
            Err(e) => {
                let r = result::from_error(&e);
                let code = r.code.clone() as i64;
                let mut ctrl = Vec::new();
                if !matches!(e, DirError::NoSuchObject { .. }) {
                    ctrl.push(controls::sort_response(code, None));
                }
                Some(encode_done(&mut batch, msgid, r, ctrl))
            }
        };
        if let Some(outcome) = outcome {
            let _ = entry_sink.blocking_send(Response::Encoded(batch));
            return Ok(outcome);
        }

        let mut sorted = sort_entries(&schema, &keys, collected);
        let n = sorted.len();
        let mut ctrl = vec![controls::sort_response(0, None)];
        let mut r = result::success();
        let range = if let Some(vlv) = &s.vlv {
            let first = keys.first();
            let window = vlv_window(vlv, n, |v| match first {
                Some(k) => position_of_value(&schema, k, &sorted, v),
                None => 1,
            });
            match window {
                Ok((position, range)) => {
                    ctrl.push(controls::vlv_response(
                        position,
                        n,
                        0,
                        vlv.context_id.as_deref(),
                    ));
                    range
                }
                Err(code) => {
                    ctrl.push(controls::vlv_response(
                        0,
                        n,
                        code,
                        vlv.context_id.as_deref(),
                    ));
                    r = result::result(
                        LdapResultCode::VirtualListViewError,
                        "the VLV offset must be at least 1",
                    );
                    0..0
                }
            }
        } else if let Some((p, size, after)) = &page {
            let start = usize::try_from(*after).unwrap_or(usize::MAX).min(n);
            let end = start.saturating_add(*size).min(n);
            let next = (end < n).then_some(end as u64);
            match p.end(end - start, next) {
                PageEnd::Cookie(cookie) => {
                    ctrl.push(LdapControl::SimplePagedResults { size: 0, cookie })
                }
                PageEnd::SizeLimit => {
                    ctrl.push(LdapControl::SimplePagedResults {
                        size: 0,
                        cookie: Vec::new(),
                    });
                    r = result::result(LdapResultCode::SizeLimitExceeded, "size limit exceeded");
                }
            }
            start..end
        } else {
            0..n
        };
        // The size limit bounds what is returned, whatever the window.
        let mut range = range;
        if page.is_none() && total_limit > 0 && range.len() > total_limit {
            range = range.start..range.start + total_limit;
            r = result::result(LdapResultCode::SizeLimitExceeded, "size limit exceeded");
        }
        let returned = range.len();
        let window = sorted.get_mut(range).unwrap_or_default();
        // The key attributes were only read for sorting (and for a VLV
        // target by value): what the client did not ask for goes.
        for e in window.iter_mut() {
            if !added.is_empty() {
                e.attrs.retain(|(name, _)| {
                    !added
                        .iter()
                        .filter_map(|i| keys.get(*i))
                        .any(|k| is_key_attr(&schema, k, name))
                });
            }
            if s.req.typesonly {
                for (_, vals) in &mut e.attrs {
                    vals.clear();
                }
            }
        }
        for e in window.iter_mut() {
            // Each entry is sent once: its values move into the encoder.
            let selected = SelectedEntry {
                dn: std::mem::take(&mut e.dn),
                attrs: e
                    .attrs
                    .iter_mut()
                    .map(|(name, vals)| {
                        (
                            Cow::Borrowed(name.as_str()),
                            SelectedValues::Computed(std::mem::take(vals)),
                        )
                    })
                    .collect(),
            };
            search_ber::encode_entry(&mut batch, msgid, &selected);
            if batch.len() >= BATCH_BYTES {
                let full = std::mem::take(&mut batch);
                if entry_sink.blocking_send(Response::Encoded(full)).is_err() {
                    return Ok(Outcome {
                        code: -1,
                        entries: 0,
                    });
                }
            }
        }
        let mut outcome = encode_done(&mut batch, msgid, r, ctrl);
        outcome.entries = returned;
        let _ = entry_sink.blocking_send(Response::Encoded(batch));
        Ok(outcome)
    })
    .await;
    match handle {
        Ok(Ok(outcome)) => Plan::Done(outcome),
        Ok(Err(unsorted)) => Plan::Unsorted(unsorted),
        Err(e) => {
            let r = result::result(LdapResultCode::Other, format!("sort task failed: {e}"));
            send_only(&sink, msgid, r, Vec::new()).await
        }
    }
}

async fn send_only(sink: &Sink, msgid: i32, r: LdapResult, ctrl: Vec<LdapControl>) -> Plan {
    let outcome = Outcome {
        code: r.code.clone() as i32,
        entries: 0,
    };
    let mut m = msg(msgid, LdapOp::SearchResultDone(r));
    m.ctrl = ctrl;
    let _ = sink.send(m.into()).await;
    Plan::Done(outcome)
}

/// The answer to a VLV request without a sort control (draft §6.1: the
/// sort control is required).
pub(super) fn vlv_without_sort() -> (LdapResult, Vec<LdapControl>) {
    (
        result::result(
            LdapResultCode::VirtualListViewError,
            "the virtual list view control needs a server-side sort control (sortControlMissing)",
        ),
        vec![controls::vlv_response(0, 0, SORT_CONTROL_MISSING, None)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> SearchEntry {
        SearchEntry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(n, vs)| {
                    (
                        n.to_string(),
                        vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
                    )
                })
                .collect(),
        }
    }

    fn key(attr: &str, reverse: bool) -> SortKey {
        SortKey {
            attr: attr.into(),
            rule: None,
            reverse,
        }
    }

    fn dns(v: &[SearchEntry]) -> Vec<&str> {
        v.iter().map(|e| e.dn.as_str()).collect()
    }

    #[test]
    fn sorts_by_ordering_rules_with_missing_values_last() {
        let schema = Schema::builtin().unwrap();
        let entries = vec![
            entry("a", &[("cn", &["bravo"]), ("uidNumber", &["10"])]),
            entry("b", &[("cn", &["Alpha", "zulu"]), ("uidNumber", &["9"])]),
            entry("c", &[("uidNumber", &["-3"])]),
            entry("d", &[("cn", &["charlie"]), ("uidNumber", &["100"])]),
        ];
        let keys = resolve(&schema, &[key("cn", false)]).unwrap();
        let sorted = sort_entries(&schema, &keys, entries.clone());
        assert_eq!(dns(&sorted), ["b", "a", "d", "c"]);
        let keys = resolve(&schema, &[key("cn", true)]).unwrap();
        let sorted = sort_entries(&schema, &keys, entries.clone());
        // Descending uses each entry's greatest value; no value comes first.
        assert_eq!(dns(&sorted), ["c", "b", "d", "a"]);
        // Integers sort as numbers, not as text.
        let keys = resolve(&schema, &[key("uidNumber", false)]).unwrap();
        let sorted = sort_entries(&schema, &keys, entries);
        assert_eq!(dns(&sorted), ["c", "b", "a", "d"]);
    }

    #[test]
    fn unsortable_attributes_are_inappropriate_matching() {
        let schema = Schema::builtin().unwrap();
        for attr in ["jpegPhoto", "member", "telephoneNumber"] {
            match resolve(&schema, &[key(attr, false)]) {
                Err((code, a, _)) => {
                    assert_eq!(code, LdapResultCode::InappropriateMatching, "{attr}");
                    assert_eq!(a, attr);
                }
                Ok(_) => panic!("{attr} should not be sortable"),
            }
        }
        assert!(matches!(
            resolve(&schema, &[key("noSuchAttr", false)]),
            Err((LdapResultCode::NoSuchAttribute, _, _))
        ));
        let named = SortKey {
            attr: "cn".into(),
            rule: Some("integerOrderingMatch".into()),
            reverse: false,
        };
        assert!(resolve(&schema, &[named]).is_err());
    }

    #[test]
    fn vlv_windows() {
        let by = |before, after, offset, count| VlvRequest {
            before,
            after,
            target: VlvTarget::ByOffset {
                offset,
                content_count: count,
            },
            context_id: None,
        };
        let none = |_: &[u8]| 0;
        assert_eq!(vlv_window(&by(1, 2, 3, 0), 10, none), Ok((3, 1..5)));
        assert_eq!(vlv_window(&by(5, 0, 1, 0), 10, none), Ok((1, 0..1)));
        assert_eq!(vlv_window(&by(0, 5, 10, 0), 10, none), Ok((10, 9..10)));
        // Offsets past the end land on the last entry.
        assert_eq!(vlv_window(&by(1, 1, 50, 0), 10, none), Ok((10, 8..10)));
        // The client's count scales the offset: half-way stays half-way.
        assert_eq!(vlv_window(&by(0, 0, 50, 100), 10, none), Ok((5, 4..5)));
        assert_eq!(vlv_window(&by(0, 0, 100, 100), 10, none), Ok((10, 9..10)));
        assert_eq!(
            vlv_window(&by(0, 0, 0, 0), 10, none),
            Err(OFFSET_RANGE_ERROR)
        );
        assert_eq!(vlv_window(&by(2, 2, 1, 0), 0, none), Ok((0, 0..0)));
        let value = VlvRequest {
            before: 1,
            after: 1,
            target: VlvTarget::GreaterOrEqual(b"m".to_vec()),
            context_id: None,
        };
        assert_eq!(vlv_window(&value, 10, |_| 11), Ok((11, 9..10)));
    }

    #[test]
    fn greater_or_equal_finds_the_first_entry_at_or_after_the_value() {
        let schema = Schema::builtin().unwrap();
        let sorted = vec![
            entry("a", &[("cn", &["alpha"])]),
            entry("b", &[("cn", &["Mike"])]),
            entry("c", &[("cn", &["zulu"])]),
        ];
        let keys = resolve(&schema, &[key("cn", false)]).unwrap();
        let k = keys.first().unwrap();
        assert_eq!(position_of_value(&schema, k, &sorted, b"m"), 2);
        assert_eq!(position_of_value(&schema, k, &sorted, b"MIKE"), 2);
        assert_eq!(position_of_value(&schema, k, &sorted, b"a"), 1);
        assert_eq!(position_of_value(&schema, k, &sorted, b"zz"), 4);
    }

    #[test]
    fn key_attributes_not_asked_for_are_added_then_known() {
        let schema = Schema::builtin().unwrap();
        let keys = resolve(&schema, &[key("cn", false), key("modifyTimestamp", false)]).unwrap();
        let (attrs, added) = with_key_attrs(&schema, &["mail".into()], &keys);
        assert_eq!(attrs, ["mail", "cn", "modifyTimestamp"]);
        assert_eq!(added, [0, 1]);
        let (_, added) = with_key_attrs(&schema, &[], &keys);
        assert_eq!(added, [1]);
        let (_, added) = with_key_attrs(&schema, &["*".into(), "+".into()], &keys);
        assert!(added.is_empty());
    }
}
