//! The audit spool: where the audit writer puts events the database cannot take
//! (it is down), so that none is lost. One append-only file of JSON lines per
//! replica, `audit-N.spool` in the spool directory: each line is one
//! [`KeyedAuditEvent`], written and fsynced before the request that produced it is
//! answered. When the database returns the writer replays the file in order, by
//! the events' keys (an event already in the log is skipped, so a crash between the
//! insert and the truncation writes nothing twice), then truncates it.
//!
//! Several replicas may share a directory: each holds an exclusive lock on its own
//! file, and a file nobody holds (its replica stopped) is taken over at start-up.
//! A partial last line (a crash mid-write, before that event was acknowledged) is
//! dropped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::clock::Random;
use crate::store::KeyedAuditEvent;

/// Spool files per directory at most (replicas sharing it).
const SLOTS: usize = 64;

#[derive(Debug, thiserror::Error)]
#[error("audit spool directory {path} is not usable: {cause}")]
pub struct SpoolError {
    pub path: String,
    pub cause: String,
}

/// This replica's spool file, locked for as long as the value lives.
pub struct AuditSpool {
    path: PathBuf,
    file: File,
    random: Random,
    /// Bytes at the start of the file already written to the database.
    drained: u64,
    /// Events in the file not yet written to the database.
    backlog: Arc<AtomicUsize>,
}

impl std::fmt::Debug for AuditSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSpool")
            .field("path", &self.path)
            .field("backlog", &self.backlog())
            .finish_non_exhaustive()
    }
}

fn spool_error(path: &Path, cause: impl std::fmt::Display) -> SpoolError {
    SpoolError {
        path: path.display().to_string(),
        cause: cause.to_string(),
    }
}

/// The complete lines of `file` from `from` (a partial last line is not one), at
/// most `max`, with the offset after the last one returned.
fn read_lines(file: &File, from: u64, max: usize) -> std::io::Result<(Vec<String>, u64)> {
    let mut reader = BufReader::new(file.try_clone()?);
    reader.seek(SeekFrom::Start(from))?;
    let mut lines = Vec::new();
    let mut end = from;
    let mut line = String::new();
    while lines.len() < max {
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 || !line.ends_with('\n') {
            break;
        }
        end += read as u64;
        lines.push(line.trim_end().to_owned());
    }
    Ok((lines, end))
}

/// Drops a partial last line (a crash mid-append): returns the file's length after.
fn cut_partial_tail(file: &File) -> std::io::Result<u64> {
    let mut complete = 0;
    let mut from = 0;
    loop {
        let (lines, end) = read_lines(file, from, 4096)?;
        if lines.is_empty() {
            break;
        }
        complete = end;
        from = end;
    }
    if file.metadata()?.len() != complete {
        file.set_len(complete)?;
        file.sync_all()?;
    }
    Ok(complete)
}

fn count_lines(file: &File) -> std::io::Result<usize> {
    let mut count = 0;
    let mut from = 0;
    loop {
        let (lines, end) = read_lines(file, from, 4096)?;
        if lines.is_empty() {
            return Ok(count);
        }
        count += lines.len();
        from = end;
    }
}

fn open_rw(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
}

impl AuditSpool {
    /// Creates `dir` if needed, proves it writable, locks a spool file of this
    /// replica's, and takes over the events of files no replica holds. Fails with
    /// the path and the cause (`serve` refuses to start without a spool).
    pub fn open(dir: &Path, random: Random) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(|e| spool_error(dir, e))?;
        let probe = dir.join(format!(".write-test-{}", random.hex::<8>()));
        let written =
            File::create(&probe).and_then(|mut f| f.write_all(b"ok").and_then(|()| f.sync_all()));
        let _ = std::fs::remove_file(&probe);
        written.map_err(|e| spool_error(dir, e))?;

