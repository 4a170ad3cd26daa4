//! A data directory hubmock cannot start from whole: it refuses (exit status not 0) with a
//! message that names the file, the byte where that means something, and what to do, and
//! leaves the directory as it was. The one damage a crash itself makes, a last record cut
//! short, is dropped with a warning.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::TempDir;

use super::{contents, serve_on, try_serve_on};
use crate::serve::{Refused, Serve};
use crate::util::{missing_program, Http};

/// A data directory (`<tempdir>/data`) with two repositories and a pushed tag, left by a clean
/// stop; journal-0 holds a record per change.
async fn prepared() -> (TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let serve = serve_on(&data, &[]);
    let http = Http::new(&serve.url);
    for name in ["app", "other"] {
        http.post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": name}),
        )
        .await
        .expect(201);
    }
    http.post("/_hubmock/repositories/acme/app/push", json!({"tag": "v1"}))
        .await
        .expect(202);
    serve.stopped();
    assert_eq!(fs::read_to_string(data.join("CURRENT")).unwrap(), "0\n");
    (root, data)
}

/// What the prepared directory holds is all there.
async fn assert_prepared_state(serve: &Serve) {
    let http = Http::new(&serve.url);
    let listed = http.get("/_hubmock/repositories").await.expect(200);
    let names: Vec<&str> = listed["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "other"], "{listed:#}");
    http.get("/v2/repositories/acme/app/tags/v1/")
        .await
        .expect(200);
}

/// Runs hubmock on `data`, which it must refuse; answers its stderr. The directory must be
/// unchanged but for the lock file, which each process that takes the lock rewrites with its
/// pid (it holds no state).
fn refused(data: &Path, wrapper: &[&str]) -> String {
    let before = contents_but_lock(data);
    let args = ["--no-auth", "--data-dir", data.to_str().unwrap()];
    let outcome = Serve::spawn(Serve::command(wrapper, &args));
    let Err(Refused { status, stderr }) = outcome else {
        panic!("hubmock started on {}", data.display());
    };
    assert!(!status.success(), "{status}: {stderr}");
    assert_eq!(
        contents_but_lock(data),
        before,
        "the refusal changed {}; stderr: {stderr}",
        data.display()
    );
    stderr
}

fn contents_but_lock(data: &Path) -> std::collections::BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut found = contents(data);
    found.remove(Path::new("hubmock.lock"));
    found
}

fn assert_says(stderr: &str, parts: &[&str]) {
    for part in parts {
        assert!(stderr.contains(part), "expected {part:?} in:\n{stderr}");
    }
}

/// What a damaged directory's message tells the user to do.
const RESTORE: &str = "Restore the directory from a backup, or move it aside and start with an \
                       empty --data-dir.";

#[tokio::test]
async fn a_record_torn_by_a_crash_is_dropped_with_a_warning_and_the_state_before_it_is_kept() {
    let (_root, data) = prepared().await;
    let journal = data.join("journal-0");
    let good = fs::metadata(&journal).unwrap().len();
    // A record whose header was written whole and whose payload was cut short.
    let payload = br#"{"Alive":"2026-12-02T12:00:00.000000Z"}"#;
    let len = (payload.len() as u32).to_le_bytes();
    let mut torn = Vec::new();
    torn.extend_from_slice(&len);
    torn.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    torn.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    torn.extend_from_slice(&payload[..10]);
    fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap()
        .write_all(&torn)
        .unwrap();

    let serve = serve_on(&data, &[]);
    let warning = serve.wait_for_line("the torn record's warning", |l| l.contains("journal-0"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!(
            "the last record (at byte {good}, {} bytes) was cut short by a crash and is dropped",
            torn.len()
        )),
        "{warning}"
    );
    assert_prepared_state(&serve).await;
    serve.stopped();

    // The torn bytes were cut off: the next start has nothing to warn about.
    let serve = serve_on(&data, &[]);
    assert_prepared_state(&serve).await;
    let log = serve.stopped();
    assert!(
        !log.iter().any(|l| l.contains("cut short")),
        "{}",
        log.join("\n")
    );
}

#[tokio::test]
async fn a_flipped_byte_in_a_record_that_others_follow_is_refused_naming_the_journal_and_offset() {
    let (_root, data) = prepared().await;
    let journal = data.join("journal-0");
    let mut bytes = fs::read(&journal).unwrap();
    // The first record starts after the file's 12-byte header; its payload 12 bytes later.
    bytes[12 + 12 + 5] ^= 0x20;
    fs::write(&journal, &bytes).unwrap();

    let stderr = refused(&data, &[]);
    assert_says(
        &stderr,
        &[
            &format!("{} is damaged at byte 12", journal.display()),
            "a record fails its checksum, and records follow it",
            RESTORE,
        ],
    );
}

#[tokio::test]
async fn a_missing_current_file_is_refused_naming_it() {
    let (_root, data) = prepared().await;
    fs::remove_file(data.join("CURRENT")).unwrap();
    let stderr = refused(&data, &[]);
    assert_says(
        &stderr,
        &[
            &format!("{} is damaged", data.join("CURRENT").display()),
            "the file is missing",
            RESTORE,
        ],
    );
}

#[tokio::test]
async fn a_missing_journal_is_refused_naming_it() {
    let (_root, data) = prepared().await;
    fs::remove_file(data.join("journal-0")).unwrap();
    let stderr = refused(&data, &[]);
    assert_says(
        &stderr,
        &[
            &format!("{} is damaged", data.join("journal-0").display()),
            "the journal file is missing",
            RESTORE,
        ],
    );
}

#[tokio::test]
async fn a_data_directory_this_user_cannot_read_is_refused_naming_it() {
    let (root, data) = prepared().await;
    let root_user = rustix::process::getuid().is_root();
    let wrapper: &[&str] = &[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let wrapper = if root_user {
        // root reads a directory whatever its mode: run as nobody, who may pass through the
        // temporary directory but not into the data directory.
        let found = std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            missing_program("setpriv (util-linux) is not installed: apt-get install util-linux");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
        wrapper
    } else {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o000)).unwrap();
        &[]
    };
    let stderr = refused_keeping_modes(&data, wrapper);
    assert_says(
        &stderr,
        &[
            &data.display().to_string(),
            "Permission denied",
            "Check that the path is a directory this user may read and write, or choose another \
             --data-dir.",
        ],
    );
}

