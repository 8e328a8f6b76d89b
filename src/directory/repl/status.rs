//! The live status of agreements, served as attributes of their entries
//! (389-ds names) and summarised for `repl status`.

use super::*;

/// Live status of an agreement, served as attributes of its entry.
#[derive(Debug, Clone, Default)]
pub struct AgreementStatus {
    pub last_update_start: Option<u64>,
    pub last_update_end: Option<u64>,
    pub last_update_status: String,
    pub update_in_progress: bool,
    pub changes_sent: u64,
    pub last_init_start: Option<u64>,
    pub last_init_end: Option<u64>,
    pub last_init_status: String,
    /// Entries sent / total during a running init.
    pub init_progress: Option<(u64, u64)>,
    /// Seconds between the newest change held and the consumer's newest.
    pub lag_seconds: Option<u64>,
    /// Changes the consumer still lacks (last known).
    pub behind: u64,
    /// The consumer's RUV as last acknowledged: the changelog keeps what it lacks.
    pub consumer_ruv: Option<Ruv>,
    /// Retired replica IDs the consumer reported finished (None: not
    /// reported since this server started, or an older consumer).
    pub consumer_finished: Option<Vec<u16>>,
}

pub(crate) type StatusMap = HashMap<String, AgreementStatus>;

/// Changes counted at most when a status is read (the count says "at
/// least" beyond).
pub const PENDING_CAP: u64 = 100_000;

/// What survives a restart of an agreement's status: the last update and
/// init with their outcome (saved within a second of changing).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct History {
    last_update_start: Option<u64>,
    last_update_end: Option<u64>,
    last_update_status: String,
    last_init_start: Option<u64>,
    last_init_end: Option<u64>,
    last_init_status: String,
}

impl History {
    fn of(s: &AgreementStatus) -> History {
        History {
            last_update_start: s.last_update_start,
            last_update_end: s.last_update_end,
            last_update_status: s.last_update_status.clone(),
            last_init_start: s.last_init_start,
            last_init_end: s.last_init_end,
            last_init_status: s.last_init_status.clone(),
        }
    }

    fn restore(self, s: &mut AgreementStatus) {
        s.last_update_start = self.last_update_start;
        s.last_update_end = self.last_update_end;
        s.last_update_status = self.last_update_status;
        s.last_init_start = self.last_init_start;
        s.last_init_end = self.last_init_end;
        s.last_init_status = self.last_init_status;
    }
}

/// A consumer's view of its supplier for one suffix: what `repl status`
/// shows on a server that only receives.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsumerSide {
    /// The supplier's URL as it announced itself.
    pub supplier: String,
    /// When the last session started (seconds since the epoch).
    pub last_session: Option<u64>,
    /// When the last change was received, and the CSN time it was made at.
    pub last_change_received: Option<u64>,
    pub last_change_made: Option<u64>,
    /// Changes received since this server started.
    #[serde(skip)]
    pub changes_received: u64,
}

fn consumer_key(suffix_norm: &str) -> String {
    format!("consumer-history:{suffix_norm}")
}

fn history_key(agreement_norm: &str) -> String {
    format!("agreement-history:{agreement_norm}")
}

impl Core {
    /// An agreement's status as of now: the session's record, with the
    /// changes pending and the lag computed from this server's RUV and the
    /// consumer's last acknowledged one, whether or not a session runs.
    /// Lag: seconds since the oldest change the consumer lacks was made.
    pub(crate) fn agreement_status_now(
        &self,
        txn: &dyn StoreRead,
        agreement: &Dn,
        suffix: &Dn,
    ) -> AgreementStatus {
        let norm = self.norm_dn(agreement);
        let mut s = self
            .status
            .lock()
            .ok()
            .and_then(|m| m.get(&norm).cloned())
            .unwrap_or_default();
        let consumer = s.consumer_ruv.clone().or_else(|| {
            txn.meta(&crate::directory::trim::consumer_ruv_key(&norm))
                .ok()
                .flatten()
                .and_then(|b| Ruv::decode(&b).ok())
        });
        let key = self.dn_key(suffix);
        if let Some(consumer) = consumer {
            if let Ok(Some((pending, oldest))) =
                self.pending_changes(txn, &key, &consumer, PENDING_CAP)
            {
                s.behind = pending;
                let now = u64::from(time::now_secs());
                s.lag_seconds = Some(oldest.map_or(0, |o| now.saturating_sub(u64::from(o.time))));
            }
        }
        s
    }
}

/// One agreement's figures for monitoring (cn=monitor, metrics).
#[derive(Debug, Clone)]
pub struct AgreementReport {
    pub name: String,
    pub dn: Dn,
    pub suffix: Dn,
    pub consumer: String,
    pub enabled: bool,
    pub state: String,
    pub lag_seconds: Option<u64>,
    pub pending: u64,
    pub changes_sent: u64,
}

