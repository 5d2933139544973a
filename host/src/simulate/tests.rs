use std::collections::{HashMap, HashSet};

use connlog_vocabulary::{AppFamily, LegacyType, app_family, is_client_session_id};

use crate::model::{ConnectionEvent, ConnectionMethod, ConnectionStatus, LogFields, Uuid};

use super::deployment::{ADMIN_USERNAME, AUDITOR_USERNAME, organization_auditor_username};
use super::*;
use crate::directory::{Directory, ROLE_AUDITOR, ROLE_ORGANIZATION_AUDITOR, ROLE_OWNER};
use crate::events::{Parsed, event_to_line, parse_line};

fn small(seed: u64, events: u64) -> SimConfig {
    SimConfig {
        seed,
        events,
        ..SimConfig::default()
    }
}

fn deliveries(config: &SimConfig) -> (Deployment, Vec<Delivery>, Summary) {
    let deployment = Deployment::generate(config).unwrap();
    let mut traffic = Traffic::new(&deployment, config);
    let deliveries: Vec<_> = std::iter::from_fn(|| traffic.next_delivery()).collect();
    let summary = traffic.summary().clone();
    (deployment, deliveries, summary)
}

fn run(config: &SimConfig) -> (Deployment, Vec<ConnectionEvent>, Summary) {
    let (deployment, deliveries, summary) = deliveries(config);
    let events = deliveries.into_iter().map(|d| d.event).collect();
    (deployment, events, summary)
}

/// Agent-reported events carry a connection id; web and tunnel events never do.
fn is_web(e: &ConnectionEvent) -> bool {
    e.connection_id.is_none()
}

#[test]
fn same_seed_same_everything() {
    let config = small(42, 3000);
    let (d1, e1, s1) = run(&config);
    let (d2, e2, s2) = run(&config);
    assert_eq!(d1.directory.to_json(), d2.directory.to_json());
    assert_eq!(d1.workspaces, d2.workspaces);
    assert_eq!(e1, e2);
    assert_eq!(s1, s2);
}

#[test]
fn different_seed_different_data() {
    let (d1, e1, _) = run(&small(1, 500));
    let (d2, e2, _) = run(&small(2, 500));
    assert_ne!(d1.directory.to_json(), d2.directory.to_json());
    assert_ne!(e1, e2);
    // The traffic has its own stream: more events do not change the directory.
    let (d3, _, _) = run(&small(1, 900));
    assert_eq!(d1.directory.to_json(), d3.directory.to_json());
}

#[test]
fn default_run_delivers_exactly_the_budget_in_the_window() {
    let config = SimConfig::default();
    let (_, events, summary) = run(&config);
    assert_eq!(events.len() as u64, config.events);
    assert_eq!(summary.events, config.events);
    for e in &events {
        assert!(e.time >= config.start && e.time < config.end(), "{e:?}");
    }
    // The traffic spans the window: the first and last days both have events.
    let day = 86_400 * 1_000_000_000_i64;
    assert!(summary.first_time.unwrap() < config.start + day);
    assert!(summary.last_time.unwrap() > config.end() - day);
}

#[test]
fn exact_budget_for_tiny_runs() {
    for n in [0, 1, 2, 3, 7] {
        let (_, events, summary) = run(&small(3, n));
        assert_eq!(events.len() as u64, n);
        assert_eq!(summary.events, n);
    }
}

