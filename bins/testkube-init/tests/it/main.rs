//! `testkube-init` as a pod runs it: a task file in, the worker protocol
//! out on standard output, replies through `testkube-init reply`.

mod protocol;
