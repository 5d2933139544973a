//! Coder's filter language for connection logs (`searchquery.ConnectionLogs` in
//! [`coderd/searchquery/search.go`]): tokenizer, keys, look-ups through the directory, and
//! Coder's exact error texts.
//!
//! The parse runs in Coder's order (version D3, `036757dc`): the whole query is lowercased,
//! split into `key → values` ([`tokenize`]; an error there is returned alone), then each key
//! is read by Coder's `QueryParamParser` rules, errors accumulating in the order
//! organization, workspace_owner, workspace_owner_email, username, user_email,
//! connected_after, connected_before, workspace_id, connection_id, status, method, app,
//! type, then "type cannot be combined with method or app", then one "not a valid query
//! param" error per unknown key (sorted, where Go's map order is random).
//!
//! `type:` is deprecated: it takes the 7 values of the released `connection_type` and is
//! translated to a method and app lists ([`LegacyType::filter`]) so that a row matches the
//! `type` it is returned with. `app:` is repeatable and comma-separated; each value is
//! normalised as Coder normalises app names, and matches stored names exactly.
//!
//! `code:` is connlog's own key, not Coder's (Coder answers it with "not a valid query
//! param"): it matches a row's code (HTTP status, tunnel decision or exit code) against a
//! comma list of integers and classes `1xx` to `5xx`, repeatable as `app:` is. Its errors
//! come after the `type` combination error and before the unknown keys.
//!
//! Coder leaves names and emails for SQL subqueries to resolve; here they are resolved through
//! the [`HostDirectory`] into id sets, with the same rules (see [`Filter`]'s fields):
//! `workspace_owner`, `workspace_owner_email` and `username` ignore deleted users,
//! `user_email` does not, and nothing found means an empty set, which matches no row.
//!
//! [`coderd/searchquery/search.go`]: https://github.com/coder/coder/blob/main/coderd/searchquery/search.go

mod gotime;
mod gouuid;
mod tokenize;

#[cfg(test)]
mod tests;

use connlog_plugin_sdk::HostDirectory;
use connlog_plugin_sdk::model::*;
use connlog_vocabulary::gostr::strconv_quote;
use connlog_vocabulary::{LegacyType, normalize_app_name};

use gotime::{GoInstant, RFC3339_NANO};
use tokenize::{Values, go_to_lower, go_to_upper};

/// `ongoing` or `completed`, the `status:` filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    Ongoing,
    Completed,
}

/// A parsed, resolved `q`: every clause is a conjunct; `None` means "no constraint".
/// An id list is a set of allowed values: an empty list matches nothing (Coder's subquery
/// that found no user).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub organization_id: Option<Uuid>,
    pub workspace_owner_ids: Option<Vec<Uuid>>,
    /// `method:`, or the method a `type:` stands for.
    pub method: Option<ConnectionMethod>,
    /// The deprecated `type:`, also translated into `method` and the app lists; a store
    /// may answer either (they select the same rows: those returned with that `type`).
    pub legacy_type: Option<LegacyType>,
    /// Only SSH and web-terminal rows whose app is one of these (normalised, sorted, no
    /// duplicates); an empty list matches nothing.
    pub app_names: Option<Vec<String>>,
    /// SSH and web-terminal rows whose app is one of these are left out; those with no app
    /// stay. Only `type:ssh` sets it (the VS Code and JetBrains families).
    pub excluded_app_names: Vec<String>,
    pub user_ids: Option<Vec<Uuid>>,
    /// Inclusive.
    pub connected_after: Option<UnixNanos>,
    /// Inclusive.
    pub connected_before: Option<UnixNanos>,
    pub workspace_id: Option<Uuid>,
    pub connection_id: Option<Uuid>,
    /// Matches SSH and web-terminal rows only: an agent's port forward has a lifecycle but
    /// never matches (Coder D's `connection_method IN ('ssh','reconnecting_pty')`).
    pub status: Option<SessionStatus>,
    /// `code:`, connlog's extension: rows whose code (`web_info.status_code` or
    /// `ssh_info.exit_code`) lies in one of these ranges (sorted, no duplicates); a row
    /// without a code never matches.
    pub codes: Option<Vec<CodeRange>>,
}

