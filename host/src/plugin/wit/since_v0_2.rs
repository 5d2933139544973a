//! What every contract version since 0.2.0 shares, as one macro expanded in each version's
//! module: 0.3.0 changed only how events cross (`ingest-batch` and `journal.append` take
//! columns), so the exports' calls and the conversions of what 0.2.0 changed read the same
//! in both. The caller brings into scope what `common.rs` asks for, its generated `lifecycle`,
//! `wit_query`, `wit_retention` and `wit_state` modules, and converts its own `ingest-error`.

/// Events and rows convert both ways alike: what 0.2.0 changed has the same names on
/// either side.
macro_rules! both_ways {
    ($record:ident, $model:ty, $wit:ty) => {
        both_ways!(@one $record, $model => $wit);
        both_ways!(@one $record, $wit => $model);
    };
    (@one $record:ident, $from:ty => $to:ty) => {
        impl From<$from> for $to {
            fn from(x: $from) -> Self {
                $record!(x {
                    connection_method: x.connection_method.into(),
                    app_name_or_port: x.app_name_or_port,
                    client_session_id: x.client_session_id,
                })
            }
        }
    };
}

/// Everything of a 0.2.0-shaped version but its `ingest-error`: `$world` and `$world_pre` are
/// its generated bindings, `$version` its version and `$events` how its events cross
/// (`records` or `columns`).
macro_rules! since_v0_2 {
    (world: $world:ident, pre: $world_pre:ident, version: $version:expr, events: $events:ident) => {
        contract_version!($world, $world_pre, $version);
        common_bindings!(journal_error: JournalError, events: $events);

        exports_impl!($world, events: $events {
            fn feed_rows(
                &self,
                store: &mut Store<HostState>,
                actor: model::Actor,
                q: &str,
                origins: Vec<model::RowOrigin>,
            ) -> Call<super::FeedRows> {
                let origins: Vec<wit_journal::RowOrigin> = origins.into_iter().map(Into::into).collect();
                let outcome = self
                    .coder_connection_log_query()
                    .call_feed_rows(store, &actor.into(), q, &origins)?;
                Ok(Some(outcome.map_err(Into::into)))
            }

            fn describe(&self, store: &mut Store<HostState>) -> Call<(String, String)> {
                let info = self.coder_connection_log_plugin_info().call_describe(store)?;
                Ok((info.name, info.version))
            }

            fn configure(
                &self,
                store: &mut Store<HostState>,
                log_formats: &[model::LogFormat],
                log_fields: model::LogFields,
                settings: &[model::Setting],
            ) -> Call<Result<(), model::SettingsError>> {
                let config = lifecycle::PluginConfig {
                    service_log_formats: log_formats.iter().copied().map(Into::into).collect(),
                    service_log_fields: log_fields.into(),
                    settings: settings
                        .iter()
                        .map(|s| lifecycle::Setting {
                            key: s.key.clone(),
                            value: s.value.clone(),
                        })
                        .collect(),
                };
                let outcome = self
                    .coder_connection_log_lifecycle()
                    .call_configure(store, &config)?;
                Ok(outcome.map_err(|e| match e {
                    lifecycle::SettingsError::UnknownSetting(u) => model::SettingsError::UnknownSetting {
                        key: u.key,
                        known: u.known,
                    },
                    lifecycle::SettingsError::InvalidSetting(i) => model::SettingsError::InvalidSetting {
                        key: i.key,
                        reason: i.reason,
                    },
                }))
            }

            fn set_retention(
                &self,
                store: &mut Store<HostState>,
                max_age_nanos: Option<u64>,
            ) -> Call<Option<u64>> {
                self.coder_connection_log_retention()
                    .call_set_retention(store, max_age_nanos)
            }

            fn service_log_line(
                &self,
                store: &mut Store<HostState>,
                event: model::ConnectionEvent,
                format: model::LogFormat,
                fields: model::LogFields,
                logged_at: model::UnixNanos,
            ) -> Call<String> {
                self.coder_connection_log_formats().call_service_log_line(
                    store,
                    &event.into(),
                    format.into(),
                    fields.into(),
                    logged_at,
                )
            }
        });

        impl From<model::RowOrigin> for wit_journal::RowOrigin {
            fn from(o: model::RowOrigin) -> Self {
                match o {
                    model::RowOrigin::SingleEvent(id) => Self::SingleEvent(id.into()),
                    model::RowOrigin::Session(k) => Self::Session(wit_journal::SessionKey {
                        connection_id: k.connection_id.into(),
                        workspace_id: k.workspace_id.into(),
                        agent_name: k.agent_name,
                    }),
                }
            }
        }

        impl From<model::LogFields> for wit_service_log::LogFields {
            fn from(f: model::LogFields) -> Self {
                match f {
                    model::LogFields::Current => Self::Current,
                    model::LogFields::Seed => Self::Seed,
                }
            }
        }

        impl From<model::ConnectionMethod> for wit_types::ConnectionMethod {
            fn from(m: model::ConnectionMethod) -> Self {
                match m {
                    model::ConnectionMethod::Ssh => Self::Ssh,
                    model::ConnectionMethod::ReconnectingPty => Self::ReconnectingPty,
                    model::ConnectionMethod::WorkspaceApp => Self::WorkspaceApp,
                    model::ConnectionMethod::PortForwarding => Self::PortForwarding,
                    model::ConnectionMethod::Tunnel => Self::Tunnel,
                }
            }
        }

        impl From<wit_types::ConnectionMethod> for model::ConnectionMethod {
            fn from(m: wit_types::ConnectionMethod) -> Self {
                match m {
                    wit_types::ConnectionMethod::Ssh => Self::Ssh,
                    wit_types::ConnectionMethod::ReconnectingPty => Self::ReconnectingPty,
                    wit_types::ConnectionMethod::WorkspaceApp => Self::WorkspaceApp,
                    wit_types::ConnectionMethod::PortForwarding => Self::PortForwarding,
                    wit_types::ConnectionMethod::Tunnel => Self::Tunnel,
                }
            }
        }

        both_ways!(
            event_record,
            model::ConnectionEvent,
            wit_types::ConnectionEvent
        );
        both_ways!(row_record, model::ConnectionLog, wit_types::ConnectionLog);

        /// The two are field for field the same.
        impl From<EventColumns> for wit_types::EventColumns {
            fn from(c: EventColumns) -> Self {
                move_columns!(c => Self)
            }
        }

        impl From<model::QueryRequest> for wit_query::QueryRequest {
            fn from(r: model::QueryRequest) -> Self {
                Self {
                    q: r.q,
                    // The host's 0, like Coder's, asks for the default page.
                    limit: (r.limit != 0).then_some(r.limit),
                    offset: r.offset,
                }
            }
        }

        impl From<wit_query::QueryError> for model::QueryError {
            fn from(e: wit_query::QueryError) -> Self {
                match e {
                    wit_query::QueryError::InvalidQuery(v) => {
                        Self::InvalidQuery(v.into_iter().map(Into::into).collect())
                    }
                    wit_query::QueryError::Failed(m) => Self::Storage(model::StorageError::Unavailable(m)),
                }
            }
        }

        impl From<wit_retention::RetentionError> for model::StorageError {
            fn from(e: wit_retention::RetentionError) -> Self {
                let wit_retention::RetentionError::Journal(e) = e;
                e.into()
            }
        }

        impl From<wit_state::StateError> for model::StorageError {
            fn from(e: wit_state::StateError) -> Self {
                match e {
                    wit_state::StateError::Journal(e) => e.into(),
                    wit_state::StateError::MalformedColumns(m) => {
                        Self::Corrupt(format!("the plugin could not decode a replay batch: {m}"))
                    }
                }
            }
        }

        impl From<model::StorageError> for wit_journal::JournalError {
            fn from(e: model::StorageError) -> Self {
                match e {
                    model::StorageError::Unavailable(m) => Self::Unavailable(m),
                    model::StorageError::Corrupt(m) => Self::Corrupt(m),
                }
            }
        }

        impl From<wit_journal::JournalError> for model::StorageError {
            fn from(e: wit_journal::JournalError) -> Self {
                match e {
                    wit_journal::JournalError::Unavailable(m) => Self::Unavailable(m),
                    wit_journal::JournalError::Corrupt(m) => Self::Corrupt(m),
                }
            }
        }
    };
}
