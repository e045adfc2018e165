//! Integration tests of testkube-core that need real parts around it: the
//! run service with the SQLite store (testkube-results) and the local
//! executor (testkube-executors), no mocks. One binary, a module per area.

mod service;
