//! The host's vocabulary: connection events, rows, queries and their errors. The host owns
//! these types; each contract version's bindings convert to and from them
//! (`plugin::wit`), so that no plugin crate is needed to build the host.

pub use connlog_vocabulary::ConnectionMethod;
pub use uuid::Uuid;

/// Nanoseconds since the Unix epoch, UTC.
pub type UnixNanos = i64;

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

impl EventRef<'_> {
    pub fn into_owned(self) -> ConnectionEvent {
        self.map_text(|s| s.to_string())
    }
}

/// A row of Coder's `connection_logs` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLog {
    pub id: Uuid,
    pub connect_time: UnixNanos,
    pub organization_id: Uuid,
    pub workspace_owner_id: Uuid,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub agent_name: String,
    pub connection_method: ConnectionMethod,
    pub code: Option<i32>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub user_id: Option<Uuid>,
    pub app_name_or_port: Option<String>,
    pub connection_id: Option<Uuid>,
    pub disconnect_time: Option<UnixNanos>,
    pub disconnect_reason: Option<String>,
    pub client_session_id: Option<String>,
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

/// What a row was built from, so that retention can forget it in the journal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RowOrigin {
    SingleEvent(Uuid),
    Session(SessionKey),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageError {
    Unavailable(String),
    Corrupt(String),
}

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StorageError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            StorageError::Corrupt(m) => write!(f, "store corrupt: {m}"),
        }
    }
}

impl std::error::Error for StorageError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogFormat {
    Json,
    Human,
}

/// Which generation of Coder's `connection_log` fields a service-log line carries.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
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
    /// Coder's filter language, such as `type:ssh status:ongoing`.
    pub q: String,
    /// 0 means the plugin's default page size (Coder's: 100).
    pub limit: u32,
    pub offset: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub rows: Vec<ConnectionLog>,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryError {
    InvalidQuery(Vec<Validation>),
    Storage(StorageError),
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

/// One operator setting for the plugin (`--plugin-setting KEY=VALUE`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl Setting {
    /// Parses `KEY=VALUE`: the key is what precedes the first `=`, and must not be empty.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok(Self {
                key: key.trim().to_string(),
                value: value.to_string(),
            }),
            _ => Err("a plugin setting is KEY=VALUE, with a key before the `=`".into()),
        }
    }
}

/// Why a plugin refused its settings; it does not serve with them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{}", unknown_setting(key, known))]
    UnknownSetting { key: String, known: Vec<String> },
    /// The reason never quotes the value, which may be a secret.
    #[error("invalid setting {key:?}: {reason}")]
    InvalidSetting { key: String, reason: String },
}

fn unknown_setting(key: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("unknown setting {key:?}: this plugin takes no settings")
    } else {
        format!("unknown setting {key:?} (known: {})", known.join(", "))
    }
}
