//! The syncrepl consumers in `repl status`: one short block per
//! `cn=<name>,cn=syncrepl,cn=config` entry (provider, mode, state, the
//! cookie's CSNs, last update, entries received).

use super::show_time;
use anyhow::Result;
use ferrodir::repl::core::syncrepl_config;
use ferrodir::repl::session::client::{Client, Entry};

pub(super) async fn consumers(client: &mut Client) -> Result<Vec<Entry>> {
    let found = client
        .search(
            ferrodir::directory::repl::syncrepl::SYNCREPL_DN,
            ("objectClass", Some("ferrodirSyncreplConsumer")),
            &[
                "cn",
                "olcSyncrepl",
                "ferrodirSyncState",
                "ferrodirSyncCookie",
                "ferrodirSyncLastUpdate",
                "ferrodirSyncEntriesReceived",
            ],
        )
        .await;
    // An older server has no cn=syncrepl container: no consumers.
    Ok(found.unwrap_or_default())
}

/// The CSNs of an OpenLDAP cookie (`rid=001,csn=A;B`), else the cookie.
fn cookie_csns(cookie: &str) -> String {
    cookie
        .split(',')
        .find_map(|p| p.strip_prefix("csn="))
        .map(|c| c.replace(';', " "))
        .unwrap_or_else(|| cookie.to_string())
}

pub(super) fn render(e: &Entry, out: &mut String) {
    let name = e.first("cn").unwrap_or_else(|| e.dn.clone());
    let parsed = e
        .first("olcSyncrepl")
        .and_then(|v| syncrepl_config::parse(&v).ok());
    let (provider, mode) = parsed
        .map(|c| (c.provider, c.mode.name().to_string()))
        .unwrap_or_default();
    out.push_str(&format!("syncrepl consumer {name}\n"));
    for (k, v) in [
        ("provider", provider),
        ("mode", mode),
        (
            "state",
            e.first("ferrodirSyncState")
                .unwrap_or_else(|| "starting".into()),
        ),
        (
            "cookie CSNs",
            e.first("ferrodirSyncCookie")
                .map(|c| cookie_csns(&c))
                .unwrap_or_else(|| "none yet".into()),
        ),
        ("last update", show_time(e.first("ferrodirSyncLastUpdate"))),
        (
            "entries received",
            e.first("ferrodirSyncEntriesReceived")
                .unwrap_or_else(|| "0".into()),
        ),
    ] {
        out.push_str(&format!("  {k:<19} {v}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_csns_are_listed() {
        assert_eq!(
            cookie_csns("rid=001,csn=20240101000000.000001Z#000000#000#000000"),
            "20240101000000.000001Z#000000#000#000000"
        );
        assert_eq!(cookie_csns("opaque"), "opaque");
    }
}
