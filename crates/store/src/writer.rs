//! The single writer thread with group commit.

use std::any::Any;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{Result, StoreError};

type Work = Box<dyn FnOnce(&Connection) -> Result<Box<dyn Any + Send>> + Send>;

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Box<dyn Any + Send>>>,
}

/// Most jobs committed in one transaction; bounds the latency a single batch adds.
const MAX_BATCH: usize = 1024;

pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(crate) fn spawn(conn: Connection) -> Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("processops-store-writer".into())
            .spawn(move || run(&conn, &rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    pub(crate) async fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (reply, rx) = oneshot::channel();
        let work: Work = Box::new(move |c| f(c).map(|r| Box::new(r) as Box<dyn Any + Send>));
        self.jobs
            .send(Job { work, reply })
            .map_err(|_| StoreError::WriterGone)?;
        let boxed = rx.await.map_err(|_| StoreError::WriterGone)??;
        boxed
            .downcast::<R>()
            .map(|b| *b)
            .map_err(|_| StoreError::Internal("writer returned the wrong type".into()))
    }
}

fn run(conn: &Connection, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(conn, batch);
    }
}

/// Run a statement that has no parameters and returns no rows, prepared once per connection:
/// the transaction statements run several times per batch, parsing them each time shows up.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn commit_batch(conn: &Connection, batch: Vec<Job>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let msg = e.to_string();
        for job in batch {
            let _ = job.reply.send(Err(StoreError::Internal(format!(
                "cannot begin a transaction: {msg}"
            ))));
        }
        return;
    }
    let mut done = Vec::with_capacity(batch.len());
    for job in batch {
        // A savepoint per job: one failing job (a duplicate run, a stale decision) rolls back
        // alone and the rest of the batch still commits.
        let result = match exec(conn, "SAVEPOINT job") {
            Ok(()) => {
                let r = (job.work)(conn);
                let end = if r.is_ok() {
                    Ok(())
                } else {
                    exec(conn, "ROLLBACK TO job")
                };
                match end.and_then(|()| exec(conn, "RELEASE job")) {
                    Ok(()) => r,
                    Err(e) => Err(StoreError::from(e)),
                }
            }
            Err(e) => Err(StoreError::from(e)),
        };
        done.push((job.reply, result));
    }
    match exec(conn, "COMMIT") {
        Ok(()) => {
            for (reply, result) in done {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let msg = e.to_string();
            for (reply, _) in done {
                let _ = reply.send(Err(StoreError::Internal(format!("commit failed: {msg}"))));
            }
        }
    }
}
