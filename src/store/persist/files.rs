//! The data directory on disk: its lock, its format version, and the framing of journal and
//! snapshot files, read back with every kind of damage told apart.
//!
//! ```text
//! DIR/hubmock.lock     held (flock) while a hubmock uses DIR; says the holder's pid
//! DIR/FORMAT           "hubmock data directory, format 1"
//! DIR/CURRENT          the generation k whose snapshot the state starts from
//! DIR/snapshot-<k>     the whole state as it was when journal-<k> began (none for k = 0)
//! DIR/journal-<k>      every change after it, one record per commit; then journal-<k+1>...
//! DIR/registry/        the registry's blobs and manifests (content-addressed files)
//! ```
//!
//! A journal file starts with `HUBMOCKJ` and the format version (u32, little-endian); each
//! record is `len: u32 | crc32(len): u32 | crc32(payload): u32 | payload` (JSON). The length
//! has a checksum of its own so that a flipped bit in it is told from a record cut short by a
//! crash: only a record that runs past the end of the *last* file, or whose bytes up to the end
//! are zeros or fail their checksum exactly at the end, counts as torn.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The data directory format this hubmock writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
const FORMAT_TEXT: &str = "hubmock data directory, format ";
const JOURNAL_MAGIC: &[u8; 8] = b"HUBMOCKJ";
const SNAPSHOT_MAGIC: &[u8; 8] = b"HUBMOCKS";
/// A record's header: its length, that length's checksum, the payload's checksum.
const RECORD_HEADER: usize = 12;
/// A file's header: magic and version.
pub(crate) const FILE_HEADER: usize = 12;
/// No record is larger (a state import is the largest: 1 GiB would be absurd for a test double).
const MAX_RECORD: u32 = 1 << 30;

/// Why a data directory could not be opened. Each says what is wrong, where, and what to do.
#[derive(Debug)]
pub enum OpenError {
    /// The directory (or a file in it) could not be created, read or written.
    Io {
        /// What hubmock was doing.
        what: String,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        error: io::Error,
    },
    /// Another process holds the lock.
    Locked {
        /// The directory.
        dir: PathBuf,
        /// What the lock file says of its holder.
        holder: String,
    },
    /// Written by a newer hubmock.
    Newer {
        /// The file that says so.
        path: PathBuf,
        /// Its format version.
        found: u32,
    },
    /// A file is damaged somewhere other than a torn last record, or missing.
    Damaged {
        /// The file.
        path: PathBuf,
        /// Where in it (bytes from its start), when that means something.
        offset: Option<u64>,
        /// What is wrong.
        problem: String,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io { what, path, error } => write!(
                f,
                "cannot {what} {}: {error}. Check that the path is a directory this user may \
                 read and write, or choose another --data-dir.",
                path.display()
            ),
            OpenError::Locked { dir, holder } => write!(
                f,
                "data directory {} is in use by another hubmock ({holder}). Stop that process, \
                 or give this one another --data-dir.",
                dir.display()
            ),
            OpenError::Newer { path, found } => write!(
                f,
                "{} was written by a newer hubmock (data format {found}); this hubmock reads \
                 format {FORMAT_VERSION}. Run the newer hubmock, or give this one another \
                 --data-dir.",
                path.display()
            ),
            OpenError::Damaged {
                path,
                offset,
                problem,
            } => {
                write!(f, "{} is damaged", path.display())?;
                if let Some(offset) = offset {
                    write!(f, " at byte {offset}")?;
                }
                write!(
                    f,
                    ": {problem}. hubmock will not start from a state it cannot read whole. \
                     Restore the directory from a backup, or move it aside and start with an \
                     empty --data-dir."
                )
            }
        }
    }
}

impl std::error::Error for OpenError {}

pub(crate) fn io_error(what: &str, path: &Path) -> impl FnOnce(io::Error) -> OpenError {
    let (what, path) = (what.to_owned(), path.to_owned());
    move |error| OpenError::Io { what, path, error }
}

fn damaged(path: &Path, offset: Option<u64>, problem: impl Into<String>) -> OpenError {
    OpenError::Damaged {
        path: path.to_owned(),
        offset,
        problem: problem.into(),
    }
}

