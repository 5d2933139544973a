//! `-o table`: API rows as an aligned text table for people, in the manner of Coder's CLI
//! (`coder list -o table -c …`). It is rendered from the row JSON that `query` and `export`
//! already produce, so the table shows what the API says and nothing else.

use std::fmt::Write as _;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::export::text_at;

/// A column of the table. The names are the lowercase words `-c` takes; the headers are
/// the same words in upper case, as in Coder's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[value(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// The connect time, in UTC to the second.
    Time,
    /// The web user; the workspace owner for SSH and terminal sessions.
    Who,
    /// `owner/workspace`.
    Workspace,
    Agent,
    /// The connection method.
    Method,
    /// The app's display name, or the web app's slug or port.
    App,
    /// From connect to disconnect, or `ongoing`; empty for web and tunnel rows.
    Duration,
    /// The HTTP status (or tunnel decision), else the session's exit code.
    Code,
    Ip,
    Id,
    /// The organization's name.
    Organization,
    /// The deprecated 7-value type.
    Type,
    ClientSessionId,
    ConnectionId,
    DisconnectReason,
    UserAgent,
}

/// The columns without `-c`.
pub const DEFAULT_COLUMNS: [Column; 9] = [
    Column::Time,
    Column::Who,
    Column::Workspace,
    Column::Agent,
    Column::Method,
    Column::App,
    Column::Duration,
    Column::Code,
    Column::Ip,
];

/// The longest cell, in characters: a longer value is cut to end in `…`, so that one user
/// agent or hostile name cannot push the rest off the screen (JSON and CSV carry it whole).
const MAX_CELL: usize = 48;
/// Between two columns, as in Coder's tables.
const GAP: &str = "  ";

impl Column {
    fn header(self) -> String {
        let name = self.to_possible_value().expect("no column is skipped");
        name.get_name().replace('_', " ").to_uppercase()
    }

    fn cell(self, row: &Value) -> String {
        let text = |path: &[&str]| text_at(row, path).unwrap_or_default();
        // Exactly one of these is present; which one tells an agent session from a web row.
        let ssh = row.get("ssh_info").filter(|v| v.is_object());
        let web = row.get("web_info").filter(|v| v.is_object());
        match self {
            Column::Time => text_at(row, &["connect_time"])
                .map(|t| utc_second(&t))
                .unwrap_or_default(),
            // A web row without a user (an unauthenticated request, a port forward the
            // agent reported) shows no one rather than the owner, who may not be the visitor.
            Column::Who if web.is_some() => text(&["web_info", "user", "username"]),
            Column::Who => text(&["workspace_owner_username"]),
            Column::Workspace => {
                let (owner, name) = (
                    text(&["workspace_owner_username"]),
                    text(&["workspace_name"]),
                );
                if owner.is_empty() && name.is_empty() {
                    String::new()
                } else {
                    format!("{owner}/{name}")
                }
            }
            Column::Agent => text(&["agent_name"]),
            Column::Method => text(&["connection_method"]),
            Column::App => text_at(row, &["app_display_name"])
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| text(&["web_info", "slug_or_port"])),
            Column::Duration => match ssh {
                None => String::new(),
                Some(_) => match text_at(row, &["ssh_info", "disconnect_time"]) {
                    None => "ongoing".to_owned(),
                    Some(end) => seconds_between(&text(&["connect_time"]), &end)
                        .map(human_duration)
                        .unwrap_or_default(),
                },
            },
            // As the badge on Coder's page: `web_info.status_code ?? ssh_info.exit_code`.
            Column::Code => text_at(row, &["web_info", "status_code"])
                .or_else(|| text_at(row, &["ssh_info", "exit_code"]))
                .unwrap_or_default(),
            Column::Ip => text(&["ip"]),
            Column::Id => text(&["id"]),
            Column::Organization => text(&["organization", "name"]),
            Column::Type => text(&["type"]),
            Column::ClientSessionId => text(&["ssh_info", "client_session_id"]),
            Column::ConnectionId => text(&["ssh_info", "connection_id"]),
            Column::DisconnectReason => text(&["ssh_info", "disconnect_reason"]),
            Column::UserAgent => text(&["web_info", "user_agent"]),
        }
    }
}

/// A table written a page at a time: the header comes before the first page.
///
/// Widths fit the rows seen so far. `query` has one page, so its table fits exactly;
/// `export` streams 1,000-row pages and cannot know later ones, so its widths fit the first
/// page and only grow: a later page with a wider value starts wider columns from there,
/// and no line is ever broken.
pub struct Table {
    columns: Vec<Column>,
    widths: Vec<usize>,
    header_written: bool,
}

