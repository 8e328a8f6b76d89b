//! The root DSE (RFC 4512 §5.1), the subschema subentry (cn=schema) and
//! the RUV entry of each replicated suffix, served from memory.

use super::extended::OID_STARTTLS;
use super::Shared;
use crate::directory::state_export::RUV_UNIQUE_ID;
use crate::model::{Attribute, Csn, Dn, Entry, Identity};
use crate::query::filter::{EvalContext, Tri};
use ldap3_proto::proto::{LdapFilter, LdapPartialAttribute, OID_PASSWORD_MODIFY, OID_WHOAMI};
use std::sync::atomic::{AtomicU8, Ordering};

/// TLS features the root DSE advertises: bit 0 StartTLS, bit 1 SASL EXTERNAL.
/// Set once by the server layer at start.
static TLS_FEATURES: AtomicU8 = AtomicU8::new(0);

/// Records what the server offers: StartTLS (TLS configured) and SASL
/// EXTERNAL (client certificates asked for).
pub fn set_tls_features(starttls: bool, external: bool) {
    TLS_FEATURES.store(
        u8::from(starttls) | (u8::from(external) << 1),
        Ordering::Relaxed,
    );
}

fn tls_features() -> (bool, bool) {
    let f = TLS_FEATURES.load(Ordering::Relaxed);
    (f & 1 != 0, f & 2 != 0)
}

pub struct SyntheticAttr {
    pub name: &'static str,
    pub values: Vec<Vec<u8>>,
    pub operational: bool,
}

fn attr(name: &'static str, operational: bool, values: Vec<Vec<u8>>) -> SyntheticAttr {
    SyntheticAttr {
        name,
        values,
        operational,
    }
}

fn texts<I: IntoIterator<Item = S>, S: Into<String>>(v: I) -> Vec<Vec<u8>> {
    v.into_iter().map(|s| s.into().into_bytes()).collect()
}

pub fn root_dse(shared: &Shared, starttls: bool) -> Vec<SyntheticAttr> {
    let cfg = shared.dir.config();
    let (tls_on, external) = tls_features();
    let mut extensions = vec![OID_WHOAMI, OID_PASSWORD_MODIFY];
    extensions.extend(crate::model::oid::REPL_ALL);
    if starttls || tls_on {
        extensions.push(OID_STARTTLS);
    }
    let sasl: Vec<&str> = if external {
        vec!["EXTERNAL"]
    } else {
        Vec::new()
    };
    vec![
        attr("objectClass", false, texts(["top", "extensibleObject"])),
        attr(
            "namingContexts",
            true,
            texts(cfg.suffixes.iter().map(|s| s.to_string())),
        ),
        attr("supportedLDAPVersion", true, texts(["3"])),
        attr("supportedControl", true, texts(super::controls::SUPPORTED)),
        attr("supportedExtension", true, texts(extensions)),
        attr(
            "supportedFeatures",
            true,
            // all operational attributes (+), modify-increment, absolute true/false filters
            texts([
                crate::model::oid::FEATURE_ALL_OPERATIONAL,
                crate::model::oid::FEATURE_MODIFY_INCREMENT,
                crate::model::oid::FEATURE_ABSOLUTE_FILTERS,
            ]),
        ),
        attr("supportedSASLMechanisms", true, texts(sasl)),
        attr("subschemaSubentry", true, texts(["cn=schema"])),
        attr("vendorName", true, texts([super::VENDOR_NAME])),
        attr(
            "vendorVersion",
            true,
            texts([format!("ferrodir {}", super::VENDOR_VERSION)]),
        ),
    ]
}

