//! The signed URLs a worker reaches the object store through (see
//! [`crate::engine::signed`]): what the task carries so that a pod uploads
//! its artifacts and exchanges `transfer`/`fetch` archives without
//! credentials, and what the engine adds when the names are known only at
//! run time (the fetch archives of a block's workers, in
//! [`Reply::Parallel`](super::Reply::Parallel)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Signed URLs by what they are for. Each URL is a bearer credential until
/// it expires: never log one.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectLinks {
    /// Where each artifacts step uploads its archive (`PUT`), by step id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, String>,
    /// Exchange archives the worker writes (`PUT`), by archive name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub put: BTreeMap<String, String>,
    /// Exchange archives the worker reads (`GET`), by archive name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub get: BTreeMap<String, String>,
}

impl ObjectLinks {
    /// Whether there is no URL at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.artifacts.is_empty() && self.put.is_empty() && self.get.is_empty()
    }

    /// Adds every URL of `other` (replacing those of the same name).
    pub fn extend(&mut self, other: ObjectLinks) {
        self.artifacts.extend(other.artifacts);
        self.put.extend(other.put);
        self.get.extend(other.get);
    }
}

impl std::fmt::Debug for ObjectLinks {
    /// Names only: the URLs are credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectLinks")
            .field("artifacts", &self.artifacts.keys().collect::<Vec<_>>())
            .field("put", &self.put.keys().collect::<Vec<_>>())
            .field("get", &self.get.keys().collect::<Vec<_>>())
            .finish()
    }
}
