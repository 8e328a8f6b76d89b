//! RFC 4533 content synchronisation, provider side: a search with the Sync
//! Request control, refreshOnly or refreshAndPersist.
//!
//! Refresh. With a cookie ferrodir issued and a changelog that still
//! reaches back to it, the consumer gets only what changed: every entry a
//! change since the cookie touched is sent whole (state add) if the search
//! still returns it, else as a delete (its entryUUID), and the refresh ends
//! with refreshDeletes TRUE. Otherwise (no cookie, another server's
//! cookie, a changelog trimmed past it) it is a present phase: entries
//! changed since the cookie (all of them without one) are sent whole, the
//! others' entryUUIDs in syncIdSet messages, and the refresh ends with
//! refreshDeletes FALSE, telling the consumer to drop whatever it was not
//! told about. Getting that flag wrong empties an OpenLDAP consumer.
//!
//! Persist. The search stays open; each commit wakes it, it reads the
//! changelog past what it sent (a RUV, so changes replicated in from other
//! suppliers with older CSNs are not missed) and sends each touched entry
//! as add, modify or delete. The cookie travels on the last message of a
//! batch only: a consumer cut off mid-batch resumes before it.
//!
//! Cookies and entryCSN values are in OpenLDAP's forms
//! (`repl::core::sync_cookie`); the attributes sent are the stored ones
//! (computed ones such as memberOf, hasSubordinates or entryDN are the
//! consumer's to compute), with entryUUID and entryCSN.

use super::controls::SyncRequest;
use super::{msg, result, Outcome, Response, Shared, Sink};
use crate::directory::sync::{SyncLookup, SyncStart};
use crate::directory::{DirError, Identity, Scope, SearchEnd, SearchEntry, SearchRequest};
use crate::model::{Change, ChangeRecord, Csn, Dn};
use crate::repl::core::ruv::Ruv;
use crate::repl::core::sync_cookie::{self, SyncCookie};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapFilter, LdapIntermediateResponse, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode,
    LdapSearchRequest, LdapSearchResultEntry, SyncStateValue,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Stored operational attributes a synchronisation carries for `+`.
const STORED_OPERATIONAL: [&str; 6] = [
    "entryUUID",
    "entryCSN",
    "creatorsName",
    "createTimestamp",
    "modifiersName",
    "modifyTimestamp",
];

/// Changes since a cookie answered entry by entry (read a page at a time);
/// past this a present phase (every entry, most as bare UUIDs) is the
/// smaller answer.
const MAX_DELTA: usize = 50_000;

/// Changelog records read per persist-phase batch.
const PERSIST_BATCH: usize = 500;

/// entryUUIDs per syncIdSet message.
const ID_SET: usize = 1000;

/// Persistent synchronisations open at once on this server: each holds a
/// task and wakes on every commit.
const MAX_PERSISTENT: usize = 4096;
static PERSISTENT: AtomicUsize = AtomicUsize::new(0);
/// Of those, anonymous ones: an anonymous client cannot take the places
/// slaves and bound consumers need.
const MAX_ANONYMOUS_PERSISTENT: usize = 64;
static ANONYMOUS_PERSISTENT: AtomicUsize = AtomicUsize::new(0);

/// The synchronisations running now, for cn=monitor and `repl status`.
static FOLLOWERS: std::sync::Mutex<std::collections::BTreeMap<u64, Follower>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());
static NEXT_FOLLOWER: AtomicUsize = AtomicUsize::new(1);

#[derive(Debug, Clone)]
struct Follower {
    who: String,
    suffix: Dn,
    persist: bool,
    persisting: bool,
    since: std::time::SystemTime,
    sent: Ruv,
    entries: u64,
}

