//! codersdk's `ConnectionLogResponse` and `ConnectionLog` JSON, in the shape of Coder's
//! current API (version D3+, spec §7): `type` is the deprecated 7-value type derived from the
//! method and the app, then `connection_method`, `app_name` and `app_display_name`; `ssh_info`
//! only for SSH and the web terminal (with `client_session_id` when known), `web_info` for
//! every other method, agent-reported port forwards included. No `type_display_name`.
//!
//! Written by hand rather than through serde so that every byte matches Go's
//! `encoding/json`: struct field order, `omitempty`, and HTML escaping of `<`, `>`, `&`.
//!
//! Sources (coder/coder @02ede246 unless noted): `codersdk/connectionlog.go@036757dc` (field
//! order and tags), `site/src/api/typesGenerated.ts` (the C shapes of `MinimalUser`,
//! `ReducedUser`, `User`), `coderd/database/db2sdk/db2sdk.go` (`User`, `ReducedUser`,
//! `SlimRolesFromNames`, `ConnectionLogType`), `enterprise/coderd/connectionlog.go@036757dc`
//! (`convertConnectionLog`).
//!
//! Rows whose directory entries are missing render as Coder renders an empty join:
//! - organization: `{"id":<row's organization_id>,"name":"","display_name":"","icon":""}`;
//! - workspace owner: `"workspace_owner_username":""`;
//! - `web_info.user` with a `user_id` the directory does not know: Coder builds the user
//!   whenever the row's `user_id` is valid, from NULL join columns, so the object carries the
//!   id, empty strings, Go's zero time and `"roles":[]`. `null` only when the row has no
//!   `user_id`.

use core::fmt::Write;

use super::go::{netip_string, push_json_str};
use super::timefmt::push_rfc3339_nano;
use connlog_plugin_sdk::HostDirectory;
use connlog_plugin_sdk::model::*;
use connlog_vocabulary::{LegacyType, app_display_name};

/// Coder's `count_cap`, still sent so that Coder's clients parse our bodies (our counts are
/// exact at any size).
pub const COUNT_CAP: u64 = 2000;

/// `{"connection_logs":[…],"count":N,"count_cap":2000}`.
pub fn response_json(rows: &[ConnectionLog], count: u64, directory: &dyn HostDirectory) -> String {
    let mut out = String::with_capacity(64 + rows.len() * 700);
    out.push_str("{\"connection_logs\":[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_row(&mut out, row, directory);
    }
    let _ = write!(out, "],\"count\":{count},\"count_cap\":{COUNT_CAP}}}");
    out
}

/// One codersdk `ConnectionLog` object.
pub fn row_json(row: &ConnectionLog, directory: &dyn HostDirectory) -> String {
    let mut out = String::with_capacity(700);
    push_row(&mut out, row, directory);
    out
}

