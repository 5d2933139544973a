//! The contract's types as plain Rust. A plugin works on these, so its logic compiles and is
//! tested natively; the SDK converts them at the component boundary.

pub use connlog_vocabulary::ConnectionMethod;
pub use uuid::Uuid;

/// Nanoseconds since the Unix epoch, UTC.
pub type UnixNanos = i64;

/// Coder's default page size: a [`QueryRequest::limit`] of 0 means this many rows.
pub const DEFAULT_LIMIT: u32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    Connected,
    Disconnected,
}

/// One connection event, as producers report it (Coder's `UpsertConnectionLogParams`). `S`
/// is `String` for an event of its own, and `&str` for an [`EventRef`] whose text lives
/// elsewhere (a replay batch, or another event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionEvent<S = String> {
    pub id: Uuid,
    pub time: UnixNanos,
    pub organization_id: Uuid,
    pub workspace_owner_id: Uuid,
    pub workspace_id: Uuid,
    pub workspace_name: S,
    pub agent_name: S,
    pub connection_method: ConnectionMethod,
    pub code: Option<i32>,
    pub ip: Option<S>,
    pub user_agent: Option<S>,
    pub user_id: Option<Uuid>,
    /// The client's app for SSH and the web terminal; a slug or port for a web app or a
    /// port forward.
    pub app_name_or_port: Option<S>,
    pub connection_id: Option<Uuid>,
    pub disconnect_reason: Option<S>,
    /// 32 lowercase hex characters, shared by the connections of one client session.
    pub client_session_id: Option<S>,
    pub status: ConnectionStatus,
}

/// An event that borrows its text: merging reads events without copying a string.
pub type EventRef<'a> = ConnectionEvent<&'a str>;

impl<S> ConnectionEvent<S> {
    /// The same event with each string mapped through `text`.
    pub fn map_text<'a, T>(&'a self, text: impl Fn(&'a S) -> T) -> ConnectionEvent<T> {
        ConnectionEvent {
            id: self.id,
            time: self.time,
            organization_id: self.organization_id,
            workspace_owner_id: self.workspace_owner_id,
            workspace_id: self.workspace_id,
            workspace_name: text(&self.workspace_name),
            agent_name: text(&self.agent_name),
            connection_method: self.connection_method,
            code: self.code,
            ip: self.ip.as_ref().map(&text),
            user_agent: self.user_agent.as_ref().map(&text),
            user_id: self.user_id,
            app_name_or_port: self.app_name_or_port.as_ref().map(&text),
            connection_id: self.connection_id,
            disconnect_reason: self.disconnect_reason.as_ref().map(&text),
            client_session_id: self.client_session_id.as_ref().map(&text),
            status: self.status,
        }
    }
}

impl ConnectionEvent {
    pub fn as_event_ref(&self) -> EventRef<'_> {
        self.map_text(String::as_str)
    }
}

impl EventRef<'_> {
    pub fn into_owned(self) -> ConnectionEvent {
        self.map_text(|s| s.to_string())
    }
}

/// A row of Coder's `connection_logs` table. `S` is `String` for a row of its own, and
/// `&str` for a [`RowRef`] that borrows its text from the events it was merged from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLog<S = String> {
    pub id: Uuid,
    pub connect_time: UnixNanos,
    pub organization_id: Uuid,
    pub workspace_owner_id: Uuid,
    pub workspace_id: Uuid,
    pub workspace_name: S,
    pub agent_name: S,
    pub connection_method: ConnectionMethod,
    pub code: Option<i32>,
    pub ip: Option<S>,
    pub user_agent: Option<S>,
    pub user_id: Option<Uuid>,
    pub app_name_or_port: Option<S>,
    pub connection_id: Option<Uuid>,
    pub disconnect_time: Option<UnixNanos>,
    pub disconnect_reason: Option<S>,
    pub client_session_id: Option<S>,
}

/// A row whose text lives elsewhere: merging and storing a row copies no string.
pub type RowRef<'a> = ConnectionLog<&'a str>;

impl<S> ConnectionLog<S> {
    /// The same row with each string mapped through `text`.
    pub fn map_text<'a, T>(&'a self, text: impl Fn(&'a S) -> T) -> ConnectionLog<T> {
        ConnectionLog {
            id: self.id,
            connect_time: self.connect_time,
            organization_id: self.organization_id,
            workspace_owner_id: self.workspace_owner_id,
            workspace_id: self.workspace_id,
            workspace_name: text(&self.workspace_name),
            agent_name: text(&self.agent_name),
            connection_method: self.connection_method,
            code: self.code,
            ip: self.ip.as_ref().map(&text),
            user_agent: self.user_agent.as_ref().map(&text),
            user_id: self.user_id,
            app_name_or_port: self.app_name_or_port.as_ref().map(&text),
            connection_id: self.connection_id,
            disconnect_time: self.disconnect_time,
            disconnect_reason: self.disconnect_reason.as_ref().map(&text),
            client_session_id: self.client_session_id.as_ref().map(&text),
        }
    }
}

