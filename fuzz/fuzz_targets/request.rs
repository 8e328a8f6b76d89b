//! The request path: bytes -> `GuardedCodec` (the server's decoder, with
//! its default size limit) -> for each message what `server/conn.rs` does:
//! the DN limits, bind through `ops::bind::run` (changing the identity),
//! unbind ends the input, abandon is a no-op here, everything else goes to
//! `ops::dispatch` against one Directory on a temporary data directory with
//! the builtin schema and the default search limits. Every response is
//! encoded as the connection writer would.
//!
//! The first byte picks the starting identity: even = root DN, odd =
//! anonymous (the rest of the bytes may bind as someone else).
//!
//! One runtime and one Directory per process. After an input that wrote
//! anything, the tree is put back to its initial state so that inputs
//! replay deterministically.
#![no_main]

use bytes::BytesMut;
use ferrodir::auth::password::{self, Scheme};
use ferrodir::directory::{
    Directory, DirectoryConfig, Identity, Scope, SearchEnd, SearchRequest, WriteOp,
};
use ferrodir::model::Dn;
use ferrodir::config::Limits;
use ferrodir::ops::{self, filter_text, Response, Shared};
use ferrodir::server::framing::GuardedCodec;
use ferrodir::server::limits;
use ferrodir::schema::Schema;
use ferrodir::store::{Store, StoreOptions};
use ldap3_proto::proto::{LdapFilter, LdapMsg, LdapOp};
use ldap3_proto::LdapCodec;
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, Encoder};

const SUFFIX: &str = "dc=example,dc=com";
const ROOT_DN: &str = "cn=Directory Manager";
const ROOT_PASSWORD: &str = "secret";
const MAX_MESSAGE: usize = 16 << 20;
const MAX_MESSAGES: usize = 64;

struct State {
    rt: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    root: Identity,
}

fn attrs(list: &[(&str, &[&str])]) -> Vec<(String, Vec<Vec<u8>>)> {
    list.iter()
        .map(|(n, vs)| {
            (
                n.to_string(),
                vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
            )
        })
        .collect()
}

/// The initial tree, parents first.
fn base_entries() -> Vec<WriteOp> {
    let pw = password::hash(Scheme::Ssha512, b"password");
    let e = |dn: &str, a: Vec<(String, Vec<Vec<u8>>)>| WriteOp::Add {
        dn: Dn::parse(dn).unwrap(),
        attrs: a,
    };
    vec![
        e(
            SUFFIX,
            attrs(&[("objectClass", &["top", "domain"]), ("dc", &["example"])]),
        ),
        e(
            "ou=People,dc=example,dc=com",
            attrs(&[
                ("objectClass", &["top", "organizationalUnit"]),
                ("ou", &["People"]),
            ]),
        ),
        e(
            "ou=Groups,dc=example,dc=com",
            attrs(&[
                ("objectClass", &["top", "organizationalUnit"]),
                ("ou", &["Groups"]),
            ]),
        ),
        e(
            "uid=alice,ou=People,dc=example,dc=com",
            attrs(&[
                (
                    "objectClass",
                    &[
                        "top",
                        "person",
                        "organizationalPerson",
                        "inetOrgPerson",
                        "posixAccount",
                    ],
                ),
                ("uid", &["alice"]),
                ("cn", &["Alice Liddell"]),
                ("sn", &["Liddell"]),
                ("mail", &["alice@example.com"]),
                ("uidNumber", &["1001"]),
                ("gidNumber", &["100"]),
                ("homeDirectory", &["/home/alice"]),
                ("userPassword", &[pw.as_str()]),
            ]),
        ),
        e(
            "uid=bob,ou=People,dc=example,dc=com",
            attrs(&[
                ("objectClass", &["top", "person", "inetOrgPerson"]),
                ("uid", &["bob"]),
                ("cn", &["Bob", "Robert"]),
                ("sn", &["Builder"]),
                ("telephoneNumber", &["+1 555 0100"]),
                ("userPassword", &[pw.as_str()]),
            ]),
        ),
        e(
            "cn=staff,ou=Groups,dc=example,dc=com",
            attrs(&[
                ("objectClass", &["top", "groupOfNames"]),
                ("cn", &["staff"]),
                (
                    "member",
                    &[
                        "uid=alice,ou=People,dc=example,dc=com",
                        "uid=bob,ou=People,dc=example,dc=com",
                    ],
                ),
            ]),
        ),
    ]
}

