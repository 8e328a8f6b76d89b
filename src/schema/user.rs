//! Definitions added over LDAP (a modify of cn=schema): the checks that keep
//! the schema consistent and the rebuild of the schema with them.
//!
//! Pure: the directory stores the definitions and checks that no entry uses
//! what a change retires ([`SchemaChange::retired`]).
//!
//! Rules (docs/schema.md, "Changing the schema over LDAP"):
//! - a value that is not an RFC 4512 description: [`SchemaChangeError::Invalid`];
//! - a well-formed definition that does not fit (unknown SUP, syntax,
//!   matching rule, MUST/MAY type; an OID or name already used by another
//!   definition; deleting what another definition uses):
//!   [`SchemaChangeError::Conflict`];
//! - replacing or deleting a shipped definition: [`SchemaChangeError::Refused`];
//! - adding a definition that is already there, identically:
//!   [`SchemaChangeError::Exists`]; deleting one that is not:
//!   [`SchemaChangeError::Missing`].
//!
//! A user definition is changed by deleting it and adding the new text in
//! the same modify. Values are matched by OID (RFC 4512's
//! objectIdentifierFirstComponentMatch), so a delete needs only `( oid )`.

use super::parser;
use super::{AttributeType, ObjectClass, ObjectClassKind, Schema};
use crate::model::Csn;
use std::collections::HashSet;

/// What `X-ORIGIN` says of a definition added over LDAP (as in 389-ds).
pub const USER_ORIGIN: &str = "user defined";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefinitionKind {
    AttributeType,
    ObjectClass,
}

impl DefinitionKind {
    /// The cn=schema attribute that lists this kind of definition.
    pub fn attribute(self) -> &'static str {
        match self {
            DefinitionKind::AttributeType => "attributeTypes",
            DefinitionKind::ObjectClass => "objectClasses",
        }
    }

    /// The cn=schema attribute named `name` (any case), if it lists definitions.
    pub fn from_attribute(name: &str) -> Option<DefinitionKind> {
        match name.to_ascii_lowercase().as_str() {
            "attributetypes" => Some(DefinitionKind::AttributeType),
            "objectclasses" => Some(DefinitionKind::ObjectClass),
            _ => None,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            DefinitionKind::AttributeType => "attribute type",
            DefinitionKind::ObjectClass => "object class",
        }
    }
}

/// A definition added over LDAP, as stored: the text the client sent and
/// the CSN of the change that added it (schema replication compares
/// definitions by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDefinition {
    pub kind: DefinitionKind,
    pub oid: String,
    pub text: String,
    pub csn: Csn,
}

/// The operational attribute of cn=schema that lists user definitions with
/// their CSNs, for schema replication: read by suppliers, and added to by
/// replication identities (docs/schema.md, "Schema replication").
pub const REPLICATED_DEFINITION_ATTR: &str = "ferrodirSchemaDefinition";

impl UserDefinition {
    /// `<attributeTypes|objectClasses> <csn> <description>`, the value of
    /// [`REPLICATED_DEFINITION_ATTR`].
    pub fn replicated_value(&self) -> String {
        format!("{} {} {}", self.kind.attribute(), self.csn, self.text)
    }

    /// Reads a [`REPLICATED_DEFINITION_ATTR`] value.
    pub fn from_replicated_value(value: &[u8]) -> Result<UserDefinition, String> {
        let text = std::str::from_utf8(value)
            .map_err(|_| format!("{REPLICATED_DEFINITION_ATTR}: value is not UTF-8"))?
            .trim();
        let shape = || {
            format!(
                "{REPLICATED_DEFINITION_ATTR}: expected '<attributeTypes|objectClasses> <CSN> <description>', got {text:?}"
            )
        };
        let (kind, rest) = text.split_once(' ').ok_or_else(shape)?;
        let kind = DefinitionKind::from_attribute(kind).ok_or_else(shape)?;
        let (csn, desc) = rest.trim_start().split_once(' ').ok_or_else(shape)?;
        let csn = Csn::parse(csn)
            .map_err(|e| format!("{REPLICATED_DEFINITION_ATTR}: bad CSN {csn:?}: {e}"))?;
        let desc = desc.trim();
        let oid =
            parser::first_oid(desc).map_err(|m| format!("{REPLICATED_DEFINITION_ATTR}: {m}"))?;
        Ok(UserDefinition {
            kind,
            oid,
            text: desc.to_string(),
            csn,
        })
    }
}

