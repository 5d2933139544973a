//! Host bindings for contract `coder:connection-log@0.1.0`: the conversions between its
//! generated types and the host's model, and its imports answered by `HostState`'s methods.
//! A later contract version gets its own module beside this one, mapped onto the same
//! `HostState`.

use crate::model;
use crate::plugin::HostState;
use crate::plugin::columns::EventColumns;

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "connection-log-plugin",
});

pub use coder::connection_log::{
    directory as wit_directory, journal as wit_journal, service_log as wit_service_log,
    types as wit_types,
};
pub use exports::coder::connection_log::{ingest as wit_ingest, query as wit_query};

/// The contract this module binds; a plugin must implement the same major (for 0.x: the
/// same minor) version.
pub const CONTRACT_PACKAGE: &str = "coder:connection-log";
pub const CONTRACT_VERSION: &str = "0.1.0";

impl From<model::Uuid> for wit_types::Uuid {
    fn from(id: model::Uuid) -> Self {
        let (high, low) = id.as_u64_pair();
        Self { high, low }
    }
}

impl From<wit_types::Uuid> for model::Uuid {
    fn from(id: wit_types::Uuid) -> Self {
        model::Uuid::from_u64_pair(id.high, id.low)
    }
}

impl From<model::ConnectionStatus> for wit_types::ConnectionStatus {
    fn from(s: model::ConnectionStatus) -> Self {
        match s {
            model::ConnectionStatus::Connected => Self::Connected,
            model::ConnectionStatus::Disconnected => Self::Disconnected,
        }
    }
}

impl From<wit_types::ConnectionStatus> for model::ConnectionStatus {
    fn from(s: wit_types::ConnectionStatus) -> Self {
        match s {
            wit_types::ConnectionStatus::Connected => Self::Connected,
            wit_types::ConnectionStatus::Disconnected => Self::Disconnected,
        }
    }
}

impl From<model::ConnectionEvent> for wit_types::ConnectionEvent {
    fn from(e: model::ConnectionEvent) -> Self {
        Self {
            id: e.id.into(),
            time: e.time,
            organization_id: e.organization_id.into(),
            workspace_owner_id: e.workspace_owner_id.into(),
            workspace_id: e.workspace_id.into(),
            workspace_name: e.workspace_name,
            agent_name: e.agent_name,
            connection_type: e.connection_type,
            code: e.code,
            ip: e.ip,
            user_agent: e.user_agent,
            user_id: e.user_id.map(Into::into),
            slug_or_port: e.slug_or_port,
            connection_id: e.connection_id.map(Into::into),
            disconnect_reason: e.disconnect_reason,
            status: e.status.into(),
        }
    }
}

impl From<wit_types::ConnectionEvent> for model::ConnectionEvent {
    fn from(e: wit_types::ConnectionEvent) -> Self {
        Self {
            id: e.id.into(),
            time: e.time,
            organization_id: e.organization_id.into(),
            workspace_owner_id: e.workspace_owner_id.into(),
            workspace_id: e.workspace_id.into(),
            workspace_name: e.workspace_name,
            agent_name: e.agent_name,
            connection_type: e.connection_type,
            code: e.code,
            ip: e.ip,
            user_agent: e.user_agent,
            user_id: e.user_id.map(Into::into),
            slug_or_port: e.slug_or_port,
            connection_id: e.connection_id.map(Into::into),
            disconnect_reason: e.disconnect_reason,
            status: e.status.into(),
        }
    }
}

impl From<EventColumns> for wit_types::EventColumns {
    fn from(c: EventColumns) -> Self {
        let EventColumns {
            uuids,
            times,
            codes,
            flags,
            text,
            text_ends,
        } = c;
        Self {
            uuids,
            times,
            codes,
            flags,
            text,
            text_ends,
        }
    }
}