fn push_key(out: &mut String, first: &mut bool, key: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

fn push_str_field(out: &mut String, first: &mut bool, key: &str, value: &str) {
    push_key(out, first, key);
    push_json_str(out, value);
}

fn push_uuid_field(out: &mut String, first: &mut bool, key: &str, value: Uuid) {
    push_key(out, first, key);
    let mut text = Uuid::encode_buffer();
    out.push('"');
    out.push_str(value.hyphenated().encode_lower(&mut text));
    out.push('"');
}

fn push_time_field(out: &mut String, first: &mut bool, key: &str, value: UnixNanos) {
    push_key(out, first, key);
    // A timestamp holds nothing JSON escapes.
    out.push('"');
    push_rfc3339_nano(out, value);
    out.push('"');
}

fn push_row(out: &mut String, row: &ConnectionLog, directory: &dyn HostDirectory) {
    let org = directory.organization_by_id(row.organization_id);
    let owner_username = directory
        .user_by_id(row.workspace_owner_id)
        .map(|u| u.username)
        .unwrap_or_default();

    let mut first = true;
    out.push('{');
    push_uuid_field(out, &mut first, "id", row.id);
    push_time_field(out, &mut first, "connect_time", row.connect_time);

    // MinimalOrganization: id, name, display_name, icon.
    push_key(out, &mut first, "organization");
    {
        let mut first = true;
        out.push('{');
        push_uuid_field(out, &mut first, "id", row.organization_id);
        let (name, display_name, icon) = match &org {
            Some(o) => (o.name.as_str(), o.display_name.as_str(), o.icon.as_str()),
            None => ("", "", ""),
        };
        push_str_field(out, &mut first, "name", name);
        push_str_field(out, &mut first, "display_name", display_name);
        push_str_field(out, &mut first, "icon", icon);
        out.push('}');
    }

    push_uuid_field(
        out,
        &mut first,
        "workspace_owner_id",
        row.workspace_owner_id,
    );
    push_str_field(out, &mut first, "workspace_owner_username", &owner_username);
    push_uuid_field(out, &mut first, "workspace_id", row.workspace_id);
    push_str_field(out, &mut first, "workspace_name", &row.workspace_name);
    push_str_field(out, &mut first, "agent_name", &row.agent_name);
    // `ip,omitempty` on a *netip.Addr: omitted when NULL or not convertible.
    if let Some(ip) = row.ip.as_deref().and_then(netip_string) {
        push_str_field(out, &mut first, "ip", &ip);
    }
    let method = row.connection_method;
    // Only SSH and the web terminal have a client app; other methods hold a slug or port.
    let app = method
        .is_terminal()
        .then_some(row.app_name_or_port.as_deref())
        .flatten()
        .filter(|a| !a.is_empty());
    push_str_field(
        out,
        &mut first,
        "type",
        LegacyType::of(method, app).as_str(),
    );
    push_str_field(out, &mut first, "connection_method", method.as_str());
    if let Some(app) = app {
        push_str_field(out, &mut first, "app_name", app);
        push_str_field(out, &mut first, "app_display_name", &app_display_name(app));
    }

    if !method.is_terminal() {
        // ConnectionLogWebInfo: user_agent, user (not omitempty), slug_or_port, status_code.
        push_key(out, &mut first, "web_info");
        let mut first = true;
        out.push('{');
        push_str_field(
            out,
            &mut first,
            "user_agent",
            row.user_agent.as_deref().unwrap_or(""),
        );
        push_key(out, &mut first, "user");
        match row.user_id {
            Some(user_id) => push_user(out, user_id, directory.user_by_id(user_id).as_ref()),
            None => out.push_str("null"),
        }
        push_str_field(
            out,
            &mut first,
            "slug_or_port",
            row.app_name_or_port.as_deref().unwrap_or(""),
        );
        push_key(out, &mut first, "status_code");
        let _ = write!(out, "{}", row.code.unwrap_or(0));
        out.push('}');
    } else {
        // ConnectionLogSSHInfo: connection_id, disconnect_time,omitempty,
        // disconnect_reason,omitempty, exit_code,omitempty (a pointer: 0 is emitted).
        push_key(out, &mut first, "ssh_info");
        let mut first = true;
        out.push('{');
        push_uuid_field(
            out,
            &mut first,
            "connection_id",
            row.connection_id.unwrap_or(Uuid::nil()),
        );
        if let Some(t) = row.disconnect_time {
            push_time_field(out, &mut first, "disconnect_time", t);
        }
        if let Some(reason) = row.disconnect_reason.as_deref().filter(|r| !r.is_empty()) {
            push_str_field(out, &mut first, "disconnect_reason", reason);
        }
        if let Some(code) = row.code {
            push_key(out, &mut first, "exit_code");
            let _ = write!(out, "{code}");
        }
        if let Some(csid) = row.client_session_id.as_deref().filter(|c| !c.is_empty()) {
            push_str_field(out, &mut first, "client_session_id", csid);
        }
        out.push('}');
    }
    out.push('}');
}

/// Go's zero `time.Time` as JSON.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// codersdk `User` at C, in Go field order (embedded structs flatten in place):
/// `MinimalUser{id, username, name,omitempty, avatar_url,omitempty}`,
/// `ReducedUser{email, created_at, updated_at, last_seen_at, status, login_type,
/// is_service_account,omitempty, theme_preference,omitempty}`,
/// then `organization_ids`, `roles`, `has_ai_seat`.
///
/// db2sdk sets neither `ThemePreference` nor `HasAISeat` here, and our directory has no
/// service accounts, so `theme_preference` and `is_service_account` are always omitted and
/// `has_ai_seat` is always `false`. `organization_ids` is `[]` (Coder passes an empty slice).
fn push_user(out: &mut String, user_id: Uuid, user: Option<&User>) {
    let mut first = true;
    out.push('{');
    push_uuid_field(out, &mut first, "id", user_id);
    match user {
        Some(u) => {
            push_str_field(out, &mut first, "username", &u.username);
            if !u.name.is_empty() {
                push_str_field(out, &mut first, "name", &u.name);
            }
            if !u.avatar_url.is_empty() {
                push_str_field(out, &mut first, "avatar_url", &u.avatar_url);
            }
            push_str_field(out, &mut first, "email", &u.email);
            push_time_field(out, &mut first, "created_at", u.created_at);
            push_time_field(out, &mut first, "updated_at", u.updated_at);
            push_time_field(out, &mut first, "last_seen_at", u.last_seen_at);
            push_str_field(out, &mut first, "status", &u.status);
            push_str_field(out, &mut first, "login_type", &u.login_type);
        }
        None => {
            // The NULL join: empty strings and Go's zero time. `last_seen_at` is optional in
            // C's generated types (omitzero), so the zero value is left out.
            push_str_field(out, &mut first, "username", "");
            push_str_field(out, &mut first, "email", "");
            push_key(out, &mut first, "created_at");
            push_json_str(out, GO_ZERO_TIME);
            push_key(out, &mut first, "updated_at");
            push_json_str(out, GO_ZERO_TIME);
            push_str_field(out, &mut first, "status", "");
            push_str_field(out, &mut first, "login_type", "");
        }
    }
    push_key(out, &mut first, "organization_ids");
    out.push_str("[]");
    push_key(out, &mut first, "roles");
    out.push('[');
    for (i, role) in user
        .map(|u| u.site_roles.as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        push_slim_role(out, role);
    }
    out.push(']');
    push_key(out, &mut first, "has_ai_seat");
    out.push_str("false");
    out.push('}');
}

/// db2sdk `SlimRoleFromName`: a built-in site role gets its display name; any other name
/// gets `display_name: ""`. `organization_id` is `omitempty` and site roles have none.
fn push_slim_role(out: &mut String, name: &str) {
    let display_name = match name {
        "owner" => "Owner",
        "member" => "Member",
        "auditor" => "Auditor",
        "template-admin" => "Template Admin",
        "user-admin" => "User Admin",
        _ => "",
    };
    let mut first = true;
    out.push('{');
    push_str_field(out, &mut first, "name", name);
    push_str_field(out, &mut first, "display_name", display_name);
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use connlog_plugin_sdk::testing::MemoryHost;

    fn id(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap()
    }

    const S: i64 = 1_000_000_000;

    fn directory() -> MemoryHost {
        MemoryHost::with_directory(
            [Organization {
                id: id("0665a54f-0b77-4a58-94aa-59646fa38a74"),
                name: "coder".into(),
                display_name: "Coder & Co".into(),
                icon: "/emojis/1f3e2.png".into(),
            }],
            [
                User {
                    id: id("6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa"),
                    username: "alice".into(),
                    email: "alice@example.com".into(),
                    name: "Alice <A>".into(),
                    avatar_url: "".into(),
                    status: "active".into(),
                    login_type: "password".into(),
                    created_at: 1_751_000_000 * S,
                    updated_at: 1_751_000_001 * S + 500_000_000,
                    last_seen_at: 1_751_525_836 * S + 144_719_000,
                    deleted: false,
                    site_roles: vec!["owner".into(), "custom-thing".into()],
                },
                User {
                    id: id("fe8f4bab-3128-41f1-8fec-1cc0755affe5"),
                    username: "bob".into(),
                    email: "bob@example.com".into(),
                    name: "".into(),
                    avatar_url: "https://x/a.png".into(),
                    status: "suspended".into(),
                    login_type: "oidc".into(),
                    created_at: 0,
                    updated_at: 0,
                    last_seen_at: 0,
                    deleted: true,
                    site_roles: vec![],
                },
            ],
        )
    }

    fn web_row() -> ConnectionLog {
        ConnectionLog {
            id: id("f0249951-d454-48f6-9504-e73340fa07b7"),
            connect_time: 1_751_525_836 * S + 144_719_000,
            organization_id: id("0665a54f-0b77-4a58-94aa-59646fa38a74"),
            workspace_owner_id: id("6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa"),
            workspace_id: id("3c0b37c8-e58c-4980-b9a1-2732410480a5"),
            workspace_name: "dev".into(),
            agent_name: "main".into(),
            connection_method: ConnectionMethod::WorkspaceApp,
            code: Some(200),
            ip: Some("127.0.0.1".into()),
            user_agent: Some("Mozilla/5.0".into()),
            user_id: Some(id("6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa")),
            app_name_or_port: Some("code-server".into()),
            connection_id: None,
            disconnect_time: None,
            disconnect_reason: None,
            client_session_id: None,
        }
    }

    fn ssh_row() -> ConnectionLog {
        ConnectionLog {
            id: id("ca5dfc63-dc43-463a-bb3e-38526866fd4b"),
            connect_time: 1_752_142_478 * S + 942_776_145,
            organization_id: id("1a2bb67e-0117-4168-92e0-58138989a7f5"),
            workspace_owner_id: id("fe8f4bab-3128-41f1-8fec-1cc0755affe5"),
            workspace_id: id("05567e23-31e2-4c00-bd05-4d499d437347"),
            workspace_name: "dev".into(),
            agent_name: "main".into(),
            connection_method: ConnectionMethod::Ssh,
            code: None,
            ip: Some("fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7".into()),
            user_agent: None,
            user_id: None,
            app_name_or_port: Some("cursor".into()),
            connection_id: Some(id("7a6fafdc-e3d0-43cb-a1b7-1f19802d7908")),
            disconnect_time: None,
            disconnect_reason: None,
            client_session_id: None,
        }
    }

    #[test]
    fn web_row_is_codersdk_json() {
        let got = row_json(&web_row(), &directory());
        let want = concat!(
            r#"{"id":"f0249951-d454-48f6-9504-e73340fa07b7","connect_time":"2025-07-03T06:57:16.144719Z","#,
            r#""organization":{"id":"0665a54f-0b77-4a58-94aa-59646fa38a74","name":"coder","display_name":"Coder \u0026 Co","icon":"/emojis/1f3e2.png"},"#,
            r#""workspace_owner_id":"6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa","workspace_owner_username":"alice","#,
            r#""workspace_id":"3c0b37c8-e58c-4980-b9a1-2732410480a5","workspace_name":"dev","agent_name":"main","#,
            r#""ip":"127.0.0.1","type":"workspace_app","connection_method":"workspace_app","#,
            r#""web_info":{"user_agent":"Mozilla/5.0","user":{"id":"6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa","username":"alice","#,
            r#""name":"Alice \u003cA\u003e","email":"alice@example.com","created_at":"2025-06-27T04:53:20Z","#,
            r#""updated_at":"2025-06-27T04:53:21.5Z","last_seen_at":"2025-07-03T06:57:16.144719Z","status":"active","#,
            r#""login_type":"password","organization_ids":[],"roles":[{"name":"owner","display_name":"Owner"},"#,
            r#"{"name":"custom-thing","display_name":""}],"has_ai_seat":false},"slug_or_port":"code-server","status_code":200}}"#
        );
        assert_eq!(got, want);
        serde_json::from_str::<serde_json::Value>(&got).unwrap();
    }

    #[test]
    fn web_row_without_user_or_values() {
        let mut row = web_row();
        row.connection_method = ConnectionMethod::Tunnel;
        row.user_id = None;
        row.user_agent = None;
        row.app_name_or_port = None;
        row.code = None;
        row.ip = None;
        let v: serde_json::Value = serde_json::from_str(&row_json(&row, &directory())).unwrap();
        assert!(v.get("ip").is_none());
        assert!(v.get("ssh_info").is_none());
        assert_eq!(v["type"], "tunnel");
        assert!(v.get("type_display_name").is_none());
        assert_eq!(
            v["web_info"],
            serde_json::json!({"user_agent":"","user":null,"slug_or_port":"","status_code":0})
        );
    }

    #[test]
    fn web_row_with_unknown_user_renders_the_empty_join() {
        let mut row = web_row();
        row.user_id = Some(id("11111111-1111-4111-8111-111111111111"));
        let got = row_json(&row, &directory());
        assert!(got.contains(concat!(
            r#""user":{"id":"11111111-1111-4111-8111-111111111111","username":"","email":"","#,
            r#""created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z","status":"","login_type":"","#,
            r#""organization_ids":[],"roles":[],"has_ai_seat":false}"#
        )));
    }

    #[test]
    fn user_with_avatar_and_no_name() {
        let mut row = web_row();
        row.user_id = Some(id("fe8f4bab-3128-41f1-8fec-1cc0755affe5"));
        let got = row_json(&row, &directory());
        assert!(got.contains(concat!(
            r#""user":{"id":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","username":"bob","avatar_url":"https://x/a.png","#,
            r#""email":"bob@example.com","created_at":"1970-01-01T00:00:00Z""#
        )));
    }

    #[test]
    fn ongoing_session_row() {
        let got = row_json(&ssh_row(), &directory());
        let want = concat!(
            r#"{"id":"ca5dfc63-dc43-463a-bb3e-38526866fd4b","connect_time":"2025-07-10T10:14:38.942776145Z","#,
            r#""organization":{"id":"1a2bb67e-0117-4168-92e0-58138989a7f5","name":"","display_name":"","icon":""},"#,
            r#""workspace_owner_id":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","workspace_owner_username":"bob","#,
            r#""workspace_id":"05567e23-31e2-4c00-bd05-4d499d437347","workspace_name":"dev","agent_name":"main","#,
            r#""ip":"fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7","type":"vscode","connection_method":"ssh","#,
            r#""app_name":"cursor","app_display_name":"Cursor","#,
            r#""ssh_info":{"connection_id":"7a6fafdc-e3d0-43cb-a1b7-1f19802d7908"}}"#
        );
        assert_eq!(got, want);
    }

    #[test]
    fn completed_session_row_keeps_exit_code_zero_and_drops_empty_reason() {
        let mut row = ssh_row();
        row.disconnect_time = Some(row.connect_time + 60 * S);
        row.code = Some(0);
        row.disconnect_reason = Some(String::new());
        row.connection_id = None;
        let got = row_json(&row, &directory());
        assert!(got.ends_with(concat!(
            r#""ssh_info":{"connection_id":"00000000-0000-0000-0000-000000000000","#,
            r#""disconnect_time":"2025-07-10T10:15:38.942776145Z","exit_code":0}}"#
        )));
        row.disconnect_reason = Some("client closed".into());
        row.code = None;
        let got = row_json(&row, &directory());
        assert!(got.ends_with(r#""disconnect_time":"2025-07-10T10:15:38.942776145Z","disconnect_reason":"client closed"}}"#));
    }

    #[test]
    fn response_wraps_rows_with_count_and_cap() {
        let d = directory();
        assert_eq!(
            response_json(&[], 0, &d),
            r#"{"connection_logs":[],"count":0,"count_cap":2000}"#
        );
        let got = response_json(&[web_row(), ssh_row()], 7, &d);
        assert!(got.starts_with(r#"{"connection_logs":[{"id":"f0249951"#));
        assert!(got.ends_with(r#"}}],"count":7,"count_cap":2000}"#));
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["connection_logs"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["connection_logs"][1],
            serde_json::from_str::<serde_json::Value>(&row_json(&ssh_row(), &d)).unwrap()
        );
    }
    fn keys(json: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// Spec §7.2: the key order, and which keys each method has.
    #[test]
    fn keys_in_go_order_per_method() {
        use ConnectionMethod::*;
        let common = [
            "id",
            "connect_time",
            "organization",
            "workspace_owner_id",
            "workspace_owner_username",
            "workspace_id",
            "workspace_name",
            "agent_name",
            "ip",
            "type",
            "connection_method",
        ];
        let d = directory();
        let cases: [(ConnectionMethod, Option<&str>, bool, &[&str]); 8] = [
            (Ssh, None, true, &["ssh_info"]),
            (
                Ssh,
                Some("cursor"),
                true,
                &["app_name", "app_display_name", "ssh_info"],
            ),
            (
                ReconnectingPty,
                Some("cursor"),
                true,
                &["app_name", "app_display_name", "ssh_info"],
            ),
            (ReconnectingPty, None, true, &["ssh_info"]),
            (WorkspaceApp, Some("cursor"), false, &["web_info"]),
            (PortForwarding, Some("8080"), false, &["web_info"]),
            // An agent-reported port forward: a session, shown with `web_info`.
            (PortForwarding, None, true, &["web_info"]),
            (Tunnel, None, false, &["web_info"]),
        ];
        for (method, app, session, tail) in cases {
            let mut row = if session { ssh_row() } else { web_row() };
            row.connection_method = method;
            row.app_name_or_port = app.map(str::to_string);
            row.ip = Some("127.0.0.1".into());
            let want: Vec<&str> = common.iter().chain(tail).copied().collect();
            // `serde_json` sorts keys unless told otherwise; compare as sets, then the order
            // of the text itself.
            let json = row_json(&row, &d);
            let mut got = keys(&json);
            let mut sorted_want: Vec<String> = want.iter().map(|k| k.to_string()).collect();
            got.sort();
            sorted_want.sort();
            assert_eq!(got, sorted_want, "{method} {app:?}");
            let positions: Vec<usize> = want
                .iter()
                .map(|k| json.find(&format!("\"{k}\":")).unwrap())
                .collect();
            assert!(positions.is_sorted(), "{method} {app:?}: {json}");
        }
    }

    /// Spec §11.9 and §7.6.
    #[test]
    fn coder_json_shapes() {
        use ConnectionMethod::*;
        let d = directory();
        let json = |row: &ConnectionLog| -> serde_json::Value {
            serde_json::from_str(&row_json(row, &d)).unwrap()
        };
        // ssh, no app, with a connection id.
        let mut plain = ssh_row();
        plain.app_name_or_port = None;
        let v = json(&plain);
        assert_eq!(
            (&v["type"], &v["connection_method"]),
            (&"ssh".into(), &"ssh".into())
        );
        for absent in ["app_name", "app_display_name", "web_info"] {
            assert!(v.get(absent).is_none(), "{absent}");
        }
        // A workspace app whose slug is an app name reports no app.
        let mut web = web_row();
        let v = json(&web);
        assert_eq!(v["type"], "workspace_app");
        for absent in ["app_name", "app_display_name", "ssh_info"] {
            assert!(v.get(absent).is_none(), "{absent}");
        }
        assert_eq!(v["web_info"]["slug_or_port"], "code-server");
        web.app_name_or_port = Some("cursor".into());
        assert!(json(&web).get("app_name").is_none());
        // ssh + cursor, completed.
        let mut cursor = ssh_row();
        cursor.disconnect_time = Some(cursor.connect_time + S);
        cursor.disconnect_reason = Some("example close reason".into());
        let v = json(&cursor);
        assert!(v.get("web_info").is_none());
        assert_eq!(
            (&v["type"], &v["app_name"], &v["app_display_name"]),
            (&"vscode".into(), &"cursor".into(), &"Cursor".into())
        );
        assert_eq!(v["ssh_info"]["disconnect_reason"], "example close reason");
        assert_eq!(
            v["ssh_info"]["disconnect_time"],
            "2025-07-10T10:14:39.942776145Z"
        );
        // A tunnel with its code and user.
        let mut tunnel = web_row();
        tunnel.connection_method = Tunnel;
        tunnel.app_name_or_port = None;
        tunnel.code = Some(101);
        tunnel.user_agent = Some("coder-cli/2.0.0".into());
        let v = json(&tunnel);
        assert!(v.get("ssh_info").is_none());
        assert_eq!(v["web_info"]["status_code"], 101);
        assert_eq!(
            v["web_info"]["user"]["id"],
            "6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa"
        );
        // An unregistered app, a JetBrains IDE, a web-terminal app.
        for (method, app, t, display) in [
            (Ssh, "some_new_ide", "ssh", "some_new_ide"),
            (Ssh, "goland", "jetbrains", "GoLand"),
            (Ssh, "zed", "ssh", "Zed"),
            (Ssh, "unknown", "ssh", "unknown"),
            (ReconnectingPty, "cursor", "reconnecting_pty", "Cursor"),
        ] {
            let mut row = ssh_row();
            row.connection_method = method;
            row.app_name_or_port = Some(app.into());
            let v = json(&row);
            assert_eq!(
                (&v["type"], &v["app_name"], &v["app_display_name"]),
                (&t.into(), &app.into(), &display.into()),
                "{method} {app}"
            );
        }
        assert_eq!(
            response_json(&[], 0, &d),
            r#"{"connection_logs":[],"count":0,"count_cap":2000}"#
        );
    }

    /// Spec §7.4 and §7.5: an agent's port forward has `web_info` with no user, agent or
    /// slug, and its stored code; a client session id ends `ssh_info` when known.
    #[test]
    fn agent_port_forward_and_client_session_id() {
        let d = directory();
        let mut forward = ssh_row();
        forward.connection_method = ConnectionMethod::PortForwarding;
        forward.app_name_or_port = None;
        forward.disconnect_time = Some(forward.connect_time + S);
        forward.code = Some(0);
        forward.client_session_id = Some("0123456789abcdef0123456789abcdef".into());
        assert!(row_json(&forward, &d).ends_with(concat!(
            r#""type":"port_forwarding","connection_method":"port_forwarding","#,
            r#""web_info":{"user_agent":"","user":null,"slug_or_port":"","status_code":0}}"#
        )));
        let mut session = ssh_row();
        session.disconnect_time = Some(session.connect_time + S);
        session.code = Some(0);
        session.client_session_id = Some("0123456789abcdef0123456789abcdef".into());
        assert!(row_json(&session, &d).ends_with(concat!(
            r#""ssh_info":{"connection_id":"7a6fafdc-e3d0-43cb-a1b7-1f19802d7908","#,
            r#""disconnect_time":"2025-07-10T10:14:39.942776145Z","exit_code":0,"#,
            r#""client_session_id":"0123456789abcdef0123456789abcdef"}}"#
        )));
    }
}