impl Table {
    /// No columns means the default ones.
    pub fn new(columns: &[Column]) -> Self {
        let columns = if columns.is_empty() {
            DEFAULT_COLUMNS.to_vec()
        } else {
            columns.to_vec()
        };
        Table {
            widths: columns.iter().map(|c| c.header().chars().count()).collect(),
            columns,
            header_written: false,
        }
    }

    /// The lines for `rows` (API rows), each ending in a newline; no rows gives only the
    /// header the first time.
    pub fn page(&mut self, rows: &[Value]) -> String {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .map(|c| fit(&printable(&c.cell(row))))
                    .collect()
            })
            .collect();
        for line in &cells {
            for (width, cell) in self.widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        if !self.header_written {
            let header: Vec<String> = self.columns.iter().map(|c| c.header()).collect();
            self.line(&header, &mut out);
            self.header_written = true;
        }
        for line in &cells {
            self.line(line, &mut out);
        }
        out
    }

    fn line(&self, cells: &[String], out: &mut String) {
        let start = out.len();
        for (i, (cell, width)) in cells.iter().zip(&self.widths).enumerate() {
            if i > 0 {
                out.push_str(GAP);
            }
            let _ = write!(out, "{cell:<width$}");
        }
        // Empty trailing cells would leave spaces.
        out.truncate(start + out[start..].trim_end().len());
        out.push('\n');
    }
}

/// A value that cannot break the table: control characters (newlines, escapes), line
/// separators and invisible formatting (bidirectional overrides, zero widths) are written
/// as escapes, so a hostile name or reason can neither add lines nor disguise itself.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
                    | '\u{2060}'..='\u{2069}' | '\u{feff}') =>
            {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// At most `MAX_CELL` characters (one column each: wide characters are not measured).
fn fit(s: &str) -> String {
    if s.chars().count() <= MAX_CELL {
        s.to_owned()
    } else {
        s.chars().take(MAX_CELL - 1).chain(['…']).collect()
    }
}

/// `2025-07-10T10:14:38.5+02:00` as `2025-07-10 08:14:38Z`; anything else as it is.
fn utc_second(rfc3339: &str) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| rfc3339.to_owned())
}

fn seconds_between(start: &str, end: &str) -> Option<i64> {
    let start = OffsetDateTime::parse(start, &Rfc3339).ok()?;
    let end = OffsetDateTime::parse(end, &Rfc3339).ok()?;
    Some((end - start).whole_seconds())
}

