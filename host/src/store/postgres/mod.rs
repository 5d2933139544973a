//! The PostgreSQL store (`postgres://…`): the events and the directory in the `connlog`
//! schema of a database, the engine every Coder deployment already runs. `connlog migrate`
//! fills it from an embedded store; replicas (`service::upstream`) append to it, follow it,
//! purge from it and share snapshots through it (`snapshots`).

mod schema;
mod snapshots;

use anyhow::Context;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::config::Host;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

use super::EventCounts;
use crate::model::{
    ConnectionEvent, ConnectionMethod, ConnectionStatus, EventRef, RowOrigin, Uuid,
};

pub use postgres::Config;
pub use schema::SCHEMA_VERSION;
pub use snapshots::SharedSnapshot;

/// The column types of `schema::EVENT_COLUMNS`, for the binary `COPY`.
const EVENT_TYPES: [Type; 18] = [
    Type::INT8,
    Type::UUID,
    Type::INT8,
    Type::UUID,
    Type::UUID,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::UUID,
    Type::TEXT,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
];

/// The purge generation: how many purges have deleted events (`PgStore::forget`).
const PURGE_GENERATION: &str = "SELECT value::bigint FROM connlog.meta WHERE key = 'purges'";

/// What an append stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// `(before, after)`: every stored event with `before < seq <= after` is one of the
    /// appended events (`None` when all of them were stored already).
    pub own: Option<(i64, i64)>,
    /// The highest `seq` any of the appended events has in the store, newly or already.
    pub highest: i64,
}

/// A connection to a database holding (or about to hold) connlog's schema.
pub struct PgStore {
    client: Client,
    target: String,
}

/// Parses a connection string (a `postgres://` URL or `key=value` pairs). The error never
/// repeats the string, which may hold a password.
pub fn parse_url(url: &str) -> Result<Config, String> {
    url.parse::<Config>()
        .map_err(|e| format!("not a PostgreSQL connection string: {e}"))
}

/// `user@host:port/database`, without the password: how messages name a database.
pub fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{}:{port}/{db}", hosts.join(","))
}

