//! `--data-dir`: the state survives a restart and a `kill -9`.
//!
//! **Design: an append-only journal with group commit, and snapshots.** Every commit of the
//! store (and every change of the registry's index) is sent, while its lock is held, to one
//! writer thread as a physical record (the new values of what it touched: see `records.rs`).
//! The writer takes whatever has queued up, writes it with one `write` and one `fdatasync`,
//! and then moves the *durable* mark; a request's answer waits for that mark
//! ([`Store::durable`](crate::store::Store::durable)), and so does a delivery before it is
//! POSTed. So a change is on disk before anyone hears of it, and a thousand concurrent pushes
//! cost a few fsyncs, not a thousand. When the journal passes a size, the store copies its
//! state (under its lock, not serialised there) into a snapshot message; the writer starts a
//! new journal at that point and a thread of its own writes the snapshot (`tempfile` + rename),
//! then names it in `CURRENT` and removes the files it replaces.
//!
//! Why not an embedded database such as `redb`: its transactions would still have to be
//! batched by us to avoid an fsync per request, the state is one small in-memory value that
//! never needs a query on disk, and a journal of JSON records can be read by a person
//! investigating a damaged directory. The whole format is `files.rs`.

mod files;
mod records;

pub use files::OpenError;
pub(crate) use records::{Delta, Entry, Image, RepoSettings, RunRecord, TagChange};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::logging;
use crate::model::time::Timestamp;
use crate::registry::RegistryChange;
use files::{io_error, DirLock, FILE_HEADER};

/// How long the writer waits for records before it notes that the process is alive.
const ALIVE_EVERY: Duration = Duration::from_secs(30);
/// At most this many records in one batch (one write, one fsync).
const MAX_BATCH: usize = 4096;

const SNAPSHOT_IDLE: u8 = 0;
const SNAPSHOT_WANTED: u8 = 1;
const SNAPSHOT_RUNNING: u8 = 2;

enum Msg {
    Entry(u64, Entry),
    /// A snapshot to write; with a sender, written before the writer goes on, and the sender
    /// told when it is.
    Snapshot(u64, Box<Image>, Option<mpsc::SyncSender<()>>),
    Stop,
}

/// How far the journal is on disk.
#[derive(Clone, Debug, Default)]
struct Synced {
    seq: u64,
    failed: Option<Arc<str>>,
}

struct Sender {
    seq: u64,
    tx: mpsc::Sender<Msg>,
}

struct Inner {
    sender: Mutex<Sender>,
    synced: watch::Receiver<Synced>,
    snapshot: Arc<AtomicU8>,
    writer: Mutex<Option<JoinHandle<()>>>,
    _lock: DirLock,
}

/// The journal of a data directory: a cheap-clone handle.
#[derive(Clone)]
pub(crate) struct Journal {
    inner: Arc<Inner>,
}

/// A data directory opened: locked, its format checked, its snapshot read. Its journals are
/// read by [`Opened::replay`].
pub(crate) struct Opened {
    /// The snapshot the state starts from (`None`: an empty state).
    pub(crate) image: Option<Image>,
    dir: PathBuf,
    lock: DirLock,
    /// CURRENT's generation.
    generation: u64,
    listing: Vec<String>,
    snapshot_bytes: u64,
    blob_dirs: Vec<PathBuf>,
    last_alive: Option<Timestamp>,
}

/// What replaying a data directory's journals found.
pub(crate) struct Recovered {
    /// What was dropped or tidied, to be logged.
    pub(crate) warnings: Vec<String>,
    /// The last moment the previous process is known to have been alive.
    pub(crate) last_alive: Option<Timestamp>,
    /// How many journal bytes were read: past `--snapshot-bytes`, a snapshot is due at once.
    pub(crate) replayed: u64,
}

