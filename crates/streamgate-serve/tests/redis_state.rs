//! The Redis backend against a real `redis-server` (Debian's; `scripts/setup.sh --peers`
//! installs it), started on a free port with nothing saved to disk. Two `RedisState`s stand
//! for two nodes.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use streamgate_core::detection::{UsageEvent, Window};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::IpBlocklist;
use streamgate_core::sessions::{AtLimit, BeatKind, Heartbeat, Revocation, Verdict, Viewer};
use streamgate_serve::state::redis::RedisState;
use streamgate_serve::state::State;

/// A redis-server of this test's own, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Server {
        // The probe listener is closed before redis-server binds the port.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Server::start_on(port)
    }

    fn start_on(port: u16) -> Server {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is missing: scripts/setup.sh --peers installs it");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "redis-server exited (port {port} taken?)");
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, url: format!("redis://127.0.0.1:{port}/") }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn beat(sid: &str, now: i64, limit: u32) -> Heartbeat {
    Heartbeat {
        sid: sid.into(),
        kind: BeatKind::Start,
        ids: vec!["jti-1".into()],
        limit: Some(limit),
        now,
        idle: 60,
        at_limit: AtLimit::RejectNew,
        viewer: Viewer::default(),
        record: UsageEvent { at: now, sid: sid.into(), token: "jti-1".into(), ..UsageEvent::default() },
        shape: None,
    }
}

async fn nodes(server: &Server) -> (RedisState, RedisState) {
    (RedisState::connect(&server.url, 3_600).await.unwrap(), RedisState::connect(&server.url, 3_600).await.unwrap())
}

/// `count` session starts on token `jti-1` at `now` under `limit`, all at once, taking
/// turns between nodes `a` and `b`: their answers, in order.
async fn parallel_starts(
    (a, b): (&std::sync::Arc<RedisState>, &std::sync::Arc<RedisState>),
    count: usize,
    limit: u32,
    now: i64,
) -> Vec<Result<Verdict, String>> {
    let mut tasks = Vec::new();
    for i in 0..count {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let sid = format!("s{i}");
            node.update_hub("jti:jti-1", now, |hub| hub.heartbeat(beat(&sid, now, limit))).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().map_err(|error| error.0));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_starts_through_two_nodes_admit_exactly_the_limit() {
    let server = Server::start();
    let (a, b) = nodes(&server).await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let now = 1_000;
    let verdicts: Vec<Verdict> = parallel_starts((&a, &b), 40, 3, now).await.into_iter().map(Result::unwrap).collect();
    let admitted = verdicts.iter().filter(|v| matches!(v, Verdict::Admitted { .. })).count();
    let full = verdicts.iter().filter(|v| **v == Verdict::Full { limit: 3, active: 3 }).count();
    assert_eq!((admitted, full), (3, 37), "{verdicts:?}");

    // Both nodes read the same hub: three sessions, nothing left pending.
    let hub = b.hub("jti:jti-1").await.unwrap();
    assert_eq!(hub.list.sessions.len(), 3);
    assert!(hub.pending.is_empty(), "pending records went to the usage log");
    assert_eq!(a.hub("jti:jti-1").await.unwrap(), hub);

    // Exactly the admitted sessions left usage records, oldest first, in the window only.
    let (records, truncated) = a.usage(Window::new(now, now + 1), 10).await.unwrap();
    let mut sids: Vec<&str> = records.iter().map(|r| r.sid.as_str()).collect();
    sids.sort_unstable();
    let mut expected: Vec<&str> = hub.list.sessions.iter().map(|s| s.sid.as_str()).collect();
    expected.sort_unstable();
    assert_eq!((sids, truncated), (expected, false));
    assert!(b.usage(Window::new(now, now + 1), 2).await.unwrap().1, "a third record is past the limit");
    assert!(b.usage(Window::new(now + 1, now + 100), 10).await.unwrap().0.is_empty());

    // A revocation recorded in the hub ends its sessions for every node.
    let revocation = Revocation { id: "jti-1".into(), until: None, at: now };
    a.update_hub("jti:jti-1", now, |hub| hub.set_revoked(revocation.clone(), true)).await.unwrap();
    let verdict = b.update_hub("jti:jti-1", now, |hub| hub.heartbeat(beat("s0", now, 3))).await.unwrap();
    assert_eq!(verdict, Verdict::Revoked { id: "jti-1".into() });
}

/// Regression (review): every start, even one refused as full, writes the hub, and an
/// update that lost its compare-and-set 100 times in a row failed as a store error, which
/// `onStoreError: open` admits uncounted: a flood of parallel starts on one token got
/// sessions past its limit. Starts on one node now take turns per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_parallel_starts_never_fails_the_update() {
    let server = Server::start();
    let (a, b) = nodes(&server).await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let (mut admitted, mut failed) = (0, Vec::new());
    for answer in parallel_starts((&a, &b), 400, 1, 1_000).await {
        match answer {
            Ok(Verdict::Admitted { .. }) => admitted += 1,
            Ok(_) => {}
            Err(error) => failed.push(error),
        }
    }
    assert!(failed.is_empty(), "{} updates failed, the first: {:?}", failed.len(), failed.first());
    assert_eq!(admitted, 1);
}

