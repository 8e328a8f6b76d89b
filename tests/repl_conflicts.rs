//! The conflict tooling against real processes: two suppliers whose
//! agreements are paused (`nsds5ReplicaEnabled: off`) to force conflicts,
//! data changed with OpenLDAP's clients, and `ferrodir repl conflicts
//! list|show|resolve`, `repl status` and `repl check` run as an admin would.

mod repl_common;
use repl_common::*;
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(120);

fn agreement_ldif(port: u16, init: bool) -> String {
    agreement_to_ldif("to-peer", port, init)
}

/// Two suppliers (replica IDs 1 and 2) with an agreement each way; server
/// 1 holds the sample data and initialises server 2.
fn pair() -> [Server; 2] {
    let servers = [Server::fast(), Server::fast()];
    for (i, s) in servers.iter().enumerate() {
        add_example(&s.url(), "replication-manager.ldif", None);
        let o = ldapadd_root(&s.url(), &replica_ldif(i + 1));
        assert_eq!(code(&o), 0, "replica {}: {}", i + 1, err(&o));
    }
    let [s1, s2] = &servers;
    let o = ldapadd_root(&s1.url(), SAMPLE);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let o = ldapadd_root(&s1.url(), &agreement_ldif(s2.port, true));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_init_done(s1, "to-peer", CONVERGE);
    let o = ldapadd_root(&s2.url(), &agreement_ldif(s1.port, false));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_converged(&[s1, s2], CONVERGE);
    servers
}

fn set_agreements(servers: &[Server], enabled: bool) {
    let value = if enabled { "on" } else { "off" };
    for s in servers {
        let o = ldapmodify_root(
            &s.url(),
            &format!(
                "dn: cn=to-peer,{REPLICA_DN}\nchangetype: modify\nreplace: nsds5ReplicaEnabled\nnsds5ReplicaEnabled: {value}\n"
            ),
        );
        assert_eq!(code(&o), 0, "{}", err(&o));
    }
}

fn converge(servers: &[Server]) -> String {
    wait_converged(&servers.iter().collect::<Vec<_>>(), CONVERGE)
}

/// `ferrodir repl ...` with the root password in the environment.
fn repl(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("repl")
        .args(args)
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("run ferrodir repl")
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}{}", out(o), err(o));
    out(o)
}

fn person(uid: &str, sn: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {sn}\n"
    )
}

fn add(s: &Server, ldif: &str) {
    let o = ldapadd_root(&s.url(), ldif);
    assert_eq!(code(&o), 0, "{ldif}: {}", err(&o));
}

fn change(s: &Server, ldif: &str) {
    let o = ldapmodify_root(&s.url(), ldif);
    assert_eq!(code(&o), 0, "{ldif}: {}", err(&o));
}

/// `repl conflicts list --json` of one server.
fn listed(s: &Server) -> Vec<Value> {
    let o = repl(&["conflicts", "list", "--url", &s.url(), "--json"]);
    let text = ok(&o);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("not a JSON array: {other:?} from {text}"),
    }
}

fn field<'a>(row: &'a Value, name: &str) -> &'a str {
    row.get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {name} in {row}"))
}

/// One attribute of the entry at `dn` (base search, so conflict entries too).
fn attr_of(s: &Server, dn: &str, attr: &str) -> Option<String> {
    read_entry(&s.url(), dn, &[attr]).and_then(|e| e.get(attr).into_iter().next())
}

