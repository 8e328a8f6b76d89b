//! Online backup and offline restore of a data directory.
//!
//! A backup is a directory holding
//! - `data.mdb`: a compacted copy of the LMDB environment, made by LMDB
//!   from one read transaction, so it is consistent even while a server
//!   writes (writers are not blocked);
//! - `instance.key` (if present): the key that seals secrets kept in the
//!   database; without it restored replication credentials cannot be read;
//! - `tls/` (if present): certificates and keys, copied with their modes;
//! - `ferrodir-backup.toml`: the manifest ([`BackupInfo`]), whose entry
//!   count and suffixes are read back from the copy itself.
//!
//! Restore refuses while a server holds the data directory, refuses to
//! replace a non-empty directory unless forced, verifies the backup, builds
//! the new directory beside the target and renames it into place.

use super::{
    Id, Store, StoreError, StoreOptions, FORMAT_VERSION, LOCK_FILE, META_FORMAT, READABLE_FORMATS,
};
use heed::types::{Bytes, Str};
use heed::{CommitOrAbort, EnvFlags, EnvOpenOptions};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Version of the backup layout (this module's files, not the LMDB format).
pub const BACKUP_FORMAT: u32 = 1;
/// The manifest's file name inside a backup.
pub const MANIFEST_FILE: &str = "ferrodir-backup.toml";
const DATA_FILE: &str = "data.mdb";
const KEY_FILE: &str = "instance.key";
const TLS_DIR: &str = "tls";
/// Where the data directory records its naming contexts (written by `ferrodir serve`/`import`).
const META_SUFFIXES: &str = "suffixes";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{} is not a ferrodir data directory (no {DATA_FILE})", .0.display())]
    NotADataDir(PathBuf),
    #[error("{} is not a ferrodir backup (no {MANIFEST_FILE})", .0.display())]
    NotABackup(PathBuf),
    #[error("the backup destination {} exists and is not empty", .0.display())]
    OutputNotEmpty(PathBuf),
    #[error(
        "the data directory {} is in use by a running ferrodir (stop the server before restoring)",
        .0.display()
    )]
    Locked(PathBuf),
    #[error("the data directory {} is not empty (restore --force replaces it)", .0.display())]
    DataDirNotEmpty(PathBuf),
    #[error("{}: {reason}", path.display())]
    BadManifest { path: PathBuf, reason: String },
    #[error("the backup has format {found}; this ferrodir reads backup format {BACKUP_FORMAT}")]
    BackupFormat { found: u32 },
    #[error(
        "the backup holds on-disk format {found}; this ferrodir reads format {FORMAT_VERSION}"
    )]
    StoreFormat { found: u32 },
    #[error("the backup does not match its manifest: {0}")]
    Mismatch(String),
}

pub type Result<T> = std::result::Result<T, BackupError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The manifest written beside the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// [`BACKUP_FORMAT`] of the writer.
    pub backup_format: u32,
    /// On-disk format of `data.mdb` ([`FORMAT_VERSION`]).
    pub store_format: u32,
    /// When the copy was made (RFC 3339, UTC).
    pub created: String,
    /// ferrodir version that made it.
    pub ferrodir_version: String,
    /// Entries in the copy.
    pub entries: u64,
    /// Naming contexts recorded in the data directory.
    pub suffixes: Vec<String>,
    /// Size of `data.mdb` in bytes.
    pub data_bytes: u64,
    /// Whether `instance.key` was copied.
    pub instance_key: bool,
    /// Whether a `tls/` directory was copied.
    pub tls: bool,
}

/// Backs up the data directory `data_dir` into the new (or empty) directory
/// `out`. Safe while a server runs on `data_dir`: the environment is opened
/// without the server's lock and copied from a read snapshot. For use from
/// another process (the CLI); inside the server's own process use
/// [`backup_store`], as LMDB forbids opening one environment twice.
pub fn backup(data_dir: &Path, out: &Path) -> Result<BackupInfo> {
    if !data_dir.join(DATA_FILE).is_file() {
        return Err(BackupError::NotADataDir(data_dir.to_path_buf()));
    }
    check_output(out)?;
    let opts = StoreOptions {
        exclusive: false,
        ..StoreOptions::default()
    };
    let store = Store::open(data_dir, &opts)?;
    backup_store(&store, out)
}

