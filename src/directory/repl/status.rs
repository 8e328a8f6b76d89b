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
