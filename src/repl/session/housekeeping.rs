//! The periodic housekeeping task: tombstone purge and changelog trimming
//! for every data suffix, at a pace set by the shortest purge delay, and
//! the steps of replica ID retirements.

use crate::directory::Directory;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub fn spawn(dir: Arc<Directory>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = tokio::time::Instant::now();
        loop {
            // The pace follows the configuration: a shorter purge delay set
            // over LDAP takes effect within a second.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            // Retirements step every second while one is unfinished: they
            // wait on consumers, not on the purge delay.
            if let Err(e) = dir.step_retirements().await {
                tracing::warn!("replica ID retirement step failed: {e}");
            }
            if let Err(e) = dir.save_agreement_history().await {
                tracing::warn!("saving the agreements' history failed: {e}");
            }
            if last.elapsed() < dir.housekeeping_interval() {
                continue;
            }
            last = tokio::time::Instant::now();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            match dir.housekeep(now).await {
                Ok(reports) => {
                    for (suffix, r) in reports {
                        if r.tombstones_purged > 0 || r.changes_trimmed > 0 || r.states_purged > 0 {
                            tracing::info!(
                                suffix = %suffix,
                                "housekeeping: purged {} tombstones, trimmed {} changelog records, forgot old deleted values of {} entries",
                                r.tombstones_purged,
                                r.changes_trimmed,
                                r.states_purged
                            );
                        }
                    }
                }
                Err(e) => tracing::warn!("housekeeping failed: {e}"),
            }
        }
    })
}