/// The lock on a data directory, held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the directory's lock, or says who holds it.
pub(crate) fn lock(dir: &Path) -> Result<DirLock, OpenError> {
    let path = dir.join("hubmock.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error("open the lock file", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(OpenError::Locked {
                dir: dir.to_owned(),
                holder: if holder.is_empty() {
                    "a process that has not written its pid yet".to_owned()
                } else {
                    holder.to_owned()
                },
            });
        }
        Err(fs::TryLockError::Error(error)) => {
            return Err(io_error("lock", &path)(error));
        }
    }
    let pid = format!("pid {}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.write_all(pid.as_bytes()))
        .map_err(io_error("write the lock file", &path))?;
    Ok(DirLock { _file: file })
}

/// Makes a directory entry (a new or renamed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` whole or not at all: a temporary file, fsynced, renamed, and the
/// directory fsynced.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// The format file's text.
pub(crate) fn format_text() -> String {
    format!("{FORMAT_TEXT}{FORMAT_VERSION}\n")
}

/// Checks the format file: a newer format is refused, an unreadable one is damage.
pub(crate) fn check_format(path: &Path) -> Result<(), OpenError> {
    let text = fs::read_to_string(path).map_err(io_error("read", path))?;
    let version = text
        .trim()
        .strip_prefix(FORMAT_TEXT)
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| {
            damaged(
                path,
                None,
                format!(
                    "expected \"{}\", found {:?}",
                    format_text().trim(),
                    text.trim()
                ),
            )
        })?;
    if version > FORMAT_VERSION {
        return Err(OpenError::Newer {
            path: path.to_owned(),
            found: version,
        });
    }
    Ok(())
}

/// A file the data directory must have, read whole; a missing one is damage (`missing` says
/// what it was for).
fn read_required(path: &Path, missing: &str) -> Result<Vec<u8>, OpenError> {
    match fs::read(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Err(damaged(path, None, missing)),
        other => other.map_err(io_error("read", path)),
    }
}

/// The generation named by `CURRENT`.
pub(crate) fn read_current(path: &Path) -> Result<u64, OpenError> {
    let missing = "the file is missing (it names the snapshot and journal to start from)";
    let text = String::from_utf8_lossy(&read_required(path, missing)?).into_owned();
    text.trim()
        .parse()
        .map_err(|_| damaged(path, None, format!("expected a number, found {text:?}")))
}

pub(crate) fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("journal-{generation}"))
}

pub(crate) fn snapshot_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("snapshot-{generation}"))
}

fn header(magic: &[u8; 8]) -> [u8; FILE_HEADER] {
    let mut header = [0; FILE_HEADER];
    header[..8].copy_from_slice(magic);
    header[8..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header
}

/// Creates an empty journal file (header only), durable with its directory entry.
pub(crate) fn create_journal(path: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)?;
    file.write_all(&header(JOURNAL_MAGIC))?;
    file.sync_all()?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(file)
}

/// Appends one framed record to `buffer`.
pub(crate) fn frame(buffer: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    buffer.extend_from_slice(&len);
    buffer.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    buffer.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buffer.extend_from_slice(payload);
}

/// What reading a journal found besides its records.
pub(crate) struct Scanned {
    /// Where the good part ends (the file is cut back to it when a tail was torn).
    pub(crate) good_len: u64,
    /// A torn last record: its offset and how many bytes were dropped.
    pub(crate) torn: Option<(u64, u64)>,
}

