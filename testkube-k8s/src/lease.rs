//! Leader election with a `coordination.k8s.io/v1` Lease, so that two
//! agent replicas never run the same TestWorkflowExecution: only the
//! holder of the Lease runs the controller.
//!
//! The protocol is client-go's: the holder renews `renewTime` every third
//! of `leaseDurationSeconds`; a candidate takes the Lease over only when
//! it is free or its `renewTime` is older than the duration, and every
//! write carries the `resourceVersion` it read, so of two candidates
//! racing, the API server lets one win (the other gets 409 Conflict). A
//! holder that cannot renew within the duration steps down
//! ([`Leadership::lost`]), before a candidate may take over. A holder
//! that stops cleanly releases the Lease, so a standby takes over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// Competes for one Lease under one identity.
#[derive(Clone)]
pub struct LeaderElector {
    leases: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

/// Holding the Lease: renewed on a task of its own until dropped or
/// [`Leadership::release`]d.
#[derive(Debug)]
pub struct Leadership {
    elector: LeaderElector,
    lost: watch::Receiver<bool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl LeaderElector {
    /// Competes for the Lease `name` in `namespace` as `identity` (unique
    /// per replica, e.g. the pod name), with a 15 s lease.
    #[must_use]
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        LeaderElector {
            leases: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration: Duration::from_secs(15),
        }
    }

    /// How long the Lease holds without renewal (at least 1 s).
    #[must_use]
    pub fn with_lease_duration(mut self, duration: Duration) -> Self {
        self.duration = duration.max(Duration::from_secs(1));
        self
    }

    /// This replica's identity.
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Waits until this replica holds the Lease, trying again every third
    /// of the lease duration: a Lease held by another replica, a lost
    /// race (409) and API errors (logged) all wait for the next try.
    pub async fn acquire(&self) -> Leadership {
        loop {
            match self.try_acquire().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(lease = %self.name, "cannot read or write the Lease: {err}")
                }
            }
            tokio::time::sleep(self.duration / 3).await;
        }
        tracing::info!(lease = %self.name, identity = %self.identity, "holding the Lease");
        let (lost_tx, lost) = watch::channel(false);
        let elector = self.clone();
        let renewer = tokio::spawn(async move {
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(elector.duration / 3).await;
                match elector.try_acquire().await {
                    Ok(true) => renewed = tokio::time::Instant::now(),
                    Ok(false) => break,
                    // Kept until the lease would expire: a candidate may
                    // take over only after that.
                    Err(err) if renewed.elapsed() < elector.duration * 2 / 3 => {
                        tracing::warn!(lease = %elector.name, "cannot renew the Lease: {err}");
                    }
                    Err(err) => {
                        tracing::warn!(lease = %elector.name, "cannot renew the Lease: {err}");
                        break;
                    }
                }
            }
            tracing::warn!(lease = %elector.name, identity = %elector.identity, "lost the Lease");
            let _ = lost_tx.send(true);
        });
        Leadership {
            elector: self.clone(),
            lost,
            renewer,
        }
    }

    /// One attempt: `true` when this replica holds the Lease afterwards.
    async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let seconds = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.leases.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(err) if is_conflict(&err) => Ok(false),
                Err(err) => Err(err),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec
            .holder_identity
            .clone()
            .filter(|holder| !holder.is_empty());
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if !mine && holder.is_some() && !expired(spec, &now) {
            return Ok(false);
        }
        if !mine {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(now);
        // `replace` sends the resourceVersion read: a concurrent writer
        // makes this a 409.
        match self
            .leases
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_conflict(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

impl Leadership {
    /// Completes when the Lease is lost (another replica holds it, or it
    /// could not be renewed in time): stop leading at once.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        let _ = lost.wait_for(|lost| *lost).await;
    }

    /// Stops renewing and frees the Lease for a standby replica (if it is
    /// still this replica's).
    pub async fn release(self) {
        self.renewer.abort();
        let elector = &self.elector;
        let Ok(Some(mut lease)) = elector.leases.get_opt(&elector.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(elector.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        if let Err(err) = elector
            .leases
            .replace(&elector.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(lease = %elector.name, "cannot release the Lease: {err}");
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn expired(spec: &LeaseSpec, now: &MicroTime) -> bool {
    let Some(renewed) = &spec.renew_time else {
        return true;
    };
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let age = now.0.as_millisecond() - renewed.0.as_millisecond();
    age > seconds * 1000
}

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}