/// One running synchronisation as cn=monitor shows it.
#[derive(Debug, Clone)]
pub struct FollowerReport {
    pub id: usize,
    /// The consumer's bind DN (empty: anonymous).
    pub who: String,
    pub suffix: String,
    pub mode: &'static str,
    pub state: &'static str,
    pub since: std::time::SystemTime,
    /// The newest CSN sent, in OpenLDAP's form.
    pub last_sent: Option<String>,
    /// Seconds between the newest change here and the newest sent (0: in sync).
    pub lag_seconds: u64,
    /// Changes here the consumer has not been sent yet.
    pub behind: bool,
    pub entries: u64,
}

/// Every running synchronisation.
pub fn followers(shared: &Shared) -> Vec<FollowerReport> {
    let list: Vec<(u64, Follower)> = FOLLOWERS
        .lock()
        .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
        .unwrap_or_default();
    list.into_iter()
        .map(|(id, f)| {
            let here = shared.dir.ruv(&f.suffix).unwrap_or_default();
            let behind = f.sent.is_behind(&here);
            let lag = if behind {
                u64::from(here.max_csn().time.saturating_sub(f.sent.max_csn().time))
            } else {
                0
            };
            FollowerReport {
                id: usize::try_from(id).unwrap_or(0),
                who: f.who,
                suffix: f.suffix.to_string(),
                mode: if f.persist {
                    "refreshAndPersist"
                } else {
                    "refreshOnly"
                },
                state: if f.persisting {
                    "persisting"
                } else {
                    "refreshing"
                },
                since: f.since,
                last_sent: (!f.sent.replicas.is_empty())
                    .then(|| sync_cookie::format_csn(f.sent.max_csn()).ok())
                    .flatten(),
                lag_seconds: lag,
                behind,
                entries: f.entries,
            }
        })
        .collect()
}

/// A synchronisation's line in [`FOLLOWERS`], removed when dropped.
struct FollowerEntry(u64);

impl FollowerEntry {
    fn register(who: &Identity, suffix: &Dn, persist: bool) -> FollowerEntry {
        let id = NEXT_FOLLOWER.fetch_add(1, Ordering::Relaxed) as u64;
        if let Ok(mut m) = FOLLOWERS.lock() {
            m.insert(
                id,
                Follower {
                    who: who.dn.as_ref().map(|d| d.to_string()).unwrap_or_default(),
                    suffix: suffix.clone(),
                    persist,
                    persisting: false,
                    since: std::time::SystemTime::now(),
                    sent: Ruv::default(),
                    entries: 0,
                },
            );
        }
        FollowerEntry(id)
    }

    fn update(&self, f: impl FnOnce(&mut Follower)) {
        if let Ok(mut m) = FOLLOWERS.lock() {
            if let Some(x) = m.get_mut(&self.0) {
                f(x);
            }
        }
    }
}

impl Drop for FollowerEntry {
    fn drop(&mut self) {
        if let Ok(mut m) = FOLLOWERS.lock() {
            m.remove(&self.0);
        }
    }
}

/// How often a quiet persistent search checks for abandon.
const WAKE: Duration = Duration::from_secs(1);

/// The synchronised search as the directory runs it, and what to strip
/// from its entries before they go out.
struct SyncSearch {
    base: Dn,
    scope: Scope,
    filter: LdapFilter,
    /// What the directory is asked for: the client's list with `+`
    /// spelled out as the stored operational attributes, plus entryUUID
    /// and entryCSN (needed to decide what to send).
    attrs: Vec<String>,
    size_limit: usize,
    time_limit: u64,
    keep_uuid: bool,
    keep_csn: bool,
    /// Lowercased names of attributes computed at read (memberOf).
    computed: Vec<String>,
}

