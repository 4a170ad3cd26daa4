//! A registry client nobody here wrote, in Python: PyPI's `oras` (the OCI Registry As Storage
//! SDK), driven by `oras_client.py` beside this file. It pushes files as an OCI artifact over
//! plain HTTP with alice's password (trading it for a bearer token at the realm hubmock names),
//! monolithic and chunked, and pulls them back. `.ci/run` installs it in
//! `target/registry-clients`; where it is missing the test says so (and fails under CI=true).

use std::path::{Path, PathBuf};
use std::process::Command;

use hubmock::registry::image::ImageSpec;
use hubmock::registry::{Algorithm, Digest};
use serde_json::Value;

use super::clients::{alice_hub, assert_push_delivered};
use super::{header, Reg};
use crate::util::{answering, TestHub, WAIT};

const SCRIPT: &str = include_str!("oras_client.py");

/// The Python that has `oras`.
fn oras_python() -> Result<PathBuf, String> {
    crate::util::venv_python(
        "HUBMOCK_REGISTRY_CLIENT_PYTHON",
        "registry-clients",
        "oras.provider",
        "oras",
    )
}

/// Pushes every file of `files` to `alice/app:tag` with oras, then pulls the tag into `out`;
/// answers the script's report (`status`, `digest`, `pulled`).
async fn oras_push_pull(
    python: &Path,
    hub: &TestHub,
    tag: &str,
    files: &Path,
    out: &Path,
    chunked: bool,
    home: &Path,
) -> Value {
    let mut command = Command::new(python);
    command
        .args(["-c", SCRIPT])
        .arg(hub.hub.address().to_string())
        .args(["alice", "alice-pw", &format!("alice/app:{tag}")])
        .args([files, out])
        .arg(if chunked { "chunked" } else { "monolithic" })
        // No ~/.docker/config.json of the machine's: oras reads credentials from there.
        .env("HOME", home);
    let shown = format!("{command:?}");
    let output = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || command.output()))
        .await
        .unwrap_or_else(|_| panic!("{shown} did not finish within {WAIT:?}"))
        .expect("the client's thread")
        .unwrap_or_else(|err| panic!("{shown} did not start: {err}"));
    assert!(
        output.status.success(),
        "{shown}\n-> {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script's JSON report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_from_pypi_pushes_files_with_a_password_and_pulls_them_back() {
    let python = match oras_python() {
        Ok(python) => python,
        Err(reason) => return crate::util::missing_program(&reason),
    };
    let receiver = answering(200).await;
    let (hub, url) = alice_hub(&receiver).await;
    let reg = Reg::new(&hub).basic("alice", "alice-pw");
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();

    // v1 monolithic (POST ?digest= per blob); v2 chunked in 1 MiB PATCHes, with other content
    // (oras skips a blob the registry already has).
    let cases = [("v1", 1_500_000, false), ("v2", 3_200_000, true)];
    for (n, (tag, size, chunked)) in cases.into_iter().enumerate() {
        let files = work.path().join(format!("push-{tag}"));
        std::fs::create_dir(&files).unwrap();
        let data = ImageSpec::new(format!("oras-{tag}"))
            .layers(1, size)
            .generate()
            .layers
            .remove(0)
            .bytes;
        std::fs::write(files.join("data.bin"), &data).unwrap();
        std::fs::write(files.join("notes.txt"), format!("release {tag}\n")).unwrap();
        let out = work.path().join(format!("pull-{tag}"));
        let report = oras_push_pull(&python, &hub, tag, &files, &out, chunked, &home).await;
        assert_eq!(report["status"], 201, "{report}");
        assert_eq!(
            report["pulled"],
            serde_json::json!(["data.bin", "notes.txt"])
        );

        // The digest oras was told is the one hubmock serves the tag by, and its content's.
        let digest = report["digest"]
            .as_str()
            .expect("a Docker-Content-Digest")
            .to_owned();
        let manifest = reg.get(&format!("/v2/alice/app/manifests/{tag}")).await;
        assert_eq!(header(&manifest, "docker-content-digest"), digest);
        assert_eq!(
            Digest::of(Algorithm::Sha256, &manifest.body).to_string(),
            digest
        );
        let titles: Vec<Value> = manifest.json()["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["annotations"]["org.opencontainers.image.title"].clone())
            .collect();
        assert_eq!(titles, [Value::from("data.bin"), Value::from("notes.txt")]);

        // Pulled back byte for byte.
        for name in ["data.bin", "notes.txt"] {
            let sent = std::fs::read(files.join(name)).unwrap();
            let back = std::fs::read(out.join(name)).unwrap();
            assert!(sent == back, "{name} of {tag} came back different");
        }

        // The webhook a receiver got names the tag and that manifest.
        assert_push_delivered(&hub, &receiver, &url, n + 1, tag, &digest).await;
    }
}
