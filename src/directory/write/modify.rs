//! Modify: add, delete, replace and increment (RFC 4525), applied in
//! order to a copy of the entry that is checked as a whole before it is
//! stored.

use super::*;

impl Core {
    pub(super) fn modify(
        &self,
        txn: &mut WriteTxn<'_>,
        dn: &Dn,
        mods: &[super::Modification],
        stamp: &Stamp,
    ) -> DirResult<([u8; 16], Change)> {
        let (id, _key, old) = self.load(txn, dn)?;
        let mut new = old.clone();
        let csn = stamp.csn;
        // The modifications as applied (hashed passwords, canonical names), for the changelog.
        let mut applied: Vec<Modification> = Vec::with_capacity(mods.len() + 3);
        for m in mods {
            let at = self.resolve_attr(&m.attr)?;
            let name = at.name().to_string();
            if at.no_user_modification && stamp.origin == Origin::Client {
                return Err(DirError::ConstraintViolation(format!(
                    "attribute '{name}' is not user-modifiable"
                )));
            }
            match m.op {
                ModOp::Add => {
                    if m.values.is_empty() {
                        return Err(DirError::Protocol(format!(
                            "modify/add of '{name}' needs at least one value"
                        )));
                    }
                    self.check_syntax_all(&at, &m.values)?;
                    let prepared = self.prepare_values(&at, &m.values, stamp.origin);
                    applied.push(Modification {
                        op: ModOp::Add,
                        attr: name.clone(),
                        values: prepared.clone(),
                    });
                    for v in prepared {
                        let existing = new.get(&name).map(|a| a.values.as_slice()).unwrap_or(&[]);
                        if self.find_value(&at, existing, &v)?.is_some() {
                            return Err(DirError::AttributeOrValueExists(format!(
                                "attribute '{name}' already has value '{}'",
                                String::from_utf8_lossy(&v)
                            )));
                        }
                        match new.get_mut(&name) {
                            Some(a) => a.values.push(Value { bytes: v, csn }),
                            None => new.attrs.push(Attribute::new(name.clone(), vec![v], csn)),
                        }
                    }
                }
                ModOp::Delete => {
                    if !new.has(&name) {
                        return Err(DirError::NoSuchAttribute(format!(
                            "entry has no attribute '{name}'"
                        )));
                    }
                    if m.values.is_empty() {
                        new.remove(&name);
                        applied.push(Modification {
                            op: ModOp::Delete,
                            attr: name.clone(),
                            values: Vec::new(),
                        });
                        continue;
                    }
                    let mut removed = Vec::new();
                    for v in &m.values {
                        let existing = new.get(&name).map(|a| a.values.as_slice()).unwrap_or(&[]);
                        let pos = if Self::is_password(&at) {
                            existing
                                .iter()
                                .position(|x| x.bytes == *v || password::verify(&x.bytes, v))
                        } else {
                            self.find_value(&at, existing, v)?
                        };
                        let Some(pos) = pos else {
                            return Err(DirError::NoSuchAttribute(format!(
                                "attribute '{name}' has no value '{}'",
                                String::from_utf8_lossy(v)
                            )));
                        };
                        if let Some(a) = new.get_mut(&name) {
                            removed.push(a.values.remove(pos).bytes);
                        }
                    }
                    if !new.has(&name) {
                        new.remove(&name);
                    }
                    applied.push(Modification {
                        op: ModOp::Delete,
                        attr: name.clone(),
                        values: removed,
                    });
                }
                ModOp::Replace => {
                    self.check_syntax_all(&at, &m.values)?;
                    let values = self.prepare_values(&at, &m.values, stamp.origin);
                    applied.push(Modification {
                        op: ModOp::Replace,
                        attr: name.clone(),
                        values: values.clone(),
                    });
                    let mut kept: Vec<Value> = Vec::new();
                    for v in values {
                        if self.find_value(&at, &kept, &v)?.is_some() {
                            return Err(DirError::AttributeOrValueExists(format!(
                                "duplicate value in replacement of '{name}'"
                            )));
                        }
                        kept.push(Value { bytes: v, csn });
                    }
                    new.remove(&name);
                    if !kept.is_empty() {
                        new.attrs.push(Attribute {
                            name: name.clone(),
                            values: kept,
                        });
                    }
                }
                ModOp::Increment => {
                    self.increment(&mut new, &at, &m.values, csn)?;
                    // Replicated as the value it produced: an increment
                    // applied twice (a resent change) is not idempotent.
                    applied.push(Modification {
                        op: ModOp::Replace,
                        attr: name.clone(),
                        values: new.values(&name).into_iter().map(<[u8]>::to_vec).collect(),
                    });
                }
            }
        }
        self.expand_object_classes(&mut new, csn);
        self.check_rdn_kept(&new)?;
        let old_structural = self.schema().structural_class(&old).ok();
        let new_structural = self.schema().structural_class(&new)?;
        if old_structural.is_some_and(|o| !o.eq_ignore_ascii_case(&new_structural)) {
            return Err(schema_err(
                ViolationKind::ObjectClassModsProhibited,
                format!("the structural object class of '{dn}' cannot be changed"),
            ));
        }
        self.stamp_modified(&mut new, stamp);
        self.schema().check_entry(&new)?;
        txn.put_entry(id, &new)?;
        self.index_update(txn, id, Some(&old), Some(&new))?;
        let classes = new.values("objectClass");
        if classes != old.values("objectClass") {
            // Superclasses added on the way must reach consumers too.
            applied.push(Modification {
                op: ModOp::Replace,
                attr: "objectClass".into(),
                values: classes.into_iter().map(<[u8]>::to_vec).collect(),
            });
        }
        for name in ["modifiersName", "modifyTimestamp", "entryCSN"] {
            applied.push(Modification {
                op: ModOp::Replace,
                attr: name.to_string(),
                values: new.values(name).into_iter().map(<[u8]>::to_vec).collect(),
            });
        }
        Ok((entry_uuid(&old)?, Change::Modify { mods: applied }))
    }

    fn increment(
        &self,
        entry: &mut Entry,
        at: &AttributeType,
        values: &[Vec<u8>],
        csn: Csn,
    ) -> DirResult<()> {
        let name = at.name();
        if at.syntax.as_deref() != Some(INTEGER_SYNTAX) {
            return Err(DirError::ConstraintViolation(format!(
                "increment of '{name}': the attribute is not an integer"
            )));
        }
        let [delta] = values else {
            return Err(DirError::Protocol(format!(
                "increment of '{name}' needs exactly one value"
            )));
        };
        let delta: i128 = std::str::from_utf8(delta)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                DirError::InvalidSyntax(format!("increment of '{name}': value is not an integer"))
            })?;
        let Some(attr) = entry.get_mut(name) else {
            return Err(DirError::NoSuchAttribute(format!(
                "entry has no attribute '{name}' to increment"
            )));
        };
        for v in &mut attr.values {
            let cur: i128 = std::str::from_utf8(&v.bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    DirError::ConstraintViolation(format!("value of '{name}' is not an integer"))
                })?;
            let next = cur.checked_add(delta).ok_or_else(|| {
                DirError::ConstraintViolation(format!("increment of '{name}' overflows"))
            })?;
            v.bytes = next.to_string().into_bytes();
            v.csn = csn;
        }
        Ok(())
    }
}