impl Directory {
    /// Every agreement with its status as of now (one read snapshot).
    pub fn replication_report(&self) -> DirResult<Vec<AgreementReport>> {
        let txn = self.core.store.read()?;
        Ok(self
            .agreements()
            .into_iter()
            .map(|a| {
                let s = self.core.agreement_status_now(&txn, &a.dn, &a.suffix);
                let name =
                    a.dn.rdn()
                        .and_then(|r| r.avas.first())
                        .map(|ava| String::from_utf8_lossy(&ava.value).to_string())
                        .unwrap_or_else(|| a.dn.to_string());
                AgreementReport {
                    name,
                    consumer: format!("{}:{}", a.host, a.port),
                    enabled: a.enabled,
                    state: if a.enabled {
                        state_text(&s)
                    } else {
                        "disabled".into()
                    },
                    lag_seconds: s.lag_seconds,
                    pending: s.behind,
                    changes_sent: s.changes_sent,
                    suffix: a.suffix,
                    dn: a.dn,
                }
            })
            .collect())
    }

    /// Puts the saved histories of the agreements back (at start).
    pub fn load_agreement_history(&self) -> DirResult<()> {
        let txn = self.core.store.read()?;
        let mut saved = Vec::new();
        for a in self.agreements() {
            let norm = self.core.norm_dn(&a.dn);
            if let Some(b) = txn.meta(&history_key(&norm))? {
                if let Ok(h) = serde_json::from_slice::<History>(&b) {
                    saved.push((norm, h));
                }
            }
        }
        let mut sides = Vec::new();
        for r in self.replicas() {
            let norm = self.core.norm_dn(&r.suffix);
            if let Some(b) = txn.meta(&consumer_key(&norm))? {
                if let Ok(c) = serde_json::from_slice::<ConsumerSide>(&b) {
                    sides.push((norm, c));
                }
            }
        }
        drop(txn);
        if let (Ok(mut m), Ok(mut cache)) = (
            self.core.consumer_side.lock(),
            self.core.saved_consumer_side.lock(),
        ) {
            for (norm, c) in sides {
                m.entry(norm.clone()).or_insert_with(|| c.clone());
                cache.insert(norm, c);
            }
        }
        if let (Ok(mut m), Ok(mut cache)) =
            (self.core.status.lock(), self.core.saved_history.lock())
        {
            for (norm, h) in saved {
                let s = m.entry(norm.clone()).or_default();
                if s.last_update_status.is_empty() && s.last_init_status.is_empty() {
                    h.clone().restore(s);
                }
                cache.insert(norm, h);
            }
        }
        Ok(())
    }

    /// A supplier started a session for `suffix`.
    pub fn note_session(&self, suffix: &Dn, supplier_url: &str) {
        self.note_supplier_url(suffix, supplier_url);
        let norm = self.core.norm_dn(suffix);
        if let Ok(mut m) = self.core.consumer_side.lock() {
            let c = m.entry(norm).or_default();
            if !supplier_url.is_empty() {
                c.supplier = supplier_url.to_string();
            }
            c.last_session = Some(u64::from(time::now_secs()));
        }
    }

    /// A supplier's changes up to `newest` were applied for `suffix`.
    pub fn note_changes_received(&self, suffix: &Dn, count: usize, newest: Option<Csn>) {
        let norm = self.core.norm_dn(suffix);
        if let Ok(mut m) = self.core.consumer_side.lock() {
            let c = m.entry(norm).or_default();
            c.changes_received += count as u64;
            if let Some(csn) = newest {
                c.last_change_received = Some(u64::from(time::now_secs()));
                c.last_change_made = Some(u64::from(csn.time));
            }
        }
    }

    /// The consumer side of `suffix`, when a supplier ever sent to it.
    pub fn consumer_side(&self, suffix: &Dn) -> Option<ConsumerSide> {
        let norm = self.core.norm_dn(suffix);
        self.core
            .consumer_side
            .lock()
            .ok()
            .and_then(|m| m.get(&norm).cloned())
    }

