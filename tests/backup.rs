//! Online backup and restore at the library level: a backup taken while the
//! directory is open and being written is consistent and restores into a
//! directory that opens with the same entries; restore refuses a running
//! server's directory and a non-empty one unless forced.

use ferrodir::directory::{Directory, DirectoryConfig, Identity, Scope, SearchRequest, WriteOp};
use ferrodir::model::Dn;
use ferrodir::schema::Schema;
use ferrodir::store::backup::{self, BackupError, BackupInfo, MANIFEST_FILE};
use ferrodir::store::{Store, StoreOptions, StoreRead};
use ldap3_proto::proto::LdapFilter;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

const SUFFIX: &str = "dc=example,dc=com";

fn root() -> Identity {
    Identity {
        dn: Some(Dn::parse("cn=Directory Manager").unwrap()),
        norm: "cn=directory manager".into(),
        root: true,
    }
}

/// Opens a directory the way `ferrodir serve` does, recording the suffix.
fn open(path: &Path) -> Directory {
    let store = Store::open(path, &StoreOptions::default()).unwrap();
    let mut w = store.write().unwrap();
    w.put_meta("suffixes", SUFFIX.as_bytes()).unwrap();
    w.commit().unwrap();
    let cfg = DirectoryConfig {
        suffixes: vec![Dn::parse(SUFFIX).unwrap()],
        ..DirectoryConfig::default()
    };
    Directory::open(store, Arc::new(Schema::builtin().unwrap()), cfg).unwrap()
}

fn add(dir: &Directory, dn: &str, attrs: &[(&str, &[&str])]) {
    let op = WriteOp::Add {
        dn: Dn::parse(dn).unwrap(),
        attrs: attrs
            .iter()
            .map(|(n, vs)| {
                (
                    n.to_string(),
                    vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
                )
            })
            .collect(),
    };
    dir.write_blocking(&root(), op)
        .unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

fn add_user(dir: &Directory, uid: &str) {
    add(
        dir,
        &format!("uid={uid},ou=People,{SUFFIX}"),
        &[
            ("objectClass", &["top", "person", "inetOrgPerson"]),
            ("uid", &[uid]),
            ("cn", &[&format!("User {uid}")]),
            ("sn", &["Test"]),
        ],
    );
}

/// Every entry under the suffix: DN -> its cn values.
fn snapshot(dir: &Directory) -> BTreeMap<String, Vec<Vec<u8>>> {
    let filter = LdapFilter::Present("objectClass".into());
    let attrs = vec!["cn".to_string()];
    let req = SearchRequest {
        base: Dn::parse(SUFFIX).unwrap(),
        scope: Scope::Sub,
        filter: &filter,
        attrs: &attrs,
        types_only: false,
        size_limit: 0,
        time_limit: 0,
        page: None,
        lookthrough_limit: 0,
    };
    let mut out = BTreeMap::new();
    dir.search(&root(), &req, &|| false, &mut |e| {
        let cn = e
            .attrs
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("cn"))
            .map(|(_, v)| v)
            .unwrap_or_default();
        out.insert(e.dn, cn);
    })
    .unwrap();
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn backup_while_writing_then_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = Arc::new(open(&data));
    add(
        &dir,
        SUFFIX,
        &[("objectClass", &["top", "domain"]), ("dc", &["example"])],
    );
    add(
        &dir,
        &format!("ou=People,{SUFFIX}"),
        &[
            ("objectClass", &["top", "organizationalUnit"]),
            ("ou", &["People"]),
        ],
    );
    for i in 0..50 {
        add_user(&dir, &format!("u{i}"));
    }
    let tls = data.join("tls");
    std::fs::create_dir(&tls).unwrap();
    std::fs::write(tls.join("server.key"), b"-----BEGIN PRIVATE KEY-----\n").unwrap();
    std::fs::set_permissions(
        tls.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(tls.join("server.crt"), b"-----BEGIN CERTIFICATE-----\n").unwrap();
    std::fs::set_permissions(
        tls.join("server.crt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let before = snapshot(&dir);
    assert_eq!(before.len(), 52);

    // Back up while another thread keeps writing: the server-running case.
    let writer = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            for i in 50..150 {
                add_user(&dir, &format!("u{i}"));
            }
        })
    };
    let out = tmp.path().join("backup");
    let info = backup::backup_store(dir.store(), &out).unwrap();
    writer.join().unwrap();
    let after = snapshot(&dir);
    assert_eq!(after.len(), 152);

    let stored = |d: &Directory| d.store().read().unwrap().entry_count().unwrap();
    assert!(
        info.entries > 52 && info.entries <= stored(&dir),
        "{info:?}"
    );
    assert_eq!(info.suffixes, vec![SUFFIX.to_string()]);
    assert!(info.tls && info.instance_key, "{info:?}");
    assert_eq!(backup::read_manifest(&out).unwrap(), info);
    assert!(out.join("data.mdb").is_file());
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("data.mdb")), 0o600);
    assert_eq!(mode(&out.join("instance.key")), 0o600);
    assert_eq!(mode(&out.join("tls/server.key")), 0o600);
    assert_eq!(mode(&out.join("tls/server.crt")), 0o644);

    // A second backup into the same place is refused.
    assert!(matches!(
        backup::backup_store(dir.store(), &out),
        Err(BackupError::OutputNotEmpty(_))
    ));

    // The running directory cannot be restored over, even with force.
    assert!(matches!(
        backup::restore(&out, &data, true),
        Err(BackupError::Locked(_))
    ));
    assert_eq!(snapshot(&dir).len(), 152);

    // Restore into a new directory and open it (a different path: allowed).
    let restored = tmp.path().join("restored");
    let rinfo = backup::restore(&out, &restored, false).unwrap();
    assert_eq!(rinfo, info);
    assert_eq!(
        std::fs::read(restored.join("instance.key")).unwrap(),
        std::fs::read(data.join("instance.key")).unwrap()
    );
    assert_eq!(mode(&restored.join("tls/server.key")), 0o600);
    assert_eq!(
        std::fs::read(restored.join("tls/server.crt")).unwrap(),
        b"-----BEGIN CERTIFICATE-----\n"
    );
    // Nothing of the staging directories is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Not empty now: refused without force, replaced with it.
    assert!(matches!(
        backup::restore(&out, &restored, false),
        Err(BackupError::DataDirNotEmpty(_))
    ));
    std::fs::write(restored.join("stray"), b"x").unwrap();
    backup::restore(&out, &restored, true).unwrap();
    assert!(!restored.join("stray").exists());

    let copy = open(&restored);
    let got = snapshot(&copy);
    // The manifest counts every stored entry (cn=config ones too).
    assert_eq!(
        copy.store().read().unwrap().entry_count().unwrap(),
        info.entries
    );
    assert!(got.len() >= before.len() && got.len() <= after.len());
    // Every entry written before the backup is there with its values, and
    // everything in the copy was in the directory when it was taken.
    for (dn, cn) in &before {
        assert_eq!(got.get(dn), Some(cn), "{dn}");
    }
    for (dn, cn) in &got {
        assert_eq!(after.get(dn), Some(cn), "{dn}");
    }
    // The restored directory is a working one.
    add_user(&copy, "after-restore");
    assert_eq!(snapshot(&copy).len(), got.len() + 1);
    // And it is held like any open data directory.
    assert!(matches!(
        backup::restore(&out, &restored, true),
        Err(BackupError::Locked(_))
    ));
}