impl SyncSearch {
    fn new(req: &LdapSearchRequest, base: Dn, scope: Scope, start: &SyncStart) -> SyncSearch {
        let asked = |name: &str| {
            req.attrs
                .iter()
                .any(|a| a == "+" || a.eq_ignore_ascii_case(name))
        };
        let (keep_uuid, keep_csn) = (asked("entryUUID"), asked("entryCSN"));
        let mut attrs: Vec<String> = Vec::new();
        if req.attrs.is_empty() {
            attrs.push("*".into());
        }
        for a in &req.attrs {
            if a == "+" {
                attrs.extend(STORED_OPERATIONAL.iter().map(|s| s.to_string()));
            } else {
                attrs.push(a.clone());
            }
        }
        attrs.push("entryUUID".into());
        attrs.push("entryCSN".into());
        SyncSearch {
            base,
            scope,
            filter: req.filter.clone(),
            attrs,
            size_limit: usize::try_from(req.sizelimit).unwrap_or(0),
            time_limit: u64::try_from(req.timelimit).unwrap_or(0),
            keep_uuid,
            keep_csn,
            computed: start.computed.clone(),
        }
    }

    fn request(&self) -> SearchRequest<'_> {
        SearchRequest {
            base: self.base.clone(),
            scope: self.scope,
            filter: &self.filter,
            attrs: &self.attrs,
            types_only: false,
            size_limit: self.size_limit,
            time_limit: self.time_limit,
            page: None,
            lookthrough_limit: 0,
        }
    }

    /// The entry's UUID and CSN, and the entry as the consumer gets it.
    fn prepare(&self, e: SearchEntry) -> Option<([u8; 16], Option<Csn>, LdapSearchResultEntry)> {
        let mut uuid = None;
        let mut csn = None;
        let mut attributes = Vec::with_capacity(e.attrs.len());
        for (name, vals) in e.attrs {
            let lname = name.to_ascii_lowercase();
            if self.computed.contains(&lname) {
                continue;
            }
            match lname.as_str() {
                "entryuuid" => {
                    uuid = vals
                        .first()
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|t| uuid::Uuid::parse_str(t).ok())
                        .map(|u| *u.as_bytes());
                    if !self.keep_uuid {
                        continue;
                    }
                    attributes.push(LdapPartialAttribute { atype: name, vals });
                }
                "entrycsn" => {
                    let ours = vals
                        .first()
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|t| Csn::parse(t).ok());
                    csn = ours;
                    if !self.keep_csn {
                        continue;
                    }
                    // OpenLDAP consumers check entryCSN's syntax: its form.
                    let Some(text) = ours.and_then(|c| sync_cookie::format_csn(c).ok()) else {
                        continue;
                    };
                    attributes.push(LdapPartialAttribute {
                        atype: name,
                        vals: vec![text.into_bytes()],
                    });
                }
                _ => attributes.push(LdapPartialAttribute { atype: name, vals }),
            }
        }
        let uuid = uuid?;
        Some((
            uuid,
            csn,
            LdapSearchResultEntry {
                dn: e.dn,
                attributes,
            },
        ))
    }
}

/// Everything one synchronisation needs while it runs.
struct Session {
    shared: Arc<Shared>,
    who: Identity,
    msgid: i32,
    search: SyncSearch,
    suffix: Dn,
    /// The consumer's rid and this server's sid, echoed in every cookie.
    rid: Option<u16>,
    sid: Option<u16>,
    sink: Sink,
    cancelled: Arc<AtomicBool>,
}

/// Why a synchronisation stopped early.
enum Stop {
    /// Abandoned, or the client went away: nothing more to send.
    Gone,
    /// Ends with this result.
    Result(LdapResult),
}

impl From<DirError> for Stop {
    fn from(e: DirError) -> Stop {
        Stop::Result(result::from_error(&e))
    }
}

impl Session {
    fn gone(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.sink.is_closed()
    }

    fn cookie(&self, ruv: &Ruv) -> Result<Vec<u8>, Stop> {
        SyncCookie::from_ruv(self.rid, self.sid, ruv)
            .map(|c| c.render().into_bytes())
            .map_err(|e| {
                Stop::Result(result::result(
                    LdapResultCode::UnwillingToPerform,
                    e.to_string(),
                ))
            })
    }