impl PgStore {
    /// Connects and creates connlog's schema where it is missing; a schema of another
    /// version is refused.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let target = describe(config);
        let client = config
            .connect(NoTls)
            .with_context(|| format!("cannot connect to PostgreSQL at {target}"))?;
        let mut store = Self { client, target };
        store
            .initialise()
            .with_context(|| format!("the PostgreSQL store at {} cannot be used", store.target))?;
        Ok(store)
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    fn initialise(&mut self) -> anyhow::Result<()> {
        let mut tx = self.client.transaction()?;
        // `IF NOT EXISTS` says so in a notice for each object that exists already.
        tx.batch_execute("SET LOCAL client_min_messages = warning")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::SCHEMA_LOCK])?;
        // The version first: another version's tables are left exactly as they are.
        let has_meta: bool = tx
            .query_one("SELECT to_regclass('connlog.meta') IS NOT NULL", &[])?
            .get(0);
        let version: Option<String> = if has_meta {
            tx.query_opt(
                "SELECT value FROM connlog.meta WHERE key = 'schema_version'",
                &[],
            )?
            .map(|row| row.get(0))
        } else {
            None
        };
        if let Some(v) = &version
            && *v != SCHEMA_VERSION.to_string()
            && !schema::UPGRADED_FROM.contains(&v.as_str())
        {
            anyhow::bail!(
                "connlog schema version {v} is not supported (this build reads {SCHEMA_VERSION})"
            );
        }
        tx.batch_execute(schema::CREATE)?;
        if version.as_deref() != Some(SCHEMA_VERSION.to_string().as_str()) {
            tx.execute(
                "INSERT INTO connlog.meta (key, value) VALUES ('schema_version', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&SCHEMA_VERSION.to_string()],
            )?;
        }
        // Names this database's store, so that a replica's local copy is never mistaken for
        // another's; counts the purges that deleted events and keeps their cutoff (`forget`).
        tx.execute(
            "INSERT INTO connlog.meta (key, value) VALUES ('store_id', gen_random_uuid()::text), \
             ('purges', '0'), ('purge_cutoff', '0') ON CONFLICT (key) DO NOTHING",
            &[],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Copies a whole embedded store in one transaction: `fill` writes every event with its
    /// `seq`; the identity sequence then starts above `high_water` (the highest `seq` ever
    /// handed out), and `directory` (the directory file's text) is kept beside them.
    /// Refused, with nothing written, when the database already holds events or a
    /// directory: a second copy would mix two stores.
    pub fn import(
        &mut self,
        high_water: i64,
        directory: Option<&str>,
        fill: impl FnOnce(&mut EventWriter<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let target = self.target.clone();
        let mut tx = self.client.transaction()?;
        // Another migration into the same database waits here, then finds it full.
        tx.batch_execute(
            "LOCK TABLE connlog.events, connlog.directory IN SHARE ROW EXCLUSIVE MODE",
        )?;
        let held: i64 = tx
            .query_one(
                "SELECT (SELECT count(*) FROM connlog.events) \
                      + (SELECT count(*) FROM connlog.directory)",
                &[],
            )?
            .get(0);
        if held > 0 {
            anyhow::bail!(
                "the PostgreSQL store at {target} already holds connlog data; migrate only \
                 into a database without it"
            );
        }
        let copied = {
            let sink = tx.copy_in(&format!(
                "COPY connlog.events ({}) FROM STDIN (FORMAT binary)",
                schema::EVENT_COLUMNS
            ))?;
            let mut writer = EventWriter {
                copy: BinaryCopyInWriter::new(sink, &EVENT_TYPES),
            };
            fill(&mut writer)?;
            writer.copy.finish()?
        };
        // `setval(…, 1, false)`: the next `seq` is 1.
        tx.execute(
            "SELECT setval(pg_get_serial_sequence('connlog.events', 'seq'), $1, $2)",
            &[&high_water.max(1), &(high_water > 0)],
        )?;
        if let Some(body) = directory {
            tx.execute("INSERT INTO connlog.directory (body) VALUES ($1)", &[&body])?;
        }
        tx.commit()?;
        Ok(copied)
    }

    /// What the events table holds, to compare with the store it came from.
    pub fn event_counts(&mut self) -> anyhow::Result<EventCounts> {
        let row = self.client.query_one(
            "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM connlog.events",
            &[],
        )?;
        let by_kind = self
            .client
            .query(
                "SELECT connection_method, disconnected, count(*) FROM connlog.events \
                 GROUP BY 1, 2 ORDER BY 1, 2",
                &[],
            )?
            .iter()
            .map(|r| {
                let method: i16 = r.get(0);
                let count: i64 = r.get(2);
                (method as u8, r.get::<_, bool>(1), count as u64)
            })
            .collect();
        Ok(EventCounts {
            events: row.get::<_, i64>(0) as u64,
            first_seq: row.get(1),
            last_seq: row.get(2),
            by_kind,
        })
    }

    /// Every event with its `seq`, in `seq` order, streamed.
    pub fn for_each_event(
        &mut self,
        f: impl FnMut(i64, &EventRef<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.each_event_after(0, i64::MAX, i64::MAX, f)
    }

    /// Up to `limit` events with `after < seq <= upto`, in `seq` order.
    pub fn events_after(
        &mut self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(i64, ConnectionEvent)>> {
        let mut events = Vec::new();
        self.each_event_after(after, upto, limit, |seq, e| {
            events.push((seq, e.map_text(|s| s.to_string())));
            Ok(())
        })?;
        Ok(events)
    }

    fn each_event_after(
        &mut self,
        after: i64,
        upto: i64,
        limit: i64,
        mut f: impl FnMut(i64, &EventRef<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut rows = self.client.query_raw(
            &format!(
                "SELECT {} FROM connlog.events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
                schema::EVENT_COLUMNS
            ),
            [after, upto, limit],
        )?;
        while let Some(row) = rows.next()? {
            let method: i16 = row.try_get(8)?;
            let connection_method = u8::try_from(method)
                .ok()
                .and_then(ConnectionMethod::from_index)
                .with_context(|| format!("a stored event has connection method {method}"))?;
            let event = EventRef {
                id: row.try_get(1)?,
                time: row.try_get(2)?,
                organization_id: row.try_get(3)?,
                workspace_owner_id: row.try_get(4)?,
                workspace_id: row.try_get(5)?,
                workspace_name: row.try_get(6)?,
                agent_name: row.try_get(7)?,
                connection_method,
                code: row.try_get(9)?,
                ip: row.try_get(10)?,
                user_agent: row.try_get(11)?,
                user_id: row.try_get(12)?,
                app_name_or_port: row.try_get(13)?,
                connection_id: row.try_get(14)?,
                disconnect_reason: row.try_get(15)?,
                client_session_id: row.try_get(16)?,
                status: if row.try_get(17)? {
                    ConnectionStatus::Disconnected
                } else {
                    ConnectionStatus::Connected
                },
            };
            f(row.try_get(0)?, &event)?;
        }
        Ok(())
    }

    /// The id `initialise` gave this database's store.
    pub fn store_id(&mut self) -> anyhow::Result<String> {
        Ok(self
            .client
            .query_one("SELECT value FROM connlog.meta WHERE key = 'store_id'", &[])?
            .get(0))
    }

    /// Stores `events` durably (committed when this returns `Ok`), skipping any whose id is
    /// already stored, and tells the followers (`listen`).
    pub fn append(&mut self, events: &[ConnectionEvent]) -> anyhow::Result<Appended> {
        let mut appended = Appended::default();
        if events.is_empty() {
            return Ok(appended);
        }
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::APPEND_LOCK])?;
        let newest = "SELECT coalesce(max(seq), 0) FROM connlog.events";
        let before: i64 = tx.query_one(newest, &[])?.get(0);
        let columns = EventArrays::from(events);
        let inserted = tx.execute(
            &format!(
                "INSERT INTO connlog.events ({}) SELECT * FROM unnest($1::uuid[], \
                 $2::int8[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], \
                 $8::int2[], $9::int4[], $10::text[], $11::text[], $12::uuid[], $13::text[], \
                 $14::uuid[], $15::text[], $16::text[], $17::bool[]) \
                 ON CONFLICT (id) DO NOTHING",
                schema::EVENT_FIELDS
            ),
            &columns.params(),
        )?;
        if inserted > 0 {
            let after: i64 = tx.query_one(newest, &[])?.get(0);
            tx.execute("SELECT pg_notify($1, 'events')", &[&schema::CHANNEL])?;
            appended = Appended {
                own: Some((before, after)),
                highest: after,
            };
        } else {
            // Every one was stored already (by another replica): where, at the highest?
            appended.highest = tx
                .query_one(
                    "SELECT coalesce(max(seq), 0) FROM connlog.events WHERE id = ANY($1)",
                    &[&columns.id],
                )?
                .get(0);
        }
        tx.commit()?;
        Ok(appended)
    }

    /// Deletes every event of these rows (what a purge with `cutoff` removed), and tells
    /// the followers. When that deleted any, the purge generation moves on and the shared
    /// cutoff moves up to `cutoff`: every shared snapshot is stale then (each holds the
    /// rows), never fetched again, and deleted by the replicas that take the notice
    /// (`drop_stale_snapshots`; not here, where it could wait for an upload holding the
    /// row). Returns the new purge generation, if it deleted any (purges that do serialize
    /// on it, so the one before is this minus one).
    pub fn forget(
        &mut self,
        origins: &[RowOrigin],
        cutoff: Option<i64>,
    ) -> anyhow::Result<Option<i64>> {
        let mut ids = Vec::new();
        let (mut connections, mut workspaces, mut agents) = (Vec::new(), Vec::new(), Vec::new());
        for origin in origins {
            match origin {
                RowOrigin::SingleEvent(id) => ids.push(*id),
                RowOrigin::Session(k) => {
                    connections.push(k.connection_id);
                    workspaces.push(k.workspace_id);
                    agents.push(k.agent_name.as_str());
                }
            }
        }
        let mut tx = self.client.transaction()?;
        let singles = tx.execute("DELETE FROM connlog.events WHERE id = ANY($1)", &[&ids])?;
        let sessions = tx.execute(
            "DELETE FROM connlog.events e \
             USING unnest($1::uuid[], $2::uuid[], $3::text[]) AS k (c, w, a) \
             WHERE e.connection_id = k.c AND e.workspace_id = k.w AND e.agent_name = k.a",
            &[&connections, &workspaces, &agents],
        )?;
        if singles + sessions == 0 {
            // Gone already (a replica following another's purge): nothing to tell.
            return Ok(None);
        }
        if let Some(cutoff) = cutoff {
            tx.execute(
                "UPDATE connlog.meta SET value = greatest(value::bigint, $1)::text \
                 WHERE key = 'purge_cutoff'",
                &[&cutoff],
            )?;
        }
        let generation: i64 = tx
            .query_one(
                "UPDATE connlog.meta SET value = (value::bigint + 1)::text \
                 WHERE key = 'purges' RETURNING value::bigint",
                &[],
            )?
            .get(0);
        tx.execute("SELECT pg_notify($1, 'purge')", &[&schema::CHANNEL])?;
        tx.commit()?;
        Ok(Some(generation))
    }

    /// The purge generation and the latest cutoff of those purges (rows with an earlier
    /// connect time are gone), read together.
    pub fn purge_state(&mut self) -> anyhow::Result<(i64, i64)> {
        let row = self.client.query_one(
            "SELECT (SELECT value::bigint FROM connlog.meta WHERE key = 'purges'), \
                    (SELECT value::bigint FROM connlog.meta WHERE key = 'purge_cutoff')",
            &[],
        )?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Counts this connection among the running replicas (a shared session lock held while
    /// it lives), so that another can tell whether any runs (`agree_retention`).
    pub fn join_replicas(&mut self) -> anyhow::Result<()> {
        self.client.execute(
            "SELECT pg_advisory_lock_shared($1)",
            &[&schema::REPLICA_LOCK],
        )?;
        Ok(())
    }

    /// The retention every replica applies, in nanoseconds (0 keeps rows forever): `mine`
    /// becomes it when none is recorded yet, or when no other replica runs (a change of
    /// setting, made while the replicas are stopped). Returns the one recorded.
    pub fn agree_retention(&mut self, mine: u64) -> anyhow::Result<u64> {
        let mut tx = self.client.transaction()?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&schema::SETTINGS_LOCK],
        )?;
        let recorded: Option<String> = tx
            .query_opt(
                "SELECT value FROM connlog.meta WHERE key = 'retention_ns'",
                &[],
            )?
            .map(|row| row.get(0));
        let recorded = recorded
            .map(|value| value.parse::<u64>())
            .transpose()
            .context("connlog.meta holds a retention_ns that is not a number")?;
        if let Some(recorded) = recorded
            && recorded != mine
        {
            // An advisory lock on a bigint key shows as its two halves in pg_locks.
            let others: i64 = tx
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1 \
                     AND pid <> pg_backend_pid()",
                    &[&(schema::REPLICA_LOCK >> 32), &(schema::REPLICA_LOCK & 0xffff_ffff)],
                )?
                .get(0);
            if others > 0 {
                return Ok(recorded);
            }
        }
        tx.execute(
            "INSERT INTO connlog.meta (key, value) VALUES ('retention_ns', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&mine.to_string()],
        )?;
        tx.commit()?;
        Ok(mine)
    }

    /// Takes the retention lock if no other replica holds it; once taken, it is held until
    /// this connection ends.
    pub fn try_lead_retention(&mut self) -> anyhow::Result<bool> {
        Ok(self
            .client
            .query_one(
                "SELECT pg_try_advisory_lock($1)",
                &[&schema::RETENTION_LOCK],
            )?
            .get(0))
    }

    /// Subscribes this connection to appends and purges (`wait`).
    pub fn listen(&mut self) -> anyhow::Result<()> {
        self.client
            .batch_execute(&format!("LISTEN {}", schema::CHANNEL))?;
        Ok(())
    }

    /// Waits up to `timeout` for an append or a purge; returns what was notified
    /// (`events`, `purge`), all of it if several came.
    pub fn wait(&mut self, timeout: std::time::Duration) -> anyhow::Result<Vec<String>> {
        let mut notifications = self.client.notifications();
        let mut got: Vec<String> = notifications
            .timeout_iter(timeout)
            .next()?
            .into_iter()
            .map(|n| n.payload().to_owned())
            .collect();
        let mut pending = notifications.iter();
        while let Some(n) = pending.next()? {
            got.push(n.payload().to_owned());
        }
        Ok(got)
    }

    /// Rewrites the stored directory as `edit` says, given what is stored now (`None`: no
    /// directory yet), under a row lock: edits from different replicas apply one after the
    /// other, each to the other's result. Tells the followers; returns the new text and
    /// what `edit` returned.
    pub fn edit_directory<T, E: From<anyhow::Error>>(
        &mut self,
        edit: impl FnOnce(Option<&str>) -> Result<(String, T), E>,
    ) -> Result<(String, T), E> {
        let pg = |e: postgres::Error| E::from(anyhow::Error::from(e));
        let mut tx = self.client.transaction().map_err(pg)?;
        // The singleton row, locked; inserted first if missing so there is one to lock.
        tx.execute(
            "INSERT INTO connlog.directory (body) VALUES ('') ON CONFLICT DO NOTHING",
            &[],
        )
        .map_err(pg)?;
        let current: String = tx
            .query_one("SELECT body FROM connlog.directory FOR UPDATE", &[])
            .map_err(pg)?
            .get(0);
        let (text, out) = edit((!current.is_empty()).then_some(current.as_str()))?;
        tx.execute("UPDATE connlog.directory SET body = $1", &[&text])
            .map_err(pg)?;
        tx.execute("SELECT pg_notify($1, 'directory')", &[&schema::CHANNEL])
            .map_err(pg)?;
        tx.commit().map_err(pg)?;
        Ok((text, out))
    }

    /// The directory file's text, if one was stored.
    pub fn directory(&mut self) -> anyhow::Result<Option<String>> {
        Ok(self
            .client
            .query_opt("SELECT body FROM connlog.directory", &[])?
            .map(|r| r.get::<_, String>(0))
            .filter(|body| !body.is_empty()))
    }
}

/// Events as one array per column: an append is then one `INSERT … SELECT FROM unnest(…)`,
/// in the events' order.
struct EventArrays<'a> {
    id: Vec<Uuid>,
    time: Vec<i64>,
    organization_id: Vec<Uuid>,
    workspace_owner_id: Vec<Uuid>,
    workspace_id: Vec<Uuid>,
    workspace_name: Vec<&'a str>,
    agent_name: Vec<&'a str>,
    method: Vec<i16>,
    code: Vec<Option<i32>>,
    ip: Vec<Option<&'a str>>,
    user_agent: Vec<Option<&'a str>>,
    user_id: Vec<Option<Uuid>>,
    app_name_or_port: Vec<Option<&'a str>>,
    connection_id: Vec<Option<Uuid>>,
    disconnect_reason: Vec<Option<&'a str>>,
    client_session_id: Vec<Option<&'a str>>,
    disconnected: Vec<bool>,
}