#[test]
fn mix_has_every_method_registry_apps_of_both_families_and_raw_spellings() {
    let (_, events, summary) = run(&SimConfig::default());
    for method in ConnectionMethod::ALL {
        assert!(
            summary.by_method.get(&method).copied().unwrap_or(0) > 0,
            "no {method} in {:?}",
            summary.by_method
        );
    }
    for t in LegacyType::ALL {
        assert!(
            summary.by_type.get(t.as_str()).copied().unwrap_or(0) > 0,
            "no type {t}"
        );
    }
    let apps: HashMap<String, u64> = summary.apps().into_iter().collect();
    // Registry apps of both families beyond the family names, Zed, and an unregistered app.
    for app in [
        "vscode",
        "cursor",
        "windsurf",
        "jetbrains",
        "intellij",
        "pycharm",
        "goland",
        "zed",
        "emacs_tramp",
    ] {
        assert!(
            apps.get(app).copied().unwrap_or(0) > 0,
            "no {app} in {apps:?}"
        );
    }
    let registered_ides = |family| apps.keys().filter(|a| app_family(a) == family).count();
    assert!(registered_ides(AppFamily::Vscode) >= 8, "{apps:?}");
    assert!(registered_ides(AppFamily::Jetbrains) >= 8, "{apps:?}");
    // Some apps are sent in another spelling, for the plugin to normalise.
    assert!(
        summary
            .by_app
            .keys()
            .any(|raw| raw.contains(|c: char| c.is_ascii_uppercase()))
    );
    // SSH without an app, and web terminals with and without one.
    let has = |f: &dyn Fn(&ConnectionEvent) -> bool| events.iter().any(f);
    assert!(has(
        &|e| e.connection_method == ConnectionMethod::Ssh && e.app_name_or_port.is_none()
    ));
    assert!(has(&|e| e.connection_method
        == ConnectionMethod::ReconnectingPty
        && e.app_name_or_port.is_some()));
    assert!(has(&|e| e.connection_method
        == ConnectionMethod::ReconnectingPty
        && e.app_name_or_port.is_none()));
    assert!(summary.to_string().contains("events by method:"));
}

/// A client session's id is shared by its connections (an IDE's SSH connections and port
/// forwards) and repeated on their disconnects; agent-reported port forwards have a
/// connection id, a connect and a disconnect, and no app.
#[test]
fn client_sessions_and_agent_port_forwards() {
    let (_, events, summary) = run(&SimConfig::default());
    let mut by_csid: HashMap<&str, HashSet<Uuid>> = HashMap::new();
    let mut by_connection: HashMap<Uuid, HashSet<Option<&str>>> = HashMap::new();
    let mut forward_statuses = HashSet::new();
    let mut ide_with_forward = 0;
    for e in &events {
        if let Some(csid) = e.client_session_id.as_deref() {
            assert!(is_client_session_id(csid), "{csid:?}");
            assert!(!is_web(e), "a web event with a client session id: {e:?}");
            by_csid
                .entry(csid)
                .or_default()
                .insert(e.connection_id.unwrap());
        }
        if let Some(c) = e.connection_id {
            by_connection
                .entry(c)
                .or_default()
                .insert(e.client_session_id.as_deref());
            if e.connection_method == ConnectionMethod::PortForwarding {
                assert_eq!(e.app_name_or_port, None, "{e:?}");
                assert!(e.client_session_id.is_some(), "{e:?}");
                forward_statuses.insert(e.status);
            }
        }
    }
    // Every connection keeps one client session id across its connect and disconnect.
    assert!(by_connection.values().all(|ids| ids.len() == 1));
    let shared: Vec<_> = by_csid.values().filter(|c| c.len() > 1).collect();
    assert!(
        shared.len() > 20,
        "{} shared client session ids",
        shared.len()
    );
    let method_of: HashMap<Uuid, ConnectionMethod> = events
        .iter()
        .filter_map(|e| Some((e.connection_id?, e.connection_method)))
        .collect();
    for connections in by_csid.values() {
        let methods: HashSet<ConnectionMethod> = connections.iter().map(|c| method_of[c]).collect();
        ide_with_forward += usize::from(methods.len() > 1);
    }
    assert!(
        ide_with_forward > 10,
        "{ide_with_forward} sessions mixing SSH and port forwards"
    );
    assert_eq!(
        forward_statuses,
        HashSet::from([ConnectionStatus::Connected, ConnectionStatus::Disconnected])
    );
    assert!(summary.agent_port_forwards > 0);
    assert_eq!(summary.client_sessions as usize, by_csid.len());
}