/// Why a schema change was refused; each maps to one LDAP result code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaChangeError {
    /// Not an RFC 4512 description (invalidAttributeSyntax, 21).
    #[error("{0}")]
    Invalid(String),
    /// Well-formed but inconsistent with the schema or the data
    /// (constraintViolation, 19).
    #[error("{0}")]
    Conflict(String),
    /// Not done over LDAP: replacing or deleting shipped definitions
    /// (unwillingToPerform, 53).
    #[error("{0}")]
    Refused(String),
    /// The same definition is already there (attributeOrValueExists, 20).
    #[error("{0}")]
    Exists(String),
    /// No such user definition to delete (noSuchAttribute, 16).
    #[error("{0}")]
    Missing(String),
}

type ChangeResult<T> = Result<T, SchemaChangeError>;

/// A user definition that a change removes, or changes in a way entries
/// using it might no longer satisfy: the change is allowed only if no entry
/// uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    pub kind: DefinitionKind,
    pub oid: String,
    /// Primary name before the change.
    pub name: String,
    /// None: deleted; Some(why): changed incompatibly.
    pub changed: Option<String>,
}

/// The outcome of an edit: the new schema and what to store.
#[derive(Debug)]
pub struct SchemaChange {
    pub schema: Schema,
    /// Definitions added by the edit (new, or the new text of a changed one).
    pub stored: Vec<UserDefinition>,
    /// OIDs of user definitions the edit deleted without adding them back.
    pub removed: Vec<(DefinitionKind, String)>,
    /// What entries must not use for the change to be allowed.
    pub retired: Vec<Retired>,
}

enum Parsed {
    At(AttributeType),
    Oc(ObjectClass),
}

impl Parsed {
    fn read(kind: DefinitionKind, text: &str) -> Result<Parsed, String> {
        match kind {
            DefinitionKind::AttributeType => parser::parse_attribute_type(text).map(Parsed::At),
            DefinitionKind::ObjectClass => parser::parse_object_class(text).map(Parsed::Oc),
        }
    }

    fn oid(&self) -> &str {
        match self {
            Parsed::At(a) => &a.oid,
            Parsed::Oc(o) => &o.oid,
        }
    }

    fn names(&self) -> &[String] {
        match self {
            Parsed::At(a) => &a.names,
            Parsed::Oc(o) => &o.names,
        }
    }

    /// The canonical text: two descriptions that mean the same render the same
    /// (spacing, keyword case and extensions such as X-ORIGIN aside).
    fn render(&self) -> String {
        match self {
            Parsed::At(a) => a.render(),
            Parsed::Oc(o) => o.render(),
        }
    }
}

/// `'name' (oid)` or the OID alone, for messages.
fn shown(oid: &str, names: &[String]) -> String {
    match names.first() {
        Some(n) => format!("'{n}' ({oid})"),
        None => oid.to_string(),
    }
}

fn same_definition(kind: DefinitionKind, a: &str, b: &str) -> bool {
    match (Parsed::read(kind, a), Parsed::read(kind, b)) {
        (Ok(x), Ok(y)) => x.render() == y.render(),
        _ => false,
    }
}

fn text_of(kind: DefinitionKind, value: &[u8]) -> ChangeResult<&str> {
    std::str::from_utf8(value).map(str::trim).map_err(|_| {
        SchemaChangeError::Invalid(format!("{}: value is not UTF-8", kind.attribute()))
    })
}

