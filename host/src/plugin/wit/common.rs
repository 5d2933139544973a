//! What every contract version so far shares, as macros expanded in each version's module:
//! [`common_bindings!`], the conversions of the types that have not changed between
//! versions and the host's imports answered by `HostState`'s methods; [`exports_impl!`],
//! the calls of the exports whose shape has not changed. Events, rows and replay batches
//! changed in 0.2.0: each version converts its own. How `ingest-batch` and `journal.append`
//! take events (`records`, or `columns` since 0.3.0) is each macro's `events` argument.
//!
//! The caller brings into scope its generated `wit_types`, `wit_clock`, `wit_directory`,
//! `wit_service_log`, `wit_journal` and `wit_ingest` modules, `model`, `EventColumns` and
//! `HostState`, and names its journal's error type.

/// In a `From` impl, `Self`, a connection event, built from `$e` of the other side: the
/// fields no version has changed convert with `Into`; `$changed` are those of the caller's
/// version.
macro_rules! event_record {
    ($e:ident { $($changed:tt)* }) => {
        Self {
            id: $e.id.into(),
            time: $e.time,
            organization_id: $e.organization_id.into(),
            workspace_owner_id: $e.workspace_owner_id.into(),
            workspace_id: $e.workspace_id.into(),
            workspace_name: $e.workspace_name,
            agent_name: $e.agent_name,
            code: $e.code,
            ip: $e.ip,
            user_agent: $e.user_agent,
            user_id: $e.user_id.map(Into::into),
            connection_id: $e.connection_id.map(Into::into),
            disconnect_reason: $e.disconnect_reason,
            status: $e.status.into(),
            $($changed)*
        }
    };
}

/// In a `From` impl, `Self`, a connection-log row, built from `$r` of the other side, as
/// [`event_record!`] builds events.
macro_rules! row_record {
    ($r:ident { $($changed:tt)* }) => {
        Self {
            id: $r.id.into(),
            connect_time: $r.connect_time,
            organization_id: $r.organization_id.into(),
            workspace_owner_id: $r.workspace_owner_id.into(),
            workspace_id: $r.workspace_id.into(),
            workspace_name: $r.workspace_name,
            agent_name: $r.agent_name,
            code: $r.code,
            ip: $r.ip,
            user_agent: $r.user_agent,
            user_id: $r.user_id.map(Into::into),
            connection_id: $r.connection_id.map(Into::into),
            disconnect_time: $r.disconnect_time,
            disconnect_reason: $r.disconnect_reason,
            $($changed)*
        }
    };
}

