//! The cn=config entries of replication: replica and agreement entries
//! with 389-ds names, parsed, validated and kept in memory.

use super::*;

impl Core {
    /// Creates cn=config, the mapping tree and one node per suffix when missing.
    pub(crate) fn bootstrap_config(&self) -> DirResult<()> {
        let mut txn = self.store.write()?;
        let csn = Csn::new(time::now_secs(), 0, self.cfg.replica_id, 0);
        let stamp = time::generalized_time(u64::from(csn.time));
        let mut nodes: Vec<(Dn, ConfigAttrs)> = vec![
            (
                config_dn(),
                vec![
                    (
                        "objectClass",
                        vec![b"top".to_vec(), b"ferrodirConfig".to_vec()],
                    ),
                    ("cn", vec![b"config".to_vec()]),
                ],
            ),
            (
                mapping_tree_dn(),
                vec![
                    (
                        "objectClass",
                        vec![b"top".to_vec(), b"nsMappingTree".to_vec()],
                    ),
                    ("cn", vec![b"mapping tree".to_vec()]),
                ],
            ),
            (
                syncrepl::syncrepl_dn(),
                vec![
                    (
                        "objectClass",
                        vec![b"top".to_vec(), b"applicationProcess".to_vec()],
                    ),
                    ("cn", vec![b"syncrepl".to_vec()]),
                ],
            ),
        ];
        for s in &self.cfg.suffixes {
            let text = s.to_string();
            nodes.push((
                mapping_node(s),
                vec![
                    (
                        "objectClass",
                        vec![b"top".to_vec(), b"nsMappingTree".to_vec()],
                    ),
                    ("cn", vec![text.into_bytes()]),
                    ("nsslapd-state", vec![b"backend".to_vec()]),
                    ("nsslapd-backend", vec![b"userRoot".to_vec()]),
                ],
            ));
        }
        for (dn, attrs) in nodes {
            let key = self.dn_key(&dn);
            if txn.id_by_dn(&key)?.is_some() {
                continue;
            }
            let mut entry = Entry::new(dn.clone());
            for (name, values) in attrs {
                entry.attrs.push(Attribute::new(name, values, csn));
            }
            for (name, value) in [
                ("entryUUID", uuid::Uuid::new_v4().to_string()),
                ("creatorsName", String::new()),
                ("createTimestamp", stamp.clone()),
                ("modifiersName", String::new()),
                ("modifyTimestamp", stamp.clone()),
                ("entryCSN", csn.to_string()),
                (
                    "structuralObjectClass",
                    self.schema().structural_class(&entry).unwrap_or_default(),
                ),
            ] {
                if !value.is_empty() {
                    entry
                        .attrs
                        .push(Attribute::new(name, vec![value.into_bytes()], csn));
                }
            }
            let parent = match dn.parent() {
                Some(p) if !p.is_root() => txn.id_by_dn(&self.dn_key(&p))?.unwrap_or(0),
                _ => 0,
            };
            let uuid = crate::directory::write::entry_uuid(&entry)?;
            let id = txn.next_id()?;
            txn.put_entry(id, &entry)?;
            txn.put_dn(&key, id)?;
            if parent != 0 {
                txn.link_child(parent, id)?;
            }
            txn.put_uuid(&uuid, id)?;
            let keys = index::entry_keys(&self.schema(), &self.cfg.indexes, &entry);
            for k in keys {
                txn.index_add(&k, id)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Reads replica and agreement entries from cn=config.
    pub(crate) fn load_repl_state(&self, txn: &dyn StoreRead) -> DirResult<ReplState> {
        let mut state = ReplState::default();
        let mut agreements = Vec::new();
        for (_, id) in txn.subtree_keys(&self.dn_key(&mapping_tree_dn()))? {
            let Some(e) = txn.entry(id)? else { continue };
            if has_class(&e, "nsDS5Replica") {
                match self.parse_replica(&e) {
                    Ok(r) => state.replicas.push(r),
                    Err(err) => tracing::warn!(dn = %e.dn, "ignoring replica entry: {err}"),
                }
            } else if has_class(&e, "nsDS5ReplicationAgreement") {
                agreements.push(e);
            }
        }
        for e in agreements {
            match self.parse_agreement(&e, &state.replicas) {
                Ok(a) => state.agreements.push(a),
                Err(err) => tracing::warn!(dn = %e.dn, "ignoring agreement entry: {err}"),
            }
        }
        state.syncrepl = self.load_sync_consumers(txn)?;
        Ok(state)
    }

    pub(crate) fn parse_replica(&self, e: &Entry) -> DirResult<ReplicaConfig> {
        let root = first_text(e, "nsDS5ReplicaRoot")
            .ok_or_else(|| invalid("replica entry needs nsDS5ReplicaRoot".into()))?;
        let suffix = Dn::parse(&root).map_err(|err| invalid(format!("nsDS5ReplicaRoot: {err}")))?;
        let norm = self.norm_dn(&suffix);
        if !self.cfg.suffixes.iter().any(|s| self.norm_dn(s) == norm) {
            return Err(invalid(format!(
                "nsDS5ReplicaRoot '{root}' is not a suffix of this server"
            )));
        }
        let expected_parent = self.norm_dn(&mapping_node(&suffix));
        if e.dn.parent().map(|p| self.norm_dn(&p)) != Some(expected_parent) {
            return Err(invalid(format!(
                "the replica entry for '{root}' must be placed under '{}'",
                mapping_node(&suffix)
            )));
        }
        let kind: u8 = match first_text(e, "nsDS5ReplicaType").as_deref() {
            None | Some("3") => 3,
            Some("2") => 2,
            Some(other) => {
                return Err(invalid(format!(
                    "nsDS5ReplicaType must be 3 (updatable) or 2 (read-only), not {other}"
                )))
            }
        };
        let rid_text = first_text(e, "nsDS5ReplicaId").unwrap_or_default();
        let rid: u32 = rid_text
            .parse()
            .map_err(|_| invalid(format!("nsDS5ReplicaId '{rid_text}' is not a number")))?;
        if kind == 3 && !(1..=65534).contains(&rid) {
            return Err(invalid(format!(
                "nsDS5ReplicaId {rid} is out of range: updatable replicas use 1..65534"
            )));
        }
        if kind == 2 && rid != u32::from(READ_ONLY_RID) {
            return Err(invalid(format!(
                "nsDS5ReplicaId {rid} is wrong for a read-only replica: use 65535"
            )));
        }
        let mut bind_dns = Vec::new();
        for v in e.values("nsDS5ReplicaBindDN") {
            let text = String::from_utf8_lossy(v);
            let dn =
                Dn::parse(&text).map_err(|err| invalid(format!("nsDS5ReplicaBindDN: {err}")))?;
            bind_dns.push(self.norm_dn(&dn));
        }
        let purge_delay = match first_text(e, "nsds5ReplicaPurgeDelay") {
            None => DEFAULT_PURGE_DELAY,
            // 0 keeps state forever, as in 389-ds.
            Some(text) => match text.parse::<u64>() {
                Ok(0) => u64::MAX,
                Ok(secs) => secs,
                Err(_) => {
                    return Err(invalid(format!(
                        "nsds5ReplicaPurgeDelay '{text}' must be a number of seconds (0 = keep forever)"
                    )))
                }
            },
        };
        let extra = self.replica_settings(e)?;
        Ok(ReplicaConfig {
            suffix,
            purge_delay,
            purge_interval: extra.purge_interval,
            backoff_min: extra.backoff_min,
            backoff_max: extra.backoff_max,
            bind_dn_group: extra.bind_dn_group,
            rid: rid as u16,
            read_only: kind == 2,
            bind_dns,
            referrals: e
                .values("nsDS5ReplicaReferral")
                .iter()
                .map(|v| String::from_utf8_lossy(v).to_string())
                .collect(),
        })
    }

    pub(crate) fn parse_agreement(
        &self,
        e: &Entry,
        replicas: &[ReplicaConfig],
    ) -> DirResult<AgreementConfig> {
        let parent = e.dn.parent().unwrap_or_default();
        let parent_norm = self.norm_dn(&parent);
        let replica = replicas
            .iter()
            .find(|r| {
                self.norm_dn(&mapping_node(&r.suffix).child(crate::model::Rdn::single("cn", "replica")))
                    == parent_norm
            })
            .ok_or_else(|| {
                invalid(format!(
                    "an agreement must be placed under a replica entry (cn=replica,cn=<suffix>,{MAPPING_TREE_DN}); '{parent}' is not one"
                ))
            })?;
        if let Some(root) = first_text(e, "nsDS5ReplicaRoot") {
            let dn = Dn::parse(&root).map_err(|err| invalid(format!("nsDS5ReplicaRoot: {err}")))?;
            if self.norm_dn(&dn) != self.norm_dn(&replica.suffix) {
                return Err(invalid(format!(
                    "nsDS5ReplicaRoot '{root}' is not the replicated suffix '{}' of this replica",
                    replica.suffix
                )));
            }
        }
        let host = first_text(e, "nsDS5ReplicaHost")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("agreement needs nsDS5ReplicaHost".into()))?;
        let transport = match first_text(e, "nsDS5ReplicaTransportInfo")
            .unwrap_or_else(|| "LDAP".into())
            .to_ascii_uppercase()
            .as_str()
        {
            "LDAP" => Transport::Ldap,
            "LDAPS" | "SSL" => Transport::Ldaps,
            "STARTTLS" | "TLS" => Transport::StartTls,
            other => {
                return Err(invalid(format!(
                    "unknown nsDS5ReplicaTransportInfo '{other}': use LDAP, LDAPS or StartTLS"
                )))
            }
        };
        let port_text = first_text(e, "nsDS5ReplicaPort").unwrap_or_else(|| {
            if transport == Transport::Ldaps {
                "636"
            } else {
                "389"
            }
            .to_string()
        });
        let port: u16 = port_text.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            invalid(format!(
                "nsDS5ReplicaPort '{port_text}' is not a port number"
            ))
        })?;
        let bind_method = match first_text(e, "nsDS5ReplicaBindMethod")
            .unwrap_or_else(|| "SIMPLE".into())
            .to_ascii_uppercase()
            .as_str()
        {
            "SIMPLE" => BindMethod::Simple,
            "SSLCLIENTAUTH" => BindMethod::SslClientAuth,
            other => {
                return Err(invalid(format!(
                    "unknown nsDS5ReplicaBindMethod '{other}': use SIMPLE or SSLCLIENTAUTH"
                )))
            }
        };
        let bind_dn = first_text(e, "nsDS5ReplicaBindDN").unwrap_or_default();
        if bind_method == BindMethod::Simple && bind_dn.is_empty() {
            return Err(invalid(
                "a SIMPLE agreement needs nsDS5ReplicaBindDN".into(),
            ));
        }
        let credentials = match e.values("nsDS5ReplicaCredentials").first() {
            Some(v) => self.secrets.reveal(v)?,
            None => Vec::new(),
        };
        let enabled =
            !first_text(e, "nsds5ReplicaEnabled").is_some_and(|v| v.eq_ignore_ascii_case("off"));
        let extra = self.agreement_settings(e)?;
        Ok(AgreementConfig {
            fractional: extra.fractional,
            fractional_total: extra.fractional_total,
            schedule: extra.schedule,
            timeout: extra.timeout,
            busy_wait: extra.busy_wait,
            session_pause: extra.session_pause,
            dn: e.dn.clone(),
            suffix: replica.suffix.clone(),
            host,
            port,
            transport,
            bind_dn,
            bind_method,
            credentials,
            enabled,
            refresh_requested: first_text(e, "nsds5BeginReplicaRefresh")
                .is_some_and(|v| v.eq_ignore_ascii_case("start")),
        })
    }

    /// Checks a cn=config entry after a write; an error rolls the write back.
    pub(crate) fn validate_config_entry(&self, txn: &WriteTxn<'_>, dn: &Dn) -> DirResult<()> {
        // Any write under cn=config (a delete included: an agreement or a
        // consumer that goes) reloads the replication configuration.
        self.config_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let Some(id) = txn.id_by_dn(&self.dn_key(dn))? else {
            return Ok(());
        };
        let Some(e) = txn.entry(id)? else {
            return Ok(());
        };
        if has_class(&e, "nsDS5Replica") {
            self.parse_replica(&e)?;
        } else if has_class(&e, "nsDS5ReplicationAgreement") {
            let state = self.load_repl_state(txn)?;
            self.parse_agreement(&e, &state.replicas)?;
        } else if has_class(&e, syncrepl::SYNCREPL_CLASS) {
            self.validate_sync_consumer(txn, &e)?;
        }
        Ok(())
    }
}