fn contains_ci(list: &[String], names: &[String]) -> bool {
    list.iter()
        .any(|x| names.iter().any(|n| n.eq_ignore_ascii_case(x)))
}

impl Schema {
    /// Definitions added over LDAP, oldest first.
    pub fn user_definitions(&self) -> &[UserDefinition] {
        &self.user
    }

    fn is_user(&self, kind: DefinitionKind, oid: &str) -> bool {
        self.user.iter().any(|d| d.kind == kind && d.oid == oid)
    }

    /// Whether a definition (by OID) was added over LDAP rather than shipped.
    pub fn is_user_defined(&self, oid: &str) -> bool {
        self.user.iter().any(|d| d.oid == oid)
    }

    fn knows_syntax(&self, oid: &str) -> bool {
        self.syntax_map.contains_key(oid) || self.file_syntaxes.iter().any(|s| s.oid == oid)
    }

    /// Starts a change of the user definitions (a modify of cn=schema).
    pub fn edit(&self) -> SchemaEdit<'_> {
        SchemaEdit {
            base: self,
            defs: self.user.clone(),
            deleted: Vec::new(),
        }
    }

    /// This schema's shipped definitions with `defs` as the user definitions
    /// (whatever user definitions `self` had). Every reference must resolve
    /// and every attribute type must have a syntax the server knows.
    pub fn with_user_definitions(&self, defs: Vec<UserDefinition>) -> ChangeResult<Schema> {
        let mut ats = Vec::new();
        let mut ocs = Vec::new();
        for d in &defs {
            let parsed = Parsed::read(d.kind, &d.text)
                .map_err(|m| SchemaChangeError::Invalid(format!("{}: {m}", d.kind.attribute())))?;
            let served = parser::with_origin(&d.text, USER_ORIGIN);
            match parsed {
                Parsed::At(mut at) => {
                    at.definition = served;
                    ats.push(at);
                }
                Parsed::Oc(mut oc) => {
                    oc.definition = served;
                    ocs.push(oc);
                }
            }
        }
        let schema = Schema::build(self.shipped.clone(), defs, ats, ocs)
            .map_err(|e| SchemaChangeError::Conflict(e.message))?;
        for d in &schema.user {
            if d.kind != DefinitionKind::AttributeType {
                continue;
            }
            let Some(at) = schema.attribute(&d.oid) else {
                continue;
            };
            if let Some(syntax) = at.syntax.as_deref().filter(|s| !schema.knows_syntax(s)) {
                return Err(SchemaChangeError::Conflict(format!(
                    "attributeTypes: attribute type {}: unknown SYNTAX {syntax} (cn=schema lists the known syntaxes in ldapSyntaxes)",
                    shown(&at.oid, &at.names)
                )));
            }
        }
        Ok(schema)
    }

    /// Like [`Schema::with_user_definitions`], for definitions read back from
    /// the store: one that no longer fits (e.g. a newer release ships a
    /// definition with its name) is left out and returned with the reason,
    /// so the server still starts.
    pub fn with_stored_definitions(
        &self,
        defs: Vec<UserDefinition>,
    ) -> (Schema, Vec<(UserDefinition, SchemaChangeError)>) {
        if let Ok(all) = self.with_user_definitions(defs.clone()) {
            return (all, Vec::new());
        }
        // Add them one by one, in passes, so a definition that depends on a
        // later one still gets in once that one is.
        let mut kept: Vec<UserDefinition> = Vec::new();
        let mut pending = defs;
        let mut schema = None;
        loop {
            let mut progress = false;
            let mut still = Vec::new();
            let mut last_err = Vec::new();
            for d in pending {
                let mut trial = kept.clone();
                trial.push(d.clone());
                match self.with_user_definitions(trial) {
                    Ok(s) => {
                        kept.push(d);
                        schema = Some(s);
                        progress = true;
                    }
                    Err(e) => {
                        still.push(d.clone());
                        last_err.push((d, e));
                    }
                }
            }
            pending = still;
            if !progress || pending.is_empty() {
                let schema = match schema {
                    Some(s) => s,
                    None => self
                        .with_user_definitions(Vec::new())
                        .unwrap_or_else(|_| self.shipped_only()),
                };
                return (schema, last_err);
            }
        }
    }

    /// The shipped definitions alone (they resolved once, so they resolve again).
    fn shipped_only(&self) -> Schema {
        Schema::build(self.shipped.clone(), Vec::new(), Vec::new(), Vec::new())
            .unwrap_or_else(|_| Schema::code_only())
    }

    /// The text a shipped definition of this kind and OID was read from.
    fn shipped_text(&self, kind: DefinitionKind, oid: &str) -> Option<(String, Vec<String>)> {
        if self.is_user(kind, oid) {
            return None;
        }
        match kind {
            DefinitionKind::AttributeType => self
                .attribute(oid)
                .filter(|a| a.oid == oid)
                .map(|a| (a.definition.clone(), a.names.clone())),
            DefinitionKind::ObjectClass => self
                .object_class(oid)
                .filter(|o| o.oid == oid)
                .map(|o| (o.definition.clone(), o.names.clone())),
        }
    }

    fn names_of(&self, kind: DefinitionKind, oid: &str) -> Vec<String> {
        match kind {
            DefinitionKind::AttributeType => self.attribute(oid).map(|a| a.names.clone()),
            DefinitionKind::ObjectClass => self.object_class(oid).map(|o| o.names.clone()),
        }
        .unwrap_or_default()
    }
}