    fn entry_message(
        &self,
        entry: LdapSearchResultEntry,
        state: SyncStateValue,
        uuid: [u8; 16],
        cookie: Option<Vec<u8>>,
    ) -> Response {
        let mut m = msg(self.msgid, LdapOp::SearchResultEntry(entry));
        m.ctrl = vec![LdapControl::SyncState {
            state,
            entry_uuid: uuid::Uuid::from_bytes(uuid),
            cookie,
        }];
        m.into()
    }

    fn delete_message(&self, dn: &Dn, uuid: [u8; 16], cookie: Option<Vec<u8>>) -> Response {
        let entry = LdapSearchResultEntry {
            dn: dn.to_string(),
            attributes: Vec::new(),
        };
        self.entry_message(entry, SyncStateValue::Delete, uuid, cookie)
    }

    fn info(&self, info: LdapIntermediateResponse) -> Response {
        msg(self.msgid, LdapOp::IntermediateResponse(info)).into()
    }

    fn send_blocking(&self, r: Response) -> Result<(), Stop> {
        if self.cancelled.load(Ordering::Relaxed) || self.sink.blocking_send(r).is_err() {
            return Err(Stop::Gone);
        }
        Ok(())
    }

    /// The refresh stage; returns whether it was a delete phase
    /// (refreshDeletes TRUE) or a present phase, and the entries sent.
    fn refresh(&self, cookie: Option<&Ruv>, upto: &Ruv) -> Result<(bool, usize), Stop> {
        if let Some(since) = cookie.filter(|r| !r.replicas.is_empty()) {
            let pending =
                self.shared
                    .dir
                    .sync_pending(&self.suffix, since, MAX_DELTA as u64 + 1)?;
            if pending.is_some_and(|n| n <= MAX_DELTA as u64) {
                // Housekeeping may trim the changelog between the count
                // and the first page: nothing sent yet, so a present phase
                // still answers this request instead of making the
                // consumer start over.
                if let Some(n) = self.refresh_changes(since, upto)? {
                    return Ok((true, n));
                }
            }
        }
        self.refresh_present(cookie).map(|n| (false, n))
    }

    /// Delete phase: each entry a change since `since` touched, as it is
    /// now, read a page of changes at a time up to `upto` (what the new
    /// cookie will say). An entry is sent once: what is sent is its state
    /// now, which already includes its later changes. None when the
    /// changelog no longer reaches `since` before anything was sent.
    fn refresh_changes(&self, since: &Ruv, upto: &Ruv) -> Result<Option<usize>, Stop> {
        let request = self.search.request();
        let mut done: std::collections::HashSet<[u8; 16]> = std::collections::HashSet::new();
        let mut since = since.clone();
        let mut sent = 0;
        while since.is_behind(upto) {
            let Some(page) = self
                .shared
                .dir
                .changes_for(&self.suffix, &since, PERSIST_BATCH)?
            else {
                if sent == 0 {
                    return Ok(None);
                }
                return Err(Stop::Result(result::result(
                    LdapResultCode::EsyncRefreshRequired,
                    "the changelog was trimmed during the refresh; refresh from the start",
                )));
            };
            if page.is_empty() {
                break;
            }
            for rec in &page {
                since.update(rec.csn);
            }
            for (uuid, (dn, _)) in touched_entries(&page) {
                if !done.insert(uuid) {
                    continue;
                }
                let message = match self.shared.dir.sync_lookup(&self.who, &uuid, &request)? {
                    SyncLookup::Visible(e) => match self.search.prepare(e) {
                        Some((uuid, _, entry)) => {
                            self.entry_message(entry, SyncStateValue::Add, uuid, None)
                        }
                        None => continue,
                    },
                    SyncLookup::Gone(now) => {
                        self.delete_message(now.as_ref().unwrap_or(&dn), uuid, None)
                    }
                };
                self.send_blocking(message)?;
                sent += 1;
            }
        }
        Ok(Some(sent))
    }