/// An inclusive range of codes: one code (`code:403`) or a class (`code:4xx`, 400 to 499).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CodeRange {
    pub lo: i32,
    pub hi: i32,
}

impl CodeRange {
    pub const fn one(code: i32) -> Self {
        Self { lo: code, hi: code }
    }

    /// `1xx` to `5xx`: `class` 1 to 5.
    pub const fn class(class: i32) -> Self {
        Self {
            lo: class * 100,
            hi: class * 100 + 99,
        }
    }

    pub const fn contains(&self, code: i32) -> bool {
        self.lo <= code && code <= self.hi
    }
}

/// What `me` stands for in `username:` and `workspace_owner:`.
const ME: &str = "me";

/// Parses `q` for `actor` (who `me` means). Look-ups of names and emails go through
/// `directory`. Errors come in Coder's order, each with its field and detail.
pub fn parse_filter(
    q: &str,
    actor: &Actor,
    directory: &dyn HostDirectory,
) -> Result<Filter, Vec<Validation>> {
    let query = go_to_lower(q);
    let values = tokenize::search_terms(&query).map_err(|error| vec![error])?;

    let mut parser = QueryParamParser::new(&values);
    let organization = parser.custom("organization", |v| parse_organization(v, directory));
    let workspace_owner = parser.string("workspace_owner");
    let workspace_owner_email = parser.string("workspace_owner_email");
    let username = parser.string("username");
    let user_email = parser.string("user_email");
    let connected_after = parser.time_rfc3339_nano("connected_after");
    let connected_before = parser.time_rfc3339_nano("connected_before");
    let workspace_id = parser.uuid("workspace_id");
    let connection_id = parser.uuid("connection_id");
    let status = parser.custom("status", |v| {
        parse_enum(v, &["ongoing", "completed"]).map(|s| match s {
            "ongoing" => SessionStatus::Ongoing,
            _ => SessionStatus::Completed,
        })
    });
    let method = parser.custom("method", |v| {
        ConnectionMethod::parse(v).ok_or_else(|| not_a_valid_value(v))
    });
    let apps = parser.strings("app");
    let legacy_type = parser.custom("type", |v| {
        LegacyType::parse(v).ok_or_else(|| not_a_valid_value(v))
    });
    if legacy_type.is_some() && (method.is_some() || apps.is_some()) {
        parser.errors.push(Validation::new(
            "type",
            "type cannot be combined with method or app",
        ));
    }
    let codes = parser.code_ranges("code");
    parser.error_excess_params();
    if !parser.errors.is_empty() {
        return Err(parser.errors);
    }

    // Each "owner" clause of Coder's WHERE is a conjunct: intersect what they allow.
    let mut owners = IdSets::default();
    match workspace_owner.as_deref() {
        Some(ME) => owners.require_actor(actor),
        Some(name) => owners.require(live(directory.users_by_username(name))),
        None => {}
    }
    if let Some(email) = &workspace_owner_email {
        owners.require(live(directory.users_by_email(email)));
    }

    let mut users = IdSets::default();
    match username.as_deref() {
        Some(ME) => users.require_actor(actor),
        Some(name) => users.require(live(directory.users_by_username(name))),
        None => {}
    }
    if let Some(email) = &user_email {
        // `users.email = $` on the joined row: deleted users count.
        users.require(
            directory
                .users_by_email(email)
                .into_iter()
                .map(|u| u.id)
                .collect(),
        );
    }

    let (method, app_names, excluded_app_names) = match (legacy_type, apps) {
        (Some(legacy_type), _) => {
            let f = legacy_type.filter();
            let names = |apps: Vec<&str>| apps.into_iter().map(str::to_string).collect();
            (Some(f.method), f.apps.map(names), names(f.excluded_apps))
        }
        (None, apps) => (method, apps.map(normalized_app_names), Vec::new()),
    };

    Ok(Filter {
        organization_id: organization.filter(|id| !id.is_nil()),
        workspace_owner_ids: owners.into_filter(),
        method,
        legacy_type,
        app_names,
        excluded_app_names,
        user_ids: users.into_filter(),
        connected_after: connected_after.and_then(time_bound),
        connected_before: connected_before.and_then(time_bound),
        workspace_id: workspace_id.filter(|id| !id.is_nil()),
        connection_id: connection_id.filter(|id| !id.is_nil()),
        status,
        codes,
    })
}