/// Reads a journal record by record, handing each payload and its offset to `record` as it
/// is read (a journal is never held in memory whole); a torn tail is allowed only when `last`
/// (the file being written when the process stopped). An error `record` answers ends the scan.
pub(crate) fn scan_journal(
    path: &Path,
    last: bool,
    mut record: impl FnMut(u64, &[u8]) -> Result<(), OpenError>,
) -> Result<Scanned, OpenError> {
    let read_error = |error| OpenError::Io {
        what: "read".to_owned(),
        path: path.to_owned(),
        error,
    };
    let file = match File::open(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(damaged(path, None, "the journal file is missing"))
        }
        opened => opened.map_err(read_error)?,
    };
    let end = file.metadata().map_err(read_error)?.len();
    let mut reader = io::BufReader::with_capacity(1 << 20, file);
    let mut head = vec![0; FILE_HEADER.min(end as usize)];
    reader.read_exact(&mut head).map_err(read_error)?;
    check_header(path, &head, JOURNAL_MAGIC)?;
    let mut at = FILE_HEADER as u64;
    let mut payload = Vec::new();
    while at < end {
        let left = end - at;
        let torn = |problem: &str| -> Result<Scanned, OpenError> {
            if last {
                Ok(Scanned {
                    good_len: at,
                    torn: Some((at, left)),
                })
            } else {
                Err(damaged(path, Some(at), problem))
            }
        };
        let short = "a record is cut short, and this is not the last journal";
        if left < RECORD_HEADER as u64 {
            return torn(short);
        }
        let mut header = [0u8; RECORD_HEADER];
        reader.read_exact(&mut header).map_err(read_error)?;
        if header.iter().all(|b| *b == 0) && rest_is_zeros(&mut reader).map_err(read_error)? {
            // A crash left the file longer than what was written to it.
            return torn(short);
        }
        let len_bytes: [u8; 4] = header[..4].try_into().expect("four bytes");
        let len_crc = u32::from_le_bytes(header[4..8].try_into().expect("four bytes"));
        let payload_crc = u32::from_le_bytes(header[8..12].try_into().expect("four bytes"));
        if crc32fast::hash(&len_bytes) != len_crc {
            return Err(damaged(
                path,
                Some(at),
                "a record's length fails its checksum",
            ));
        }
        let len = u32::from_le_bytes(len_bytes);
        if len > MAX_RECORD {
            return Err(damaged(
                path,
                Some(at),
                format!("a record claims {len} bytes"),
            ));
        }
        let ends = at + (RECORD_HEADER as u64) + u64::from(len);
        if ends > end {
            return torn("a record runs past the end, and this is not the last journal");
        }
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload).map_err(read_error)?;
        if crc32fast::hash(&payload) != payload_crc {
            if ends == end {
                return torn("the last record fails its checksum");
            }
            return Err(damaged(
                path,
                Some(at),
                "a record fails its checksum, and records follow it",
            ));
        }
        record(at, &payload)?;
        at = ends;
    }
    Ok(Scanned {
        good_len: end,
        torn: None,
    })
}

/// Whether everything `reader` has left is zero bytes (read to the end to know).
fn rest_is_zeros(reader: &mut impl Read) -> io::Result<bool> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
    }
}

fn check_header(path: &Path, bytes: &[u8], magic: &[u8; 8]) -> Result<(), OpenError> {
    if bytes.len() < FILE_HEADER {
        // A journal is created with its header and fsynced before anything is written to it;
        // a short one is damage.
        return Err(damaged(
            path,
            Some(0),
            "the file is shorter than its header",
        ));
    }
    if &bytes[..8] != magic {
        return Err(damaged(
            path,
            Some(0),
            "the file does not start as a hubmock file of this kind",
        ));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("four bytes"));
    if version > FORMAT_VERSION {
        return Err(OpenError::Newer {
            path: path.to_owned(),
            found: version,
        });
    }
    Ok(())
}

/// Writes a snapshot file whole or not at all.
pub(crate) fn write_snapshot(path: &Path, payload: &[u8]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(FILE_HEADER + RECORD_HEADER + payload.len());
    bytes.extend_from_slice(&header(SNAPSHOT_MAGIC));
    frame(&mut bytes, payload);
    write_atomically(path, &bytes)
}