fn state() -> &'static State {
    static S: OnceLock<State> = OnceLock::new();
    S.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            map_size: 1 << 30,
            exclusive: true,
            // Durability is irrelevant here and fsync would dominate.
            no_sync: true,
        };
        let store = Store::open(tmp.path(), &opts).unwrap();
        let cfg = DirectoryConfig {
            suffixes: vec![Dn::parse(SUFFIX).unwrap()],
            root_dn: Dn::parse(ROOT_DN).unwrap(),
            size_limit: 50,
            time_limit: 5,
            // A cheap scheme: password modify runs often.
            password_scheme: Scheme::Ssha512,
            ..DirectoryConfig::default()
        };
        let dir = Directory::open(store, Arc::new(Schema::builtin().unwrap()), cfg).unwrap();
        let root = Identity {
            dn: Some(Dn::parse(ROOT_DN).unwrap()),
            norm: dir.normalize_dn(&Dn::parse(ROOT_DN).unwrap()),
            root: true,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let st = State {
            rt,
            shared: Arc::new(Shared {
                dir: Arc::new(dir),
                max_filter_depth: Limits::default().max_filter_depth,
                search: ops::SearchLimits::from_config(&Limits::default()),
            }),
            root,
        };
        reset(&st);
        // LMDB works on its open descriptors: remove the files now so no
        // temporary directory outlives the process (statics never drop).
        tmp.close().unwrap();
        st
    })
}

/// Deletes everything under the suffix and recreates the initial tree.
fn reset(st: &State) {
    let dir = &st.shared.dir;
    let filter = LdapFilter::Present("objectClass".into());
    let req = SearchRequest {
        base: Dn::parse(SUFFIX).unwrap(),
        scope: Scope::Sub,
        filter: &filter,
        attrs: &["1.1".to_string()],
        types_only: true,
        size_limit: 0,
        time_limit: 0,
        page: None,
        lookthrough_limit: 0,
    };
    let mut dns = Vec::new();
    let end = dir.search(&st.root, &req, &|| false, &mut |e| {
        dns.push(Dn::parse(&e.dn).unwrap())
    });
    if let Ok(end) = end {
        assert!(matches!(end, SearchEnd::Done { .. }), "{end:?}");
    }
    dns.sort_by_key(|d| std::cmp::Reverse(d.rdns.len()));
    for dn in dns {
        dir.write_blocking(&st.root, WriteOp::Delete { dn: dn.clone() })
            .unwrap_or_else(|e| panic!("reset: delete {dn}: {e}"));
    }
    for op in base_entries() {
        let dn = op.dn().to_string();
        dir.write_blocking(&st.root, op)
            .unwrap_or_else(|e| panic!("reset: add {dn}: {e}"));
    }
    dir.set_root_password(ROOT_PASSWORD.as_bytes()).unwrap();
}

/// Runs one operation the way server/conn.rs does and encodes every response.
async fn run_one(shared: &Arc<Shared>, who: &mut Identity, request: LdapMsg) {
    let mut enc = LdapCodec::new(Some(usize::MAX / 4), None);
    let mut out = BytesMut::new();
    if let LdapOp::SearchRequest(s) = &request.op {
        // The access log line.
        let _ = filter_text::to_string(&s.filter);
    }
    let msgid = request.msgid;
    if let Err(why) = limits::check_request_dns(&request.op, &Limits::default()) {
        if let Some(op) = ops::response_for(&request.op, limits::dn_limit_result(why)) {
            let _ = enc.encode(ops::msg(msgid, op), &mut out);
        }
        return;
    }
    match request.op {
        LdapOp::BindRequest(req) => {
            let (id, res) = ops::bind::run(shared, req).await;
            *who = id.unwrap_or_default();
            let _ = enc.encode(ops::msg(msgid, ops::bind_response(res)), &mut out);
        }
        LdapOp::UnbindRequest | LdapOp::AbandonRequest(_) => {}
        _ => {
            let (tx, mut rx) = mpsc::channel::<Response>(256);
            let cancelled = Arc::new(AtomicBool::new(false));
            let work = ops::dispatch(shared.clone(), who.clone(), request, tx, cancelled);
            let drain = async {
                while let Some(r) = rx.recv().await {
                    if let Response::Msg(m) = r {
                        let _ = enc.encode(m, &mut out);
                    }
                    out.clear();
                }
            };
            tokio::join!(work, drain);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let st = state();
    let before = st.shared.dir.last_csn();
    let mut who = if mode % 2 == 0 {
        st.root.clone()
    } else {
        Identity::anonymous()
    };
    let mut codec = GuardedCodec::new(MAX_MESSAGE);
    let mut buf = BytesMut::from(rest);
    let mut messages = Vec::new();
    while let Ok(Some(m)) = codec.decode(&mut buf) {
        messages.push(m);
        if messages.len() >= MAX_MESSAGES {
            break;
        }
    }
    if messages.is_empty() {
        return;
    }
    st.rt.block_on(async {
        for m in messages {
            if matches!(m.op, LdapOp::UnbindRequest) {
                break;
            }
            run_one(&st.shared, &mut who, m).await;
        }
    });
    if st.shared.dir.last_csn() != before {
        reset(st);
    } else {
        // Password modify on the root DN changes no CSN.
        st.shared
            .dir
            .set_root_password(ROOT_PASSWORD.as_bytes())
            .unwrap();
    }
});