impl Journal {
    /// Opens (or creates) a data directory: takes its lock, checks its format and reads its
    /// snapshot. `blob_dirs` are fsynced before a batch that links a registry blob.
    pub(crate) fn open(
        dir: &Path,
        snapshot_bytes: u64,
        blob_dirs: Vec<PathBuf>,
    ) -> Result<Opened, OpenError> {
        fs::create_dir_all(dir).map_err(io_error("create the data directory", dir))?;
        let listing: Vec<String> = fs::read_dir(dir)
            .map_err(io_error("read the data directory", dir))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(io_error("read the data directory", dir))?;
        let format = dir.join("FORMAT");
        let current = dir.join("CURRENT");
        let fresh = !listing
            .iter()
            .any(|name| name == "FORMAT" || name == "CURRENT" || name.starts_with("journal-"));
        let strangers: Vec<&String> = listing
            .iter()
            .filter(|name| !matches!(name.as_str(), "hubmock.lock" | "registry"))
            .collect();
        if fresh && !strangers.is_empty() {
            return Err(OpenError::Damaged {
                path: dir.to_owned(),
                offset: None,
                problem: format!(
                    "it is not a hubmock data directory (no FORMAT file) and not empty (it holds \
                     {:?}); hubmock will not write among other files",
                    strangers.iter().take(3).collect::<Vec<_>>()
                ),
            });
        }
        // Only now: a directory refused above gets no lock file among its files.
        let lock = files::lock(dir)?;
        if fresh {
            let created = files::create_journal(&files::journal_path(dir, 0))
                .and_then(|_| files::write_atomically(&current, b"0\n"))
                .and_then(|()| files::write_atomically(&format, files::format_text().as_bytes()));
            created.map_err(io_error("initialise the data directory", dir))?;
        }
        if !format.exists() {
            return Err(OpenError::Damaged {
                path: format,
                offset: None,
                problem: "the file is missing, but the directory holds journals".to_owned(),
            });
        }
        files::check_format(&format)?;
        let generation = files::read_current(&current)?;
        let image = if generation > 0 {
            let path = files::snapshot_path(dir, generation);
            let payload = files::read_snapshot(&path)?;
            let image: Image =
                serde_json::from_slice(&payload).map_err(|err| OpenError::Damaged {
                    path: path.clone(),
                    offset: None,
                    problem: format!("the snapshot cannot be read: {err}"),
                })?;
            Some(image)
        } else {
            None
        };
        Ok(Opened {
            last_alive: image.as_ref().map(|i| i.at),
            image,
            dir: dir.to_owned(),
            lock,
            generation,
            listing,
            snapshot_bytes,
            blob_dirs,
        })
    }
}

impl Opened {
    /// Reads the journals after the snapshot record by record, handing each record to `apply`
    /// as it is read (a torn last record is cut off with a warning; any other damage is an
    /// error), tidies what a finished or interrupted snapshot left, and starts the writer.
    pub(crate) fn replay(
        self,
        mut apply: impl FnMut(Entry),
    ) -> Result<(Journal, Recovered), OpenError> {
        let Opened {
            dir,
            lock,
            generation,
            listing,
            snapshot_bytes,
            blob_dirs,
            mut last_alive,
            ..
        } = self;
        let dir = dir.as_path();
        let mut warnings = Vec::new();
        // journal-<generation> and any later ones (a snapshot was being written).
        let mut journals = vec![generation];
        while files::journal_path(dir, journals[journals.len() - 1] + 1).exists() {
            journals.push(journals[journals.len() - 1] + 1);
        }
        let mut tail = (0, 0);
        let mut replayed = 0;
        for (i, &g) in journals.iter().enumerate() {
            let path = files::journal_path(dir, g);
            let last = i + 1 == journals.len();
            let scanned = files::scan_journal(&path, last, |offset, payload| {
                let entry: Entry =
                    serde_json::from_slice(payload).map_err(|err| OpenError::Damaged {
                        path: path.clone(),
                        offset: Some(offset),
                        problem: format!("a record cannot be read: {err}"),
                    })?;
                match &entry {
                    Entry::Alive(at) => last_alive = Some(*at),
                    Entry::State(delta) => last_alive = delta.at.or(last_alive),
                    Entry::Registry(_) => {}
                }
                apply(entry);
                Ok(())
            })?;
            if let Some((offset, dropped)) = scanned.torn {
                warnings.push(format!(
                    "{}: the last record (at byte {offset}, {dropped} bytes) was cut short by a \
                     crash and is dropped; it was never acknowledged",
                    path.display()
                ));
            }
            replayed += scanned.good_len;
            tail = (g, scanned.good_len);
        }
        let newest = journals[journals.len() - 1];
        if let Some(orphan) = listing
            .iter()
            .filter_map(|n| n.strip_prefix("journal-")?.parse::<u64>().ok())
            .find(|g| *g > newest)
        {
            return Err(OpenError::Damaged {
                path: files::journal_path(dir, newest + 1),
                offset: None,
                problem: format!("the file is missing, but journal-{orphan} comes after it"),
            });
        }
        // Files a finished or interrupted snapshot left behind: journals older than CURRENT's
        // (its snapshot holds them), every snapshot but CURRENT's (an older one, or a newer one
        // written before the crash but never named: the journals after CURRENT's hold it all),
        // temporary files.
        for name in &listing {
            let generation_of = |prefix: &str| {
                name.strip_prefix(prefix)
                    .and_then(|g| g.parse::<u64>().ok())
            };
            let stale = generation_of("journal-").is_some_and(|g| g < generation)
                || generation_of("snapshot-").is_some_and(|g| g != generation)
                || name.starts_with(".tmp-");
            if stale {
                let _ = fs::remove_file(dir.join(name));
            }
        }
        let (tail_generation, good_len) = tail;
        let path = files::journal_path(dir, tail_generation);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error("open", &path))?;
        file.set_len(good_len)
            .and_then(|()| file.sync_all())
            .map_err(io_error("cut back", &path))?;
        let journal = Journal::start(
            lock,
            Writer {
                dir: dir.to_owned(),
                generation: tail_generation,
                file,
                file_len: good_len.max(FILE_HEADER as u64),
                snapshot_bytes,
                blob_dirs,
                snapshot: Arc::new(AtomicU8::new(SNAPSHOT_IDLE)),
                snapshotting: None,
            },
        );
        Ok((
            journal,
            Recovered {
                warnings,
                last_alive,
                replayed,
            },
        ))
    }
}