macro_rules! common_bindings {
    // `journal.append`, as the version takes events: a list of records, or columns (0.3.0),
    // which trap when they do not fit together, as a string that is not UTF-8 would.
    (@append records, $journal_error:ident) => {
        fn append(
            &mut self,
            events: Vec<wit_types::ConnectionEvent>,
        ) -> Result<Vec<bool>, wit_journal::$journal_error> {
            let events: Vec<model::ConnectionEvent> =
                events.into_iter().map(Into::into).collect();
            self.journal_append(events).map_err(Into::into)
        }
    };
    (@append columns, $journal_error:ident) => {
        fn append(
            &mut self,
            events: wit_types::EventColumns,
        ) -> wasmtime::Result<Result<Vec<bool>, wit_journal::$journal_error>> {
            let events = EventColumns::from(events).into_events().map_err(|why| {
                wasmtime::Error::msg(format!(
                    "the plugin appended event columns that do not fit together: {why}"
                ))
            })?;
            Ok(self.journal_append(events).map_err(Into::into))
        }
    };
    (journal_error: $journal_error:ident, events: $events:ident) => {
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

        impl From<wit_ingest::EventOutcome> for model::EventOutcome {
            fn from(o: wit_ingest::EventOutcome) -> Self {
                match o {
                    wit_ingest::EventOutcome::Stored => Self::Stored,
                    wit_ingest::EventOutcome::Duplicate => Self::Duplicate,
                    wit_ingest::EventOutcome::Rejected(v) => Self::Rejected(v.into()),
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

        // The imports: conversions around `HostState`'s methods.

        impl wit_types::Host for HostState {}

        impl wit_clock::Host for HostState {
            fn now(&mut self) -> wit_types::UnixNanos {
                self.clock_now()
            }
        }

        impl wit_directory::Host for HostState {
            fn organization_by_id(
                &mut self,
                id: wit_types::Uuid,
            ) -> Option<wit_directory::Organization> {
                self.directory_organization_by_id(id.into()).map(Into::into)
            }

            fn organization_by_name(
                &mut self,
                name: String,
            ) -> Option<wit_directory::Organization> {
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
            common_bindings!(@append $events, $journal_error);

            fn session_events(
                &mut self,
                keys: Vec<wit_journal::SessionKey>,
            ) -> Result<Vec<Vec<wit_types::ConnectionEvent>>, wit_journal::$journal_error> {
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
            ) -> Result<u64, wit_journal::$journal_error> {
                let origins: Vec<model::RowOrigin> = origins.into_iter().map(Into::into).collect();
                self.journal_forget(&origins).map_err(Into::into)
            }

            fn write_snapshot_chunk(
                &mut self,
                chunk: Vec<u8>,
            ) -> Result<(), wit_journal::$journal_error> {
                self.journal_write_snapshot_chunk(&chunk)
                    .map_err(Into::into)
            }

            fn read_snapshot_chunk(
                &mut self,
            ) -> Result<Option<Vec<u8>>, wit_journal::$journal_error> {
                self.journal_read_snapshot_chunk().map_err(Into::into)
            }
        }
    };
}

/// `impl Exports for $bindings`: the methods given (what differs in this version), then every
/// other export, whose calls read the same in each version (errors convert with `Into`).
macro_rules! exports_impl {
    // How the version's `ingest-batch` takes events: a list of records, or columns (0.3.0).
    (@events records, $events:ident) => {
        $events
            .into_iter()
            .map(Into::into)
            .collect::<Vec<wit_types::ConnectionEvent>>()
    };
    (@events columns, $events:ident) => {
        wit_types::EventColumns::from(EventColumns::from_events(&$events))
    };
    ($bindings:ty, events: $transport:ident { $($specific:tt)* }) => {
        impl Exports for $bindings {
            $($specific)*

            fn ingest_batch(
                &self,
                store: &mut Store<HostState>,
                events: Vec<model::ConnectionEvent>,
            ) -> Call<Result<Vec<model::EventOutcome>, model::StorageError>> {
                let events = exports_impl!(@events $transport, events);
                let outcome = self
                    .coder_connection_log_ingest()
                    .call_ingest_batch(store, &events)?;
                Ok(outcome
                    .map_err(Into::into)
                    .map(|outcomes| outcomes.into_iter().map(Into::into).collect()))
            }

            fn query(
                &self,
                store: &mut Store<HostState>,
                actor: model::Actor,
                request: model::QueryRequest,
            ) -> Call<Result<model::Page, model::QueryError>> {
                let (actor, request) = (actor.into(), request.into());
                let outcome = self
                    .coder_connection_log_query()
                    .call_query(store, &actor, &request)?;
                Ok(outcome
                    .map(|page| model::Page {
                        rows: page.rows.into_iter().map(Into::into).collect(),
                        count: page.count,
                    })
                    .map_err(Into::into))
            }

            fn api_page(
                &self,
                store: &mut Store<HostState>,
                actor: model::Actor,
                request: model::QueryRequest,
            ) -> Call<Result<String, model::QueryError>> {
                let (actor, request) = (actor.into(), request.into());
                let outcome = self
                    .coder_connection_log_query()
                    .call_api_page(store, &actor, &request)?;
                Ok(outcome.map_err(Into::into))
            }

            fn purge(
                &self,
                store: &mut Store<HostState>,
                now: model::UnixNanos,
            ) -> Call<Result<model::PurgeReport, model::StorageError>> {
                let outcome = self.coder_connection_log_retention().call_purge(store, now)?;
                Ok(outcome
                    .map(|r| model::PurgeReport {
                        purged: r.purged,
                        cutoff: r.cutoff,
                    })
                    .map_err(Into::into))
            }

            fn api_response(&self, store: &mut Store<HostState>, page: model::Page) -> Call<String> {
                let rows: Vec<wit_types::ConnectionLog> =
                    page.rows.into_iter().map(Into::into).collect();
                self.coder_connection_log_formats()
                    .call_api_response(store, &rows, page.count)
            }

            fn api_rows(
                &self,
                store: &mut Store<HostState>,
                rows: Vec<model::ConnectionLog>,
            ) -> Call<Vec<String>> {
                let rows: Vec<wit_types::ConnectionLog> = rows.into_iter().map(Into::into).collect();
                self.coder_connection_log_formats().call_api_rows(store, &rows)
            }

            fn row_events(
                &self,
                store: &mut Store<HostState>,
                row: model::ConnectionLog,
            ) -> Call<Vec<model::ConnectionEvent>> {
                let events = self
                    .coder_connection_log_formats()
                    .call_row_events(store, &row.into())?;
                Ok(events.into_iter().map(Into::into).collect())
            }

            fn save_snapshot(
                &self,
                store: &mut Store<HostState>,
            ) -> Call<Result<(), model::StorageError>> {
                let outcome = self.coder_connection_log_state().call_save_snapshot(store)?;
                Ok(outcome.map_err(Into::into))
            }

            fn load_snapshot(
                &self,
                store: &mut Store<HostState>,
            ) -> Call<Result<(), model::StorageError>> {
                let outcome = self.coder_connection_log_state().call_load_snapshot(store)?;
                Ok(outcome.map_err(Into::into))
            }

            fn replay(
                &self,
                store: &mut Store<HostState>,
                batch: EventColumns,
            ) -> Call<Result<(), model::StorageError>> {
                let outcome = self
                    .coder_connection_log_state()
                    .call_replay(store, &batch.into())?;
                Ok(outcome.map_err(Into::into))
            }

            fn stats(&self, store: &mut Store<HostState>) -> Call<model::StateStats> {
                let stats = self.coder_connection_log_state().call_stats(store)?;
                Ok(model::StateStats {
                    rows: stats.rows,
                    memory_bytes: stats.memory_bytes,
                })
            }
        }
    };
}

/// `pub const VERSION`, this module's [`ContractVersion`]: the linker of the host's imports
/// under its names, and type-checking a component against its world `$world`.
macro_rules! contract_version {
    ($world:ident, $world_pre:ident, $version:expr) => {
        pub const VERSION: ContractVersion = ContractVersion {
            version: $version,
            linker,
            pre,
        };

        fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
            let mut linker = Linker::new(engine);
            $world::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
            Ok(linker)
        }

        fn pre(
            linker: &Linker<HostState>,
            component: &Component,
        ) -> Result<Box<dyn ExportsPre>, String> {
            let pre = linker
                .instantiate_pre(component)
                .map_err(|e| format!("its imports do not match the contract ({e:#})"))?;
            let pre = $world_pre::new(pre)
                .map_err(|e| format!("its exports do not match the contract ({e:#})"))?;
            Ok(Box::new(pre))
        }

        impl ExportsPre for $world_pre<HostState> {
            fn instantiate(
                &self,
                store: &mut Store<HostState>,
            ) -> wasmtime::Result<Box<dyn Exports>> {
                Ok(Box::new($world_pre::instantiate(self, store)?))
            }
        }
    };
}