#[test]
fn add_add_conflict_is_listed_on_both_and_keep_this_gives_it_the_plain_dn() {
    let servers = pair();
    let [s1, s2] = &servers;
    let plain = format!("uid=twin,ou=people,{SUFFIX}");
    set_agreements(&servers, false);
    add(s1, &person("twin", "first"));
    add(s2, &person("twin", "second"));
    set_agreements(&servers, true);
    converge(&servers);

    // Exactly one conflict entry, the same on both servers.
    let mut conflict_dn = String::new();
    for s in &servers {
        let rows = listed(s);
        assert_eq!(rows.len(), 1, "{}: {rows:?}", s.url());
        let row = &rows[0];
        assert_eq!(field(row, "kind"), "naming_conflict", "{row}");
        assert_eq!(field(row, "conflicts_with"), plain, "{row}");
        assert_eq!(field(row, "suffix"), SUFFIX, "{row}");
        let dn = field(row, "dn");
        assert!(
            dn.starts_with("nsuniqueid=") && dn.ends_with(&format!("+{plain}")),
            "{dn}"
        );
        assert_eq!(
            Some(field(row, "entry_csn").to_string()),
            attr_of(s, dn, "entryCSN"),
            "{row}"
        );
        if conflict_dn.is_empty() {
            conflict_dn = dn.to_string();
        }
        assert_eq!(dn, conflict_dn, "the same conflict entry on both");
        let text = ok(&repl(&["conflicts", "list", "--url", &s.url()]));
        assert!(
            text.starts_with(&format!(
                "{SUFFIX}: 1 conflict entry (1 naming conflict, 0 glue)\n{conflict_dn}\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("  conflicts with  {plain}\n")),
            "{text}"
        );
        // repl status counts it, in text and JSON.
        let status = ok(&repl(&["status", "--url", &s.url()]));
        assert!(
            status.contains(&format!("suffix {SUFFIX}\n  conflict entries: 1\n")),
            "{status}"
        );
        let status = ok(&repl(&["status", "--url", &s.url(), "--json"]));
        assert!(status.contains("\"conflict_entries\":1"), "{status}");
    }
    let loser_sn = attr_of(s1, &conflict_dn, "sn").expect("conflict entry sn");
    let winner_sn = attr_of(s1, &plain, "sn").expect("plain entry sn");
    assert_ne!(loser_sn, winner_sn);
    let loser_uuid = attr_of(s1, &conflict_dn, "entryUUID").expect("entryUUID");
    // A conflict entry is an entry like any other: it can be modified (its
    // RDN's nsUniqueId value is in it, ldapSubEntry steps aside for its own
    // structural class), and the change replicates.
    change(
        s2,
        &format!("dn: {conflict_dn}\nchangetype: modify\nreplace: description\ndescription: edited while in conflict\n"),
    );
    converge(&servers);
    assert_eq!(
        attr_of(s1, &conflict_dn, "description").as_deref(),
        Some("edited while in conflict")
    );

    // show: both entries, attribute by attribute.
    let shown = ok(&repl(&[
        "conflicts",
        "show",
        "--url",
        &s1.url(),
        &conflict_dn,
    ]));
    assert!(
        shown.starts_with(&format!(
            "< {conflict_dn}   (conflict entry)\n> {plain}   (holds the plain DN)\n"
        )),
        "{shown}"
    );
    let sn_row = shown
        .lines()
        .find(|l| l.starts_with(&format!("sn: {loser_sn}")))
        .unwrap_or_else(|| panic!("no sn row: {shown}"));
    assert!(sn_row.ends_with(&format!("|  sn: {winner_sn}")), "{sn_row}");
    assert!(
        shown.contains("nsds5ReplConflict: namingConflict"),
        "{shown}"
    );
    assert!(shown.contains("entryCSN: "), "{shown}");

    // Resolve on server 2: the conflict entry takes the plain DN.
    let o = repl(&[
        "conflicts",
        "resolve",
        "--url",
        &s2.url(),
        &conflict_dn,
        "--keep-this",
    ]);
    let said = ok(&o);
    assert_eq!(
        said,
        format!("deleted {plain}\n{conflict_dn} is now {plain}\n"),
        "{said}"
    );
    converge(&servers);
    for s in &servers {
        assert_eq!(listed(s), Vec::<Value>::new(), "{}", s.url());
        assert_eq!(
            attr_of(s, &plain, "entryUUID").as_deref(),
            Some(loser_uuid.as_str()),
            "{}: the former conflict entry holds the plain DN",
            s.url()
        );
        assert_eq!(attr_of(s, &plain, "sn"), Some(loser_sn.clone()));
        assert!(attr_of(s, &plain, "nsds5ReplConflict").is_none());
        let twins = dn_set(&search_root(
            &s.url(),
            SUFFIX,
            &["(|(uid=twin)(objectClass=ldapSubEntry))", "1.1"],
        ));
        assert_eq!(twins, vec![plain.clone()], "{}", s.url());
        let status = ok(&repl(&["status", "--url", &s.url()]));
        assert!(status.contains("  conflict entries: 0\n"), "{status}");
    }
    let o = repl(&[
        "check",
        "--url",
        &s1.url(),
        "--url",
        &s2.url(),
        "--suffix",
        SUFFIX,
    ]);
    assert!(ok(&o).ends_with("identical\n"), "{}", out(&o));
}

#[test]
fn glue_is_listed_and_refused_and_keep_other_deletes_the_conflict_entry() {
    let servers = pair();
    let [s1, s2] = &servers;
    let temp = format!("ou=temp,{SUFFIX}");
    let child = format!("cn=new,{temp}");
    add(
        s1,
        &format!("dn: {temp}\nobjectClass: organizationalUnit\nou: temp\n"),
    );
    converge(&servers);
    set_agreements(&servers, false);
    // A parent deleted on one side while the other adds below it ...
    change(s1, &format!("dn: {temp}\nchangetype: delete\n"));
    add(
        s2,
        &format!("dn: {child}\nobjectClass: organizationalRole\ncn: new\n"),
    );
    // ... and an add/add of one DN.
    let plain = format!("uid=pair,ou=people,{SUFFIX}");
    add(s1, &person("pair", "one"));
    add(s2, &person("pair", "two"));
    set_agreements(&servers, true);
    converge(&servers);

    let mut conflict_dn = String::new();
    for s in &servers {
        let rows = listed(s);
        assert_eq!(rows.len(), 2, "{}: {rows:?}", s.url());
        let glue: Vec<&Value> = rows.iter().filter(|r| field(r, "kind") == "glue").collect();
        assert_eq!(glue.len(), 1, "{rows:?}");
        assert_eq!(field(glue[0], "dn"), temp);
        assert_eq!(field(glue[0], "conflicts_with"), temp);
        let naming: Vec<&Value> = rows
            .iter()
            .filter(|r| field(r, "kind") == "naming_conflict")
            .collect();
        assert_eq!(naming.len(), 1, "{rows:?}");
        assert_eq!(field(naming[0], "conflicts_with"), plain);
        conflict_dn = field(naming[0], "dn").to_string();
        let text = ok(&repl(&["conflicts", "list", "--url", &s.url()]));
        assert!(
            text.contains(&format!("{temp}\n  kind            glue\n")),
            "{text}"
        );
        assert!(
            text.starts_with(&format!(
                "{SUFFIX}: 2 conflict entries (1 naming conflict, 1 glue)\n"
            )),
            "{text}"
        );
    }

    // Glue is not resolved by deleting it: refused, naming the child.
    for flag in ["--delete", "--keep-this", "--keep-other"] {
        let o = repl(&["conflicts", "resolve", "--url", &s1.url(), &temp, flag]);
        assert_eq!(o.status.code(), Some(1), "{flag}: {}{}", out(&o), err(&o));
        let msg = err(&o);
        assert!(msg.contains("is a glue entry"), "{msg}");
        assert!(msg.contains("goes away by itself"), "{msg}");
        assert!(msg.contains(&format!("\n  {child}")), "{msg}");
    }
    assert!(read_entry(&s1.url(), &temp, &["1.1"]).is_some());
    // A glue entry keeps its own structural class beside glue and can be
    // modified.
    change(
        s1,
        &format!(
            "dn: {temp}\nchangetype: modify\nreplace: description\ndescription: glue, edited\n"
        ),
    );
    let shown = ok(&repl(&["conflicts", "show", "--url", &s1.url(), &temp]));
    assert!(shown.contains("is a glue entry"), "{shown}");
    assert!(
        shown.contains(&format!("children (1):\n  {child}\n")),
        "{shown}"
    );
    // Not a conflict entry at all: refused.
    let o = repl(&[
        "conflicts",
        "resolve",
        "--url",
        &s1.url(),
        &plain,
        "--delete",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("is not a conflict entry"), "{}", err(&o));
    // Exactly one of the three actions.
    let o = repl(&["conflicts", "resolve", "--url", &s1.url(), &conflict_dn]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("--keep-this|--keep-other|--delete"),
        "{}",
        err(&o)
    );

    // --keep-other deletes the conflict entry; the plain DN's holder stays.
    let holder = attr_of(s1, &plain, "entryUUID").expect("plain entry");
    let said = ok(&repl(&[
        "conflicts",
        "resolve",
        "--url",
        &s1.url(),
        &conflict_dn,
        "--keep-other",
    ]));
    assert_eq!(said, format!("deleted {conflict_dn}\nkept {plain}\n"));
    // The glue entry goes away once its child is deleted, as the refusal said.
    change(s2, &format!("dn: {child}\nchangetype: delete\n"));
    converge(&servers);
    for s in &servers {
        assert_eq!(listed(s), Vec::<Value>::new(), "{}", s.url());
        assert_eq!(attr_of(s, &plain, "entryUUID"), Some(holder.clone()));
        assert!(
            read_entry(&s.url(), &temp, &["1.1"]).is_none(),
            "{}",
            s.url()
        );
    }
}

#[test]
fn check_is_quiet_on_converged_replicas_and_names_a_divergent_entry() {
    let servers = pair();
    let [s1, s2] = &servers;
    let urls = ["--url", &s1.url(), "--url", &s2.url()].map(String::from);
    let check = |extra: &[&str]| {
        let mut args: Vec<&str> = vec!["check"];
        args.extend(urls.iter().map(String::as_str));
        args.extend(["--suffix", SUFFIX]);
        args.extend(extra);
        repl(&args)
    };
    let o = check(&[]);
    let text = ok(&o);
    assert!(
        text.ends_with("entries that differ: 0\nidentical\n"),
        "{text}"
    );
    assert!(text.contains("compared as of"), "{text}");
    assert!(text.contains("  ou=people  "), "{text}");
    let o = check(&["--json"]);
    let report: Value = serde_json::from_str(&ok(&o)).expect("JSON report");
    assert_eq!(
        report.get("identical"),
        Some(&Value::Bool(true)),
        "{report}"
    );
    assert_eq!(
        report.get("ruvs_agree"),
        Some(&Value::Bool(true)),
        "{report}"
    );

    // The RUV entry it reads is the root DN's only.
    let ruv_dn = format!("nsuniqueid=ffffffff-ffffffff-ffffffff-ffffffff,{SUFFIX}");
    let ruv = read_entry(&s1.url(), &ruv_dn, &["nsds50ruv"]).expect("RUV entry");
    assert!(
        ruv.get("nsds50ruv")
            .iter()
            .any(|v| v.starts_with("{replica 1} ")),
        "{:?}",
        ruv.get("nsds50ruv")
    );
    let anon = search_as(&s1.url(), Who::Anon, &ruv_dn, &["-s", "base"]);
    assert_eq!(code(&anon), 32, "{}", out(&anon));

    // Divergent changes while the agreements are paused.
    set_agreements(&servers, false);
    change(
        s2,
        &format!("dn: {ALICE}\nchangetype: modify\nreplace: sn\nsn: Diverged\n"),
    );
    add(s1, &person("only-on-one", "x"));
    let o = check(&["--wait", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(
        text.contains("the RUVs did not hold the same changes within 1 s"),
        "{text}"
    );
    assert!(text.contains(&format!("  {ALICE} (")), "{text}");
    assert!(
        text.contains("    sn: A [\"Liddell\"]; B [\"Diverged\"]\n"),
        "{text}"
    );
    let only = format!("uid=only-on-one,ou=people,{SUFFIX}");
    assert!(text.contains(&format!("  {only} (")), "{text}");
    assert!(text.contains("    missing on B\n"), "{text}");
    assert!(text.contains("entries that differ: 2\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("  ou=people ") && l.ends_with("DIFFERS")),
        "{text}"
    );
    assert!(text.ends_with("DIFFERENT\n"), "{text}");

    // Once the agreements run again, check waits for the RUVs to agree.
    set_agreements(&servers, true);
    let o = check(&["--wait", "120"]);
    assert!(ok(&o).ends_with("identical\n"), "{}", out(&o));

    // Trouble is exit code 2, with the reason.
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    let o = repl(&[
        "check",
        "--url",
        &s1.url(),
        "--url",
        &dead,
        "--suffix",
        SUFFIX,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("Connection refused"), "{}", err(&o));
    let o = repl(&[
        "check",
        "--url",
        &s1.url(),
        "--url",
        &s2.url(),
        "--suffix",
        "dc=nowhere",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("no RUV for dc=nowhere"), "{}", err(&o));
    let o = repl(&["check", "--url", &s1.url(), "--suffix", SUFFIX]);
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
}