impl<'a> From<&'a [ConnectionEvent]> for EventArrays<'a> {
    fn from(events: &'a [ConnectionEvent]) -> Self {
        let text = |f: &dyn Fn(&'a ConnectionEvent) -> &'a Option<String>| {
            events.iter().map(|e| f(e).as_deref()).collect()
        };
        Self {
            id: events.iter().map(|e| e.id).collect(),
            time: events.iter().map(|e| e.time).collect(),
            organization_id: events.iter().map(|e| e.organization_id).collect(),
            workspace_owner_id: events.iter().map(|e| e.workspace_owner_id).collect(),
            workspace_id: events.iter().map(|e| e.workspace_id).collect(),
            workspace_name: events.iter().map(|e| e.workspace_name.as_str()).collect(),
            agent_name: events.iter().map(|e| e.agent_name.as_str()).collect(),
            method: events
                .iter()
                .map(|e| i16::from(e.connection_method.index()))
                .collect(),
            code: events.iter().map(|e| e.code).collect(),
            ip: text(&|e| &e.ip),
            user_agent: text(&|e| &e.user_agent),
            user_id: events.iter().map(|e| e.user_id).collect(),
            app_name_or_port: text(&|e| &e.app_name_or_port),
            connection_id: events.iter().map(|e| e.connection_id).collect(),
            disconnect_reason: text(&|e| &e.disconnect_reason),
            client_session_id: text(&|e| &e.client_session_id),
            disconnected: events
                .iter()
                .map(|e| e.status == ConnectionStatus::Disconnected)
                .collect(),
        }
    }
}