/// Backs up an open store (see [`backup`]).
pub fn backup_store(store: &Store, out: &Path) -> Result<BackupInfo> {
    check_output(out)?;
    create_private_dir(out)?;
    let data = out.join(DATA_FILE);
    store.copy_to(&data)?;
    // Password hashes are in it: owner only (the directory is 0700 already).
    fs::set_permissions(&data, fs::Permissions::from_mode(0o600)).map_err(io_err(&data))?;
    File::open(&data)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&data))?;
    let contents = read_copy(out)?;
    let src = store.path();
    let instance_key = src.join(KEY_FILE).is_file();
    if instance_key {
        copy_file(&src.join(KEY_FILE), &out.join(KEY_FILE))?;
    }
    let tls = src.join(TLS_DIR).is_dir();
    if tls {
        copy_tree(&src.join(TLS_DIR), &out.join(TLS_DIR))?;
    }
    let info = BackupInfo {
        backup_format: BACKUP_FORMAT,
        store_format: contents.format,
        created: now_rfc3339(),
        ferrodir_version: env!("CARGO_PKG_VERSION").to_string(),
        entries: contents.entries,
        suffixes: contents.suffixes,
        data_bytes: file_len(&data)?,
        instance_key,
        tls,
    };
    write_manifest(out, &info)?;
    sync_dir(out)?;
    Ok(info)
}

/// Reads and checks a backup's manifest without touching any data directory.
pub fn read_manifest(backup: &Path) -> Result<BackupInfo> {
    let path = backup.join(MANIFEST_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BackupError::NotABackup(backup.to_path_buf()))
        }
        Err(e) => return Err(io_err(&path)(e)),
    };
    let info: BackupInfo = toml::from_str(&text).map_err(|e| BackupError::BadManifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if info.backup_format != BACKUP_FORMAT {
        return Err(BackupError::BackupFormat {
            found: info.backup_format,
        });
    }
    if info.store_format != FORMAT_VERSION && !READABLE_FORMATS.contains(&info.store_format) {
        return Err(BackupError::StoreFormat {
            found: info.store_format,
        });
    }
    Ok(info)
}

/// Restores `backup` into `data_dir`. Refuses while a server holds
/// `data_dir` and, unless `force`, when `data_dir` is not empty. The backup
/// is verified against its manifest, copied into a new directory beside
/// `data_dir`, verified again and renamed into place.
pub fn restore(backup: &Path, data_dir: &Path, force: bool) -> Result<BackupInfo> {
    let info = read_manifest(backup)?;
    verify(backup, &info)?;

    // Hold the server's lock for the whole swap so no server starts on the old data.
    let _lock = lock_data_dir(data_dir)?;
    let non_empty = match fs::read_dir(data_dir) {
        Ok(mut entries) => entries.any(|e| e.map(|e| e.file_name() != LOCK_FILE).unwrap_or(true)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(data_dir)(e)),
    };
    if non_empty && !force {
        return Err(BackupError::DataDirNotEmpty(data_dir.to_path_buf()));
    }

    let (parent, name) = split_dir(data_dir)?;
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let stamp = format!("{}-{}", std::process::id(), now_nanos());
    let staging = parent.join(format!(".{name}.restore-{stamp}"));
    let staged = stage(backup, &staging, &info).and_then(|()| verify(&staging, &info));
    if let Err(e) = staged {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }

    if data_dir.exists() {
        // Two renames: the old directory aside, the new one in. If interrupted
        // between them, the old data is intact under `.NAME.replaced-*`.
        let old = parent.join(format!(".{name}.replaced-{stamp}"));
        fs::rename(data_dir, &old).map_err(io_err(data_dir))?;
        if let Err(e) = fs::rename(&staging, data_dir) {
            let _ = fs::rename(&old, data_dir);
            let _ = fs::remove_dir_all(&staging);
            return Err(io_err(data_dir)(e));
        }
        fs::remove_dir_all(&old).map_err(io_err(&old))?;
    } else {
        fs::rename(&staging, data_dir).map_err(io_err(data_dir))?;
    }
    sync_dir(&parent)?;
    Ok(info)
}

