//! Writes the seed corpus into fuzz/corpus/<target>/ (run from fuzz/:
//! `cargo run --example gen_corpus`). Binary seeds (BER) are built with
//! ldap3_proto's encoder so they are valid messages to mutate from.

use bytes::BytesMut;
use ldap3_lber::structures::{ASNTag, Tag};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::*;
use ldap3_proto::LdapCodec;
use std::path::Path;
use tokio_util::codec::Encoder;

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

fn ber(msgs: Vec<LdapMsg>) -> Vec<u8> {
    let mut codec = LdapCodec::default();
    let mut buf = BytesMut::new();
    for m in msgs {
        codec.encode(m, &mut buf).unwrap();
    }
    buf.to_vec()
}

fn m(id: i32, op: LdapOp) -> LdapMsg {
    LdapMsg::new(id, op)
}

fn f(text: &str) -> LdapFilter {
    ldap3_proto::parse_ldap_filter_str(text).unwrap()
}

fn search(base: &str, scope: LdapSearchScope, filter: &str, attrs: &[&str]) -> LdapOp {
    LdapOp::SearchRequest(LdapSearchRequest {
        base: base.into(),
        scope,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter: f(filter),
        attrs: attrs.iter().map(|s| s.to_string()).collect(),
    })
}

fn attr(name: &str, vals: &[&str]) -> LdapPartialAttribute {
    LdapPartialAttribute {
        atype: name.into(),
        vals: vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
    }
}

fn bind(dn: &str, pw: &str) -> LdapOp {
    LdapOp::BindRequest(LdapBindRequest {
        version: 3,
        dn: dn.into(),
        cred: LdapBindCred::Simple(pw.into()),
    })
}