/// Coder's `parseOrganization`: a UUID as it is (no existence check), else a name.
fn parse_organization(value: &str, directory: &dyn HostDirectory) -> Result<Uuid, String> {
    if let Some(id) = gouuid::parse(value) {
        return Ok(id);
    }
    directory
        .organization_by_name(value)
        .map(|org| org.id)
        .ok_or_else(|| {
            format!(
                "organization {} either does not exist, or you are unauthorized to view it",
                strconv_quote(value)
            )
        })
}

/// Coder's `ParseEnum`.
fn parse_enum<'a>(value: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
    allowed
        .iter()
        .copied()
        .find(|a| *a == value)
        .ok_or_else(|| not_a_valid_value(value))
}

/// `ParseEnum`'s error detail.
fn not_a_valid_value(value: &str) -> String {
    format!("{} is not a valid value", strconv_quote(value))
}

/// What a `code:` value may be, for its error.
const CODE_FORMS: &str = "a 32-bit integer such as 403, or a class 1xx to 5xx";

/// One `code:` value: a class `1xx` to `5xx`, else what Go's `strconv.ParseInt(v, 10, 32)`
/// reads (an optional sign, then decimal digits, within 32 bits).
fn parse_code(value: &str) -> Option<CodeRange> {
    if let [class @ b'1'..=b'5', b'x', b'x'] = value.as_bytes() {
        return Some(CodeRange::class(i32::from(class - b'0')));
    }
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().map(CodeRange::one)
}

/// `app:` values as Coder compares them: normalised, sorted, deduplicated.
fn normalized_app_names(apps: Vec<&str>) -> Vec<String> {
    let mut names: Vec<String> = apps.into_iter().map(normalize_app_name).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// A time bound as Coder's SQL sees it: the zero `time.Time` disables the clause.
fn time_bound(t: GoInstant) -> Option<UnixNanos> {
    (!t.is_zero()).then(|| t.unix_nanos_saturating())
}

/// Ids of the users that are not deleted (`deleted = false` in Coder's subqueries).
fn live(users: Vec<User>) -> Vec<Uuid> {
    users
        .into_iter()
        .filter(|u| !u.deleted)
        .map(|u| u.id)
        .collect()
}

/// The intersection of id constraints; `None` until one is required.
#[derive(Default)]
struct IdSets(Option<Vec<Uuid>>);

impl IdSets {
    fn require(&mut self, mut ids: Vec<Uuid>) {
        ids.sort();
        ids.dedup();
        self.0 = Some(match self.0.take() {
            None => ids,
            Some(current) => current
                .into_iter()
                .filter(|id| ids.binary_search(id).is_ok())
                .collect(),
        });
    }

    /// `me`. Coder sets the id column to the caller's id, and a nil id disables the clause, so
    /// an actor without an id is no constraint, exactly as in Coder.
    fn require_actor(&mut self, actor: &Actor) {
        if !actor.user_id.is_nil() {
            self.require(vec![actor.user_id]);
        }
    }

    fn into_filter(self) -> Option<Vec<Uuid>> {
        self.0
    }
}

/// Coder's `httpapi.QueryParamParser`, for the parsers `ConnectionLogs` uses.
struct QueryParamParser<'a> {
    values: &'a Values,
    parsed: Vec<&'static str>,
    errors: Vec<Validation>,
}