/// The two largest units, dropping a zero second one: `45s`, `3m12s`, `1h2m`, `2h`, `3d4h`.
fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let (big, small) = match (d, h, m) {
        (0, 0, 0) => return format!("{s}s"),
        (0, 0, _) => ((m, 'm'), (s, 's')),
        (0, _, _) => ((h, 'h'), (m, 'm')),
        _ => ((d, 'd'), (h, 'h')),
    };
    if small.0 == 0 {
        format!("{}{}", big.0, big.1)
    } else {
        format!("{}{}{}{}", big.0, big.1, small.0, small.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ssh_row() -> Value {
        json!({
            "id": "9f0c", "connect_time": "2025-07-10T10:14:38.123Z",
            "organization": {"id": "o1", "name": "coder"},
            "workspace_owner_username": "alice", "workspace_name": "dev", "agent_name": "main",
            "ip": "10.0.0.7", "type": "vscode", "connection_method": "ssh",
            "app_name": "cursor", "app_display_name": "Cursor",
            "ssh_info": {"connection_id": "c1", "disconnect_time": "2025-07-10T11:16:40Z",
                         "disconnect_reason": "client closed", "exit_code": 0,
                         "client_session_id": "s1"}
        })
    }

    fn web_row() -> Value {
        json!({
            "id": "7a1b", "connect_time": "2025-07-10T09:00:00Z",
            "organization": {"id": "o1", "name": "coder"},
            "workspace_owner_username": "alice", "workspace_name": "dev", "agent_name": "main",
            "ip": "192.168.1.20", "type": "workspace_app", "connection_method": "workspace_app",
            "web_info": {"user_agent": "Mozilla/5.0", "user": {"id": "u2", "username": "bob"},
                         "slug_or_port": "code-server", "status_code": 200}
        })
    }

    fn render(columns: &[Column], rows: &[Value]) -> String {
        Table::new(columns).page(rows)
    }

    #[test]
    fn default_columns_aligned_with_two_spaces_and_no_trailing_space() {
        let mut ongoing = ssh_row();
        ongoing["ssh_info"] = json!({"connection_id": "c2"});
        ongoing["ip"] = Value::Null;
        ongoing["connection_method"] = json!("reconnecting_pty");
        ongoing.as_object_mut().unwrap().remove("app_display_name");
        let table = render(&[], &[ssh_row(), web_row(), ongoing]);
        assert_eq!(
            table,
            "\
TIME                  WHO    WORKSPACE  AGENT  METHOD            APP          DURATION  CODE  IP
2025-07-10 10:14:38Z  alice  alice/dev  main   ssh               Cursor       1h2m      0     10.0.0.7
2025-07-10 09:00:00Z  bob    alice/dev  main   workspace_app     code-server            200   192.168.1.20
2025-07-10 10:14:38Z  alice  alice/dev  main   reconnecting_pty               ongoing
"
        );
    }

    #[test]
    fn chosen_columns_in_the_order_given() {
        let columns = [
            Column::ClientSessionId,
            Column::Organization,
            Column::DisconnectReason,
            Column::UserAgent,
            Column::Type,
            Column::Id,
            Column::ConnectionId,
        ];
        assert_eq!(
            render(&columns, &[ssh_row(), web_row()]),
            "\
CLIENT SESSION ID  ORGANIZATION  DISCONNECT REASON  USER AGENT   TYPE           ID    CONNECTION ID
s1                 coder         client closed                   vscode         9f0c  c1
                   coder                            Mozilla/5.0  workspace_app  7a1b
"
        );
    }

    #[test]
    fn no_rows_is_the_header_alone() {
        assert_eq!(render(&[Column::Time, Column::Who], &[]), "TIME  WHO\n");
    }

    #[test]
    fn a_web_row_without_a_user_shows_no_one_and_its_code() {
        let mut row = web_row();
        row["connection_method"] = json!("port_forwarding");
        row["web_info"] =
            json!({"user_agent": "", "user": null, "slug_or_port": "", "status_code": 0});
        let cols = [Column::Who, Column::App, Column::Duration, Column::Code];
        assert_eq!(
            render(&cols, &[row]),
            "WHO  APP  DURATION  CODE\n                    0\n"
        );
    }

    #[test]
    fn hostile_values_cannot_add_lines_or_hide() {
        let mut row = ssh_row();
        row["workspace_name"] = json!("dev\nTIME  WHO\r\x1b[2J\u{202e}evil\t");
        row["ssh_info"]["disconnect_reason"] = json!("x".repeat(200));
        let table = render(&[Column::Workspace, Column::DisconnectReason], &[row]);
        assert_eq!(table.lines().count(), 2, "{table}");
        let line = table.lines().nth(1).unwrap();
        assert!(
            line.starts_with("alice/dev\\nTIME  WHO\\r\\u{1b}[2J\\u{202e}evil\\t  "),
            "{line}"
        );
        assert!(
            line.ends_with(&format!("{}…", "x".repeat(MAX_CELL - 1))),
            "{line}"
        );
        assert!(!table.chars().any(|c| c.is_control() && c != '\n'));
    }

    #[test]
    fn widths_grow_across_pages_and_the_header_comes_once() {
        let mut table = Table::new(&[Column::Agent, Column::Ip]);
        let first = table.page(&[ssh_row()]);
        let mut wide = ssh_row();
        wide["agent_name"] = json!("a-much-longer-agent");
        let second = table.page(&[wide, ssh_row()]);
        assert_eq!(first, "AGENT  IP\nmain   10.0.0.7\n");
        assert_eq!(
            second,
            "a-much-longer-agent  10.0.0.7\nmain                 10.0.0.7\n"
        );
    }

    #[test]
    fn durations() {
        for (seconds, text) in [
            (0, "0s"),
            (45, "45s"),
            (60, "1m"),
            (192, "3m12s"),
            (3720, "1h2m"),
            (3725, "1h2m"),
            (7200, "2h"),
            (273_600, "3d4h"),
            (86_400, "1d"),
            (-5, "0s"),
        ] {
            assert_eq!(human_duration(seconds), text, "{seconds}");
        }
    }

    #[test]
    fn times_are_utc_to_the_second() {
        assert_eq!(
            utc_second("2025-07-10T10:14:38.5+02:00"),
            "2025-07-10 08:14:38Z"
        );
        assert_eq!(utc_second("not a time"), "not a time");
    }

    #[test]
    fn an_unknown_column_names_the_known_ones() {
        #[derive(clap::Parser, Debug)]
        struct Cli {
            #[arg(short = 'c', long = "column", value_enum, value_delimiter = ',')]
            columns: Vec<Column>,
        }
        use clap::Parser;
        let ok = Cli::try_parse_from(["t", "-c", "time,client_session_id", "-c", "ip"]).unwrap();
        assert_eq!(
            ok.columns,
            [Column::Time, Column::ClientSessionId, Column::Ip]
        );
        let err = Cli::try_parse_from(["t", "-c", "time,color"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("'color'"), "{text}");
        assert!(
            text.contains("time, who, workspace, agent, method, app, duration, code, ip, id,"),
            "{text}"
        );
    }
}