/// Copies the backup's files into `staging` (a new directory).
fn stage(backup: &Path, staging: &Path, info: &BackupInfo) -> Result<()> {
    create_private_dir(staging)?;
    copy_file(&backup.join(DATA_FILE), &staging.join(DATA_FILE))?;
    if info.instance_key {
        copy_file(&backup.join(KEY_FILE), &staging.join(KEY_FILE))?;
    }
    if info.tls {
        copy_tree(&backup.join(TLS_DIR), &staging.join(TLS_DIR))?;
    }
    sync_dir(staging)
}

/// Checks that the environment in `dir` matches the manifest.
fn verify(dir: &Path, info: &BackupInfo) -> Result<()> {
    if !dir.join(DATA_FILE).is_file() {
        return Err(BackupError::Mismatch(format!(
            "{} is missing",
            dir.join(DATA_FILE).display()
        )));
    }
    for (wanted, file) in [(info.instance_key, KEY_FILE), (info.tls, TLS_DIR)] {
        if wanted && !dir.join(file).exists() {
            return Err(BackupError::Mismatch(format!(
                "{} is missing",
                dir.join(file).display()
            )));
        }
    }
    let contents = read_copy(dir)?;
    if contents.format != info.store_format {
        return Err(BackupError::StoreFormat {
            found: contents.format,
        });
    }
    if contents.entries != info.entries {
        return Err(BackupError::Mismatch(format!(
            "{} entries, the manifest says {}",
            contents.entries, info.entries
        )));
    }
    if contents.suffixes != info.suffixes {
        return Err(BackupError::Mismatch(format!(
            "suffixes {:?}, the manifest says {:?}",
            contents.suffixes, info.suffixes
        )));
    }
    Ok(())
}

/// What a copied environment holds, read straight from its `data.mdb`.
struct Contents {
    format: u32,
    entries: u64,
    suffixes: Vec<String>,
}

/// Opens the environment in `dir` read-only without a lock file (nothing
/// else uses a backup or a staging copy), reads it and closes it again.
fn read_copy(dir: &Path) -> Result<Contents> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.max_dbs(16);
    // SAFETY: READ_ONLY|NO_LOCK is sound because nothing writes this copy;
    // it is a path no other environment in this process has open.
    let env = unsafe {
        options.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK);
        options.open(dir).map_err(StoreError::from)?
    };
    let result = (|| -> std::result::Result<Contents, StoreError> {
        let opened = env.open_databases_and_commit(
            env.read_txn()?,
            |o, rtxn| -> std::result::Result<_, heed::Error> {
                let dbs = (
                    o.open_database::<Id, Bytes>(rtxn, Some("entries"))?,
                    o.open_database::<Str, Bytes>(rtxn, Some("meta"))?,
                );
                Ok(CommitOrAbort::<_, ()>::Commit(dbs))
            },
        )?;
        let Some((Some(entries), Some(meta))) = opened.commit() else {
            return Err(super::DecodeError("not a ferrodir environment (no entries/meta)").into());
        };
        let rtxn = env.read_txn()?;
        let format = meta
            .get(&rtxn, META_FORMAT)?
            .and_then(|v| v.try_into().ok().map(u32::from_be_bytes))
            .ok_or(super::DecodeError("no format version record"))?;
        let suffixes = meta
            .get(&rtxn, META_SUFFIXES)?
            .map(|b| {
                String::from_utf8_lossy(b)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Contents {
            format,
            entries: entries.len(&rtxn)?,
            suffixes,
        })
    })();
    env.prepare_for_closing().wait();
    Ok(result?)
}