    /// Present phase: entries changed since the cookie whole, the others
    /// as UUIDs.
    fn refresh_present(&self, cookie: Option<&Ruv>) -> Result<usize, Stop> {
        let request = self.search.request();
        let mut present: Vec<uuid::Uuid> = Vec::new();
        let mut sent = 0;
        let cancelled = || self.cancelled.load(Ordering::Relaxed);
        let mut pending: Vec<Response> = Vec::new();
        let mut emit = |e: SearchEntry| {
            let Some((uuid, csn, entry)) = self.search.prepare(e) else {
                return;
            };
            let unchanged = cookie.is_some_and(|r| csn.is_some_and(|c| r.covers(c)));
            if unchanged {
                present.push(uuid::Uuid::from_bytes(uuid));
                if present.len() >= ID_SET {
                    pending.push(self.info(LdapIntermediateResponse::SyncInfoIdSet {
                        cookie: None,
                        refresh_deletes: false,
                        syncuuids: std::mem::take(&mut present),
                    }));
                }
            } else {
                pending.push(self.entry_message(entry, SyncStateValue::Add, uuid, None));
                sent += 1;
            }
            for r in pending.drain(..) {
                if self.sink.blocking_send(r).is_err() {
                    self.cancelled.store(true, Ordering::Relaxed);
                }
            }
        };
        let end = self
            .shared
            .dir
            .search(&self.who, &request, &cancelled, &mut emit)?;
        match end {
            SearchEnd::Done { .. } => {}
            SearchEnd::Abandoned => return Err(Stop::Gone),
            SearchEnd::SizeLimit { .. } => {
                return Err(Stop::Result(result::result(
                    LdapResultCode::SizeLimitExceeded,
                    "size limit exceeded before the refresh ended",
                )))
            }
            SearchEnd::TimeLimit { .. } => {
                return Err(Stop::Result(result::result(
                    LdapResultCode::TimeLimitExceeded,
                    "time limit exceeded before the refresh ended",
                )))
            }
            SearchEnd::LookThroughLimit { limit, .. } => {
                return Err(Stop::Result(result::result(
                    LdapResultCode::AdminLimitExceeded,
                    format!("the refresh looked at {limit} entries (lookthrough_limit)"),
                )))
            }
            SearchEnd::Page { .. } => {}
        }
        if !present.is_empty() {
            self.send_blocking(self.info(LdapIntermediateResponse::SyncInfoIdSet {
                cookie: None,
                refresh_deletes: false,
                syncuuids: present,
            }))?;
        }
        Ok(sent)
    }

    /// One persist-phase batch: the entries `changes` touched, the cookie
    /// on the last message. Returns the messages to send.
    fn persist_batch(
        &self,
        changes: &[ChangeRecord],
        cookie: Vec<u8>,
    ) -> Result<Vec<Response>, Stop> {
        let request = self.search.request();
        let mut out: Vec<(Option<LdapSearchResultEntry>, SyncStateValue, [u8; 16], Dn)> =
            Vec::new();
        for (uuid, (dn, added)) in touched_entries(changes) {
            match self.shared.dir.sync_lookup(&self.who, &uuid, &request)? {
                SyncLookup::Visible(e) => {
                    if let Some((uuid, _, entry)) = self.search.prepare(e) {
                        let state = if added {
                            SyncStateValue::Add
                        } else {
                            SyncStateValue::Modify
                        };
                        out.push((Some(entry), state, uuid, dn));
                    }
                }
                SyncLookup::Gone(now) => {
                    // An entry added and removed within the batch was never sent.
                    if !added {
                        out.push((None, SyncStateValue::Delete, uuid, now.unwrap_or(dn)));
                    }
                }
            }
        }
        if out.is_empty() {
            return Ok(vec![
                self.info(LdapIntermediateResponse::SyncInfoNewCookie { cookie })
            ]);
        }
        let last = out.len() - 1;
        Ok(out
            .into_iter()
            .enumerate()
            .map(|(i, (entry, state, uuid, dn))| {
                let cookie = (i == last).then(|| cookie.clone());
                match entry {
                    Some(e) => self.entry_message(e, state, uuid, cookie),
                    None => self.delete_message(&dn, uuid, cookie),
                }
            })
            .collect())
    }
}

