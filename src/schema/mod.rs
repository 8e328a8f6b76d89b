//! RFC 4512 schema: attribute types, object classes, syntaxes and matching
//! rules, loaded from schema/*.ldif; entry checks and value matching.
//!
//! CONTRACT: the signatures in this file are used by `directory/` and `ops/`.
//! Implementations may add items but must keep these.
//!
//! Loading: `attributeTypes`, `objectClasses`, `ldapSyntaxes`,
//! `matchingRules` (and `matchingRuleUse`, checked then ignored) values are
//! read from LDIF (folding, comments, base64, `olc` prefixes and `{n}` ordering
//! prefixes accepted). References are resolved after all files are read;
//! unknown SUP/MUST/MAY/matching rule references, duplicate OIDs and
//! duplicate names are errors naming file and line. Syntaxes and matching
//! rules are implemented in code (`syntax.rs`, `matching.rs`); a rule declared
//! only in a file is served but compares exact bytes; a syntax the code does
//! not know accepts any value.
//!
//! Simplifications: string preparation has no NFKC step; substring
//! components are trimmed like values (so `(cn=john *)` also matches
//! "johnny"); attribute options other than `binary` are not supported.

mod check;
mod matching;
mod parser;
mod syntax;
pub(crate) use syntax::days_from_civil;
#[cfg(test)]
mod tests;
mod user;
#[cfg(test)]
mod user_tests;

pub use user::{
    DefinitionKind, Retired, SchemaChange, SchemaChangeError, SchemaConflict, SchemaEdit,
    SchemaMerge, UserDefinition, REPLICATED_DEFINITION_ATTR,
};

use crate::model::{Dn, Entry};
use matching::{Prep, RuleKind, RULES};
use parser::{DefKind, RuleDesc, SyntaxDesc};
use std::cmp::Ordering;
/// Schema lookups sit on every request path; FxHash is much cheaper than SipHash
/// and the keys are server-defined names, not attacker-chosen in bulk.
type HashMap<K, V> = rustc_hash::FxHashMap<K, V>;
use std::sync::Arc;
use syntax::{Syntax, SYNTAXES};

/// What kind of failure a schema check found; mapped to an LDAP result code by `ops/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// 17
    UndefinedAttributeType,
    /// 18
    InappropriateMatching,
    /// 19
    ConstraintViolation,
    /// 21
    InvalidAttributeSyntax,
    /// 65
    ObjectClassViolation,
    /// 64
    NamingViolation,
    /// 69
    ObjectClassModsProhibited,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct SchemaViolation {
    pub kind: ViolationKind,
    pub message: String,
}

/// A schema file that could not be loaded (names file and line).
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SchemaError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    UserApplications,
    DirectoryOperation,
    DistributedOperation,
    DsaOperation,
}

/// An attribute type as the name map holds it, with its primary name
/// lowercased once (searches compare and check access by it for every
/// attribute of every entry they return).
#[derive(Debug, Clone)]
struct KnownAttribute {
    at: Arc<AttributeType>,
    lname: Box<str>,
}

#[derive(Debug, Clone)]
pub struct AttributeType {
    pub oid: String,
    pub names: Vec<String>,
    pub desc: Option<String>,
    pub obsolete: bool,
    pub sup: Option<String>,
    /// Matching rule names (resolved through SUP when not given directly).
    pub equality: Option<String>,
    pub ordering: Option<String>,
    pub substr: Option<String>,
    /// Syntax OID (resolved through SUP).
    pub syntax: Option<String>,
    pub single_value: bool,
    pub collective: bool,
    pub no_user_modification: bool,
    pub usage: Usage,
    /// The definition as RFC 4512 text, as served in cn=schema.
    pub definition: String,
}