/// Reads a snapshot file's payload; any damage (it was written whole) is an error.
pub(crate) fn read_snapshot(path: &Path) -> Result<Vec<u8>, OpenError> {
    let bytes = read_required(path, "the snapshot file is missing (CURRENT names it)")?;
    check_header(path, &bytes, SNAPSHOT_MAGIC)?;
    let rest = &bytes[FILE_HEADER..];
    let bad = |offset: usize, problem: &str| damaged(path, Some(offset as u64), problem);
    if rest.len() < RECORD_HEADER {
        return Err(bad(FILE_HEADER, "the snapshot is cut short"));
    }
    let len_bytes: [u8; 4] = rest[..4].try_into().expect("four bytes");
    if crc32fast::hash(&len_bytes).to_le_bytes() != rest[4..8] {
        return Err(bad(FILE_HEADER, "the snapshot's length fails its checksum"));
    }
    let len = u32::from_le_bytes(len_bytes) as usize;
    let payload = rest
        .get(RECORD_HEADER..RECORD_HEADER + len)
        .ok_or_else(|| bad(FILE_HEADER, "the snapshot is cut short"))?;
    if crc32fast::hash(payload).to_le_bytes() != rest[8..12] {
        return Err(bad(FILE_HEADER, "the snapshot fails its checksum"));
    }
    // The payload in place of the file's bytes, not a copy of it: a snapshot can be large.
    let mut bytes = bytes;
    bytes.truncate(FILE_HEADER + RECORD_HEADER + len);
    bytes.drain(..FILE_HEADER + RECORD_HEADER);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal file holding `records`, then `tail`.
    fn journal(records: &[&[u8]], tail: &[u8]) -> tempfile::TempPath {
        let mut bytes = header(JOURNAL_MAGIC).to_vec();
        for record in records {
            frame(&mut bytes, record);
        }
        bytes.extend_from_slice(tail);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        file.into_temp_path()
    }

    /// Each record's offset and payload.
    type Records = Vec<(u64, Vec<u8>)>;

    fn scan(path: &Path, last: bool) -> Result<(Records, Scanned), OpenError> {
        let mut seen = Vec::new();
        let scanned = scan_journal(path, last, |offset, payload| {
            seen.push((offset, payload.to_vec()));
            Ok(())
        })?;
        Ok((seen, scanned))
    }

    #[test]
    fn records_are_read_in_order_with_their_offsets() {
        let path = journal(&[b"one", b"two"], b"");
        let (seen, scanned) = scan(&path, false).unwrap();
        let second = (FILE_HEADER + RECORD_HEADER + 3) as u64;
        assert_eq!(seen, vec![(12, b"one".to_vec()), (second, b"two".to_vec())]);
        assert_eq!(scanned.good_len, second + (RECORD_HEADER + 3) as u64);
        assert!(scanned.torn.is_none());
    }

    #[test]
    fn zeros_after_the_last_record_are_a_torn_tail_of_the_last_journal_only() {
        let path = journal(&[b"one"], &[0; 40]);
        let (seen, scanned) = scan(&path, true).unwrap();
        assert_eq!(seen.len(), 1);
        let end = (FILE_HEADER + RECORD_HEADER + 3) as u64;
        assert_eq!(scanned.good_len, end);
        assert_eq!(scanned.torn, Some((end, 40)));
        let Err(OpenError::Damaged { offset, .. }) = scan(&path, false) else {
            panic!("a journal that is not the last may not be torn");
        };
        assert_eq!(offset, Some(end));
    }

    #[test]
    fn a_zero_header_with_bytes_after_it_is_damage_not_a_torn_tail() {
        let mut tail = vec![0; 20];
        tail.push(7);
        let path = journal(&[b"one"], &tail);
        let Err(OpenError::Damaged { problem, .. }) = scan(&path, true) else {
            panic!("accepted");
        };
        assert!(problem.contains("length fails its checksum"), "{problem}");
    }

    #[test]
    fn a_record_cut_short_at_the_end_is_torn_and_one_that_fails_its_checksum_mid_file_is_damage() {
        let mut cut = Vec::new();
        frame(&mut cut, b"three");
        cut.truncate(cut.len() - 2);
        let path = journal(&[b"one"], &cut);
        let (seen, scanned) = scan(&path, true).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(scanned.torn.map(|t| t.1), Some(cut.len() as u64));

        let path = journal(&[b"one", b"two"], b"");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[FILE_HEADER + RECORD_HEADER] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let Err(OpenError::Damaged {
            offset, problem, ..
        }) = scan(&path, true)
        else {
            panic!("accepted");
        };
        assert_eq!(offset, Some(FILE_HEADER as u64));
        assert!(problem.contains("records follow it"), "{problem}");
    }
}