/// `syncInfoValue refreshPresent { cookie, refreshDone TRUE }` with the
/// default written out: ldap3_proto (0.9) reads a refreshPresent that has
/// a cookie and no refreshDone as one without a cookie, which would make a
/// ferrodir consumer forget where it is; BER allows the explicit TRUE and
/// OpenLDAP reads it.
fn refresh_present_done(cookie: &[u8]) -> LdapIntermediateResponse {
    fn tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let significant = bytes.get(skip..).unwrap_or_default();
            out.push(0x80 | significant.len() as u8);
            out.extend_from_slice(significant);
        }
        out.extend_from_slice(content);
    }
    let mut inner = Vec::with_capacity(cookie.len() + 8);
    tlv(0x04, cookie, &mut inner);
    tlv(0x01, &[0xff], &mut inner);
    let mut value = Vec::with_capacity(inner.len() + 6);
    tlv(0xa2, &inner, &mut value);
    LdapIntermediateResponse::Raw {
        name: Some(SYNC_INFO.to_string()),
        value: Some(value),
    }
}

/// The Sync Info Message's OID (RFC 4533 §2.5).
const SYNC_INFO: &str = "1.3.6.1.4.1.4203.1.9.1.4";

/// The entries changes touched, in the order of their last change, with
/// their latest DN and whether the first change seen was their add.
fn touched_entries(changes: &[ChangeRecord]) -> Vec<([u8; 16], (Dn, bool))> {
    let mut last: HashMap<[u8; 16], usize> = HashMap::new();
    let mut first_is_add: HashMap<[u8; 16], bool> = HashMap::new();
    for (i, rec) in changes.iter().enumerate() {
        last.insert(rec.uuid, i);
        first_is_add
            .entry(rec.uuid)
            .or_insert(matches!(rec.change, Change::Add { .. }));
    }
    let mut order: Vec<(usize, [u8; 16])> = last.into_iter().map(|(u, i)| (i, u)).collect();
    order.sort_unstable();
    order
        .into_iter()
        .filter_map(|(i, uuid)| {
            // The DN of the entry's last change: where a delete found it.
            let dn = changes.get(i)?.dn.clone();
            Some((
                uuid,
                (dn, first_is_add.get(&uuid).copied().unwrap_or(false)),
            ))
        })
        .collect()
}

async fn finish(sink: &Sink, msgid: i32, r: LdapResult, ctrl: Vec<LdapControl>) -> Outcome {
    let outcome = Outcome::of(&r);
    let mut m = msg(msgid, LdapOp::SearchResultDone(r));
    m.ctrl = ctrl;
    let _ = sink.send(m.into()).await;
    outcome
}

/// A blocking task's result, its failure (a panic) as a Stop.
fn joined<T>(r: Result<Result<T, Stop>, tokio::task::JoinError>) -> Result<T, Stop> {
    r.unwrap_or_else(|e| Err(failed_task(e)))
}

fn failed_task(e: tokio::task::JoinError) -> Stop {
    Stop::Result(result::result(
        LdapResultCode::Other,
        format!("synchronisation failed: {e}"),
    ))
}

/// Ends a synchronisation that stopped: no answer when abandoned.
async fn stopped(sink: &Sink, msgid: i32, stop: Stop) -> Outcome {
    match stop {
        Stop::Gone => abandoned(),
        Stop::Result(r) => finish(sink, msgid, r, Vec::new()).await,
    }
}

fn abandoned() -> Outcome {
    Outcome {
        code: -1,
        entries: 0,
    }
}