impl EventArrays<'_> {
    /// In `schema::EVENT_FIELDS` order.
    fn params(&self) -> [&(dyn ToSql + Sync); 17] {
        [
            &self.id,
            &self.time,
            &self.organization_id,
            &self.workspace_owner_id,
            &self.workspace_id,
            &self.workspace_name,
            &self.agent_name,
            &self.method,
            &self.code,
            &self.ip,
            &self.user_agent,
            &self.user_id,
            &self.app_name_or_port,
            &self.connection_id,
            &self.disconnect_reason,
            &self.client_session_id,
            &self.disconnected,
        ]
    }
}

/// The events of an `import`, written as PostgreSQL's binary `COPY` stream.
pub struct EventWriter<'a> {
    copy: BinaryCopyInWriter<'a>,
}

impl EventWriter<'_> {
    pub fn write(&mut self, seq: i64, e: &EventRef<'_>) -> anyhow::Result<()> {
        let method = i16::from(e.connection_method.index());
        let disconnected = e.status == ConnectionStatus::Disconnected;
        let values: [&(dyn ToSql + Sync); 18] = [
            &seq,
            &e.id,
            &e.time,
            &e.organization_id,
            &e.workspace_owner_id,
            &e.workspace_id,
            &e.workspace_name,
            &e.agent_name,
            &method,
            &e.code,
            &e.ip,
            &e.user_agent,
            &e.user_id,
            &e.app_name_or_port,
            &e.connection_id,
            &e.disconnect_reason,
            &e.client_session_id,
            &disconnected,
        ];
        self.copy.write(&values)?;
        Ok(())
    }
}
