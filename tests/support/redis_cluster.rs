//! A real Redis Cluster for tests: six `redis-server` processes on free loopback ports (three
//! masters, each with one replica), joined with `redis-cli --cluster create`; a replica can be
//! promoted with `CLUSTER FAILOVER`. Every process is the test's own, stopped on drop.
//! Included with `#[path]` next to `redis_server.rs`.

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use super::redis_server::{RedisServer, free_port};

/// Three masters and three replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub port: u16,
    pub master: bool,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    /// Slot ranges served (masters).
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Start and join the six nodes; returns when every node sees a healthy cluster with
    /// every replica in sync.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                let bus = free_port().to_string();
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "3000",
                    "--cluster-port",
                    bus.as_str(),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "everysec",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("redis-cli --cluster create: {e}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_healthy();
        cluster
    }

    /// Wait (at most 60 s) until every node reports `cluster_state:ok`, sees six nodes and
    /// three masters with a synced replica each.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self.nodes.iter().all(|n| {
                let info = n.cli(&["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6")
            }) && {
                let nodes = self.topology();
                nodes.iter().filter(|n| n.master).count() == 3
                    && nodes.iter().filter(|n| !n.master).all(|r| {
                        self.server(r.port)
                            .cli(&["INFO", "replication"])
                            .contains("master_link_status:up")
                    })
            };
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL the fleet uses: every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    fn server(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// The cluster as the first node that answers sees it.
    pub fn topology(&self) -> Vec<Node> {
        let text = self
            .nodes
            .iter()
            .map(|n| n.cli(&["CLUSTER", "NODES"]))
            .find(|t| !t.trim().is_empty())
            .unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 8 {
                    return None;
                }
                let port = f[1].split('@').next()?.rsplit_once(':')?.1.parse().ok()?;
                let master = f[2].contains("master");
                let slots = f[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .filter_map(|s| match s.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => s.parse().ok().map(|x| (x, x)),
                    })
                    .collect();
                Some(Node {
                    id: f[0].to_string(),
                    port,
                    master,
                    master_id: (f[3] != "-").then(|| f[3].to_string()),
                    slots,
                })
            })
            .collect()
    }

    /// The slot of `key`.
    pub fn slot(&self, key: &str) -> u16 {
        self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("CLUSTER KEYSLOT {key}: {e}"))
    }

    /// The master serving `slot`.
    pub fn master_of(&self, slot: u16) -> Node {
        self.topology()
            .into_iter()
            .find(|n| n.master && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// Keys matching `pattern` stored on the node on `port`.
    pub fn keys_on(&self, port: u16, pattern: &str) -> Vec<String> {
        self.server(port)
            .cli(&["--scan", "--pattern", pattern])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `redis-cli -c` (following redirections) on the first node.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-c")
            .arg("-p")
            .arg(self.nodes[0].port().to_string())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("redis-cli: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Promote the replica of the master serving `slot` with `CLUSTER FAILOVER` (the replica
    /// catches up first, so no acknowledged write is lost); returns (old master, new master)
    /// ports once the cluster agrees.
    pub fn failover(&self, slot: u16) -> (u16, u16) {
        let master = self.master_of(slot);
        let replica = self
            .topology()
            .into_iter()
            .find(|n| n.master_id.as_deref() == Some(master.id.as_str()))
            .unwrap_or_else(|| panic!("the master on {} has no replica", master.port));
        let reply = self.server(replica.port).cli(&["CLUSTER", "FAILOVER"]);
        assert!(reply.contains("OK"), "CLUSTER FAILOVER: {reply}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.master_of(slot).port != replica.port {
            assert!(Instant::now() < deadline, "the failover did not complete");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_healthy();
        (master.port, replica.port)
    }
}
