//! The glue that is the same in every contract version so far, as macros over one version's
//! generated modules: the host's imports seen through the SDK's traits, and the `formats`
//! and `query` exports.
//!
//! The caller brings into scope the generated `types`, `clock`, `directory`, `journal`,
//! `service_log`, `formats` and `query` modules, the conversions of `wit_model_conversions!`,
//! and its version's `journal_error_from_wit`, `append_owned`, `query_request_from_wit` and
//! `query_error_to_wit` (and `columns_to_wit` when its `journal.append` takes columns).

#[doc(hidden)]
#[macro_export]
macro_rules! wit_host_imports {
    // How `journal.append` takes events: a list of records (0.1.0, 0.2.0) or columns.
    (@append records, $events:ident) => {{
        let events: Vec<types::ConnectionEvent> =
            $events.iter().cloned().map(event_to_wit).collect();
        journal::append(&events).map_err(journal_error_from_wit)
    }};
    (@append columns, $events:ident) => {{
        let columns = $crate::event_columns::EventColumns::from_events($events);
        journal::append(&columns_to_wit(columns)).map_err(journal_error_from_wit)
    }};
    (append: $append:ident) => {
        /// The host's imports, seen through the SDK's traits.
        struct WitHost;

        impl $crate::HostClock for WitHost {
            fn now(&self) -> $crate::model::UnixNanos {
                clock::now()
            }
        }

        impl $crate::HostDirectory for WitHost {
            fn organization_by_id(
                &self,
                id: $crate::model::Uuid,
            ) -> Option<$crate::model::Organization> {
                directory::organization_by_id(uuid_to_wit(id)).map(organization_from_wit)
            }
            fn organization_by_name(&self, name: &str) -> Option<$crate::model::Organization> {
                directory::organization_by_name(name).map(organization_from_wit)
            }
            fn user_by_id(&self, id: $crate::model::Uuid) -> Option<$crate::model::User> {
                directory::user_by_id(uuid_to_wit(id)).map(user_from_wit)
            }
            fn users_by_username(&self, username: &str) -> Vec<$crate::model::User> {
                directory::users_by_username(username)
                    .into_iter()
                    .map(user_from_wit)
                    .collect()
            }
            fn users_by_email(&self, email: &str) -> Vec<$crate::model::User> {
                directory::users_by_email(email)
                    .into_iter()
                    .map(user_from_wit)
                    .collect()
            }
        }

        impl $crate::HostServiceLog for WitHost {
            fn write_service_log(&mut self, lines: Vec<$crate::model::LogLine>) {
                let lines: Vec<service_log::LogLine> = lines
                    .into_iter()
                    .map(|l| service_log::LogLine {
                        format: log_format_to_wit(l.format),
                        line: l.line,
                    })
                    .collect();
                service_log::write(&lines);
            }
        }

        impl $crate::HostJournal for WitHost {
            fn append(
                &mut self,
                events: &[$crate::model::ConnectionEvent],
            ) -> Result<Vec<bool>, $crate::model::JournalError> {
                $crate::wit_host_imports!(@append $append, events)
            }
            fn append_owned(
                &mut self,
                events: Vec<$crate::model::ConnectionEvent>,
            ) -> Result<
                (Vec<bool>, Vec<$crate::model::ConnectionEvent>),
                $crate::model::JournalError,
            > {
                append_owned(self, events)
            }
            fn session_events(
                &mut self,
                keys: &[$crate::model::SessionKey],
            ) -> Result<Vec<Vec<$crate::model::ConnectionEvent>>, $crate::model::JournalError> {
                let keys: Vec<journal::SessionKey> =
                    keys.iter().cloned().map(session_key_to_wit).collect();
                let groups = journal::session_events(&keys).map_err(journal_error_from_wit)?;
                Ok(groups
                    .into_iter()
                    .map(|g| g.into_iter().map(event_from_wit).collect())
                    .collect())
            }
            fn forget(
                &mut self,
                origins: &[$crate::model::RowOrigin],
            ) -> Result<u64, $crate::model::JournalError> {
                let origins: Vec<journal::RowOrigin> =
                    origins.iter().cloned().map(row_origin_to_wit).collect();
                journal::forget(&origins).map_err(journal_error_from_wit)
            }
            fn write_snapshot_chunk(
                &mut self,
                chunk: &[u8],
            ) -> Result<(), $crate::model::JournalError> {
                journal::write_snapshot_chunk(chunk).map_err(journal_error_from_wit)
            }
            fn read_snapshot_chunk(
                &mut self,
            ) -> Result<Option<Vec<u8>>, $crate::model::JournalError> {
                journal::read_snapshot_chunk().map_err(journal_error_from_wit)
            }
        }
    };
}