impl AttributeType {
    /// Primary name (first NAME, else the OID).
    pub fn name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or(&self.oid)
    }
    pub fn is_operational(&self) -> bool {
        self.usage != Usage::UserApplications
    }
    /// RFC 4512 text generated from the fields (inherited rules and syntax
    /// included), e.g. for definitions created at run time.
    pub fn render(&self) -> String {
        parser::render_attribute_type(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClassKind {
    Abstract,
    Structural,
    Auxiliary,
}

#[derive(Debug, Clone)]
pub struct ObjectClass {
    pub oid: String,
    pub names: Vec<String>,
    pub desc: Option<String>,
    pub obsolete: bool,
    pub sup: Vec<String>,
    pub kind: ObjectClassKind,
    pub must: Vec<String>,
    pub may: Vec<String>,
    /// `X-ALSO-AUXILIARY 'TRUE'`: a structural class that acts as auxiliary
    /// next to a structural class outside its chain (RFC 2307's structural
    /// posixGroup alone, rfc2307bis's auxiliary one with groupOfNames).
    pub also_auxiliary: bool,
    pub definition: String,
}

impl ObjectClass {
    pub fn name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or(&self.oid)
    }
    /// RFC 4512 text generated from the fields.
    pub fn render(&self) -> String {
        parser::render_object_class(self)
    }
}

/// The loaded schema. Cheap to share (`Arc<Schema>`); immutable once built.
///
/// Lookups by name go through maps keyed by lowercased names and OIDs.
/// Attribute types store their matching rules under the rule's canonical
/// name (e.g. `caseIgnoreMatch`, whatever spelling or OID the file used) and
/// their superior under its primary name.
#[derive(Debug)]
pub struct Schema {
    attrs: Vec<Arc<AttributeType>>,
    attr_map: HashMap<String, KnownAttribute>,
    classes: Vec<Arc<ObjectClass>>,
    class_map: HashMap<String, Arc<ObjectClass>>,
    /// Per class OID: the class and all its superclasses (top implied).
    class_closure: HashMap<String, Vec<Arc<ObjectClass>>>,
    /// Per class OID: OIDs of MUST and MAY attribute types, superclasses included.
    class_must: HashMap<String, Vec<String>>,
    class_may: HashMap<String, Vec<String>>,
    /// Per class OID: MUST and MAY together, for the per-entry check of
    /// which types its classes allow.
    class_allowed: HashMap<String, rustc_hash::FxHashSet<String>>,
    rules: Vec<RuleDef>,
    /// Canonical names, lowercased names and OIDs -> index into `rules`.
    rule_map: HashMap<String, usize>,
    /// Syntax OID -> code-defined syntax.
    syntax_map: HashMap<&'static str, Syntax>,
    /// Syntaxes declared in schema files that the code does not define.
    file_syntaxes: Vec<SyntaxDesc>,
    /// OIDs of attribute types that some other type names as SUP (computed on first use).
    supertypes: std::sync::OnceLock<std::collections::HashSet<String>>,
    /// The shipped definitions as read from the files, kept so that the
    /// schema can be rebuilt with a different set of user definitions.
    shipped: Arc<Shipped>,
    /// Definitions added over LDAP (cn=schema), oldest first.
    user: Vec<UserDefinition>,
}

/// What the schema files hold, parsed but not resolved.
#[derive(Debug, Default)]
struct Shipped {
    syntaxes: Vec<(SyntaxDesc, Loc)>,
    rules: Vec<(RuleDesc, Loc)>,
    ats: Vec<(AttributeType, Loc)>,
    ocs: Vec<(ObjectClass, Loc)>,
}

/// A matching rule: code-defined (with an implementation) or declared in a
/// schema file only (served in cn=schema; equality falls back to exact bytes).
#[derive(Debug, Clone)]
struct RuleDef {
    oid: String,
    /// Canonical name (first NAME, else the OID).
    name: String,
    syntax: String,
    imp: Option<(RuleKind, Prep)>,
    definition: String,
}

impl Default for Schema {
    /// A schema with the code-defined syntaxes and matching rules and no
    /// attribute types or object classes.
    fn default() -> Schema {
        Schema::code_only()
    }
}

/// An ordering rule resolved for sorting ([`Schema::sort_rule`]).
#[derive(Debug, Clone, Copy)]
pub struct SortRule {
    prep: Prep,
}

/// A value prepared by [`Schema::sort_value`]: keys compare as the
/// ordering rule orders the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    Integer(Vec<u8>),
    Time(i128),
    Bytes(Vec<u8>),
}