/// Runs a search that carries the Sync Request control.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    shared: Arc<Shared>,
    who: Identity,
    msgid: i32,
    req: LdapSearchRequest,
    base: Dn,
    scope: Scope,
    sync: SyncRequest,
    sink: Sink,
    cancelled: Arc<AtomicBool>,
) -> Outcome {
    let cookie = match sync.cookie.as_deref().filter(|c| !c.is_empty()) {
        None => SyncCookie::default(),
        Some(bytes) => match SyncCookie::parse(bytes) {
            Ok(c) => c,
            Err(e) => {
                let r = result::result(LdapResultCode::ProtocolError, e.to_string());
                return finish(&sink, msgid, r, Vec::new()).await;
            }
        },
    };
    // Subscribed before the RUV is read: no commit after it goes unnoticed.
    let mut commits = shared.dir.subscribe();
    commits.borrow_and_update();
    let start = match shared.dir.sync_start(&base) {
        Ok(s) => s,
        Err(e) => return finish(&sink, msgid, result::from_error(&e), Vec::new()).await,
    };
    let _slot = if sync.persist {
        let anonymous = who.is_anonymous();
        match PersistentSlot::take(anonymous) {
            Some(slot) => Some(slot),
            None => {
                let (max, whose) = if anonymous {
                    (MAX_ANONYMOUS_PERSISTENT, "anonymous ")
                } else {
                    (MAX_PERSISTENT, "")
                };
                let r = result::result(
                    LdapResultCode::Busy,
                    format!("{max} {whose}persistent synchronisations are already open"),
                );
                return finish(&sink, msgid, r, Vec::new()).await;
            }
        }
    } else {
        None
    };
    let session = Arc::new(Session {
        search: SyncSearch::new(&req, base, scope, &start),
        shared: shared.clone(),
        who,
        msgid,
        suffix: start.suffix.clone(),
        rid: cookie.rid,
        sid: start.sid,
        sink: sink.clone(),
        cancelled: cancelled.clone(),
    });
    let since = if sync.reload_hint {
        None
    } else {
        cookie.to_ruv()
    };
    let mut sent_ruv = start.ruv.clone();
    let follower = FollowerEntry::register(&session.who, &start.suffix, sync.persist);
    let refresh = {
        let session = session.clone();
        tokio::task::spawn_blocking(move || {
            let refreshed = session.refresh(since.as_ref(), &start.ruv)?;
            let cookie = session.cookie(&start.ruv)?;
            Ok::<_, Stop>((refreshed, cookie))
        })
        .await
    };
    let ((deletes, entries), new_cookie) = match joined(refresh) {
        Ok(done) => done,
        Err(stop) => return stopped(&sink, msgid, stop).await,
    };
    if !sync.persist {
        let done = LdapControl::SyncDone {
            cookie: Some(new_cookie),
            refresh_deletes: deletes,
        };
        let mut outcome = finish(&sink, msgid, result::success(), vec![done]).await;
        outcome.entries = entries;
        return outcome;
    }
    let end_of_refresh = if deletes {
        LdapIntermediateResponse::SyncInfoRefreshDelete {
            cookie: Some(new_cookie),
            done: true,
        }
    } else {
        refresh_present_done(&new_cookie)
    };
    if sink.send(session.info(end_of_refresh)).await.is_err() {
        return abandoned();
    }
    follower.update(|f| {
        f.persisting = true;
        f.sent = sent_ruv.clone();
        f.entries += entries as u64;
    });
    loop {
        if session.gone() {
            return abandoned();
        }
        let woke = tokio::time::timeout(WAKE, commits.changed()).await;
        if matches!(woke, Ok(Err(_))) {
            // The directory is shutting down.
            let r = result::result(LdapResultCode::Unavailable, "the server is shutting down");
            return finish(&sink, msgid, r, Vec::new()).await;
        }
        loop {
            let batch = {
                let session = session.clone();
                let since = sent_ruv.clone();
                tokio::task::spawn_blocking(move || {
                    let changes =
                        session
                            .shared
                            .dir
                            .changes_for(&session.suffix, &since, PERSIST_BATCH)?;
                    let Some(changes) = changes else {
                        return Ok(None);
                    };
                    if changes.is_empty() {
                        return Ok(Some((Vec::new(), Vec::new())));
                    }
                    let mut after = since;
                    for c in &changes {
                        after.update(c.csn);
                    }
                    let cookie = session.cookie(&after)?;
                    let messages = session.persist_batch(&changes, cookie)?;
                    Ok::<_, Stop>(Some((
                        messages,
                        changes.into_iter().map(|c| c.csn).collect(),
                    )))
                })
                .await
            };
            let (messages, csns): (Vec<Response>, Vec<Csn>) = match batch {
                Ok(Ok(Some(b))) => b,
                Ok(Ok(None)) => {
                    let r = result::result(
                        LdapResultCode::EsyncRefreshRequired,
                        "the changelog no longer reaches back to what this consumer holds; \
                         refresh from the start",
                    );
                    return finish(&sink, msgid, r, Vec::new()).await;
                }
                Ok(Err(stop)) => return stopped(&sink, msgid, stop).await,
                Err(e) => return stopped(&sink, msgid, failed_task(e)).await,
            };
            if csns.is_empty() {
                break;
            }
            let sent = messages.len() as u64;
            for m in messages {
                if session.gone() || sink.send(m).await.is_err() {
                    return abandoned();
                }
            }
            for c in csns {
                sent_ruv.update(c);
            }
            follower.update(|f| {
                f.sent = sent_ruv.clone();
                f.entries += sent;
            });
        }
    }
}