/// `formats`, served by `Component<P>` of the calling module. `service-log-line` takes the
/// fields' generation since 0.2.0; a 0.1.0 plugin writes the older generation's.
#[doc(hidden)]
#[macro_export]
macro_rules! wit_formats_export {
    (service_log_fields: $fields:expr) => {
        $crate::wit_formats_export!(@impl
            fn service_log_line(
                event: types::ConnectionEvent,
                format: service_log::LogFormat,
                logged_at: i64,
            ) -> String {
                let (event, format) = (event_from_wit(event), log_format_from_wit(format));
                with_plugin(|p: &mut P| p.service_log_line(&event, format, $fields, logged_at))
            }
        );
    };
    () => {
        $crate::wit_formats_export!(@impl
            fn service_log_line(
                event: types::ConnectionEvent,
                format: service_log::LogFormat,
                fields: service_log::LogFields,
                logged_at: i64,
            ) -> String {
                let (event, format) = (event_from_wit(event), log_format_from_wit(format));
                let fields = log_fields_from_wit(fields);
                with_plugin(|p: &mut P| p.service_log_line(&event, format, fields, logged_at))
            }
        );
    };
    (@impl $service_log_line:item) => {
        impl<P: $crate::ConnectionLogPlugin> formats::Guest for Component<P> {
            fn api_response(rows: Vec<types::ConnectionLog>, count: u64) -> String {
                let rows: Vec<$crate::model::ConnectionLog> =
                    rows.into_iter().map(row_from_wit).collect();
                with_plugin(|p: &mut P| p.api_response(&WitHost, &rows, count))
            }

            fn api_rows(rows: Vec<types::ConnectionLog>) -> Vec<String> {
                let rows: Vec<$crate::model::ConnectionLog> =
                    rows.into_iter().map(row_from_wit).collect();
                with_plugin(|p: &mut P| p.api_rows(&WitHost, &rows))
            }

            $service_log_line

            fn row_events(row: types::ConnectionLog) -> Vec<types::ConnectionEvent> {
                let row = row_from_wit(row);
                with_plugin(|p: &mut P| p.row_events(&row))
                    .into_iter()
                    .map(event_to_wit)
                    .collect()
            }
        }
    };
}

/// `query`, served by `Component<P>` of the calling module; the request and error
/// conversions are the version's own, and `$extra` are the functions a later version added.
#[doc(hidden)]
#[macro_export]
macro_rules! wit_query_export {
    ($($extra:item)*) => {
        impl<P: $crate::ConnectionLogPlugin> query::Guest for Component<P> {
            fn query(
                actor: types::Actor,
                request: query::QueryRequest,
            ) -> Result<query::Page, query::QueryError> {
                let (actor, request) = (actor_from_wit(actor), query_request_from_wit(request));
                let page = with_plugin(|p: &mut P| p.query(&WitHost, &actor, &request))
                    .map_err(query_error_to_wit)?;
                Ok(query::Page {
                    rows: page.rows.into_iter().map(row_to_wit).collect(),
                    count: page.count,
                })
            }

            fn api_page(
                actor: types::Actor,
                request: query::QueryRequest,
            ) -> Result<String, query::QueryError> {
                let (actor, request) = (actor_from_wit(actor), query_request_from_wit(request));
                with_plugin(|p: &mut P| p.api_page(&WitHost, &actor, &request))
                    .map_err(query_error_to_wit)
            }

            $($extra)*
        }
    };
}
