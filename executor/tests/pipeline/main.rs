//! The executor end to end: ingest over HTTP, the executor, and the paper exchange in-process on a
//! fresh database. The paper exchange's own order list is the witness for "exactly one".

mod console_view;
mod equity;
mod fleet;
mod harness;
mod key_recheck;
mod positions;
mod racing;
mod scenarios;
mod v2;
mod v2_protection;