fn main() {
    // --- dn
    for (i, dn) in [
        "uid=jdoe,ou=People,dc=example,dc=com",
        "cn=Smith\\, John+uid=js,o=Acme\\2c Inc.,dc=x",
        "cn=\\#lead\\ and trail\\ ,dc=x",
        "cn=caf\\C3\\A9;dc=x",
        "cn=#04024869,2.5.4.3=x , dc = y",
        "",
    ]
    .iter()
    .enumerate()
    {
        write("dn", &format!("seed-{i}"), dn.as_bytes());
    }

    // --- filter: 0x00 + text, 0x01 + BER
    let filters = [
        "(&(objectClass=person)(|(uid=bjensen)(cn=Babs*))(!(sn=Smith)))",
        "(cn=*Jen*s*n)",
        "(uidNumber>=1000)",
        "(modifyTimestamp<=20250101000000Z)",
        "(mail~=bjensen@example.com)",
        "(cn:caseExactMatch:=Babs Jensen)",
        "(uid:dn:2.5.13.2:=bjensen)",
        "(:1.2.840.113556.1.4.803:=4)",
        "(description=caf\\c3\\a9*)",
        "(member=uid=a,dc=example,dc=com)",
        "(hasSubordinates=FALSE)",
        "(entryDN=uid=bjensen+cn=Babs Jensen,ou=People,dc=example,dc=com)",
    ];
    for (i, text) in filters.iter().enumerate() {
        let mut t = vec![0u8];
        t.extend_from_slice(text.as_bytes());
        write("filter", &format!("text-{i}"), &t);
        // Not every RFC 4515 form parses with ldap3_proto's text parser.
        let Ok(filter) = ldap3_proto::parse_ldap_filter_str(text) else {
            eprintln!("no BER seed for {text} (ldap3_proto does not parse it)");
            continue;
        };
        let tag: Tag = filter.into();
        let tag = tag.into_structure();
        let mut b = BytesMut::new();
        ldap3_lber::write::encode_into(&mut b, tag).unwrap();
        let mut t = vec![1u8];
        t.extend_from_slice(&b);
        write("filter", &format!("ber-{i}"), &t);
    }

    // --- ldif
    write(
        "ldif",
        "entries",
        b"version: 1\n\n# a comment\ndn: dc=example,dc=com\nobjectClass: top\nobjectClass: domain\ndc: example\n\ndn:: dWlkPWrDtnJnLGRjPWV4YW1wbGUsZGM9Y29t\ncn: J\xc3\xb6rg\ndescription:: AAEC/w==\ndescription: a long line that is fol\n ded over two lines\nuserPassword:\n",
    );
    write(
        "ldif",
        "changes",
        b"dn: uid=a,dc=x\nchangetype: add\ncn: a\n\ndn: uid=a,dc=x\ncontrol: 1.2.840.113556.1.4.805 true\nchangetype: delete\n\ndn: uid=a,dc=x\nchangetype: modify\nadd: mail\nmail: a@x\n-\ndelete: cn\n-\nreplace: sn\nsn: b\n-\nincrement: uidNumber\nuidNumber: 1\n-\n\ndn: uid=a,dc=x\nchangetype: modrdn\nnewrdn: uid=b\ndeleteoldrdn: 1\nnewsuperior: ou=y,dc=x\n",
    );
    write(
        "ldif",
        "crlf",
        b"dn: cn=a,dc=x\r\ncn: a\r\n \r\n continued\r\njpegPhoto:< file:///dev/null\r\n",
    );

    // --- schema: 0x00 alone, 0x01 after 00-system.ldif
    let alone = "dn: cn=schema\nobjectClass: top\nattributeTypes: ( 1.1.1 NAME 'a' DESC 'x' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{64} SINGLE-VALUE )\nobjectClasses: ( 1.1.2 NAME 'oc' SUP top STRUCTURAL MUST a MAY ( a $ a ) )\n";
    let mut t = vec![0u8];
    t.extend_from_slice(alone.as_bytes());
    write("schema", "alone", &t);
    let with_system = "dn: cn=schema\nattributeTypes: ( 1.3.6.1.4.1.99999.1 NAME ( 'fuzzAttr' 'fa' )\n  SUP name ORDERING caseIgnoreOrderingMatch SUBSTR caseIgnoreSubstringsMatch\n  USAGE userApplications X-ORIGIN 'fuzz' )\nattributeTypes: ( 1.3.6.1.4.1.99999.2 NAME 'fuzzInt' EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 NO-USER-MODIFICATION USAGE directoryOperation )\nobjectClasses: ( 1.3.6.1.4.1.99999.3 NAME 'fuzzClass' SUP top AUXILIARY MAY ( fuzzAttr $ fuzzInt ) )\n";
    let mut t = vec![1u8];
    t.extend_from_slice(with_system.as_bytes());
    write("schema", "with-system", &t);

    // --- request / codec: BER messages
    let people = "ou=People,dc=example,dc=com";
    let add = LdapOp::AddRequest(LdapAddRequest {
        dn: "uid=carol,ou=People,dc=example,dc=com".into(),
        attributes: vec![
            attr("objectClass", &["top", "person", "inetOrgPerson"]),
            attr("uid", &["carol"]),
            attr("cn", &["Carol"]),
            attr("sn", &["Singer"]),
            attr("userPassword", &["pw"]),
        ],
    });
    let modify = LdapOp::ModifyRequest(LdapModifyRequest {
        dn: "uid=alice,ou=People,dc=example,dc=com".into(),
        changes: vec![
            LdapModify {
                operation: LdapModifyType::Replace,
                modification: attr("mail", &["a@example.org"]),
            },
            LdapModify {
                operation: LdapModifyType::Add,
                modification: attr("description", &["x"]),
            },
            LdapModify {
                operation: LdapModifyType::Delete,
                modification: attr("sn", &["Liddell"]),
            },
            LdapModify {
                operation: LdapModifyType::Increment,
                modification: attr("uidNumber", &["1"]),
            },
        ],
    });
    let moddn = LdapOp::ModifyDNRequest(LdapModifyDNRequest {
        dn: "uid=bob,ou=People,dc=example,dc=com".into(),
        newrdn: "uid=robert".into(),
        deleteoldrdn: true,
        new_superior: Some("ou=Groups,dc=example,dc=com".into()),
    });
    let compare = LdapOp::CompareRequest(LdapCompareRequest {
        dn: "uid=alice,ou=People,dc=example,dc=com".into(),
        atype: "cn".into(),
        val: b"alice liddell".to_vec(),
    });
    let passwd = LdapOp::ExtendedRequest(
        LdapPasswordModifyRequest {
            user_identity: Some("uid=bob,ou=People,dc=example,dc=com".into()),
            old_password: Some("password".into()),
            new_password: None,
        }
        .into(),
    );
    let whoami = LdapOp::ExtendedRequest(LdapWhoamiRequest {}.into());
    let mut paged = m(
        7,
        search(
            people,
            LdapSearchScope::OneLevel,
            "(objectClass=*)",
            &["cn", "+"],
        ),
    );
    paged.ctrl = vec![LdapControl::SimplePagedResults {
        size: 1,
        cookie: Vec::new(),
    }];
    let seeds: Vec<(&str, u8, Vec<LdapMsg>)> = vec![
        (
            "search-sub",
            0,
            vec![m(
                1,
                search(
                    "dc=example,dc=com",
                    LdapSearchScope::Subtree,
                    "(&(objectClass=person)(|(uid=al*)(cn=*ob*)))",
                    &["cn", "mail", "entryDN", "hasSubordinates"],
                ),
            )],
        ),
        (
            "search-rootdse-schema",
            1,
            vec![
                m(
                    1,
                    search("", LdapSearchScope::Base, "(objectClass=*)", &["*", "+"]),
                ),
                m(
                    2,
                    search(
                        "cn=schema",
                        LdapSearchScope::Base,
                        "(objectClass=subschema)",
                        &["attributeTypes"],
                    ),
                ),
            ],
        ),
        ("search-paged", 0, vec![paged]),
        (
            "bind-anon-search",
            1,
            vec![
                m(1, bind("uid=alice,ou=People,dc=example,dc=com", "password")),
                m(
                    2,
                    search(people, LdapSearchScope::Subtree, "(uidNumber>=1000)", &[]),
                ),
                m(3, LdapOp::UnbindRequest),
            ],
        ),
        (
            "root-bind-writes",
            1,
            vec![
                m(1, bind("cn=Directory Manager", "secret")),
                m(2, add),
                m(3, modify),
                m(4, moddn),
                m(5, compare),
                m(
                    6,
                    LdapOp::DelRequest("cn=staff,ou=Groups,dc=example,dc=com".into()),
                ),
            ],
        ),
        (
            "extended",
            1,
            vec![
                m(1, bind("uid=bob,ou=People,dc=example,dc=com", "password")),
                m(2, passwd),
                m(3, whoami),
            ],
        ),
        ("abandon", 0, vec![m(1, LdapOp::AbandonRequest(1))]),
    ];
    for (name, mode, msgs) in seeds {
        let b = ber(msgs);
        write("codec", name, &b);
        let mut t = vec![mode];
        t.extend_from_slice(&b);
        write("request", name, &t);
    }

    // --- request: an anonymous add of a DN of 6,000 RDNs (beyond
    // max_dn_depth; it once overflowed the access check's stack)
    let deep: Vec<String> = (0..6000).rev().map(|i| format!("ou=x{i}")).collect();
    let deep_add = LdapOp::AddRequest(LdapAddRequest {
        dn: format!("{},dc=example,dc=com", deep.join(",")),
        attributes: vec![
            attr("objectClass", &["organizationalUnit"]),
            attr("ou", &["x0"]),
        ],
    });
    let mut t = vec![1u8];
    t.extend_from_slice(&ber(vec![m(1, deep_add)]));
    write("request", "deep-dn-add", &t);

    // --- frame: byte 0 limits/budget, byte 1 read size, then the stream
    let frame = |name: &str, stream: &[u8]| {
        let mut t = vec![0x41u8, 7];
        t.extend_from_slice(stream);
        write("frame", name, &t);
    };
    let whoami_op = tlv(0x77, &tlv(0x80, b"1.3.6.1.4.1.4203.1.11.3"));
    for (name, id) in [
        ("msgid-ok", &[0x01][..]),
        ("msgid-max", &[0x7f, 0xff, 0xff, 0xff]),
        ("msgid-negative", &[0xfb]),
        ("msgid-zero", &[0x00]),
        ("msgid-2-40", &[0x01, 0, 0, 0, 0, 0]),
        ("msgid-padded", &[0, 0, 0, 0, 0, 0, 0, 0, 0, 7]),
    ] {
        frame(name, &raw_message(id, &whoami_op));
    }
    // Every application tag 0..=31, constructed and primitive.
    let mut all_tags = Vec::new();
    for number in 0u8..=31 {
        for form in [0x40u8, 0x60] {
            all_tags.extend(raw_message(&[1], &tlv(form | number, b"")));
        }
    }
    frame("every-tag", &all_tags);
    frame(
        "bind-response",
        &ber(vec![m(
            3,
            LdapOp::BindResponse(LdapBindResponse {
                res: LdapResult {
                    code: LdapResultCode::Success,
                    matcheddn: String::new(),
                    message: String::new(),
                    referral: Vec::new(),
                },
                saslcreds: None,
            }),
        )]),
    );
    for (name, size, time) in [
        ("search-size-negative", &[0xff][..], &[0x00][..]),
        ("search-time-negative", &[0x00], &[0xff]),
        ("search-size-2-40", &[0x01, 0, 0, 0, 0, 0], &[0x00]),
    ] {
        let mut c = tlv(0x04, b"");
        c.extend(tlv(0x0a, &[0]));
        c.extend(tlv(0x0a, &[0]));
        c.extend(tlv(0x02, size));
        c.extend(tlv(0x02, time));
        c.extend(tlv(0x01, &[0])); // typesOnly
        c.extend(tlv(0x87, b"objectClass"));
        c.extend(tlv(0x30, b""));
        frame(name, &raw_message(&[2], &tlv(0x63, &c)));
    }
    frame("abandon-negative", &raw_message(&[3], &tlv(0x50, &[0xfb])));
    // A header announcing 15 MiB, then nothing.
    frame("partial-15mib", &[0x30, 0x84, 0x00, 0xf0, 0x00, 0x00, 0x02, 0x01, 0x01]);
}

/// One BER element with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// An LDAPMessage with raw messageID contents and a raw protocolOp.
fn raw_message(id: &[u8], op: &[u8]) -> Vec<u8> {
    let mut inner = tlv(0x02, id);
    inner.extend_from_slice(op);
    tlv(0x30, &inner)
}
