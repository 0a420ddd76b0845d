//! A database that several dp-local nodes serve together: what the engine's turns need from it.
//!
//! Each node keeps the whole state in memory as a cache of the database, and knows up to which revision it is
//! current. An operation is a turn: [`SharedStore::begin`] takes the database's turn lock (one node at a time,
//! held until the turn ends) and returns the rows committed since the node's revision, so that the node catches
//! up before it decides anything; [`SharedStore::commit`] writes the turn's rows at the next revision, tells the
//! other nodes which worker groups got work, and commits, all before the answer. A node that dies mid-turn
//! loses nothing: its transaction aborts and the lock goes with it. This module holds no rules and no SQL: the
//! engine decides, `postgres.rs` talks to the database.

use super::{Probe, Row};
use crate::error::Error;

/// What was committed after a revision.
#[derive(Debug, Default)]
pub struct Changes {
    /// The database's revision when the rows were read.
    pub revision: i64,
    /// Every row written after the asked revision, table by table in [`super::Table::ALL`]'s order, each table's
    /// rows in the order they were first written.
    pub rows: Vec<Row>,
    /// Every row, whatever the revision asked: the connection was opened again, and what the node read before
    /// may not all be there (a commit another node's turn saw before it was flushed, lost in a server crash).
    /// The node takes the whole state anew.
    pub anew: bool,
}

/// Another node's commit, as the listening connection hears of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wakeup {
    /// The node that committed (its [`SharedStore::listen`] id); `0` when the listener itself speaks.
    pub node: u64,
    /// The revision it committed; `0` when unknown.
    pub revision: i64,
    /// The worker groups that got work to hand out; `None` means any group may have (the list was too long, or
    /// the listener reconnected and may have missed wake-ups).
    pub groups: Option<Vec<String>>,
}

/// A database shared by several serving nodes. Calls block; a node makes them one at a time, each `begin`
/// followed by exactly one `commit` or `release`.
pub trait SharedStore: Send + Sync {
    /// Starts a turn: waits for the turn lock, then returns the rows committed after `since` and the current
    /// revision. On `Err` no turn is open.
    fn begin(&self, since: i64) -> Result<Changes, Error>;
    /// Ends the turn with `rows` written at the next revision, `groups` told to the other nodes, and the commit
    /// made durable; returns the new revision. On `Err` the turn is over and its rows must be taken as not
    /// written (when the connection broke during the commit, they may have been: a later catch-up shows it).
    /// With `next`, the next turn begins in the same round trip, catching up from `next` (the revision this
    /// commit is to make); the next [`SharedStore::begin`] from that revision returns it without a round trip.
    /// With `alone` (no other node is contending for the turn lock), the commit may hold the lock while it waits
    /// for the disk, if that is quicker.
    fn commit(
        &self,
        rows: &[Row],
        node: u64,
        groups: &[String],
        next: Option<i64>,
        alone: bool,
    ) -> Result<i64, Error>;
    /// Ends a turn that wrote nothing; `next` as for [`SharedStore::commit`] (the revision stays).
    fn release(&self, next: Option<i64>);
    /// The rows committed after `since`, read without the turn lock from one consistent snapshot.
    fn changes(&self, since: i64) -> Result<Changes, Error>;
    /// Starts hearing other nodes' commits: each is passed to `deliver`, on a thread of the store's, until the
    /// store is dropped. After the listening connection was lost and opened again, a [`Wakeup`] with
    /// `groups: None` stands for whatever was missed meanwhile.
    fn listen(&self, deliver: Box<dyn Fn(Wakeup) + Send + Sync>);
    /// A readiness check that can run beside the turns.
    fn probe(&self) -> Option<Probe>;
}