/// A change of the user definitions in progress: the modifications of one
/// modify request applied in order, then [`SchemaEdit::finish`].
pub struct SchemaEdit<'a> {
    base: &'a Schema,
    defs: Vec<UserDefinition>,
    /// User definitions of `base` this edit deleted (some may be added back).
    deleted: Vec<UserDefinition>,
}

impl SchemaEdit<'_> {
    /// Adds one `attributeTypes` or `objectClasses` value.
    pub fn add(&mut self, kind: DefinitionKind, value: &[u8], csn: Csn) -> ChangeResult<()> {
        let attr = kind.attribute();
        let noun = kind.noun();
        let text = text_of(kind, value)?;
        let parsed = Parsed::read(kind, text)
            .map_err(|m| SchemaChangeError::Invalid(format!("{attr}: {m}")))?;
        let oid = parsed.oid().to_string();
        let me = shown(&oid, parsed.names());
        if let Some(existing) = self.defs.iter().find(|d| d.kind == kind && d.oid == oid) {
            return Err(if same_definition(kind, &existing.text, text) {
                SchemaChangeError::Exists(format!("{attr}: {noun} {me} is already defined"))
            } else {
                SchemaChangeError::Conflict(format!(
                    "{attr}: OID {oid} is already used by a different definition ({noun} {}); \
                     to change it, delete the old value and add the new one in the same modify",
                    shown(&oid, &self.working_names(kind, &oid))
                ))
            });
        }
        if let Some((shipped, names)) = self.base.shipped_text(kind, &oid) {
            return Err(if same_definition(kind, &shipped, text) {
                SchemaChangeError::Exists(format!(
                    "{attr}: {noun} {me} is already defined (shipped with the server)"
                ))
            } else {
                SchemaChangeError::Refused(format!(
                    "{attr}: {noun} {} is shipped with the server (schema/) and cannot be replaced; \
                     give a new definition its own OID",
                    shown(&oid, &names)
                ))
            });
        }
        if let Some(owner) = self.oid_owner(kind, &oid) {
            return Err(SchemaChangeError::Conflict(format!(
                "{attr}: OID {oid} is already used by {owner}"
            )));
        }
        for n in parsed.names() {
            if let Some(owner) = self.name_owner(kind, n) {
                return Err(SchemaChangeError::Conflict(format!(
                    "{attr}: name '{n}' is already used by {noun} {owner}"
                )));
            }
        }
        self.defs.push(UserDefinition {
            kind,
            oid,
            text: text.to_string(),
            csn,
        });
        Ok(())
    }

    /// Deletes one `attributeTypes` or `objectClasses` value, found by its OID.
    pub fn delete(&mut self, kind: DefinitionKind, value: &[u8]) -> ChangeResult<()> {
        let attr = kind.attribute();
        let noun = kind.noun();
        let text = text_of(kind, value)?;
        let oid = parser::first_oid(text).map_err(|m| {
            SchemaChangeError::Invalid(format!(
                "{attr}: cannot read the OID of the value to delete: {m}"
            ))
        })?;
        if let Some(pos) = self
            .defs
            .iter()
            .position(|d| d.kind == kind && d.oid == oid)
        {
            let gone = self.defs.remove(pos);
            let was_there = self.base.is_user(kind, &oid);
            if was_there && !self.deleted.iter().any(|d| d.kind == kind && d.oid == oid) {
                self.deleted.push(gone);
            }
            return Ok(());
        }
        if let Some((_, names)) = self.base.shipped_text(kind, &oid) {
            return Err(SchemaChangeError::Refused(format!(
                "{attr}: {noun} {} is shipped with the server (schema/) and cannot be deleted",
                shown(&oid, &names)
            )));
        }
        Err(SchemaChangeError::Missing(format!(
            "{attr}: there is no user-defined {noun} with OID {oid}"
        )))
    }

    /// Checks the edit as a whole and builds the new schema.
    pub fn finish(self) -> ChangeResult<SchemaChange> {
        for gone in &self.deleted {
            if self.has(gone.kind, &gone.oid) {
                continue;
            }
            self.check_unreferenced(gone)?;
        }
        let schema = self.base.with_user_definitions(self.defs.clone())?;
        let mut retired = Vec::new();
        for old in &self.base.user {
            let name = self
                .base
                .names_of(old.kind, &old.oid)
                .first()
                .cloned()
                .unwrap_or_else(|| old.oid.clone());
            let changed = if self.has(old.kind, &old.oid) {
                match incompatibility(self.base, &schema, old.kind, &old.oid) {
                    Some(why) => Some(why),
                    None => continue,
                }
            } else {
                None
            };
            retired.push(Retired {
                kind: old.kind,
                oid: old.oid.clone(),
                name,
                changed,
            });
        }
        let stored = self
            .defs
            .iter()
            .filter(|d| !self.base.user.contains(d))
            .cloned()
            .collect();
        let removed = self
            .base
            .user
            .iter()
            .filter(|d| !self.has(d.kind, &d.oid))
            .map(|d| (d.kind, d.oid.clone()))
            .collect();
        Ok(SchemaChange {
            schema,
            stored,
            removed,
            retired,
        })
    }

    fn has(&self, kind: DefinitionKind, oid: &str) -> bool {
        self.defs.iter().any(|d| d.kind == kind && d.oid == oid)
    }

    fn working(&self) -> impl Iterator<Item = (&UserDefinition, Parsed)> {
        self.defs
            .iter()
            .filter_map(|d| Parsed::read(d.kind, &d.text).ok().map(|p| (d, p)))
    }

    fn working_names(&self, kind: DefinitionKind, oid: &str) -> Vec<String> {
        self.working()
            .find(|(d, _)| d.kind == kind && d.oid == oid)
            .map(|(_, p)| p.names().to_vec())
            .unwrap_or_default()
    }

    /// What else (of another kind, or a rule or syntax) already has `oid`.
    fn oid_owner(&self, kind: DefinitionKind, oid: &str) -> Option<String> {
        for other in [DefinitionKind::AttributeType, DefinitionKind::ObjectClass] {
            if other == kind {
                continue;
            }
            if let Some((_, names)) = self.base.shipped_text(other, oid) {
                return Some(format!("{} {}", other.noun(), shown(oid, &names)));
            }
            if self.has(other, oid) {
                let names = self.working_names(other, oid);
                return Some(format!("{} {}", other.noun(), shown(oid, &names)));
            }
        }
        if let Some(rule) = self.base.rule(oid).filter(|r| r.oid == oid) {
            return Some(format!("matching rule '{}'", rule.name));
        }
        if self.base.knows_syntax(oid) {
            return Some("an LDAP syntax".into());
        }
        None
    }

    /// The other definition of this kind that has the name `name`, if any.
    fn name_owner(&self, kind: DefinitionKind, name: &str) -> Option<String> {
        let shipped = match kind {
            DefinitionKind::AttributeType => self
                .base
                .attribute(name)
                .map(|a| (a.oid.clone(), a.names.clone())),
            DefinitionKind::ObjectClass => self
                .base
                .object_class(name)
                .map(|o| (o.oid.clone(), o.names.clone())),
        };
        if let Some((oid, names)) = shipped.filter(|(oid, _)| !self.base.is_user(kind, oid)) {
            return Some(shown(&oid, &names));
        }
        self.working()
            .find(|(d, p)| d.kind == kind && p.names().iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|(d, p)| shown(&d.oid, p.names()))
    }

    /// Refuses to delete a definition that a remaining user definition
    /// names (shipped definitions cannot name user ones).
    fn check_unreferenced(&self, gone: &UserDefinition) -> ChangeResult<()> {
        let mut names = self.base.names_of(gone.kind, &gone.oid);
        let me = shown(&gone.oid, &names);
        names.push(gone.oid.clone());
        let attr = gone.kind.attribute();
        let noun = gone.kind.noun();
        let refuse = |who: String, how: &str| {
            Err(SchemaChangeError::Conflict(format!(
                "{attr}: cannot delete {noun} {me}: {who} {how}"
            )))
        };
        for (d, p) in self.working() {
            let who = format!("{} {}", d.kind.noun(), shown(&d.oid, p.names()));
            match (gone.kind, &p) {
                (DefinitionKind::AttributeType, Parsed::At(at)) => {
                    if at
                        .sup
                        .as_ref()
                        .is_some_and(|s| contains_ci(std::slice::from_ref(s), &names))
                    {
                        return refuse(who, "is derived from it (SUP)");
                    }
                }
                (DefinitionKind::AttributeType, Parsed::Oc(oc)) => {
                    if contains_ci(&oc.must, &names) {
                        return refuse(who, "requires it (MUST)");
                    }
                    if contains_ci(&oc.may, &names) {
                        return refuse(who, "allows it (MAY)");
                    }
                }
                (DefinitionKind::ObjectClass, Parsed::Oc(oc)) => {
                    if contains_ci(&oc.sup, &names) {
                        return refuse(who, "is derived from it (SUP)");
                    }
                }
                (DefinitionKind::ObjectClass, Parsed::At(_)) => {}
            }
        }
        Ok(())
    }
}