impl From<model::ConnectionLog> for wit_types::ConnectionLog {
    fn from(r: model::ConnectionLog) -> Self {
        Self {
            id: r.id.into(),
            connect_time: r.connect_time,
            organization_id: r.organization_id.into(),
            workspace_owner_id: r.workspace_owner_id.into(),
            workspace_id: r.workspace_id.into(),
            workspace_name: r.workspace_name,
            agent_name: r.agent_name,
            connection_type: r.connection_type,
            code: r.code,
            ip: r.ip,
            user_agent: r.user_agent,
            user_id: r.user_id.map(Into::into),
            slug_or_port: r.slug_or_port,
            connection_id: r.connection_id.map(Into::into),
            disconnect_time: r.disconnect_time,
            disconnect_reason: r.disconnect_reason,
        }
    }
}

impl From<wit_types::ConnectionLog> for model::ConnectionLog {
    fn from(r: wit_types::ConnectionLog) -> Self {
        Self {
            id: r.id.into(),
            connect_time: r.connect_time,
            organization_id: r.organization_id.into(),
            workspace_owner_id: r.workspace_owner_id.into(),
            workspace_id: r.workspace_id.into(),
            workspace_name: r.workspace_name,
            agent_name: r.agent_name,
            connection_type: r.connection_type,
            code: r.code,
            ip: r.ip,
            user_agent: r.user_agent,
            user_id: r.user_id.map(Into::into),
            slug_or_port: r.slug_or_port,
            connection_id: r.connection_id.map(Into::into),
            disconnect_time: r.disconnect_time,
            disconnect_reason: r.disconnect_reason,
        }
    }
}

impl From<model::Actor> for wit_types::Actor {
    fn from(a: model::Actor) -> Self {
        Self {
            user_id: a.user_id.into(),
            site_roles: a.site_roles,
            organization_roles: a
                .organization_roles
                .into_iter()
                .map(|(id, roles)| wit_types::OrganizationRoles {
                    organization_id: id.into(),
                    roles,
                })
                .collect(),
        }
    }
}

impl From<model::QueryRequest> for wit_query::QueryRequest {
    fn from(r: model::QueryRequest) -> Self {
        Self {
            q: r.q,
            limit: r.limit,
            offset: r.offset,
        }
    }
}

impl From<wit_types::Validation> for model::Validation {
    fn from(v: wit_types::Validation) -> Self {
        Self {
            field: v.field,
            detail: v.detail,
        }
    }
}

impl From<wit_query::QueryError> for model::QueryError {
    fn from(e: wit_query::QueryError) -> Self {
        match e {
            wit_query::QueryError::InvalidQuery(v) => {
                Self::InvalidQuery(v.into_iter().map(Into::into).collect())
            }
            wit_query::QueryError::Storage(e) => Self::Storage(e.into()),
        }
    }
}

impl From<model::StorageError> for wit_journal::StorageError {
    fn from(e: model::StorageError) -> Self {
        match e {
            model::StorageError::Unavailable(m) => Self::Unavailable(m),
            model::StorageError::Corrupt(m) => Self::Corrupt(m),
        }
    }
}

impl From<wit_journal::StorageError> for model::StorageError {
    fn from(e: wit_journal::StorageError) -> Self {
        match e {
            wit_journal::StorageError::Unavailable(m) => Self::Unavailable(m),
            wit_journal::StorageError::Corrupt(m) => Self::Corrupt(m),
        }
    }
}

impl From<wit_journal::SessionKey> for model::SessionKey {
    fn from(k: wit_journal::SessionKey) -> Self {
        Self {
            connection_id: k.connection_id.into(),
            workspace_id: k.workspace_id.into(),
            agent_name: k.agent_name,
        }
    }
}

impl From<wit_journal::RowOrigin> for model::RowOrigin {
    fn from(o: wit_journal::RowOrigin) -> Self {
        match o {
            wit_journal::RowOrigin::SingleEvent(id) => Self::SingleEvent(id.into()),
            wit_journal::RowOrigin::Session(k) => Self::Session(k.into()),
        }
    }
}

impl From<model::Organization> for wit_directory::Organization {
    fn from(o: model::Organization) -> Self {
        Self {
            id: o.id.into(),
            name: o.name,
            display_name: o.display_name,
            icon: o.icon,
        }
    }
}