#[test]
fn restore_rejects_bad_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    // Not a backup at all.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        backup::restore(&empty, &target, false),
        Err(BackupError::NotABackup(_))
    ));
    // A manifest from a newer ferrodir.
    let newer = tmp.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    let info = BackupInfo {
        backup_format: 99,
        store_format: ferrodir::store::FORMAT_VERSION,
        created: "2020-01-01T00:00:00Z".into(),
        ferrodir_version: "9.9.9".into(),
        entries: 0,
        suffixes: Vec::new(),
        data_bytes: 0,
        instance_key: false,
        tls: false,
    };
    std::fs::write(newer.join(MANIFEST_FILE), toml_of(&info)).unwrap();
    assert!(matches!(
        backup::restore(&newer, &target, false),
        Err(BackupError::BackupFormat { found: 99 })
    ));
    // A manifest whose data file is missing.
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    let info = BackupInfo {
        backup_format: backup::BACKUP_FORMAT,
        ..info
    };
    std::fs::write(broken.join(MANIFEST_FILE), toml_of(&info)).unwrap();
    assert!(matches!(
        backup::restore(&broken, &target, false),
        Err(BackupError::Mismatch(_))
    ));
    // Nothing was created for any of them.
    assert!(!target.exists());
    // Backing up something that is not a data directory is refused, and creates nothing.
    assert!(matches!(
        backup::backup(&empty, &tmp.path().join("out")),
        Err(BackupError::NotADataDir(_))
    ));
    assert!(!tmp.path().join("out").exists());
}

fn toml_of(info: &BackupInfo) -> String {
    format!(
        "backup_format = {}\nstore_format = {}\ncreated = {:?}\nferrodir_version = {:?}\nentries = {}\nsuffixes = []\ndata_bytes = 0\ninstance_key = false\ntls = false\n",
        info.backup_format, info.store_format, info.created, info.ferrodir_version, info.entries
    )
}

/// The CLI case: `backup` by path from another process (this test binary,
/// re-run) while this process holds the directory open like a server.
#[test]
fn backup_by_path_from_another_process() {
    const CHILD: &str = "FERRODIR_BACKUP_TEST_CHILD";
    if let Ok(spec) = std::env::var(CHILD) {
        let (data, out) = spec.split_once('\t').unwrap();
        let info = backup::backup(Path::new(data), Path::new(out)).unwrap();
        println!("child backed up {} entries", info.entries);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = open(&data);
    add(
        &dir,
        SUFFIX,
        &[("objectClass", &["top", "domain"]), ("dc", &["example"])],
    );
    add(
        &dir,
        &format!("ou=People,{SUFFIX}"),
        &[
            ("objectClass", &["top", "organizationalUnit"]),
            ("ou", &["People"]),
        ],
    );
    for i in 0..20 {
        add_user(&dir, &format!("p{i}"));
    }
    let out = tmp.path().join("backup");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "backup_by_path_from_another_process",
            "--nocapture",
        ])
        .env(CHILD, format!("{}\t{}", data.display(), out.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let info = backup::read_manifest(&out).unwrap();
    assert_eq!(
        info.entries,
        dir.store().read().unwrap().entry_count().unwrap()
    );
    assert_eq!(info.suffixes, vec![SUFFIX.to_string()]);
    // The server side was not disturbed and still writes.
    add_user(&dir, "p20");
    let restored = tmp.path().join("restored");
    backup::restore(&out, &restored, false).unwrap();
    let copy = open(&restored);
    let mut expected = snapshot(&dir);
    expected.remove(&format!("uid=p20,ou=People,{SUFFIX}"));
    assert_eq!(snapshot(&copy), expected);
}
