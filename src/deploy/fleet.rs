//! An environment's hosts: one [`Runtime`] per host, behind one router. The deployer sees the
//! fleet as one place: every host's instances in host order (so a rollout that retires the
//! oldest first moves host by host), records and images on every host, and instances placed
//! host by host.

use std::sync::Arc;

use futures_util::future::join_all;

use super::runtime::{Container, Record, Runtime, RuntimeError};

/// The hosts of one environment, in the order the pipeline lists them.
pub struct Fleet {
    hosts: Vec<Arc<dyn Runtime>>,
}

impl Fleet {
    /// A fleet of `hosts` (at least one).
    pub fn new(hosts: Vec<Arc<dyn Runtime>>) -> Fleet {
        Fleet { hosts }
    }

    /// The hosts, in order.
    pub fn hosts(&self) -> &[Arc<dyn Runtime>] {
        &self.hosts
    }

    /// The host with address `host` (a container's [`Container::host`]).
    pub fn on(&self, host: &str) -> Result<&dyn Runtime, RuntimeError> {
        self.hosts
            .iter()
            .find(|h| h.address() == host)
            .map(|h| &**h)
            .ok_or_else(|| {
                RuntimeError::new(
                    "find the host",
                    host,
                    std::io::Error::other("it is not one of the environment's hosts any more"),
                )
            })
    }

    /// Where instance `n` (from 1) of a revision runs, with `per_host` instances on each
    /// host: the first `per_host` on the first host, and so on, round again past the last.
    pub fn place(&self, n: usize, per_host: usize) -> &dyn Runtime {
        let index = (n.saturating_sub(1) / per_host.max(1)) % self.hosts.len();
        &*self.hosts[index]
    }

    /// The position of `host` in the fleet (hosts not in it last).
    pub fn index(&self, host: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.address() == host)
            .unwrap_or(usize::MAX)
    }

    /// Every host's service instances, host by host, each host's by revision then name.
    pub async fn containers(&self, app: &str, env: &str) -> Result<Vec<Container>, RuntimeError> {
        let lists = join_all(self.hosts.iter().map(|h| h.containers(app, env))).await;
        let mut all = Vec::new();
        for list in lists {
            all.extend(list?);
        }
        Ok(all)
    }

    /// The deploy records, oldest first: every host keeps them all, so a host that joined
    /// later, or missed one while it was unreachable, does not hide the others'.
    pub async fn records(&self, app: &str, env: &str) -> Result<Vec<Record>, RuntimeError> {
        let lists = join_all(self.hosts.iter().map(|h| h.records(app, env))).await;
        let mut merged: Vec<Record> = Vec::new();
        for list in lists {
            for record in list? {
                if !merged.iter().any(|r| r.revision == record.revision) {
                    merged.push(record);
                }
            }
        }
        merged.sort_by_key(|r| r.revision);
        Ok(merged)
    }

    /// Records an attempt on every host; the hosts that could not, with why.
    pub async fn add_record(&self, app: &str, env: &str, record: &Record) -> Vec<RuntimeError> {
        join_all(self.hosts.iter().map(|h| h.add_record(app, env, record)))
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect()
    }

    /// Checks every host at once; every one that cannot take a deploy, with why.
    pub async fn preflight(&self) -> Vec<RuntimeError> {
        join_all(self.hosts.iter().map(|h| h.preflight()))
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect()
    }

    /// Makes `image` present on every host.
    pub async fn ensure_image(
        &self,
        image: &str,
        credentials: Option<(String, String)>,
    ) -> Result<(), RuntimeError> {
        let results = join_all(
            self.hosts
                .iter()
                .map(|h| h.ensure_image(image, credentials.clone())),
        )
        .await;
        results.into_iter().collect()
    }

    /// Removes a container from its host.
    pub async fn remove(&self, container: &Container) -> Result<(), RuntimeError> {
        self.on(&container.host)?.remove(&container.name).await
    }
}