impl<'a> QueryParamParser<'a> {
    fn new(values: &'a Values) -> Self {
        Self {
            values,
            parsed: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// `parseQueryParam`: the single value of `key`, if any. A key that is absent or whose
    /// *first* value is empty yields nothing, before duplicates are looked at; more than one
    /// value is an error and yields nothing.
    fn single(&mut self, key: &'static str) -> Option<&'a str> {
        self.parsed.push(key);
        let values = self.values.get(key)?;
        if values.first().is_none_or(String::is_empty) {
            return None;
        }
        if values.len() > 1 {
            self.errors.push(Validation::new(
                key,
                format!(
                    "Query param \"{key}\" provided more than once, found {} times. Only provide 1 instance of this query param.",
                    values.len()
                ),
            ));
            return None;
        }
        Some(values[0].as_str())
    }

    fn string(&mut self, key: &'static str) -> Option<String> {
        self.single(key).map(str::to_string)
    }

    /// `Strings` (`ParseCustomList`): every value of a repeatable key, each split on commas.
    /// Nothing when the key is absent or its first value is empty; never an error.
    fn strings(&mut self, key: &'static str) -> Option<Vec<&'a str>> {
        self.parsed.push(key);
        let values = self.values.get(key)?;
        if values.first().is_none_or(String::is_empty) {
            return None;
        }
        Some(values.iter().flat_map(|v| v.split(',')).collect())
    }

    /// `code:` (connlog's extension): a list key as `strings` reads it, each value a code or
    /// a class; sorted and deduplicated. Every bad value is named in one error, as Go's
    /// `ParseCustomList` names them.
    fn code_ranges(&mut self, key: &'static str) -> Option<Vec<CodeRange>> {
        let values = self.strings(key)?;
        let mut ranges = Vec::with_capacity(values.len());
        let mut bad = Vec::new();
        for value in values {
            match parse_code(value) {
                Some(range) => ranges.push(range),
                None => bad.push(strconv_quote(value)),
            }
        }
        let detail = match bad.as_slice() {
            [] => {
                ranges.sort_unstable();
                ranges.dedup();
                return Some(ranges);
            }
            [one] => format!(
                "Query param \"{key}\" has invalid value: {one} is not a valid code ({CODE_FORMS})"
            ),
            many => format!(
                "Query param \"{key}\" has invalid values: {} are not valid codes ({CODE_FORMS})",
                many.join(", ")
            ),
        };
        self.errors.push(Validation::new(key, detail));
        None
    }

    /// `ParseCustom`.
    fn custom<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.single(key)?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.errors.push(Validation::new(
                    key,
                    format!("Query param \"{key}\" has invalid value: {error}"),
                ));
                None
            }
        }
    }

    /// `UUID`.
    fn uuid(&mut self, key: &'static str) -> Option<Uuid> {
        let value = self.single(key)?;
        let parsed = gouuid::parse(value);
        if parsed.is_none() {
            self.errors.push(Validation::new(
                key,
                format!("Query param \"{key}\" must be a valid uuid"),
            ));
        }
        parsed
    }

    /// `Time3339Nano`: uppercased (the query was lowercased), parsed, taken to UTC.
    fn time_rfc3339_nano(&mut self, key: &'static str) -> Option<GoInstant> {
        let value = self.single(key)?;
        match gotime::parse_rfc3339_nano(&go_to_upper(value)) {
            Ok(t) => Some(t),
            Err(error) => {
                self.errors.push(Validation::new(
                    key,
                    format!("Query param \"{key}\" must be a valid date format ({RFC3339_NANO}): {error}"),
                ));
                None
            }
        }
    }

    /// `ErrorExcessParams`: every key nobody read, `search` (bare words) included.
    fn error_excess_params(&mut self) {
        for key in self.values.keys() {
            if !self.parsed.contains(&key.as_str()) {
                self.errors.push(Validation::new(
                    key.clone(),
                    format!("{} is not a valid query param", strconv_quote(key)),
                ));
            }
        }
    }
}