/// About a tenth of the traffic comes in the seed's lines, made only of what they carry;
/// every delivery reads back exactly from its own line.
#[test]
fn legacy_lines_are_a_share_and_carry_everything_they_hold() {
    let (_, deliveries, summary) = deliveries(&SimConfig::default());
    let legacy: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| d.fields == LogFields::Seed)
        .collect();
    assert_eq!(legacy.len() as u64, summary.legacy_lines);
    let share = legacy.len() as f64 / deliveries.len() as f64;
    assert!((0.06..0.14).contains(&share), "legacy share {share}");
    let mut legacy_methods = HashSet::new();
    for d in &legacy {
        let e = &d.event;
        legacy_methods.insert(e.connection_method);
        assert_eq!(e.client_session_id, None, "{e:?}");
        if e.connection_method.is_terminal() {
            assert!(
                matches!(
                    e.app_name_or_port.as_deref(),
                    None | Some("vscode" | "jetbrains")
                ),
                "{e:?}"
            );
        }
        assert!(
            !(e.connection_method == ConnectionMethod::PortForwarding && e.connection_id.is_some()),
            "an agent port forward in a legacy line: {e:?}"
        );
        assert!(d.line().contains("\"Type\":"), "{}", d.line());
    }
    assert!(legacy_methods.len() >= 5, "{legacy_methods:?}");
    for d in &deliveries {
        assert_eq!(
            parse_line(&d.line()),
            Ok(Parsed::Event(d.event.clone())),
            "{}",
            d.line()
        );
    }
}

#[test]
fn connection_ids_and_user_ids_follow_the_rules() {
    let (deployment, events, _) = run(&SimConfig::default());
    let dir = &deployment.directory;
    let mut codes: HashMap<ConnectionMethod, HashSet<i32>> = HashMap::new();
    let mut localhost = 0;
    for e in &events {
        if is_web(e) {
            assert!(!e.connection_method.is_terminal(), "{e:?}");
            assert_eq!(e.client_session_id, None, "{e:?}");
            assert_eq!(e.status, ConnectionStatus::Connected);
            let user = e.user_id.expect("web events carry a user");
            let member = dir.member(user).expect("a known user");
            assert!(
                member.organization_roles.contains_key(&e.organization_id),
                "user not in the org: {e:?}"
            );
            if member.user.deleted {
                assert!(
                    e.time < member.user.updated_at,
                    "a deleted user acted after deletion"
                );
            }
            assert!(e.user_agent.is_some() && e.code.is_some());
            codes
                .entry(e.connection_method)
                .or_default()
                .insert(e.code.unwrap());
            let ip = e.ip.as_deref().unwrap();
            assert!(
                ip == "localhost" || ip.parse::<std::net::Ipv4Addr>().is_ok(),
                "{ip}"
            );
            match e.connection_method {
                ConnectionMethod::Tunnel => {
                    assert!(e.user_agent.as_deref().unwrap().starts_with("coder-cli/"));
                    assert_eq!(e.app_name_or_port, None);
                }
                ConnectionMethod::PortForwarding => {
                    e.app_name_or_port
                        .as_deref()
                        .unwrap()
                        .parse::<u16>()
                        .unwrap();
                }
                _ => assert!(e.app_name_or_port.is_some()),
            }
        } else {
            assert!(e.connection_id.is_some_and(|c| !c.is_nil()), "{e:?}");
            assert!(
                e.connection_method.is_terminal()
                    || e.connection_method == ConnectionMethod::PortForwarding
            );
            assert_eq!((e.user_id, &e.user_agent), (None, &None));
            match e.status {
                ConnectionStatus::Connected => {
                    assert_eq!((e.code, &e.disconnect_reason), (None, &None))
                }
                ConnectionStatus::Disconnected => assert!(e.code.is_some()),
            }
            let ip = e.ip.as_deref().unwrap();
            assert!(
                ip == "localhost" || ip.starts_with("fd7a:115c:a1e0:"),
                "{ip}"
            );
        }
        localhost += usize::from(e.ip.as_deref() == Some("localhost"));
        // Workspace identity is consistent with the deployment.
        let ws = deployment
            .workspaces
            .iter()
            .find(|w| w.id == e.workspace_id)
            .unwrap();
        assert_eq!(
            (ws.owner_id, ws.organization_id, &ws.name),
            (e.workspace_owner_id, e.organization_id, &e.workspace_name)
        );
        assert!(ws.agents.iter().any(|a| a.name == e.agent_name));
    }
    assert!(localhost > 0);
    let apps = &codes[&ConnectionMethod::WorkspaceApp];
    assert_eq!(codes[&ConnectionMethod::Tunnel], HashSet::from([101, 403]));
    for code in [200, 403, 404, 502] {
        assert!(apps.contains(&code), "{code}");
    }
    assert!(apps.contains(&302) || apps.contains(&303));
}