/// [`refused`] on a directory whose mode the test changed: read as root (or after giving the
/// mode back), compared, and the mode given back so the temporary directory can be removed.
fn refused_keeping_modes(data: &Path, wrapper: &[&str]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(data).unwrap().permissions().mode();
    fs::set_permissions(data, fs::Permissions::from_mode(0o700)).unwrap();
    let before = contents_but_lock(data);
    fs::set_permissions(data, fs::Permissions::from_mode(mode)).unwrap();
    let args = ["--no-auth", "--data-dir", data.to_str().unwrap()];
    let outcome = Serve::spawn(Serve::command(wrapper, &args));
    fs::set_permissions(data, fs::Permissions::from_mode(0o700)).unwrap();
    let Err(Refused { status, stderr }) = outcome else {
        panic!("hubmock started on an unreadable {}", data.display());
    };
    assert!(!status.success(), "{status}: {stderr}");
    assert_eq!(contents_but_lock(data), before, "stderr: {stderr}");
    stderr
}

#[tokio::test]
async fn a_data_dir_that_is_a_regular_file_is_refused_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("data");
    fs::write(&file, b"not a directory\n").unwrap();
    let args = ["--no-auth", "--data-dir", file.to_str().unwrap()];
    let Err(Refused { status, stderr }) = Serve::spawn(Serve::command(&[], &args)) else {
        panic!("hubmock started on a regular file");
    };
    assert!(!status.success(), "{status}: {stderr}");
    assert_says(
        &stderr,
        &[&file.display().to_string(), "choose another --data-dir"],
    );
    assert_eq!(fs::read(&file).unwrap(), b"not a directory\n");
}

#[tokio::test]
async fn a_second_hubmock_on_the_same_directory_is_refused_naming_the_first_ones_pid() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let first = serve_on(&data, &[]);
    let before = contents(&data);
    let Err(Refused { status, stderr }) = try_serve_on(&data, &[]) else {
        panic!("a second hubmock started on {}", data.display());
    };
    assert!(!status.success(), "{status}: {stderr}");
    assert_says(
        &stderr,
        &[
            &format!(
                "data directory {} is in use by another hubmock (pid {})",
                data.display(),
                first.pid()
            ),
            "Stop that process, or give this one another --data-dir.",
        ],
    );
    // Lock file included: the refused process did not touch it.
    assert_eq!(contents(&data), before);
    Http::new(&first.url)
        .get("/_hubmock/health")
        .await
        .expect(200);
}

#[tokio::test]
async fn a_directory_written_by_a_newer_format_is_refused_saying_so() {
    let (_root, data) = prepared().await;
    fs::write(data.join("FORMAT"), "hubmock data directory, format 2\n").unwrap();
    let stderr = refused(&data, &[]);
    assert_says(
        &stderr,
        &[
            &format!(
                "{} was written by a newer hubmock (data format 2); this hubmock reads format 1",
                data.join("FORMAT").display()
            ),
            "Run the newer hubmock, or give this one another --data-dir.",
        ],
    );
}

#[tokio::test]
async fn a_directory_with_other_files_is_not_taken_for_a_data_directory() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("photos");
    fs::create_dir_all(data.join("2026")).unwrap();
    fs::write(data.join("notes.txt"), b"mine\n").unwrap();
    let before = contents(&data);
    let args = ["--no-auth", "--data-dir", data.to_str().unwrap()];
    let Err(Refused { status, stderr }) = Serve::spawn(Serve::command(&[], &args)) else {
        panic!("hubmock started in {}", data.display());
    };
    assert!(!status.success(), "{status}: {stderr}");
    assert_says(
        &stderr,
        &[
            &data.display().to_string(),
            "it is not a hubmock data directory (no FORMAT file) and not empty",
            "notes.txt",
        ],
    );
    // Nothing written among the user's files: no lock file, no registry directory.
    assert_eq!(contents(&data), before, "stderr: {stderr}");
}
