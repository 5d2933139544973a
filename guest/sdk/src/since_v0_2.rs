//! The glue every contract version since 0.2.0 shares, as one macro over a version's
//! generated modules: 0.3.0 changed only how events cross (as columns), so `plugin-info`,
//! `lifecycle`, `query`, `formats`, `retention` and `state`, and the conversions of what
//! 0.2.0 changed, read the same in both.
//!
//! The caller brings into scope the generated `coder` and `exports` modules, `types`,
//! `clock`, `directory`, `journal`, `service_log` and the exports' modules, `model`,
//! `with_plugin`, `ConnectionLogPlugin`, `EventColumns`, `Component`, and its version's
//! `append_owned` and `ingest::Guest`. `append` is `records` or `columns`: how
//! `journal.append` takes events in that version.

#[doc(hidden)]
#[macro_export]
macro_rules! since_v0_2 {
    (append: $append:ident) => {
        $crate::wit_host_imports!(append: $append);
        $crate::wit_formats_export!();
        $crate::wit_query_export!(
            fn feed_rows(
                actor: types::Actor,
                q: String,
                origins: Vec<journal::RowOrigin>,
            ) -> Result<Vec<Option<String>>, query::QueryError> {
                let actor = actor_from_wit(actor);
                let origins: Vec<model::RowOrigin> = origins.into_iter().map(row_origin_from_wit).collect();
                with_plugin(|p: &mut P| p.feed_rows(&WitHost, &actor, &q, &origins))
                    .map_err(query_error_to_wit)
            }
        );

        impl<P: ConnectionLogPlugin> plugin_info::Guest for Component<P> {
            fn describe() -> plugin_info::Info {
                plugin_info::Info {
                    name: P::NAME.to_string(),
                    version: P::VERSION.to_string(),
                }
            }
        }

        impl<P: ConnectionLogPlugin> lifecycle::Guest for Component<P> {
            fn configure(config: lifecycle::PluginConfig) -> Result<(), lifecycle::SettingsError> {
                let config = model::PluginConfig {
                    service_log_formats: config
                        .service_log_formats
                        .into_iter()
                        .map(log_format_from_wit)
                        .collect(),
                    service_log_fields: log_fields_from_wit(config.service_log_fields),
                    settings: config
                        .settings
                        .into_iter()
                        .map(|s| model::Setting {
                            key: s.key,
                            value: s.value,
                        })
                        .collect(),
                };
                with_plugin(|p: &mut P| p.configure(config)).map_err(|e| match e {
                    model::SettingsError::UnknownSetting { key, known } => {
                        lifecycle::SettingsError::UnknownSetting(lifecycle::UnknownSetting { key, known })
                    }
                    model::SettingsError::InvalidSetting { key, reason } => {
                        lifecycle::SettingsError::InvalidSetting(lifecycle::InvalidSetting { key, reason })
                    }
                })
            }
        }

        impl<P: ConnectionLogPlugin> retention::Guest for Component<P> {
            fn set_retention(max_age: Option<u64>) -> Option<u64> {
                with_plugin(|p: &mut P| p.set_retention(max_age))
            }

            fn purge(now: i64) -> Result<retention::PurgeReport, retention::RetentionError> {
                let report = with_plugin(|p: &mut P| p.purge(&mut WitHost, now))
                    .map_err(|e| retention::RetentionError::Journal(journal_error_to_wit(e)))?;
                Ok(retention::PurgeReport {
                    purged: report.purged,
                    cutoff: report.cutoff,
                })
            }
        }

        impl<P: ConnectionLogPlugin> state::Guest for Component<P> {
            fn save_snapshot() -> Result<(), state::StateError> {
                with_plugin(|p: &mut P| p.save_snapshot(&mut WitHost)).map_err(state_error_to_wit)
            }

            fn load_snapshot() -> Result<(), state::StateError> {
                with_plugin(|p: &mut P| p.load_snapshot(&mut WitHost)).map_err(state_error_to_wit)
            }

            fn replay(events: types::EventColumns) -> Result<(), state::StateError> {
                let columns: EventColumns = columns_from_wit(events);
                // A batch that does not decode is the host's mistake, not the journal's.
                let events = columns
                    .events()
                    .map_err(|e| state::StateError::MalformedColumns(e.to_string()))?;
                with_plugin(|p: &mut P| p.replay(&mut WitHost, &events)).map_err(state_error_to_wit)
            }

            fn stats() -> state::StateStats {
                let stats = with_plugin(|p: &mut P| p.stats());
                state::StateStats {
                    rows: stats.rows,
                    memory_bytes: stats.memory_bytes,
                }
            }
        }

        // Conversions of what 0.2.0 changed.

        fn query_request_from_wit(r: query::QueryRequest) -> model::QueryRequest {
            model::QueryRequest {
                q: r.q,
                limit: r.limit,
                offset: r.offset,
            }
        }

        fn query_error_to_wit(e: model::QueryError) -> query::QueryError {
            match e {
                model::QueryError::InvalidQuery(v) => {
                    query::QueryError::InvalidQuery(v.into_iter().map(validation_to_wit).collect())
                }
                model::QueryError::Failed(m) => query::QueryError::Failed(m),
            }
        }

        fn log_fields_from_wit(f: service_log::LogFields) -> model::LogFields {
            match f {
                service_log::LogFields::Current => model::LogFields::Current,
                service_log::LogFields::Seed => model::LogFields::Seed,
            }
        }

        fn method_to_wit(m: model::ConnectionMethod) -> types::ConnectionMethod {
            match m {
                model::ConnectionMethod::Ssh => types::ConnectionMethod::Ssh,
                model::ConnectionMethod::ReconnectingPty => types::ConnectionMethod::ReconnectingPty,
                model::ConnectionMethod::WorkspaceApp => types::ConnectionMethod::WorkspaceApp,
                model::ConnectionMethod::PortForwarding => types::ConnectionMethod::PortForwarding,
                model::ConnectionMethod::Tunnel => types::ConnectionMethod::Tunnel,
            }
        }

        fn method_from_wit(m: types::ConnectionMethod) -> model::ConnectionMethod {
            match m {
                types::ConnectionMethod::Ssh => model::ConnectionMethod::Ssh,
                types::ConnectionMethod::ReconnectingPty => model::ConnectionMethod::ReconnectingPty,
                types::ConnectionMethod::WorkspaceApp => model::ConnectionMethod::WorkspaceApp,
                types::ConnectionMethod::PortForwarding => model::ConnectionMethod::PortForwarding,
                types::ConnectionMethod::Tunnel => model::ConnectionMethod::Tunnel,
            }
        }

        pub(crate) fn event_to_wit(e: model::ConnectionEvent) -> types::ConnectionEvent {
            $crate::__event_record!(types::ConnectionEvent, e, uuid: uuid_to_wit, status: status_to_wit {
                connection_method: method_to_wit(e.connection_method),
                app_name_or_port: e.app_name_or_port,
                client_session_id: e.client_session_id,
            })
        }

        pub(crate) fn event_from_wit(e: types::ConnectionEvent) -> model::ConnectionEvent {
            $crate::__event_record!(model::ConnectionEvent, e, uuid: uuid_from_wit, status: status_from_wit {
                connection_method: method_from_wit(e.connection_method),
                app_name_or_port: e.app_name_or_port,
                client_session_id: e.client_session_id,
            })
        }

        pub(crate) fn row_to_wit(r: model::ConnectionLog) -> types::ConnectionLog {
            $crate::__row_record!(types::ConnectionLog, r, uuid: uuid_to_wit {
                connection_method: method_to_wit(r.connection_method),
                app_name_or_port: r.app_name_or_port,
                client_session_id: r.client_session_id,
            })
        }

        pub(crate) fn row_from_wit(r: types::ConnectionLog) -> model::ConnectionLog {
            $crate::__row_record!(model::ConnectionLog, r, uuid: uuid_from_wit {
                connection_method: method_from_wit(r.connection_method),
                app_name_or_port: r.app_name_or_port,
                client_session_id: r.client_session_id,
            })
        }

        /// The two are field for field the same.
        fn columns_from_wit(c: types::EventColumns) -> EventColumns {
            $crate::__move_columns!(c => EventColumns)
        }

        fn outcomes_to_wit(outcomes: Vec<model::EventOutcome>) -> Vec<ingest::EventOutcome> {
            outcomes
                .into_iter()
                .map(|o| match o {
                    model::EventOutcome::Stored => ingest::EventOutcome::Stored,
                    model::EventOutcome::Duplicate => ingest::EventOutcome::Duplicate,
                    model::EventOutcome::Rejected(v) => ingest::EventOutcome::Rejected(validation_to_wit(v)),
                })
                .collect()
        }

        fn ingest_error_to_wit(e: model::JournalError) -> ingest::IngestError {
            ingest::IngestError::Journal(journal_error_to_wit(e))
        }

        fn state_error_to_wit(e: model::JournalError) -> state::StateError {
            state::StateError::Journal(journal_error_to_wit(e))
        }

        fn journal_error_to_wit(e: model::JournalError) -> journal::JournalError {
            match e {
                model::JournalError::Unavailable(m) => journal::JournalError::Unavailable(m),
                model::JournalError::Corrupt(m) => journal::JournalError::Corrupt(m),
            }
        }

        fn journal_error_from_wit(e: journal::JournalError) -> model::JournalError {
            match e {
                journal::JournalError::Unavailable(m) => model::JournalError::Unavailable(m),
                journal::JournalError::Corrupt(m) => model::JournalError::Corrupt(m),
            }
        }

        use coder::connection_log::{
            directory as wit_directory, journal as wit_journal, service_log as wit_service_log,
            types as wit_types,
        };
        $crate::wit_model_conversions!();
    };
}