/// Why entries valid under the old definition might not be valid (or
/// indexed the same way) under the new one; None when the change is safe
/// for existing entries. Compares resolved definitions, so a change
/// inherited from a superior counts too.
fn incompatibility(old: &Schema, new: &Schema, kind: DefinitionKind, oid: &str) -> Option<String> {
    match kind {
        DefinitionKind::AttributeType => {
            let (Some(a), Some(b)) = (old.attribute(oid), new.attribute(oid)) else {
                return Some("it no longer resolves".into());
            };
            attribute_incompatibility(&a, &b)
        }
        DefinitionKind::ObjectClass => class_incompatibility(old, new, oid),
    }
}

fn names_kept(old: &[String], new: &[String]) -> Option<String> {
    match (old.first(), new.first()) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
            return Some(format!("its primary name changes from '{a}' to '{b}'"));
        }
        (Some(a), None) => return Some(format!("it loses its name '{a}'")),
        _ => {}
    }
    old.iter()
        .find(|n| !new.iter().any(|m| m.eq_ignore_ascii_case(n)))
        .map(|n| format!("it loses its name '{n}'"))
}

fn attribute_incompatibility(a: &AttributeType, b: &AttributeType) -> Option<String> {
    if let Some(why) = names_kept(&a.names, &b.names) {
        return Some(why);
    }
    let same = |x: &Option<String>, y: &Option<String>| match (x, y) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (None, None) => true,
        _ => false,
    };
    let fields = [
        ("SUP", &a.sup, &b.sup),
        ("EQUALITY", &a.equality, &b.equality),
        ("ORDERING", &a.ordering, &b.ordering),
        ("SUBSTR", &a.substr, &b.substr),
        ("SYNTAX", &a.syntax, &b.syntax),
    ];
    for (kw, x, y) in fields {
        if !same(x, y) {
            return Some(format!("its {kw} changes"));
        }
    }
    if a.usage != b.usage {
        return Some("its USAGE changes".into());
    }
    if a.collective != b.collective || a.no_user_modification != b.no_user_modification {
        return Some("its COLLECTIVE or NO-USER-MODIFICATION flag changes".into());
    }
    if !a.single_value && b.single_value {
        return Some("it becomes SINGLE-VALUE".into());
    }
    None
}