impl Ord for SortValue {
    fn cmp(&self, other: &SortValue) -> Ordering {
        match (self, other) {
            (SortValue::Integer(a), SortValue::Integer(b)) => matching::cmp_integers(a, b),
            (SortValue::Time(a), SortValue::Time(b)) => a.cmp(b),
            (SortValue::Bytes(a), SortValue::Bytes(b)) => a.cmp(b),
            // One rule gives one kind; mixed kinds only order consistently.
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl PartialOrd for SortValue {
    fn partial_cmp(&self, other: &SortValue) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl SortValue {
    fn rank(&self) -> u8 {
        match self {
            SortValue::Integer(_) => 0,
            SortValue::Time(_) => 1,
            SortValue::Bytes(_) => 2,
        }
    }
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));
}

const OBJECT_CLASS_OID: &str = "2.5.4.0";
const TOP_OID: &str = "2.5.6.0";
const EXTENSIBLE_OBJECT_OID: &str = "1.3.6.1.4.1.1466.101.120.111";

/// Where a definition was read, for error messages.
#[derive(Debug, Clone)]
struct Loc {
    file: String,
    line: usize,
}

impl Loc {
    fn err(&self, message: impl Into<String>) -> SchemaError {
        SchemaError {
            file: self.file.clone(),
            line: self.line,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Calls `f` with `s` ASCII-lowercased, without allocating for short names.
fn with_lower<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    if !s.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(s);
    }
    let mut buf = [0u8; 64];
    if let Some(dst) = buf.get_mut(..s.len()) {
        dst.copy_from_slice(s.as_bytes());
        dst.make_ascii_lowercase();
        if let Ok(lower) = std::str::from_utf8(dst) {
            return f(lower);
        }
    }
    f(&s.to_ascii_lowercase())
}

fn violation(kind: ViolationKind, message: impl Into<String>) -> SchemaViolation {
    SchemaViolation {
        kind,
        message: message.into(),
    }
}

/// A value for a diagnostic message: text if printable, shortened.
fn show_value(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// Prepares an optional component: Some(None) when absent, None when it cannot be prepared.
fn lift(o: Option<&[u8]>, f: impl Fn(&[u8]) -> Option<Vec<u8>>) -> Option<Option<Vec<u8>>> {
    match o {
        None => Some(None),
        Some(x) => f(x).map(Some),
    }
}

impl Schema {
    fn code_only() -> Schema {
        let mut s = Schema {
            attrs: Vec::new(),
            attr_map: HashMap::default(),
            classes: Vec::new(),
            class_map: HashMap::default(),
            class_closure: HashMap::default(),
            class_must: HashMap::default(),
            class_may: HashMap::default(),
            class_allowed: HashMap::default(),
            rules: Vec::new(),
            rule_map: HashMap::default(),
            syntax_map: SYNTAXES.iter().map(|i| (i.oid, i.syntax)).collect(),
            file_syntaxes: Vec::new(),
            supertypes: std::sync::OnceLock::new(),
            shipped: Arc::default(),
            user: Vec::new(),
        };
        for info in RULES {
            let idx = s.rules.len();
            s.rules.push(RuleDef {
                oid: info.oid.to_string(),
                name: info.name.to_string(),
                syntax: info.syntax.to_string(),
                imp: Some((info.kind, info.prep)),
                definition: parser::render_matching_rule(info.oid, info.name, info.syntax),
            });
            s.rule_map.insert(info.oid.to_string(), idx);
            s.rule_map.insert(info.name.to_string(), idx);
            s.rule_map.insert(info.name.to_ascii_lowercase(), idx);
        }
        s
    }

    /// Loads the schema files shipped in the binary (schema/*.ldif at build time).
    pub fn builtin() -> Result<Schema, SchemaError> {
        Schema::from_texts(embedded::FILES)
    }

    /// Loads from `(file name, LDIF text)` pairs, in order (later files may use earlier definitions).
    ///
    /// References (SUP, MUST, MAY, matching rules) are resolved once all
    /// files are read, so their order only matters for messages; every
    /// reference must name a definition that exists somewhere.
    pub fn from_texts(files: &[(&str, &str)]) -> Result<Schema, SchemaError> {
        let mut shipped = Shipped::default();
        for (file, text) in files {
            let raws = parser::read_ldif(text).map_err(|(line, message)| SchemaError {
                file: file.to_string(),
                line,
                message,
            })?;
            for raw in raws {
                let loc = Loc {
                    file: file.to_string(),
                    line: raw.line,
                };
                match raw.kind {
                    DefKind::AttributeType => {
                        let at = parser::parse_attribute_type(&raw.text)
                            .map_err(|m| loc.err(format!("attributeTypes: {m}")))?;
                        shipped.ats.push((at, loc));
                    }
                    DefKind::ObjectClass => {
                        let oc = parser::parse_object_class(&raw.text)
                            .map_err(|m| loc.err(format!("objectClasses: {m}")))?;
                        shipped.ocs.push((oc, loc));
                    }
                    DefKind::Syntax => {
                        let d = parser::parse_syntax(&raw.text)
                            .map_err(|m| loc.err(format!("ldapSyntaxes: {m}")))?;
                        shipped.syntaxes.push((d, loc));
                    }
                    DefKind::MatchingRule => {
                        let d = parser::parse_matching_rule(&raw.text)
                            .map_err(|m| loc.err(format!("matchingRules: {m}")))?;
                        shipped.rules.push((d, loc));
                    }
                    DefKind::MatchingRuleUse => {
                        // Served values are computed from the rules and types;
                        // a file's list is only checked for well-formedness.
                        parser::parse_matching_rule_use(&raw.text)
                            .map_err(|m| loc.err(format!("matchingRuleUse: {m}")))?;
                    }
                }
            }
        }
        Schema::build(Arc::new(shipped), Vec::new(), Vec::new(), Vec::new())
    }

    /// Resolves the shipped definitions together with user definitions
    /// (already parsed, in the same order as `user`). Syntaxes and rules
    /// come first, so every attribute type can find its rules; errors about
    /// user definitions name `cn=schema` as their file.
    fn build(
        shipped: Arc<Shipped>,
        user: Vec<UserDefinition>,
        user_ats: Vec<AttributeType>,
        user_ocs: Vec<ObjectClass>,
    ) -> Result<Schema, SchemaError> {
        let mut schema = Schema::code_only();
        for (d, loc) in &shipped.syntaxes {
            schema.add_file_syntax(d.clone()).map_err(|m| loc.err(m))?;
        }
        for (d, loc) in &shipped.rules {
            schema.add_file_rule(d.clone()).map_err(|m| loc.err(m))?;
        }
        let user_loc = Loc {
            file: "cn=schema".into(),
            line: 0,
        };
        let ats = shipped
            .ats
            .iter()
            .cloned()
            .chain(user_ats.into_iter().map(|a| (a, user_loc.clone())))
            .collect();
        schema.add_attribute_types(ats)?;
        let ocs = shipped
            .ocs
            .iter()
            .cloned()
            .chain(user_ocs.into_iter().map(|o| (o, user_loc.clone())))
            .collect();
        schema.add_object_classes(ocs)?;
        schema.shipped = shipped;
        schema.user = user;
        Ok(schema)
    }

    fn add_file_syntax(&mut self, d: SyntaxDesc) -> Result<(), String> {
        if self.syntax_map.contains_key(d.oid.as_str()) {
            // Code-defined: the code's validator and description are authoritative.
            return Ok(());
        }
        if self.file_syntaxes.iter().any(|s| s.oid == d.oid) {
            return Err(format!("ldapSyntaxes: duplicate syntax OID {}", d.oid));
        }
        self.file_syntaxes.push(d);
        Ok(())
    }

    fn add_file_rule(&mut self, d: RuleDesc) -> Result<(), String> {
        if let Some(&idx) = self.rule_map.get(&d.oid) {
            if self.rules.get(idx).is_some_and(|r| r.imp.is_some()) {
                return Ok(());
            }
            return Err(format!(
                "matchingRules: duplicate matching rule OID {}",
                d.oid
            ));
        }
        for n in &d.names {
            if self.rule_map.contains_key(&n.to_ascii_lowercase()) {
                return Err(format!(
                    "matchingRules: matching rule name '{n}' is already used by another rule"
                ));
            }
        }
        let idx = self.rules.len();
        let name = d.names.first().cloned().unwrap_or_else(|| d.oid.clone());
        self.rule_map.insert(d.oid.clone(), idx);
        for n in &d.names {
            self.rule_map.insert(n.clone(), idx);
            self.rule_map.insert(n.to_ascii_lowercase(), idx);
        }
        self.rules.push(RuleDef {
            oid: d.oid,
            name,
            syntax: d.syntax,
            imp: None,
            definition: d.definition,
        });
        Ok(())
    }

    /// Canonical name of a rule referenced by an attribute type, checking it
    /// suits the slot it is used in.
    fn rule_for_slot(&self, name: &str, slot: RuleKind, what: &str) -> Result<String, String> {
        let rule = self
            .rule(name)
            .ok_or_else(|| format!("{what}: unknown matching rule '{name}'"))?;
        if let Some((kind, _)) = rule.imp {
            if kind != slot {
                return Err(format!(
                    "{what}: matching rule '{}' cannot be used as {what} rule",
                    rule.name
                ));
            }
        }
        Ok(rule.name.clone())
    }

    fn add_attribute_types(&mut self, ats: Vec<(AttributeType, Loc)>) -> Result<(), SchemaError> {
        // Names and OIDs, lowercased -> index, rejecting duplicates.
        let mut keys: HashMap<String, usize> = HashMap::default();
        for (i, (at, loc)) in ats.iter().enumerate() {
            let mut own: Vec<String> = vec![at.oid.clone()];
            own.extend(at.names.iter().map(|n| n.to_ascii_lowercase()));
            for k in own {
                if let Some(&prev) = keys.get(&k) {
                    let prev_loc = ats.get(prev).map(|p| p.1.to_string()).unwrap_or_default();
                    let what = if k == at.oid { "OID" } else { "name" };
                    return Err(loc.err(format!(
                        "attributeTypes: duplicate attribute type {what} '{k}' (already defined at {prev_loc})"
                    )));
                }
                keys.insert(k, i);
            }
        }
        let mut sup_idx: Vec<Option<usize>> = Vec::with_capacity(ats.len());
        for (at, loc) in &ats {
            match &at.sup {
                None => sup_idx.push(None),
                Some(sup) => match keys.get(&sup.to_ascii_lowercase()) {
                    Some(&i) => sup_idx.push(Some(i)),
                    None => {
                        return Err(loc.err(format!(
                            "attributeTypes: attribute type '{}' has unknown SUP '{sup}'",
                            at.name()
                        )))
                    }
                },
            }
        }
        // Resolve in passes: a type is resolved once its superior is, which
        // handles forward references without recursion.
        let mut resolved: Vec<Option<Arc<AttributeType>>> = vec![None; ats.len()];
        loop {
            let mut progress = false;
            for (i, (at, loc)) in ats.iter().enumerate() {
                if resolved.get(i).is_some_and(Option::is_some) {
                    continue;
                }
                let sup = match sup_idx.get(i).copied().flatten() {
                    None => None,
                    Some(si) => match resolved.get(si).cloned().flatten() {
                        Some(s) => Some(s),
                        None => continue,
                    },
                };
                let done = self
                    .resolve_attribute_type(at, sup.as_deref())
                    .map_err(|m| loc.err(m))?;
                if let Some(slot) = resolved.get_mut(i) {
                    *slot = Some(Arc::new(done));
                }
                progress = true;
            }
            if !progress {
                break;
            }
        }
        for (i, (at, loc)) in ats.iter().enumerate() {
            if resolved.get(i).is_some_and(Option::is_none) {
                return Err(loc.err(format!(
                    "attributeTypes: attribute type '{}' is part of a SUP cycle",
                    at.name()
                )));
            }
        }
        for at in resolved.into_iter().flatten() {
            let known = KnownAttribute {
                lname: at.name().to_ascii_lowercase().into(),
                at: at.clone(),
            };
            self.attr_map.insert(at.oid.clone(), known.clone());
            for n in &at.names {
                self.attr_map.insert(n.to_ascii_lowercase(), known.clone());
            }
            self.attrs.push(at);
        }
        Ok(())
    }

    fn resolve_attribute_type(
        &self,
        at: &AttributeType,
        sup: Option<&AttributeType>,
    ) -> Result<AttributeType, String> {
        let ctx = |m: String| format!("attributeTypes: attribute type '{}': {m}", at.name());
        let slot = |name: &Option<String>, kind, what| -> Result<Option<String>, String> {
            name.as_deref()
                .map(|n| self.rule_for_slot(n, kind, what))
                .transpose()
        };
        let mut out = at.clone();
        out.equality = slot(&at.equality, RuleKind::Equality, "EQUALITY").map_err(ctx)?;
        out.ordering = slot(&at.ordering, RuleKind::Ordering, "ORDERING").map_err(ctx)?;
        out.substr = slot(&at.substr, RuleKind::Substrings, "SUBSTR").map_err(ctx)?;
        if let Some(sup) = sup {
            out.sup = Some(sup.name().to_string());
            if out.equality.is_none() {
                out.equality = sup.equality.clone();
            }
            if out.ordering.is_none() {
                out.ordering = sup.ordering.clone();
            }
            if out.substr.is_none() {
                out.substr = sup.substr.clone();
            }
            if out.syntax.is_none() {
                out.syntax = sup.syntax.clone();
            }
        }
        Ok(out)
    }

    fn add_object_classes(&mut self, ocs: Vec<(ObjectClass, Loc)>) -> Result<(), SchemaError> {
        let mut keys: HashMap<String, usize> = HashMap::default();
        for (i, (oc, loc)) in ocs.iter().enumerate() {
            if self.attr_map.contains_key(&oc.oid) {
                return Err(loc.err(format!(
                    "objectClasses: OID {} is already used by an attribute type",
                    oc.oid
                )));
            }
            let mut own: Vec<String> = vec![oc.oid.clone()];
            own.extend(oc.names.iter().map(|n| n.to_ascii_lowercase()));
            for k in own {
                if let Some(&prev) = keys.get(&k) {
                    let prev_loc = ocs.get(prev).map(|p| p.1.to_string()).unwrap_or_default();
                    let what = if k == oc.oid { "OID" } else { "name" };
                    return Err(loc.err(format!(
                        "objectClasses: duplicate object class {what} '{k}' (already defined at {prev_loc})"
                    )));
                }
                keys.insert(k, i);
            }
        }
        let primary = |i: usize| {
            ocs.get(i)
                .map(|p| p.0.name().to_string())
                .unwrap_or_default()
        };
        let mut resolved: Vec<ObjectClass> = Vec::with_capacity(ocs.len());
        for (oc, loc) in &ocs {
            let ctx =
                |m: String| loc.err(format!("objectClasses: object class '{}': {m}", oc.name()));
            let mut out = oc.clone();
            out.sup = oc
                .sup
                .iter()
                .map(|s| match keys.get(&s.to_ascii_lowercase()) {
                    Some(&i) => Ok(primary(i)),
                    None => Err(ctx(format!("unknown SUP '{s}'"))),
                })
                .collect::<Result<_, _>>()?;
            let attr_names = |list: &[String], kw: &str| -> Result<Vec<String>, SchemaError> {
                list.iter()
                    .map(|a| match self.attribute(a) {
                        Some(at) => Ok(at.name().to_string()),
                        None => Err(ctx(format!("unknown attribute type '{a}' in {kw}"))),
                    })
                    .collect()
            };
            out.must = attr_names(&oc.must, "MUST")?;
            out.may = attr_names(&oc.may, "MAY")?;
            resolved.push(out);
        }
        // Kind rules of RFC 4512 §2.4.1-3 on direct superclasses.
        for (i, oc) in resolved.iter().enumerate() {
            let loc = ocs.get(i).map(|p| p.1.clone()).unwrap_or(Loc {
                file: String::new(),
                line: 0,
            });
            for s in &oc.sup {
                let Some(sup) = keys
                    .get(&s.to_ascii_lowercase())
                    .and_then(|&j| resolved.get(j))
                else {
                    continue;
                };
                let ok = match oc.kind {
                    ObjectClassKind::Abstract => sup.kind == ObjectClassKind::Abstract,
                    ObjectClassKind::Auxiliary => sup.kind != ObjectClassKind::Structural,
                    ObjectClassKind::Structural => sup.kind != ObjectClassKind::Auxiliary,
                };
                if !ok {
                    return Err(loc.err(format!(
                        "objectClasses: {:?} object class '{}' cannot have {:?} superclass '{}'",
                        oc.kind,
                        oc.name(),
                        sup.kind,
                        sup.name()
                    )));
                }
            }
        }
        let arcs: Vec<Arc<ObjectClass>> = resolved.into_iter().map(Arc::new).collect();
        for oc in &arcs {
            self.class_map.insert(oc.oid.clone(), oc.clone());
            for n in &oc.names {
                self.class_map.insert(n.to_ascii_lowercase(), oc.clone());
            }
        }
        let top = self.class_map.get(TOP_OID).cloned();
        for (i, oc) in arcs.iter().enumerate() {
            let mut closure: Vec<Arc<ObjectClass>> = vec![oc.clone()];
            let mut next = 0;
            while let Some(c) = closure.get(next).cloned() {
                next += 1;
                for s in &c.sup {
                    let Some(sup) = self.class_map.get(&s.to_ascii_lowercase()) else {
                        continue;
                    };
                    if sup.oid == oc.oid {
                        let loc = ocs.get(i).map(|p| p.1.clone()).unwrap_or(Loc {
                            file: String::new(),
                            line: 0,
                        });
                        return Err(loc.err(format!(
                            "objectClasses: object class '{}' is its own superclass (SUP cycle)",
                            oc.name()
                        )));
                    }
                    if !closure.iter().any(|x| x.oid == sup.oid) {
                        closure.push(sup.clone());
                    }
                }
            }
            // Classes without SUP derive from top implicitly (RFC 4512 §2.4).
            if let Some(top) = &top {
                if !closure.iter().any(|x| x.oid == top.oid) {
                    closure.push(top.clone());
                }
            }
            let mut must: Vec<String> = Vec::new();
            let mut may: Vec<String> = Vec::new();
            for c in &closure {
                for (src, dst) in [(&c.must, &mut must), (&c.may, &mut may)] {
                    for a in src {
                        if let Some(at) = self.attribute(a) {
                            if !dst.contains(&at.oid) {
                                dst.push(at.oid.clone());
                            }
                        }
                    }
                }
            }
            let allowed = must.iter().chain(&may).cloned().collect();
            self.class_allowed.insert(oc.oid.clone(), allowed);
            self.class_must.insert(oc.oid.clone(), must);
            self.class_may.insert(oc.oid.clone(), may);
            self.class_closure.insert(oc.oid.clone(), closure);
        }
        self.classes = arcs;
        Ok(())
    }

    fn rule(&self, name: &str) -> Option<&RuleDef> {
        let idx = match self.rule_map.get(name) {
            Some(&i) => i,
            None => with_lower(name, |l| self.rule_map.get(l).copied())?,
        };
        self.rules.get(idx)
    }

    pub(crate) fn syntax_of(&self, at: &AttributeType) -> Option<Syntax> {
        at.syntax
            .as_deref()
            .and_then(|oid| self.syntax_map.get(oid).copied())
    }

    /// The OID a descriptor stands for (object class, attribute type or
    /// matching rule), else the lowercased descriptor; numeric OIDs unchanged.
    pub(crate) fn resolve_oid(&self, s: &str) -> String {
        if s.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            return s.to_string();
        }
        with_lower(s, |l| {
            if let Some(oc) = self.class_map.get(l) {
                oc.oid.clone()
            } else if let Some(known) = self.attr_map.get(l) {
                known.at.oid.clone()
            } else if let Some(r) = self.rule_map.get(l).and_then(|&i| self.rules.get(i)) {
                r.oid.clone()
            } else {
                l.to_string()
            }
        })
    }

    /// Looks up by any NAME (case-insensitive) or OID.
    pub fn attribute(&self, name_or_oid: &str) -> Option<Arc<AttributeType>> {
        with_lower(name_or_oid, |l| self.attr_map.get(l).map(|k| k.at.clone()))
    }

    /// The attribute type `name_or_oid` names and its primary name in
    /// lower case, borrowed (no reference count, no allocation).
    pub fn attribute_lname(&self, name_or_oid: &str) -> Option<(&AttributeType, &str)> {
        with_lower(name_or_oid, |l| {
            self.attr_map.get(l).map(|k| (&*k.at, &*k.lname))
        })
    }

    pub fn object_class(&self, name_or_oid: &str) -> Option<Arc<ObjectClass>> {
        with_lower(name_or_oid, |l| self.class_map.get(l).cloned())
    }

    /// All attribute types (for `*`/`+` decisions and cn=schema).
    pub fn attributes(&self) -> Vec<Arc<AttributeType>> {
        self.attrs.clone()
    }

    /// All object classes, in load order.
    /// Whether any attribute type names `at` as its superior (e.g. `name`).
    pub fn has_subtypes(&self, at: &AttributeType) -> bool {
        self.supertypes
            .get_or_init(|| {
                let mut set = std::collections::HashSet::new();
                for a in &self.attrs {
                    let mut cur = a.sup.clone();
                    let mut hops = 0;
                    while let Some(s) = cur {
                        let Some(t) = self.attribute(&s) else { break };
                        set.insert(t.oid.clone());
                        cur = t.sup.clone();
                        hops += 1;
                        if hops > 32 {
                            break;
                        }
                    }
                }
                set
            })
            .contains(&at.oid)
    }

    /// Whether `sub` is `sup` or inherits from it through SUP (RFC 4512 §2.5.1).
    pub fn is_subtype(&self, sub: &AttributeType, sup: &AttributeType) -> bool {
        let mut current = Some(sub.oid.clone());
        let mut hops = 0;
        while let Some(oid) = current {
            if oid == sup.oid {
                return true;
            }
            hops += 1;
            if hops > 32 {
                return false;
            }
            current = self
                .attribute(&oid)
                .and_then(|at| at.sup.clone())
                .and_then(|s| self.attribute(&s))
                .map(|at| at.oid.clone());
        }
        false
    }

    /// The named classes plus every superclass, by primary name, in first-seen order.
    pub fn with_superclasses(&self, names: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut stack: Vec<String> = names.iter().rev().map(|s| s.to_string()).collect();
        while let Some(n) = stack.pop() {
            let Some(oc) = self.object_class(&n) else {
                if !out.iter().any(|o| o.eq_ignore_ascii_case(&n)) {
                    out.push(n);
                }
                continue;
            };
            if out.iter().any(|o| o.eq_ignore_ascii_case(oc.name())) {
                continue;
            }
            out.push(oc.name().to_string());
            for s in oc.sup.iter().rev() {
                stack.push(s.clone());
            }
        }
        out
    }

    pub fn object_classes(&self) -> Vec<Arc<ObjectClass>> {
        self.classes.clone()
    }

    /// Checks the whole entry: object class rules (exactly one structural chain,
    /// superclasses present or implied, MUST present, only MUST/MAY attributes
    /// unless extensibleObject, auxiliary classes), known attribute types,
    /// SINGLE-VALUE, value syntax, no duplicate values, RDN values present.
    /// Operational attributes are allowed on any entry.
    pub fn check_entry(&self, entry: &Entry) -> Result<(), SchemaViolation> {
        check::check_entry(self, entry)
    }

    /// `check_entry` for an add that checked each value's syntax and
    /// uniqueness as it read it (what is left here: classes, MUST and MAY,
    /// SINGLE-VALUE, the RDN), answering the entry's structural class as
    /// `structural_class` would, without resolving the classes twice.
    pub fn check_new_entry(&self, entry: &Entry) -> Result<String, SchemaViolation> {
        check::check_entry_structural(self, entry, true)
    }

    /// The name of the entry's structural object class (most specific in its chain).
    pub fn structural_class(&self, entry: &Entry) -> Result<String, SchemaViolation> {
        check::structural_class(self, entry)
    }

    /// Validates one value against the attribute's syntax (21 on failure).
    /// Syntaxes the code does not define accept any value.
    pub fn check_syntax(&self, at: &AttributeType, value: &[u8]) -> Result<(), SchemaViolation> {
        match self.syntax_of(at) {
            Some(s) if !syntax::validate(s, value) => Err(violation(
                ViolationKind::InvalidAttributeSyntax,
                format!(
                    "value '{}' of '{}' is not a valid {}",
                    show_value(value),
                    at.name(),
                    syntax::info(s).map(|i| i.desc).unwrap_or("value")
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Normalised value under the attribute's equality rule, for equality
    /// comparisons and index keys. Err(InappropriateMatching) when the type
    /// has no equality rule; Err(InvalidAttributeSyntax) when the value cannot be normalised.
    ///
    /// Values equal under the rule give identical bytes. A rule declared only
    /// in a schema file (no implementation) compares exact bytes.
    pub fn eq_normalize(
        &self,
        at: &AttributeType,
        value: &[u8],
    ) -> Result<Vec<u8>, SchemaViolation> {
        let rule = at
            .equality
            .as_deref()
            .and_then(|n| self.rule(n))
            .ok_or_else(|| {
                violation(
                    ViolationKind::InappropriateMatching,
                    format!("attribute '{}' has no equality matching rule", at.name()),
                )
            })?;
        match rule.imp {
            None => Ok(value.to_vec()),
            Some((_, prep)) => matching::normalize(self, prep, value).ok_or_else(|| {
                violation(
                    ViolationKind::InvalidAttributeSyntax,
                    format!(
                        "value '{}' is not valid for attribute '{}' ({})",
                        show_value(value),
                        at.name(),
                        rule.name
                    ),
                )
            }),
        }
    }

    /// The ordering rule a server-side sort (RFC 2891) of `at` uses: the
    /// rule the sort key names, else the attribute's ORDERING rule, else the
    /// RFC 4517 ordering rule that prepares values as its EQUALITY rule does
    /// (caseIgnoreOrderingMatch for caseIgnoreMatch: `cn` has no ORDERING
    /// in RFC 4519, yet sorting by it is what clients ask most). Err says
    /// why the attribute cannot be sorted (inappropriateMatching).
    pub fn sort_rule(&self, at: &AttributeType, rule: Option<&str>) -> Result<SortRule, String> {
        let paired = || {
            let eq = self.rule(at.equality.as_deref()?)?;
            let (_, prep) = eq.imp?;
            RULES
                .iter()
                .find(|r| r.kind == RuleKind::Ordering && r.prep == prep)
                .map(|r| r.oid)
        };
        let name = match rule.or(at.ordering.as_deref()).or_else(paired) {
            Some(r) => r,
            None => {
                return Err(format!(
                    "attribute '{}' has no ordering rule, and its equality rule has no ordering counterpart",
                    at.name()
                ))
            }
        };
        let def = self
            .rule(name)
            .ok_or_else(|| format!("unknown matching rule '{name}'"))?;
        let Some((RuleKind::Ordering, prep)) = def.imp else {
            return Err(format!("'{}' is not an ordering rule", def.name));
        };
        let own = rule.is_none()
            || at.ordering.as_deref() == Some(def.name.as_str())
            || at.ordering.as_deref() == Some(def.oid.as_str());
        if !own && !matching::applies_to_syntax(prep, self.syntax_of(at)) {
            return Err(format!(
                "ordering rule '{}' does not apply to attribute '{}'",
                def.name,
                at.name()
            ));
        }
        Ok(SortRule { prep })
    }

    /// A value prepared for sorting under `rule`; None when the value is
    /// not valid for it (such values are left out of the sort key).
    pub fn sort_value(&self, rule: SortRule, v: &[u8]) -> Option<SortValue> {
        match rule.prep {
            Prep::Integer => syntax::is_integer(v).then(|| SortValue::Integer(v.to_vec())),
            Prep::Time => syntax::parse_generalized_time(v).map(SortValue::Time),
            prep => matching::normalize(self, prep, v).map(SortValue::Bytes),
        }
    }

    /// Ordering per the attribute's ORDERING rule (None: no ordering rule, or values not comparable).
    pub fn compare(&self, at: &AttributeType, a: &[u8], b: &[u8]) -> Option<Ordering> {
        let rule = self.rule(at.ordering.as_deref()?)?;
        match rule.imp {
            Some((_, prep)) => matching::order(self, prep, a, b),
            None => None,
        }
    }

    /// Normalises a substring assertion component under the SUBSTR rule
    /// (None: no substring rule). Also used to build substring index keys.
    ///
    /// A substring filter is evaluated by preparing the attribute value and
    /// each of initial/any/final with this function, then finding initial as
    /// a prefix, each any in order after it, and final as a suffix of what
    /// remains (see [`Schema::substring_match`]). For the caseIgnore family
    /// the prepared form is lowercased with leading/trailing spaces removed
    /// and inner runs of spaces collapsed to one; telephone numbers drop
    /// spaces and hyphens, numeric strings drop spaces. None is also returned
    /// when the value cannot be prepared (e.g. non-ASCII for an IA5 rule).
    pub fn substr_normalize(&self, at: &AttributeType, value: &[u8]) -> Option<Vec<u8>> {
        let rule = self.rule(at.substr.as_deref()?)?;
        match rule.imp {
            Some((_, prep)) => matching::substr_prepare(prep, value),
            None => Some(value.to_vec()),
        }
    }

    /// Evaluates a substring assertion against one value with the attribute's
    /// SUBSTR rule (None: no substring rule or unpreparable input).
    pub fn substring_match(
        &self,
        at: &AttributeType,
        value: &[u8],
        initial: Option<&[u8]>,
        any: &[&[u8]],
        final_: Option<&[u8]>,
    ) -> Option<bool> {
        let v = self.substr_normalize(at, value)?;
        let i = lift(initial, |x| self.substr_normalize(at, x))?;
        let a = any
            .iter()
            .map(|x| self.substr_normalize(at, x))
            .collect::<Option<Vec<_>>>()?;
        let f = lift(final_, |x| self.substr_normalize(at, x))?;
        let a_refs: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
        Some(matching::substrings_match(
            &v,
            i.as_deref(),
            &a_refs,
            f.as_deref(),
        ))
    }

    /// Evaluates an extensible match (RFC 4511 §4.5.1.7.7) of `assertion` against
    /// `value` using `rule` (name or OID; None = the attribute's equality rule).
    /// None = Undefined (unknown rule, rule not applicable to the syntax).
    ///
    /// Equality rules test equality; ordering rules are TRUE when the value
    /// is less than the assertion (RFC 4517 defines every ordering rule that
    /// way); substrings rules take a Substring Assertion (`ab*cd*ef`);
    /// integerBitAndMatch/integerBitOrMatch test bits of Integer values.
    /// An invalid assertion is Undefined, an invalid attribute value FALSE.
    pub fn extensible_match(
        &self,
        rule: Option<&str>,
        at: &AttributeType,
        assertion: &[u8],
        value: &[u8],
    ) -> Option<bool> {
        let r = match rule {
            Some(name) => self.rule(name)?,
            None => self.rule(at.equality.as_deref()?)?,
        };
        let (kind, prep) = r.imp?;
        let own = [&at.equality, &at.ordering, &at.substr]
            .iter()
            .any(|x| x.as_deref() == Some(r.name.as_str()));
        if !own && !matching::applies_to_syntax(prep, self.syntax_of(at)) {
            return None;
        }
        match kind {
            RuleKind::Equality => {
                let a = matching::normalize(self, prep, assertion)?;
                Some(matching::normalize(self, prep, value).is_some_and(|v| v == a))
            }
            RuleKind::Ordering => {
                matching::normalize(self, prep, assertion)?;
                Some(matching::order(self, prep, value, assertion) == Some(Ordering::Less))
            }
            RuleKind::Substrings => {
                let sa = syntax::parse_substring_assertion(assertion)?;
                let prepare = |x: &[u8]| matching::substr_prepare(prep, x);
                let i = lift(sa.initial.as_deref(), prepare)?;
                let a = sa
                    .any
                    .iter()
                    .map(|x| prepare(x))
                    .collect::<Option<Vec<_>>>()?;
                let f = lift(sa.final_.as_deref(), prepare)?;
                let Some(v) = prepare(value) else {
                    return Some(false);
                };
                let a_refs: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
                Some(matching::substrings_match(
                    &v,
                    i.as_deref(),
                    &a_refs,
                    f.as_deref(),
                ))
            }
            RuleKind::Extensible => {
                if !syntax::is_integer(assertion) {
                    return None;
                }
                Some(matching::bit_match(prep, value, assertion).unwrap_or(false))
            }
        }
    }

    /// Whether a matching rule name/OID is known.
    pub fn has_matching_rule(&self, rule: &str) -> bool {
        self.rule(rule).is_some()
    }

    /// Normalised DN string: attribute types as lowercased primary names, values
    /// under their equality rule (unknown types fall back to caseIgnore), RDN
    /// components sorted. Equal DNs give equal strings.
    pub fn normalize_dn(&self, dn: &Dn) -> String {
        dn.normalized_with(&|t: &str, v: &[u8]| self.normalize_ava(t, v))
    }

    /// One RDN as [`Schema::normalize_dn`] writes it: a normalised DN is
    /// its normalised RDNs joined by commas.
    pub fn normalize_rdn(&self, rdn: &crate::model::Rdn) -> String {
        crate::model::normalized_rdn(rdn, &|t: &str, v: &[u8]| self.normalize_ava(t, v))
    }

    fn normalize_ava(&self, t: &str, v: &[u8]) -> (String, Vec<u8>) {
        let fallback = |v: &[u8]| match std::str::from_utf8(v) {
            Ok(s) => matching::prep_string(s, true),
            Err(_) => v.to_vec(),
        };
        match self.attribute_lname(t) {
            Some((at, lname)) => {
                let value = self.eq_normalize(at, v).unwrap_or_else(|_| fallback(v));
                (lname.to_string(), value)
            }
            None => (t.to_ascii_lowercase(), fallback(v)),
        }
    }

    /// Attributes of the subschema subentry (cn=schema): attributeTypes,
    /// objectClasses, ldapSyntaxes, matchingRules, matchingRuleUse (RFC 4512 text values).
    pub fn subschema_attributes(&self) -> Vec<(String, Vec<Vec<u8>>)> {
        let attribute_types = self
            .attrs
            .iter()
            .map(|a| a.definition.clone().into_bytes())
            .collect();
        let object_classes = self
            .classes
            .iter()
            .map(|c| c.definition.clone().into_bytes())
            .collect();
        let mut syntaxes: Vec<Vec<u8>> = SYNTAXES
            .iter()
            .map(|s| parser::render_syntax(s.oid, s.desc, s.binary).into_bytes())
            .collect();
        syntaxes.extend(
            self.file_syntaxes
                .iter()
                .map(|s| s.definition.clone().into_bytes()),
        );
        let rules = self
            .rules
            .iter()
            .map(|r| r.definition.clone().into_bytes())
            .collect();
        let mut uses = Vec::new();
        for r in &self.rules {
            let applies: Vec<String> = self
                .attrs
                .iter()
                .filter(|at| self.rule_applies(r, at))
                .map(|at| at.name().to_string())
                .collect();
            if !applies.is_empty() {
                let names: Vec<String> = if r.name != r.oid {
                    vec![r.name.clone()]
                } else {
                    Vec::new()
                };
                uses.push(parser::render_matching_rule_use(&r.oid, &names, &applies).into_bytes());
            }
        }
        vec![
            ("attributeTypes".to_string(), attribute_types),
            ("objectClasses".to_string(), object_classes),
            ("ldapSyntaxes".to_string(), syntaxes),
            ("matchingRules".to_string(), rules),
            ("matchingRuleUse".to_string(), uses),
        ]
    }

    fn rule_applies(&self, r: &RuleDef, at: &AttributeType) -> bool {
        let own = [&at.equality, &at.ordering, &at.substr]
            .iter()
            .any(|x| x.as_deref() == Some(r.name.as_str()));
        own || match r.imp {
            Some((_, prep)) => matching::applies_to_syntax(prep, self.syntax_of(at)),
            None => at.syntax.as_deref() == Some(r.syntax.as_str()),
        }
    }
}
