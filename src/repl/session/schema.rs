//! Schema replication, supplier side: at the start of every session (and
//! again when the local schema changes during one), before any change or
//! entry, the supplier reads the consumer's user definitions with their
//! CSNs (`ferrodirSchemaDefinition` on cn=schema), works out with the same
//! merge the consumer runs (`Schema::merge_replicated`) what the consumer
//! lacks or holds older, and adds those to cn=schema as the replication
//! identity. Definitions that clash are sent too, so the consumer logs the
//! conflict as well; neither side applies them. Nothing is ever removed.

use super::agreement::name_of;
use super::client::Client;
use super::incremental::SessionError;
use crate::directory::Directory;
use crate::model::Csn;
use crate::schema::{UserDefinition, REPLICATED_DEFINITION_ATTR};

/// What the local user schema looked like when last pushed: its newest CSN
/// and its size (a delete lowers the size without a newer CSN).
pub(super) type SchemaMark = (Option<Csn>, usize);

pub(super) fn schema_mark(dir: &Directory) -> SchemaMark {
    let schema = dir.schema();
    let defs = schema.user_definitions();
    (defs.iter().map(|d| d.csn).max(), defs.len())
}

/// Brings the consumer's schema up to the supplier's user definitions.
pub(super) async fn push_schema(
    dir: &Directory,
    cfg: &crate::directory::repl::AgreementConfig,
    client: &mut Client,
) -> Result<SchemaMark, SessionError> {
    let mark = schema_mark(dir);
    let local = dir.schema();
    if local.user_definitions().is_empty() {
        return Ok(mark);
    }
    let found = client
        .search(
            "cn=schema",
            ("objectClass", None),
            &[REPLICATED_DEFINITION_ATTR],
        )
        .await?;
    let mut held = Vec::new();
    for entry in &found {
        for (name, values) in &entry.attrs {
            if !name.eq_ignore_ascii_case(REPLICATED_DEFINITION_ATTR) {
                continue;
            }
            for v in values {
                held.push(
                    UserDefinition::from_replicated_value(v)
                        .map_err(|e| SessionError::Answer(format!("consumer's cn=schema: {e}")))?,
                );
            }
        }
    }
    // The consumer's schema as this server would hold it (same release,
    // same shipped definitions).
    let (consumer, _) = local.with_stored_definitions(held);
    let merge = consumer.merge_replicated(local.user_definitions());
    let peer = format!("consumer {}:{}", cfg.host, cfg.port);
    dir.note_schema_conflicts(&peer, local.user_definitions(), &merge.conflicts);
    let send: Vec<Vec<u8>> = local
        .user_definitions()
        .iter()
        .filter(|d| {
            merge
                .stored
                .iter()
                .any(|s| s.kind == d.kind && s.oid == d.oid)
                || merge
                    .conflicts
                    .iter()
                    .any(|c| c.kind == d.kind && c.oid == d.oid)
        })
        .map(|d| d.replicated_value().into_bytes())
        .collect();
    if send.is_empty() {
        return Ok(mark);
    }
    tracing::info!(
        "agreement {}: sending {} schema definitions ({} conflicting) to the consumer",
        name_of(cfg),
        send.len(),
        merge.conflicts.len()
    );
    client
        .modify_add(
            "schema replication",
            "cn=schema",
            REPLICATED_DEFINITION_ATTR,
            send,
        )
        .await?;
    Ok(mark)
}