impl From<model::User> for wit_directory::User {
    fn from(u: model::User) -> Self {
        Self {
            id: u.id.into(),
            username: u.username,
            email: u.email,
            name: u.name,
            avatar_url: u.avatar_url,
            status: u.status,
            login_type: u.login_type,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_seen_at: u.last_seen_at,
            deleted: u.deleted,
            site_roles: u.site_roles,
        }
    }
}

impl From<model::LogFormat> for wit_service_log::LogFormat {
    fn from(f: model::LogFormat) -> Self {
        match f {
            model::LogFormat::Json => Self::Json,
            model::LogFormat::Human => Self::Human,
        }
    }
}

impl From<wit_service_log::LogFormat> for model::LogFormat {
    fn from(f: wit_service_log::LogFormat) -> Self {
        match f {
            wit_service_log::LogFormat::Json => Self::Json,
            wit_service_log::LogFormat::Human => Self::Human,
        }
    }
}

impl From<wit_service_log::LogLine> for model::LogLine {
    fn from(l: wit_service_log::LogLine) -> Self {
        Self {
            format: l.format.into(),
            line: l.line,
        }
    }
}

// ----- the imports: conversions around `HostState`'s methods -----

impl wit_types::Host for HostState {}

impl coder::connection_log::clock::Host for HostState {
    fn now(&mut self) -> wit_types::UnixNanos {
        self.clock_now()
    }
}

impl wit_directory::Host for HostState {
    fn organization_by_id(&mut self, id: wit_types::Uuid) -> Option<wit_directory::Organization> {
        self.directory_organization_by_id(id.into()).map(Into::into)
    }

    fn organization_by_name(&mut self, name: String) -> Option<wit_directory::Organization> {
        self.directory_organization_by_name(&name).map(Into::into)
    }

    fn user_by_id(&mut self, id: wit_types::Uuid) -> Option<wit_directory::User> {
        self.directory_user_by_id(id.into()).map(Into::into)
    }

    fn users_by_username(&mut self, username: String) -> Vec<wit_directory::User> {
        self.directory_users_by_username(&username)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    fn users_by_email(&mut self, email: String) -> Vec<wit_directory::User> {
        self.directory_users_by_email(&email)
            .into_iter()
            .map(Into::into)
            .collect()
    }
}

impl wit_service_log::Host for HostState {
    fn write(&mut self, lines: Vec<wit_service_log::LogLine>) {
        self.service_log_write(lines.into_iter().map(Into::into));
    }
}

impl wit_journal::Host for HostState {
    fn append(
        &mut self,
        events: Vec<wit_types::ConnectionEvent>,
    ) -> Result<Vec<bool>, wit_journal::StorageError> {
        let events: Vec<model::ConnectionEvent> = events.into_iter().map(Into::into).collect();
        self.journal_append(&events).map_err(Into::into)
    }

    fn session_events(
        &mut self,
        keys: Vec<wit_journal::SessionKey>,
    ) -> Result<Vec<Vec<wit_types::ConnectionEvent>>, wit_journal::StorageError> {
        let keys: Vec<model::SessionKey> = keys.into_iter().map(Into::into).collect();
        let groups = self.journal_session_events(&keys)?;
        Ok(groups
            .into_iter()
            .map(|g| g.into_iter().map(Into::into).collect())
            .collect())
    }

    fn forget(
        &mut self,
        origins: Vec<wit_journal::RowOrigin>,
    ) -> Result<u64, wit_journal::StorageError> {
        let origins: Vec<model::RowOrigin> = origins.into_iter().map(Into::into).collect();
        self.journal_forget(&origins).map_err(Into::into)
    }

    fn write_snapshot_chunk(&mut self, chunk: Vec<u8>) -> Result<(), wit_journal::StorageError> {
        self.journal_write_snapshot_chunk(&chunk)
            .map_err(Into::into)
    }

    fn read_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, wit_journal::StorageError> {
        self.journal_read_snapshot_chunk().map_err(Into::into)
    }
}
