//! Every object identifier the server speaks, in one place: LDAP extended
//! operations, controls and features it supports, and the OIDs of its own
//! replication protocol.

/// RFC 4511 §4.14: StartTLS extended operation.
pub const STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
/// RFC 4511 §4.4.1: unsolicited Notice of Disconnection.
pub const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";
/// RFC 3062: Password Modify extended operation.
pub const PASSWORD_MODIFY: &str = "1.3.6.1.4.1.4203.1.11.1";
/// RFC 4532: Who am I? extended operation.
pub const WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";

/// RFC 2696: simple paged results control.
pub const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// RFC 3296: ManageDsaIT control.
pub const MANAGE_DSA_IT: &str = "2.16.840.1.113730.3.4.2";
/// Server-side sort request and response (RFC 2891).
pub const SORT_REQUEST: &str = "1.2.840.113556.1.4.473";
pub const SORT_RESPONSE: &str = "1.2.840.113556.1.4.474";
/// Virtual list view request and response (draft-ietf-ldapext-ldapv3-vlv-09).
pub const VLV_REQUEST: &str = "2.16.840.1.113730.3.4.9";
pub const VLV_RESPONSE: &str = "2.16.840.1.113730.3.4.10";
/// Assertion control (RFC 4528).
pub const ASSERTION: &str = "1.3.6.1.1.12";
/// Pre-read and post-read controls (RFC 4527).
pub const PRE_READ: &str = "1.3.6.1.1.13.1";
pub const POST_READ: &str = "1.3.6.1.1.13.2";
/// Don't Use Copy (RFC 6171).
pub const DONT_USE_COPY: &str = "1.3.6.1.1.22";
/// RFC 4533: content synchronisation request control.
pub const SYNC_REQUEST: &str = "1.3.6.1.4.1.4203.1.9.1.1";
/// draft-behera-ldap-password-policy: password policy request control.
pub const PASSWORD_POLICY_REQUEST: &str = "1.3.6.1.4.1.42.2.27.8.5.1";
/// Active Directory controls ldap3_proto decodes by name.
pub const AD_SEARCH_OPTIONS: &str = "1.2.840.113556.1.4.1340";
pub const AD_SHOW_DELETED: &str = "1.2.840.113556.1.4.417";
pub const AD_SD_FLAGS: &str = "1.2.840.113556.1.4.801";
pub const AD_EXTENDED_DN: &str = "1.2.840.113556.1.4.529";

/// RFC 3673: all operational attributes (`+`).
pub const FEATURE_ALL_OPERATIONAL: &str = "1.3.6.1.4.1.4203.1.5.1";
/// RFC 4525: modify-increment.
pub const FEATURE_MODIFY_INCREMENT: &str = "1.3.6.1.1.14";
/// RFC 4526: absolute true and false filters.
pub const FEATURE_ABSOLUTE_FILTERS: &str = "1.3.6.1.4.1.4203.1.5.3";

/// ferrodir's replication protocol lives under one 2.25 (UUID) arc, which
/// needs no registration (ITU-T X.667).
macro_rules! repl_oid {
    ($n:literal) => {
        concat!("2.25.283765197135925208705784076489341859982.3.", $n)
    };
}
pub const REPL_START: &str = repl_oid!("1");
pub const REPL_CHANGES: &str = repl_oid!("2");
pub const REPL_TOTAL_ENTRIES: &str = repl_oid!("3");
pub const REPL_TOTAL_END: &str = repl_oid!("4");
pub const REPL_TEST_AGREEMENT: &str = repl_oid!("5");
pub const REPL_CATCHUP_ENTRIES: &str = repl_oid!("6");
pub const REPL_CATCHUP_PRESENT: &str = repl_oid!("7");
pub const REPL_CATCHUP_END: &str = repl_oid!("8");

/// The master/slave role's extended operations (docs/master-slave.md):
/// create a synchronization key (root DN), join with one (anyone holding
/// the key).
pub const MASTER_CREATE_KEY: &str = "2.25.283765197135925208705784076489341859982.4.1";
pub const MASTER_JOIN: &str = "2.25.283765197135925208705784076489341859982.4.2";

/// The replication extended operations a supplier sends to a consumer.
pub const REPL_ALL: [&str; 8] = [
    REPL_START,
    REPL_CHANGES,
    REPL_TOTAL_ENTRIES,
    REPL_TOTAL_END,
    REPL_TEST_AGREEMENT,
    REPL_CATCHUP_ENTRIES,
    REPL_CATCHUP_PRESENT,
    REPL_CATCHUP_END,
];
