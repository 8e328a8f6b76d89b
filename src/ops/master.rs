//! The master/slave role's extended operations (docs/master-slave.md).
//!
//! Create key (root DN only): the server makes a synchronization key that
//! pins the certificate it serves now and answers with it and its Device
//! ID. Join (anyone holding a key): the key's ID and secret, the slave's
//! Device ID and host name; the answer is the slave's replication identity
//! and credential and the suffixes to follow. Both values are JSON.

use super::{result, Shared};
use crate::directory::Identity;
use ldap3_proto::proto::{LdapExtendedRequest, LdapExtendedResponse, LdapResultCode};
use serde::{Deserialize, Serialize};

/// A join request's value.
#[derive(Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    pub key_id: String,
    pub secret: String,
    pub device_id: String,
    #[serde(default)]
    pub host: String,
}

/// A join response's value.
#[derive(Debug, Serialize, Deserialize)]
pub struct JoinResponse {
    pub bind_dn: String,
    pub password: String,
    pub suffixes: Vec<String>,
    pub master: String,
}

/// A create-key response's value.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyResponse {
    pub device_id: String,
    pub key: String,
}

/// Largest request value accepted (a join request is about 200 bytes).
const MAX_VALUE: usize = 4096;

fn reply(code: LdapResultCode, message: impl Into<String>) -> LdapExtendedResponse {
    LdapExtendedResponse {
        res: result::result(code, message),
        name: None,
        value: None,
    }
}

fn answer<T: Serialize>(value: &T) -> LdapExtendedResponse {
    match serde_json::to_vec(value) {
        Ok(bytes) => LdapExtendedResponse {
            res: result::success(),
            name: None,
            value: Some(bytes),
        },
        Err(e) => reply(LdapResultCode::Other, format!("encoding the answer: {e}")),
    }
}

pub(super) async fn create_key(
    shared: &Shared,
    who: &Identity,
    req: &LdapExtendedRequest,
) -> LdapExtendedResponse {
    if !who.root {
        return reply(
            LdapResultCode::InsufficentAccessRights,
            "only the root DN creates synchronization keys",
        );
    }
    let description = req
        .value
        .as_deref()
        .filter(|v| v.len() <= MAX_VALUE)
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or_default();
    let Some(pin) = shared.certificate_pin.as_ref().and_then(|p| p()) else {
        return reply(
            LdapResultCode::UnwillingToPerform,
            "a master needs TLS: slaves pin its certificate and follow it over TLS \
             (TLS is disabled on this server)",
        );
    };
    let created = shared.dir.create_join_key(pin, Some(description)).await;
    match (created, shared.dir.device_id()) {
        (Ok(key), Ok(device_id)) => answer(&KeyResponse {
            device_id,
            key: key.render(),
        }),
        (Err(e), _) | (_, Err(e)) => LdapExtendedResponse {
            res: result::from_error(&e),
            name: None,
            value: None,
        },
    }
}

pub(super) async fn join(shared: &Shared, req: &LdapExtendedRequest) -> LdapExtendedResponse {
    let request: JoinRequest = match req
        .value
        .as_deref()
        .filter(|v| v.len() <= MAX_VALUE)
        .map(serde_json::from_slice)
    {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return reply(
                LdapResultCode::ProtocolError,
                format!("a join request is JSON with key_id, secret, device_id and host: {e}"),
            )
        }
        None => {
            return reply(
                LdapResultCode::ProtocolError,
                format!("a join request needs a value of at most {MAX_VALUE} bytes"),
            )
        }
    };
    let checked = {
        let (dir, id, secret) = (
            shared.dir.clone(),
            request.key_id.clone(),
            request.secret.clone(),
        );
        tokio::task::spawn_blocking(move || dir.check_join_key(&id, &secret))
            .await
            .unwrap_or_else(|e| Err(crate::directory::DirError::Busy(e.to_string())))
    };
    let joined = match checked {
        Ok(()) => {
            shared
                .dir
                .join_slave(&request.key_id, &request.device_id, &request.host)
                .await
        }
        Err(e) => Err(e),
    };
    match joined {
        Ok(grant) => {
            tracing::info!(
                slave = %request.device_id,
                host = %request.host,
                key = %request.key_id,
                "a slave joined"
            );
            answer(&JoinResponse {
                bind_dn: grant.bind_dn.to_string(),
                password: grant.password,
                suffixes: grant.suffixes.iter().map(|s| s.to_string()).collect(),
                master: grant.master,
            })
        }
        Err(e) => {
            tracing::warn!(
                slave = %request.device_id,
                key = %request.key_id,
                "a join was refused: {e}"
            );
            LdapExtendedResponse {
                res: result::from_error(&e),
                name: None,
                value: None,
            }
        }
    }
}
