//! Chaining a user's own password change from a slave to its master: the
//! request goes to the provider of the suffix (the RFC 4533 consumer's
//! connection settings, its certificate pin included), bound with the
//! user's own credentials, so the master applies its own access rules and
//! password policy; the change then comes back with replication.

use super::client::ClientError;
use crate::directory::Directory;
use crate::model::Dn;
use crate::ops::{ChainError, WriteChain};
use futures::future::BoxFuture;
use futures::FutureExt;
use ldap3_proto::proto::LdapOp;

pub struct ProviderChain;

impl WriteChain for ProviderChain {
    fn chain<'a>(
        &'a self,
        dir: &'a Directory,
        target: &'a Dn,
        bind_dn: &'a Dn,
        password: &'a [u8],
        request: LdapOp,
    ) -> BoxFuture<'a, Option<Result<LdapOp, ChainError>>> {
        async move {
            let consumer = dir.sync_consumer_for(target)?;
            let provider = consumer.config.provider.clone();
            let unreachable = |e: ClientError| ChainError::Unreachable {
                provider: provider.clone(),
                reason: e.to_string(),
            };
            let mut client = match super::syncrepl::open(&consumer).await {
                Ok(c) => c,
                Err(e) => return Some(Err(unreachable(e))),
            };
            let password = String::from_utf8_lossy(password).to_string();
            match client.simple_bind(&bind_dn.to_string(), &password).await {
                Ok(()) => {}
                Err(e @ ClientError::Result { .. }) => {
                    return Some(Err(ChainError::BindRefused {
                        provider: provider.clone(),
                        message: e.to_string(),
                    }))
                }
                Err(e) => return Some(Err(unreachable(e))),
            }
            let answer = client
                .request("chained write", request)
                .await
                .map_err(unreachable);
            client.unbind().await;
            tracing::info!(dn = %target, master = %provider, "chained a password change to the master");
            Some(answer)
        }
        .boxed()
    }
}