fn class_incompatibility(old: &Schema, new: &Schema, oid: &str) -> Option<String> {
    let (Some(a), Some(b)) = (old.object_class(oid), new.object_class(oid)) else {
        return Some("it no longer resolves".into());
    };
    if let Some(why) = names_kept(&a.names, &b.names) {
        return Some(why);
    }
    if a.kind != b.kind || a.also_auxiliary != b.also_auxiliary {
        let kind = |k: ObjectClassKind| format!("{k:?}").to_ascii_uppercase();
        return Some(format!(
            "its kind changes from {} to {}",
            kind(a.kind),
            kind(b.kind)
        ));
    }
    let chain = |s: &Schema| -> HashSet<String> {
        s.class_closure
            .get(oid)
            .map(|c| c.iter().map(|x| x.oid.clone()).collect())
            .unwrap_or_default()
    };
    if chain(old) != chain(new) {
        return Some("its superclasses change".into());
    }
    let set = |m: &super::HashMap<String, Vec<String>>| -> HashSet<String> {
        m.get(oid)
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    };
    let (old_must, new_must) = (set(&old.class_must), set(&new.class_must));
    let name = |oid: &String| {
        new.attribute(oid)
            .map(|a| a.name().to_string())
            .unwrap_or_else(|| oid.clone())
    };
    if let Some(extra) = new_must.difference(&old_must).next() {
        return Some(format!("it now requires '{}' (MUST)", name(extra)));
    }
    let old_allowed: HashSet<String> = old_must.union(&set(&old.class_may)).cloned().collect();
    let new_allowed: HashSet<String> = new_must.union(&set(&new.class_may)).cloned().collect();
    old_allowed
        .difference(&new_allowed)
        .next()
        .map(|gone| format!("it no longer allows '{}'", name(gone)))
}