/// Takes the data directory's lock file (as a server does) if the directory
/// exists; `Locked` if a server holds it.
fn lock_data_dir(data_dir: &Path) -> Result<Option<File>> {
    if !data_dir.is_dir() {
        return Ok(None);
    }
    let path = data_dir.join(LOCK_FILE);
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(fs::TryLockError::WouldBlock) => Err(BackupError::Locked(data_dir.to_path_buf())),
        Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

fn check_output(out: &Path) -> Result<()> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::OutputNotEmpty(out.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(out)(e)),
    }
}

/// The parent directory and the final component of `dir`.
fn split_dir(dir: &Path) -> Result<(PathBuf, String)> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io_err(dir)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the data directory path has no final component",
            ))
        })?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// Copies one file, creating the destination with the source's mode from
/// the start (keys never exist with wider permissions), then syncs it.
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    let mode = fs::metadata(from)
        .map_err(io_err(from))?
        .permissions()
        .mode()
        & 0o777;
    let mut src = File::open(from).map_err(io_err(from))?;
    let mut dst = File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(to)
        .map_err(io_err(to))?;
    io::copy(&mut src, &mut dst).map_err(io_err(to))?;
    // The umask may have narrowed the mode at creation; set it exactly.
    dst.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(to))?;
    dst.sync_all().map_err(io_err(to))
}

/// Copies a directory tree of regular files (symlinks are followed).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let mode = fs::metadata(from)
        .map_err(io_err(from))?
        .permissions()
        .mode()
        & 0o777;
    fs::create_dir_all(to).map_err(io_err(to))?;
    for entry in fs::read_dir(from).map_err(io_err(from))? {
        let entry = entry.map_err(io_err(from))?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &dest)?;
        } else {
            copy_file(&path, &dest)?;
        }
    }
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).map_err(io_err(to))?;
    sync_dir(to)
}

fn write_manifest(out: &Path, info: &BackupInfo) -> Result<()> {
    let path = out.join(MANIFEST_FILE);
    let text = toml::to_string(info).map_err(|e| BackupError::BadManifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let text = format!("# ferrodir backup manifest (restore with `ferrodir restore`)\n{text}");
    let tmp = out.join(format!("{MANIFEST_FILE}.tmp"));
    fs::write(&tmp, text).map_err(io_err(&tmp))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&tmp))?;
    // Written last and renamed in: a backup with a manifest is complete.
    fs::rename(&tmp, &path).map_err(io_err(&path))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

fn file_len(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path).map_err(io_err(path))?.len())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_must_be_new_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_output(&dir.path().join("new")).is_ok());
        assert!(check_output(dir.path()).is_ok());
        fs::write(dir.path().join("x"), b"x").unwrap();
        assert!(matches!(
            check_output(dir.path()),
            Err(BackupError::OutputNotEmpty(_))
        ));
    }

    #[test]
    fn copy_file_keeps_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        fs::write(&key, b"secret").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let dst = dir.path().join("k2");
        copy_file(&key, &dst).unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"secret");
        assert_eq!(
            fs::metadata(&dst).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn manifest_round_trip_and_format_checks() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_manifest(dir.path()),
            Err(BackupError::NotABackup(_))
        ));
        let mut info = BackupInfo {
            backup_format: BACKUP_FORMAT,
            store_format: FORMAT_VERSION,
            created: now_rfc3339(),
            ferrodir_version: "0".into(),
            entries: 3,
            suffixes: vec!["dc=example,dc=com".into()],
            data_bytes: 1,
            instance_key: false,
            tls: false,
        };
        write_manifest(dir.path(), &info).unwrap();
        assert_eq!(read_manifest(dir.path()).unwrap(), info);
        info.backup_format = BACKUP_FORMAT + 1;
        fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
        write_manifest(dir.path(), &info).unwrap();
        assert!(matches!(
            read_manifest(dir.path()),
            Err(BackupError::BackupFormat { .. })
        ));
        fs::write(dir.path().join(MANIFEST_FILE), "entries = 'x'").unwrap();
        assert!(matches!(
            read_manifest(dir.path()),
            Err(BackupError::BadManifest { .. })
        ));
    }
}