impl Journal {
    fn start(lock: DirLock, writer: Writer) -> Journal {
        let (tx, rx) = mpsc::channel();
        let (synced_tx, synced) = watch::channel(Synced::default());
        let snapshot = writer.snapshot.clone();
        let handle = std::thread::Builder::new()
            .name("hubmock-journal".to_owned())
            .spawn(move || writer.run(rx, synced_tx))
            .expect("could not start the journal's thread");
        Journal {
            inner: Arc::new(Inner {
                sender: Mutex::new(Sender { seq: 0, tx }),
                synced,
                snapshot,
                writer: Mutex::new(Some(handle)),
                _lock: lock,
            }),
        }
    }

    fn send_msg(&self, msg: impl FnOnce(u64) -> Msg) {
        let mut sender = self.inner.sender.lock().unwrap_or_else(|p| p.into_inner());
        sender.seq += 1;
        let msg = msg(sender.seq);
        // The writer is gone only after a write failed (then `durable` says so) or at close.
        let _ = sender.tx.send(msg);
    }

    /// Queues a record (called under the lock of what it records, so records keep the order
    /// of the changes).
    pub(crate) fn send(&self, entry: Entry) {
        self.send_msg(|seq| Msg::Entry(seq, entry));
    }

    /// Queues a registry change.
    pub(crate) fn send_registry(&self, change: RegistryChange) {
        self.send(Entry::Registry(change));
    }

    /// Queues a snapshot of everything recorded so far (called under both locks).
    pub(crate) fn send_snapshot(&self, image: Image) {
        self.send_msg(|seq| Msg::Snapshot(seq, Box::new(image), None));
    }

    /// Writes a snapshot of everything recorded so far and waits until it is written (at
    /// start, before anything is served: see [`Recovered::replayed`]).
    pub(crate) fn snapshot_now(&self, image: Image) {
        self.inner
            .snapshot
            .store(SNAPSHOT_RUNNING, Ordering::Release);
        let (done, written) = mpsc::sync_channel(1);
        self.send_msg(|seq| Msg::Snapshot(seq, Box::new(image), Some(done)));
        // No answer: the writer failed, and `durable` says so to every request.
        let _ = written.recv();
    }

