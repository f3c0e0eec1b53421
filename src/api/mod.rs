//! The three API generations of WeChat Pay, one folder each, with the same
//! shape (merchant, requests and answers as data, notifications), and what
//! their notification verifiers share. Nothing here does I/O: the client
//! sends what these modules describe.

pub mod legacy;
pub mod notify;
pub mod v2;
pub mod v3;
