//! The backup and restore commands end to end: a backup taken while the
//! server serves, restored into a new data directory, is served by a new
//! server with the same entries (entryUUIDs included).

mod common;

use common::*;

fn all_entries(url: &str) -> String {
    let o = search_root(
        url,
        SUFFIX,
        &["(objectClass=*)", "*", "entryUUID", "entryCSN"],
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    let mut blocks: Vec<String> = out(&o)
        .split("\n\n")
        .map(|b| b.trim().to_string())
        .collect();
    blocks.retain(|b| !b.is_empty());
    blocks.sort();
    blocks.join("\n\n")
}

#[test]
fn backup_while_serving_then_restore_and_serve() {
    let s = Server::with_sample();
    let before = all_entries(&s.url());
    assert!(before.contains("uid=alice"), "sample loaded: {before}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("backup");
    let o = ferrodir(
        &[
            "backup",
            "--data-dir",
            s.data_dir().to_str().unwrap(),
            backup.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "backup while serving: {}", err(&o));

    // The server keeps running and keeps its data; restore refuses its directory.
    let o = ferrodir(
        &[
            "restore",
            "--data-dir",
            s.data_dir().to_str().unwrap(),
            "--force",
            backup.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        !o.status.success(),
        "restore over a running server must be refused"
    );
    assert!(err(&o).contains("running"), "{}", err(&o));

    let mut restored = Server::unstarted(&[]);
    let o = ferrodir(
        &[
            "restore",
            "--data-dir",
            restored.data_dir().to_str().unwrap(),
            backup.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "restore: {}", err(&o));
    // Without FERRODIR_ROOT_PASSWORD: the password must come from the backup.
    restored.root_password_env = false;
    restored.launch();
    let after = all_entries(&restored.url());
    assert_eq!(
        before, after,
        "the restored instance serves the same entries"
    );
    // The root password came back with the data: the same credentials work.
    assert_eq!(bind_code(&restored.url(), ROOT_DN, &root_password()), 0);
}
