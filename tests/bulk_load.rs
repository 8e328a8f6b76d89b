//! Bulk loads (offline import, a consumer's total init) write index keys in
//! one sorted pass at the end instead of entry by entry: indexed searches
//! must afterwards return exactly what they return on a server that took
//! the same entries one add at a time.

mod repl_common;

use repl_common::*;
use std::time::Duration;

const FILTERS: &[&str] = &[
    "(uid=people-77)",
    "(uid=people-1*)",
    "(uid=*-99*)",
    "(cn=User 5)",
    "(cn=*ser 4*)",
    "(sn=people9*)",
    "(mail=*9@example.com)",
    "(objectClass=inetOrgPerson)",
    "(&(objectClass=person)(mail=people-12*))",
    "(|(uid=people-3)(sn=people44))",
];

fn sorted_dns(url: &str, filter: &str) -> Vec<String> {
    let o = search_root(url, "dc=example,dc=com", &["-z", "0", filter, "1.1"]);
    assert_eq!(code(&o), 0, "{filter}: {}", err(&o));
    let mut d = dns(&out(&o));
    d.sort();
    d
}

/// Entries added over LDAP (per-entry index writes) and the same entries
/// imported offline and then copied to a consumer by total init (bulk index
/// writes on both) answer every indexed filter identically.
#[test]
fn imported_and_total_init_indexes_match_per_entry_adds() {
    // ldapadd's progress output must fit in a pipe (run_tool writes all of
    // its input before reading): about 1,000 entries.
    let ldif = people_ldif("people", 1_000);
    let reference = Server::fast();
    let o = ldapadd_root(&reference.url(), &ldif);
    assert_eq!(code(&o), 0, "{}", err(&o));

    let mut supplier = Server::fast();
    import_offline(&mut supplier, &ldif);
    let consumer = Server::fast();
    configure_supplier_consumer(&supplier, &consumer, Duration::from_secs(120));

    for filter in FILTERS {
        let want = sorted_dns(&reference.url(), filter);
        assert!(!want.is_empty(), "{filter} matches nothing");
        assert_eq!(
            sorted_dns(&supplier.url(), filter),
            want,
            "import: {filter}"
        );
        assert_eq!(
            sorted_dns(&consumer.url(), filter),
            want,
            "total init: {filter}"
        );
    }

    // Writes after the init maintain the bulk-written keys entry by entry.
    let o = ldapmodify_root(
        &supplier.url(),
        "dn: uid=people-7,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: renamed-seven\n",
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_converged(&[&supplier, &consumer], Duration::from_secs(120));
    for url in [supplier.url(), consumer.url()] {
        assert_eq!(
            sorted_dns(&url, "(sn=renamed-*)"),
            vec!["uid=people-7,ou=people,dc=example,dc=com".to_string()]
        );
        assert!(sorted_dns(&url, "(sn=people7)").is_empty());
    }
}