/// Rebuilds rows the way the plugin does, to check the summary's promises.
#[test]
fn summary_predicts_rows_duplicates_and_ongoing_sessions() {
    let config = SimConfig {
        events: 30_000,
        ..SimConfig::default()
    };
    let (_, events, summary) = run(&config);
    let mut ids = HashSet::new();
    let mut duplicates = 0;
    // Connect seen, disconnect seen, SSH or web terminal (only those match `status:`).
    let mut sessions: HashMap<(Uuid, Uuid, String), (bool, bool, bool)> = HashMap::new();
    let mut web = 0;
    let mut disconnect_first = 0;
    for e in &events {
        if !ids.insert(e.id) {
            duplicates += 1;
            continue;
        }
        if is_web(e) {
            web += 1;
            continue;
        }
        let key = (
            e.connection_id.unwrap(),
            e.workspace_id,
            e.agent_name.clone(),
        );
        let terminal = e.connection_method.is_terminal();
        let entry = sessions.entry(key).or_insert((false, false, terminal));
        match e.status {
            ConnectionStatus::Connected => entry.0 = true,
            ConnectionStatus::Disconnected => {
                if !entry.0 {
                    disconnect_first += 1;
                }
                entry.1 = true;
            }
        }
    }
    assert_eq!(duplicates, summary.duplicates);
    assert_eq!(web, summary.web_events);
    assert_eq!(sessions.len() as u64, summary.agent_sessions);
    assert_eq!(sessions.len() as u64 + web, summary.expected_rows());
    let ongoing = sessions.values().filter(|(_, d, t)| !d && *t).count() as u64;
    assert_eq!(ongoing, summary.expected_ongoing());
    assert!(
        sessions.values().all(|(c, _, _)| *c),
        "every session has its connect"
    );
    assert!(
        disconnect_first > 0,
        "some disconnects arrive before their connect"
    );
    // The shares are roughly as asked.
    let lost = summary.lost_disconnects as f64 / summary.agent_sessions as f64;
    assert!((0.015..0.05).contains(&lost), "lost share {lost}");
    let dup = summary.duplicates as f64 / summary.events as f64;
    assert!((0.01..0.03).contains(&dup), "duplicate share {dup}");
    assert!(summary.to_string().contains("expected rows:"));
}

// `while let` so that the traffic can be asked about itself between events.
#[allow(clippy::while_let_on_iterator)]
#[test]
fn no_losses_duplicates_or_reordering_when_shares_are_zero() {
    let config = SimConfig {
        events: 5000,
        lost_disconnect_share: 0.0,
        duplicate_share: 0.0,
        reorder_share: 0.0,
        ..SimConfig::default()
    };
    let deployment = Deployment::generate(&config).unwrap();
    let mut traffic = Traffic::new(&deployment, &config);
    let mut last = i64::MIN;
    let mut ids = HashSet::new();
    while let Some(e) = traffic.next() {
        // Without reordering, delivery order is time order.
        assert!(e.time >= last);
        last = e.time;
        assert!(ids.insert(e.id));
    }
    let s = traffic.summary();
    assert_eq!((s.duplicates, s.reordered, s.lost_disconnects), (0, 0, 0));
}