    /// Whether the writer asked for a snapshot; the one caller that sees `true` must send it.
    pub(crate) fn take_snapshot_request(&self) -> bool {
        self.inner
            .snapshot
            .compare_exchange(
                SNAPSHOT_WANTED,
                SNAPSHOT_RUNNING,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Waits until every record queued so far is on disk; `Err` says why it never will be.
    pub(crate) async fn durable(&self) -> Result<(), Arc<str>> {
        let target = self
            .inner
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seq;
        let mut synced = self.inner.synced.clone();
        let reached = synced
            .wait_for(|s| s.seq >= target || s.failed.is_some())
            .await
            .map(|s| s.failed.clone());
        match reached {
            Ok(None) => Ok(()),
            Ok(Some(failed)) => Err(failed),
            Err(_) => Err("the journal's writer has stopped".into()),
        }
    }

    /// Writes what is queued, notes a clean stop, and waits for the writer to finish.
    pub(crate) fn close(&self) {
        self.send_msg(|_| Msg::Stop);
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The writer thread's side.
struct Writer {
    dir: PathBuf,
    generation: u64,
    file: File,
    file_len: u64,
    snapshot_bytes: u64,
    blob_dirs: Vec<PathBuf>,
    snapshot: Arc<AtomicU8>,
    /// The thread writing a snapshot, if one is: a clean stop waits for it.
    snapshotting: Option<JoinHandle<()>>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>, synced: watch::Sender<Synced>) {
        loop {
            let first = match rx.recv_timeout(ALIVE_EVERY) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => Msg::Entry(0, Entry::Alive(Timestamp::now())),
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            match self.write(batch) {
                Ok((seq, stop)) => {
                    synced.send_modify(|s| s.seq = s.seq.max(seq));
                    if stop {
                        return;
                    }
                }
                Err(err) => {
                    let message: Arc<str> = format!(
                        "hubmock could not write its journal in {}: {err}; the change is not \
                         saved, and none will be until hubmock is restarted",
                        self.dir.display()
                    )
                    .into();
                    tracing::error!(target: logging::SERVER, "{message}");
                    synced.send_modify(|s| s.failed = Some(message));
                    return;
                }
            }
            if self.file_len > self.snapshot_bytes {
                let _ = self.snapshot.compare_exchange(
                    SNAPSHOT_IDLE,
                    SNAPSHOT_WANTED,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// Writes a batch; answers the last sequence number written and whether to stop.
    fn write(&mut self, batch: Vec<Msg>) -> io::Result<(u64, bool)> {
        let mut buffer = Vec::new();
        let mut links = false;
        let mut seq = 0;
        let mut stop = false;
        for msg in batch {
            match msg {
                Msg::Entry(s, entry) => {
                    links |= matches!(
                        entry,
                        Entry::Registry(
                            RegistryChange::Link { .. } | RegistryChange::Manifest { .. }
                        )
                    );
                    files::frame(&mut buffer, &serde_json::to_vec(&entry)?);
                    seq = seq.max(s);
                }
                Msg::Snapshot(s, image, done) => {
                    self.flush(&mut buffer, &mut links)?;
                    self.rotate(image)?;
                    seq = seq.max(s);
                    if let Some(done) = done {
                        if let Some(snapshotting) = self.snapshotting.take() {
                            let _ = snapshotting.join();
                        }
                        let _ = done.send(());
                    }
                }
                Msg::Stop => {
                    let alive = Entry::Alive(Timestamp::now());
                    files::frame(&mut buffer, &serde_json::to_vec(&alive)?);
                    stop = true;
                    // A clean stop leaves no snapshot half written.
                    if let Some(snapshotting) = self.snapshotting.take() {
                        let _ = snapshotting.join();
                    }
                }
            }
        }
        self.flush(&mut buffer, &mut links)?;
        Ok((seq, stop))
    }

    fn flush(&mut self, buffer: &mut Vec<u8>, links: &mut bool) -> io::Result<()> {
        if buffer.is_empty() {
            return Ok(());
        }
        if *links {
            // The blobs these records link were renamed into place before they were sent.
            for dir in &self.blob_dirs {
                files::sync_dir(dir)?;
            }
            *links = false;
        }
        self.file.write_all(buffer)?;
        self.file.sync_data()?;
        self.file_len += buffer.len() as u64;
        buffer.clear();
        Ok(())
    }

    /// Starts journal `k + 1` (everything before it is in `image`), and writes the snapshot
    /// in a thread of its own.
    fn rotate(&mut self, image: Box<Image>) -> io::Result<()> {
        let next = self.generation + 1;
        self.file = files::create_journal(&files::journal_path(&self.dir, next))?;
        self.generation = next;
        self.file_len = FILE_HEADER as u64;
        let dir = self.dir.clone();
        let state = self.snapshot.clone();
        // The one before has finished (a snapshot is asked for only once it has).
        if let Some(done) = self.snapshotting.take() {
            let _ = done.join();
        }
        let snapshotting = std::thread::Builder::new()
            .name("hubmock-snapshot".to_owned())
            .spawn(move || {
                if let Err(err) = write_snapshot(&dir, next, &image) {
                    // Nothing is lost: CURRENT still names the older snapshot, and both
                    // journals are kept.
                    tracing::warn!(
                        target: logging::SERVER,
                        "could not write snapshot {next} in {}: {err}; the journal keeps growing \
                         until one is written",
                        dir.display()
                    );
                }
                state.store(SNAPSHOT_IDLE, Ordering::Release);
            })?;
        self.snapshotting = Some(snapshotting);
        Ok(())
    }
}

fn write_snapshot(dir: &Path, generation: u64, image: &Image) -> io::Result<()> {
    let payload = serde_json::to_vec(image)?;
    files::write_snapshot(&files::snapshot_path(dir, generation), &payload)?;
    files::write_atomically(&dir.join("CURRENT"), format!("{generation}\n").as_bytes())?;
    // Every older generation is replaced, not only the one before: a start that replayed
    // several journals (background snapshots cut off by crashes) leaves them all behind.
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let older = ["journal-", "snapshot-"].iter().any(|prefix| {
            name.strip_prefix(prefix)
                .and_then(|g| g.parse::<u64>().ok())
                .is_some_and(|g| g < generation)
        });
        if older {
            let _ = fs::remove_file(dir.join(&*name));
        }
    }
    Ok(())
}