/// One of the [`MAX_PERSISTENT`] places (and of the anonymous ones for
/// an anonymous client), released when dropped.
struct PersistentSlot {
    anonymous: bool,
}

/// Takes one of `max` places counted by `counter`.
fn take_place(counter: &AtomicUsize, max: usize) -> bool {
    let mut now = counter.load(Ordering::Relaxed);
    loop {
        if now >= max {
            return false;
        }
        match counter.compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(actual) => now = actual,
        }
    }
}

impl PersistentSlot {
    fn take(anonymous: bool) -> Option<PersistentSlot> {
        if anonymous && !take_place(&ANONYMOUS_PERSISTENT, MAX_ANONYMOUS_PERSISTENT) {
            return None;
        }
        if !take_place(&PERSISTENT, MAX_PERSISTENT) {
            if anonymous {
                ANONYMOUS_PERSISTENT.fetch_sub(1, Ordering::AcqRel);
            }
            return None;
        }
        Some(PersistentSlot { anonymous })
    }
}

impl Drop for PersistentSlot {
    fn drop(&mut self) {
        PERSISTENT.fetch_sub(1, Ordering::AcqRel);
        if self.anonymous {
            ANONYMOUS_PERSISTENT.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_clients_get_a_few_of_the_persistent_places() {
        let anonymous: Vec<PersistentSlot> = (0..MAX_ANONYMOUS_PERSISTENT)
            .map(|_| PersistentSlot::take(true).expect("a place"))
            .collect();
        assert!(
            PersistentSlot::take(true).is_none(),
            "no more anonymous places"
        );
        let bound = PersistentSlot::take(false);
        assert!(bound.is_some(), "bound consumers still get one");
        drop(anonymous);
        assert!(PersistentSlot::take(true).is_some(), "places come back");
    }

    #[test]
    fn refresh_present_keeps_its_cookie_through_ldap3_proto() {
        for len in [10usize, 200, 70_000] {
            let cookie = vec![b'c'; len];
            let info = refresh_present_done(&cookie);
            let m = msg(7, LdapOp::IntermediateResponse(info));
            let mut buf = bytes::BytesMut::new();
            let mut codec = ldap3_proto::LdapCodec::new(Some(1 << 20), None);
            tokio_util::codec::Encoder::encode(&mut codec, m, &mut buf).unwrap();
            let back = tokio_util::codec::Decoder::decode(&mut codec, &mut buf)
                .unwrap()
                .unwrap();
            match back.op {
                LdapOp::IntermediateResponse(
                    LdapIntermediateResponse::SyncInfoRefreshPresent {
                        cookie: Some(c),
                        done: true,
                    },
                ) => assert_eq!(c, cookie),
                other => panic!("{len}: {other:?}"),
            }
        }
    }
}