/// A definition from a replication peer that is not applied here: same OID
/// (or name) as a definition held here, with a different meaning. Both
/// sides keep their own until an administrator settles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaConflict {
    pub kind: DefinitionKind,
    pub oid: String,
    pub reason: String,
}

impl std::fmt::Display for SchemaConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: not replicated: {}",
            self.kind.attribute(),
            self.oid,
            self.reason
        )
    }
}

/// The outcome of merging a peer's user definitions into this schema.
#[derive(Debug)]
pub struct SchemaMerge {
    /// The schema with what was applied (None: nothing changed).
    pub schema: Option<Schema>,
    /// Definitions to store, each with the peer's CSN: new ones, and newer
    /// compatible versions of ones held here.
    pub stored: Vec<UserDefinition>,
    pub conflicts: Vec<SchemaConflict>,
}

impl Schema {
    /// Merges a peer's user definitions (schema replication, docs/schema.md
    /// "Schema replication"). For each, oldest CSN first:
    /// - not held here: added (a name or OID clash is a conflict);
    /// - held here with the same meaning: nothing to do;
    /// - held here, differently: the newer CSN wins if the older version
    ///   can become the newer one without invalidating entries (the same
    ///   test a local change passes); otherwise it is a conflict and both
    ///   sides keep their own.
    ///
    /// Nothing is ever removed.
    pub fn merge_replicated(&self, incoming: &[UserDefinition]) -> SchemaMerge {
        let mut incoming: Vec<&UserDefinition> = incoming.iter().collect();
        incoming.sort_by(|a, b| a.csn.cmp(&b.csn).then_with(|| a.oid.cmp(&b.oid)));
        let mut current: Option<Schema> = None;
        let mut stored: Vec<UserDefinition> = Vec::new();
        let mut conflicts = Vec::new();
        for d in incoming {
            let base = current.as_ref().unwrap_or(self);
            let conflict = |reason: String| SchemaConflict {
                kind: d.kind,
                oid: d.oid.clone(),
                reason,
            };
            let existing = base
                .user
                .iter()
                .find(|u| u.kind == d.kind && u.oid == d.oid)
                .cloned();
            let mut edit = base.edit();
            let attempt = match &existing {
                Some(e) if same_definition(d.kind, &e.text, &d.text) => continue,
                Some(e) if e.csn >= d.csn => {
                    // Held here in a newer version: fine if the peer's older
                    // one could have become it; the peer gets it in turn.
                    match base.older_version_fits(e, d) {
                        Ok(()) => continue,
                        Err(why) => {
                            conflicts.push(conflict(format!(
                                "held here as {} (CSN {}), the peer has {} (CSN {}): {why}",
                                e.text, e.csn, d.text, d.csn
                            )));
                            continue;
                        }
                    }
                }
                Some(e) => edit
                    .delete(d.kind, e.text.as_bytes())
                    .and_then(|()| edit.add(d.kind, d.text.as_bytes(), d.csn))
                    .and_then(|()| edit.finish())
                    .map_err(|err| (Some(e.clone()), err.to_string()))
                    .and_then(|change| match change.retired.first() {
                        Some(r) => Err((
                            Some(e.clone()),
                            r.changed
                                .clone()
                                .unwrap_or_else(|| "it would be removed".into()),
                        )),
                        None => Ok(change),
                    }),
                None => match edit.add(d.kind, d.text.as_bytes(), d.csn) {
                    Err(SchemaChangeError::Exists(_)) => continue,
                    Err(err) => Err((None, err.to_string())),
                    Ok(()) => edit.finish().map_err(|err| (None, err.to_string())),
                },
            };
            match attempt {
                Ok(change) => {
                    stored.retain(|s| !(s.kind == d.kind && s.oid == d.oid));
                    stored.push(d.clone());
                    current = Some(change.schema);
                }
                Err((Some(e), why)) => conflicts.push(conflict(format!(
                    "held here as {} (CSN {}), the peer has {} (CSN {}): {why}",
                    e.text, e.csn, d.text, d.csn
                ))),
                Err((None, why)) => {
                    conflicts.push(conflict(format!("the peer's {}: {why}", d.text)))
                }
            }
        }
        SchemaMerge {
            schema: current,
            stored,
            conflicts,
        }
    }

    /// Whether `older` (a peer's version of `held`) could have been changed
    /// into `held` here: the same compatibility test a local change passes.
    fn older_version_fits(
        &self,
        held: &UserDefinition,
        older: &UserDefinition,
    ) -> Result<(), String> {
        let defs: Vec<UserDefinition> = self
            .user
            .iter()
            .map(|u| {
                if u.kind == held.kind && u.oid == held.oid {
                    older.clone()
                } else {
                    u.clone()
                }
            })
            .collect();
        let before = self
            .with_user_definitions(defs)
            .map_err(|e| e.to_string())?;
        match incompatibility(&before, self, held.kind, &held.oid) {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }
}