#[tokio::test]
async fn revocations_and_blocks_written_by_one_node_are_read_by_the_other_and_lapse() {
    let server = Server::start();
    let (a, b) = nodes(&server).await;
    let ids = vec!["jti-1".to_owned(), "jti-2".to_owned(), "fp-3".to_owned()];
    a.revoke("jti-1", None, 0).await.unwrap();
    a.revoke("jti-2", Some(50), 0).await.unwrap();
    a.revoke("fp-3", Some(5), 10).await.unwrap();
    assert_eq!(b.revoked(&ids, 49).await.unwrap(), ids[..2].to_vec(), "fp-3 had lapsed when it was revoked");
    assert_eq!(b.revoked(&ids, 50).await.unwrap(), vec!["jti-1".to_owned()]);
    b.unrevoke("jti-1", 60).await.unwrap();
    assert!(a.revoked(&ids, 60).await.unwrap().is_empty());
    assert!(a.revoked(&[], 60).await.unwrap().is_empty());

    let range = IpRange::parse("192.0.2.0/24").unwrap();
    let other = IpRange::parse("2001:db8::/32").unwrap();
    a.block(range, None, 0).await.unwrap();
    a.block(other, Some(20), 0).await.unwrap();
    a.block_referrer("pirate.test", Some(20), 0).await.unwrap();
    let blocks = b.blocks(10).await.unwrap();
    assert!(blocks.lookup.is_blocked("192.0.2.9".parse().unwrap(), 10));
    assert!(blocks.lookup.is_blocked("2001:db8::1".parse().unwrap(), 10));
    assert_eq!(blocks.referrers, vec!["pirate.test".to_owned()]);
    let later = b.blocks(20).await.unwrap();
    assert!(!later.lookup.is_blocked("2001:db8::1".parse().unwrap(), 20), "the block lapsed");
    assert!(later.referrers.is_empty(), "the referrer block lapsed");
    b.unblock(range, 30).await.unwrap();
    b.unblock_referrer("pirate.test", 30).await.unwrap();
    assert!(a.blocks(30).await.unwrap().lookup.is_empty());
}

#[tokio::test]
async fn a_failed_redis_is_an_error_never_an_answer() {
    let mut server = Server::start();
    let (a, _) = nodes(&server).await;
    a.revoke("jti-1", None, 0).await.unwrap();
    server.stop();
    let started = Instant::now();
    let ids = vec!["jti-1".to_owned()];
    let error = a.revoked(&ids, 1).await.unwrap_err();
    assert!(error.0.starts_with("redis"), "{error}");
    assert!(a.update_hub("jti:jti-1", 1, |hub| hub.heartbeat(beat("s", 1, 3))).await.is_err());
    assert!(a.blocks(1).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3), "failures are quick: {:?}", started.elapsed());

    // Redis back (empty: nothing is saved in these tests): the same node connects again.
    let port = server.url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap();
    let _again = Server::start_on(port);
    assert_eq!(a.revoked(&ids, 1).await.unwrap(), Vec::<String>::new());
}

/// A change drops the entries that lapsed, in one script with setting its own: a field
/// another node sets meanwhile is never dropped as lapsed (the read and the deletes were
/// two round trips). What streamgate did not write counts as in force and stays.
#[tokio::test]
async fn a_change_drops_lapsed_entries_and_keeps_the_rest() {
    let server = Server::start();
    let (a, b) = nodes(&server).await;
    let lapsing = IpRange::parse("192.0.2.0/24").unwrap();
    a.block(lapsing, Some(20), 0).await.unwrap();
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for (field, value) in [("198.51.100.0/24", "soon"), ("203.0.113.0/24", "100")] {
        redis::cmd("HSET").arg("streamgate:blocks").arg(field).arg(value).query_async::<()>(&mut conn).await.unwrap();
    }
    b.block(IpRange::parse("2001:db8::/32").unwrap(), None, 30).await.unwrap();
    let fields: std::collections::BTreeMap<String, String> =
        redis::cmd("HGETALL").arg("streamgate:blocks").query_async(&mut conn).await.unwrap();
    let kept: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(kept, ["198.51.100.0/24", "2001:db8::/32", "203.0.113.0/24"], "{fields:?}");
    assert!(a.blocks(30).await.unwrap().lookup.is_blocked("198.51.100.1".parse().unwrap(), 30));
}

#[tokio::test]
async fn a_hub_key_holding_something_else_is_an_error() {
    let server = Server::start();
    let (a, _) = nodes(&server).await;
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HSET")
        .arg("streamgate:hub:jti:x")
        .arg("state")
        .arg("not json")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let error = a.update_hub("jti:x", 1, |hub| hub.heartbeat(beat("s", 1, 3))).await.unwrap_err();
    assert!(error.0.contains("does not hold a session hub"), "{error}");
}