impl ConnectionLog {
    pub fn as_row_ref(&self) -> RowRef<'_> {
        self.map_text(String::as_str)
    }
}

impl RowRef<'_> {
    pub fn into_owned(self) -> ConnectionLog {
        self.map_text(|s| s.to_string())
    }
}

/// Who is asking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub site_roles: Vec<String>,
    /// Organization id and the role names held in it.
    pub organization_roles: Vec<(Uuid, Vec<String>)>,
}

/// Coder's validation detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    pub field: String,
    pub detail: String,
}

impl Validation {
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub icon: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub name: String,
    pub avatar_url: String,
    pub status: String,
    pub login_type: String,
    pub created_at: UnixNanos,
    pub updated_at: UnixNanos,
    pub last_seen_at: UnixNanos,
    pub deleted: bool,
    pub site_roles: Vec<String>,
}

/// The identity of an agent-reported session: its events merge into one row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub connection_id: Uuid,
    pub workspace_id: Uuid,
    pub agent_name: String,
}

impl SessionKey {
    /// The session an event belongs to; `None` for an event without a connection id (web
    /// and tunnel events, which are rows of their own).
    pub fn of<S: AsRef<str>>(event: &ConnectionEvent<S>) -> Option<SessionKey> {
        event.connection_id.map(|connection_id| SessionKey {
            connection_id,
            workspace_id: event.workspace_id,
            agent_name: event.agent_name.as_ref().to_string(),
        })
    }
}

/// What a row was built from, so that retention can forget it in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowOrigin {
    SingleEvent(Uuid),
    Session(SessionKey),
}

/// Why the host's journal failed a call. Every journal change of the plugin call that sees
/// it is rolled back by the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalError {
    /// The store could not be read or written.
    Unavailable(String),
    /// The store holds data that cannot be decoded (or, from `load_snapshot`, a snapshot
    /// that is not this plugin's).
    Corrupt(String),
}

impl core::fmt::Display for JournalError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JournalError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            JournalError::Corrupt(m) => write!(f, "store corrupt: {m}"),
        }
    }
}

/// What the host passes once, after instantiation (`lifecycle.configure`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginConfig {
    /// Which service-log formats the plugin writes for every stored event.
    pub service_log_formats: Vec<LogFormat>,
    /// Which generation of Coder's fields those lines carry.
    pub service_log_fields: LogFields,
    /// The deployment's settings for this plugin (`--plugin-setting KEY=VALUE`), in the
    /// order given. Always empty under contract 0.1.0, which has no settings.
    pub settings: Vec<Setting>,
}

impl PluginConfig {
    /// These service-log formats and no settings.
    pub fn log_formats(formats: &[LogFormat]) -> Self {
        Self {
            service_log_formats: formats.to_vec(),
            service_log_fields: LogFields::Current,
            settings: Vec::new(),
        }
    }
}

/// One operator setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl Setting {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Why a plugin refuses its settings. The host shows it to the operator and does not serve
/// with the plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsError {
    /// A key the plugin does not know, and every key it does.
    UnknownSetting { key: String, known: Vec<String> },
    /// A known key with a value the plugin refuses. `reason` never quotes the value: it may
    /// be a secret.
    InvalidSetting { key: String, reason: String },
}

impl core::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SettingsError::UnknownSetting { key, known } if known.is_empty() => {
                write!(f, "unknown setting {key:?}: this plugin takes no settings")
            }
            SettingsError::UnknownSetting { key, known } => {
                write!(f, "unknown setting {key:?} (known: {})", known.join(", "))
            }
            SettingsError::InvalidSetting { key, reason } => {
                write!(f, "invalid setting {key:?}: {reason}")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogFormat {
    Json,
    Human,
}

/// Which generation of Coder's `connection_log` fields a service-log line carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LogFields {
    /// Coder's current line: `ConnectionMethod`, `AppNameOrPort`, `ClientSessionID`, `IP`.
    #[default]
    Current,
    /// The older line of Coder's docs: the deprecated 7-value `Type`, `SlugOrPort`, `Ip`.
    Seed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub format: LogFormat,
    pub line: String,
}

/// What happened to one ingested event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Stored,
    Duplicate,
    Rejected(Validation),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRequest {
    /// Coder's filter language, such as `method:ssh status:ongoing`.
    pub q: String,
    /// `None` means [`DEFAULT_LIMIT`].
    pub limit: Option<u32>,
    pub offset: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub rows: Vec<ConnectionLog>,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// Coder's 400, `Invalid connection search query.`, with these validations.
    InvalidQuery(Vec<Validation>),
    /// The plugin could not answer; the message says why.
    Failed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeReport {
    pub purged: u64,
    pub cutoff: Option<UnixNanos>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateStats {
    pub rows: u64,
    pub memory_bytes: u64,
}