/// The subschema subentry: the definitions in force, and (once cn=schema
/// has been changed over LDAP) its modifyTimestamp and schema CSN
/// (`nsSchemaCSN`, as 389-ds names it); its `aci` values for those who may
/// write them.
pub fn subschema(shared: &Shared, who: &Identity) -> Vec<SyntheticAttr> {
    let mut out = vec![
        attr(
            "objectClass",
            false,
            texts(["top", "subschema", "ldapSubentry", "extensibleObject"]),
        ),
        attr("cn", false, texts(["schema"])),
        attr("entryDN", true, texts(["cn=schema"])),
        attr("subschemaSubentry", true, texts(["cn=schema"])),
    ];
    match shared.dir.subschema_state(who) {
        Ok(state) => {
            out.push(attr("modifyTimestamp", true, texts(state.modify_timestamp)));
            out.push(attr(
                "nsSchemaCSN",
                true,
                texts(state.csn.map(|c| c.to_string())),
            ));
            out.push(attr("aci", true, state.acis));
        }
        Err(e) => tracing::error!("reading the state of cn=schema: {e}"),
    }
    let schema = shared.dir.schema();
    out.push(attr(
        crate::schema::REPLICATED_DEFINITION_ATTR,
        true,
        schema
            .user_definitions()
            .iter()
            .map(|d| d.replicated_value().into_bytes())
            .collect(),
    ));
    for (name, values) in schema.subschema_attributes() {
        let name: &'static str = match name.to_ascii_lowercase().as_str() {
            "attributetypes" => "attributeTypes",
            "objectclasses" => "objectClasses",
            "ldapsyntaxes" => "ldapSyntaxes",
            "matchingrules" => "matchingRules",
            "matchingruleuse" => "matchingRuleUse",
            _ => continue,
        };
        out.push(attr(name, true, values));
    }
    out
}

pub use crate::directory::is_subschema_dn;

/// The replica update vector of a replicated suffix as 389-ds serves it:
/// the entry `nsuniqueid=ffffffff-ffffffff-ffffffff-ffffffff,<suffix>` with
/// `nsds50ruv: {replicageneration} <generation>` and one
/// `nsds50ruv: {replica <rid>} <min CSN> <max CSN>` per replica ID (the
/// format of `ferrodir export --replication-state`). Only the root DN sees
/// it, and only by a base search of that DN: `ferrodir repl check` reads
/// it to compare replicas as of CSNs all of them hold. None when `base` is
/// not that DN of a replicated suffix.
pub fn ruv_entry(shared: &Shared, who: &Identity, base: &Dn) -> Option<Vec<SyntheticAttr>> {
    if !who.root {
        return None;
    }
    let rdn = base.rdn()?;
    let [ava] = rdn.avas.as_slice() else {
        return None;
    };
    if !ava.attr.eq_ignore_ascii_case("nsuniqueid")
        || !ava.value.eq_ignore_ascii_case(RUV_UNIQUE_ID.as_bytes())
    {
        return None;
    }
    let ruv = shared.dir.ruv(&base.parent()?).ok()?;
    let mut values = vec![format!("{{replicageneration}} {}", ruv.generation)];
    for (rid, e) in &ruv.replicas {
        values.push(format!("{{replica {rid}}} {} {}", e.min, e.max));
    }
    Some(vec![
        attr(
            "objectClass",
            false,
            texts(["top", "nsTombstone", "extensibleObject"]),
        ),
        attr("nsUniqueId", false, texts([RUV_UNIQUE_ID])),
        attr("nsds50ruv", false, texts(values)),
    ])
}

/// Whether the synthetic entry matches the search filter.
pub fn matches(shared: &Shared, dn: &str, attrs: &[SyntheticAttr], filter: &LdapFilter) -> bool {
    let Ok(dn) = Dn::parse(dn) else {
        return false;
    };
    let entry = Entry {
        dn,
        attrs: attrs
            .iter()
            .map(|a| Attribute::new(a.name, a.values.clone(), Csn::ZERO))
            .collect(),
    };
    let ctx = EvalContext {
        schema: &shared.dir.schema(),
        hidden: &|_| false,
        computed: &|_, _| None,
    };
    ctx.eval(filter, &entry) == Tri::True
}

/// Attribute selection for synthetic entries: user attributes for `*` (or
/// no list), operational ones for `+` or by name.
pub fn select(
    attrs: Vec<SyntheticAttr>,
    requested: &[String],
    types_only: bool,
) -> Vec<LdapPartialAttribute> {
    let all_user = requested.is_empty() || requested.iter().any(|r| r == "*");
    let all_oper = requested.iter().any(|r| r == "+");
    attrs
        .into_iter()
        .filter(|a| !a.values.is_empty())
        .filter(|a| {
            (if a.operational { all_oper } else { all_user })
                || requested.iter().any(|r| r.eq_ignore_ascii_case(a.name))
        })
        .map(|a| LdapPartialAttribute {
            atype: a.name.to_string(),
            vals: if types_only { Vec::new() } else { a.values },
        })
        .collect()
}