    /// Saves the histories that changed since the last save (one small
    /// write, none when nothing changed).
    pub async fn save_agreement_history(&self) -> DirResult<()> {
        let mut items = Vec::new();
        if let (Ok(m), Ok(mut cache)) = (
            self.core.consumer_side.lock(),
            self.core.saved_consumer_side.lock(),
        ) {
            for (norm, c) in m.iter() {
                let mut kept = c.clone();
                kept.changes_received = 0;
                if cache.get(norm) != Some(&kept) {
                    if let Ok(bytes) = serde_json::to_vec(&kept) {
                        items.push((consumer_key(norm), bytes));
                    }
                    cache.insert(norm.clone(), kept);
                }
            }
        }
        {
            let (Ok(m), Ok(mut cache)) = (self.core.status.lock(), self.core.saved_history.lock())
            else {
                return Ok(());
            };
            for (norm, s) in m.iter() {
                let h = History::of(s);
                if cache.get(norm) != Some(&h) {
                    if let Ok(bytes) = serde_json::to_vec(&h) {
                        items.push((history_key(norm), bytes));
                    }
                    // The consumer's acknowledged RUV goes with it: after a
                    // restart the pending changes are known before the
                    // consumer is reached again.
                    if let Some(ruv) = &s.consumer_ruv {
                        items.push((crate::directory::trim::consumer_ruv_key(norm), ruv.encode()));
                    }
                    cache.insert(norm.clone(), h);
                }
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        self.writer
            .submit_work(crate::directory::writer::Work::PutMeta { items })
            .await
    }
}

impl Directory {
    pub fn agreement_status(&self, agreement: &Dn) -> AgreementStatus {
        let norm = self.core.norm_dn(agreement);
        self.core
            .status
            .lock()
            .ok()
            .and_then(|m| m.get(&norm).cloned())
            .unwrap_or_default()
    }

    pub fn update_agreement_status(&self, agreement: &Dn, f: impl FnOnce(&mut AgreementStatus)) {
        let norm = self.core.norm_dn(agreement);
        if let Ok(mut m) = self.core.status.lock() {
            f(m.entry(norm).or_default());
        }
    }
}

/// Status attributes of an agreement entry, as 389-ds names them.
pub(crate) fn status_attributes(s: &AgreementStatus) -> Vec<(String, Vec<Vec<u8>>)> {
    let t = |v: Option<u64>| {
        v.map(time::generalized_time)
            .unwrap_or_else(|| "19700101000000Z".into())
    };
    let mut out = vec![
        (
            "nsds5replicaLastUpdateStart".to_string(),
            vec![t(s.last_update_start).into_bytes()],
        ),
        (
            "nsds5replicaLastUpdateEnd".to_string(),
            vec![t(s.last_update_end).into_bytes()],
        ),
        (
            "nsds5replicaUpdateInProgress".to_string(),
            vec![if s.update_in_progress {
                b"TRUE".to_vec()
            } else {
                b"FALSE".to_vec()
            }],
        ),
        (
            "nsds5replicaChangesSentSinceStartup".to_string(),
            vec![s.changes_sent.to_string().into_bytes()],
        ),
        (
            "nsds5replicaLastInitStart".to_string(),
            vec![t(s.last_init_start).into_bytes()],
        ),
        (
            "nsds5replicaLastInitEnd".to_string(),
            vec![t(s.last_init_end).into_bytes()],
        ),
    ];
    if !s.last_update_status.is_empty() {
        out.push((
            "nsds5replicaLastUpdateStatus".into(),
            vec![s.last_update_status.clone().into_bytes()],
        ));
    }
    if !s.last_init_status.is_empty() {
        out.push((
            "nsds5replicaLastInitStatus".into(),
            vec![s.last_init_status.clone().into_bytes()],
        ));
    }
    if let Some(lag) = s.lag_seconds {
        out.push((
            "ferrodirReplicationLag".into(),
            vec![lag.to_string().into_bytes()],
        ));
    }
    out.push((
        "ferrodirReplicationState".into(),
        vec![state_text(s).into_bytes()],
    ));
    out.push((
        "ferrodirReplicationBehind".into(),
        vec![s.behind.to_string().into_bytes()],
    ));
    if let Some((done, total)) = s.init_progress {
        out.push((
            "ferrodirInitProgress".into(),
            vec![format!("{done}/{total}").into_bytes()],
        ));
    }
    out
}

/// One-line state of an agreement: "in sync", "behind N changes",
/// "initialising P%", "error: <reason>", "starting".
pub fn state_text(s: &AgreementStatus) -> String {
    if let Some((done, total)) = s.init_progress {
        let pct = done
            .saturating_mul(100)
            .checked_div(total)
            .map_or(100, |p| p.min(100));
        return format!("initialising {pct}%");
    }
    let st = s.last_update_status.as_str();
    if st.is_empty() {
        return "starting".into();
    }
    if let Some(rest) = st.strip_prefix("Error (0) ") {
        if rest.starts_with("agreement disabled") {
            return "disabled".into();
        }
        if s.behind == 0 && !s.update_in_progress {
            return "in sync".into();
        }
        return format!("behind {} changes", s.behind.max(1));
    }
    let reason = st
        .strip_prefix("Error (")
        .and_then(|r| r.split_once(") "))
        .map(|(_, m)| m)
        .unwrap_or(st);
    format!("error: {reason}")
}