        let mut mine = None;
        for slot in 0..SLOTS {
            let path = dir.join(format!("audit-{slot}.spool"));
            let file = open_rw(&path).map_err(|e| spool_error(&path, e))?;
            match file.try_lock() {
                Ok(()) => {
                    mine = Some((path, file));
                    break;
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(spool_error(&path, e)),
            }
        }
        let Some((path, file)) = mine else {
            return Err(spool_error(
                dir,
                format!("all {SLOTS} spool files are locked by other replicas"),
            ));
        };
        cut_partial_tail(&file).map_err(|e| spool_error(&path, e))?;
        let mut spool = Self {
            path,
            file,
            random,
            drained: 0,
            backlog: Arc::default(),
        };
        spool.adopt_orphans(dir)?;
        let count = count_lines(&spool.file).map_err(|e| spool_error(&spool.path, e))?;
        spool.backlog.store(count, Ordering::Relaxed);
        if count > 0 {
            tracing::warn!(spool = %spool.path.display(), events = count, "audit spool holds events not yet in the database; they are written when it answers");
        }
        Ok(spool)
    }

    /// Moves the events of spool files no replica holds into this one (a crash
    /// between the copy and their truncation only repeats events, which the replay
    /// skips by key).
    fn adopt_orphans(&mut self, dir: &Path) -> Result<(), SpoolError> {
        for slot in 0..SLOTS {
            let path = dir.join(format!("audit-{slot}.spool"));
            if path == self.path || !path.exists() {
                continue;
            }
            let Ok(file) = open_rw(&path) else { continue };
            if file.try_lock().is_err() {
                continue;
            }
            let mut from = 0;
            loop {
                let (lines, end) =
                    read_lines(&file, from, 4096).map_err(|e| spool_error(&path, e))?;
                if lines.is_empty() {
                    break;
                }
                self.append_lines(&lines)
                    .map_err(|e| spool_error(&self.path, e))?;
                from = end;
            }
            if from > 0 {
                tracing::warn!(from = %path.display(), into = %self.path.display(), "took over the audit spool of a stopped replica");
            }
            file.set_len(0).map_err(|e| spool_error(&path, e))?;
            file.sync_all().map_err(|e| spool_error(&path, e))?;
        }
        Ok(())
    }

    fn append_lines(&mut self, lines: &[String]) -> std::io::Result<()> {
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }

    /// This replica's spool file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events spooled and not yet written to the database.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// A handle that reads [`AuditSpool::backlog`] from elsewhere (metrics).
    pub fn backlog_gauge(&self) -> Arc<AtomicUsize> {
        self.backlog.clone()
    }

    /// A fresh key for an event that may be spooled.
    pub fn key(&self) -> String {
        self.random.hex::<16>()
    }

    /// Appends `events` and makes them durable (fsync) before returning.
    pub fn append(&mut self, events: &[KeyedAuditEvent]) -> std::io::Result<()> {
        let mut lines = Vec::with_capacity(events.len());
        for event in events {
            lines.push(serde_json::to_string(event).map_err(std::io::Error::other)?);
        }
        self.append_lines(&lines)?;
        self.backlog.fetch_add(events.len(), Ordering::Relaxed);
        Ok(())
    }

    /// The next events to replay (at most `max`), in spool order, and where they
    /// end; lines that do not parse are reported and skipped.
    pub fn next_batch(&self, max: usize) -> std::io::Result<(Vec<KeyedAuditEvent>, u64)> {
        let (lines, end) = read_lines(&self.file, self.drained, max)?;
        let mut events = Vec::with_capacity(lines.len());
        for line in lines {
            match serde_json::from_str::<KeyedAuditEvent>(&line) {
                Ok(event) => events.push(event),
                Err(error) => {
                    tracing::error!(spool = %self.path.display(), %error, "audit spool line does not parse; skipped");
                    self.backlog.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        Ok((events, end))
    }

    /// The events up to `end` are in the database (`count` of them); once nothing
    /// is left the file is truncated.
    pub fn written(&mut self, end: u64, count: usize) -> std::io::Result<()> {
        self.drained = end;
        let left = self.backlog().saturating_sub(count);
        self.backlog.store(left, Ordering::Relaxed);
        if end >= self.file.metadata()?.len() {
            self.file.set_len(0)?;
            self.file.sync_all()?;
            self.drained = 0;
            self.backlog.store(0, Ordering::Relaxed);
        }
        Ok(())
    }
}
