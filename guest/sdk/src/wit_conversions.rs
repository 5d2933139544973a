//! Conversions between `model` and the types a WIT bindings generator makes for the
//! contract, as a macro, so that they are written once for any generator's types.
//!
//! The types it converts are the same in every contract version so far; what differs
//! between versions (events, rows, errors, requests) is converted in each version's module. The caller
//! brings the generated modules into scope as `wit_types`, `wit_journal`, `wit_directory`
//! and `wit_service_log`; every function lands in the calling module.

#[doc(hidden)]
#[macro_export]
macro_rules! wit_model_conversions {
    () => {
        #[allow(dead_code)]
        pub(crate) fn uuid_to_wit(id: $crate::model::Uuid) -> wit_types::Uuid {
            let (high, low) = id.as_u64_pair();
            wit_types::Uuid { high, low }
        }

        #[allow(dead_code)]
        pub(crate) fn uuid_from_wit(id: wit_types::Uuid) -> $crate::model::Uuid {
            $crate::model::Uuid::from_u64_pair(id.high, id.low)
        }

        #[allow(dead_code)]
        pub(crate) fn status_to_wit(
            s: $crate::model::ConnectionStatus,
        ) -> wit_types::ConnectionStatus {
            match s {
                $crate::model::ConnectionStatus::Connected => {
                    wit_types::ConnectionStatus::Connected
                }
                $crate::model::ConnectionStatus::Disconnected => {
                    wit_types::ConnectionStatus::Disconnected
                }
            }
        }

        #[allow(dead_code)]
        pub(crate) fn status_from_wit(
            s: wit_types::ConnectionStatus,
        ) -> $crate::model::ConnectionStatus {
            match s {
                wit_types::ConnectionStatus::Connected => {
                    $crate::model::ConnectionStatus::Connected
                }
                wit_types::ConnectionStatus::Disconnected => {
                    $crate::model::ConnectionStatus::Disconnected
                }
            }
        }

        #[allow(dead_code)]
        pub(crate) fn actor_to_wit(a: $crate::model::Actor) -> wit_types::Actor {
            wit_types::Actor {
                user_id: uuid_to_wit(a.user_id),
                site_roles: a.site_roles,
                organization_roles: a
                    .organization_roles
                    .into_iter()
                    .map(|(id, roles)| wit_types::OrganizationRoles {
                        organization_id: uuid_to_wit(id),
                        roles,
                    })
                    .collect(),
            }
        }

        #[allow(dead_code)]
        pub(crate) fn actor_from_wit(a: wit_types::Actor) -> $crate::model::Actor {
            $crate::model::Actor {
                user_id: uuid_from_wit(a.user_id),
                site_roles: a.site_roles,
                organization_roles: a
                    .organization_roles
                    .into_iter()
                    .map(|r| (uuid_from_wit(r.organization_id), r.roles))
                    .collect(),
            }
        }

        #[allow(dead_code)]
        pub(crate) fn validation_to_wit(v: $crate::model::Validation) -> wit_types::Validation {
            wit_types::Validation {
                field: v.field,
                detail: v.detail,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn validation_from_wit(v: wit_types::Validation) -> $crate::model::Validation {
            $crate::model::Validation {
                field: v.field,
                detail: v.detail,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn session_key_to_wit(k: $crate::model::SessionKey) -> wit_journal::SessionKey {
            wit_journal::SessionKey {
                connection_id: uuid_to_wit(k.connection_id),
                workspace_id: uuid_to_wit(k.workspace_id),
                agent_name: k.agent_name,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn session_key_from_wit(
            k: wit_journal::SessionKey,
        ) -> $crate::model::SessionKey {
            $crate::model::SessionKey {
                connection_id: uuid_from_wit(k.connection_id),
                workspace_id: uuid_from_wit(k.workspace_id),
                agent_name: k.agent_name,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn row_origin_to_wit(o: $crate::model::RowOrigin) -> wit_journal::RowOrigin {
            match o {
                $crate::model::RowOrigin::SingleEvent(id) => {
                    wit_journal::RowOrigin::SingleEvent(uuid_to_wit(id))
                }
                $crate::model::RowOrigin::Session(k) => {
                    wit_journal::RowOrigin::Session(session_key_to_wit(k))
                }
            }
        }

        #[allow(dead_code)]
        pub(crate) fn row_origin_from_wit(o: wit_journal::RowOrigin) -> $crate::model::RowOrigin {
            match o {
                wit_journal::RowOrigin::SingleEvent(id) => {
                    $crate::model::RowOrigin::SingleEvent(uuid_from_wit(id))
                }
                wit_journal::RowOrigin::Session(k) => {
                    $crate::model::RowOrigin::Session(session_key_from_wit(k))
                }
            }
        }

        #[allow(dead_code)]
        pub(crate) fn organization_to_wit(
            o: $crate::model::Organization,
        ) -> wit_directory::Organization {
            wit_directory::Organization {
                id: uuid_to_wit(o.id),
                name: o.name,
                display_name: o.display_name,
                icon: o.icon,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn organization_from_wit(
            o: wit_directory::Organization,
        ) -> $crate::model::Organization {
            $crate::model::Organization {
                id: uuid_from_wit(o.id),
                name: o.name,
                display_name: o.display_name,
                icon: o.icon,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn user_to_wit(u: $crate::model::User) -> wit_directory::User {
            wit_directory::User {
                id: uuid_to_wit(u.id),
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

        #[allow(dead_code)]
        pub(crate) fn user_from_wit(u: wit_directory::User) -> $crate::model::User {
            $crate::model::User {
                id: uuid_from_wit(u.id),
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

        #[allow(dead_code)]
        pub(crate) fn log_format_to_wit(f: $crate::model::LogFormat) -> wit_service_log::LogFormat {
            match f {
                $crate::model::LogFormat::Json => wit_service_log::LogFormat::Json,
                $crate::model::LogFormat::Human => wit_service_log::LogFormat::Human,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn log_format_from_wit(
            f: wit_service_log::LogFormat,
        ) -> $crate::model::LogFormat {
            match f {
                wit_service_log::LogFormat::Json => $crate::model::LogFormat::Json,
                wit_service_log::LogFormat::Human => $crate::model::LogFormat::Human,
            }
        }
    };
}

/// A connection event of type `$target` built from `$e` of the other side: the fields no
/// version has changed convert through `$uuid` and `$status`; `$changed` are those of the
/// caller's version.
#[doc(hidden)]
#[macro_export]
macro_rules! __event_record {
    ($($target:ident)::+, $e:ident, uuid: $uuid:ident, status: $status:ident { $($changed:tt)* }) => {
        $($target)::+ {
            id: $uuid($e.id),
            time: $e.time,
            organization_id: $uuid($e.organization_id),
            workspace_owner_id: $uuid($e.workspace_owner_id),
            workspace_id: $uuid($e.workspace_id),
            workspace_name: $e.workspace_name,
            agent_name: $e.agent_name,
            code: $e.code,
            ip: $e.ip,
            user_agent: $e.user_agent,
            user_id: $e.user_id.map($uuid),
            connection_id: $e.connection_id.map($uuid),
            disconnect_reason: $e.disconnect_reason,
            status: $status($e.status),
            $($changed)*
        }
    };
}

/// A connection-log row of type `$target` built from `$r` of the other side, as
/// [`__event_record!`] builds events.
#[doc(hidden)]
#[macro_export]
macro_rules! __row_record {
    ($($target:ident)::+, $r:ident, uuid: $uuid:ident { $($changed:tt)* }) => {
        $($target)::+ {
            id: $uuid($r.id),
            connect_time: $r.connect_time,
            organization_id: $uuid($r.organization_id),
            workspace_owner_id: $uuid($r.workspace_owner_id),
            workspace_id: $uuid($r.workspace_id),
            workspace_name: $r.workspace_name,
            agent_name: $r.agent_name,
            code: $r.code,
            ip: $r.ip,
            user_agent: $r.user_agent,
            user_id: $r.user_id.map($uuid),
            connection_id: $r.connection_id.map($uuid),
            disconnect_time: $r.disconnect_time,
            disconnect_reason: $r.disconnect_reason,
            $($changed)*
        }
    };
}