#[test]
fn deployment_has_every_kind_of_user() {
    let config = SimConfig::default();
    let deployment = Deployment::generate(&config).unwrap();
    let dir = &deployment.directory;
    assert_eq!(dir.organizations().len(), 3);
    assert_eq!(dir.members().len(), 40);
    assert_eq!(deployment.workspaces.len(), 60);
    assert!(
        dir.actor_for(ADMIN_USERNAME)
            .unwrap()
            .site_roles
            .contains(&ROLE_OWNER.to_owned())
    );
    assert!(
        dir.actor_for(AUDITOR_USERNAME)
            .unwrap()
            .site_roles
            .contains(&ROLE_AUDITOR.to_owned())
    );
    for org in dir.organizations() {
        let actor = dir
            .actor_for(&organization_auditor_username(&org.name))
            .unwrap();
        assert_eq!(
            actor
                .organization_roles
                .iter()
                .find(|(id, _)| *id == org.id)
                .unwrap()
                .1,
            vec![ROLE_ORGANIZATION_AUDITOR.to_owned()]
        );
        assert!(dir.members_of(org.id).filter(|m| !m.user.deleted).count() >= 2);
    }
    let users: Vec<_> = dir.users().collect();
    assert!(users.iter().any(|u| u.deleted));
    assert!(users.iter().any(|u| u.status == "suspended"));
    // A deleted user's username taken over by a live user.
    let reused = users.iter().find(|u| u.deleted).unwrap();
    let same_name: Vec<_> = dir.users_named(&reused.username).collect();
    assert_eq!(same_name.len(), 2);
    assert!(same_name.iter().any(|u| !u.deleted));
    // Workspaces: owners are live members of the workspace's organization; names unique per owner.
    let mut names = HashSet::new();
    for ws in &deployment.workspaces {
        let owner = dir.member(ws.owner_id).unwrap();
        assert!(!owner.user.deleted);
        assert!(owner.organization_roles.contains_key(&ws.organization_id));
        assert!(names.insert((ws.owner_id, ws.name.clone())));
        assert!(!ws.agents.is_empty() && !ws.apps.is_empty() && !ws.ports.is_empty());
    }
    // The directory survives its own file format.
    let back = Directory::from_json(&dir.to_json(), std::path::Path::new("d.json")).unwrap();
    assert_eq!(&back, dir);
}

#[test]
fn odd_sizes_work() {
    for (orgs, users, workspaces) in [(1, 1, 1), (5, 3, 2), (12, 200, 500), (1, 11, 1)] {
        let config = SimConfig {
            orgs,
            users,
            workspaces,
            events: 2000,
            ..SimConfig::default()
        };
        let (d, events, _) = run(&config);
        assert_eq!(d.directory.organizations().len(), orgs);
        assert_eq!(d.directory.members().len(), users);
        assert_eq!(events.len(), 2000);
    }
    assert!(
        SimConfig {
            days: 0,
            ..SimConfig::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        SimConfig {
            duplicate_share: 1.5,
            ..SimConfig::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        Deployment::generate(&SimConfig {
            orgs: 0,
            ..SimConfig::default()
        })
        .is_err()
    );
}

#[test]
fn events_survive_the_current_input_format() {
    let (_, events, _) = run(&small(9, 2000));
    for e in &events {
        assert_eq!(parse_line(&event_to_line(e)), Ok(Parsed::Event(e.clone())));
    }
}

#[test]
fn start_ending_today() {
    let now = crate::events::parse_time("2025-07-10T10:14:38Z").unwrap();
    let start = SimConfig::start_ending_today(now, 30);
    assert_eq!(crate::events::format_time(start), "2025-06-10T00:00:00Z");
}

#[allow(clippy::while_let_on_iterator)]
#[test]
fn a_million_events_stream_quickly_in_bounded_memory() {
    let config = SimConfig {
        events: 1_000_000,
        ..SimConfig::default()
    };
    let deployment = Deployment::generate(&config).unwrap();
    let started = std::time::Instant::now();
    let mut traffic = Traffic::new(&deployment, &config);
    assert_eq!(traffic.total_events(), 1_000_000);
    assert_eq!(traffic.len(), 1_000_000);
    let mut count = 0u64;
    let mut last_delivery = i64::MIN;
    while let Some(e) = traffic.next() {
        count += 1;
        std::hint::black_box(&e);
        let d = traffic.sim_time().unwrap();
        assert!(d >= last_delivery, "deliveries come in order");
        last_delivery = d;
    }
    let elapsed = started.elapsed();
    assert_eq!(count, 1_000_000);
    assert_eq!(traffic.pending(), 0);
    // Only sessions in flight are held: a small fraction of the run.
    assert!(
        traffic.max_pending() < 20_000,
        "max pending {}",
        traffic.max_pending()
    );
    // Generous for unoptimised test builds on a busy machine; a release build takes well under a second.
    assert!(elapsed.as_secs() < 60, "took {elapsed:?}");
    eprintln!(
        "1M events in {elapsed:?}, max pending {}",
        traffic.max_pending()
    );
}
