//! `--data-dir` through the real binary: `kill -9` under load at random moments (`crash.rs`),
//! a damaged, missing, locked, newer or foreign data directory refused with a message that
//! names the file and says what to do (`damage.rs`), and snapshots that rotate the journal
//! (`snapshot.rs`).

mod crash;
mod damage;
mod snapshot;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::serve::{Refused, Serve};

/// `hubmock serve --no-auth --data-dir dir` plus `args`; panics with the log if it refuses.
fn serve_on(dir: &Path, args: &[&str]) -> Serve {
    serve_on_with_env(dir, args, &[])
}

/// [`serve_on`] with environment variables set for the server.
fn serve_on_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
    try_serve_on_with_env(dir, args, env).unwrap_or_else(|refused| {
        panic!("hubmock refused to start on {}: {refused:?}", dir.display())
    })
}

/// `hubmock serve --no-auth --data-dir dir` plus `args`: the server, or how it refused.
fn try_serve_on(dir: &Path, args: &[&str]) -> Result<Serve, Refused> {
    try_serve_on_with_env(dir, args, &[])
}

fn try_serve_on_with_env(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Serve, Refused> {
    let mut all = vec![
        "--no-auth",
        "--data-dir",
        dir.to_str().expect("a UTF-8 path"),
    ];
    all.extend_from_slice(args);
    let mut command = Serve::command(&[], &all);
    command.envs(env.iter().copied());
    Serve::spawn(command)
}

/// Every file under `dir` with its bytes (directories as `None`), to show that a refusal left
/// the directory as it was.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(dir).unwrap().to_owned();
            if path.is_dir() {
                found.insert(relative, None);
                todo.push(path);
            } else {
                found.insert(relative, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

/// The names of the files directly in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
